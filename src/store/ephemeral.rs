//! Short-lived key/value data with TTLs: sessions, one-time codes, rate-limit counters,
//! replay caches. Two implementations behave the same (one contract test runs on both):
//! [`crate::store::sql::SqlEphemeral`] (the default; shared by every process using the same
//! database) and [`crate::store::redis_ephemeral::RedisEphemeral`] (when `REDIS_URL` is set).
//!
//! Keys are namespaced strings such as `sess:<digest>`; values are opaque bytes.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait EphemeralStore: Send + Sync {
    /// Sets `key` to `value` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;
    /// Sets `key` only when it is absent (or expired). Returns `true` when this call set it.
    /// Replay caches use this: the first presenter of a `jti` wins, later ones see `false`.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool>;
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Reads and deletes atomically: of several concurrent callers exactly one gets the value.
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Increments a counter, creating it at 1 with `window` as its lifetime. The window is not
    /// extended by later increments (fixed window). Returns the new value.
    async fn incr(&self, key: &str, window: Duration) -> StoreResult<i64>;
    /// Takes one back from an unexpired counter (not below zero, window unchanged); nothing
    /// when the counter does not exist.
    async fn decr(&self, key: &str) -> StoreResult<()>;
    /// Reachability, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
}

pub(crate) fn ttl_secs(ttl: Duration) -> i64 {
    // At least one second; a zero TTL would mean "expired at birth".
    i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX / 4)
}
