//! [`EphemeralStore`] on Redis. Every Guichet process pointing at the same Redis (and key
//! prefix) sees the same sessions, counters and replay caches.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::ephemeral::{ttl_secs, EphemeralStore};
use super::{StoreError, StoreResult};

#[derive(Clone)]
pub struct RedisEphemeral {
    conn: ConnectionManager,
    prefix: String,
    incr_script: redis::Script,
    decr_script: redis::Script,
}

impl std::fmt::Debug for RedisEphemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEphemeral").field("prefix", &self.prefix).finish()
    }
}

fn err(e: redis::RedisError) -> StoreError {
    StoreError::unavailable(e)
}

impl RedisEphemeral {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(Duration::from_secs(10), ConnectionManager::new_with_config(client, cfg))
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting to redis"))??;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            // INCR, and start the window on the first increment only.
            incr_script: redis::Script::new(
                "local v = redis.call('INCR', KEYS[1]) \
                 if v == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end \
                 return v",
            ),
            // DECR an existing counter only (never create one without a TTL), not below 0.
            decr_script: redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then \
                   local v = redis.call('DECR', KEYS[1]) \
                   if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end \
                 end \
                 return 0",
            ),
        })
    }

    fn k(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

#[async_trait]
impl EphemeralStore for RedisEphemeral {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let mut c = self.conn.clone();
        redis::cmd("SET")
            .arg(self.k(key))
            .arg(value)
            .arg("EX")
            .arg(ttl_secs(ttl))
            .query_async::<()>(&mut c)
            .await
            .map_err(err)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let mut c = self.conn.clone();
        let r: Option<String> = redis::cmd("SET")
            .arg(self.k(key))
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl_secs(ttl))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(r.is_some())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut c = self.conn.clone();
        redis::cmd("GET").arg(self.k(key)).query_async(&mut c).await.map_err(err)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut c = self.conn.clone();
        redis::cmd("GETDEL").arg(self.k(key)).query_async(&mut c).await.map_err(err)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let mut c = self.conn.clone();
        redis::cmd("DEL").arg(self.k(key)).query_async::<()>(&mut c).await.map_err(err)
    }

    async fn incr(&self, key: &str, window: Duration) -> StoreResult<i64> {
        let mut c = self.conn.clone();
        self.incr_script.key(self.k(key)).arg(ttl_secs(window)).invoke_async(&mut c).await.map_err(err)
    }

    async fn decr(&self, key: &str) -> StoreResult<()> {
        let mut c = self.conn.clone();
        self.decr_script.key(self.k(key)).invoke_async::<i64>(&mut c).await.map(|_| ()).map_err(err)
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await.map(|_| ()).map_err(err)
    }
}
