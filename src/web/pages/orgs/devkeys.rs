//! The developer keys section of an organization (`/orgs/{slug}/keys`): its keys (DevKey, name,
//! scopes, created, last used, expiry), a new one (name, scope, optional expiry in days), a new
//! DevSecret, deletion with the key's name typed again. Same conventions as the other sections,
//! except that creating a key and resetting its secret answer with the page itself (200) showing
//! the DevSecret this once (as the webhooks section does): it never goes into a URL, and no later
//! page shows it. Resetting a secret needs a recent sign-in, as the account console's sensitive
//! changes do (`common::recent`; older: to the sign-in page, then back here).
//!
//! The service (`crate::devkeys`) authorizes every call (`admin_of` first here too, so another
//! organization's admin gets 404 and a plain member 403 before anything is read).

use super::*;
use crate::devkeys::DevKeyError;
use crate::domain::devkey::{DevKey, SCOPES};
use crate::web::pages::common::{reauth, recent};

pub async fn devkeys(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::DevKeys).await
}

/// What the keys page lists: the organization's keys, the scopes a new one may have, where the
/// API is.
pub(super) async fn devkeys_context(state: &AppState, u: &User, org: &Org, ctx: &mut Value) -> Result<(), WebError> {
    let now = state.clock.now();
    let keys = state.devkeys.list(Actor::of(u), &org.slug).await.map_err(devkey_error)?;
    ctx["devkeys"] = keys.iter().map(|k| key_json(k, now)).collect::<Vec<_>>().into();
    ctx["scopes"] = json!(SCOPES);
    ctx["api_base"] = json!(format!("{}/api/v1", state.settings.server.issuer.trim_end_matches('/')));
    Ok(())
}

fn key_json(k: &DevKey, now: crate::domain::UnixTime) -> Value {
    json!({
        "id": k.id, "name": k.name, "scopes": k.scopes, "created": k.created_at.display_utc(),
        "last_used": k.last_used_at.map(|t| t.display_utc()), "expires": k.expires_at.map(|t| t.display_utc()),
        "expired": k.expired(now),
    })
}

/// A key error as a page error (outside a form).
fn devkey_error(e: DevKeyError) -> WebError {
    match e {
        DevKeyError::NotFound => WebError::NotFound,
        DevKeyError::Org(o) => web_error(o),
        DevKeyError::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DevKeyForm {
    csrf_token: String,
    name: String,
    scope: String,
    expires_days: String,
}

/// `POST /orgs/{slug}/keys` (`name`, `scope` = read | write, `expires_days` empty or 1 to 3650):
/// the page then shows the DevKey and its DevSecret.
pub async fn devkey_create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<DevKeyForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = match f.expires_days.trim() {
        "" => Ok(None),
        d => d.parse::<i64>().map(Some).map_err(|_| DevKeyError::Invalid("expiry".into())),
    };
    let r = match r {
        Ok(days) => state.devkeys.create(Actor::of(&u), &org.slug, &f.name, std::slice::from_ref(&f.scope), days).await,
        Err(e) => Err(e),
    };
    let outcome = r.map(|(key, secret)| Done::Secret {
        notice: "devkey_created",
        field: "devsecret",
        shown: json!({"key": key.id, "name": key.name, "value": secret}),
    });
    devkey_answer(&state, &headers, &s, &u, &org, outcome).await
}

/// `POST /orgs/{slug}/keys/{key}/reset`: a new DevSecret, shown once; the previous one stops
/// working at once. Needs a recent sign-in.
pub async fn devkey_reset(
    State(state): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    if !recent(&state, &s) {
        tracing::info!(org = %org.id, "key reset refused: sign-in too old");
        return Ok(reauth(&Section::DevKeys.url(&org)));
    }
    let r = state.devkeys.reset(Actor::of(&u), &org.slug, &key).await;
    let outcome = r.map(|(key, secret)| Done::Secret {
        notice: "devkey_reset",
        field: "devsecret",
        shown: json!({"key": key.id, "name": key.name, "value": secret}),
    });
    devkey_answer(&state, &headers, &s, &u, &org, outcome).await
}

/// `POST /orgs/{slug}/keys/{key}/delete` (`confirm`: the key's name).
pub async fn devkey_delete(
    State(state): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<DeleteForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.devkeys.delete_confirmed(Actor::of(&u), &org.slug, &key, &f.confirm).await;
    devkey_answer(&state, &headers, &s, &u, &org, r.map(|_| Done::Notice("devkey_deleted"))).await
}

/// The answer to a key form (`secret_answer`): refusals of the form are shown with it.
async fn devkey_answer(
    state: &AppState,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    org: &Org,
    outcome: Result<Done, DevKeyError>,
) -> Result<Response, WebError> {
    let outcome = outcome.map_err(|e| {
        tracing::info!(org = %org.id, error = %e, "key form refused");
        match &e {
            DevKeyError::Invalid(m) if m == "confirm" => Ok("orgs.devkeys.error.confirm"),
            DevKeyError::Invalid(_) => Ok("orgs.devkeys.error.invalid"),
            _ => Err(devkey_error(e)),
        }
    });
    secret_answer(state, headers, s, u, org, Section::DevKeys, outcome).await
}
