//! The request id and the access log, the outermost step of every request.
//!
//! The request id is the caller's `X-Request-Id` when it is 1 to 128 visible ASCII characters,
//! otherwise a new UUID; it is echoed on the response, and every line logged while the request
//! runs carries it (`telemetry::scope`). One access line per request (target `guichet::access`,
//! level INFO) is written when the response head is ready, with the method, the path (never the
//! query: it can carry codes and tokens), the status and the latency in microseconds.
//!
//! This replaces tower-http's request-id layers and `TraceLayer`, and then the `request` span
//! that followed them: a span per request and an event formatted by `tracing` cost a JWKS
//! request 6 to 11 µs of CPU (docs/PERFORMANCE.md); the line is now formatted by hand into the
//! log queue. Silence the access lines alone with `RUST_LOG=info,guichet::access=warn`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderName;
use axum::response::Response;

use crate::telemetry::{self, RequestId};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub async fn record<F, Fut>(req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let start = Instant::now();
    let id = RequestId::from_header(req.headers().get(&X_REQUEST_ID));
    let header = id.header_value().clone();
    // Cheap clones (an enum and a shared buffer), taken before the request moves on.
    let line = telemetry::access_enabled().then(|| (req.method().clone(), req.uri().clone()));
    let mut res = telemetry::scope(id, next(req)).await;
    if let Some((method, uri)) = line {
        let latency_us = start.elapsed().as_micros() as u64;
        telemetry::access(
            header.to_str().unwrap_or(""),
            method.as_str(),
            uri.path(),
            res.status().as_u16(),
            latency_us,
        );
    }
    res.headers_mut().insert(X_REQUEST_ID.clone(), header);
    res
}
