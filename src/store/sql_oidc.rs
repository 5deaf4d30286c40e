//! SQL adapters for the OpenID Provider's stores (clients, consents, grants, codes, refresh
//! tokens), written once and expanded for SQLite and PostgreSQL like `sql.rs`.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, decode_err, is_unique_violation, SqlStore};
use super::{AuthSessionStore, ClientStore, ConsentStore, Consumed, GrantStore, StoreError, StoreResult};
use crate::domain::{
    AuthCode, AuthSessionRecord, Client, ClientId, Grant, GrantId, NewAuthCode, NewRefresh, OrgId, RefreshRecord,
    SigningAlg, UnixTime, User, UserId,
};

fn json_list<T: FromStr<Err = String>>(what: &str, raw: &str) -> StoreResult<Vec<T>> {
    let items: Vec<String> = serde_json::from_str(raw).map_err(|e| decode_err(what, e))?;
    items.iter().map(|s| s.parse::<T>().map_err(|e| decode_err(what, e))).collect()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

macro_rules! client_cols {
    () => {
        "c.client_id, c.name, c.secret_digest, c.auth_method, c.application_type, c.redirect_uris, \
         c.post_logout_redirect_uris, c.grant_types, c.jwks_uri, c.jwks, c.first_party, c.backchannel_logout_uri, \
         c.id_token_signed_response_alg, c.id_token_claims, c.introspection, c.require_mfa, c.org_id, c.created_at"
    };
}

macro_rules! grant_cols {
    () => {
        "grant_id, client_id, user_id, sid, scope, offline, auth_time, acr, amr, claims, created_at, expires_at, revoked_at, org_id, idp"
    };
}

/// `user_cols!()` as `JOINED_USER_COLUMNS` names them, for
/// `LEFT JOIN (SELECT joined_user_cols!() FROM users) u ON u.u_id = grants.user_id`: the grant's
/// user read in the grant's statement (one hand-off to the database instead of two), its columns
/// apart from the grant's (`created_at`...). Selected as `u.*`.
macro_rules! joined_user_cols {
    () => {
        "id AS u_id, email AS u_email, name AS u_name, status AS u_status, is_admin AS u_is_admin, \
         email_verified AS u_email_verified, phone_number AS u_phone_number, \
         phone_number_verified AS u_phone_number_verified, address AS u_address, locale AS u_locale, \
         time_zone AS u_time_zone, terms_version AS u_terms_version, terms_accepted_at AS u_terms_accepted_at, \
         newsletter_consent_at AS u_newsletter_consent_at, created_at AS u_created_at, updated_at AS u_updated_at"
    };
}

macro_rules! session_cols {
    () => {
        "sid, user_id, auth_time, last_seen, idle_expires_at, expires_at, ended_at, amr, acr, ip, user_agent"
    };
}

macro_rules! impl_oidc_stores {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn client_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<Client> {
                let jwks: Option<String> = row.try_get("jwks").map_err(db_err)?;
                let alg: String = row.try_get("id_token_signed_response_alg").map_err(db_err)?;
                let method: String = row.try_get("auth_method").map_err(db_err)?;
                let app: String = row.try_get("application_type").map_err(db_err)?;
                Ok(Client {
                    client_id: ClientId::new(row.try_get::<String, _>("client_id").map_err(db_err)?),
                    name: row.try_get("name").map_err(db_err)?,
                    secret_digest: row.try_get("secret_digest").map_err(db_err)?,
                    token_endpoint_auth_method: method.parse().map_err(|e: String| decode_err("auth_method", e))?,
                    application_type: app.parse().map_err(|e: String| decode_err("application_type", e))?,
                    redirect_uris: serde_json::from_str(&row.try_get::<String, _>("redirect_uris").map_err(db_err)?)
                        .map_err(|e| decode_err("redirect_uris", e))?,
                    post_logout_redirect_uris: serde_json::from_str(
                        &row.try_get::<String, _>("post_logout_redirect_uris").map_err(db_err)?,
                    )
                    .map_err(|e| decode_err("post_logout_redirect_uris", e))?,
                    grant_types: json_list("grant_types", &row.try_get::<String, _>("grant_types").map_err(db_err)?)?,
                    jwks_uri: row.try_get("jwks_uri").map_err(db_err)?,
                    jwks: jwks.map(|j| serde_json::from_str(&j)).transpose().map_err(|e| decode_err("jwks", e))?,
                    first_party: row.try_get("first_party").map_err(db_err)?,
                    backchannel_logout_uri: row.try_get("backchannel_logout_uri").map_err(db_err)?,
                    id_token_signed_response_alg: SigningAlg::from_str(&alg).map_err(|e| decode_err("alg", e))?,
                    id_token_claims: row.try_get("id_token_claims").map_err(db_err)?,
                    introspection: row.try_get("introspection").map_err(db_err)?,
                    require_mfa: row.try_get("require_mfa").map_err(db_err)?,
                    org_id: row.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?.map(OrgId::from_uuid),
                    created_at: UnixTime(row.try_get("created_at").map_err(db_err)?),
                })
            }

            fn grant_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<Grant> {
                let claims: Option<String> = row.try_get("claims").map_err(db_err)?;
                Ok(Grant {
                    id: GrantId::from_uuid(row.try_get::<Uuid, _>("grant_id").map_err(db_err)?),
                    client_id: ClientId::new(row.try_get::<String, _>("client_id").map_err(db_err)?),
                    user_id: row.try_get::<Option<Uuid>, _>("user_id").map_err(db_err)?.map(UserId::from_uuid),
                    sid: row.try_get("sid").map_err(db_err)?,
                    scope: row.try_get("scope").map_err(db_err)?,
                    offline: row.try_get("offline").map_err(db_err)?,
                    auth_time: UnixTime(row.try_get("auth_time").map_err(db_err)?),
                    acr: row.try_get("acr").map_err(db_err)?,
                    amr: serde_json::from_str(&row.try_get::<String, _>("amr").map_err(db_err)?)
                        .map_err(|e| decode_err("amr", e))?,
                    claims: claims.map(|c| serde_json::from_str(&c)).transpose().map_err(|e| decode_err("claims", e))?,
                    org_id: row.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?.map(OrgId::from_uuid),
                    idp: row.try_get("idp").map_err(db_err)?,
                    created_at: UnixTime(row.try_get("created_at").map_err(db_err)?),
                    expires_at: UnixTime(row.try_get("expires_at").map_err(db_err)?),
                    revoked_at: row.try_get::<Option<i64>, _>("revoked_at").map_err(db_err)?.map(UnixTime),
                })
            }
        }

        #[async_trait]
        impl ClientStore for SqlStore<$db> {
            async fn create_client(&self, c: &Client) -> StoreResult<()> {
                let _w = self.writing().await;
                let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                sqlx::query(
                    "INSERT INTO clients (client_id, name, secret_digest, auth_method, application_type, redirect_uris, \
                     post_logout_redirect_uris, grant_types, jwks_uri, jwks, first_party, backchannel_logout_uri, \
                     id_token_signed_response_alg, id_token_claims, introspection, require_mfa, created_at, updated_at, org_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18)",
                )
                .bind(c.client_id.as_str())
                .bind(&c.name)
                .bind(c.secret_digest.as_deref())
                .bind(c.token_endpoint_auth_method.as_str())
                .bind(c.application_type.as_str())
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.post_logout_redirect_uris))
                .bind(to_json(&grant_types))
                .bind(c.jwks_uri.as_deref())
                .bind(c.jwks.as_ref().map(to_json))
                .bind(c.first_party)
                .bind(c.backchannel_logout_uri.as_deref())
                .bind(c.id_token_signed_response_alg.as_str())
                .bind(c.id_token_claims)
                .bind(c.introspection)
                .bind(c.require_mfa)
                .bind(c.created_at.0)
                .bind(c.org_id.map(|o| o.as_uuid()))
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict { constraint: "clients_pkey" } } else { db_err(e) })
            }

            async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
                let row = sqlx::query(concat!("SELECT ", client_cols!(), " FROM clients c WHERE c.client_id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::client_from_row).transpose()
            }

            async fn list_clients(&self) -> StoreResult<Vec<Client>> {
                let rows = sqlx::query(concat!("SELECT ", client_cols!(), " FROM clients c ORDER BY c.created_at, c.client_id"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(Self::client_from_row).collect()
            }

            async fn delete_client(&self, id: &ClientId) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn set_client_secret_digest(&self, id: &ClientId, digest: &str) -> StoreResult<()> {
                let _w = self.writing().await;
                let r = sqlx::query("UPDATE clients SET secret_digest = $1, updated_at = $2 WHERE client_id = $3")
                    .bind(digest)
                    .bind(self.clock.now().0)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn update_client(&self, c: &Client) -> StoreResult<()> {
                let _w = self.writing().await;
                let grant_types: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                let r = sqlx::query(
                    "UPDATE clients SET name = $1, auth_method = $2, application_type = $3, redirect_uris = $4, \
                     post_logout_redirect_uris = $5, grant_types = $6, jwks_uri = $7, jwks = $8, first_party = $9, \
                     backchannel_logout_uri = $10, id_token_signed_response_alg = $11, id_token_claims = $12, \
                     introspection = $13, require_mfa = $14, updated_at = $15 WHERE client_id = $16",
                )
                .bind(&c.name)
                .bind(c.token_endpoint_auth_method.as_str())
                .bind(c.application_type.as_str())
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.post_logout_redirect_uris))
                .bind(to_json(&grant_types))
                .bind(c.jwks_uri.as_deref())
                .bind(c.jwks.as_ref().map(to_json))
                .bind(c.first_party)
                .bind(c.backchannel_logout_uri.as_deref())
                .bind(c.id_token_signed_response_alg.as_str())
                .bind(c.id_token_claims)
                .bind(c.introspection)
                .bind(c.require_mfa)
                .bind(self.clock.now().0)
                .bind(c.client_id.as_str())
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }
        }

        #[async_trait]
        impl ConsentStore for SqlStore<$db> {
            async fn consent(&self, user: UserId, client: &ClientId) -> StoreResult<Option<String>> {
                let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user.as_uuid())
                    .bind(client.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.map(|r| r.try_get::<String, _>("scope").map_err(db_err)).transpose()
            }

            async fn save_consent(&self, user: UserId, client: &ClientId, scope: &str) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                )
                .bind(user.as_uuid())
                .bind(client.as_str())
                .bind(scope)
                .bind(self.clock.now().0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn consents_of(&self, user: UserId) -> StoreResult<Vec<(Client, String, UnixTime)>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    client_cols!(),
                    ", k.scope AS consent_scope, k.granted_at FROM consents k JOIN clients c ON c.client_id = k.client_id \
                     WHERE k.user_id = $1 ORDER BY c.name, c.client_id"
                ))
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            Self::client_from_row(r)?,
                            r.try_get::<String, _>("consent_scope").map_err(db_err)?,
                            UnixTime(r.try_get("granted_at").map_err(db_err)?),
                        ))
                    })
                    .collect()
            }

            async fn delete_consent(&self, user: UserId, client: &ClientId) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user.as_uuid())
                    .bind(client.as_str())
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }
        }

        #[async_trait]
        impl GrantStore for SqlStore<$db> {
            async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(concat!(
                    "INSERT INTO grants (",
                    grant_cols!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ))
                .bind(g.id.as_uuid())
                .bind(g.client_id.as_str())
                .bind(g.user_id.map(|u| u.as_uuid()))
                .bind(g.sid.as_deref())
                .bind(&g.scope)
                .bind(g.offline)
                .bind(g.auth_time.0)
                .bind(g.acr.as_deref())
                .bind(to_json(&g.amr))
                .bind(g.claims.as_ref().map(to_json))
                .bind(g.created_at.0)
                .bind(g.expires_at.0)
                .bind(g.revoked_at.map(|t| t.0))
                .bind(g.org_id.map(|o| o.as_uuid()))
                .bind(g.idp.as_deref())
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn grant(&self, id: GrantId) -> StoreResult<Option<Grant>> {
                let row = sqlx::query(concat!("SELECT ", grant_cols!(), " FROM grants WHERE grant_id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::grant_from_row).transpose()
            }

            async fn access_token_grant(&self, jti_hash: &str, id: GrantId) -> StoreResult<(bool, Option<Grant>)> {
                let row = sqlx::query(concat!(
                    "SELECT ", grant_cols!(),
                    ", EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti_hash = $2) AS jti_revoked \
                     FROM grants WHERE grant_id = $1"
                ))
                .bind(id.as_uuid())
                .bind(jti_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                match row {
                    Some(r) => Ok((r.try_get::<bool, _>("jti_revoked").map_err(db_err)?, Some(Self::grant_from_row(&r)?))),
                    // No grant: the token is dead whatever the revocation list says.
                    None => Ok((false, None)),
                }
            }

            async fn access_token_grant_user(
                &self,
                jti_hash: &str,
                id: GrantId,
            ) -> StoreResult<(bool, Option<(Grant, Option<User>)>)> {
                let row = sqlx::query(concat!(
                    "SELECT ", grant_cols!(),
                    ", EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti_hash = $2) AS jti_revoked, u.* \
                     FROM grants LEFT JOIN (SELECT ", joined_user_cols!(), " FROM users) u ON u.u_id = grants.user_id \
                     WHERE grant_id = $1"
                ))
                .bind(id.as_uuid())
                .bind(jti_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                match row {
                    Some(r) => Ok((
                        r.try_get::<bool, _>("jti_revoked").map_err(db_err)?,
                        Some((Self::grant_from_row(&r)?, Self::joined_user_from_row(&r)?)),
                    )),
                    None => Ok((false, None)),
                }
            }

            async fn revoke_grant(&self, id: GrantId, now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL")
                    .bind(id.as_uuid())
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            async fn revoke_session_grants(&self, sid: &str, include_offline: bool, now: UnixTime) -> StoreResult<Vec<Grant>> {
                let _w = self.writing().await;
                let rows = sqlx::query(concat!(
                    "UPDATE grants SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL \
                     AND (offline = $3 OR offline = FALSE) RETURNING ",
                    grant_cols!()
                ))
                .bind(sid)
                .bind(now.0)
                .bind(include_offline)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::grant_from_row).collect()
            }

            async fn session_grants(&self, sid: &str) -> StoreResult<Vec<Grant>> {
                let rows = sqlx::query(concat!("SELECT ", grant_cols!(), " FROM grants WHERE sid = $1"))
                    .bind(sid)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(Self::grant_from_row).collect()
            }

            async fn revoke_user_client_grants(&self, user: UserId, client: &ClientId, now: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query("UPDATE grants SET revoked_at = $3 WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL")
                    .bind(user.as_uuid())
                    .bind(client.as_str())
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            async fn insert_code(&self, c: &NewAuthCode) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO auth_codes (code_hash, grant_id, redirect_uri, nonce, code_challenge, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&c.code_hash)
                .bind(c.grant_id.as_uuid())
                .bind(&c.redirect_uri)
                .bind(c.nonce.as_deref())
                .bind(c.code_challenge.as_deref())
                .bind(c.expires_at.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn code(&self, code_hash: &str) -> StoreResult<Option<(AuthCode, bool)>> {
                let row = sqlx::query(
                    "SELECT grant_id, redirect_uri, nonce, code_challenge, expires_at, consumed_at \
                     FROM auth_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                let Some(r) = row else { return Ok(None) };
                let consumed = r.try_get::<Option<i64>, _>("consumed_at").map_err(db_err)?.is_some();
                Ok(Some((Self::code_from_row(&r)?, consumed)))
            }

            async fn redeem_code(
                &self,
                code_hash: &str,
                now: UnixTime,
                refresh: Option<&NewRefresh>,
            ) -> StoreResult<Consumed<AuthCode>> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                let row = sqlx::query(
                    "UPDATE auth_codes SET consumed_at = $2 WHERE code_hash = $1 AND consumed_at IS NULL \
                     RETURNING grant_id, redirect_uri, nonce, code_challenge, expires_at",
                )
                .bind(code_hash)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let Some(r) = row else {
                    drop(tx);
                    return Ok(match self.code(code_hash).await? {
                        Some((c, _)) => Consumed::Replayed(c.grant_id),
                        None => Consumed::NotFound,
                    });
                };
                let code = Self::code_from_row(&r)?;
                if code.expires_at <= now {
                    return Ok(Consumed::NotFound);
                }
                if let Some(n) = refresh {
                    Self::insert_refresh_in(&mut tx, n, now).await?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(Consumed::Fresh(code))
            }

            async fn insert_refresh(&self, r: &NewRefresh) -> StoreResult<()> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                Self::insert_refresh_in(&mut tx, r, self.clock.now()).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn rotate_refresh(
                &self,
                token_hash: &str,
                now: UnixTime,
                successor: &NewRefresh,
            ) -> StoreResult<Consumed<()>> {
                let _w = self.writing().await;
                // One statement (migration 14): the successor is inserted only while the parent
                // is unused and unexpired, and the insert's trigger spends the parent, refusing
                // if a concurrent rotation spent it first. One round trip, no transaction.
                let inserted = sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at, rotated_from) \
                     SELECT $2, grant_id, $3, $4, $5, token_hash FROM refresh_tokens \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $4",
                )
                .bind(token_hash)
                .bind(&successor.token_hash)
                .bind(&successor.scope)
                .bind(now.0)
                .bind(successor.expires_at.0)
                .execute(&self.pool)
                .await;
                match inserted {
                    Ok(done) if done.rows_affected() == 1 => Ok(Consumed::Fresh(())),
                    Ok(_) => self.not_rotated(token_hash).await,
                    Err(e) if super::sql::is_rotation_refused(&e) => self.not_rotated(token_hash).await,
                    Err(e) => Err(db_err(e)),
                }
            }

            async fn retry_rotation(
                &self,
                token_hash: &str,
                now: UnixTime,
                successor: &NewRefresh,
            ) -> StoreResult<Consumed<()>> {
                let _w = self.writing().await;
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                let prev = sqlx::query(
                    "SELECT replaced_by FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
                )
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let previous: Option<String> = match prev {
                    Some(r) => r.try_get("replaced_by").map_err(db_err)?,
                    None => None,
                };
                // Swap the replacement only if nobody else did meanwhile (concurrent retries:
                // one wins, the others are reuses).
                let row = match &previous {
                    None => None,
                    Some(p) => sqlx::query(
                        "UPDATE refresh_tokens SET replaced_by = $2 WHERE token_hash = $1 AND replaced_by = $3 \
                         RETURNING grant_id",
                    )
                    .bind(token_hash)
                    .bind(&successor.token_hash)
                    .bind(p)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?,
                };
                let (Some(r), Some(previous)) = (row, previous) else {
                    drop(tx);
                    return self.not_rotated(token_hash).await;
                };
                let grant_id = GrantId::from_uuid(r.try_get::<Uuid, _>("grant_id").map_err(db_err)?);
                // The replacement must never have been used: then its answer was what got lost.
                let retired = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
                )
                .bind(&previous)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if retired.rows_affected() == 0 {
                    drop(tx);
                    return Ok(Consumed::Replayed(grant_id));
                }
                Self::insert_refresh_in(&mut tx, successor, now).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(Consumed::Fresh(()))
            }

            async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshRecord>> {
                let row = sqlx::query(
                    "SELECT grant_id, scope, created_at, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::refresh_from_row).transpose()
            }

            async fn refresh_grant(
                &self,
                token_hash: &str,
            ) -> StoreResult<Option<(RefreshRecord, Grant, Option<User>)>> {
                let row = sqlx::query(concat!(
                    "SELECT ", grant_cols!(), ", rt_scope, rt_created_at, rt_expires_at, rt_used_at, u.* FROM grants \
                     JOIN (SELECT grant_id AS rt_grant_id, scope AS rt_scope, created_at AS rt_created_at, \
                     expires_at AS rt_expires_at, used_at AS rt_used_at FROM refresh_tokens WHERE token_hash = $1) rt \
                     ON grants.grant_id = rt.rt_grant_id \
                     LEFT JOIN (SELECT ", joined_user_cols!(), " FROM users) u ON u.u_id = grants.user_id"
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                let Some(r) = row else { return Ok(None) };
                let grant = Self::grant_from_row(&r)?;
                let rec = RefreshRecord {
                    grant_id: grant.id,
                    scope: r.try_get("rt_scope").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("rt_created_at").map_err(db_err)?),
                    expires_at: UnixTime(r.try_get("rt_expires_at").map_err(db_err)?),
                    used_at: r.try_get::<Option<i64>, _>("rt_used_at").map_err(db_err)?.map(UnixTime),
                };
                Ok(Some((rec, grant, Self::joined_user_from_row(&r)?)))
            }

            async fn revoke_access_token(&self, jti_hash: &str, expires_at: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO revoked_access_tokens (jti_hash, expires_at) VALUES ($1, $2) ON CONFLICT (jti_hash) DO NOTHING",
                )
                .bind(jti_hash)
                .bind(expires_at.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn access_token_revoked(&self, jti_hash: &str) -> StoreResult<bool> {
                let row = sqlx::query("SELECT 1 AS one FROM revoked_access_tokens WHERE jti_hash = $1")
                    .bind(jti_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(row.is_some())
            }

            async fn purge_grants(&self, now: UnixTime) -> StoreResult<u64> {
                let _w = self.writing().await;
                // Spent codes are kept a day so a late replay is still recognised as one.
                let day = 86_400;
                let a = sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
                    .bind(now.0 - day)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                let b = sqlx::query("DELETE FROM grants WHERE expires_at < $1")
                    .bind(now.0 - day)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                let c = sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(a.rows_affected() + b.rows_affected() + c.rows_affected())
            }
        }

        #[async_trait]
        impl AuthSessionStore for SqlStore<$db> {
            async fn open_session(&self, s: &AuthSessionRecord) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO auth_sessions (sid, user_id, auth_time, last_seen, idle_expires_at, expires_at, ended_at, amr, acr, ip, user_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&s.sid)
                .bind(s.user_id.as_uuid())
                .bind(s.auth_time.0)
                .bind(s.last_seen.0)
                .bind(s.idle_expires_at.0)
                .bind(s.expires_at.0)
                .bind(s.ended_at.map(|t| t.0))
                .bind(s.amr.join(" "))
                .bind(s.acr.as_deref())
                .bind(s.ip.as_deref())
                .bind(s.user_agent.as_deref())
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn auth_session(&self, sid: &str) -> StoreResult<Option<AuthSessionRecord>> {
                let row = sqlx::query(concat!("SELECT ", session_cols!(), " FROM auth_sessions WHERE sid = $1"))
                    .bind(sid)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::session_from_row).transpose()
            }

            async fn reauthenticated(
                &self,
                sid: &str,
                auth_time: UnixTime,
                idle_expires_at: UnixTime,
                expires_at: UnixTime,
                amr: &[String],
                acr: Option<&str>,
            ) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "UPDATE auth_sessions SET auth_time = $2, last_seen = $2, idle_expires_at = $3, expires_at = $4, \
                     amr = $5, acr = $6 WHERE sid = $1 AND ended_at IS NULL",
                )
                .bind(sid)
                .bind(auth_time.0)
                .bind(idle_expires_at.0)
                .bind(expires_at.0)
                .bind(amr.join(" "))
                .bind(acr)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn touch_session(&self, sid: &str, now: UnixTime, idle_expires_at: UnixTime) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "UPDATE auth_sessions SET last_seen = $2, idle_expires_at = $3 WHERE sid = $1 AND ended_at IS NULL",
                )
                .bind(sid)
                .bind(now.0)
                .bind(idle_expires_at.0)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn end_auth_session(&self, sid: &str, now: UnixTime) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query("UPDATE auth_sessions SET ended_at = $2 WHERE sid = $1 AND ended_at IS NULL")
                    .bind(sid)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn lapsed_sessions(&self, now: UnixTime, limit: i64) -> StoreResult<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT sid FROM auth_sessions WHERE ended_at IS NULL AND (idle_expires_at <= $1 OR expires_at <= $1) \
                     ORDER BY idle_expires_at LIMIT $2",
                )
                .bind(now.0)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(|r| r.try_get::<String, _>("sid").map_err(db_err)).collect()
            }

            async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<AuthSessionRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", session_cols!(), " FROM auth_sessions WHERE user_id = $1 ORDER BY auth_time DESC, sid"
                ))
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::session_from_row).collect()
            }
        }

        impl SqlStore<$db> {
            /// Why a rotation stored nothing: the token was used already (a replay), or it is
            /// unknown or expired.
            async fn not_rotated<T>(&self, token_hash: &str) -> StoreResult<Consumed<T>> {
                Ok(match self.refresh(token_hash).await? {
                    Some(rec) if rec.used_at.is_some() => Consumed::Replayed(rec.grant_id),
                    _ => Consumed::NotFound,
                })
            }

            fn session_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<AuthSessionRecord> {
                Ok(AuthSessionRecord {
                    sid: r.try_get("sid").map_err(db_err)?,
                    user_id: UserId::from_uuid(r.try_get::<Uuid, _>("user_id").map_err(db_err)?),
                    auth_time: UnixTime(r.try_get("auth_time").map_err(db_err)?),
                    last_seen: UnixTime(r.try_get("last_seen").map_err(db_err)?),
                    idle_expires_at: UnixTime(r.try_get("idle_expires_at").map_err(db_err)?),
                    expires_at: UnixTime(r.try_get("expires_at").map_err(db_err)?),
                    ended_at: r.try_get::<Option<i64>, _>("ended_at").map_err(db_err)?.map(UnixTime),
                    amr: r.try_get::<String, _>("amr").map_err(db_err)?.split_whitespace().map(str::to_owned).collect(),
                    acr: r.try_get("acr").map_err(db_err)?,
                    ip: r.try_get("ip").map_err(db_err)?,
                    user_agent: r.try_get("user_agent").map_err(db_err)?,
                })
            }

            fn code_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<AuthCode> {
                Ok(AuthCode {
                    grant_id: GrantId::from_uuid(r.try_get::<Uuid, _>("grant_id").map_err(db_err)?),
                    redirect_uri: r.try_get("redirect_uri").map_err(db_err)?,
                    nonce: r.try_get("nonce").map_err(db_err)?,
                    code_challenge: r.try_get("code_challenge").map_err(db_err)?,
                    expires_at: UnixTime(r.try_get("expires_at").map_err(db_err)?),
                })
            }

            async fn insert_refresh_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                r: &NewRefresh,
                now: UnixTime,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, grant_id, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&r.token_hash)
                .bind(r.grant_id.as_uuid())
                .bind(&r.scope)
                .bind(now.0)
                .bind(r.expires_at.0)
                .execute(&mut **tx)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            fn refresh_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<RefreshRecord> {
                Ok(RefreshRecord {
                    grant_id: GrantId::from_uuid(r.try_get::<Uuid, _>("grant_id").map_err(db_err)?),
                    scope: r.try_get("scope").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    expires_at: UnixTime(r.try_get("expires_at").map_err(db_err)?),
                    used_at: r.try_get::<Option<i64>, _>("used_at").map_err(db_err)?.map(UnixTime),
                })
            }
        }
    };
}

impl_oidc_stores!(Sqlite);
impl_oidc_stores!(Postgres);

#[cfg(test)]
mod tests {
    use crate::store::sql::{JOINED_USER_COLUMNS, USER_COLUMNS};

    /// The three spellings of the user columns cannot drift apart: `user_cols!()` (what user
    /// queries select), `joined_user_cols!()` (the same renamed for a join) and the names the
    /// decoder reads.
    #[test]
    fn user_column_lists_agree() {
        assert_eq!(user_cols!(), USER_COLUMNS.join(", "));
        let joined: Vec<String> =
            USER_COLUMNS.iter().zip(JOINED_USER_COLUMNS).map(|(c, j)| format!("{c} AS {j}")).collect();
        assert_eq!(joined_user_cols!(), joined.join(", "));
        assert!(JOINED_USER_COLUMNS.iter().zip(USER_COLUMNS).all(|(j, c)| *j == format!("u_{c}")));
    }
}
