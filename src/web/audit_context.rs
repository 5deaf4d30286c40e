//! Serves each request inside its audit context (`crate::audit`): the client's IP, resolved
//! through trusted proxies like everywhere else (`client_ip`), and its User-Agent. The audit
//! entries the request writes carry them.

use axum::extract::Request;
use axum::http::header;
use axum::response::Response;

pub async fn scope<F, Fut>(ip: std::net::IpAddr, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    // Captured as they are; made into strings only if the request writes an audit entry.
    let user_agent = req.headers().get(header::USER_AGENT).cloned();
    crate::audit::with_request(ip, user_agent, next(req)).await
}
