//! Prometheus metrics: requests per route and status, latency per route, sign-ins by result.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Mutex, RwLock};
use std::task::{ready, Context, Poll};
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
    /// The series of `requests` and `latency` a request adds to, found by `SeriesKey`.
    series: RwLock<HashMap<SeriesKey, Series, BuildHasherDefault<KeyHasher>>>,
}

/// A request's series: found by the address of its route template, its method and status.
/// axum hands every request of a route the same shared template string, and the entry keeps a
/// clone of it, so while the entry exists no other string can have that address. A family's
/// own look-up hashes the labels' text with SipHash and compares it, twice per request: about
/// 960 instructions of a JWKS request's 35 000 (callgrind); this, about 115.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct SeriesKey {
    route: usize,
    method: usize,
    status: u16,
}

struct Series {
    _route: Route,
    requests: Counter,
    latency: Histogram,
}

/// At most this many keys are kept (routes × methods × statuses seen); past it, a request's
/// series are looked up in the families, as before. Only a process building router after
/// router (tests) comes near it.
const SERIES_KEPT: usize = 4096;

/// FxHash's step: the key is three machine words, not text an attacker chooses.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
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
        Self { registry: Mutex::new(registry), requests, latency, logins, series: RwLock::default() }
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

    /// Counts one answer and its latency.
    fn record(&self, method: &'static str, route: Route, status: u16, seconds: f64) {
        let key = SeriesKey {
            route: route.0.as_ref().map_or(0, |m| m.as_str().as_ptr() as usize),
            method: method.as_ptr() as usize,
            status,
        };
        if let Some(s) = self.series.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            s.requests.inc();
            s.latency.observe(seconds);
            return;
        }
        let requests = self.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).clone();
        let latency = self.latency.get_or_create(&RouteLabels { method, route: route.clone() }).clone();
        requests.inc();
        latency.observe(seconds);
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        if series.len() < SERIES_KEPT {
            series.insert(key, Series { _route: route, requests, latency });
        }
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

tokio::task_local! {
    /// The template of the route that answers the request this task serves (`remember`).
    static MATCHED: RefCell<Option<MatchedPath>>;
}

/// Called by `route_layers::RememberRoute` once the router has matched a route: `track` wraps
/// the whole router, so it runs before the routing and learns the route from here. A slot of
/// the task, not the response's extensions: inserting there made the response's extension map
/// (an allocation, a hash and a drop per request).
pub fn remember(route: &MatchedPath) {
    let _ = MATCHED.try_with(|m| *m.borrow_mut() = Some(route.clone()));
}

/// Runs `f`, then gives the route template remembered while it ran (none when no route
/// matched).
pub fn with_route<F: Future>(f: F) -> impl Future<Output = (F::Output, Option<MatchedPath>)> {
    MATCHED.scope(RefCell::new(None), TakeRoute { f })
}

pin_project_lite::pin_project! {
    /// `f`, then the route from the task's slot. A future of its own: an `async` block awaiting
    /// `f` would hold it twice (captured, and awaited), and so would every future around it.
    struct TakeRoute<F> {
        #[pin]
        f: F,
    }
}

impl<F: Future> Future for TakeRoute<F> {
    type Output = (F::Output, Option<MatchedPath>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = ready!(self.project().f.poll(cx));
        Poll::Ready((out, MATCHED.with(|m| m.borrow_mut().take())))
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
    let (res, route) = with_route(next(req)).await;
    state.metrics.record(method, Route(route), res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

pub async fn handler(State(state): State<AppState>) -> Response {
    if !state.settings.server.metrics {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;
    use crate::web::route_layers::RememberRoute;

    /// The template axum hands the requests of `path`, from a router of two routes.
    async fn matched(router: &Router, path: &str) -> MatchedPath {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        with_route(router.clone().oneshot(req)).await.1.unwrap()
    }

    fn count(text: &str, series: &str) -> Option<u64> {
        text.lines().find_map(|l| l.strip_prefix(series)).and_then(|v| v.trim().parse().ok())
    }

    #[tokio::test]
    async fn each_answer_is_counted_in_its_own_series() {
        let router = || {
            Router::new()
                .route("/a/{id}", get(|| async { "a" }))
                .route("/b", get(|| async { "b" }))
                .route_layer(RememberRoute)
        };
        let (one, two) = (router(), router());
        let m = Metrics::new();
        // Two routers: the same template at two addresses lands in one series.
        for r in [&one, &two] {
            let a = matched(r, "/a/1").await;
            let b = matched(r, "/b").await;
            for _ in 0..3 {
                m.record("GET", Route(Some(a.clone())), 200, 0.002);
                m.record("POST", Route(Some(a.clone())), 200, 0.002);
                m.record("GET", Route(Some(b.clone())), 404, 0.3);
            }
        }
        m.record("GET", Route(None), 400, 0.0001);
        let text = m.render();
        let req = |labels: &str| count(&text, &format!("guichet_http_requests_total{{{labels}}}"));
        assert_eq!(req(r#"method="GET",route="/a/{id}",status="200""#), Some(6), "{text}");
        assert_eq!(req(r#"method="POST",route="/a/{id}",status="200""#), Some(6), "{text}");
        assert_eq!(req(r#"method="GET",route="/b",status="404""#), Some(6), "{text}");
        assert_eq!(req(r#"method="GET",route="unmatched",status="400""#), Some(1), "{text}");
        assert_eq!(req(r#"method="GET",route="/b",status="200""#), None, "{text}");
        let lat = |labels: &str| count(&text, &format!("guichet_http_request_duration_seconds_count{{{labels}}}"));
        assert_eq!(lat(r#"method="GET",route="/a/{id}""#), Some(6), "{text}");
        assert_eq!(lat(r#"method="GET",route="/b""#), Some(6), "{text}");
        let slow = count(&text, r#"guichet_http_request_duration_seconds_bucket{le="0.5",method="GET",route="/b"}"#);
        let fast = count(&text, r#"guichet_http_request_duration_seconds_bucket{le="0.25",method="GET",route="/b"}"#);
        assert_eq!((fast, slow), (Some(0), Some(6)), "{text}");
    }
}
