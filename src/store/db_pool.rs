//! The connection pool the SQL stores run their statements on: sqlx's `Pool`, plus, for a
//! SQLite file, a stack of connections kept out of it for statements run outside transactions.
//!
//! sqlx 0.8 pings every connection on its way back into its pool (`PoolConnection`'s drop
//! spawns a task that sends the connection a `Ping` and waits for the answer). For SQLite that
//! is a round trip to the connection's worker thread after every statement: two thread
//! hand-offs, as many as the statement itself. A statement run on `&DbPool` takes a connection
//! from the stack instead and puts it back when done: no ping, no task.
//!
//! The stack owns at most half of the pool's connections (`stack_size`); transactions
//! (`store::begin`) take theirs from sqlx's pool as before. So a transaction never waits for
//! the stack, and a statement waits at most for the transactions in flight: no deadlock
//! whatever the mix (`statements_transactions_and_cancellations_share_a_small_pool` fails
//! when the stack may own them all). A connection is closed when it is taken past its
//! `max_lifetime`, or idle on the stack for `idle_timeout`: taken then, or found by `close_idle`,
//! which the store's periodic purge calls (sqlx's own idle reaper never sees the stack).
//!
//! PostgreSQL, and a SQLite database in memory (one connection, which transactions need),
//! use sqlx's pool directly: there the release ping runs in its task, off the request's path.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct DbPool<DB: Database> {
    pub(super) pool: Pool<DB>,
    stack: Option<Arc<Stack<DB>>>,
}

impl<DB: Database> Clone for DbPool<DB> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone(), stack: self.stack.clone() }
    }
}

impl<DB: Database> std::fmt::Debug for DbPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.stack.as_ref().map(|s| s.idle().len());
        f.debug_struct("DbPool").field("pool", &self.pool).field("stack_idle", &idle).finish()
    }
}

struct Stack<DB: Database> {
    idle: Mutex<Vec<Idle<DB>>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    max_lifetime: Duration,
    idle_timeout: Duration,
}

/// A connection on the stack: when it was opened (or taken from sqlx) and last put back.
struct Idle<DB: Database> {
    conn: PoolConnection<DB>,
    born: Instant,
    used: Instant,
}

