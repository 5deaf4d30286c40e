//! Webhooks: an organization's callback URL, the events it wants, and how each delivery is
//! signed — the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), so receivers can use
//! any of its libraries. The secret is `whsec_` + base64 of 32 random bytes; after a rotation the
//! previous one also signs for a day (several signatures, space-separated).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::{OrgId, UnixTime, WebhookId};

/// The events a webhook may ask for.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.verified",
    "user.deleted",
    "login.succeeded",
    "login.failed",
    "mfa.enabled",
    "mfa.disabled",
    "membership.changed",
    "connection.changed",
    "session.revoked",
];

/// How long a rotated-out secret still signs deliveries.
pub const ROTATION_OVERLAP_SECS: i64 = 24 * 3600;
/// How long a delivery is retried.
pub const RETRY_FOR_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub org: OrgId,
    pub url: String,
    pub events: Vec<String>,
    /// The signing secret, sealed.
    pub secret_sealed: String,
    /// The previous secret (sealed) and until when it still signs.
    pub previous_secret_sealed: Option<String>,
    pub previous_until: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl Webhook {
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type)
    }
}

/// An event as delivered: `{"id", "type", "time", "org", "data"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookEvent {
    /// The same for every attempt and redelivery of this event (receivers deduplicate on it).
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339.
    pub time: String,
    pub org: OrgId,
    pub data: serde_json::Value,
}

/// A delivery job in the outbox: the event, fixed when it happened (redeliveries send the same
/// id), and when it was first queued (retries stop a day later).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookJob {
    pub webhook: WebhookId,
    pub event: WebhookEvent,
    pub first_at: i64,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub webhook: WebhookId,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub at: UnixTime,
    /// The receiver's HTTP status; None when it did not answer.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The event, for redelivery.
    #[serde(skip)]
    pub payload: String,
}

/// Parses a space- or comma-separated list of event types; unknown ones are refused.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for e in raw.iter().flat_map(|s| s.split([',', ' '])).map(str::trim).filter(|s| !s.is_empty()) {
        if !EVENT_TYPES.contains(&e) {
            return Err(format!("unknown event {e:?} (one of: {})", EVENT_TYPES.join(", ")));
        }
        if !out.iter().any(|x| x == e) {
            out.push(e.to_owned());
        }
    }
    if out.is_empty() {
        return Err("at least one event is needed".into());
    }
    Ok(out)
}

/// A new signing secret.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("whsec_{}", STANDARD.encode(b))
}

/// `v1,<signature>` of `body` for message `id` at `timestamp` with `secret` (`whsec_...`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert!(new_secret().starts_with("whsec_"));
    }

    #[test]
    fn events_are_from_the_list() {
        assert_eq!(parse_events(&["login.succeeded, membership.changed".into()]).unwrap().len(), 2);
        assert!(parse_events(&["login.succeeded".into(), "nope".into()]).is_err());
        assert!(parse_events(&[]).is_err());
    }
}
