//! Outgoing mail and SMS: composed in the user's language, written to the durable outbox (in the
//! transaction of the change that causes them, see `AccountOp::Enqueue`), and delivered by a
//! worker running on every node. A message is claimed with a lease, so a node that dies while
//! sending leaves it to be retried; failures are retried with exponential backoff (2 s, 4 s...,
//! at most an hour apart) and logged. Delivery is at least once.
//!
//! Mail drivers: `file` (one RFC 5322 `.eml` per message under `mail.outbox_dir`, the default of
//! the embedded setup) and `smtp` (lettre; STARTTLS, implicit TLS or none; optional auth).
//! SMS drivers: `file` (one `.sms.json` per message) and `http` (a JSON POST to a gateway).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use crate::config::{MailDriver, MailSettings, SmsDriver, SmsSettings, SmtpTls};
use crate::domain::account::{MailMessage, OutboxItem, OutboxMessage, SmsMessage};
use crate::domain::Clock;
use crate::store::JournalStore;

/// How long a claimed message is reserved for the node that claimed it, seconds, unless
/// `[outbox] lease_secs` says otherwise.
const LEASE_SECS: i64 = 120;
/// Idle polling period (messages queued on this node are sent at once; this picks up the
/// others' and the retries).
const POLL: Duration = Duration::from_secs(2);

pub enum MailTransport {
    File(PathBuf),
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
}

pub enum SmsTransport {
    File(PathBuf),
    Http { client: reqwest::Client, url: String, token: String },
}

/// Delivers outbox messages.
pub struct Delivery {
    from: Mailbox,
    mail: MailTransport,
    sms: SmsTransport,
    /// Webhook jobs are delivered by the server's webhook service (set once it exists).
    webhooks: std::sync::OnceLock<Arc<crate::webhooks::WebhookService>>,
    /// Back-channel logout notices are sent by the OpenID Provider (set once it exists).
    oidc: std::sync::OnceLock<Arc<crate::oidc::OidcProvider>>,
    /// Domain checks are run by the organizations service (set once it exists).
    orgs: std::sync::OnceLock<Arc<crate::orgs::OrgService>>,
    lease_secs: i64,
}

impl Delivery {
    pub fn new(mail: &MailSettings, sms: &SmsSettings) -> anyhow::Result<Self> {
        let from: Mailbox = mail.from.parse().map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
        let transport = match mail.driver {
            MailDriver::File => MailTransport::File(mail.outbox_dir.clone()),
            MailDriver::Smtp => {
                let host = mail.smtp_host.as_str();
                let mut b = match mail.smtp_tls {
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                    SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                }
                .port(mail.smtp_port)
                .timeout(Some(Duration::from_secs(mail.timeout_secs.max(1))));
                if !mail.smtp_username.is_empty() {
                    b = b.credentials(Credentials::new(mail.smtp_username.clone(), mail.smtp_password.clone()));
                }
                MailTransport::Smtp(Box::new(b.build()))
            }
        };
        let sms = match sms.driver {
            SmsDriver::File => SmsTransport::File(sms.outbox_dir.clone()),
            SmsDriver::Http => SmsTransport::Http {
                client: crate::net::client_builder()?.timeout(Duration::from_secs(10)).build()?,
                url: sms.http_url.clone(),
                token: sms.http_token.clone(),
            },
        };
        Ok(Self {
            from,
            mail: transport,
            sms,
            webhooks: std::sync::OnceLock::new(),
            oidc: std::sync::OnceLock::new(),
            orgs: std::sync::OnceLock::new(),
            lease_secs: LEASE_SECS,
        })
    }

    /// Lets this worker deliver webhook jobs.
    pub fn set_webhooks(&self, w: Arc<crate::webhooks::WebhookService>) {
        let _ = self.webhooks.set(w);
    }

    /// `[outbox] lease_secs`: how long a claim holds before another node may retry it.
    pub fn with_lease(mut self, secs: u64) -> Self {
        self.lease_secs = i64::try_from(secs).unwrap_or(LEASE_SECS);
        self
    }

    /// Lets this worker run domain checks.
    pub fn set_orgs(&self, o: Arc<crate::orgs::OrgService>) {
        let _ = self.orgs.set(o);
    }

    /// Lets this worker send back-channel logout notices.
    pub fn set_oidc(&self, o: Arc<crate::oidc::OidcProvider>) {
        let _ = self.oidc.set(o);
    }

