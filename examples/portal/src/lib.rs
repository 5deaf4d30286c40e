//! A demo customer portal signing in with Guichet: an OpenID Connect relying party (code flow
//! with PKCE, `client_secret_basic`, state and nonce checked, the ID token verified against
//! Guichet's JWKS by `openidconnect`), pages gated by the `permissions` of the access token
//! (an RFC 9068 JWT, verified with the same JWKS at every page), back-channel logout, live
//! revocation through Guichet's event stream, and an installable PWA shell.

mod events;
mod jwt;
mod pages;
mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdToken, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use events::DevKey;
use sessions::{PendingLogin, Session, Sessions};

const SESSION_COOKIE: &str = "portal_session";
const LOGIN_COOKIE: &str = "portal_login";

/// The portal's settings (see [`Config::from_env`]).
pub struct Config {
    /// Guichet's issuer URL (`PORTAL_ISSUER`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where to listen (`PORTAL_LISTEN`, default 127.0.0.1:7070).
    pub listen: SocketAddr,
    /// The portal's public URL, no trailing slash (`PORTAL_BASE_URL`, default
    /// `http://<listen>`): the redirect URI is `<base>/callback`, the post-logout one `<base>/`.
    pub base_url: String,
    /// An organization's developer key: follow its live event stream.
    pub devkey: Option<DevKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("OpenID discovery at {issuer} failed: {reason}")]
    Discovery { issuer: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

impl Config {
    /// From `PORTAL_ISSUER`, `PORTAL_CLIENT_ID`, `PORTAL_CLIENT_SECRET` (required),
    /// `PORTAL_LISTEN`, `PORTAL_BASE_URL`, and `PORTAL_DEVKEY` + `PORTAL_DEVSECRET` (both or none).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let get = |k: &str| var(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |k: &str| get(k).ok_or_else(|| Error::Config(format!("{k} is required")));
        let listen = match get("PORTAL_LISTEN") {
            Some(l) => l.parse().map_err(|_| Error::Config(format!("PORTAL_LISTEN {l:?}: not an address:port")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 7070)),
        };
        let base_url = get("PORTAL_BASE_URL").unwrap_or_else(|| format!("http://{listen}"));
        url::Url::parse(&base_url).map_err(|e| Error::Config(format!("PORTAL_BASE_URL {base_url:?}: {e}")))?;
        let issuer = required("PORTAL_ISSUER")?;
        url::Url::parse(&issuer).map_err(|e| Error::Config(format!("PORTAL_ISSUER {issuer:?}: {e}")))?;
        let devkey = match (get("PORTAL_DEVKEY"), get("PORTAL_DEVSECRET")) {
            (Some(key), Some(secret)) => Some(DevKey { key, secret }),
            (None, None) => None,
            _ => return Err(Error::Config("PORTAL_DEVKEY and PORTAL_DEVSECRET go together".into())),
        };
        Ok(Config {
            issuer,
            client_id: required("PORTAL_CLIENT_ID")?,
            client_secret: required("PORTAL_CLIENT_SECRET")?,
            listen,
            base_url: base_url.trim_end_matches('/').to_owned(),
            devkey,
        })
    }
}

/// What the portal reads from Guichet's tokens besides the standard claims.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct PortalClaims {
    sid: Option<String>,
}

impl AdditionalClaims for PortalClaims {}

type PortalIdToken = IdToken<PortalClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

struct Inner {
    cfg: Config,
    /// Discovery, token, JWKS: no redirects followed, 10 s per request.
    http: reqwest::Client,
    /// The event stream: no overall timeout (Guichet sends a comment every 15 s).
    stream_http: reqwest::Client,
    provider: ProviderMetadataWithLogout,
    keys: jwt::Keys,
    sessions: Sessions,
    secure_cookies: bool,
}

#[derive(Clone)]
struct Portal(Arc<Inner>);

