//! The language of a request and the language switch (`GET /lang?lang=fr&return_to=/path`).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::WebError;
use super::session::cookie;
use super::state::AppState;
pub use super::templates::Ui;
use crate::i18n::{Lang, LANG_COOKIE};

/// The page language: the user's saved locale, the switch's cookie, `ui_locales`, then
/// `Accept-Language`.
pub fn negotiate(headers: &HeaderMap, saved: Option<&str>, ui_locales: Option<&str>) -> Lang {
    let chosen = cookie(headers, LANG_COOKIE);
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    Lang::negotiate(saved, chosen.as_deref(), ui_locales, accept)
}

pub fn ui_of_request(headers: &HeaderMap, uri: &Uri, saved: Option<&str>) -> Ui {
    let here = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ui::new(negotiate(headers, saved, None), here)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct LangQuery {
    lang: String,
    return_to: Option<String>,
}

/// The switch: remembers the choice in a cookie (a year) and, for a signed-in user, in the
/// profile; then back to the page.
pub async fn switch(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let q: LangQuery = super::pages::unique_params(query.unwrap_or_default().as_bytes())?;
    let Some(lang) = Lang::parse(&q.lang) else { return Err(WebError::BadRequest("Unknown language.".into())) };
    if let Some(s) = state.sessions.load(&headers).await? {
        if let Some(u) = &s.data.user {
            state.accounts.set_locale(u.id, lang).await?;
        }
    }
    let back = super::pages::safe_return_to(q.return_to.as_deref());
    let mut res = Redirect::to(&back).into_response();
    let secure = if state.settings.issuer_is_https() { "; Secure" } else { "" };
    let c = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{secure}", lang.code());
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}
