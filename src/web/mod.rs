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
pub mod route_layers;
pub mod security;
pub mod serve;
pub mod session;
pub mod state;
pub mod templates;
pub mod ui;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use axum::Router;
use tower::{Layer, Service, ServiceExt};

use self::error::WebError;
use self::state::AppState;

/// The application: the routes, and around them one service, the edge (`edge`), outermost the
/// body limit of axum's extractors.
///
/// The middleware wraps the router once instead of every route (`Router::layer`): axum clones a
/// route's service for each request, and with the layers on every route that clone (and its
/// drop) went through nine nested boxed services per request, about a fifth of the instructions
/// of a client_credentials request (callgrind, docs/PERFORMANCE.md). Only what needs the matched
/// route stays on the routes (`route_layers`, plain services too). The edge is a service of its
/// own, not `middleware::from_fn` around a second router: that boxed a clone of the routes per
/// request, and the outer router's dispatch to its fallback cloned a boxed service again.
pub fn router(state: AppState) -> App {
    let max_body = state.settings.server.max_body_bytes;
    let routes = Router::new()
        .merge(pages::router())
        .merge(ops::router())
        .merge(oidc::router())
        .merge(crate::api::router(state.clone()))
        .route_layer(route_layers::RememberRoute)
        .fallback(|| async { WebError::NotFound })
        .with_state(state.clone());
    DefaultBodyLimit::max(max_body).layer(Edge { state, routes })
}

/// What `web::serve` serves: the edge under the body limit.
pub type App = <DefaultBodyLimit as Layer<Edge>>::Service;

/// The edge around the routes (`router`).
#[derive(Clone)]
pub struct Edge {
    state: AppState,
    routes: Router,
}

impl<B> Service<axum::http::Request<B>> for Edge
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let Self { state, routes } = self.clone();
        Box::pin(async move { Ok(edge(state, routes, req.map(Body::new)).await) })
    }
}

/// The edge of every request, outermost first: the request id and the access log, metrics,
/// security headers, errors rendered, the request guard, the audit context. Each step takes the
/// next as a closure, so the six make one future, boxed once per request (`Edge::call`).
async fn edge(state: AppState, routes: Router, req: Request) -> Response {
    let state = &state;
    let ip = client_ip::of(&req, &state.settings.server.trusted_proxies);
    access_log::record(req, |req| {
        metrics::track(state, req, |req| {
            security::headers(state, req, |req| {
                error::render_errors(state, req, |req| {
                    guard::guard(state, req, |req| {
                        audit_context::scope(ip, req, |req| async move {
                            // Boxed: the router's future is the largest part of the request's
                            // state, and each layer above moves its inner future once or twice.
                            match Box::pin(routes.oneshot(req)).await {
                                Ok(res) => res,
                                Err(never) => match never {},
                            }
                        })
                    })
                })
            })
        })
    })
    .await
}
