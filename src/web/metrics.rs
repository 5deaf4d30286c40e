//! Prometheus metrics: requests per route and status, latency per route, sign-ins by result.

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Route,
}

/// The route template of a request (the matched route's own string, shared rather than copied
/// per request), or `unmatched`: never the raw path, so the label's values are bounded.
#[derive(Clone, Debug)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The method as a label: the standard ones, else `other` (a client may send any token; each
/// would otherwise make a new series).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    logins: Family<LoginLabels, Counter>,
}

/// Outcome of a sign-in attempt, as counted.
#[derive(Debug, Clone, Copy)]
pub enum LoginResult {
    Ok,
    Failed,
    Throttled,
    Inactive,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("guichet_http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("guichet_http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("guichet_logins", "Password sign-in attempts by result", logins.clone());
        Self { registry: Mutex::new(registry), requests, latency, logins }
    }

    pub fn login(&self, r: LoginResult) {
        let result = match r {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::Throttled => "throttled",
            LoginResult::Inactive => "inactive",
        };
        self.logins.get_or_create(&LoginLabels { result }).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(reg) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Outermost part of the edge (`web::edge`): counts every answer, refusals included.
pub async fn track<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let start = Instant::now();
    let method = method_label(req.method());
    let res = next(req).await;
    let route = Route(res.extensions().get::<MatchedPath>().cloned());
    let m = &state.metrics;
    m.requests.get_or_create(&RequestLabels { method, route: route.clone(), status: res.status().as_u16() }).inc();
    m.latency.get_or_create(&RouteLabels { method, route }).observe(start.elapsed().as_secs_f64());
    res
}

pub async fn handler(State(state): State<AppState>) -> Response {
    if !state.settings.server.metrics {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}