impl<DB: Database> Stack<DB> {
    fn stale(&self, c: &Idle<DB>, now: Instant) -> bool {
        now.saturating_duration_since(c.born) >= self.max_lifetime
            || now.saturating_duration_since(c.used) >= self.idle_timeout
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle<DB>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<DB: Database> DbPool<DB> {
    /// sqlx's pool alone.
    pub fn plain(pool: Pool<DB>) -> Self {
        Self { pool, stack: None }
    }

    /// sqlx's pool, and a stack of up to `stack_size` of its connections (none when 0), each
    /// closed once `max_lifetime` old or `idle_timeout` unused.
    pub fn with_stack(
        pool: Pool<DB>,
        stack_size: usize,
        acquire_timeout: Duration,
        max_lifetime: Duration,
        idle_timeout: Duration,
    ) -> Self {
        let stack = (stack_size > 0).then(|| {
            Arc::new(Stack {
                idle: Mutex::new(Vec::with_capacity(stack_size)),
                permits: Arc::new(Semaphore::new(stack_size)),
                acquire_timeout,
                max_lifetime,
                idle_timeout,
            })
        });
        Self { pool, stack }
    }

    /// How many connections the stack may own for `max_connections` in the pool.
    pub fn stack_size(max_connections: u32) -> usize {
        (max_connections / 2) as usize
    }

    /// A connection from the stack (or, when it has none idle, from sqlx's pool) for one
    /// statement; `release` puts it back.
    async fn conn(&self, stack: &Arc<Stack<DB>>) -> Result<Conn<DB>, sqlx::Error> {
        let permit = tokio::time::timeout(stack.acquire_timeout, stack.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        // Most recently used first: its pages are the likeliest in its cache (and when it is
        // stale, so are the ones below it, which `close_idle` will find).
        let top = stack.idle().pop();
        let (conn, born) = match top {
            Some(c) if !stack.stale(&c, Instant::now()) => (c.conn, c.born),
            stale => {
                if let Some(mut c) = stale {
                    c.conn.close_on_drop();
                }
                (self.pool.acquire().await?, Instant::now())
            }
        };
        Ok(Conn { conn, born, stack: stack.clone(), _permit: permit })
    }

    /// Closes the connections on the stack idle for `idle_timeout` or older than
    /// `max_lifetime`; how many. sqlx's idle reaper does not see the stack, so a server gone
    /// quiet would otherwise keep them (and their page caches) open for good.
    pub async fn close_idle(&self) -> usize {
        let Some(stack) = &self.stack else { return 0 };
        let now = Instant::now();
        let stale: Vec<Idle<DB>> = {
            let mut idle = stack.idle();
            let (stale, keep) = std::mem::take(&mut *idle).into_iter().partition(|c| stack.stale(c, now));
            *idle = keep;
            stale
        };
        let n = stale.len();
        for c in stale {
            let _ = c.conn.close().await;
        }
        n
    }

    /// Connections idle on the stack now (the tests' view of it).
    #[cfg(test)]
    fn stacked(&self) -> usize {
        self.stack.as_ref().map_or(0, |s| s.idle().len())
    }
}

/// A connection taken by `DbPool::conn`, for the stack again through `release`. Dropped
/// instead (a request cancelled with its statement in flight), it goes back to sqlx's pool,
/// whose release ping waits for the statement to end.
struct Conn<DB: Database> {
    conn: PoolConnection<DB>,
    born: Instant,
    stack: Arc<Stack<DB>>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Conn<DB> {
    /// Back on the stack after `outcome`, unless the connection may be broken: only a success
    /// or an error reported by the database itself (a constraint, a busy timeout) keep it.
    fn release<T>(self, outcome: &Result<T, sqlx::Error>) {
        if matches!(outcome, Ok(_) | Err(sqlx::Error::Database(_))) {
            let used = Instant::now();
            self.stack.idle().push(Idle { conn: self.conn, born: self.born, used });
        }
    }
}

impl<DB: Database> std::ops::Deref for Conn<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> std::ops::DerefMut for Conn<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

/// `&DbPool` runs statements like `&Pool` does (`.fetch_optional(&self.pool)`): with a stack,
/// on a connection from `conn`; without, on sqlx's pool. Written per database: sqlx's generic
/// bound for this overflows.
macro_rules! impl_executor {
    ($db:ty) => {
        impl<'p> sqlx::Executor<'p> for &'_ DbPool<$db> {
            type Database = $db;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> futures_util::stream::BoxStream<
                'e,
                Result<sqlx::Either<<$db as Database>::QueryResult, <$db as Database>::Row>, sqlx::Error>,
            >
            where
                E: 'q + sqlx::Execute<'q, $db>,
            {
                let Some(stack) = self.stack.clone() else {
                    return sqlx::Executor::fetch_many(&self.pool, query);
                };
                let pool = self.clone();
                // Collected on the connection, then streamed: the connection is back on the
                // stack before the caller sees the rows (our statements return few).
                futures_util::stream::once(async move {
                    let mut conn = pool.conn(&stack).await?;
                    let all: Result<Vec<_>, _> = sqlx::Executor::fetch_many(&mut *conn, query).try_collect().await;
                    conn.release(&all);
                    Ok::<_, sqlx::Error>(futures_util::stream::iter(all?.into_iter().map(Ok::<_, sqlx::Error>)))
                })
                .try_flatten()
                .boxed()
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> futures_util::future::BoxFuture<'e, Result<Option<<$db as Database>::Row>, sqlx::Error>>
            where
                E: 'q + sqlx::Execute<'q, $db>,
            {
                let Some(stack) = self.stack.clone() else {
                    return sqlx::Executor::fetch_optional(&self.pool, query);
                };
                let pool = self.clone();
                Box::pin(async move {
                    let mut conn = pool.conn(&stack).await?;
                    let out = sqlx::Executor::fetch_optional(&mut *conn, query).await;
                    conn.release(&out);
                    out
                })
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                sql: &'q str,
                parameters: &'e [<$db as Database>::TypeInfo],
            ) -> futures_util::future::BoxFuture<'e, Result<<$db as Database>::Statement<'q>, sqlx::Error>> {
                let Some(stack) = self.stack.clone() else {
                    return sqlx::Executor::prepare_with(&self.pool, sql, parameters);
                };
                let pool = self.clone();
                Box::pin(async move {
                    let mut conn = pool.conn(&stack).await?;
                    let out = sqlx::Executor::prepare_with(&mut *conn, sql, parameters).await;
                    conn.release(&out);
                    out
                })
            }

            fn describe<'e, 'q: 'e>(
                self,
                sql: &'q str,
            ) -> futures_util::future::BoxFuture<'e, Result<sqlx::Describe<$db>, sqlx::Error>> {
                let Some(stack) = self.stack.clone() else {
                    return sqlx::Executor::describe(&self.pool, sql);
                };
                let pool = self.clone();
                Box::pin(async move {
                    let mut conn = pool.conn(&stack).await?;
                    let out = sqlx::Executor::describe(&mut *conn, sql).await;
                    conn.release(&out);
                    out
                })
            }
        }
    };
}

impl_executor!(sqlx::Sqlite);
impl_executor!(sqlx::Postgres);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::DbPool;

    async fn stacked_pool(dir: &std::path::Path, idle_timeout: Duration) -> DbPool<sqlx::Sqlite> {
        let opts = SqliteConnectOptions::new().filename(dir.join("t.db")).create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.unwrap();
        DbPool::with_stack(pool, 2, Duration::from_secs(5), Duration::from_secs(1800), idle_timeout)
    }

    async fn one(db: &DbPool<sqlx::Sqlite>) -> i64 {
        sqlx::query_scalar("SELECT 1").fetch_one(db).await.unwrap()
    }

    #[tokio::test]
    async fn idle_stacked_connections_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let db = stacked_pool(dir.path(), Duration::from_millis(200)).await;
        // Two statements at once leave two connections on the stack.
        let Some(stack) = db.stack.clone() else { panic!("a stack was asked for") };
        let (a, b) = (db.conn(&stack).await.unwrap(), db.conn(&stack).await.unwrap());
        a.release(&Ok::<(), sqlx::Error>(()));
        b.release(&Ok::<(), sqlx::Error>(()));
        assert_eq!(db.stacked(), 2);
        assert_eq!(db.close_idle().await, 0, "nothing is idle yet");
        assert_eq!(db.pool.size(), 2);

        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(db.close_idle().await, 2);
        assert_eq!(db.stacked(), 0);
        assert_eq!(db.pool.size(), 0, "closed, not handed back to sqlx's pool");
        // The pool opens what the next statement needs.
        assert_eq!(one(&db).await, 1);
        assert_eq!(db.stacked(), 1);
    }

    #[tokio::test]
    async fn a_stale_connection_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = stacked_pool(dir.path(), Duration::from_millis(100)).await;
        assert_eq!(one(&db).await, 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Taken idle past its timeout: closed, and the statement runs on a fresh one.
        assert_eq!(one(&db).await, 1);
        assert_eq!(db.stacked(), 1);
        for _ in 0..50 {
            if db.pool.size() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(db.pool.size(), 1, "the stale connection was closed");
        assert_eq!(db.close_idle().await, 0, "the fresh one is not idle");
    }
}
