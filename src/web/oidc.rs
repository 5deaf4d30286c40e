//! HTTP adapter of the OpenID Provider's back-channel endpoints: discovery, JWKS, token,
//! userinfo, introspection, revocation. Errors are RFC 6749 §5.2 JSON with `no-store`.

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use super::state::AppState;
use crate::oidc::client_auth::PresentedCredentials;
use crate::oidc::token::TokenParams;
use crate::oidc::{paths, OAuthError, OAuthErrorCode};

pub fn router() -> Router<AppState> {
    // Browser-based clients (SPAs) call these cross-origin, without cookies (`PublicCors`).
    Router::new()
        .route(paths::DISCOVERY, get(discovery))
        .route(paths::JWKS, get(jwks))
        .route(paths::TOKEN, post(token))
        .route(paths::USERINFO, get(userinfo).post(userinfo))
        .route(paths::INTROSPECT, post(introspect))
        .route(paths::REVOKE, post(revoke))
        .layer(super::route_layers::PublicCors)
}

/// An OAuth error as JSON (RFC 6749 §5.2), with the right status and challenge header.
pub struct OAuthResponse {
    pub error: OAuthError,
    pub challenge: Option<Challenge>,
}

/// The `WWW-Authenticate` header to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// Token-endpoint client errors when the client used Basic (RFC 6749 §5.2).
    Basic,
    /// Resource errors: `Bearer error="..."` (RFC 6750 §3), bare for invalid_request.
    Bearer,
    /// No credentials at all: a bare `Bearer` challenge, no error code (RFC 6750 §3.1).
    BearerNoCredentials,
}

impl OAuthResponse {
    pub fn bearer_challenge(description: &str) -> Self {
        Self { error: OAuthError::invalid_token(description), challenge: Some(Challenge::BearerNoCredentials) }
    }
}

impl From<OAuthError> for OAuthResponse {
    fn from(error: OAuthError) -> Self {
        Self { error, challenge: None }
    }
}

impl IntoResponse for OAuthResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body = serde_json::json!({
            "error": self.error.code.as_str(),
            "error_description": crate::oidc::error::safe_description(&self.error.description),
        });
        if status.is_server_error() {
            // Logged once, with an id the client can quote; the cause was logged where it arose.
            let error_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
            match &self.error.cause {
                Some(cause) => tracing::error!(%error_id, error = %self.error, cause = ?cause, "OAuth endpoint failed"),
                None => tracing::error!(%error_id, error = %self.error, "OAuth endpoint failed"),
            }
            body["error_id"] = serde_json::json!(error_id);
        }
        let mut res = (status, no_store(), Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let Some(challenge) = self.challenge {
            let v = match challenge {
                Challenge::Bearer if self.error.code != OAuthErrorCode::InvalidRequest => format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    self.error.code.as_str(),
                    self.error.description.replace(['"', '\\'], "'")
                ),
                Challenge::Bearer | Challenge::BearerNoCredentials => "Bearer realm=\"guichet\"".to_owned(),
                Challenge::Basic => "Basic realm=\"guichet\"".to_owned(),
            };
            if let Ok(v) = HeaderValue::from_str(&v) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}

/// Headers a response of these endpoints ends with: its own three or four, `Content-Length`,
/// the CORS origin, the security headers, the request id (and HSTS). Made with room for them
/// all, the map is allocated once; a map grown from empty is allocated, then reallocated and
/// rehashed when the security headers are added (`security::headers`).
const HEADERS_ROOM: usize = 16;

