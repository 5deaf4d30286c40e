//! Federated sign-in in the browser: `GET /sso/{id}` (a connection's login URL: off to the
//! organization's identity provider, `return_to` and `login_hint` optional) and
//! `GET /sso/oidc/callback` (the upstream OpenID Provider comes back: the sign-in finishes and
//! the browser goes on — to the authorization request it came from, typically).
//!
//! Failures are pages: 400 for an expired or foreign sign-in, 403 for an identity not admitted
//! (with why, in words the user can act on), 502 when the identity provider failed; the detailed
//! reason goes to the log with the error id, never to the page.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::common::finish_sign_in;
use super::safe_return_to;
use crate::federation::oidc::Finished;
use crate::federation::FederationError;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::session::SignInOrigin;
use crate::web::state::AppState;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SsoQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
    /// `login`: the provider must authenticate the user again (a portal's `prompt=login` or
    /// `max_age`), not reuse its own session.
    prompt: Option<String>,
}

fn web_error(e: FederationError) -> WebError {
    match e {
        FederationError::NotFound => WebError::NotFound,
        FederationError::StateInvalid => WebError::page(StatusCode::BAD_REQUEST, "sso.expired"),
        FederationError::NotAdmitted(_) => WebError::page(StatusCode::FORBIDDEN, "sso.not_admitted"),
        FederationError::Rejected(reason) => {
            tracing::warn!(%reason, "federated sign-in refused");
            WebError::page(StatusCode::FORBIDDEN, "sso.rejected")
        }
        FederationError::Upstream(reason) => {
            tracing::warn!(%reason, "the identity provider failed");
            WebError::page(StatusCode::BAD_GATEWAY, "sso.upstream")
        }
        FederationError::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

/// Where a browser goes to sign in through connection `id` (home-realm discovery sends it here).
pub fn sso_url(id: &str, return_to: &str, login_hint: Option<&str>, force: bool) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    if let Some(h) = login_hint {
        q.append_pair("login_hint", h);
    }
    if force {
        q.append_pair("prompt", "login");
    }
    format!("/sso/{id}?{}", q.finish())
}

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let q: SsoQuery = super::unique_params(query.unwrap_or_default().as_bytes())?;
    let return_to = safe_return_to(q.return_to.as_deref());
    let (session, created) = state.sessions.load_or_create(&headers).await?;
    let url = state
        .federation
        .begin(&id, &session.data.browser, &return_to, q.login_hint.as_deref(), q.prompt.as_deref() == Some("login"))
        .await
        .map_err(web_error)?;
    let mut res = Redirect::to(&url).into_response();
    if created {
        res.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&session));
    }
    Ok(res)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    state: String,
    code: Option<String>,
    error: Option<String>,
    #[allow(dead_code)]
    error_description: Option<String>,
    #[allow(dead_code)]
    iss: Option<String>,
    #[allow(dead_code)]
    session_state: Option<String>,
}

pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let q: CallbackQuery = super::unique_params(query.unwrap_or_default().as_bytes())?;
    let Some(session) = state.sessions.load(&headers).await? else {
        return Err(web_error(FederationError::StateInvalid));
    };
    let finished = state
        .federation
        .finish_oidc(&session.data.browser, &q.state, q.code.as_deref(), q.error.as_deref())
        .await
        .map_err(web_error)?;
    match finished {
        Finished::SignedIn(auth, return_to) => {
            finish_sign_in(&state, session, &auth, &SignInOrigin::new(ip, &headers), &safe_return_to(Some(&return_to)))
                .await
        }
        Finished::Tested(report) => super::orgs::sso_test_result(&state, &headers, &session, &report).await,
    }
}