    pub fn build_message(&self, m: &MailMessage) -> anyhow::Result<Message> {
        let to: Mailbox = m.to.parse().map_err(|e| anyhow::anyhow!("recipient: {e}"))?;
        Ok(Message::builder().from(self.from.clone()).to(to).subject(m.subject.clone()).message_id(None).multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(m.text.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(m.html.clone())),
        )?)
    }

    async fn deliver(&self, item: &OutboxItem) -> anyhow::Result<()> {
        match &item.message {
            OutboxMessage::Mail(m) => {
                let msg = self.build_message(m)?;
                match &self.mail {
                    MailTransport::File(dir) => {
                        write_file(dir, &format!("{}-{}.eml", unique_stamp(), item.id), &msg.formatted()).await
                    }
                    MailTransport::Smtp(t) => t.send(msg).await.map(|_| ()).map_err(anyhow::Error::from),
                }
            }
            OutboxMessage::Sms(s) => self.send_sms(item.id, s).await,
            OutboxMessage::Webhook(job) => match self.webhooks.get() {
                Some(w) => w.deliver(job, item.attempts).await,
                None => anyhow::bail!("webhooks are delivered by the server"),
            },
            OutboxMessage::BackchannelLogout(job) => match self.oidc.get() {
                Some(o) => o.deliver_backchannel_logout(job, item.attempts).await,
                None => anyhow::bail!("back-channel logout notices are sent by the server"),
            },
            OutboxMessage::DomainCheck(job) => match self.orgs.get() {
                Some(o) => o.run_domain_check(job, item.attempts).await,
                None => anyhow::bail!("domain checks are run by the server"),
            },
        }
    }

    async fn send_sms(&self, id: i64, s: &SmsMessage) -> anyhow::Result<()> {
        match &self.sms {
            SmsTransport::File(dir) => {
                let body = serde_json::to_vec_pretty(s)?;
                write_file(dir, &format!("{}-{}.sms.json", unique_stamp(), id), &body).await
            }
            SmsTransport::Http { client, url, token } => {
                let mut req = client.post(url).json(s);
                if !token.is_empty() {
                    req = req.bearer_auth(token);
                }
                let res = req.send().await?;
                if !res.status().is_success() {
                    anyhow::bail!("SMS gateway answered {}", res.status());
                }
                Ok(())
            }
        }
    }
}

fn unique_stamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}{:03}", now.as_secs(), now.subsec_millis())
}

/// Writes `name` under `dir` whole or not at all (temp file, then rename).
async fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, bytes).await.map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, dir.join(name)).await.map_err(|e| anyhow::anyhow!("cannot rename {}: {e}", tmp.display()))
}

/// A failed job that says when to run again (seconds), instead of the usual backoff.
#[derive(Debug)]
pub struct RetryAfter(pub i64);

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "to run again in {} s", self.0)
    }
}

impl std::error::Error for RetryAfter {}

/// Backoff after `attempts` failed deliveries: 2 s, 4 s, 8 s... at most an hour.
pub fn backoff_secs(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 12)).unwrap_or(12);
    (1i64 << exp).min(3600)
}

/// The outbox worker: wakes when this node queued something, else every [`POLL`].
pub fn spawn_worker(
    store: Arc<dyn JournalStore>,
    delivery: Arc<Delivery>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(POLL, wake.notified()).await;
            deliver_due(store.as_ref(), &delivery, clock.as_ref()).await;
        }
    })
}

/// Delivers every message that is due (one pass; the CLI calls it before exiting). Returns
/// how many were delivered.
pub async fn deliver_due(store: &dyn JournalStore, delivery: &Delivery, clock: &dyn Clock) -> usize {
    let mut delivered = 0;
    loop {
        let now = clock.now();
        let batch = match store.claim_outbox(now, delivery.lease_secs, 20).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: cannot claim messages");
                break;
            }
        };
        if batch.is_empty() {
            break;
        }
        for item in batch {
            let outcome = delivery.deliver(&item).await;
            let now = clock.now();
            let settled = match outcome {
                Ok(()) => {
                    delivered += 1;
                    tracing::info!(id = item.id, kind = item.message.kind(), "outbox: delivered");
                    store.outbox_sent(item.id, now).await
                }
                Err(e) => {
                    let wait =
                        e.downcast_ref::<RetryAfter>().map(|r| r.0).unwrap_or_else(|| backoff_secs(item.attempts));
                    tracing::warn!(id = item.id, kind = item.message.kind(), attempts = item.attempts, retry_in_secs = wait, error = %format!("{e:#}"), "outbox: delivery failed");
                    let msg: String = format!("{e:#}").chars().take(500).collect();
                    store.outbox_failed(item.id, &msg, now.plus_secs(wait)).await
                }
            };
            if let Err(e) = settled {
                tracing::warn!(error = %e, id = item.id, "outbox: cannot record the outcome (the message may be sent again)");
            }
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_secs(1), 2);
        assert_eq!(backoff_secs(2), 4);
        assert_eq!(backoff_secs(5), 32);
        assert_eq!(backoff_secs(40), 3600);
    }

    #[test]
    fn messages_are_multipart_alternative_with_ids() {
        let d = Delivery::new(&MailSettings::default(), &SmsSettings::default()).unwrap();
        let m = d
            .build_message(&MailMessage {
                to: "élodie@example.com".into(),
                subject: "Confirmez votre adresse e-mail".into(),
                text: "Bonjour,\nhttps://id.example.com/register/verify?token=abc".into(),
                html: "<p>Bonjour</p>".into(),
                lang: "fr".into(),
            })
            .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("Message-ID:"), "{raw}");
        assert!(raw.contains("Date:"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
    }
}
