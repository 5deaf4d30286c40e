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
    let ctx = HomeCtx {
        title: "Your account",
        email: u.email.clone(),
        name: u.name.clone(),
        csrf_token: s.data.csrf.clone(),
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
    if let Some(u) = &s.data.user {
        tracing::info!(user_id = %u.id, "signed out");
    }
    state.sessions.destroy(s).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
    Ok(res)
}
