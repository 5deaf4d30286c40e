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

mod wire;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use base64::Engine;
use utoipa::OpenApi;

use crate::devkeys::{DevKeyError, Principal};
use crate::domain::org::OrgRole;
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
    } else {
        Err(DevKeyError::Unauthorized)
    };
    match principal {
        Ok(p) => {
            parts.extensions.insert(p);
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
        }
        Err(DevKeyError::Store(s)) => ApiError::from(s).into_response(),
        Err(_) => ApiError::unauthorized().into_response(),
    }
}

/// The organization of the path, if it is the key's own (else 404, as for one that does not
/// exist); `write` checked for changes.
async fn org_of(state: &AppState, p: &Principal, org_ref: &str, write: bool) -> ApiResult<crate::domain::org::Org> {
    let org = state.orgs.find(org_ref).await?.ok_or_else(ApiError::not_found)?;
    if org.id != p.org {
        return Err(ApiError::not_found());
    }
    if write && !p.allows("write") {
        return Err(ApiError::forbidden("this key may only read"));
    }
    Ok(org)
}

/// The routes of `/api/v1` (paths below are relative to it); anything else under it is a 404
/// or 405 problem.
pub fn router(state: AppState) -> Router<AppState> {
    let authed = Router::new()
        .route("/orgs/{org}", get(get_org))
        .route("/orgs/{org}/members", get(list_members))
        .route("/orgs/{org}/members/{email}", put(put_member).delete(delete_member))
        .route("/orgs/{org}/webhooks", get(list_webhooks).post(create_webhook))
        .route("/orgs/{org}/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/orgs/{org}/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/orgs/{org}/domains", get(list_domains))
        .route("/orgs/{org}/domains/{domain}", put(put_domain).delete(delete_domain))
        .route("/orgs/{org}/domains/{domain}/verify", axum::routing::post(verify_domain))
        .route("/orgs/{org}/connections", get(list_connections))
        .route("/orgs/{org}/audit", get(audit_log))
        .route("/orgs/{org}/audit/export", get(audit_export))
        .route("/events/stream", get(events_stream))
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
    info(title = "Guichet admin API", version = "1", description = "Organizations, members and webhooks, for an organization's developer keys."),
    paths(get_org, list_members, put_member, delete_member, list_webhooks, create_webhook, delete_webhook, list_deliveries, list_domains, put_domain, delete_domain, verify_domain, list_connections, audit_log, audit_export, events_stream),
    components(schemas(Problem, OrgWire, MemberWire, MemberPage, MemberPut, RoleWire, EventTypeWire, WebhookWire, WebhookCreate, WebhookCreated, DeliveryWire, DomainWire, ConnectionWire, AuditPage, AuditWire)),
    modifiers(&SecuritySchemes),
    tags((name = "organizations"), (name = "members"), (name = "webhooks"), (name = "domains"), (name = "connections"), (name = "audit"), (name = "events"))
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
    }
}

