//! The SQL adapters: SQLite (default) and PostgreSQL.
//!
//! Both backends run the same statements (`$n` placeholders are understood by both, as are
//! `ON CONFLICT` and `RETURNING`), so the trait implementations are written once, in
//! `impl_sql_store!`, and expanded for each concrete pool type: the compiler type-checks every
//! query against each driver separately, with no `sqlx::Any` and no `if backend` in queries.
//! A statement that needs a dialect of its own would take a per-backend constant here.
//! Schemas differ where the types do (UUID vs BLOB, BOOLEAN vs INTEGER) and live in
//! `migrations/{sqlite,postgres}`.

use std::os::unix::fs::DirBuilderExt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Row, Sqlite};
use uuid::Uuid;

use super::db_pool::DbPool;
use super::ephemeral::{ttl_secs, EphemeralStore};
use super::migrations;
use super::{Health, StoreError, StoreResult, UserCredentials, UserStore, ACQUIRE_TIMEOUT};
use crate::domain::{Clock, Email, NewUser, UnixTime, User, UserId, UserStatus};

/// A SQL database: the durable store, and the default ephemeral store.
pub struct SqlStore<DB: sqlx::Database> {
    pub(super) pool: DbPool<DB>,
    pub(super) clock: Arc<dyn Clock>,
    /// The database file (SQLite only; empty otherwise).
    file: std::path::PathBuf,
    /// SQLite only: writers of this process take turns here instead of in SQLite's busy handler,
    /// whose sleeps (1, 2, 5, 10 ms...) put a long tail on every write under load. Readers never
    /// wait (WAL). PostgreSQL has row locks: None.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            clock: self.clock.clone(),
            file: self.file.clone(),
            writer: self.writer.clone(),
        }
    }
}

/// The ephemeral store on the SQL database (a separate name so the composition root reads well).
pub type SqlEphemeral<DB> = SqlStore<DB>;

pub type SqliteStore = SqlStore<Sqlite>;
pub type PgStore = SqlStore<Postgres>;

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Held for the duration of a write (statement or transaction); see `writer`.
    pub(super) async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }
}

pub(super) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => StoreError::unavailable(other),
    }
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// The refresh-token rotation trigger (migration 14) refused: the parent was spent meanwhile.
/// PostgreSQL raises SQLSTATE GU001; SQLite's `RAISE(ABORT, ...)` carries only the message.
pub(super) fn is_rotation_refused(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.code().as_deref() == Some("GU001") || d.message() == "refresh token already rotated")
}

pub(super) fn decode_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(anyhow::anyhow!("corrupt {what} in database: {e}"))
}

impl SqliteStore {
    /// Opens (creating the file and its directory if needed) and migrates.
    pub async fn connect(url: &str, max_connections: u32, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = opts.get_filename().to_path_buf();
        // sqlx names `sqlite::memory:` `file:sqlx-in-memory-N` (a shared-cache memory database):
        // judged by the URL too, so that no migration lock file is made for it in the CWD.
        let in_memory = file.as_os_str().is_empty()
            || file.to_string_lossy().contains(":memory:")
            || url.contains(":memory:")
            || url.contains("mode=memory");
        if let Some(dir) = file.parent().filter(|d| !in_memory && !d.as_os_str().is_empty()) {
            if !dir.exists() {
                // Password hashes live here: owner-only.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create database directory {}: {e}", dir.display()))?;
            }
        }
        let pool_options = SqlitePoolOptions::new()
            // No ping when a connection is taken from the pool: sqlx's default sends one to the
            // connection's worker thread before every query (two thread hand-offs), and a
            // SQLite connection is an open file in this process, with no peer to lose.
            .test_before_acquire(false)
            // An in-memory database exists once per connection: keep exactly one.
            .max_connections(if in_memory { 1 } else { max_connections.max(1) })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory { None } else { Some(SQLITE_IDLE_TIMEOUT) })
            .max_lifetime(if in_memory { None } else { Some(SQLITE_MAX_LIFETIME) })
            .acquire_timeout(ACQUIRE_TIMEOUT);
        // Two processes opening a new database at once: switching it to WAL needs a lock that
        // SQLite may refuse at once (SQLITE_BUSY, no busy handler for that step). Try again
        // for a few seconds rather than fail the start.
        let mut attempt = 0u32;
        let pool = loop {
            match pool_options.clone().connect_with(opts.clone()).await {
                Ok(p) => break p,
                Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("5") && attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(5)))).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let file = if in_memory { std::path::PathBuf::new() } else { file };
        let pool = if in_memory {
            DbPool::plain(pool)
        } else {
            DbPool::with_stack(
                pool,
                DbPool::<Sqlite>::stack_size(max_connections),
                ACQUIRE_TIMEOUT,
                SQLITE_MAX_LIFETIME,
                SQLITE_IDLE_TIMEOUT,
            )
        };
        Ok(Self { pool, clock, file, writer: Some(Arc::new(tokio::sync::Mutex::new(()))) })
    }

    pub async fn migrate(&self) -> anyhow::Result<Vec<i64>> {
        let _guard = sqlite_migration_lock(&self.file).await?;
        run_migrations(&self.pool.pool, migrations::SQLITE).await
    }
}

