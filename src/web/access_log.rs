//! The access log: one line per request (target `guichet::access`, level INFO) written when
//! the response head is ready, with the method, the path (never the query: it can carry codes
//! and tokens), the status and the latency in microseconds. The request runs inside a `request`
//! span that holds its request id, so every line logged while it runs carries the id too.
//!
//! This replaces tower-http's `TraceLayer`, whose span (three fields formatted per request) and
//! response-body wrapper cost about a quarter of the CPU of a JWKS request with the log on
//! (docs/PERFORMANCE.md). Silence the access lines alone with `RUST_LOG=info,guichet::access=warn`.

use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use tracing::Instrument;

/// The target of the access-log lines, for `RUST_LOG` directives.
pub const TARGET: &str = "guichet::access";

pub async fn record<F, Fut>(req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let start = Instant::now();
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let span = tracing::info_span!("request", request_id = %id);
    // Cheap clones (an enum and a shared buffer), taken before the request moves on.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let res = next(req).instrument(span.clone()).await;
    let _in = span.enter();
    tracing::info!(
        target: TARGET,
        status = res.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "{} {}",
        method,
        uri.path()
    );
    res
}
