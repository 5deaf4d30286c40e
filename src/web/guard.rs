//! Request guard, inside the error renderer so that everything it refuses is rendered like any
//! other error (HTML page or JSON, in our words):
//! - `Host`: exactly one, a valid authority, else 400 (RFC 9112 §3.2);
//! - the body is read here, up front, within `server.max_body_bytes` (413) and within
//!   `server.header_read_timeout_secs` (a stalled or dripping body: 408, connection closed);
//! - the whole request within `server.request_timeout_secs` (503 + Retry-After).
//!
//! Every endpoint takes small form or JSON bodies, so buffering them costs nothing and handlers
//! never see a half-read body.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http_body_util::BodyExt;

use super::error::WebError;
use super::state::AppState;

pub async fn guard<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let s = &state.settings.server;
    if let Err(e) = check_host(&req) {
        return e.into_response();
    }
    // Logo uploads (multipart) may be larger than forms, up to the logo limit and its framing.
    let logo_upload = req.method() == axum::http::Method::POST
        && req
            .uri()
            .path()
            .strip_prefix("/orgs/")
            .and_then(|p| p.strip_suffix("/logo"))
            .is_some_and(|s| !s.contains('/'));
    // A SAML ACS takes responses up to 512 KiB of base64 (refused with a page past that): its
    // form may be up to 1 MiB once URL-encoded.
    let saml_acs = req.method() == axum::http::Method::POST
        && req
            .uri()
            .path()
            .strip_prefix("/saml/")
            .and_then(|p| p.strip_suffix("/acs"))
            .is_some_and(|s| !s.contains('/'));
    let max = if logo_upload {
        s.max_body_bytes.max(crate::domain::org::LOGO_MAX_BYTES + 16 * 1024)
    } else if saml_acs {
        s.max_body_bytes.max(crate::federation::saml::MAX_ACS_BODY_BYTES)
    } else {
        s.max_body_bytes
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    // No Content-Length and no Transfer-Encoding: no body in HTTP/1.1 (RFC 9112 §6.3), nothing
    // to read (the common case: GET).
    let timeout = Duration::from_secs(s.request_timeout_secs);
    if declared.is_none() && !req.headers().contains_key(header::TRANSFER_ENCODING) {
        return within(timeout, next(req)).await;
    }
    let (parts, body) = req.into_parts();
    let read = async {
        let mut buf = Vec::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| WebError::BadRequest("The request body could not be read.".into()))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max {
                    return Err(WebError::PayloadTooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    };
    let body = match tokio::time::timeout(Duration::from_secs(s.header_read_timeout_secs), read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return close(e.into_response()),
        Err(_) => return close(WebError::RequestTimeout.into_response()),
    };
    let req = Request::from_parts(parts, Body::from(body));
    within(timeout, next(req)).await
}

/// The whole request within its deadline, else 503 + Retry-After.
///
/// Not an `async fn`: its state would hold `run` twice, as the argument and inside the awaited
/// `Timeout`, and the request's whole state was copied on every move (callgrind: 8 copies of
/// it per request here, a tenth of a JWKS request's instructions).
fn within<F: std::future::Future<Output = Response>>(
    timeout: Duration,
    run: F,
) -> impl std::future::Future<Output = Response> {
    tokio::time::timeout(timeout, run).map(|out| match out {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!("request timed out");
            WebError::Unavailable("The request took too long. Please try again.".into()).into_response()
        }
    })
}

fn too_large() -> Response {
    close(WebError::PayloadTooLarge.into_response())
}

/// The rest of a refused body is not read: the connection must not be reused.
fn close(mut res: Response) -> Response {
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// The usual `Host` (a name or IPv4 address, an optional port of 1 to 5 digits), checked without
/// the copy that parsing an `Authority` makes: a subset of what that parse accepts, so the answer
/// is the same. Anything else (IPv6 literals, other characters) takes the full parse.
fn plain_host(h: &[u8]) -> bool {
    let (host, port) = match h.iter().position(|&b| b == b':') {
        Some(i) => (&h[..i], Some(&h[i + 1..])),
        None => (h, None),
    };
    !host.is_empty()
        && host.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.iter().all(u8::is_ascii_digit))
}

fn check_host(req: &Request) -> Result<(), WebError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let bad = || WebError::BadRequest("The request needs exactly one valid Host header.".into());
    match (hosts.next(), hosts.next()) {
        (Some(h), None) if plain_host(h.as_bytes()) => Ok(()),
        (Some(h), None) => {
            let h = h.to_str().map_err(|_| bad())?;
            let authority: axum::http::uri::Authority = h.parse().map_err(|_| bad())?;
            if h.is_empty() || h.contains('@') || authority.host().is_empty() {
                return Err(bad());
            }
            Ok(())
        }
        (None, _) if req.version() < Version::HTTP_11 => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the full parse says of a `Host`.
    fn parsed_ok(h: &str) -> bool {
        h.parse::<axum::http::uri::Authority>().is_ok_and(|a| !h.contains('@') && !a.host().is_empty())
    }

    #[test]
    fn the_quick_host_check_accepts_only_what_the_full_parse_accepts() {
        let hosts = [
            "example.com",
            "127.0.0.1:8080",
            "a-b.c:1",
            "localhost:65535",
            "x:99999",
            "idp.example",
            "",
            ":80",
            "host:",
            "host:123456",
            "host:8a",
            "a:b:c",
            "[::1]:8080",
            "[::1]",
            "user@host",
            "host/path",
            "host name",
            "h%41st",
            "bücher.example",
            "host?x",
        ];
        for h in hosts {
            if plain_host(h.as_bytes()) {
                assert!(parsed_ok(h), "{h:?} passes the quick check but not the parse");
            }
        }
        for h in ["example.com", "127.0.0.1:8080", "localhost:65535"] {
            assert!(plain_host(h.as_bytes()), "{h:?}");
        }
        for h in ["", ":80", "host:", "[::1]:8080", "user@host", "a:b:c", "host:123456"] {
            assert!(!plain_host(h.as_bytes()), "{h:?}");
        }
    }
}