/// A SQLite connection is closed and replaced after this long (its page cache let go).
const SQLITE_MAX_LIFETIME: Duration = Duration::from_secs(1800);

/// A SQLite connection unused this long is closed (sqlx's pool; the stack through
/// `DbPool::close_idle`, called by the periodic purge).
const SQLITE_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a PostgreSQL connection may sit in the pool before it is pinged on its next use.
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(30);

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            // sqlx pings every connection it hands out by default: a network round trip before
            // every query. A busy connection has just proved itself; only one that sat idle
            // long enough for a server restart or a firewall's idle cut is pinged first (and
            // replaced if the ping fails).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PG_PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect_with(opts)
            .await?;
        Ok(Self { pool: DbPool::plain(pool), clock, file: std::path::PathBuf::new(), writer: None })
    }

    pub async fn migrate(&self) -> anyhow::Result<Vec<i64>> {
        run_migrations(&self.pool.pool, migrations::POSTGRES).await
    }
}

/// Applies pending migrations; returns the versions applied by this call. Concurrent starters
/// are serialised (PostgreSQL advisory lock; a lock file beside a SQLite database), and the
/// applied list is read inside the lock, so each step is applied, and reported, exactly once.
async fn run_migrations<DB>(pool: &Pool<DB>, list: &'static [migrations::Embedded]) -> anyhow::Result<Vec<i64>>
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
{
    use sqlx::migrate::Migrate;
    let mut conn = pool.acquire().await?;
    conn.lock().await?;
    let result = async {
        conn.ensure_migrations_table().await?;
        let before: Vec<i64> = conn.list_applied_migrations().await?.iter().map(|m| m.version).collect();
        let mut m = migrations::migrator(list);
        m.set_locking(false);
        m.run_direct(&mut *conn).await?;
        Ok::<_, anyhow::Error>(list.iter().map(|m| m.version).filter(|v| !before.contains(v)).collect())
    }
    .await;
    conn.unlock().await?;
    result
}

/// An exclusive lock on `<database file>.migrate.lock`, held until dropped.
async fn sqlite_migration_lock(db_file: &std::path::Path) -> anyhow::Result<Option<std::fs::File>> {
    let name = db_file.to_string_lossy();
    if name.is_empty() || name.contains(":memory:") {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(format!("{name}.migrate.lock"));
    let f = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        f.lock()?;
        Ok(f)
    })
    .await??;
    Ok(Some(f))
}

/// The user columns every user query selects, in `user_from_row` order.
macro_rules! user_cols {
    () => {
        "id, email, name, status, is_admin, email_verified, phone_number, phone_number_verified, address, locale, time_zone, terms_version, terms_accepted_at, newsletter_consent_at, created_at, updated_at"
    };
}

/// The names `user_from_row` reads, in `user_cols!()` order.
pub(super) const USER_COLUMNS: [&str; 16] = [
    "id",
    "email",
    "name",
    "status",
    "is_admin",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "locale",
    "time_zone",
    "terms_version",
    "terms_accepted_at",
    "newsletter_consent_at",
    "created_at",
    "updated_at",
];

/// The same names with the `u_` prefix of `joined_user_cols!()` (src/store/sql_oidc.rs): a user
/// read in the same statement as a table whose columns share names (`created_at`...).
pub(super) const JOINED_USER_COLUMNS: [&str; 16] = [
    "u_id",
    "u_email",
    "u_name",
    "u_status",
    "u_is_admin",
    "u_email_verified",
    "u_phone_number",
    "u_phone_number_verified",
    "u_address",
    "u_locale",
    "u_time_zone",
    "u_terms_version",
    "u_terms_accepted_at",
    "u_newsletter_consent_at",
    "u_created_at",
    "u_updated_at",
];

