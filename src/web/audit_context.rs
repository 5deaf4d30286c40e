//! Serves each request inside its audit context (`crate::audit`): the client's IP, resolved
//! through trusted proxies like everywhere else (`client_ip`), and its User-Agent. The audit
//! entries the request writes carry them.

use axum::extract::Request;
use axum::http::header;
use axum::response::Response;

use crate::domain::account::AuditContext;

pub async fn scope<F, Fut>(ip: std::net::IpAddr, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(crate::audit::USER_AGENT_MAX).collect::<String>())
        .filter(|s| !s.is_empty());
    let ctx = AuditContext { ip: Some(ip.to_string()), user_agent };
    crate::audit::with_context(ctx, next(req)).await
}
