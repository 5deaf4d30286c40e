//! Live revocation: with an organization's developer key the portal holds Guichet's
//! `GET /api/v1/events/stream` (Server-Sent Events) and, on `session.revoked`
//! (`{"type": "session.revoked", "data": {"user": ..., "sid": ...}}`), ends the matching portal
//! sessions at once. It reconnects with `Last-Event-ID` (1 s, doubling to 30 s, between tries),
//! so an event written while it was away still arrives.

use std::time::Duration;

use serde_json::Value;

use crate::Portal;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct DevKey {
    pub key: String,
    pub secret: String,
}

/// Opens the stream (answer headers received: events from now on are delivered).
pub async fn connect(portal: &Portal, key: &DevKey, last_id: Option<&str>) -> Result<reqwest::Response, String> {
    let mut req = portal
        .stream_http
        .get(format!("{}/api/v1/events/stream", portal.cfg.issuer.trim_end_matches('/')))
        .basic_auth(&key.key, Some(&key.secret))
        .header("accept", "text/event-stream");
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(format!("Guichet answered {}", res.status()));
    }
    Ok(res)
}

/// Runs for the portal's lifetime: reads the stream, reconnects when it ends.
pub async fn follow(portal: Portal, key: DevKey, first: Option<reqwest::Response>) {
    let mut last_id: Option<String> = None;
    let mut backoff = Duration::from_secs(1);
    let mut open = first;
    loop {
        let res = match open.take() {
            Some(r) => Ok(r),
            None => connect(&portal, &key, last_id.as_deref()).await,
        };
        match res {
            Ok(res) => {
                backoff = Duration::from_secs(1);
                if let Err(e) = read(&portal, res, &mut last_id).await {
                    tracing::warn!(error = %e, "event stream interrupted");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot open Guichet's event stream"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn read(portal: &Portal, mut res: reqwest::Response, last_id: &mut Option<String>) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        buf.extend(chunk.iter().filter(|b| **b != b'\r'));
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..end + 2).collect();
            if let Some(ev) = parse(&String::from_utf8_lossy(&block)) {
                if !ev.id.is_empty() {
                    *last_id = Some(ev.id.clone());
                }
                handle(portal, &ev);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct SseEvent {
    id: String,
    kind: String,
    data: String,
}

/// One SSE block; `None` for a comment (Guichet's keep-alive).
fn parse(block: &str) -> Option<SseEvent> {
    let mut ev = SseEvent::default();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => ev.id = value.to_owned(),
            "event" => ev.kind = value.to_owned(),
            "data" => {
                if !ev.data.is_empty() {
                    ev.data.push('\n');
                }
                ev.data.push_str(value);
            }
            _ => {}
        }
    }
    (!ev.kind.is_empty() || !ev.data.is_empty()).then_some(ev)
}

fn handle(portal: &Portal, ev: &SseEvent) {
    if ev.kind != "session.revoked" {
        return;
    }
    let Ok(body) = serde_json::from_str::<Value>(&ev.data) else {
        tracing::warn!(id = %ev.id, "session.revoked event without JSON data");
        return;
    };
    let data = &body["data"];
    let sid = data["sid"].as_str();
    let user = data["user"].as_str();
    if sid.is_none() && user.is_none() {
        return;
    }
    let ended = portal.sessions.end(sid, user);
    tracing::info!(ended, "session.revoked: portal sessions ended");
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn blocks_and_comments() {
        let ev = parse("id: 12\nevent: session.revoked\ndata: {\"a\":1}\n\n").unwrap_or_default();
        assert_eq!((ev.id.as_str(), ev.kind.as_str(), ev.data.as_str()), ("12", "session.revoked", "{\"a\":1}"));
        assert!(parse(":\n\n").is_none());
    }
}
