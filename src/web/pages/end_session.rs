//! RP-Initiated Logout 1.0: `/end_session` (GET or POST). With an `id_token_hint` naming the
//! current session the user is signed out at once; otherwise they confirm on a page (with a
//! CSRF token), so no third party can sign them out by a link. Afterwards the browser goes to
//! the client's registered `post_logout_redirect_uri` (with `state`), or to a signed-out page.

use axum::extract::rejection::FormRejection;
use axum::extract::{RawForm, RawQuery, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};

use crate::oidc::logout::{EndSessionError, EndSessionParams, EndSessionRequest};
use crate::web::error::WebError;
use crate::web::session::{check_csrf, Session};
use crate::web::state::AppState;
use crate::web::templates::Ui;
use crate::web::ui::negotiate;

#[derive(Serialize)]
struct ConfirmCtx {
    title: String,
    email: String,
    client_name: Option<String>,
    csrf_token: String,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

#[derive(Serialize)]
struct SignedOutCtx {
    title: String,
}

pub async fn end_session(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<RawForm, axum::extract::rejection::RawFormRejection>,
) -> Result<Response, WebError> {
    let RawForm(body) = body?;
    let params: EndSessionParams = super::request_params(&method, query.as_deref(), &body)?;
    let req = state.oidc.validate_end_session(&params).await.map_err(end_session_error)?;
    let session = state.sessions.load(&headers).await?;
    let Some(user) = session.as_ref().and_then(|s| s.data.user.clone()) else {
        return finish(&state, &headers, &req, None).await;
    };
    let proven = req.hint_sid.as_deref() == Some(user.sid.as_str())
        || (req.hint_sid.is_none() && req.hint_sub.as_deref() == Some(user.id.to_string().as_str()));
    if proven {
        return finish(&state, &headers, &req, session).await;
    }
    let s = session.as_ref().ok_or_else(WebError::csrf)?;
    let account = state.accounts.find(user.id).await?.ok_or(WebError::NotFound)?;
    let lang = negotiate(&headers, account.locale.as_deref(), params.ui_locales.as_deref());
    let ui = Ui::new(lang, "/");
    let ctx = ConfirmCtx {
        title: ui.t(&state.templates, "logout.title").to_owned(),
        email: account.email.to_string(),
        client_name: req.client.as_ref().map(|c| c.name.clone()),
        csrf_token: s.data.csrf.clone(),
        client_id: req.client.as_ref().map(|c| c.client_id.to_string()).unwrap_or_default(),
        post_logout_redirect_uri: req.post_logout_redirect_uri.clone().unwrap_or_default(),
        state: req.state.clone().unwrap_or_default(),
    };
    Ok(Html(state.templates.page(&ui, "end_session.html", &ctx)?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    csrf_token: String,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConfirmForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    let params = EndSessionParams {
        client_id: Some(f.client_id),
        post_logout_redirect_uri: Some(f.post_logout_redirect_uri),
        state: Some(f.state),
        ..Default::default()
    };
    let req = state.oidc.validate_end_session(&params).await.map_err(end_session_error)?;
    if session.as_ref().and_then(|s| s.data.user.as_ref()).is_none() {
        return finish(&state, &headers, &req, None).await;
    }
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    finish(&state, &headers, &req, session).await
}

/// Ends the session (if any) and sends the browser on.
async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    req: &EndSessionRequest,
    session: Option<Session>,
) -> Result<Response, WebError> {
    let had_session = session.is_some();
    if let Some(s) = session {
        sign_out(state, s).await?;
    }
    let mut res = match req.redirect_url() {
        Some(url) => Redirect::to(&url).into_response(),
        None => {
            let ui = Ui::new(negotiate(headers, None, None), "/");
            let ctx = SignedOutCtx { title: ui.t(&state.templates, "logout.done_title").to_owned() };
            Html(state.templates.page(&ui, "signed_out.html", &ctx)?).into_response()
        }
    };
    if had_session {
        res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
    }
    Ok(res)
}

/// Destroys the browser session and ends the sign-in session everywhere (grants revoked,
/// back-channel logout sent).
pub async fn sign_out(state: &AppState, s: Session) -> Result<(), WebError> {
    let sid = s.data.user.as_ref().map(|u| (u.sid.clone(), u.id));
    state.sessions.destroy(s).await?;
    if let Some((sid, user_id)) = sid {
        tracing::info!(%user_id, "signed out");
        state.oidc.end_session(&sid).await;
    }
    Ok(())
}

fn end_session_error(e: EndSessionError) -> WebError {
    match e {
        EndSessionError::Page(m) => WebError::BadRequest(m),
        EndSessionError::Unavailable(s) => s.into(),
    }
}
