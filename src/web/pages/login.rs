//! The sign-in page. Form contract (relied on by scripted clients; keep it stable):
//! `GET /login` renders `<form method="post" action="/login">` with inputs `email`, `password`,
//! hidden `csrf_token` and hidden `return_to`. `POST /login` answers
//! - 303 to `return_to` (a local path, default `/`) on success, with a new session cookie;
//! - 401 and the form with "Invalid email or password." for a wrong password or an unknown email
//!   (same page, same work);
//! - 429 with `Retry-After` while throttled; 403 for a bad CSRF token or an inactive account;
//!   400 when a field is missing; 503 + `Retry-After` when sign-ins are saturated.
//!
//! The page also links to registration (`#register-link`) and password reset (`#reset-link`),
//! and offers a sign-in link by email (`POST /login/link`, input `email`).
//!
//! Identifier-first (home-realm discovery): posting the email alone (or `login_hint` on `GET`)
//! continues to where that address signs in — the password step (the same form, the password
//! focused: 200, the same for known and unknown addresses), or, when the address's domain is
//! verified by an organization that requires SSO, a 403 saying to sign in through the
//! organization's identity provider (password sign-in is refused for its domains).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;

use super::common::{finish_sign_in, render};
use super::safe_return_to;
use crate::auth::{AuthError, PasswordLogin};
use crate::config::Registration;
use crate::crypto::SecretString;
use crate::domain::UserStatus;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::metrics::LoginResult;
use crate::web::session::{self, check_csrf, SignInOrigin, DEVICE_COOKIE};
use crate::web::state::AppState;
use crate::web::templates::Ui;

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
    /// `login`: show the form even to a signed-in user (OIDC prompt=login, max_age, switch account).
    prompt: Option<String>,
    /// A notice to show above the form (after verification, reset, deletion).
    notice: Option<String>,
    ui_locales: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: SecretString,
    csrf_token: String,
    return_to: Option<String>,
}

fn notice_key(n: Option<&str>) -> Option<&'static str> {
    match n? {
        "verified" => Some("login.verified"),
        "password_set" => Some("login.password_set"),
        "deleted" => Some("login.account_deleted"),
        "reauth" => Some("login.reauth"),
        _ => None,
    }
}