impl std::ops::Deref for Portal {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Portal {
    /// The `openidconnect` client, with the key set as known now.
    fn client(&self) -> Result<Client, String> {
        let redirect = RedirectUrl::new(format!("{}/callback", self.cfg.base_url)).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            self.provider.clone().set_jwks(self.keys.current()),
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.cfg.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(s) = max_age {
            c.push_str(&format!("; Max-Age={s}"));
        }
        if self.secure_cookies {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Discovers Guichet (metadata and JWKS), opens the event stream when a developer key is
/// configured, and returns the portal's routes.
pub async fn build(cfg: Config) -> Result<Router, Error> {
    let discovery = |reason: String| Error::Discovery { issuer: cfg.issuer.clone(), reason };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| discovery(e.to_string()))?;
    let stream_http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| discovery(e.to_string()))?;
    let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| discovery(e.to_string()))?;
    let provider =
        ProviderMetadataWithLogout::discover_async(issuer, &http).await.map_err(|e| discovery(e.to_string()))?;
    let keys = jwt::Keys::new(provider.jwks_uri().clone(), provider.jwks().clone());
    let secure_cookies = cfg.base_url.starts_with("https://");
    let devkey = cfg.devkey.as_ref().map(|k| DevKey { key: k.key.clone(), secret: k.secret.clone() });
    let portal = Portal(Arc::new(Inner {
        cfg,
        http,
        stream_http,
        provider,
        keys,
        sessions: Sessions::default(),
        secure_cookies,
    }));
    if let Some(key) = devkey {
        // Opened before the portal answers anything: no event after start is missed.
        let first = match tokio::time::timeout(Duration::from_secs(10), events::connect(&portal, &key, None)).await {
            Ok(Ok(res)) => Some(res),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot open Guichet's event stream yet; retrying");
                None
            }
            Err(_) => None,
        };
        tokio::spawn(events::follow(portal.clone(), key, first));
    }
    Ok(router(portal))
}

/// Builds the portal and serves it on `cfg.listen` until SIGINT / SIGTERM.
pub async fn run(cfg: Config) -> Result<(), Error> {
    let addr = cfg.listen;
    let app = build(cfg).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr, source })?;
    tracing::info!(%addr, "portal listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn router(portal: Portal) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/orders", get(orders))
        .route("/galleries", get(galleries))
        .route("/billing", get(billing))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", get(logout_page).post(logout))
        .route("/backchannel-logout", axum::routing::post(backchannel_logout))
        .route("/manifest.webmanifest", get(manifest))
        .route("/sw.js", get(service_worker))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", pages::CSS) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", pages::APP_JS) }))
        .route("/icon.svg", get(|| async { asset("image/svg+xml", pages::ICON_SVG) }))
        .with_state(portal)
}

// ---- responses -------------------------------------------------------------------------------

const CSP: &str =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// A public resource: revalidated each time (the service worker keeps its own copy).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A page: public ones `no-cache`, everything tied to a session `no-store`.
fn html(status: StatusCode, body: String, private: bool) -> Response {
    let cache = if private { "no-store" } else { "no-cache" };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn with_cookie(mut r: Response, cookie: HeaderValue) -> Response {
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A local path to come back to after sign-in; anything else becomes `/`.
fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.contains("://")
                && !p.chars().any(char::is_control) =>
        {
            p.into()
        }
        _ => "/".into(),
    }
}

// ---- public pages ----------------------------------------------------------------------------

async fn home() -> Response {
    html(StatusCode::OK, pages::home(), false)
}

async fn manifest() -> Response {
    ([(header::CONTENT_TYPE, "application/manifest+json"), (header::CACHE_CONTROL, "no-cache")], pages::manifest())
        .into_response()
}

async fn service_worker() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        pages::service_worker(),
    )
        .into_response()
}

// ---- gated pages -----------------------------------------------------------------------------

async fn orders(State(p): State<Portal>, headers: HeaderMap) -> Response {
    gated(&p, &headers, "/orders", "Orders", "orders:read").await
}

async fn galleries(State(p): State<Portal>, headers: HeaderMap) -> Response {
    gated(&p, &headers, "/galleries", "Galleries", "galleries:read").await
}

async fn billing(State(p): State<Portal>, headers: HeaderMap) -> Response {
    gated(&p, &headers, "/billing", "Billing", "billing:read").await
}

