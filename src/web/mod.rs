//! HTTP adapter (axum): the only module that knows about HTTP, cookies and templates.

pub mod audit_context;
pub mod client_ip;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod oidc;
pub mod ops;
pub mod pages;
pub mod security;
pub mod serve;
pub mod session;
pub mod state;
pub mod templates;
pub mod ui;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use self::error::WebError;
use self::state::AppState;

pub fn router(state: AppState) -> Router {
    let s = &state.settings.server;
    Router::new()
        .merge(pages::router())
        .merge(ops::router())
        .merge(oidc::router())
        .merge(crate::api::router(state.clone()))
        .fallback(|| async { WebError::NotFound })
        // The audit context (client IP, user agent) of the entries the handlers write.
        .layer(middleware::from_fn_with_state(state.clone(), audit_context::scope))
        // Innermost first: the request guard (Host, body size and deadline, request deadline),
        // errors rendered, then security headers, metrics, tracing.
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn_with_state(state.clone(), error::render_errors))
        .layer(middleware::from_fn_with_state(state.clone(), security::headers))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(s.max_body_bytes))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
