//! The admin REST API (`/api/v1`), JSON, described by the OpenAPI 3.1 document served at
//! `/api/v1/openapi.json` and generated from these handlers and wire types (utoipa).
//!
//! Authentication: a developer key of an organization (`src/devkeys.rs`), by HTTP Basic
//! (`DevKey:DevSecret`) or an HMAC signature (`Guichet-HMAC-SHA256 key=, ts=, sig=`). A key is
//! confined to its organization: any other organization, and any id of another organization, is
//! 404. `read` keys may only read. Errors are RFC 9457 `application/problem+json`. Lists are
//! cursor-paginated (`limit`, `cursor` → `next_cursor`). Updates are idempotent `PUT`s that
//! return an `ETag` and honour `If-Match` (412 when the resource changed); `DELETE` is 204
//! whether or not the resource was there.
//!
//! Like the pages and the CLI, the handlers call the services (orgs, webhooks), never a store.
//! Wire types are this module's own.

mod audit;
mod clients;
mod connections;
mod domains;
mod events;
mod invitations;
mod orgs;
mod rbac;
mod users;
mod webhooks;
mod wire;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use utoipa::OpenApi;

use crate::devkeys::{DevKeyError, Principal, PrincipalOwner};
use crate::domain::org::OrgRole;
use crate::domain::OrgId;
use crate::orgs::{Actor, OrgError};
use crate::web::state::AppState;
use crate::webhooks::WebhookError;
pub use wire::*;

/// An API error: RFC 9457 problem details.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
}

impl ApiError {
    fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, title, detail: detail.into() }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found", "there is nothing at this address for this key")
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "a valid developer key is needed (HTTP Basic or a signature)",
        )
    }

    fn forbidden(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            r#type: "about:blank".into(),
            title: self.title.into(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"guichet-api\", Guichet-HMAC-SHA256"),
            );
        }
        res
    }
}

impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::NotFound | OrgError::UnknownUser(_) | OrgError::NotMember(_) => ApiError::not_found(),
            OrgError::Forbidden | OrgError::OwnerOnly => ApiError::forbidden("not allowed for this key"),
            OrgError::Store(s) => s.into(),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::warn!(error = %e, "admin API: store error");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "try again in a moment")
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound => ApiError::not_found(),
            WebhookError::Invalid(m) => ApiError::bad_request(m),
            WebhookError::UrlRefused => ApiError::bad_request(crate::webhooks::URL_REFUSED),
            WebhookError::Org(o) => o.into(),
            WebhookError::Store(s) => s.into(),
            WebhookError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "admin API: internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    "something went wrong on our side",
                )
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Authenticates every request of the API (but the OpenAPI document) with a developer key.
async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    // The guard has read the body already (within its limit): this only collects it.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::bad_request("the body could not be read").into_response();
    };
    let principal = if let Some(b64) = auth.strip_prefix("Basic ").or_else(|| auth.strip_prefix("basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok();
        match decoded.as_deref().and_then(|d| std::str::from_utf8(d).ok()).and_then(|s| s.split_once(':')) {
            Some((key, secret)) => state.devkeys.authenticate_basic(key, secret).await,
            None => Err(DevKeyError::Unauthorized),
        }
    } else if auth.starts_with(crate::domain::devkey::HMAC_SCHEME) {
        // The URI as sent (the router nests the API: its own URI lacks the prefix).
        let uri =
            parts.extensions.get::<axum::extract::OriginalUri>().map(|o| o.0.clone()).unwrap_or(parts.uri.clone());
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        state.devkeys.authenticate_signed(&auth, parts.method.as_str(), path, &bytes).await
    } else if auth.is_empty() {
        // No credentials: an admin's browser session, if there is one.
        return match session_caller(&state, &parts).await {
            Ok(caller) => {
                parts.extensions.insert(caller);
                next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
            }
            Err(e) => e.into_response(),
        };
    } else {
        Err(DevKeyError::Unauthorized)
    };
    match principal {
        Ok(p) => {
            parts.extensions.insert(Caller::from(p));
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
        }
        Err(DevKeyError::Store(s)) => ApiError::from(s).into_response(),
        Err(_) => ApiError::unauthorized().into_response(),
    }
}

/// Who calls the API, and what they may reach.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whom the services see: the platform for an organization's key (confined by `org`), the
    /// user for an admin's session or a user's own key.
    pub actor: Actor,
    /// An organization key's organization: every other one is 404.
    pub org: Option<OrgId>,
    /// May change things (a `write` key, or a session).
    pub write: bool,
    /// For logs and the audit: `key:<id>` or `user:<id>`.
    pub label: String,
}

impl From<Principal> for Caller {
    fn from(p: Principal) -> Self {
        let write = p.allows("write");
        let label = format!("key:{}", p.key);
        match p.owner {
            PrincipalOwner::Org(org) => Caller { actor: Actor::Platform, org: Some(org), write, label },
            // A user's own key: that user's rights (read when the request came in).
            PrincipalOwner::User(u) => Caller { actor: Actor::of(&u), org: None, write, label },
        }
    }
}