/// Signed in (else to sign-in), with a valid access token (else sign-in again: Guichet answers
/// without a form while its session lasts), holding `permission` (else 403).
async fn gated(p: &Portal, headers: &HeaderMap, path: &str, title: &str, permission: &str) -> Response {
    let to_login = || redirect(&format!("/login?return_to={path}"));
    let Some(id) = cookie_value(headers, SESSION_COOKIE) else { return to_login() };
    let Some(session) = p.sessions.get(id) else { return to_login() };
    let claims = match access_claims(p, &session).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "access token no longer valid: signing in again");
            p.sessions.remove(id);
            return with_cookie(to_login(), p.cookie(SESSION_COOKIE, "", Some(0)));
        }
    };
    let permissions: Vec<&str> =
        claims.get("permissions").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if permissions.contains(&permission) {
        let org = claims.get("org").and_then(|o| o.get("name")).and_then(Value::as_str);
        html(StatusCode::OK, pages::gated(title, &session.display_name, org, permission), true)
    } else {
        html(StatusCode::FORBIDDEN, pages::forbidden(title, &session.display_name, permission), true)
    }
}

/// The session's access token, verified: signature (Guichet's JWKS), `typ` at+jwt, issuer,
/// audience (this client), expiry, and the same user as the ID token.
async fn access_claims(p: &Portal, s: &Session) -> Result<serde_json::Map<String, Value>, jwt::JwtError> {
    let c = p.keys.verify(&p.http, &s.access_token, "at+jwt").await?;
    jwt::check_common(&c, p.provider.issuer().as_str(), &p.cfg.client_id, true, jwt::now())?;
    if c.get("sub").and_then(Value::as_str) != Some(s.sub.as_str()) {
        return Err(jwt::JwtError::Claim("sub"));
    }
    Ok(c)
}

// ---- sign-in ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

