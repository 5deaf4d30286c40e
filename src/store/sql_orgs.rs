//! SQL adapter of [`OrgStore`], written once for SQLite and PostgreSQL like `sql.rs`.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, decode_err, is_fk_violation, is_unique_violation, SqlStore};
use super::{OrgStore, StoreError, StoreResult};
use crate::domain::org::{Member, Membership, Org, OrgDomain, OrgRole, Role, RoleRef};
use crate::domain::{ClientId, OrgId, RoleId, UnixTime, UserId};

macro_rules! org_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "slug, ",
            $p,
            "name, ",
            $p,
            "require_sso, ",
            $p,
            "mfa_required, ",
            $p,
            "accent_color, ",
            $p,
            "logo_digest, ",
            $p,
            "created_at, ",
            $p,
            "updated_at"
        )
    };
}

macro_rules! domain_cols {
    () => {
        "org_id, domain, challenge, verified_at, last_checked_at, last_error, created_at"
    };
}

fn conflict_or(e: sqlx::Error, constraint: &'static str) -> StoreError {
    if is_unique_violation(&e) || is_fk_violation(&e) {
        StoreError::Conflict { constraint }
    } else {
        db_err(e)
    }
}

macro_rules! impl_org_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn org_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<Org> {
                Ok(Org {
                    id: OrgId::from_uuid(r.try_get::<Uuid, _>("id").map_err(db_err)?),
                    slug: r.try_get("slug").map_err(db_err)?,
                    name: r.try_get("name").map_err(db_err)?,
                    require_sso: r.try_get("require_sso").map_err(db_err)?,
                    mfa_required: r.try_get("mfa_required").map_err(db_err)?,
                    accent_color: r.try_get("accent_color").map_err(db_err)?,
                    logo_digest: r.try_get("logo_digest").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    updated_at: UnixTime(r.try_get("updated_at").map_err(db_err)?),
                })
            }

            fn domain_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<OrgDomain> {
                let t = |c: &str| -> StoreResult<Option<UnixTime>> {
                    Ok(r.try_get::<Option<i64>, _>(c).map_err(db_err)?.map(UnixTime))
                };
                Ok(OrgDomain {
                    org: OrgId::from_uuid(r.try_get::<Uuid, _>("org_id").map_err(db_err)?),
                    domain: r.try_get("domain").map_err(db_err)?,
                    challenge: r.try_get("challenge").map_err(db_err)?,
                    verified_at: t("verified_at")?,
                    last_checked_at: t("last_checked_at")?,
                    last_error: r.try_get("last_error").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                })
            }

            /// Roles from rows of `roles` joined with their permissions (one row per permission,
            /// `permission` NULL for a role without any), ordered by role.
            fn roles_from_rows(rows: &[<$db as sqlx::Database>::Row]) -> StoreResult<Vec<Role>> {
                let mut out: Vec<Role> = Vec::new();
                for r in rows {
                    let id = RoleId::from_uuid(r.try_get::<Uuid, _>("id").map_err(db_err)?);
                    let perm: Option<String> = r.try_get("permission").map_err(db_err)?;
                    if out.last().map(|l| l.id) != Some(id) {
                        out.push(Role {
                            id,
                            client_id: ClientId::new(r.try_get::<String, _>("client_id").map_err(db_err)?),
                            org: r.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?.map(OrgId::from_uuid),
                            name: r.try_get("name").map_err(db_err)?,
                            permissions: Vec::new(),
                            created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                        });
                    }
                    if let (Some(p), Some(last)) = (perm, out.last_mut()) {
                        last.permissions.push(p);
                    }
                }
                Ok(out)
            }

            /// Members (one when `user` is given) with their roles, by email.
            async fn members_where(&self, org: OrgId, user: Option<UserId>) -> StoreResult<Vec<Member>> {
                let rows = sqlx::query(
                    "SELECT m.user_id, u.email, u.name, m.role, m.created_at, r.id AS role_id, r.client_id, r.name AS role_name \
                     FROM org_members m JOIN users u ON u.id = m.user_id \
                     LEFT JOIN member_roles mr ON mr.org_id = m.org_id AND mr.user_id = m.user_id \
                     LEFT JOIN roles r ON r.id = mr.role_id \
                     WHERE m.org_id = $1 AND ($2 IS NULL OR m.user_id = $2) ORDER BY u.email, m.user_id, r.client_id, r.name",
                )
                .bind(org.as_uuid())
                .bind(user.map(|u| u.as_uuid()))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut out: Vec<Member> = Vec::new();
                for r in &rows {
                    let user_id = UserId::from_uuid(r.try_get::<Uuid, _>("user_id").map_err(db_err)?);
                    if out.last().map(|m| m.user_id) != Some(user_id) {
                        let role: String = r.try_get("role").map_err(db_err)?;
                        out.push(Member {
                            user_id,
                            email: r.try_get("email").map_err(db_err)?,
                            name: r.try_get("name").map_err(db_err)?,
                            role: OrgRole::from_str(&role).map_err(|e| decode_err("org role", e))?,
                            joined_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                            roles: Vec::new(),
                        });
                    }
                    if let Some(role_id) = r.try_get::<Option<Uuid>, _>("role_id").map_err(db_err)? {
                        let rr = RoleRef {
                            id: RoleId::from_uuid(role_id),
                            client_id: ClientId::new(r.try_get::<String, _>("client_id").map_err(db_err)?),
                            name: r.try_get("role_name").map_err(db_err)?,
                        };
                        if let Some(m) = out.last_mut() {
                            m.roles.push(rr);
                        }
                    }
                }
                Ok(out)
            }

            async fn insert_role_permissions(
                tx: &mut sqlx::Transaction<'_, $db>,
                role: RoleId,
                client: &ClientId,
                permissions: &[String],
            ) -> StoreResult<()> {
                for p in permissions {
                    sqlx::query(
                        "INSERT INTO role_permissions (role_id, client_id, permission) VALUES ($1, $2, $3) \
                         ON CONFLICT (role_id, permission) DO NOTHING",
                    )
                    .bind(role.as_uuid())
                    .bind(client.as_str())
                    .bind(p)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| conflict_or(e, "role_permissions"))?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl OrgStore for SqlStore<$db> {
            async fn create_org(&self, org: &Org, owner: Option<UserId>) -> StoreResult<()> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                sqlx::query(
                    "INSERT INTO orgs (id, slug, name, require_sso, mfa_required, accent_color, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(org.id.as_uuid())
                .bind(&org.slug)
                .bind(&org.name)
                .bind(org.require_sso)
                .bind(org.mfa_required)
                .bind(org.accent_color.as_deref())
                .bind(org.created_at.0)
                .bind(org.updated_at.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, "orgs_slug"))?;
                if let Some(u) = owner {
                    sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(org.id.as_uuid())
                        .bind(u.as_uuid())
                        .bind(OrgRole::Owner.as_str())
                        .bind(org.created_at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)
            }

            async fn org(&self, id: OrgId) -> StoreResult<Option<Org>> {
                let row = sqlx::query(concat!("SELECT ", org_cols!(""), " FROM orgs WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::org_from_row).transpose()
            }

            async fn org_by_slug(&self, slug: &str) -> StoreResult<Option<Org>> {
                let row = sqlx::query(concat!("SELECT ", org_cols!(""), " FROM orgs WHERE slug = $1"))
                    .bind(slug)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::org_from_row).transpose()
            }

            async fn list_orgs(&self, limit: i64) -> StoreResult<Vec<Org>> {
                let rows = sqlx::query(concat!("SELECT ", org_cols!(""), " FROM orgs ORDER BY slug LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(Self::org_from_row).collect()
            }

            async fn update_org(&self, org: &Org) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query(
                    "UPDATE orgs SET slug = $2, name = $3, require_sso = $4, mfa_required = $5, accent_color = $6, \
                     updated_at = $7 WHERE id = $1",
                )
                .bind(org.id.as_uuid())
                .bind(&org.slug)
                .bind(&org.name)
                .bind(org.require_sso)
                .bind(org.mfa_required)
                .bind(org.accent_color.as_deref())
                .bind(org.updated_at.0)
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or(e, "orgs_slug"))?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn set_logo(&self, id: OrgId, logo: Option<(&[u8], &str, &str)>, now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                let (bytes, media, digest) = match logo {
                    Some((b, m, d)) => (Some(b.to_vec()), Some(m), Some(d)),
                    None => (None, None, None),
                };
                sqlx::query(
                    "UPDATE orgs SET logo = $2, logo_type = $3, logo_digest = $4, updated_at = $5 WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(bytes)
                .bind(media)
                .bind(digest)
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn logo(&self, id: OrgId) -> StoreResult<Option<(Vec<u8>, String)>> {
                let row = sqlx::query("SELECT logo, logo_type FROM orgs WHERE id = $1 AND logo IS NOT NULL")
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                match row {
                    Some(r) => Ok(Some((
                        r.try_get::<Vec<u8>, _>("logo").map_err(db_err)?,
                        r.try_get::<Option<String>, _>("logo_type").map_err(db_err)?.unwrap_or_default(),
                    ))),
                    None => Ok(None),
                }
            }

            async fn delete_org(&self, id: OrgId) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM orgs WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict_or(e, "clients_org"))?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn set_member(&self, org: OrgId, user: UserId, role: OrgRole, now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(org.as_uuid())
                .bind(user.as_uuid())
                .bind(role.as_str())
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })
            }

            async fn remove_member(&self, org: OrgId, user: UserId, now: UnixTime) -> StoreResult<bool> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                let r = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
                    .bind(org.as_uuid())
                    .bind(user.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query(
                    "UPDATE grants SET revoked_at = $3 WHERE user_id = $1 AND org_id = $2 AND revoked_at IS NULL",
                )
                .bind(user.as_uuid())
                .bind(org.as_uuid())
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn membership(&self, org: OrgId, user: UserId) -> StoreResult<Option<OrgRole>> {
                let row = sqlx::query("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
                    .bind(org.as_uuid())
                    .bind(user.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                match row {
                    Some(r) => {
                        let role: String = r.try_get("role").map_err(db_err)?;
                        Ok(Some(OrgRole::from_str(&role).map_err(|e| decode_err("org role", e))?))
                    }
                    None => Ok(None),
                }
            }

            async fn memberships_of(&self, user: UserId) -> StoreResult<Vec<Membership>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    org_cols!("o."),
                    ", m.role FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.slug"
                ))
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        let role: String = r.try_get("role").map_err(db_err)?;
                        Ok(Membership {
                            org: Self::org_from_row(r)?,
                            role: OrgRole::from_str(&role).map_err(|e| decode_err("org role", e))?,
                        })
                    })
                    .collect()
            }

            async fn members(&self, org: OrgId) -> StoreResult<Vec<Member>> {
                self.members_where(org, None).await
            }

            async fn member(&self, org: OrgId, user: UserId) -> StoreResult<Option<Member>> {
                Ok(self.members_where(org, Some(user)).await?.pop())
            }

            async fn add_permissions(&self, client: &ClientId, names: &[String], now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                for n in names {
                    sqlx::query(
                        "INSERT INTO client_permissions (client_id, name, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (client_id, name) DO NOTHING",
                    )
                    .bind(client.as_str())
                    .bind(n)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })?;
                }
                tx.commit().await.map_err(db_err)
            }

            async fn remove_permission(&self, client: &ClientId, name: &str) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM client_permissions WHERE client_id = $1 AND name = $2")
                    .bind(client.as_str())
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn permissions(&self, client: &ClientId) -> StoreResult<Vec<String>> {
                let rows = sqlx::query("SELECT name FROM client_permissions WHERE client_id = $1 ORDER BY name")
                    .bind(client.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| r.try_get("name").map_err(db_err)).collect()
            }

            async fn clients_with_permissions(&self) -> StoreResult<Vec<ClientId>> {
                let rows = sqlx::query("SELECT DISTINCT client_id FROM client_permissions ORDER BY client_id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| Ok(ClientId::new(r.try_get::<String, _>("client_id").map_err(db_err)?))).collect()
            }

            async fn create_role(&self, role: &Role) -> StoreResult<()> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                sqlx::query("INSERT INTO roles (id, client_id, org_id, name, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(role.id.as_uuid())
                    .bind(role.client_id.as_str())
                    .bind(role.org.map(|o| o.as_uuid()))
                    .bind(&role.name)
                    .bind(role.created_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "roles_name"))?;
                Self::insert_role_permissions(&mut tx, role.id, &role.client_id, &role.permissions).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn set_role_permissions(&self, role: RoleId, client: &ClientId, permissions: &[String]) -> StoreResult<()> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
                    .bind(role.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                Self::insert_role_permissions(&mut tx, role, client, permissions).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn role(&self, id: RoleId) -> StoreResult<Option<Role>> {
                let rows = sqlx::query(
                    "SELECT r.id, r.client_id, r.org_id, r.name, r.created_at, p.permission FROM roles r \
                     LEFT JOIN role_permissions p ON p.role_id = r.id WHERE r.id = $1 ORDER BY p.permission",
                )
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(Self::roles_from_rows(&rows)?.into_iter().next())
            }

            async fn roles(&self, org: Option<OrgId>) -> StoreResult<Vec<Role>> {
                let rows = sqlx::query(
                    "SELECT r.id, r.client_id, r.org_id, r.name, r.created_at, p.permission FROM roles r \
                     LEFT JOIN role_permissions p ON p.role_id = r.id \
                     WHERE $1 IS NULL OR r.org_id IS NULL OR r.org_id = $1 \
                     ORDER BY r.client_id, r.name, r.id, p.permission",
                )
                .bind(org.map(|o| o.as_uuid()))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Self::roles_from_rows(&rows)
            }

            async fn delete_role(&self, id: RoleId) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM roles WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn grant_role(&self, org: OrgId, user: UserId, role: RoleId, now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO member_roles (org_id, user_id, role_id, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (org_id, user_id, role_id) DO NOTHING",
                )
                .bind(org.as_uuid())
                .bind(user.as_uuid())
                .bind(role.as_uuid())
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| if is_fk_violation(&e) { StoreError::NotFound } else { db_err(e) })
            }

            async fn revoke_role(&self, org: OrgId, user: UserId, role: RoleId) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM member_roles WHERE org_id = $1 AND user_id = $2 AND role_id = $3")
                    .bind(org.as_uuid())
                    .bind(user.as_uuid())
                    .bind(role.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn member_roles(&self, org: OrgId, user: UserId, client: &ClientId) -> StoreResult<Vec<Role>> {
                let rows = sqlx::query(
                    "SELECT r.id, r.client_id, r.org_id, r.name, r.created_at, p.permission FROM member_roles mr \
                     JOIN roles r ON r.id = mr.role_id LEFT JOIN role_permissions p ON p.role_id = r.id \
                     WHERE mr.org_id = $1 AND mr.user_id = $2 AND r.client_id = $3 \
                     ORDER BY r.name, r.id, p.permission",
                )
                .bind(org.as_uuid())
                .bind(user.as_uuid())
                .bind(client.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                Self::roles_from_rows(&rows)
            }

            async fn add_domain(&self, d: &OrgDomain, then: Vec<crate::domain::account::AccountOp>) -> StoreResult<()> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                sqlx::query(concat!("INSERT INTO org_domains (", domain_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                    .bind(d.org.as_uuid())
                    .bind(&d.domain)
                    .bind(&d.challenge)
                    .bind(d.verified_at.map(|t| t.0))
                    .bind(d.last_checked_at.map(|t| t.0))
                    .bind(d.last_error.as_deref())
                    .bind(d.created_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, "org_domains"))?;
                Self::apply_all(&mut tx, then, now).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn domains(&self, org: OrgId) -> StoreResult<Vec<OrgDomain>> {
                let rows = sqlx::query(concat!("SELECT ", domain_cols!(), " FROM org_domains WHERE org_id = $1 ORDER BY domain"))
                    .bind(org.as_uuid())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(Self::domain_from_row).collect()
            }

            async fn domain(&self, org: OrgId, domain: &str) -> StoreResult<Option<OrgDomain>> {
                let row = sqlx::query(concat!("SELECT ", domain_cols!(), " FROM org_domains WHERE org_id = $1 AND domain = $2"))
                    .bind(org.as_uuid())
                    .bind(domain)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::domain_from_row).transpose()
            }

            async fn verified_owner(&self, domain: &str) -> StoreResult<Option<Org>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    org_cols!("o."),
                    " FROM org_domains d JOIN orgs o ON o.id = d.org_id WHERE d.domain = $1 AND d.verified_at IS NOT NULL"
                ))
                .bind(domain)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::org_from_row).transpose()
            }

            async fn domain_checked(
                &self,
                org: OrgId,
                domain: &str,
                verified: bool,
                error: Option<&str>,
                now: UnixTime,
            ) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = if verified {
                    sqlx::query(
                        "UPDATE org_domains SET verified_at = COALESCE(verified_at, $3), last_checked_at = $3, last_error = NULL \
                         WHERE org_id = $1 AND domain = $2",
                    )
                    .bind(org.as_uuid())
                    .bind(domain)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict_or(e, "org_domains_verified"))?
                } else {
                    sqlx::query(
                        "UPDATE org_domains SET last_checked_at = $3, last_error = $4 WHERE org_id = $1 AND domain = $2",
                    )
                    .bind(org.as_uuid())
                    .bind(domain)
                    .bind(now.0)
                    .bind(error)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
                };
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn remove_domain(&self, org: OrgId, domain: &str) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM org_domains WHERE org_id = $1 AND domain = $2")
                    .bind(org.as_uuid())
                    .bind(domain)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}

impl_org_store!(Sqlite);
impl_org_store!(Postgres);
