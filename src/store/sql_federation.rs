//! SQL adapter of [`FederationStore`], written once for SQLite and PostgreSQL like `sql.rs`.

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, decode_err, is_fk_violation, SqlStore};
use super::{FederationStore, StoreError, StoreResult};
use crate::domain::federation::{Connection, ConnectionConfig, IdentityLink};
use crate::domain::{ConnectionId, OrgId, UnixTime, UserId};

macro_rules! impl_federation_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// Connections from rows of `connections` left-joined with `connection_orgs` (one row
            /// per organization), ordered by connection.
            fn connections_from_rows(rows: &[<$db as sqlx::Database>::Row]) -> StoreResult<Vec<Connection>> {
                let mut out: Vec<Connection> = Vec::new();
                for r in rows {
                    let id = ConnectionId::from_uuid(r.try_get::<Uuid, _>("id").map_err(db_err)?);
                    if out.last().map(|c| c.id) != Some(id) {
                        let raw: String = r.try_get("config").map_err(db_err)?;
                        let config: ConnectionConfig =
                            serde_json::from_str(&raw).map_err(|e| decode_err("connection config", e))?;
                        out.push(Connection {
                            id,
                            name: r.try_get("name").map_err(db_err)?,
                            config,
                            orgs: Vec::new(),
                            created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                            updated_at: UnixTime(r.try_get("updated_at").map_err(db_err)?),
                        });
                    }
                    if let (Some(o), Some(last)) = (r.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?, out.last_mut()) {
                        last.orgs.push(OrgId::from_uuid(o));
                    }
                }
                Ok(out)
            }

            fn link_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<IdentityLink> {
                Ok(IdentityLink {
                    connection: ConnectionId::from_uuid(r.try_get::<Uuid, _>("connection_id").map_err(db_err)?),
                    subject: r.try_get("subject").map_err(db_err)?,
                    user_id: UserId::from_uuid(r.try_get::<Uuid, _>("user_id").map_err(db_err)?),
                    email: r.try_get("email").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    last_login_at: UnixTime(r.try_get("last_login_at").map_err(db_err)?),
                })
            }
        }

        #[async_trait]
        impl FederationStore for SqlStore<$db> {
            async fn create_connection(&self, c: &Connection) -> StoreResult<()> {
                let _w = self.writing().await;
                let config = serde_json::to_string(&c.config).map_err(|e| decode_err("connection config", e))?;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                sqlx::query(
                    "INSERT INTO connections (id, name, kind, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(c.id.as_uuid())
                .bind(&c.name)
                .bind(c.config.kind().as_str())
                .bind(config)
                .bind(c.created_at.0)
                .bind(c.updated_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                for o in &c.orgs {
                    sqlx::query("INSERT INTO connection_orgs (connection_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(c.id.as_uuid())
                        .bind(o.as_uuid())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })?;
                }
                tx.commit().await.map_err(db_err)
            }

            async fn connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>> {
                let rows = sqlx::query(
                    "SELECT c.id, c.name, c.config, c.created_at, c.updated_at, o.org_id FROM connections c \
                     LEFT JOIN connection_orgs o ON o.connection_id = c.id WHERE c.id = $1",
                )
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(Self::connections_from_rows(&rows)?.pop())
            }

            async fn connections(&self) -> StoreResult<Vec<Connection>> {
                let rows = sqlx::query(
                    "SELECT c.id, c.name, c.config, c.created_at, c.updated_at, o.org_id FROM connections c \
                     LEFT JOIN connection_orgs o ON o.connection_id = c.id ORDER BY c.name, c.id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Self::connections_from_rows(&rows)
            }

            async fn connections_of(&self, org: OrgId) -> StoreResult<Vec<Connection>> {
                let rows = sqlx::query(
                    "SELECT c.id, c.name, c.config, c.created_at, c.updated_at, o.org_id FROM connections c \
                     LEFT JOIN connection_orgs o ON o.connection_id = c.id \
                     WHERE c.id IN (SELECT connection_id FROM connection_orgs WHERE org_id = $1) ORDER BY c.name, c.id",
                )
                .bind(org.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Self::connections_from_rows(&rows)
            }

            async fn delete_connection(&self, id: ConnectionId) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM connections WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn update_connection(&self, c: &Connection) -> StoreResult<()> {
                let _w = self.writing().await;
                let config = serde_json::to_string(&c.config).map_err(|e| decode_err("connection config", e))?;
                let r = sqlx::query("UPDATE connections SET name = $2, config = $3, updated_at = $4 WHERE id = $1")
                    .bind(c.id.as_uuid())
                    .bind(&c.name)
                    .bind(config)
                    .bind(c.updated_at.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn associate(&self, id: ConnectionId, org: OrgId) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("INSERT INTO connection_orgs (connection_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id.as_uuid())
                    .bind(org.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })
            }

            async fn dissociate(&self, id: ConnectionId, org: OrgId) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM connection_orgs WHERE connection_id = $1 AND org_id = $2")
                    .bind(id.as_uuid())
                    .bind(org.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn identity(&self, id: ConnectionId, subject: &str) -> StoreResult<Option<IdentityLink>> {
                let row = sqlx::query(
                    "SELECT connection_id, subject, user_id, email, created_at, last_login_at FROM federated_identities \
                     WHERE connection_id = $1 AND subject = $2",
                )
                .bind(id.as_uuid())
                .bind(subject)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::link_from_row).transpose()
            }

            async fn identities_of(&self, user: UserId) -> StoreResult<Vec<IdentityLink>> {
                let rows = sqlx::query(
                    "SELECT connection_id, subject, user_id, email, created_at, last_login_at FROM federated_identities \
                     WHERE user_id = $1 ORDER BY created_at",
                )
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::link_from_row).collect()
            }
        }
    };
}

impl_federation_store!(Sqlite);
impl_federation_store!(Postgres);
