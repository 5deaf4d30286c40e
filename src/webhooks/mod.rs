//! Webhooks of an organization: a callback URL and the events wanted; deliveries signed
//! (Standard Webhooks, `domain/webhook.rs`), run as jobs of the durable outbox (any node delivers,
//! nothing is lost when a node dies), retried with exponential backoff for a day, every attempt
//! logged and visible, redeliverable by hand.
//!
//! The URL rules are the outbound-URL policy's (`src/net`), the same code at save and at every
//! delivery: http(s) on the default port, strict ASCII, no user-info, public addresses only (every
//! A and AAAA answer), pinned, no redirects, 64 KiB, 10 s; every refusal gives the same message.
//! A URL is saved only after it answered a signed validation request by echoing its challenge.
//!
//! Events are queued by the services that make the change (`OrgService::audit_event`, federated
//! sign-ins), in the same transaction as its audit record.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::Notify;

use crate::crypto::sealed::Sealer;
use crate::domain::account::{AccountOp, OutboxMessage};
pub use crate::domain::webhook::WebhookJob;
use crate::domain::webhook::{self, DeliveryAttempt, Webhook, WebhookEvent};
use crate::domain::{Clock, OrgId, UnixTime, WebhookId};
use crate::orgs::{Actor, OrgError, OrgService};
use crate::store::{StoreError, Stores};

/// How long an organization's events are kept (a live stream resumes within that).
pub const EVENT_RETENTION_SECS: i64 = 7 * 86_400;

/// Purges old events hourly.
pub fn spawn_event_purge(w: Arc<WebhookService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            w.purge_events().await;
        }
    })
}

/// The one message for every refused URL (the reason goes to the log only).
pub const URL_REFUSED: &str = "this URL cannot be used for webhooks";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such webhook")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    /// The URL failed the policy or the validation request.
    #[error("{URL_REFUSED}")]
    UrlRefused,
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

pub type WebhookResult<T> = Result<T, WebhookError>;

/// The webhook event an audited organization action raises.
pub fn event_for_action(action: &str) -> Option<&'static str> {
    match action {
        "org.member_added"
        | "org.member_role_changed"
        | "org.member_removed"
        | "org.role_granted"
        | "org.role_revoked" => Some("membership.changed"),
        "org.connection_created" | "org.connection_updated" | "org.connection_deleted" => Some("connection.changed"),
        _ => None,
    }
}

/// What an event of `org` writes: the event in the organization's log (its live stream), and one
/// outbox job per webhook that wants it, all with one event id.
pub fn event_ops(
    hooks: &[Webhook],
    org: OrgId,
    event_type: &str,
    data: serde_json::Value,
    now: UnixTime,
) -> Vec<AccountOp> {
    let wanted: Vec<&Webhook> = hooks.iter().filter(|h| h.org == org && h.wants(event_type)).collect();
    let event = WebhookEvent {
        id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
        event_type: event_type.to_owned(),
        time: chrono::DateTime::from_timestamp(now.0, 0).unwrap_or_default().to_rfc3339(),
        org,
        data,
    };
    let mut ops: Vec<AccountOp> = wanted
        .into_iter()
        .map(|h| {
            AccountOp::Enqueue(OutboxMessage::Webhook(Box::new(WebhookJob {
                webhook: h.id,
                event: event.clone(),
                first_at: now.0,
            })))
        })
        .collect();
    ops.push(AccountOp::OrgEvent(Box::new(event)));
    ops
}

/// Whether these ops queued outbox jobs (the worker is then woken).
pub fn queues_jobs(ops: &[AccountOp]) -> bool {
    ops.iter().any(|o| matches!(o, AccountOp::Enqueue(_) | AccountOp::EnqueueAt(..)))
}

/// The steps write an organization's event (its live streams should wake).
pub fn has_event(ops: &[AccountOp]) -> bool {
    ops.iter().any(|o| matches!(o, AccountOp::OrgEvent(_)))
}

pub struct WebhookService {
    stores: Stores,
    orgs: Arc<OrgService>,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    outbound: crate::net::OutboundPolicy,
    wake: Arc<Notify>,
}

/// A webhook as shown: never its secret.
pub fn webhook_json(w: &Webhook) -> serde_json::Value {
    json!({
        "id": w.id, "org": w.org, "url": w.url, "events": w.events,
        "created_at": w.created_at.0, "updated_at": w.updated_at.0,
        "previous_secret_until": w.previous_until.map(|t| t.0),
    })
}

impl WebhookService {
    pub fn new(
        stores: Stores,
        orgs: Arc<OrgService>,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        outbound: crate::net::OutboundPolicy,
        wake: Arc<Notify>,
    ) -> Self {
        Self { stores, orgs, sealer, clock, outbound, wake }
    }

    fn seal(&self, id: WebhookId, secret: &str) -> WebhookResult<String> {
        self.sealer
            .seal(secret.as_bytes(), &format!("webhook:{id}"))
            .map_err(|e| WebhookError::Internal(anyhow::anyhow!("{e}")))
    }

