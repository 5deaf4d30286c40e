//! The admin API's wire types (JSON, with their OpenAPI schemas): separate from the domain
//! types, so the API keeps its shape when the domain changes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// RFC 9457 problem details.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// An organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrgWire {
    pub id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    pub require_sso: bool,
    pub mfa_required: bool,
    /// The pages' accent colour (`#rrggbb`), when one is set.
    pub accent_color: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl OrgWire {
    /// A strong validator of what a PATCH may change.
    pub fn etag(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.id.as_bytes());
        for part in [&self.slug, &self.name, self.accent_color.as_deref().unwrap_or("")] {
            h.update(part.len().to_be_bytes());
            h.update(part.as_bytes());
        }
        h.update([u8::from(self.require_sso), u8::from(self.mfa_required)]);
        format!("\"{}\"", &hex::encode(h.finalize())[..16])
    }
}

impl From<&crate::domain::org::Org> for OrgWire {
    fn from(o: &crate::domain::org::Org) -> Self {
        Self {
            id: o.id.as_uuid(),
            slug: o.slug.clone(),
            name: o.name.clone(),
            require_sso: o.require_sso,
            mfa_required: o.mfa_required,
            accent_color: o.accent_color.clone(),
            created_at: o.created_at.0,
        }
    }
}

/// A member of the organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberWire {
    pub user_id: uuid::Uuid,
    pub email: String,
    pub name: Option<String>,
    #[schema(value_type = RoleWire)]
    pub role: String,
    /// Unix seconds.
    pub joined_at: i64,
    /// Roles granted in the organization, as `client_id/name`.
    pub roles: Vec<String>,
}

impl MemberWire {
    /// A strong validator of what a PUT may change.
    pub fn etag(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.user_id.as_bytes());
        h.update(self.role.as_bytes());
        format!("\"{}\"", &hex::encode(h.finalize())[..16])
    }
}

impl From<&crate::domain::org::Member> for MemberWire {
    fn from(m: &crate::domain::org::Member) -> Self {
        Self {
            user_id: m.user_id.as_uuid(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at.0,
            roles: m.roles.iter().map(|r| format!("{}/{}", r.client_id, r.name)).collect(),
        }
    }
}

/// A page of members.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberPage {
    pub items: Vec<MemberWire>,
    /// Give it as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A member's role in the organization. `owner` is refused (403): owners are changed in
/// Guichet by owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleWire {
    Admin,
    Member,
    Owner,
}

/// The body of `PUT .../members/{email}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPut {
    pub role: RoleWire,
}

/// The events a webhook may want (`domain::webhook::EVENT_TYPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EventTypeWire {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.verified")]
    UserVerified,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "login.succeeded")]
    LoginSucceeded,
    #[serde(rename = "login.failed")]
    LoginFailed,
    #[serde(rename = "mfa.enabled")]
    MfaEnabled,
    #[serde(rename = "mfa.disabled")]
    MfaDisabled,
    #[serde(rename = "membership.changed")]
    MembershipChanged,
    #[serde(rename = "connection.changed")]
    ConnectionChanged,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
}

impl EventTypeWire {
    /// Its name, as in events and subscriptions.
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// A webhook (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookWire {
    pub id: uuid::Uuid,
    pub url: String,
    #[schema(value_type = Vec<EventTypeWire>)]
    pub events: Vec<String>,
    pub created_at: i64,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_secret_until: Option<i64>,
}

impl From<&crate::domain::webhook::Webhook> for WebhookWire {
    fn from(w: &crate::domain::webhook::Webhook) -> Self {
        Self {
            id: w.id.as_uuid(),
            url: w.url.clone(),
            events: w.events.clone(),
            created_at: w.created_at.0,
            previous_secret_until: w.previous_until.map(|t| t.0),
        }
    }
}

/// The body of `POST .../webhooks`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    /// Must answer a signed validation request by echoing its challenge.
    pub url: String,
    #[schema(min_items = 1)]
    pub events: Vec<EventTypeWire>,
}

