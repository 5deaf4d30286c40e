//! The live event stream of an organization (Server-Sent Events, resumable).

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use utoipa::OpenApi;

use super::*;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/events/stream", get(events_stream))
}

#[derive(OpenApi)]
#[openapi(paths(events_stream), tags((name = "events")))]
pub(super) struct Doc;

#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(("org" = Option<String>, Query, description = "The organization (id or slug); an organization key's own by default"), ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]+$", description = "Resume after this event (its `id` in the stream)")),
    responses((status = 200, content_type = "text/event-stream",
            description = "The key's organization's events as Server-Sent Events: `id` (the position), `event` (the type), `data` (the event JSON, as webhooks get it); a comment every 15 s keeps it open"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "`org` names no organization this caller administers (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn events_stream(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = stream_org(&state, &c, raw.as_deref()).await?;
    use axum::response::sse::{Event, KeepAlive, Sse};
    let start = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(v) => {
            v.trim().parse::<i64>().map_err(|_| ApiError::bad_request("Last-Event-ID is an event id of this stream"))?
        }
        None => state.webhooks.last_event(org).await?,
    };
    // Reads the organization's event log (shared by every node) when the event bus says it has
    // something new, and at least every poll interval; a client that reconnects with
    // Last-Event-ID misses nothing kept (a week).
    let bus = state.bus.clone();
    let poll = bus.poll_interval();
    let init = (
        state.webhooks.clone(),
        bus.subscribe(),
        org,
        start,
        std::collections::VecDeque::<(i64, String, String)>::new(),
    );
    let stream = futures_util::stream::unfold(init, move |(svc, mut wake, org, last, mut buf)| async move {
        loop {
            if let Some((seq, kind, payload)) = buf.pop_front() {
                let ev = Event::default().id(seq.to_string()).event(kind).data(payload);
                return Some((Ok::<_, std::convert::Infallible>(ev), (svc, wake, org, seq, buf)));
            }
            match svc.events_after(org, last, 100).await {
                Ok(rows) if !rows.is_empty() => buf.extend(rows),
                Ok(_) => {
                    let deadline = tokio::time::Instant::now() + poll;
                    loop {
                        match tokio::time::timeout_at(deadline, wake.recv()).await {
                            Ok(Ok(o)) if o != org => continue,
                            // Ours, lagged behind (read anyway), or the poll is due.
                            _ => break,
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read events");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    });
    let keep = KeepAlive::new().interval(std::time::Duration::from_secs(15));
    Ok(Sse::new(stream).keep_alive(keep).into_response())
}

/// The organization streamed: an organization key's own, or the one named by `org` (id or
/// slug) that the caller administers.
async fn stream_org(state: &AppState, c: &Caller, raw: Option<&str>) -> ApiResult<crate::domain::OrgId> {
    let named = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "org")
        .map(|(_, v)| v.into_owned());
    match (named, c.org) {
        (Some(o), _) => Ok(org_of(state, c, &o, false).await?.id),
        (None, Some(own)) => Ok(own),
        (None, None) => Err(ApiError::bad_request("org is needed: the organization whose events to stream")),
    }
}