    fn open(&self, id: WebhookId, sealed: &str) -> WebhookResult<String> {
        let raw = self
            .sealer
            .open(sealed, &format!("webhook:{id}"))
            .map_err(|e| WebhookError::Internal(anyhow::anyhow!("cannot open the webhook secret: {e}")))?;
        String::from_utf8(raw).map_err(|e| WebhookError::Internal(e.into()))
    }

    async fn own(&self, actor: Actor, org_ref: &str, id: &str) -> WebhookResult<(crate::domain::org::Org, Webhook)> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let id = id.trim().parse::<WebhookId>().map_err(|_| WebhookError::NotFound)?;
        let w = self.stores.webhooks.webhook(id).await?.filter(|w| w.org == org.id).ok_or(WebhookError::NotFound)?;
        Ok((org, w))
    }

    /// Signs and posts `body` to `url` through the outbound policy: (status, answer, ms).
    async fn post(&self, url: &str, id: &str, body: &[u8], secrets: &[String]) -> Result<(u16, String, i64), String> {
        let ts = self.clock.now().0;
        let signature = secrets.iter().filter_map(|s| webhook::sign(s, id, ts, body)).collect::<Vec<_>>().join(" ");
        let started = Instant::now();
        let client = self.outbound.client();
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("guichet-webhooks/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec());
        let resp = self.outbound.send(request).await.map_err(|e| e.reason())?;
        let status = resp.status().as_u16();
        let answer = crate::net::read_capped(resp, crate::net::MAX_RESPONSE_BYTES).await.map_err(|e| e.reason())?;
        let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Ok((status, String::from_utf8_lossy(&answer).into_owned(), ms))
    }

    /// Creates a webhook for the organization (its admins; the platform): the URL passes the
    /// policy and answers a signed validation request by echoing its challenge, or nothing is
    /// saved. Returns the webhook and its secret, shown this once.
    pub async fn create(
        &self,
        actor: Actor,
        org_ref: &str,
        url: &str,
        events: &[String],
    ) -> WebhookResult<(Webhook, String)> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let events = webhook::parse_events(events).map_err(WebhookError::Invalid)?;
        let url = url.trim();
        if let Err(e) = self.outbound.check(url).await {
            tracing::info!(org = %org.id, reason = %e.reason(), "webhook URL refused");
            return Err(WebhookError::UrlRefused);
        }
        let id = WebhookId::new_random();
        let secret = webhook::new_secret();
        // Validation: a signed request whose random challenge the receiver must echo in a 2xx.
        let challenge = crate::crypto::tokens::random_token();
        let body = serde_json::to_vec(&json!({"type": "webhook.validation", "challenge": challenge}))
            .map_err(|e| WebhookError::Internal(e.into()))?;
        match self
            .post(
                url,
                &format!("msg_validation_{}", uuid::Uuid::new_v4().simple()),
                &body,
                std::slice::from_ref(&secret),
            )
            .await
        {
            Ok((status, answer, _)) if (200..300).contains(&status) && answer.contains(&challenge) => {}
            Ok((status, _, _)) => {
                tracing::info!(org = %org.id, status, "webhook validation not echoed");
                return Err(WebhookError::UrlRefused);
            }
            Err(reason) => {
                tracing::info!(org = %org.id, %reason, "webhook validation failed");
                return Err(WebhookError::UrlRefused);
            }
        }
        let now = self.clock.now();
        let w = Webhook {
            id,
            org: org.id,
            url: url.to_owned(),
            events,
            secret_sealed: self.seal(id, &secret)?,
            previous_secret_sealed: None,
            previous_until: None,
            created_at: now,
            updated_at: now,
        };
        self.stores.webhooks.create_webhook(&w).await?;
        self.orgs.audit_event("org.webhook_created", org.id, actor, Some(json!({"webhook": w.id, "url": w.url}))).await;
        Ok((w, secret))
    }

    pub async fn list(&self, actor: Actor, org_ref: &str) -> WebhookResult<Vec<Webhook>> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        Ok(self.stores.webhooks.webhooks_of(org.id).await?)
    }

    pub async fn delete(&self, actor: Actor, org_ref: &str, id: &str) -> WebhookResult<()> {
        let (org, w) = self.own(actor, org_ref, id).await?;
        self.stores.webhooks.delete_webhook(w.id).await?;
        self.orgs.audit_event("org.webhook_deleted", org.id, actor, Some(json!({"webhook": w.id, "url": w.url}))).await;
        Ok(())
    }

    /// A new secret, shown once; the previous one also signs for a day (receivers switch over).
    pub async fn rotate_secret(&self, actor: Actor, org_ref: &str, id: &str) -> WebhookResult<(Webhook, String)> {
        let (org, mut w) = self.own(actor, org_ref, id).await?;
        let secret = webhook::new_secret();
        let now = self.clock.now();
        w.previous_secret_sealed = Some(w.secret_sealed.clone());
        w.previous_until = Some(now.plus_secs(webhook::ROTATION_OVERLAP_SECS));
        w.secret_sealed = self.seal(w.id, &secret)?;
        w.updated_at = now;
        self.stores.webhooks.update_webhook(&w).await?;
        self.orgs.audit_event("org.webhook_secret_rotated", org.id, actor, Some(json!({"webhook": w.id}))).await;
        Ok((w, secret))
    }

    /// The latest delivery attempts, newest first.
    pub async fn deliveries(
        &self,
        actor: Actor,
        org_ref: &str,
        id: &str,
        limit: i64,
    ) -> WebhookResult<Vec<DeliveryAttempt>> {
        let (_, w) = self.own(actor, org_ref, id).await?;
        Ok(self.stores.webhooks.deliveries(w.id, limit.clamp(1, 500)).await?)
    }

    /// Sends a logged delivery's event again (same event id), as a new job.
    pub async fn redeliver(&self, actor: Actor, org_ref: &str, delivery: i64) -> WebhookResult<()> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let d = self.stores.webhooks.delivery(delivery).await?.ok_or(WebhookError::NotFound)?;
        let w =
            self.stores.webhooks.webhook(d.webhook).await?.filter(|w| w.org == org.id).ok_or(WebhookError::NotFound)?;
        let event: WebhookEvent = serde_json::from_str(&d.payload)
            .map_err(|e| WebhookError::Internal(anyhow::anyhow!("stored event: {e}")))?;
        let job = WebhookJob { webhook: w.id, event, first_at: self.clock.now().0 };
        self.stores.accounts.apply(vec![AccountOp::Enqueue(OutboxMessage::Webhook(Box::new(job)))]).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// The organization's events after `after` (a stream position), oldest first: (position,
    /// type, event JSON).
    pub async fn events_after(&self, org: OrgId, after: i64, limit: i64) -> WebhookResult<Vec<(i64, String, String)>> {
        let rows = self.stores.webhooks.org_events_after(org, after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(seq, payload)| {
                let kind = serde_json::from_str::<WebhookEvent>(&payload).map(|e| e.event_type).unwrap_or_default();
                (seq, kind, payload)
            })
            .collect())
    }

    /// The position of the organization's latest event (a new stream starts after it).
    pub async fn last_event(&self, org: OrgId) -> WebhookResult<i64> {
        Ok(self.stores.webhooks.last_org_event(org).await?)
    }

    /// Drops events older than a week (the stream resumes within that).
    pub async fn purge_events(&self) {
        let before = self.clock.now().plus_secs(-EVENT_RETENTION_SECS);
        match self.stores.webhooks.purge_org_events(before).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old organization events purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot purge old organization events"),
        }
    }

    /// Delivers one job (the outbox worker calls it): `Ok` when delivered, or dropped (webhook
    /// deleted, retried for a day already); `Err` to retry later.
    pub async fn deliver(&self, job: &WebhookJob, attempt: i64) -> anyhow::Result<()> {
        let Some(w) = self.stores.webhooks.webhook(job.webhook).await? else {
            tracing::info!(webhook = %job.webhook, "webhook deleted: delivery dropped");
            return Ok(());
        };
        let now = self.clock.now();
        let mut secrets = vec![self.open(w.id, &w.secret_sealed).map_err(|e| anyhow::anyhow!("{e}"))?];
        if let (Some(prev), Some(until)) = (&w.previous_secret_sealed, w.previous_until) {
            if until > now {
                secrets.push(self.open(w.id, prev).map_err(|e| anyhow::anyhow!("{e}"))?);
            }
        }
        let body = serde_json::to_vec(&job.event)?;
        let outcome = self.post(&w.url, &job.event.id, &body, &secrets).await;
        let (status, error, ms) = match &outcome {
            Ok((s, _, ms)) if (200..300).contains(s) => (Some(i64::from(*s)), None, *ms),
            Ok((s, _, ms)) => (Some(i64::from(*s)), Some(format!("answered {s}")), *ms),
            Err(reason) => (None, Some(reason.chars().take(300).collect::<String>()), 0),
        };
        let record = DeliveryAttempt {
            id: 0,
            webhook: w.id,
            event_id: job.event.id.clone(),
            event_type: job.event.event_type.clone(),
            attempt,
            at: now,
            status,
            error: error.clone(),
            duration_ms: ms,
            payload: String::from_utf8_lossy(&body).into_owned(),
        };
        if let Err(e) = self.stores.webhooks.record_delivery(&record).await {
            tracing::warn!(error = %e, webhook = %w.id, "cannot log the delivery attempt");
        }
        match error {
            None => Ok(()),
            Some(_) if now.0 - job.first_at >= webhook::RETRY_FOR_SECS => {
                tracing::warn!(webhook = %w.id, event = %job.event.id, "webhook delivery given up after a day of retries");
                Ok(())
            }
            Some(e) => anyhow::bail!("webhook {}: {e}", w.id),
        }
    }
}

/// Shows a job's kind in logs.
pub fn job_summary(job: &WebhookJob) -> String {
    format!("{} {}", job.event.event_type, job.event.id)
}
