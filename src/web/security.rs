//! Security headers on every response.
//!
//! CSP allows no inline script or style (`'self'` only), no framing (`frame-ancestors 'none'`),
//! no plugins, no `<base>` rewriting. `form-action` is deliberately not set: sign-in forms end
//! in redirects to relying parties' registered redirect URIs, which browsers check against
//! `form-action`. HSTS only when the issuer is https. HTML pages are `no-store` (sign-in pages
//! must not be replayed from a cache or the back button after logout).

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::state::AppState;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub async fn headers<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let mut res = next(req).await;
    let h = res.headers_mut();
    // Room for what follows (and the request id the edge adds): one growth of the map at most.
    h.reserve(10);
    // One look-up per header: kept when the handler set its own. The values are constants
    // (`HeaderValue::from_static` checks its bytes when called at run time).
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: HeaderValue| {
        h.entry(k).or_insert(v);
    };
    set(h, header::CONTENT_SECURITY_POLICY, const { HeaderValue::from_static(CSP) });
    set(h, header::X_FRAME_OPTIONS, const { HeaderValue::from_static("DENY") });
    set(h, header::X_CONTENT_TYPE_OPTIONS, const { HeaderValue::from_static("nosniff") });
    set(h, header::REFERRER_POLICY, const { HeaderValue::from_static("no-referrer") });
    set(
        h,
        const { header::HeaderName::from_static("cross-origin-opener-policy") },
        const { HeaderValue::from_static("same-origin") },
    );
    set(
        h,
        const { header::HeaderName::from_static("permissions-policy") },
        const { HeaderValue::from_static("camera=(), microphone=(), geolocation=()") },
    );
    if state.settings.issuer_is_https() {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            const { HeaderValue::from_static("max-age=31536000; includeSubDomains") },
        );
    }
    let is_html =
        h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.starts_with("text/html")).unwrap_or(false);
    if is_html {
        set(h, header::CACHE_CONTROL, const { HeaderValue::from_static("no-store") });
        set(h, header::PRAGMA, const { HeaderValue::from_static("no-cache") });
    }
    res
}
