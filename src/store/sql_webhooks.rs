//! SQL adapter of [`WebhookStore`], written once for SQLite and PostgreSQL like `sql.rs`.

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, is_fk_violation, SqlStore};
use super::{StoreError, StoreResult, WebhookStore};
use crate::domain::webhook::{DeliveryAttempt, Webhook};
use crate::domain::{OrgId, UnixTime, WebhookId};

const WEBHOOK_COLUMNS: &str =
    "id, org_id, url, events, secret_sealed, previous_secret_sealed, previous_until, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, attempt, at, status, error, duration_ms, payload";

macro_rules! impl_webhook_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn webhook_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<Webhook> {
                let events: String = r.try_get("events").map_err(db_err)?;
                Ok(Webhook {
                    id: WebhookId::from_uuid(r.try_get::<Uuid, _>("id").map_err(db_err)?),
                    org: OrgId::from_uuid(r.try_get::<Uuid, _>("org_id").map_err(db_err)?),
                    url: r.try_get("url").map_err(db_err)?,
                    events: events.split_whitespace().map(str::to_owned).collect(),
                    secret_sealed: r.try_get("secret_sealed").map_err(db_err)?,
                    previous_secret_sealed: r.try_get("previous_secret_sealed").map_err(db_err)?,
                    previous_until: r.try_get::<Option<i64>, _>("previous_until").map_err(db_err)?.map(UnixTime),
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    updated_at: UnixTime(r.try_get("updated_at").map_err(db_err)?),
                })
            }

            fn delivery_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<DeliveryAttempt> {
                Ok(DeliveryAttempt {
                    id: r.try_get("id").map_err(db_err)?,
                    webhook: WebhookId::from_uuid(r.try_get::<Uuid, _>("webhook_id").map_err(db_err)?),
                    event_id: r.try_get("event_id").map_err(db_err)?,
                    event_type: r.try_get("event_type").map_err(db_err)?,
                    attempt: r.try_get("attempt").map_err(db_err)?,
                    at: UnixTime(r.try_get("at").map_err(db_err)?),
                    status: r.try_get("status").map_err(db_err)?,
                    error: r.try_get("error").map_err(db_err)?,
                    duration_ms: r.try_get("duration_ms").map_err(db_err)?,
                    payload: r.try_get("payload").map_err(db_err)?,
                })
            }
        }

        #[async_trait]
        impl WebhookStore for SqlStore<$db> {
            async fn create_webhook(&self, w: &Webhook) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(&format!(
                    "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(w.id.as_uuid())
                .bind(w.org.as_uuid())
                .bind(&w.url)
                .bind(w.events.join(" "))
                .bind(&w.secret_sealed)
                .bind(&w.previous_secret_sealed)
                .bind(w.previous_until.map(|t| t.0))
                .bind(w.created_at.0)
                .bind(w.updated_at.0)
                .execute(&self.pool)
                .await
                .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })?;
                Ok(())
            }

            async fn webhook(&self, id: WebhookId) -> StoreResult<Option<Webhook>> {
                let row = sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::webhook_from_row).transpose()
            }

            async fn webhooks_of(&self, org: OrgId) -> StoreResult<Vec<Webhook>> {
                let rows =
                    sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id"))
                        .bind(org.as_uuid())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                rows.iter().map(Self::webhook_from_row).collect()
            }

            async fn update_webhook(&self, w: &Webhook) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query(
                    "UPDATE webhooks SET url = $2, events = $3, secret_sealed = $4, previous_secret_sealed = $5, \
                     previous_until = $6, updated_at = $7 WHERE id = $1",
                )
                .bind(w.id.as_uuid())
                .bind(&w.url)
                .bind(w.events.join(" "))
                .bind(&w.secret_sealed)
                .bind(&w.previous_secret_sealed)
                .bind(w.previous_until.map(|t| t.0))
                .bind(w.updated_at.0)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM webhooks WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn record_delivery(&self, d: &DeliveryAttempt) -> StoreResult<i64> {
                let _w = self.writing().await;
                let row = sqlx::query(
                    "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, attempt, at, status, error, \
                     duration_ms, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .bind(d.webhook.as_uuid())
                .bind(&d.event_id)
                .bind(&d.event_type)
                .bind(d.attempt)
                .bind(d.at.0)
                .bind(d.status)
                .bind(&d.error)
                .bind(d.duration_ms)
                .bind(&d.payload)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })?;
                row.try_get::<i64, _>("id").map_err(db_err)
            }

            async fn deliveries(&self, webhook: WebhookId, limit: i64) -> StoreResult<Vec<DeliveryAttempt>> {
                let rows = sqlx::query(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(webhook.as_uuid())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::delivery_from_row).collect()
            }

            async fn org_events_after(&self, org: OrgId, after: i64, limit: i64) -> StoreResult<Vec<(i64, String)>> {
                let rows = sqlx::query(
                    "SELECT seq, payload FROM org_events WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(org.as_uuid())
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok((r.try_get::<i64, _>("seq").map_err(db_err)?, r.try_get("payload").map_err(db_err)?)))
                    .collect()
            }

            async fn last_org_event(&self, org: OrgId) -> StoreResult<i64> {
                let row = sqlx::query("SELECT MAX(seq) AS m FROM org_events WHERE org_id = $1")
                    .bind(org.as_uuid())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(row.try_get::<Option<i64>, _>("m").map_err(db_err)?.unwrap_or(0))
            }

            async fn purge_org_events(&self, before: UnixTime) -> StoreResult<u64> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM org_events WHERE at < $1")
                    .bind(before.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected())
            }

            async fn delivery(&self, id: i64) -> StoreResult<Option<DeliveryAttempt>> {
                let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::delivery_from_row).transpose()
            }
        }
    };
}

impl_webhook_store!(Sqlite);
impl_webhook_store!(Postgres);
