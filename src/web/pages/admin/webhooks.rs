//! `GET /admin/webhooks`: every organization's webhooks with the state of their last delivery
//! attempt; each links to its organization's webhooks page (`/orgs/{slug}/webhooks`), which
//! holds the delivery log, redelivery, secret rotation and deletion.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::{base_ctx, page, page_ui, Section};
use crate::orgs::Actor;
use crate::web::error::WebError;
use crate::web::pages::orgs::web_error;
use crate::web::state::AppState;
use crate::webhooks::WebhookError;

fn webhook_error(e: WebhookError) -> WebError {
    match e {
        WebhookError::NotFound => WebError::NotFound,
        WebhookError::Org(o) => web_error(o),
        WebhookError::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = platform_admin!(state, headers, "/admin/webhooks");
    let ui = page_ui(&headers, &uri, &u);
    let mut orgs: Vec<_> =
        state.orgs.list(Actor::Platform).await.map_err(web_error)?.into_iter().map(|m| m.org).collect();
    orgs.sort_by_key(|o| o.name.to_lowercase());
    let mut rows = Vec::new();
    for org in &orgs {
        for w in state.webhooks.list(Actor::Platform, &org.slug).await.map_err(webhook_error)? {
            let id = w.id.to_string();
            let last = state.webhooks.deliveries(Actor::Platform, &org.slug, &id, 1).await.map_err(webhook_error)?;
            let last = last.first().map(|d| {
                json!({
                    "ok": d.error.is_none(), "at": d.at.display_utc(), "at_iso": d.at.rfc3339(),
                    "event_type": d.event_type, "status": d.status.map(|s| s.to_string()),
                    "error": d.error.clone().unwrap_or_default(), "attempt": d.attempt.to_string(),
                })
            });
            rows.push(json!({
                "id": id, "url": w.url, "events": w.events, "org": {"slug": org.slug, "name": org.name},
                "created": w.created_at.display_utc(), "last": last,
            }));
        }
    }
    let mut ctx = base_ctx(&state, &ui, &s, Section::Webhooks, None);
    ctx["webhooks"] = json!(rows);
    page(&state, &ui, StatusCode::OK, "admin_webhooks.html", &ctx)
}