macro_rules! impl_sql_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            pub(super) fn user_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<User> {
                Self::user_from_columns(row, &USER_COLUMNS)
            }

            /// The user of a `LEFT JOIN (SELECT joined_user_cols!() FROM users) u`: None when
            /// no user row matched.
            pub(super) fn joined_user_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<Option<User>> {
                match row.try_get::<Option<Uuid>, _>(JOINED_USER_COLUMNS[0]).map_err(db_err)? {
                    None => Ok(None),
                    Some(_) => Self::user_from_columns(row, &JOINED_USER_COLUMNS).map(Some),
                }
            }

            fn user_from_columns(row: &<$db as sqlx::Database>::Row, c: &[&str; 16]) -> StoreResult<User> {
                let id: Uuid = row.try_get(c[0]).map_err(db_err)?;
                let email: String = row.try_get(c[1]).map_err(db_err)?;
                let status: String = row.try_get(c[3]).map_err(db_err)?;
                Ok(User {
                    id: UserId::from_uuid(id),
                    email: Email::parse(&email).map_err(|e| decode_err("email", e))?,
                    name: row.try_get(c[2]).map_err(db_err)?,
                    status: UserStatus::from_str(&status).map_err(|e| decode_err("status", e))?,
                    is_admin: row.try_get(c[4]).map_err(db_err)?,
                    email_verified: row.try_get(c[5]).map_err(db_err)?,
                    phone_number: row.try_get(c[6]).map_err(db_err)?,
                    phone_number_verified: row.try_get(c[7]).map_err(db_err)?,
                    address: row
                        .try_get::<Option<String>, _>(c[8])
                        .map_err(db_err)?
                        .map(|a| serde_json::from_str(&a))
                        .transpose()
                        .map_err(|e| decode_err("address", e))?,
                    locale: row.try_get(c[9]).map_err(db_err)?,
                    time_zone: row.try_get(c[10]).map_err(db_err)?,
                    terms_version: row.try_get(c[11]).map_err(db_err)?,
                    terms_accepted_at: row.try_get::<Option<i64>, _>(c[12]).map_err(db_err)?.map(UnixTime),
                    newsletter_consent_at: row.try_get::<Option<i64>, _>(c[13]).map_err(db_err)?.map(UnixTime),
                    created_at: UnixTime(row.try_get(c[14]).map_err(db_err)?),
                    updated_at: UnixTime(row.try_get(c[15]).map_err(db_err)?),
                })
            }

            /// Deletes expired ephemeral rows; returns how many.
            pub async fn purge_expired(&self) -> StoreResult<u64> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM ephemeral WHERE expires_at <= $1")
                    .bind(self.clock.now().0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected())
            }

            pub fn now(&self) -> UnixTime {
                self.clock.now()
            }

            /// Closes the connections unused for the pool's idle timeout that sqlx's own reaper
            /// cannot see (a SQLite file's statement stack, `DbPool::close_idle`); how many.
            pub async fn close_idle_connections(&self) -> usize {
                self.pool.close_idle().await
            }

            pub fn pool(&self) -> &Pool<$db> {
                &self.pool.pool
            }
        }

        #[async_trait]
        impl UserStore for SqlStore<$db> {
            async fn create_user(&self, new: NewUser) -> StoreResult<User> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let id = UserId::new_random();
                let row = sqlx::query(concat!(
                    "INSERT INTO users (id, email, email_lookup, name, password_hash, status, is_admin, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                     RETURNING ",
                    user_cols!()
                ))
                .bind(id.as_uuid())
                .bind(new.email.as_str())
                .bind(new.email.lookup_key())
                .bind(new.name.as_deref())
                .bind(new.password_hash.as_deref())
                .bind(new.status.as_str())
                .bind(new.is_admin)
                .bind(now.0)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict { constraint: "users_email" } } else { db_err(e) })?;
                Self::user_from_row(&row)
            }

            async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
                let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn credentials_by_email(&self, lookup_key: &str) -> StoreResult<Option<UserCredentials>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    ", password_hash FROM users WHERE email_lookup = $1"
                ))
                .bind(lookup_key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some(UserCredentials {
                        user: Self::user_from_row(&row)?,
                        password_hash: row.try_get("password_hash").map_err(db_err)?,
                    })),
                }
            }

            async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<Vec<User>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users ORDER BY created_at, email_lookup LIMIT $1 OFFSET $2"
                ))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::user_from_row).collect()
            }

            async fn search_users(
                &self,
                q: Option<&str>,
                status: Option<UserStatus>,
                after: Option<UserId>,
                limit: i64,
            ) -> StoreResult<Vec<User>> {
                let mut sql = String::from(concat!("SELECT ", user_cols!(), " FROM users WHERE 1 = 1"));
                let mut n = 0;
                let pattern = q.map(|q| {
                    let escaped = q.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    format!("%{escaped}%")
                });
                if pattern.is_some() {
                    n += 1;
                    sql.push_str(&format!(
                        " AND (email_lookup LIKE ${n} ESCAPE '\\' OR lower(COALESCE(name, '')) LIKE ${n} ESCAPE '\\')"
                    ));
                }
                if status.is_some() {
                    n += 1;
                    sql.push_str(&format!(" AND status = ${n}"));
                }
                if after.is_some() {
                    n += 1;
                    sql.push_str(&format!(" AND id > ${n}"));
                }
                sql.push_str(&format!(" ORDER BY id LIMIT ${}", n + 1));
                let mut query = sqlx::query(&sql);
                if let Some(p) = pattern {
                    query = query.bind(p);
                }
                if let Some(s) = status {
                    query = query.bind(s.as_str());
                }
                if let Some(a) = after {
                    query = query.bind(a.as_uuid());
                }
                let rows = query.bind(limit).fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(Self::user_from_row).collect()
            }

            async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(self.clock.now().0)
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn set_status(&self, id: UserId, status: UserStatus) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(self.clock.now().0)
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }
        }

        #[async_trait]
        impl Health for SqlStore<$db> {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(db_err)
            }
        }

        #[async_trait]
        impl EphemeralStore for SqlStore<$db> {
            async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
                let _w = self.writing().await;
                let exp = self.clock.now().plus_secs(ttl_secs(ttl));
                sqlx::query(
                    "INSERT INTO ephemeral (key, value, counter, expires_at) VALUES ($1, $2, 0, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, counter = 0, expires_at = excluded.expires_at",
                )
                .bind(key)
                .bind(value)
                .bind(exp.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
                let _w = self.writing().await;
                let now = self.clock.now();
                // Inserts, or replaces a row that has expired; a live row is left alone and
                // nothing is returned.
                let row = sqlx::query(
                    "INSERT INTO ephemeral (key, value, counter, expires_at) VALUES ($1, $2, 0, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, counter = 0, expires_at = excluded.expires_at \
                     WHERE ephemeral.expires_at <= $4 RETURNING key",
                )
                .bind(key)
                .bind(value)
                .bind(now.plus_secs(ttl_secs(ttl)).0)
                .bind(now.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(row.is_some())
            }

            async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
                let row = sqlx::query("SELECT value FROM ephemeral WHERE key = $1 AND expires_at > $2")
                    .bind(key)
                    .bind(self.clock.now().0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.map(|r| r.try_get::<Vec<u8>, _>("value").map_err(db_err)).transpose()
            }

            async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
                let _w = self.writing().await;
                // One statement: of concurrent takers only one sees the row.
                let row = sqlx::query("DELETE FROM ephemeral WHERE key = $1 RETURNING value, expires_at")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                let now = self.clock.now().0;
                match row {
                    Some(r) if r.try_get::<i64, _>("expires_at").map_err(db_err)? > now => {
                        Ok(Some(r.try_get::<Vec<u8>, _>("value").map_err(db_err)?))
                    }
                    _ => Ok(None),
                }
            }

            async fn delete(&self, key: &str) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("DELETE FROM ephemeral WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            async fn incr(&self, key: &str, window: Duration) -> StoreResult<i64> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let row = sqlx::query(
                    "INSERT INTO ephemeral (key, value, counter, expires_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (key) DO UPDATE SET \
                       counter = CASE WHEN ephemeral.expires_at <= $4 THEN 1 ELSE ephemeral.counter + 1 END, \
                       expires_at = CASE WHEN ephemeral.expires_at <= $4 THEN excluded.expires_at ELSE ephemeral.expires_at END \
                     RETURNING counter",
                )
                .bind(key)
                .bind(&b""[..])
                .bind(now.plus_secs(ttl_secs(window)).0)
                .bind(now.0)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                row.try_get::<i64, _>("counter").map_err(db_err)
            }

            async fn decr(&self, key: &str) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("UPDATE ephemeral SET counter = counter - 1 WHERE key = $1 AND expires_at > $2 AND counter > 0")
                    .bind(key)
                    .bind(self.clock.now().0)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            async fn ping(&self) -> StoreResult<()> {
                Health::ping(self).await
            }
        }
    };
}

impl_sql_store!(Sqlite);
impl_sql_store!(Postgres);
