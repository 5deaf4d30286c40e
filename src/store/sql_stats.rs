//! SQL adapter of [`StatsStore`]: the admin console's tallies (sign-ins per day, counts) and its
//! account search. Read-only; written once and expanded for SQLite and PostgreSQL like `sql.rs`.
//!
//! Days are UTC days of unix seconds, bucketed by integer division (`(at - since) / 86400`),
//! which both databases compute alike on BIGINT/INTEGER columns; `success` is a boolean in
//! PostgreSQL and 0/1 in SQLite, and `CASE WHEN success` reads both.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};

use super::sql::{db_err, decode_err, SqlStore};
use super::{LoginDay, StatsStore, StoreResult, Totals};
use crate::domain::{UnixTime, User, UserStatus};

const DAY_SECS: i64 = 86_400;

/// A `LIKE` pattern (with `ESCAPE '\'`) for "contains `query`", lower-cased.
fn contains_pattern(query: &str) -> String {
    let mut p = String::from("%");
    for c in query.trim().to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The condition of the account search: `$1` the pattern, `$2` the status (or NULL).
macro_rules! user_filter {
    () => {
        " WHERE (email_lookup LIKE $1 ESCAPE '\\' OR LOWER(COALESCE(name, '')) LIKE $1 ESCAPE '\\') \
          AND ($2 IS NULL OR status = $2)"
    };
}

macro_rules! impl_stats_store {
    ($db:ty) => {
        #[async_trait]
        impl StatsStore for SqlStore<$db> {
            async fn login_days(&self, since: UnixTime) -> StoreResult<Vec<LoginDay>> {
                let rows = sqlx::query(
                    "SELECT d, SUM(ok) AS ok, SUM(ko) AS ko FROM ( \
                       SELECT (at - $1) / 86400 AS d, CASE WHEN success THEN 1 ELSE 0 END AS ok, \
                              CASE WHEN success THEN 0 ELSE 1 END AS ko \
                       FROM login_events WHERE at >= $1 \
                       UNION ALL \
                       SELECT (at - $1) / 86400 AS d, 0 AS ok, 1 AS ko FROM audit_events \
                       WHERE at >= $1 AND action = 'login.failed' AND subject = 'unknown' \
                     ) t GROUP BY d ORDER BY d",
                )
                .bind(since.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        let d: i64 = r.try_get("d").map_err(db_err)?;
                        Ok(LoginDay {
                            day: since.plus_secs(d.saturating_mul(DAY_SECS)),
                            succeeded: r.try_get("ok").map_err(db_err)?,
                            failed: r.try_get("ko").map_err(db_err)?,
                        })
                    })
                    .collect()
            }

            async fn totals(&self) -> StoreResult<Totals> {
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM users GROUP BY status ORDER BY status")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                let mut users = Vec::with_capacity(rows.len());
                for r in &rows {
                    let status: String = r.try_get("status").map_err(db_err)?;
                    let status = UserStatus::from_str(&status).map_err(|e| decode_err("status", e))?;
                    users.push((status, r.try_get::<i64, _>("n").map_err(db_err)?));
                }
                let r = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM orgs) AS orgs, (SELECT COUNT(*) FROM clients) AS clients, \
                            (SELECT COUNT(*) FROM connections) AS connections",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(Totals {
                    users,
                    orgs: r.try_get("orgs").map_err(db_err)?,
                    clients: r.try_get("clients").map_err(db_err)?,
                    connections: r.try_get("connections").map_err(db_err)?,
                })
            }

            async fn find_users(
                &self,
                query: &str,
                status: Option<UserStatus>,
                limit: i64,
                offset: i64,
            ) -> StoreResult<(Vec<User>, i64)> {
                let pattern = contains_pattern(query);
                let status = status.map(|s| s.as_str());
                let total: i64 = sqlx::query(concat!("SELECT COUNT(*) AS n FROM users", user_filter!()))
                    .bind(&pattern)
                    .bind(status)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?
                    .try_get("n")
                    .map_err(db_err)?;
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users",
                    user_filter!(),
                    " ORDER BY email_lookup, id LIMIT $3 OFFSET $4"
                ))
                .bind(&pattern)
                .bind(status)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let users = rows.iter().map(Self::user_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok((users, total))
            }
        }
    };
}

impl_stats_store!(Sqlite);
impl_stats_store!(Postgres);

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern(" Ada "), "%ada%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
