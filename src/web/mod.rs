//! HTTP adapter (axum): the only module that knows about HTTP, cookies and templates.

pub mod access_log;
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
use axum::middleware;
use axum::Router;
use tower::ServiceBuilder;

use self::error::WebError;
use self::state::AppState;

/// The application: routes, then one middleware stack around the whole router.
///
/// The stack wraps the router as one service instead of every route (`Router::layer`): axum
/// clones a route's service for each request, and with the layers on every route that clone
/// (and its drop) went through nine nested boxed services per request, about a fifth of the
/// instructions of a client_credentials request (callgrind, docs/PERFORMANCE.md). Only what
/// needs the matched route stays on the routes: `metrics::remember_route`.
pub fn router(state: AppState) -> Router {
    let s = &state.settings.server;
    let routes = Router::new()
        .merge(pages::router())
        .merge(ops::router())
        .merge(oidc::router())
        .merge(crate::api::router(state.clone()))
        .route_layer(middleware::from_fn(metrics::remember_route))
        .fallback(|| async { WebError::NotFound })
        .with_state(state.clone());
    // Outermost first: body limit, then the edge (`edge`): the request id and the access log,
    // metrics, security headers, errors rendered, the request guard (Host, body size and
    // deadline, request deadline), and innermost the audit context (client IP, user agent) of
    // the entries the handlers write.
    let app = ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(s.max_body_bytes))
        .layer(middleware::from_fn_with_state(state, edge))
        .service(routes);
    Router::new().fallback_service(app)
}

/// The edge of every request, outermost first: the request id and the access log, metrics,
/// security headers, errors rendered, the request guard, the audit context. Each step takes the
/// next as a closure, so the six make one future: one middleware (one boxed future, one clone of
/// the router) per request instead of nested `from_fn` layers, each cloning the service below it
/// and boxing its future (callgrind, docs/PERFORMANCE.md).
async fn edge(
    axum::extract::State(state): axum::extract::State<AppState>,
    client_ip::ClientIp(ip): client_ip::ClientIp,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let state = &state;
    access_log::record(req, |req| {
        metrics::track(state, req, |req| {
            security::headers(state, req, |req| {
                error::render_errors(state, req, |req| {
                    guard::guard(state, req, |req| audit_context::scope(ip, req, |req| next.run(req)))
                })
            })
        })
    })
    .await
}