/// The page language: saved locale aside (nobody is signed in here), the switch, the relying
/// party's `ui_locales` (from the query or the pending interaction), the browser.
async fn login_ui(state: &AppState, headers: &HeaderMap, uri: &Uri, return_to: &str, ui_locales: Option<&str>) -> Ui {
    let from_interaction = match ui_locales {
        Some(_) => None,
        None => super::authorize::ui_locales_for(state, return_to).await,
    };
    let lang = crate::web::ui::negotiate(headers, None, ui_locales.or(from_interaction.as_deref()));
    Ui::new(lang, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/login"))
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let q: LoginQuery = super::unique_params(query.unwrap_or_default().as_bytes())?;
    let (session, created) = state.sessions.load_or_create(&headers).await?;
    let return_to = safe_return_to(q.return_to.as_deref());
    if session.data.user.is_some() && q.prompt.as_deref() != Some("login") {
        return Ok(Redirect::to(&return_to).into_response());
    }
    let hint = q.login_hint.as_deref().map(str::trim).filter(|h| !h.is_empty() && h.len() <= 320);
    let realm_org = match hint {
        Some(h) => realm_org(&state, h).await?,
        None => None,
    };
    if let Some(org) = &realm_org {
        if let Some(id) = connection_of(&state, org).await? {
            // Home-realm discovery: straight to the organization's identity provider.
            let force = q.prompt.as_deref() == Some("login");
            return Ok(Redirect::to(&super::sso::sso_url(&id, &return_to, hint, force)).into_response());
        }
    }
    let brand = match &realm_org {
        Some(o) => Some(o.clone()),
        None => super::authorize::org_for(&state, &return_to).await,
    };
    let ui = login_ui(&state, &headers, &uri, &return_to, q.ui_locales.as_deref()).await.branded(brand.as_ref());
    let notice = notice_key(q.notice.as_deref()).map(|k| ui.t(&state.templates, k).to_owned());
    let error = realm_org
        .as_ref()
        .filter(|o| o.require_sso)
        .map(|o| state.templates.tf(ui.lang, "login.sso_required", &[("org", &o.name)]));
    let step = if hint.is_some() { Step::Password } else { Step::Identifier };
    let mut res =
        form(&state, &ui, &session.data.csrf, hint.unwrap_or(""), &return_to, StatusCode::OK, error, notice, step)
            .await?;
    if created {
        res.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&session));
    }
    Ok(res)
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    posted: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(f) = posted?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let Some(session) = session else { return Err(WebError::csrf()) };
    let return_to = safe_return_to(f.return_to.as_deref());
    let email = f.email.trim();
    // Home-realm discovery: where this address signs in.
    let realm = if email.is_empty() || email.len() > 320 { None } else { realm_org(&state, email).await? };
    if let Some(org) = &realm {
        // Home-realm discovery: the email alone (or any sign-in an organization requires to be
        // federated) goes to the organization's identity provider.
        if f.password.expose().is_empty() || org.require_sso {
            if let Some(id) = connection_of(&state, org).await? {
                return Ok(Redirect::to(&super::sso::sso_url(&id, &return_to, Some(email), false)).into_response());
            }
        }
    }
    if let Some(org) = realm.as_ref().filter(|o| o.require_sso) {
        tracing::info!(org = %org.id, "password sign-in refused: the organization requires SSO");
        let ui = login_ui(&state, &headers, &uri, &return_to, None).await.branded(Some(org));
        let msg = state.templates.tf(ui.lang, "login.sso_required", &[("org", &org.name)]);
        return form(
            &state,
            &ui,
            &session.data.csrf,
            email,
            &return_to,
            StatusCode::FORBIDDEN,
            Some(msg),
            None,
            Step::Password,
        )
        .await;
    }
    if !email.is_empty() && f.password.expose().is_empty() {
        // Identifier first: the password step (the same for every address without SSO).
        let brand = match &realm {
            Some(o) => Some(o.clone()),
            None => super::authorize::org_for(&state, &return_to).await,
        };
        let ui = login_ui(&state, &headers, &uri, &return_to, None).await.branded(brand.as_ref());
        return form(&state, &ui, &session.data.csrf, email, &return_to, StatusCode::OK, None, None, Step::Password)
            .await;
    }
    // (status, message key, seconds to wait when throttled)
    let (status, key, retry_after) = if email.is_empty() || f.password.expose().is_empty() {
        (StatusCode::BAD_REQUEST, "login.missing", None)
    } else if f.password.expose().len() > state.settings.password.max_length || f.email.len() > 320 {
        (StatusCode::BAD_REQUEST, "login.invalid", None)
    } else {
        let device = session::cookie(&headers, DEVICE_COOKIE);
        let origin = SignInOrigin::new(ip, &headers);
        let attempt = PasswordLogin { email: &f.email, password: &f.password, ip, device: device.as_deref() };
        match state.auth.login_password(attempt).await {
            Ok(done) => {
                state.metrics.login(LoginResult::Ok);
                let mut res = finish_sign_in(&state, session, &done, &origin, &return_to).await?;
                if device.is_none() {
                    let d = state.auth.issue_device_cookie(&f.email).await?;
                    res.headers_mut().append(header::SET_COOKIE, state.sessions.device_cookie(&d));
                }
                return Ok(res);
            }
            Err(AuthError::InvalidCredentials) => {
                state.metrics.login(LoginResult::Failed);
                tracing::info!(%ip, "sign-in failed");
                state.accounts.record_login_failure(&f.email, ip, origin.user_agent.as_deref()).await;
                (StatusCode::UNAUTHORIZED, "login.invalid", None)
            }
            Err(AuthError::Throttled { retry_after_secs }) => {
                state.metrics.login(LoginResult::Throttled);
                tracing::warn!(%ip, retry_after_secs, "sign-in throttled");
                (StatusCode::TOO_MANY_REQUESTS, "login.throttled", Some(retry_after_secs))
            }
            Err(AuthError::NotActive(status)) => {
                state.metrics.login(LoginResult::Inactive);
                (
                    StatusCode::FORBIDDEN,
                    if status == UserStatus::Suspended { "login.suspended" } else { "login.pending" },
                    None,
                )
            }
            Err(e) => return Err(e.into()),
        }
    };
    // Only a failure renders a page (and needs the page's language).
    let ui = login_ui(&state, &headers, &uri, &return_to, None).await;
    let message = match retry_after {
        Some(secs) => {
            let wait = if secs < 90 {
                state.templates.tf(ui.lang, "login.seconds", &[("n", &secs.max(1).to_string())])
            } else {
                state.templates.tf(ui.lang, "login.minutes", &[("n", &((secs + 59) / 60).to_string())])
            };
            state.templates.tf(ui.lang, key, &[("wait", &wait)])
        }
        None => ui.t(&state.templates, key).to_owned(),
    };
    let mut res =
        form(&state, &ui, &session.data.csrf, email, &return_to, status, Some(message), None, Step::Password).await?;
    if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(res)
}

/// The organization that verified the domain of `email`, if any.
async fn realm_org(state: &AppState, email: &str) -> Result<Option<crate::domain::org::Org>, WebError> {
    match state.orgs.realm_of(email).await {
        Ok(crate::orgs::Realm::Org { org }) => Ok(Some(org)),
        Ok(crate::orgs::Realm::Local) => Ok(None),
        Err(crate::orgs::OrgError::Store(e)) => Err(e.into()),
        Err(e) => Err(WebError::Internal(anyhow::anyhow!("{e}"))),
    }
}

/// The connection a sign-in for `org` goes to, if it has one.
async fn connection_of(state: &AppState, org: &crate::domain::org::Org) -> Result<Option<String>, WebError> {
    match state.federation.connection_of_org(org.id).await {
        Ok(c) => Ok(c.map(|c| c.id.to_string())),
        Err(crate::federation::FederationError::Store(e)) => Err(e.into()),
        Err(e) => Err(WebError::Internal(anyhow::anyhow!("{e}"))),
    }
}

/// Which field the form puts the cursor in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Identifier,
    Password,
}

/// The sign-in form (the client name is looked up only when signing in for an application).
#[allow(clippy::too_many_arguments)]
async fn form(
    state: &AppState,
    ui: &Ui,
    csrf: &str,
    email: &str,
    return_to: &str,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
    step: Step,
) -> Result<Response, WebError> {
    let ctx = json!({
        "password_step": step == Step::Password && !email.is_empty(),
        "title": ui.t(&state.templates, "login.title"),
        "csrf_token": csrf,
        "email": email,
        "return_to": return_to,
        "error": error,
        "notice": notice,
        "client_name": super::authorize::client_name_for(state, return_to).await,
        "registration_open": state.accounts.registration() == Registration::Open,
        "webauthn": state.mfa.webauthn_enabled(),
    });
    render(state, ui, status, "login.html", &ctx)
}
