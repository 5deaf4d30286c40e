//! The sign-in page. Form contract (relied on by scripted clients; keep it stable):
//! `GET /login` renders `<form method="post" action="/login">` with inputs `email`, `password`,
//! hidden `csrf_token` and hidden `return_to`. `POST /login` answers
//! - 303 to `return_to` (a local path, default `/`) on success, with a new session cookie;
//! - 401 and the form with "Invalid email or password." for a wrong password or an unknown email
//!   (same page, same work);
//! - 429 with `Retry-After` while throttled; 403 for a bad CSRF token or an inactive account;
//!   400 when a field is missing; 503 + `Retry-After` when sign-ins are saturated.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};

use super::safe_return_to;
use crate::auth::{AuthError, PasswordLogin};
use crate::crypto::SecretString;
use crate::domain::UserStatus;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::metrics::LoginResult;
use crate::web::session::{self, check_csrf, DEVICE_COOKIE};
use crate::web::state::AppState;

#[derive(Serialize)]
pub struct LoginCtx {
    pub title: &'static str,
    pub csrf_token: String,
    pub email: String,
    pub return_to: String,
    pub error: Option<String>,
    /// "to continue to <client>" when signing in for an application.
    pub client_name: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
    /// `login`: show the form even to a signed-in user (OIDC prompt=login, max_age, switch account).
    prompt: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: SecretString,
    csrf_token: String,
    return_to: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let q: LoginQuery = super::unique_params(query.unwrap_or_default().as_bytes())?;
    let (session, created) = state.sessions.load_or_create(&headers).await?;
    let return_to = safe_return_to(q.return_to.as_deref());
    if session.data.user.is_some() && q.prompt.as_deref() != Some("login") {
        return Ok(Redirect::to(&return_to).into_response());
    }
    let client_name = super::authorize::client_name_for(&state, &return_to).await;
    let ctx = LoginCtx {
        title: "Sign in",
        csrf_token: session.data.csrf.clone(),
        email: q.login_hint.unwrap_or_default(),
        return_to,
        error: None,
        client_name,
    };
    let mut res = Html(state.templates.render("login.html", &ctx)?).into_response();
    if created {
        res.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&session));
    }
    Ok(res)
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &form.csrf_token, &headers)?;
    let Some(session) = session else { return Err(WebError::csrf()) };
    let return_to = safe_return_to(form.return_to.as_deref());
    let csrf = session.data.csrf.clone();
    let (st, csrf, email, rt) = (&state, csrf.as_str(), form.email.trim(), return_to.as_str());
    let again = move |status: StatusCode, error: String| form_again(st, csrf, email, rt, status, error);
    if form.email.trim().is_empty() || form.password.expose().is_empty() {
        return again(StatusCode::BAD_REQUEST, "Enter your email address and your password.".into()).await;
    }
    if form.password.expose().len() > state.settings.password.max_length || form.email.len() > 320 {
        return again(StatusCode::BAD_REQUEST, "Invalid email or password.".into()).await;
    }
    let device = session::cookie(&headers, DEVICE_COOKIE);
    let attempt = PasswordLogin { email: &form.email, password: &form.password, ip, device: device.as_deref() };
    match state.auth.login_password(attempt).await {
        Ok(done) => {
            state.metrics.login(LoginResult::Ok);
            tracing::info!(user_id = %done.user.id, %ip, "signed in");
            let (new, ended) = state.sessions.sign_in(session, &done).await?;
            if let Some(sid) = ended {
                // Another user signed in on this browser: the previous sign-in ends everywhere.
                tracing::info!("previous sign-in session replaced by another user's");
                state.oidc.end_session(&sid).await;
            }
            let mut res = Redirect::to(&return_to).into_response();
            res.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&new));
            if device.is_none() {
                let d = state.auth.issue_device_cookie(&form.email).await?;
                res.headers_mut().append(header::SET_COOKIE, state.sessions.device_cookie(&d));
            }
            Ok(res)
        }
        Err(AuthError::InvalidCredentials) => {
            state.metrics.login(LoginResult::Failed);
            tracing::info!(%ip, "sign-in failed");
            again(StatusCode::UNAUTHORIZED, "Invalid email or password.".into()).await
        }
        Err(AuthError::Throttled { retry_after_secs }) => {
            state.metrics.login(LoginResult::Throttled);
            tracing::warn!(%ip, retry_after_secs, "sign-in throttled");
            let mut res = again(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed attempts. Try again in {}.", human_secs(retry_after_secs)),
            )
            .await?;
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
        }
        Err(AuthError::NotActive(status)) => {
            state.metrics.login(LoginResult::Inactive);
            let msg = match status {
                UserStatus::Suspended => "This account is suspended. Contact your administrator.",
                _ => "This account is not activated yet. Use the activation link you received by email.",
            };
            again(StatusCode::FORBIDDEN, msg.into()).await
        }
        Err(e) => Err(e.into()),
    }
}

fn human_secs(s: i64) -> String {
    if s < 90 {
        format!("{} second{}", s.max(1), if s == 1 { "" } else { "s" })
    } else {
        let m = (s + 59) / 60;
        format!("{m} minutes")
    }
}

/// The sign-in form again, with an error (the client name is looked up only on this path).
async fn form_again(
    state: &AppState,
    csrf: &str,
    email: &str,
    return_to: &str,
    status: StatusCode,
    error: String,
) -> Result<Response, WebError> {
    let ctx = LoginCtx {
        title: "Sign in",
        csrf_token: csrf.to_owned(),
        email: email.to_owned(),
        return_to: return_to.to_owned(),
        error: Some(error),
        client_name: super::authorize::client_name_for(state, return_to).await,
    };
    Ok((status, Html(state.templates.render("login.html", &ctx)?)).into_response())
}
