//! The signed-in user's own developer keys (`/account/keys`), for their own apps: the admin API
//! with that user's rights. The same conventions as an organization's keys page
//! (`orgs/devkeys.rs`): creating a key and resetting its secret answer with the page itself
//! (200) showing the DevSecret this once (never in a URL, never again); a reset needs a recent
//! sign-in (older: to the sign-in page, then back here).

use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::common::{reauth, recent, render, ui};
use crate::devkeys::DevKeyError;
use crate::domain::devkey::{DevKey, SCOPES};
use crate::domain::User;
use crate::web::error::WebError;
use crate::web::session::Session;
use crate::web::state::AppState;
use crate::web::templates::Ui;

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

const PAGE: &str = "/account/keys";

/// What happened, shown above the list.
enum Shown {
    Nothing,
    Notice(&'static str),
    /// A DevSecret, this once: (notice, key, secret).
    Secret(&'static str, DevKey, String),
    Error(&'static str),
}

fn key_json(k: &DevKey, now: crate::domain::UnixTime) -> Value {
    json!({
        "id": k.id, "name": k.name, "scopes": k.scopes, "created": k.created_at.display_utc(),
        "last_used": k.last_used_at.map(|t| t.display_utc()), "expires": k.expires_at.map(|t| t.display_utc()),
        "expired": k.expired(now),
    })
}

fn key_error(e: DevKeyError) -> WebError {
    match e {
        DevKeyError::NotFound => WebError::NotFound,
        DevKeyError::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

async fn page(state: &AppState, ui: &Ui, s: &Session, u: &User, shown: Shown) -> Result<Response, WebError> {
    let now = state.clock.now();
    let keys = state.devkeys.list_for_user(u.id).await.map_err(key_error)?;
    let mut ctx = json!({
        "title": ui.t(&state.templates, "account_keys.title"),
        "devkeys": keys.iter().map(|k| key_json(k, now)).collect::<Vec<_>>(),
        "scopes": SCOPES,
        "api_base": format!("{}/api/v1", state.settings.server.issuer.trim_end_matches('/')),
        "csrf_token": s.data.csrf,
    });
    let status = match shown {
        Shown::Nothing => StatusCode::OK,
        Shown::Notice(k) => {
            ctx["notice"] = json!(ui.t(&state.templates, k));
            StatusCode::OK
        }
        Shown::Secret(k, key, secret) => {
            ctx["notice"] = json!(ui.t(&state.templates, k));
            ctx["devsecret"] = json!({"key": key.id, "name": key.name, "value": secret});
            StatusCode::OK
        }
        Shown::Error(k) => {
            ctx["error"] = json!(ui.t(&state.templates, k));
            StatusCode::BAD_REQUEST
        }
    };
    render(state, ui, status, "account_keys.html", &ctx)
}

/// `GET /account/keys` (`?notice=deleted` after a deletion).
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, PAGE);
    let ui = ui(&headers, &uri, Some(&u));
    let shown = match q.as_deref() {
        Some("notice=deleted") => Shown::Notice("account_keys.deleted"),
        _ => Shown::Nothing,
    };
    page(&state, &ui, &s, &u, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KeyForm {
    csrf_token: String,
    name: String,
    scope: String,
    expires_days: String,
}

/// `POST /account/keys` (`name`, `scope` = read | write, `expires_days` empty or 1 to 3650):
/// the page then shows the DevKey and its DevSecret.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<KeyForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, PAGE, &f.csrf_token);
    let ui = ui(&headers, &Uri::from_static(PAGE), Some(&u));
    let days = match f.expires_days.trim() {
        "" => Ok(None),
        d => d.parse::<i64>().map(Some).map_err(|_| DevKeyError::Invalid("expiry".into())),
    };
    let r = match days {
        Ok(days) => state.devkeys.create_for_user(u.id, &f.name, std::slice::from_ref(&f.scope), days).await,
        Err(e) => Err(e),
    };
    let shown = match r {
        Ok((key, secret)) => Shown::Secret("account_keys.created", key, secret),
        Err(DevKeyError::Invalid(m)) => {
            tracing::info!(reason = %m, "user key refused");
            Shown::Error("orgs.devkeys.error.invalid")
        }
        Err(e) => return Err(key_error(e)),
    };
    page(&state, &ui, &s, &u, shown).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /account/keys/{key}/reset`: a new DevSecret, shown once; the previous one stops
/// working at once. Needs a recent sign-in.
pub async fn reset(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, PAGE, &f.csrf_token);
    if !recent(&state, &s) {
        tracing::info!("user key reset refused: sign-in too old");
        return Ok(reauth(PAGE));
    }
    let ui = ui(&headers, &Uri::from_static(PAGE), Some(&u));
    let auth_time = s.data.user.as_ref().map_or(crate::domain::UnixTime(0), |x| x.auth_time);
    let window = i64::try_from(state.settings.accounts.recent_auth_secs).unwrap_or(300);
    match state.devkeys.reset_for_user(u.id, &key, auth_time, window).await {
        Ok((key, secret)) => page(&state, &ui, &s, &u, Shown::Secret("account_keys.reset_done", key, secret)).await,
        Err(DevKeyError::Reauthenticate) => Ok(reauth(PAGE)),
        Err(e) => Err(key_error(e)),
    }
}

/// `POST /account/keys/{key}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (_s, u) = posted_by_user!(state, headers, PAGE, &f.csrf_token);
    state.devkeys.delete_for_user(u.id, &key).await.map_err(key_error)?;
    Ok(Redirect::to("/account/keys?notice=deleted").into_response())
}
