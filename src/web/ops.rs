//! Operations endpoints: `/healthz` (the process answers), `/readyz` (its stores answer),
//! `/metrics` (Prometheus) on a listener of its own (`server.metrics_listen`), so the public
//! listener never exposes it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// The metrics listener's router: `/metrics` only, on `server.metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(super::metrics::handler)).with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let t = Duration::from_secs(3);
    let db = matches!(tokio::time::timeout(t, state.stores.durable_health.ping()).await, Ok(Ok(())));
    let eph = matches!(tokio::time::timeout(t, state.stores.ephemeral.ping()).await, Ok(Ok(())));
    let status = if db && eph { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "status": if db && eph { "ready" } else { "not_ready" },
            "checks": {
                "database": { "status": word(db), "backend": state.stores.backend },
                "ephemeral": { "status": word(eph), "backend": state.stores.ephemeral_backend },
            }
        })),
    )
}
