//! SQL adapter of [`JournalStore`]: the outbox's job queue (claimed with a lease, so one node
//! at a time delivers a message) and the audit log (searches, the retention purge). Written
//! once and expanded for SQLite and PostgreSQL like `sql.rs`.

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, decode_err, SqlStore};
use super::{JournalStore, StoreResult};

use crate::domain::account::{AuditEvent, AuditFilter, AuditOutcome, OutboxItem, OutboxMessage};
use crate::domain::{OrgId, UnixTime};

macro_rules! audit_cols {
    () => {
        "id, at, action, subject, actor, detail, ip, user_agent, org_id, outcome"
    };
}

macro_rules! impl_journal_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn audit_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<(i64, AuditEvent)> {
                let outcome: String = r.try_get("outcome").map_err(db_err)?;
                Ok((
                    r.try_get::<i64, _>("id").map_err(db_err)?,
                    AuditEvent {
                        at: UnixTime(r.try_get("at").map_err(db_err)?),
                        action: r.try_get("action").map_err(db_err)?,
                        subject: r.try_get("subject").map_err(db_err)?,
                        actor: r.try_get("actor").map_err(db_err)?,
                        detail: r.try_get("detail").map_err(db_err)?,
                        ip: r.try_get("ip").map_err(db_err)?,
                        user_agent: r.try_get("user_agent").map_err(db_err)?,
                        org: r.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?.map(OrgId::from_uuid),
                        outcome: outcome.parse::<AuditOutcome>().map_err(|e| decode_err("audit outcome", e))?,
                    },
                ))
            }
        }

        #[async_trait]
        impl JournalStore for SqlStore<$db> {
            async fn enqueue(&self, messages: &[OutboxMessage]) -> StoreResult<()> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                for m in messages {
                    Self::enqueue_in(&mut tx, m, now, now).await?;
                }
                tx.commit().await.map_err(db_err)
            }

            async fn claim_outbox(&self, now: UnixTime, lease_secs: i64, limit: i64) -> StoreResult<Vec<OutboxItem>> {
                let _w = self.writing().await;
                // The outer conditions are checked again on the row a concurrent claimer just
                // updated (PostgreSQL re-reads it), so a message is claimed by one node at a time.
                let rows = sqlx::query(
                    "UPDATE outbox SET lease_until = $2, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
                                  AND (lease_until IS NULL OR lease_until <= $1) ORDER BY id LIMIT $3) \
                       AND sent_at IS NULL AND (lease_until IS NULL OR lease_until <= $1) \
                     RETURNING id, payload, attempts",
                )
                .bind(now.0)
                .bind(now.plus_secs(lease_secs).0)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let payload: String = r.try_get("payload").map_err(db_err)?;
                    out.push(OutboxItem {
                        id: r.try_get("id").map_err(db_err)?,
                        message: serde_json::from_str(&payload).map_err(|e| decode_err("outbox payload", e))?,
                        attempts: r.try_get("attempts").map_err(db_err)?,
                    });
                }
                out.sort_by_key(|i| i.id);
                Ok(out)
            }

            async fn outbox_sent(&self, id: i64, now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("UPDATE outbox SET sent_at = $2, lease_until = NULL, last_error = NULL WHERE id = $1")
                    .bind(id)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            async fn outbox_failed(&self, id: i64, error: &str, next_attempt_at: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("UPDATE outbox SET lease_until = NULL, last_error = $2, next_attempt_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .bind(next_attempt_at.0)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            async fn outbox_pending(&self) -> StoreResult<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.try_get::<i64, _>("n").map_err(db_err)
            }

            async fn audit_events(&self, limit: i64) -> StoreResult<Vec<AuditEvent>> {
                let rows =
                    sqlx::query(concat!("SELECT ", audit_cols!(), " FROM audit_events ORDER BY id DESC LIMIT $1"))
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                rows.iter().map(|r| Self::audit_from_row(r).map(|(_, e)| e)).collect()
            }

            async fn audit_of(
                &self,
                subject: &str,
                action: Option<&str>,
                before: Option<i64>,
                limit: i64,
            ) -> StoreResult<Vec<(i64, AuditEvent)>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    audit_cols!(),
                    " FROM audit_events WHERE subject = $1 AND ($2 IS NULL OR action = $2) AND id < $3 \
                      ORDER BY id DESC LIMIT $4"
                ))
                .bind(subject)
                .bind(action)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::audit_from_row).collect()
            }

            async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<(i64, AuditEvent)>> {
                // Only the filter's conditions, so each search uses the index that fits it.
                let mut q =
                    sqlx::QueryBuilder::<$db>::new(concat!("SELECT ", audit_cols!(), " FROM audit_events WHERE id < "));
                q.push_bind(f.before.unwrap_or(i64::MAX));
                if let Some(org) = f.org {
                    q.push(" AND org_id = ").push_bind(org.as_uuid());
                }
                if let Some(a) = &f.action {
                    if f.action_prefix {
                        q.push(" AND substr(action, 1, ")
                            .push_bind(i32::try_from(a.chars().count()).unwrap_or(i32::MAX))
                            .push(") = ")
                            .push_bind(a.clone());
                    } else {
                        q.push(" AND action = ").push_bind(a.clone());
                    }
                }
                if !f.actors.is_empty() {
                    q.push(" AND actor IN (");
                    let mut list = q.separated(", ");
                    for a in &f.actors {
                        list.push_bind(a.clone());
                    }
                    q.push(")");
                }
                if let Some(s) = &f.subject {
                    q.push(" AND subject = ").push_bind(s.clone());
                }
                if let Some(o) = f.outcome {
                    q.push(" AND outcome = ").push_bind(o.as_str());
                }
                if let Some(t) = f.from {
                    q.push(" AND at >= ").push_bind(t.0);
                }
                if let Some(t) = f.until {
                    q.push(" AND at < ").push_bind(t.0);
                }
                q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit.max(0));
                let rows = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(Self::audit_from_row).collect()
            }

            async fn purge_audit(&self, before: UnixTime) -> StoreResult<u64> {
                let _w = self.writing().await;
                sqlx::query("DELETE FROM audit_events WHERE at < $1")
                    .bind(before.0)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(db_err)
            }
        }
    };
}

impl_journal_store!(Sqlite);
impl_journal_store!(Postgres);
