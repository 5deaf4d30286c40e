//! Wake-ups for the live event streams (`/api/v1/events/stream`). The database's event log is
//! the source of truth (ids, resumption with `Last-Event-ID`); this bus only tells streams
//! that an organization has something new, so they read it at once instead of at their next
//! poll. With Redis, every node hears every node's events through Redis pub/sub (channel
//! `<prefix>events`); without Redis, a node hears its own at once and other nodes' at the
//! next poll ([`EventBus::poll_interval`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::broadcast;

use crate::domain::OrgId;

pub struct EventBus {
    local: broadcast::Sender<OrgId>,
    redis: Option<(ConnectionManager, String)>,
}

impl EventBus {
    /// A bus for one node (no Redis).
    pub fn local() -> Arc<Self> {
        Arc::new(Self { local: broadcast::channel(256).0, redis: None })
    }

    /// A bus fanned out through Redis pub/sub: a subscriber task (reconnecting on its own)
    /// relays other nodes' events to this node's streams.
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let conn = tokio::time::timeout(Duration::from_secs(10), ConnectionManager::new(client.clone()))
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting to redis"))??;
        let channel = format!("{prefix}events");
        let bus = Arc::new(Self { local: broadcast::channel(256).0, redis: Some((conn, channel.clone())) });
        let tx = bus.local.clone();
        tokio::spawn(async move {
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut ps) => match ps.subscribe(&channel).await {
                        Ok(()) => {
                            tracing::debug!("event bus: subscribed");
                            let mut messages = ps.on_message();
                            while let Some(m) = messages.next().await {
                                let org = m.get_payload::<String>().ok().and_then(|s| s.parse::<uuid::Uuid>().ok());
                                if let Some(org) = org {
                                    let _ = tx.send(OrgId::from_uuid(org));
                                }
                            }
                            tracing::warn!("event bus: the subscription ended; subscribing again");
                        }
                        Err(e) => tracing::warn!(error = %e, "event bus: cannot subscribe"),
                    },
                    Err(e) => tracing::warn!(error = %e, "event bus: cannot reach redis"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(bus)
    }

    /// `redis` or `local`.
    pub fn fanout(&self) -> &'static str {
        if self.redis.is_some() {
            "redis"
        } else {
            "local"
        }
    }

    /// How often a stream reads the log when nothing woke it: what it would miss otherwise is
    /// another node's events without Redis, or one whose notice Redis lost.
    pub fn poll_interval(&self) -> Duration {
        if self.redis.is_some() {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1)
        }
    }

    /// The organization has new events (written and committed): wake its streams, here and,
    /// through Redis, on every node. Best effort: a stream that misses it polls.
    pub fn publish(&self, org: OrgId) {
        let _ = self.local.send(org);
        if let Some((conn, channel)) = &self.redis {
            let mut conn = conn.clone();
            let channel = channel.clone();
            tokio::spawn(async move {
                let sent: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(&channel).arg(org.to_string()).query_async(&mut conn).await;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "event bus: cannot publish (streams will poll)");
                }
            });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<OrgId> {
        self.local.subscribe()
    }
}
