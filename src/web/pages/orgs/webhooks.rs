//! The webhooks section of an organization (`/orgs/{slug}/webhooks`): its webhooks (URL, events,
//! the latest delivery attempts, each redeliverable), a new one (URL and events), a new secret,
//! deletion. Same conventions as the other sections, except that creating a webhook and rotating
//! its secret answer with the page itself (200) showing the secret this once: it never goes into
//! a URL, and no later page shows it.
//!
//! The service (`crate::webhooks`) authorizes every call (`admin_of` first here too, so another
//! organization's admin gets 404 and a plain member 403 before anything is read).

use super::*;
use crate::domain::webhook::{DeliveryAttempt, EVENT_TYPES};
use crate::webhooks::WebhookError;

/// How many delivery attempts the page lists per webhook (newest first).
const LOG_SIZE: i64 = 20;

pub async fn webhooks(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Webhooks).await
}

/// What the webhooks page lists: the organization's webhooks with their latest delivery attempts,
/// and the event types a new one may ask for.
pub(super) async fn webhooks_context(state: &AppState, u: &User, org: &Org, ctx: &mut Value) -> Result<(), WebError> {
    let actor = Actor::of(u);
    let slug = org.slug.as_str();
    let now = state.clock.now();
    let mut list = Vec::new();
    for w in state.webhooks.list(actor, slug).await.map_err(webhook_error)? {
        let id = w.id.to_string();
        let log = state.webhooks.deliveries(actor, slug, &id, LOG_SIZE).await.map_err(webhook_error)?;
        list.push(json!({
            "id": id, "url": w.url, "events": w.events, "created": w.created_at.display_utc(),
            "previous_until": w.previous_until.filter(|t| *t > now).map(|t| t.display_utc()),
            "deliveries": log.iter().map(delivery_json).collect::<Vec<_>>(),
        }));
    }
    ctx["webhooks"] = json!(list);
    // `key`: the event's description in the catalogue (`orgs.webhooks.event_help`).
    ctx["event_types"] =
        EVENT_TYPES.iter().map(|e| json!({"type": e, "key": e.replace('.', "_")})).collect::<Vec<_>>().into();
    Ok(())
}

fn delivery_json(d: &DeliveryAttempt) -> Value {
    json!({
        "id": d.id.to_string(), "at": d.at.display_utc(), "at_iso": d.at.rfc3339(),
        "event_type": d.event_type, "event_id": d.event_id, "attempt": d.attempt.to_string(),
        "status": d.status.map(|s| s.to_string()), "error": d.error.clone().unwrap_or_default(),
        "ok": d.error.is_none(), "duration_ms": d.duration_ms.to_string(),
    })
}

/// A webhook error as a page error (outside a form).
fn webhook_error(e: WebhookError) -> WebError {
    match e {
        WebhookError::NotFound => WebError::NotFound,
        WebhookError::Org(o) => web_error(o),
        WebhookError::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

/// `POST /orgs/{slug}/webhooks` (`url`, repeated `events`): the URL must pass the outbound
/// policy and echo the validation challenge, or nothing is saved; the page then shows the secret.
pub async fn webhook_create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Result<Response, WebError> {
    let f = Fields::parse(&raw);
    let (s, u) = posted_by_user!(state, headers, "/orgs", f.one("csrf_token"));
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.webhooks.create(Actor::of(&u), &org.slug, f.one("url"), &f.all("events")).await;
    let outcome = r.map(|(w, secret)| Done::Secret {
        notice: "webhook_created",
        field: "secret",
        shown: json!({"value": secret, "url": w.url}),
    });
    webhook_answer(&state, &headers, &s, &u, &org, outcome).await
}

/// `POST /orgs/{slug}/webhooks/{id}/rotate`: a new secret, shown once; the previous one still
/// signs for a day.
pub async fn webhook_rotate(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.webhooks.rotate_secret(Actor::of(&u), &org.slug, &id).await;
    let outcome = r.map(|(w, secret)| Done::Secret {
        notice: "webhook_rotated",
        field: "secret",
        shown: json!({"value": secret, "url": w.url}),
    });
    webhook_answer(&state, &headers, &s, &u, &org, outcome).await
}

/// `POST /orgs/{slug}/webhooks/{id}/delete`.
pub async fn webhook_delete(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.webhooks.delete(Actor::of(&u), &org.slug, &id).await;
    webhook_answer(&state, &headers, &s, &u, &org, r.map(|_| Done::Notice("webhook_deleted"))).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RedeliverForm {
    csrf_token: String,
    delivery: String,
}

/// `POST /orgs/{slug}/webhooks/redeliver` (`delivery`: a logged attempt's id): its event again,
/// same event id, as a new job.
pub async fn webhook_redeliver(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<RedeliverForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = match f.delivery.trim().parse::<i64>() {
        Ok(d) => state.webhooks.redeliver(Actor::of(&u), &org.slug, d).await,
        Err(_) => Err(WebhookError::NotFound),
    };
    webhook_answer(&state, &headers, &s, &u, &org, r.map(|_| Done::Notice("webhook_redelivered"))).await
}

/// The answer to a webhook form (`secret_answer`): a refused URL or events are shown with it.
async fn webhook_answer(
    state: &AppState,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    org: &Org,
    outcome: Result<Done, WebhookError>,
) -> Result<Response, WebError> {
    let outcome = outcome.map_err(|e| {
        tracing::info!(org = %org.id, error = %e, "webhook form refused");
        match &e {
            WebhookError::UrlRefused => Ok("orgs.webhooks.error.url_refused"),
            WebhookError::Invalid(_) => Ok("orgs.webhooks.error.events"),
            _ => Err(webhook_error(e)),
        }
    });
    secret_answer(state, headers, s, u, org, Section::Webhooks, outcome).await
}