/// A new webhook and its signing secret (shown this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    pub webhook: WebhookWire,
    /// `whsec_...` (Standard Webhooks).
    pub secret: String,
}

/// One delivery attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryWire {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub at: i64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl From<&crate::domain::webhook::DeliveryAttempt> for DeliveryWire {
    fn from(d: &crate::domain::webhook::DeliveryAttempt) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            attempt: d.attempt,
            at: d.at.0,
            status: d.status,
            error: d.error.clone(),
            duration_ms: d.duration_ms,
        }
    }
}

/// A domain the organization claims, and how to prove it (a DNS TXT record).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DomainWire {
    pub domain: String,
    pub verified: bool,
    /// Unix seconds.
    pub verified_at: Option<i64>,
    /// The TXT record to publish: its name and value.
    pub record_name: String,
    pub record_value: String,
    pub last_checked_at: Option<i64>,
    /// Why the last check failed.
    pub last_error: Option<String>,
}

impl From<&crate::domain::org::OrgDomain> for DomainWire {
    fn from(d: &crate::domain::org::OrgDomain) -> Self {
        Self {
            domain: d.domain.clone(),
            verified: d.verified(),
            verified_at: d.verified_at.map(|t| t.0),
            record_name: d.record_name(),
            record_value: d.challenge.clone(),
            last_checked_at: d.last_checked_at.map(|t| t.0),
            last_error: d.last_error.clone(),
        }
    }
}

/// How the audited attempt ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeWire {
    Success,
    Failure,
    Denied,
}

/// An entry of the audit log. After an account's deletion, its entries name a pseudonym
/// (`anon-...`) instead of the person and have no IP or user agent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditWire {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// e.g. `org.member_added`, `org.connection_updated`, `account.deleted`.
    pub action: String,
    /// What it concerns: `org:<id>`, a user's id, a pseudonym.
    pub subject: String,
    /// `platform`, `operator`, `self`, or the id of the user who did it.
    pub actor: Option<String>,
    /// What changed (before/after where there is one).
    pub detail: Option<serde_json::Value>,
    /// The client's address (none for background jobs and the command line).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The organization's id, when the entry concerns one.
    pub org: Option<uuid::Uuid>,
    pub outcome: OutcomeWire,
}

impl AuditWire {
    pub fn new(id: i64, e: &crate::domain::account::AuditEvent) -> Self {
        use crate::domain::account::AuditOutcome;
        Self {
            id,
            at: e.at.0,
            action: e.action.clone(),
            subject: e.subject.clone(),
            actor: e.actor.clone(),
            detail: e
                .detail
                .as_deref()
                .map(|d| serde_json::from_str(d).unwrap_or(serde_json::Value::String(d.to_owned()))),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            org: e.org.map(|o| o.as_uuid()),
            outcome: match e.outcome {
                AuditOutcome::Success => OutcomeWire::Success,
                AuditOutcome::Failure => OutcomeWire::Failure,
                AuditOutcome::Denied => OutcomeWire::Denied,
            },
        }
    }

    /// The entries as JSON lines, one `AuditWire` per line (the exports of the API and the
    /// console).
    pub fn json_lines(entries: &[(i64, crate::domain::account::AuditEvent)]) -> String {
        let mut body = String::new();
        for (id, e) in entries {
            if let Ok(line) = serde_json::to_string(&AuditWire::new(*id, e)) {
                body.push_str(&line);
                body.push('\n');
            }
        }
        body
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_enum_is_the_event_list() {
        use EventTypeWire::*;
        let all = [
            UserCreated,
            UserVerified,
            UserDeleted,
            LoginSucceeded,
            LoginFailed,
            MfaEnabled,
            MfaDisabled,
            MembershipChanged,
            ConnectionChanged,
            SessionRevoked,
        ];
        let names: Vec<String> = all.iter().map(|e| e.name()).collect();
        assert_eq!(names, crate::domain::webhook::EVENT_TYPES);
    }
}