/// A response with `body` and the given headers, its header map allocated once.
fn respond(status: StatusCode, body: axum::body::Body, headers: &[(header::HeaderName, HeaderValue)]) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let mut map = HeaderMap::with_capacity(HEADERS_ROOM);
    for (k, v) in headers {
        map.insert(k.clone(), v.clone());
    }
    *res.headers_mut() = map;
    res
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `value` as JSON with `no-store` (token, userinfo and introspection answers); a value that
/// cannot be serialised (never expected) is a 500, as with `Json`.
fn json_no_store<T: serde::Serialize>(value: &T) -> Response {
    let mut buf = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => {
            let [cache_control, pragma] = no_store();
            respond(StatusCode::OK, buf.into(), &[(header::CONTENT_TYPE, JSON), cache_control, pragma])
        }
        Err(e) => {
            tracing::error!(error = %e, "response not serialisable");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [(header::CACHE_CONTROL, NO_STORE), (header::PRAGMA, NO_CACHE)]
}

/// A public document, serialised once (`Cache-Control: public, max-age=N`). No `Vary: Origin`:
/// the CORS layer (`PublicCors`) gives every origin, and requests without one, the same answer.
fn document(body: Bytes, content_type: HeaderValue, cache_control: HeaderValue) -> Response {
    respond(
        StatusCode::OK,
        body.into(),
        &[(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache_control)],
    )
}

async fn discovery(State(state): State<AppState>) -> Response {
    document(state.oidc.discovery_document(), JSON, const { HeaderValue::from_static("public, max-age=3600") })
}

async fn jwks(State(state): State<AppState>) -> Response {
    // Short max-age: a newly published key must reach caches well before it signs
    // (keys.publish_delay_secs).
    document(
        state.oidc.keys.jwks_document(),
        const { HeaderValue::from_static("application/jwk-set+json") },
        const { HeaderValue::from_static("public, max-age=300") },
    )
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1: each part form-urlencoded).
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    // Auth schemes are case-insensitive (RFC 9110 §11.1).
    let Some((scheme, b64)) = v.split_once(' ') else { return Ok(None) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = STANDARD.decode(b64.trim()).map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
    let text = String::from_utf8(raw).map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
    let (id, secret) = text.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
    // Most ids and secrets need no decoding (ours are base64url): copied as they are. What
    // holds an escape or a separator is decoded as one form value, as before.
    let decode = |s: &str| -> String {
        if !s.contains(['%', '+', '&']) {
            return s.to_owned();
        }
        url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

fn form_error(r: FormRejection) -> OAuthError {
    match r {
        FormRejection::InvalidFormContentType(_) => {
            OAuthError::invalid_request("the body must be application/x-www-form-urlencoded")
        }
        // Our words, not the library's (which may echo input).
        _ => OAuthError::invalid_request("malformed form: a parameter is repeated or invalid"),
    }
}

/// Client errors at the token endpoint: 401 + `WWW-Authenticate: Basic` when Basic was used.
fn client_error(e: OAuthError, used_basic: bool) -> OAuthResponse {
    let challenge = (e.code == OAuthErrorCode::InvalidClient && used_basic).then_some(Challenge::Basic);
    OAuthResponse { error: e, challenge }
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenParams>, FormRejection>,
) -> Result<Response, OAuthResponse> {
    let (p, used_basic) = client_form(&headers, form, |p: &mut TokenParams| &mut p.auth)?;
    let res = state.oidc.token(&p).await.map_err(|e| client_error(e, used_basic))?;
    Ok(json_no_store(&res))
}

/// A client-authenticated form: the parameters, with the Basic credentials folded in; and
/// whether Basic was used (for the 401 challenge).
fn client_form<T>(
    headers: &HeaderMap,
    form: Result<Form<T>, FormRejection>,
    auth: fn(&mut T) -> &mut PresentedCredentials,
) -> Result<(T, bool), OAuthResponse> {
    let Form(mut p) = form.map_err(form_error)?;
    let basic = basic_credentials(headers).map_err(|e| client_error(e, true))?;
    let used_basic = basic.is_some();
    auth(&mut p).basic = basic;
    Ok((p, used_basic))
}

async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthResponse> {
    let bearer = |e: OAuthError| OAuthResponse { error: e, challenge: Some(Challenge::Bearer) };
    let header_token = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(v) if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") => Some(v[7..].trim().to_owned()),
        // Not Bearer: as if no credentials were sent (RFC 6750 §3.1).
        Some(_) => return Err(OAuthResponse::bearer_challenge("use Authorization: Bearer <access token>")),
        None => None,
    };
    // RFC 6750 §2.2: a form-encoded POST body may carry the token (never the query string).
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body_token = (method == Method::POST && is_form)
        .then(|| url::form_urlencoded::parse(&body).find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned()))
        .flatten()
        .filter(|t| !t.is_empty());
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => return Err(bearer(OAuthError::invalid_request("send the access token one way only"))),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(OAuthResponse::bearer_challenge("access token required")),
    };
    let claims = state.oidc.userinfo(&token).await.map_err(bearer)?;
    Ok(json_no_store(&claims))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct TokenTypeParams {
    token: Option<String>,
    // token_type_hint (RFC 7662 §2.1, RFC 7009 §2.1) is only an optimisation hint: the token's
    // shape tells its kind, so it is not read.
    #[serde(flatten)]
    auth: PresentedCredentials,
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenTypeParams>, FormRejection>,
) -> Result<Response, OAuthResponse> {
    let (p, used_basic) = client_form(&headers, form, |p: &mut TokenTypeParams| &mut p.auth)?;
    let out = state.oidc.introspect(p.auth, p.token.as_deref()).await.map_err(|e| client_error(e, used_basic))?;
    Ok(json_no_store(&out))
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenTypeParams>, FormRejection>,
) -> Result<Response, OAuthResponse> {
    let (p, used_basic) = client_form(&headers, form, |p: &mut TokenTypeParams| &mut p.auth)?;
    state.oidc.revoke(p.auth, p.token.as_deref()).await.map_err(|e| client_error(e, used_basic))?;
    Ok(respond(StatusCode::OK, axum::body::Body::empty(), &no_store()))
}
