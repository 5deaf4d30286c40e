//! Federated sign-in in the browser: `GET /sso/{id}` (a connection's login URL: off to the
//! organization's identity provider, `return_to` and `login_hint` optional),
//! `GET /sso/oidc/callback` (the upstream OpenID Provider comes back: the sign-in finishes and
//! the browser goes on — to the authorization request it came from, typically), and for SAML
//! connections `GET /saml/{id}/metadata` (the SP metadata, at the SP entityID) and
//! `POST /saml/{id}/acs` (the Assertion Consumer Service, HTTP-POST binding).
//!
//! The ACS is posted to from the IdP's site: a browser does not send our `SameSite=Lax` session
//! cookie with such a POST. When it arrives without the cookie, the ACS answers with a page that
//! posts the same fields again from our own origin (auto-submitted; a button without
//! JavaScript), which carries the cookie: the RelayState stays bound to the browser that asked.
//!
//! Failures are pages: 400 for an expired or foreign sign-in, 403 for an identity not admitted
//! (with why, in words the user can act on), 502 when the identity provider failed; the detailed
//! reason goes to the log with the error id, never to the page.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

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

const TOO_LARGE: &str = "SAMLResponse too large";

fn web_error(e: FederationError) -> WebError {
    // Refusals: the page shows an error id, the log has the reason under the same id.
    let refuse = |status: StatusCode, key: &'static str, reason: &str| {
        let w = WebError::refused(status, key);
        tracing::warn!(error_id = w.error_id().unwrap_or(""), %reason, "federated sign-in refused");
        w
    };
    match e {
        FederationError::NotFound => WebError::NotFound,
        FederationError::Rejected(reason) if reason == TOO_LARGE => {
            refuse(StatusCode::PAYLOAD_TOO_LARGE, "sso.rejected", &reason)
        }
        FederationError::StateInvalid => {
            refuse(StatusCode::BAD_REQUEST, "sso.expired", "unknown, used, expired or foreign request")
        }
        FederationError::NotAdmitted(a) => refuse(StatusCode::FORBIDDEN, "sso.not_admitted", &a.to_string()),
        FederationError::Rejected(reason) => refuse(StatusCode::FORBIDDEN, "sso.rejected", &reason),
        FederationError::Upstream(reason) => refuse(StatusCode::BAD_GATEWAY, "sso.upstream", &reason),
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

/// `GET /saml/{id}/metadata`: the SP metadata of a SAML connection (its entityID is this URL).
pub async fn saml_metadata(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, WebError> {
    let xml = state.federation.sp_metadata(&id).await.map_err(web_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/samlmetadata+xml"),
            (header::CONTENT_DISPOSITION, "inline; filename=\"guichet-sp-metadata.xml\""),
        ],
        xml,
    )
        .into_response())
}

#[derive(Serialize)]
struct RepostCtx<'a> {
    title: &'a str,
    action: &'a str,
    params: &'a [(String, String)],
}

/// `GET /saml/{id}/acs` (a reload, the language switch of an error page): nothing is posted;
/// the account page (or the sign-in) is where to go.
pub async fn saml_acs_get() -> Redirect {
    Redirect::to("/account")
}

/// `POST /saml/{id}/acs`: the IdP's response (`SAMLResponse`, `RelayState`).
pub async fn saml_acs(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let mut saml_response = None;
    let mut relay_state = None;
    let mut reposted = false;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "SAMLResponse" if saml_response.is_none() => saml_response = Some(v.into_owned()),
            "RelayState" if relay_state.is_none() => relay_state = Some(v.into_owned()),
            "guichet_repost" => reposted = true,
            "SAMLResponse" | "RelayState" => {
                return Err(web_error(FederationError::Rejected("repeated SAMLResponse or RelayState".into())))
            }
            _ => {}
        }
    }
    let Some(saml_response) = saml_response.filter(|r| !r.is_empty()) else {
        return Err(web_error(FederationError::Rejected("no SAMLResponse".into())));
    };
    if saml_response.len() > crate::federation::saml::MAX_RESPONSE_BYTES {
        return Err(web_error(FederationError::Rejected(TOO_LARGE.into())));
    }
    let session = state.sessions.load(&headers).await?;
    if session.is_none() && !reposted {
        // A cross-site POST without our cookie: post again from our origin.
        let ui = crate::web::ui::Ui::new(crate::web::ui::negotiate(&headers, None, None), "/");
        let mut params = vec![("SAMLResponse".to_owned(), saml_response)];
        if let Some(rs) = relay_state {
            params.push(("RelayState".to_owned(), rs));
        }
        params.push(("guichet_repost".to_owned(), "1".to_owned()));
        let action = format!("/saml/{id}/acs");
        let title = ui.t(&state.templates, "common.continue");
        let ctx = RepostCtx { title, action: &action, params: &params };
        return Ok(axum::response::Html(state.templates.page(&ui, "form_post.html", &ctx)?).into_response());
    }
    let finished = state
        .federation
        .finish_saml(&id, session.as_ref().map(|s| s.data.browser.as_str()), &saml_response, relay_state.as_deref())
        .await
        .map_err(web_error)?;
    // An IdP-initiated sign-in may come without a session of ours: one is made for it.
    let (session, created) = match session {
        Some(s) => (s, false),
        None => state.sessions.load_or_create(&headers).await?,
    };
    let cookie = state.sessions.set_cookie(&session);
    let mut res = match finished {
        Finished::SignedIn(auth, return_to) => {
            let origin = SignInOrigin::new(ip, &headers);
            finish_sign_in(&state, session, &auth, &origin, &safe_return_to(Some(&return_to))).await?
        }
        Finished::Tested(report) => super::orgs::sso_test_result(&state, &headers, &session, &report).await?,
    };
    if created && !res.headers().contains_key(header::SET_COOKIE) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}
