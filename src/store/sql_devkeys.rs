//! SQL adapter of [`DevKeyStore`], written once for SQLite and PostgreSQL like `sql.rs`.

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, is_fk_violation, SqlStore};
use super::{DevKeyStore, StoreError, StoreResult};
use crate::domain::devkey::{DevKey, KeyOwner};
use crate::domain::{OrgId, UnixTime, UserId};

const COLUMNS: &str = "id, org_id, user_id, name, scopes, secret_digest, created_at, last_used_at, expires_at";

macro_rules! impl_devkey_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn devkey_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<DevKey> {
                let scopes: String = r.try_get("scopes").map_err(db_err)?;
                let org = r.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?;
                let user = r.try_get::<Option<Uuid>, _>("user_id").map_err(db_err)?;
                let owner = match (org, user) {
                    (Some(o), _) => KeyOwner::Org(OrgId::from_uuid(o)),
                    (None, Some(u)) => KeyOwner::User(UserId::from_uuid(u)),
                    (None, None) => {
                        return Err(StoreError::unavailable(anyhow::anyhow!("a developer key without owner")))
                    }
                };
                Ok(DevKey {
                    id: r.try_get("id").map_err(db_err)?,
                    owner,
                    name: r.try_get("name").map_err(db_err)?,
                    scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                    secret_digest: r.try_get("secret_digest").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    last_used_at: r.try_get::<Option<i64>, _>("last_used_at").map_err(db_err)?.map(UnixTime),
                    expires_at: r.try_get::<Option<i64>, _>("expires_at").map_err(db_err)?.map(UnixTime),
                })
            }
        }

        #[async_trait]
        impl DevKeyStore for SqlStore<$db> {
            async fn create_devkey(&self, k: &DevKey) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(&format!("INSERT INTO dev_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                    .bind(&k.id)
                    .bind(k.owner.org().map(|o| o.as_uuid()))
                    .bind(k.owner.user().map(|u| u.as_uuid()))
                    .bind(&k.name)
                    .bind(k.scopes.join(" "))
                    .bind(&k.secret_digest)
                    .bind(k.created_at.0)
                    .bind(k.last_used_at.map(|t| t.0))
                    .bind(k.expires_at.map(|t| t.0))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })?;
                Ok(())
            }

            async fn devkey(&self, id: &str) -> StoreResult<Option<DevKey>> {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM dev_keys WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::devkey_from_row).transpose()
            }

            async fn devkeys_of(&self, org: OrgId) -> StoreResult<Vec<DevKey>> {
                let rows =
                    sqlx::query(&format!("SELECT {COLUMNS} FROM dev_keys WHERE org_id = $1 ORDER BY created_at, id"))
                        .bind(org.as_uuid())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                rows.iter().map(Self::devkey_from_row).collect()
            }

            async fn devkeys_of_user(&self, user: UserId) -> StoreResult<Vec<DevKey>> {
                let rows =
                    sqlx::query(&format!("SELECT {COLUMNS} FROM dev_keys WHERE user_id = $1 ORDER BY created_at, id"))
                        .bind(user.as_uuid())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                rows.iter().map(Self::devkey_from_row).collect()
            }

            async fn delete_devkey(&self, id: &str) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM dev_keys WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn set_devkey_secret(&self, id: &str, digest: &str) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("UPDATE dev_keys SET secret_digest = $2 WHERE id = $1")
                    .bind(id)
                    .bind(digest)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn devkey_used(&self, id: &str, at: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("UPDATE dev_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }
        }
    };
}

impl_devkey_store!(Sqlite);
impl_devkey_store!(Postgres);