async fn login(State(p): State<Portal>, Query(q): Query<LoginQuery>) -> Response {
    let client = match p.client() {
        Ok(c) => c,
        Err(e) => return html(StatusCode::INTERNAL_SERVER_ERROR, pages::problem(&e), true),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("org".into()))
        .add_scope(Scope::new("roles".into()))
        .set_pkce_challenge(challenge)
        .url();
    let flow = p.sessions.start_login(PendingLogin::new(state, nonce, verifier, local_path(q.return_to.as_deref())));
    with_cookie(redirect(url.as_str()), p.cookie(LOGIN_COOKIE, &flow, Some(600)))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(State(p): State<Portal>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let clear = p.cookie(LOGIN_COOKIE, "", Some(0));
    let fail = |status: StatusCode, msg: &str| with_cookie(html(status, pages::problem(msg), true), clear.clone());
    let Some(pending) = cookie_value(&headers, LOGIN_COOKIE).and_then(|id| p.sessions.take_login(id)) else {
        return fail(StatusCode::BAD_REQUEST, "This sign-in was not started here, or took too long.");
    };
    if q.state.as_deref() != Some(pending.state.secret().as_str()) {
        return fail(StatusCode::BAD_REQUEST, "The sign-in answer does not match the request (state).");
    }
    // RFC 9207: the answer names its issuer.
    if q.iss.as_deref().is_some_and(|iss| iss != p.provider.issuer().as_str()) {
        return fail(StatusCode::BAD_REQUEST, "The sign-in answer comes from another issuer.");
    }
    if let Some(err) = q.error {
        let detail = q.error_description.map(|d| format!(": {d}")).unwrap_or_default();
        return fail(StatusCode::BAD_REQUEST, &format!("Guichet refused the sign-in ({err}{detail})."));
    }
    let Some(code) = q.code else { return fail(StatusCode::BAD_REQUEST, "No authorization code.") };
    match complete_login(&p, code, pending.verifier, &pending.nonce).await {
        Ok(session) => {
            let id = p.sessions.create(session);
            let r = with_cookie(redirect(&pending.return_to), clear.clone());
            with_cookie(r, p.cookie(SESSION_COOKIE, &id, None))
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in failed");
            fail(StatusCode::BAD_GATEWAY, "The sign-in could not be completed.")
        }
    }
}

/// Code → tokens (PKCE verifier, client_secret_basic); the ID token verified (signature with the
/// JWKS, issuer, audience, expiry, nonce); the access token verified too.
async fn complete_login(
    p: &Portal,
    code: String,
    verifier: openidconnect::PkceCodeVerifier,
    nonce: &Nonce,
) -> Result<Session, String> {
    let client = p.client()?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(verifier)
        .request_async(&p.http)
        .await
        .map_err(|e| format!("token request: {e}"))?;
    let raw = tokens.id_token().ok_or("no ID token")?.to_string();
    p.keys.refresh_for(&p.http, &raw).await;
    let client = p.client()?;
    let id: PortalIdToken = raw.parse().map_err(|e| format!("ID token: {e}"))?;
    let claims = id.claims(&client.id_token_verifier(), nonce).map_err(|e| format!("ID token: {e}"))?;
    let sub = claims.subject().to_string();
    let display_name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .or_else(|| claims.email().map(|e| e.to_string()))
        .unwrap_or_else(|| sub.clone());
    let session = Session::new(
        sub,
        claims.additional_claims().sid.clone(),
        display_name,
        tokens.access_token().secret().clone(),
        raw,
    );
    access_claims(p, &session).await.map_err(|e| format!("access token: {e}"))?;
    Ok(session)
}

// ---- sign-out --------------------------------------------------------------------------------

async fn logout_page() -> Response {
    html(StatusCode::OK, pages::logout_form(), true)
}

/// Ends the portal session, then RP-initiated logout at Guichet (`id_token_hint`, back to `/`).
/// A POST: with `SameSite=Lax` cookies another site cannot sign someone out.
async fn logout(State(p): State<Portal>, headers: HeaderMap) -> Response {
    let clear = p.cookie(SESSION_COOKIE, "", Some(0));
    let session = cookie_value(&headers, SESSION_COOKIE).and_then(|id| p.sessions.remove(id));
    let (Some(session), Some(end)) = (session, p.provider.additional_metadata().end_session_endpoint.clone()) else {
        return with_cookie(redirect("/"), clear);
    };
    let mut req = LogoutRequest::from(end).set_client_id(ClientId::new(p.cfg.client_id.clone()));
    if let Ok(hint) = session.id_token.parse::<PortalIdToken>() {
        req = req.set_id_token_hint(&hint);
    }
    if let Ok(back) = PostLogoutRedirectUrl::new(format!("{}/", p.cfg.base_url)) {
        req = req.set_post_logout_redirect_uri(back);
    }
    with_cookie(redirect(req.http_get_url().as_str()), clear)
}

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Back-Channel Logout 1.0 §2.6: a logout token signed by Guichet ends the portal sessions of
/// its `sid` (or of its `sub`).
async fn backchannel_logout(
    State(p): State<Portal>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let refuse = |why: &str| {
        tracing::warn!(why, "logout token refused");
        (
            StatusCode::BAD_REQUEST,
            [(header::CACHE_CONTROL, "no-store"), (header::CONTENT_TYPE, "application/json")],
            r#"{"error":"invalid_request"}"#,
        )
            .into_response()
    };
    let Some(token) = form.get("logout_token") else { return refuse("no logout_token") };
    let c = match p.keys.verify(&p.http, token, "logout+jwt").await {
        Ok(c) => c,
        Err(e) => return refuse(&e.to_string()),
    };
    if let Err(e) = jwt::check_common(&c, p.provider.issuer().as_str(), &p.cfg.client_id, false, jwt::now()) {
        return refuse(&e.to_string());
    }
    if !c.get("events").and_then(|e| e.get(BACKCHANNEL_EVENT)).is_some_and(Value::is_object) {
        return refuse("events");
    }
    if c.get("jti").and_then(Value::as_str).is_none_or(str::is_empty) {
        return refuse("jti");
    }
    if c.contains_key("nonce") {
        return refuse("a logout token carries no nonce");
    }
    let sid = c.get("sid").and_then(Value::as_str);
    let sub = c.get("sub").and_then(Value::as_str);
    if sid.is_none() && sub.is_none() {
        return refuse("neither sid nor sub");
    }
    // Ending sessions twice is harmless: a replayed token changes nothing.
    let ended = p.sessions.end(sid, sub);
    tracing::info!(ended, "back-channel logout");
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_come_back_after_sign_in() {
        assert_eq!(local_path(Some("/billing")), "/billing");
        for bad in ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/a\r\nSet-Cookie: x", "orders"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
