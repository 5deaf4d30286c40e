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
}

#[derive(OpenApi)]
#[openapi(paths(list_webhooks, create_webhook, delete_webhook, list_deliveries), components(schemas(EventTypeWire, WebhookWire, WebhookCreate, WebhookCreated, DeliveryWire)), tags((name = "webhooks")))]
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