/// The OpenAPI 3.1 document of this API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi() -> Response {
    let mut res = Json(openapi_document()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "organizations",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = OrgWire, description = "The organization"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn get_org(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
) -> ApiResult<Json<OrgWire>> {
    let org = org_of(&state, &p, &org, false).await?;
    Ok(Json(OrgWire::from(&org)))
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

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = MemberPage, description = "A page of members"), (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn list_members(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<MemberPage>> {
    let org = org_of(&state, &p, &org, false).await?;
    let q = page_query(raw.as_deref())?;
    let limit = q.limit;
    let after = match q.cursor.as_deref() {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("unknown cursor"))?),
        None => None,
    };
    let (_, mut members) = state.orgs.members(Actor::Platform, &org.id.to_string()).await?;
    members.sort_by_key(|m| m.user_id);
    let rest: Vec<_> = members.into_iter().filter(|m| after.is_none_or(|a| m.user_id.as_uuid() > a)).collect();
    let next_cursor = (rest.len() > limit).then(|| encode_cursor(rest[limit - 1].user_id.as_uuid()));
    let items = rest.iter().take(limit).map(MemberWire::from).collect();
    Ok(Json(MemberPage { items, next_cursor }))
}

fn member_response(m: &crate::domain::org::Member, status: StatusCode) -> Response {
    let wire = MemberWire::from(m);
    let mut res = (status, Json(&wire)).into_response();
    if let Ok(v) = HeaderValue::from_str(&wire.etag()) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/{email}", tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("email" = String, Path, description = "The account's email address"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The member's ETag (or a list of them, or `*`): 412 when it changed since or does not exist")),
    request_body = MemberPut,
    responses((status = 200, body = MemberWire, description = "Set (idempotent)",
            headers(("ETag" = String, description = "The member's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such organization or account"), (status = 412, body = Problem, content_type = "application/problem+json", description = "The member changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn put_member(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, email)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &p, &org, true).await?;
    let put: MemberPut = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let role = match put.role {
        RoleWire::Admin => OrgRole::Admin,
        RoleWire::Member => OrgRole::Member,
        RoleWire::Owner => return Err(ApiError::forbidden("owners are made by owners, in Guichet")),
    };
    let (_, members) = state.orgs.members(Actor::Platform, &org.id.to_string()).await?;
    let current = members.iter().find(|m| m.email.eq_ignore_ascii_case(email.trim()));
    if current.is_some_and(|m| m.role == OrgRole::Owner) {
        return Err(ApiError::forbidden("owners are changed by owners, in Guichet"));
    }
    // RFC 9110 §13.1.1: `*` matches an existing member; otherwise any listed tag may match.
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let now = current.map(|m| MemberWire::from(m).etag());
        let matches = match now.as_deref() {
            None => false,
            Some(tag) => want.split(',').map(str::trim).any(|w| w == "*" || w == tag),
        };
        if !matches {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "Precondition Failed",
                "the member changed since",
            ));
        }
    }
    if current.is_some_and(|m| m.role == role) {
        return Ok(member_response(current.ok_or_else(ApiError::not_found)?, StatusCode::OK));
    }
    let m = state.orgs.set_member(Actor::Platform, &org.id.to_string(), &email, role).await?;
    Ok(member_response(&m, StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{email}", tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("email" = String, Path, description = "The account's email address")),
    responses((status = 204, description = "Not a member any more (whether or not it was)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn delete_member(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, email)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &p, &org, true).await?;
    let (_, members) = state.orgs.members(Actor::Platform, &org.id.to_string()).await?;
    match members.iter().find(|m| m.email.eq_ignore_ascii_case(email.trim())) {
        None => Ok(StatusCode::NO_CONTENT),
        Some(m) if m.role == OrgRole::Owner => Err(ApiError::forbidden("owners are removed by owners, in Guichet")),
        Some(m) => {
            state.orgs.remove_member(Actor::Platform, &org.id.to_string(), &m.email).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/webhooks", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<WebhookWire>, description = "The organization's webhooks"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn list_webhooks(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<WebhookWire>>> {
    let org = org_of(&state, &p, &org, false).await?;
    let list = state.webhooks.list(Actor::Platform, &org.id.to_string()).await?;
    Ok(Json(list.iter().map(WebhookWire::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/webhooks", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = WebhookCreate,
    responses((status = 201, body = WebhookCreated, description = "Created; the secret is shown this once"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Unknown event, or a URL that cannot be used (one message for all)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn create_webhook(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &p, &org, true).await?;
    let c: WebhookCreate = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let events: Vec<String> = c.events.iter().map(|e| e.name()).collect();
    let (w, secret) = state.webhooks.create(Actor::Platform, &org.id.to_string(), &c.url, &events).await?;
    Ok((StatusCode::CREATED, Json(WebhookCreated { webhook: WebhookWire::from(&w), secret })).into_response())
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/webhooks/{id}", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The webhook id")),
    responses((status = 204, description = "Gone (whether or not it was there)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn delete_webhook(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &p, &org, true).await?;
    match state.webhooks.delete(Actor::Platform, &org.id.to_string(), &id).await {
        Ok(()) | Err(WebhookError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/webhooks/{id}/deliveries", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The webhook id"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)")),
    responses((status = 200, body = Vec<DeliveryWire>, description = "Newest first"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn list_deliveries(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<DeliveryWire>>> {
    let org = org_of(&state, &p, &org, false).await?;
    let limit = i64::try_from(page_query(raw.as_deref())?.limit).unwrap_or(50);
    let list = state.webhooks.deliveries(Actor::Platform, &org.id.to_string(), &id, limit).await?;
    Ok(Json(list.iter().map(DeliveryWire::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/domains", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<DomainWire>, description = "The domains the organization claims"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn list_domains(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<DomainWire>>> {
    let org = org_of(&state, &p, &org, false).await?;
    let (_, list) = state.orgs.domains(Actor::Platform, &org.id.to_string()).await?;
    Ok(Json(list.iter().map(DomainWire::from).collect()))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/domains/{domain}", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain, e.g. acme.com")),
    responses((status = 200, body = DomainWire, description = "Claimed (idempotent): publish the TXT record, then verify"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"), (status = 409, body = Problem, content_type = "application/problem+json", description = "Claimed or verified by another organization (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn put_domain(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<Json<DomainWire>> {
    let org = org_of(&state, &p, &org, true).await?;
    let org_ref = org.id.to_string();
    let (_, list) = state.orgs.domains(Actor::Platform, &org_ref).await?;
    let wanted = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Some(d) = list.iter().find(|d| d.domain == wanted) {
        return Ok(Json(DomainWire::from(d)));
    }
    match state.orgs.add_domain(Actor::Platform, &org_ref, &domain).await {
        Ok((_, d)) => Ok(Json(DomainWire::from(&d))),
        Err(OrgError::DomainClaimed(_) | OrgError::DomainTaken(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "this domain is claimed or verified by another organization",
        )),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/domains/{domain}", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain, e.g. acme.com")),
    responses((status = 204, description = "Not claimed any more (whether or not it was)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn delete_domain(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &p, &org, true).await?;
    match state.orgs.remove_domain(Actor::Platform, &org.id.to_string(), &domain).await {
        Ok(()) | Err(OrgError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/domains/{domain}/verify", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain, e.g. acme.com")),
    responses((status = 200, body = DomainWire, description = "The claim after a check of its TXT record now (verified, or why not)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn verify_domain(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<Json<DomainWire>> {
    let org = org_of(&state, &p, &org, true).await?;
    let d = state.orgs.verify_domain(Actor::Platform, &org.id.to_string(), &domain).await?;
    Ok(Json(DomainWire::from(&d)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/connections", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<ConnectionWire>, description = "The SSO connections serving the organization"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn list_connections(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<ConnectionWire>>> {
    use crate::domain::federation::ConnectionConfig;
    let org = org_of(&state, &p, &org, false).await?;
    let f = &state.federation;
    let list = f.connections_for_org(Actor::Platform, &org.id.to_string()).await.map_err(|e| match e {
        crate::federation::FederationError::Store(s) => ApiError::from(s),
        crate::federation::FederationError::Org(o) => ApiError::from(o),
        _ => ApiError::not_found(),
    })?;
    Ok(Json(
        list.iter()
            .map(|c| {
                let saml = matches!(c.config, ConnectionConfig::Saml(_));
                ConnectionWire {
                    id: c.id.as_uuid(),
                    name: c.name.clone(),
                    kind: c.config.kind().as_str().to_owned(),
                    login_url: f.login_url(c.id),
                    sp_entity_id: saml.then(|| f.sp_entity_id(c.id)),
                    acs_url: saml.then(|| f.acs_url(c.id)),
                    redirect_uri: (!saml).then(|| f.oidc_redirect_uri()),
                    org_count: c.orgs.len(),
                }
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("action" = Option<String>, Query, description = "Only this action, e.g. org.member_added")),
    responses((status = 200, body = AuditPage, description = "The organization's audit log, newest first"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let org = org_of(&state, &p, &org, false).await?;
    let q = page_query(raw.as_deref())?;
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("unknown cursor"))?,
        ),
        None => None,
    };
    let org_ref = org.id.to_string();
    let limit = i64::try_from(q.limit).unwrap_or(50);
    let mut rows = state.orgs.audit_log(Actor::Platform, &org_ref, q.action.as_deref(), before, limit + 1).await?;
    let next_cursor = if rows.len() > q.limit {
        rows.truncate(q.limit);
        rows.last().map(|(id, _)| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_string()))
    } else {
        None
    };
    let items = rows.iter().map(|(id, e)| AuditWire::new(*id, e)).collect();
    Ok(Json(AuditPage { items, next_cursor }).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/export", tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("action" = Option<String>, Query, description = "Only this action, e.g. org.member_added")),
    responses((status = 200, body = String, content_type = "application/x-ndjson",
            description = "The organization's audit log (10 000 entries at most, newest first) as JSON lines, one AuditWire per line"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn audit_export(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let org = org_of(&state, &p, &org, false).await?;
    let q = page_query(raw.as_deref())?;
    let all = state.orgs.audit_log(Actor::Platform, &org.id.to_string(), q.action.as_deref(), None, 10_000).await?;
    let mut body = String::new();
    for (id, e) in &all {
        body.push_str(&serde_json::to_string(&AuditWire::new(*id, e)).unwrap_or_default());
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]+$", description = "Resume after this event (its `id` in the stream)")),
    responses((status = 200, content_type = "text/event-stream",
            description = "The key's organization's events as Server-Sent Events: `id` (the position), `event` (the type), `data` (the event JSON, as webhooks get it); a comment every 15 s keeps it open"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn events_stream(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let start = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(v) => {
            v.trim().parse::<i64>().map_err(|_| ApiError::bad_request("Last-Event-ID is an event id of this stream"))?
        }
        None => state.webhooks.last_event(p.org).await?,
    };
    // Polls the organization's event log (shared by every node); a client that reconnects with
    // Last-Event-ID misses nothing kept (a week).
    let init = (state.webhooks.clone(), p.org, start, std::collections::VecDeque::<(i64, String, String)>::new());
    let stream = futures_util::stream::unfold(init, |(svc, org, last, mut buf)| async move {
        loop {
            if let Some((seq, kind, payload)) = buf.pop_front() {
                let ev = Event::default().id(seq.to_string()).event(kind).data(payload);
                return Some((Ok::<_, std::convert::Infallible>(ev), (svc, org, seq, buf)));
            }
            match svc.events_after(org, last, 100).await {
                Ok(rows) if !rows.is_empty() => buf.extend(rows),
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read events");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    });
    let keep = KeepAlive::new().interval(std::time::Duration::from_secs(15));
    Ok(Sse::new(stream).keep_alive(keep).into_response())
}

fn encode_cursor(after: uuid::Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after.as_bytes())
}

fn decode_cursor(c: &str) -> Option<uuid::Uuid> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    uuid::Uuid::from_slice(&b).ok()
}
