//! An organization's webhooks and their delivery log.
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use utoipa::OpenApi;

use super::*;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/webhooks", get(list_webhooks).post(create_webhook))
        .route("/orgs/{org}/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/orgs/{org}/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/orgs/{org}/webhooks/{id}/secret", axum::routing::post(rotate_webhook_secret))
        .route("/orgs/{org}/webhooks/{id}/deliveries/{delivery}/redeliver", axum::routing::post(redeliver))
}

#[derive(OpenApi)]
#[openapi(paths(list_webhooks, create_webhook, delete_webhook, list_deliveries, rotate_webhook_secret, redeliver), components(schemas(EventTypeWire, WebhookWire, WebhookCreate, WebhookCreated, WebhookSecret, DeliveryWire)), tags((name = "webhooks")))]
pub(super) struct Doc;

#[utoipa::path(get, path = "/api/v1/orgs/{org}/webhooks", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<WebhookWire>, description = "The organization's webhooks"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_webhooks(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<WebhookWire>>> {
    let org = org_of(&state, &c, &org, false).await?;
    let list = state.webhooks.list(c.actor, &org.id.to_string()).await?;
    Ok(Json(list.iter().map(WebhookWire::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/webhooks", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = WebhookCreate,
    responses((status = 201, body = WebhookCreated, description = "Created; the secret is shown this once"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Unknown event, or a URL that cannot be used (one message for all)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_webhook(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let body: WebhookCreate = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let events: Vec<String> = body.events.iter().map(|e| e.name()).collect();
    let (w, secret) = state.webhooks.create(c.actor, &org.id.to_string(), &body.url, &events).await?;
    Ok((StatusCode::CREATED, Json(WebhookCreated { webhook: WebhookWire::from(&w), secret })).into_response())
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/webhooks/{id}", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The webhook id")),
    responses((status = 204, description = "Gone (whether or not it was there)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_webhook(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    match state.webhooks.delete(c.actor, &org.id.to_string(), &id).await {
        Ok(()) | Err(WebhookError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/webhooks/{id}/deliveries", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The webhook id"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)")),
    responses((status = 200, body = Vec<DeliveryWire>, description = "Newest first"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_deliveries(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<DeliveryWire>>> {
    let org = org_of(&state, &c, &org, false).await?;
    let limit = i64::try_from(page_query(raw.as_deref())?.limit).unwrap_or(50);
    let list = state.webhooks.deliveries(c.actor, &org.id.to_string(), &id, limit).await?;
    Ok(Json(list.iter().map(DeliveryWire::from).collect()))
}

/// A webhook's new signing secret (shown this once).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    pub webhook: WebhookWire,
    /// `whsec_...` (Standard Webhooks). The previous secret also signs until
    /// `webhook.previous_secret_until` (a day), while receivers switch over.
    pub secret: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/webhooks/{id}/secret", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The webhook id")),
    responses((status = 200, body = WebhookSecret, description = "A new secret, shown this once; the previous one also signs for a day"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let (w, secret) = state.webhooks.rotate_secret(c.actor, &org.id.to_string(), &id).await?;
    let mut res = Json(WebhookSecret { webhook: WebhookWire::from(&w), secret }).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

/// How far back a delivery may be sent again: among the webhook's latest attempts.
const REDELIVER_WINDOW: i64 = 500;

#[utoipa::path(post, path = "/api/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The webhook id"),
        ("delivery" = i64, Path, description = "A delivery attempt's `id` (one of the webhook's latest 500)")),
    responses((status = 202, description = "Queued: the same event (same `webhook-id`) is sent again"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, another webhook's or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn redeliver(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id, delivery)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let org_ref = org.id.to_string();
    // The delivery must be this webhook's (the service checks the organization only).
    let delivery: i64 = delivery.trim().parse().map_err(|_| ApiError::not_found())?;
    let recent = state.webhooks.deliveries(c.actor, &org_ref, &id, REDELIVER_WINDOW).await?;
    if !recent.iter().any(|d| d.id == delivery) {
        return Err(ApiError::not_found());
    }
    state.webhooks.redeliver(c.actor, &org_ref, delivery).await?;
    Ok(StatusCode::ACCEPTED)
}
