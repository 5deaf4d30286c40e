//! SQL adapter of [`MfaStore`], written once for SQLite and PostgreSQL like `sql.rs`.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, decode_err, SqlStore};
use super::{MfaStore, StoreResult};
use crate::domain::mfa::{Factor, FactorKind};
use crate::domain::{UnixTime, UserId};

macro_rules! impl_mfa_store {
    ($db:ty) => {
        #[async_trait]
        impl MfaStore for SqlStore<$db> {
            async fn factors_of(&self, user: UserId) -> StoreResult<Vec<Factor>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, kind, name, secret, confirmed, last_step, created_at, last_used_at \
                     FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind").map_err(db_err)?;
                        Ok(Factor {
                            id: r.try_get("id").map_err(db_err)?,
                            user_id: UserId::from_uuid(r.try_get::<Uuid, _>("user_id").map_err(db_err)?),
                            kind: FactorKind::from_str(&kind).map_err(|e| decode_err("factor kind", e))?,
                            name: r.try_get("name").map_err(db_err)?,
                            secret_sealed: r.try_get("secret").map_err(db_err)?,
                            confirmed: r.try_get("confirmed").map_err(db_err)?,
                            last_step: r.try_get("last_step").map_err(db_err)?,
                            created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                            last_used_at: r.try_get::<Option<i64>, _>("last_used_at").map_err(db_err)?.map(UnixTime),
                        })
                    })
                    .collect()
            }

            async fn accept_totp_step(&self, id: Uuid, step: i64, now: UnixTime) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query(
                    "UPDATE mfa_factors SET last_step = $2, last_used_at = $3 \
                     WHERE id = $1 AND (last_step IS NULL OR last_step < $2)",
                )
                .bind(id)
                .bind(step)
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn use_recovery_code(&self, user: UserId, digest: &str, now: UnixTime) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND digest = $2 AND used_at IS NULL",
                )
                .bind(user.as_uuid())
                .bind(digest)
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, user: UserId) -> StoreResult<i64> {
                let row =
                    sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                        .bind(user.as_uuid())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                row.try_get::<i64, _>("n").map_err(db_err)
            }
        }
    };
}

impl_mfa_store!(Sqlite);
impl_mfa_store!(Postgres);
