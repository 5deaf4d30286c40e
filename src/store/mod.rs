//! Storage ports (traits) and their adapters.
//!
//! Durable data lives behind narrow traits ([`UserStore`], later `ClientStore`, `GrantStore`, ...)
//! implemented once per backend (SQLite, PostgreSQL). Short-lived data (sessions, one-time codes,
//! rate-limit counters, replay caches) lives behind [`EphemeralStore`], backed by the SQL database
//! by default and by Redis when `REDIS_URL` is set. Only `app.rs` knows which implementation is used.

pub mod ephemeral;
pub mod migrations;
pub mod redis_ephemeral;
pub mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{NewUser, User, UserId, UserStatus};

pub use ephemeral::EphemeralStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; `constraint` names the rule (e.g. `users_email`).
    #[error("conflict on {constraint}")]
    Conflict { constraint: &'static str },
    /// The backend could not be reached or failed. Never shown to clients.
    #[error("store unavailable: {0:#}")]
    Unavailable(#[source] anyhow::Error),
}

impl StoreError {
    pub fn unavailable(e: impl Into<anyhow::Error>) -> Self {
        StoreError::Unavailable(e.into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user plus the secret material needed to authenticate them. Kept apart from [`User`] so the
/// hash never travels into templates or JSON by accident.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials").field("user", &self.user).finish_non_exhaustive()
    }
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the account; `Conflict{constraint:"users_email"}` when the email is taken
    /// (case-insensitively, after NFC).
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Look-up by [`crate::domain::Email::lookup_key`].
    async fn credentials_by_email(&self, lookup_key: &str) -> StoreResult<Option<UserCredentials>>;
    async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<Vec<User>>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()>;
    async fn set_status(&self, id: UserId, status: UserStatus) -> StoreResult<()>;
}

/// Liveness of a backing service, for `/readyz`.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}

/// Every store the application uses, chosen once in `app.rs`.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub durable_health: Arc<dyn Health>,
    pub backend: &'static str,
    pub ephemeral_backend: &'static str,
}

/// Default timeout for acquiring a pooled connection: a dead database must fail readiness
/// quickly, not hang requests.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
