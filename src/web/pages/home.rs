//! The signed-in landing page and sign-out (a POST with CSRF token, confirmed from a GET page so
//! that no link or image can sign a user out).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};

use crate::web::error::WebError;
use crate::web::session::check_csrf;
use crate::web::state::AppState;

#[derive(Serialize)]
pub struct HomeCtx {
    pub title: &'static str,
    pub email: String,
    pub name: Option<String>,
    pub csrf_token: String,
    /// Third-party applications the user consented to (revocable here).
    pub apps: Vec<AppCtx>,
}

#[derive(Serialize)]
pub struct AppCtx {
    pub client_id: String,
    pub name: String,
    pub scope: String,
}

#[derive(Serialize)]
pub struct LogoutCtx {
    pub title: &'static str,
    pub email: String,
    pub csrf_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let Some(s) = state.sessions.load(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(u) = &s.data.user else {
        return Ok(Redirect::to("/login").into_response());
    };
    let apps = state
        .stores
        .consents
        .consents_of(u.id)
        .await?
        .into_iter()
        .map(|(c, scope, _)| AppCtx { client_id: c.client_id.to_string(), name: c.name, scope })
        .collect();
    let ctx = HomeCtx {
        title: "Your account",
        email: u.email.clone(),
        name: u.name.clone(),
        csrf_token: s.data.csrf.clone(),
        apps,
    };
    Ok(Html(state.templates.render("home.html", &ctx)?).into_response())
}

pub async fn confirm_logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let Some(s) = state.sessions.load(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(u) = &s.data.user else {
        return Ok(Redirect::to("/login").into_response());
    };
    let ctx = LogoutCtx { title: "Sign out", email: u.email.clone(), csrf_token: s.data.csrf.clone() };
    Ok(Html(state.templates.render("logout.html", &ctx)?).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let Some(s) = state.sessions.load(&headers).await? else {
        // Nothing to end (already signed out or expired).
        let mut res = Redirect::to("/login").into_response();
        res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
        return Ok(res);
    };
    check_csrf(Some(&s), &form.csrf_token, &headers)?;
    super::end_session::sign_out(&state, s).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
    Ok(res)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeForm {
    csrf_token: String,
    client_id: String,
}

/// Withdraws consent for an application: the consent is forgotten and every grant the user
/// gave it is revoked (its refresh and access tokens stop working).
pub async fn revoke_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let s = state.sessions.load(&headers).await?;
    check_csrf(s.as_ref(), &form.csrf_token, &headers)?;
    let Some(u) = s.as_ref().and_then(|s| s.data.user.as_ref()) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let client = crate::domain::ClientId::new(form.client_id);
    state.stores.consents.delete_consent(u.id, &client).await?;
    state.stores.grants.revoke_user_client_grants(u.id, &client, state.clock.now()).await?;
    tracing::info!(user_id = %u.id, client_id = %client, "consent withdrawn");
    Ok(Redirect::to("/").into_response())
}