/// A request with no `Authorization` but the session cookie of a signed-in user: that user,
/// with their own rights. Changes (any method but GET, HEAD, OPTIONS) need the session's CSRF
/// token in `X-CSRF-Token` (else 403); a suspended or deleted account is 401.
async fn session_caller(state: &AppState, parts: &axum::http::request::Parts) -> ApiResult<Caller> {
    let session = state.sessions.load(&parts.headers).await?.ok_or_else(ApiError::unauthorized)?;
    let signed_in = session.data.user.as_ref().ok_or_else(ApiError::unauthorized)?;
    let user = match state.accounts.find(signed_in.id).await {
        Ok(Some(u)) if u.status == crate::domain::UserStatus::Active => u,
        Ok(_) => return Err(ApiError::unauthorized()),
        Err(crate::accounts::AccountError::Store(s)) => return Err(s.into()),
        Err(_) => return Err(ApiError::unauthorized()),
    };
    if !parts.method.is_safe() {
        let token = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let cross_site = parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site");
        if cross_site || !crate::crypto::tokens::constant_time_eq(session.data.csrf.as_bytes(), token.as_bytes()) {
            return Err(ApiError::forbidden("a change made with a session needs its CSRF token in X-CSRF-Token"));
        }
        // As in the console: a change needs a recent sign-in (`accounts.recent_auth_secs`).
        if !state.accounts.recent(signed_in.auth_time) {
            return Err(ApiError::forbidden("a change made with a session needs a recent sign-in: sign in again"));
        }
    }
    Ok(Caller { actor: Actor::of(&user), org: None, write: true, label: format!("user:{}", user.id) })
}

/// The organization of the path if the caller may administer it (else 404, as for one that
/// does not exist: a caller learns nothing of other organizations); `write` checked for changes.
async fn org_of(state: &AppState, c: &Caller, org_ref: &str, write: bool) -> ApiResult<crate::domain::org::Org> {
    let org = match c.org {
        Some(own) => {
            let org = state.orgs.find(org_ref).await?.ok_or_else(ApiError::not_found)?;
            if org.id != own {
                return Err(ApiError::not_found());
            }
            org
        }
        None => state.orgs.authorize(c.actor, org_ref, OrgRole::Admin).await.map_err(|e| match e {
            OrgError::Store(s) => ApiError::from(s),
            _ => ApiError::not_found(),
        })?,
    };
    if write && !c.write {
        state
            .accounts
            .audit_entry(
                "api.write_denied",
                &format!("org:{}", org.id),
                &c.label,
                Some(org.id),
                serde_json::json!({"reason": "read-only credential"}),
                crate::domain::account::AuditOutcome::Denied,
            )
            .await;
        return Err(ApiError::forbidden("this key may only read"));
    }
    Ok(org)
}

/// The routes of `/api/v1` (paths below are relative to it); anything else under it is a 404
/// or 405 problem.
pub fn router(state: AppState) -> Router<AppState> {
    let authed = Router::new()
        .merge(orgs::routes())
        .merge(rbac::routes())
        .merge(clients::routes())
        .merge(connections::routes())
        .merge(users::routes())
        .merge(invitations::routes())
        .merge(webhooks::routes())
        .merge(domains::routes())
        .merge(audit::routes())
        .merge(events::routes())
        .route_layer(middleware::from_fn_with_state(state, authenticate));
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .merge(authed)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed", "this method is not allowed here")
        });
    Router::new().nest("/api/v1", api)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Guichet admin API", version = "1", description = "Guichet's administration: users, organizations, members, roles and permissions, clients, connections, domains, invitations, webhooks, the audit log and live events. Authenticated by a developer key (an organization's, confined to it, or a user's own) or an admin's session (with X-CSRF-Token for changes)."),
    components(schemas(Problem)),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Basic).description(Some("DevKey:DevSecret")).build(),
            ),
        );
        components.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "Guichet-HMAC-SHA256 key=<DevKey>, ts=<unix seconds>, sig=<base64 HMAC-SHA256 keyed with SHA-256(DevSecret) over METHOD\\npath?query\\nts\\nhex SHA-256(body)>",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "guichet_session",
                "A signed-in admin's browser session (`__Host-guichet_session` when the issuer is https), with no Authorization header; changes need the session's CSRF token in X-CSRF-Token",
            ))),
        );
    }
}

/// The OpenAPI 3.1 document of this API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for part in [
        orgs::Doc::openapi(),
        rbac::Doc::openapi(),
        clients::Doc::openapi(),
        connections::Doc::openapi(),
        users::Doc::openapi(),
        invitations::Doc::openapi(),
        webhooks::Doc::openapi(),
        domains::Doc::openapi(),
        audit::Doc::openapi(),
        events::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

async fn openapi() -> Response {
    let mut res = Json(openapi_document()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// `limit` (1 to 200, default 50), `cursor`, `action`: read by hand so that a malformed query
/// is a 400 problem like every other error.
#[derive(Default)]
struct PageQuery {
    limit: usize,
    cursor: Option<String>,
    action: Option<String>,
}

fn page_query(raw: Option<&str>) -> ApiResult<PageQuery> {
    let mut q = PageQuery { limit: 50, ..Default::default() };
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !seen.insert(k.to_string()) {
            return Err(ApiError::bad_request(format!("{k} is given twice")));
        }
        match k.as_ref() {
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| ApiError::bad_request("limit is 1 to 200"))?
            }
            "cursor" => q.cursor = Some(v.into_owned()),
            "action" => q.action = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(q)
}

fn encode_cursor(after: uuid::Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after.as_bytes())
}

fn decode_cursor(c: &str) -> Option<uuid::Uuid> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    uuid::Uuid::from_slice(&b).ok()
}
