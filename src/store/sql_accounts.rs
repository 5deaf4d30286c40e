//! SQL adapter of [`AccountStore`], written once and expanded for SQLite and PostgreSQL like
//! `sql.rs`. `apply` runs a list of account steps in one transaction.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::{Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{db_err, decode_err, is_unique_violation, SqlStore};
use super::{AccountStore, StoreError, StoreResult};
use crate::domain::account::{
    AccountOp, AccountToken, Invitation, LoginEvent, NewInvitation, OutboxMessage, SignupConsents, TokenKind,
    CODE_MAX_ATTEMPTS,
};
use crate::domain::{NewUser, OrgId, UnixTime, User, UserId};

macro_rules! token_cols {
    () => {
        "digest, kind, user_id, email, data, attempts, created_at, expires_at, used_at"
    };
}

macro_rules! invitation_cols {
    () => {
        "id, email, name, org, org_id, org_role, resource, invited_by, created_at, expires_at, accepted_at, accepted_by, revoked_at"
    };
}

fn spent() -> StoreError {
    StoreError::Conflict { constraint: "token_spent" }
}

/// A statement that had to change a row: `NotFound` when it changed none.
fn found(rows: u64) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Sent messages are kept a day (delivery questions), then go: they hold addresses.
const SENT_KEPT_SECS: i64 = 24 * 3600;
/// Sign-in history is kept 90 days.
const HISTORY_KEPT_SECS: i64 = 90 * 24 * 3600;

macro_rules! impl_account_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn token_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<AccountToken> {
                let kind: String = r.try_get("kind").map_err(db_err)?;
                let data: String = r.try_get("data").map_err(db_err)?;
                Ok(AccountToken {
                    digest: r.try_get("digest").map_err(db_err)?,
                    kind: TokenKind::from_str(&kind).map_err(|e| decode_err("token kind", e))?,
                    user_id: r.try_get::<Option<Uuid>, _>("user_id").map_err(db_err)?.map(UserId::from_uuid),
                    email: r.try_get("email").map_err(db_err)?,
                    data: serde_json::from_str(&data).map_err(|e| decode_err("token data", e))?,
                    attempts: r.try_get("attempts").map_err(db_err)?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    expires_at: UnixTime(r.try_get("expires_at").map_err(db_err)?),
                    used_at: r.try_get::<Option<i64>, _>("used_at").map_err(db_err)?.map(UnixTime),
                })
            }

            fn invitation_from_row(r: &<$db as sqlx::Database>::Row) -> StoreResult<Invitation> {
                let opt_time = |c: &str| -> StoreResult<Option<UnixTime>> {
                    Ok(r.try_get::<Option<i64>, _>(c).map_err(db_err)?.map(UnixTime))
                };
                let opt_user = |c: &str| -> StoreResult<Option<UserId>> {
                    Ok(r.try_get::<Option<Uuid>, _>(c).map_err(db_err)?.map(UserId::from_uuid))
                };
                Ok(Invitation {
                    id: r.try_get("id").map_err(db_err)?,
                    email: r.try_get("email").map_err(db_err)?,
                    name: r.try_get("name").map_err(db_err)?,
                    org: r.try_get("org").map_err(db_err)?,
                    org_id: r.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?.map(crate::domain::OrgId::from_uuid),
                    org_role: r
                        .try_get::<Option<String>, _>("org_role")
                        .map_err(db_err)?
                        .map(|s| s.parse::<crate::domain::org::OrgRole>())
                        .transpose()
                        .map_err(|e| decode_err("org role", e))?,
                    resource: r.try_get("resource").map_err(db_err)?,
                    invited_by: opt_user("invited_by")?,
                    created_at: UnixTime(r.try_get("created_at").map_err(db_err)?),
                    expires_at: UnixTime(r.try_get("expires_at").map_err(db_err)?),
                    accepted_at: opt_time("accepted_at")?,
                    accepted_by: opt_user("accepted_by")?,
                    revoked_at: opt_time("revoked_at")?,
                })
            }

            /// One step of an account change, inside the caller's transaction.
            async fn apply_op(
                tx: &mut sqlx::Transaction<'_, $db>,
                op: AccountOp,
                now: UnixTime,
            ) -> StoreResult<()> {
                match op {
                    AccountOp::ConsumeToken { digest } => {
                        let r = sqlx::query(
                            "UPDATE account_tokens SET used_at = $2 \
                             WHERE digest = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3",
                        )
                        .bind(&digest)
                        .bind(now.0)
                        .bind(CODE_MAX_ATTEMPTS)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        if r.rows_affected() != 1 {
                            return Err(spent());
                        }
                    }
                    AccountOp::InsertToken(t) => {
                        if let Some(u) = t.user_id {
                            sqlx::query(
                                "UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND kind = $2 AND used_at IS NULL",
                            )
                            .bind(u.as_uuid())
                            .bind(t.kind.as_str())
                            .bind(now.0)
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        }
                        sqlx::query(concat!(
                            "INSERT INTO account_tokens (",
                            token_cols!(),
                            ") VALUES ($1, $2, $3, $4, $5, 0, $6, $7, NULL)"
                        ))
                        .bind(&t.digest)
                        .bind(t.kind.as_str())
                        .bind(t.user_id.map(|u| u.as_uuid()))
                        .bind(t.email.as_deref())
                        .bind(t.data.to_string())
                        .bind(now.0)
                        .bind(t.expires_at.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                    AccountOp::SetPassword { user, hash } => {
                        Self::update_user(tx, "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1", user, Some(hash), now).await?;
                    }
                    AccountOp::SetStatus { user, status } => {
                        Self::update_user(tx, "UPDATE users SET status = $2, updated_at = $3 WHERE id = $1", user, Some(status.as_str().to_owned()), now).await?;
                    }
                    AccountOp::SetEmailVerified { user } => {
                        let r = sqlx::query("UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1")
                            .bind(user.as_uuid())
                            .bind(now.0)
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::ChangeEmail { user, email } => {
                        let r = sqlx::query(
                            "UPDATE users SET email = $2, email_lookup = $3, email_verified = TRUE, updated_at = $4 WHERE id = $1",
                        )
                        .bind(user.as_uuid())
                        .bind(email.as_str())
                        .bind(email.lookup_key())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict { constraint: "users_email" } } else { db_err(e) })?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::SetPhone { user, phone, verified } => {
                        let r = sqlx::query(
                            "UPDATE users SET phone_number = $2, phone_number_verified = $3, updated_at = $4 WHERE id = $1",
                        )
                        .bind(user.as_uuid())
                        .bind(phone.as_deref())
                        .bind(verified)
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::SetProfile { user, profile } => {
                        let r = sqlx::query(
                            "UPDATE users SET name = $2, locale = $3, time_zone = $4, updated_at = $5 WHERE id = $1",
                        )
                        .bind(user.as_uuid())
                        .bind(profile.name.as_deref())
                        .bind(profile.locale.as_deref())
                        .bind(profile.time_zone.as_deref())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::EndSessions { user, except } => {
                        let rows = sqlx::query(
                            "UPDATE auth_sessions SET ended_at = $2 \
                             WHERE user_id = $1 AND ended_at IS NULL AND sid <> COALESCE($3, '') RETURNING sid",
                        )
                        .bind(user.as_uuid())
                        .bind(now.0)
                        .bind(except.as_deref())
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        for row in rows {
                            let sid: String = row.try_get("sid").map_err(db_err)?;
                            Self::revoke_session_grants_in(tx, &sid, now).await?;
                        }
                    }
                    AccountOp::EndSession { user, sid } => {
                        sqlx::query("UPDATE auth_sessions SET ended_at = $3 WHERE user_id = $1 AND sid = $2 AND ended_at IS NULL")
                            .bind(user.as_uuid())
                            .bind(&sid)
                            .bind(now.0)
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        Self::revoke_session_grants_in(tx, &sid, now).await?;
                    }
                    AccountOp::RevokeAllGrants { user } => {
                        sqlx::query("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                            .bind(user.as_uuid())
                            .bind(now.0)
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                    }
                    AccountOp::AddResource { user, resource, invitation } => {
                        sqlx::query(
                            "INSERT INTO user_resources (user_id, resource, invitation_id, granted_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (user_id, resource) DO NOTHING",
                        )
                        .bind(user.as_uuid())
                        .bind(&resource)
                        .bind(invitation)
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                    AccountOp::GrantRole { org, user, role } => {
                        sqlx::query(
                            "INSERT INTO member_roles (org_id, user_id, role_id, created_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (org_id, user_id, role_id) DO NOTHING",
                        )
                        .bind(org.as_uuid())
                        .bind(user.as_uuid())
                        .bind(role.as_uuid())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                    AccountOp::RevokeRole { org, user, role } => {
                        sqlx::query("DELETE FROM member_roles WHERE org_id = $1 AND user_id = $2 AND role_id = $3")
                            .bind(org.as_uuid())
                            .bind(user.as_uuid())
                            .bind(role.as_uuid())
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                    }
                    AccountOp::JoinOrg { org, user, role } => {
                        sqlx::query(
                            "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (org_id, user_id) DO NOTHING",
                        )
                        .bind(org.as_uuid())
                        .bind(user.as_uuid())
                        .bind(role.as_str())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                    AccountOp::LinkIdentity { connection, subject, user, email } => {
                        sqlx::query(
                            "INSERT INTO federated_identities (connection_id, subject, user_id, email, created_at, last_login_at) \
                             VALUES ($1, $2, $3, $4, $5, $5) \
                             ON CONFLICT (connection_id, subject) DO UPDATE SET email = excluded.email, last_login_at = excluded.last_login_at \
                             WHERE federated_identities.user_id = excluded.user_id",
                        )
                        .bind(connection.as_uuid())
                        .bind(&subject)
                        .bind(user.as_uuid())
                        .bind(email.as_deref())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                    AccountOp::AcceptInvitation { id, user } => {
                        let r = sqlx::query(
                            "UPDATE invitations SET accepted_at = $2, accepted_by = $3 \
                             WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
                        )
                        .bind(id)
                        .bind(now.0)
                        .bind(user.as_uuid())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        if r.rows_affected() != 1 {
                            return Err(spent());
                        }
                    }
                    AccountOp::DeleteUser { user, pseudonym } => {
                        Self::pseudonymise_audit_in(tx, user, &pseudonym).await?;
                        // Invitations addressed to the person hold their address: they go too.
                        sqlx::query(
                            "DELETE FROM invitations WHERE email_lookup = (SELECT email_lookup FROM users WHERE id = $1)",
                        )
                        .bind(user.as_uuid())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        let r = sqlx::query("DELETE FROM users WHERE id = $1")
                            .bind(user.as_uuid())
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::Enqueue(m) => Self::enqueue_in(tx, &m, now, now).await?,
                    AccountOp::EnqueueAt(m, at) => Self::enqueue_in(tx, &m, now, at).await?,
                    AccountOp::OrgEvent(e) => {
                        let payload = serde_json::to_string(&e).map_err(StoreError::unavailable)?;
                        sqlx::query("INSERT INTO org_events (id, org_id, type, at, payload) VALUES ($1, $2, $3, $4, $5)")
                            .bind(&e.id)
                            .bind(e.org.as_uuid())
                            .bind(&e.event_type)
                            .bind(now.0)
                            .bind(payload)
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                    }
                    AccountOp::AddFactor(f) => {
                        sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1 AND kind = $2 AND confirmed = FALSE")
                            .bind(f.user_id.as_uuid())
                            .bind(f.kind.as_str())
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        sqlx::query(
                            "INSERT INTO mfa_factors (id, user_id, kind, name, secret, confirmed, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(f.id)
                        .bind(f.user_id.as_uuid())
                        .bind(f.kind.as_str())
                        .bind(&f.name)
                        .bind(&f.secret_sealed)
                        .bind(f.confirmed)
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                    AccountOp::ConfirmFactor { user, id } => {
                        let r = sqlx::query(
                            "UPDATE mfa_factors SET confirmed = TRUE WHERE id = $1 AND user_id = $2 AND confirmed = FALSE",
                        )
                        .bind(id)
                        .bind(user.as_uuid())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        if r.rows_affected() != 1 {
                            return Err(spent());
                        }
                    }
                    AccountOp::RemoveFactor { user, id } => {
                        let r = sqlx::query("DELETE FROM mfa_factors WHERE id = $1 AND user_id = $2")
                            .bind(id)
                            .bind(user.as_uuid())
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::TouchFactor { user, id, secret_sealed } => {
                        let r = sqlx::query(
                            "UPDATE mfa_factors SET last_used_at = $3, secret = COALESCE($4, secret) WHERE id = $1 AND user_id = $2",
                        )
                        .bind(id)
                        .bind(user.as_uuid())
                        .bind(now.0)
                        .bind(secret_sealed.as_deref())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::RenameFactor { user, id, name } => {
                        let r = sqlx::query("UPDATE mfa_factors SET name = $3 WHERE id = $1 AND user_id = $2")
                            .bind(id)
                            .bind(user.as_uuid())
                            .bind(&name)
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        found(r.rows_affected())?;
                    }
                    AccountOp::RemoveFactors { user } => {
                        for sql in ["DELETE FROM mfa_factors WHERE user_id = $1", "DELETE FROM recovery_codes WHERE user_id = $1"] {
                            sqlx::query(sql).bind(user.as_uuid()).execute(&mut **tx).await.map_err(db_err)?;
                        }
                    }
                    AccountOp::SetRecoveryCodes { user, digests } => {
                        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                            .bind(user.as_uuid())
                            .execute(&mut **tx)
                            .await
                            .map_err(db_err)?;
                        for d in digests {
                            sqlx::query("INSERT INTO recovery_codes (user_id, digest, created_at) VALUES ($1, $2, $3)")
                                .bind(user.as_uuid())
                                .bind(&d)
                                .bind(now.0)
                                .execute(&mut **tx)
                                .await
                                .map_err(db_err)?;
                        }
                    }
                    AccountOp::Audit { action, subject, actor, detail, org, outcome } => {
                        // Where the change came from: the request being served, if any.
                        let context = crate::audit::current_context();
                        let org = org.or_else(|| subject.strip_prefix("org:").and_then(|o| o.parse::<OrgId>().ok()));
                        sqlx::query(
                            "INSERT INTO audit_events (at, action, subject, actor, detail, ip, user_agent, org_id, outcome) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(now.0)
                        .bind(&action)
                        .bind(&subject)
                        .bind(actor.as_deref())
                        .bind(detail.as_deref())
                        .bind(context.ip.as_deref())
                        .bind(context.user_agent.as_deref())
                        .bind(org.map(|o| o.as_uuid()))
                        .bind(outcome.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    }
                }
                Ok(())
            }

            /// The audit entries about or by the user (by id, `user:<id>` or address) name the
            /// pseudonym instead, in their subject, actor and detail, and lose their IP and user
            /// agent.
            async fn pseudonymise_audit_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                user: UserId,
                pseudonym: &str,
            ) -> StoreResult<()> {
                let email: Option<String> = sqlx::query("SELECT email FROM users WHERE id = $1")
                    .bind(user.as_uuid())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_err)?
                    .map(|r| r.try_get("email"))
                    .transpose()
                    .map_err(db_err)?;
                let id = user.to_string();
                let tagged = format!("user:{id}");
                let email = email.unwrap_or_else(|| id.clone());
                for column in ["subject", "actor"] {
                    // The column name is one of two constants, never input.
                    let sql = format!(
                        "UPDATE audit_events SET {column} = $1, ip = NULL, user_agent = NULL \
                         WHERE {column} IN ($1, $2, $3) OR lower({column}) = lower($4)"
                    );
                    sqlx::query(&sql)
                        .bind(pseudonym)
                        .bind(&id)
                        .bind(&tagged)
                        .bind(&email)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                }
                for name in [&id, &email] {
                    sqlx::query(
                        "UPDATE audit_events SET detail = replace(detail, $1, $2) \
                         WHERE detail IS NOT NULL AND detail LIKE '%' || $1 || '%'",
                    )
                    .bind(name.as_str())
                    .bind(pseudonym)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                }
                Ok(())
            }

            async fn update_user(
                tx: &mut sqlx::Transaction<'_, $db>,
                sql: &'static str,
                user: UserId,
                value: Option<String>,
                now: UnixTime,
            ) -> StoreResult<()> {
                let r = sqlx::query(sql)
                    .bind(user.as_uuid())
                    .bind(value)
                    .bind(now.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                found(r.rows_affected())
            }

            async fn revoke_session_grants_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                sid: &str,
                now: UnixTime,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE sid = $1 AND revoked_at IS NULL AND offline = FALSE")
                    .bind(sid)
                    .bind(now.0)
                    .execute(&mut **tx)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            pub(super) async fn enqueue_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                m: &OutboxMessage,
                now: UnixTime,
                due: UnixTime,
            ) -> StoreResult<()> {
                let payload = serde_json::to_string(m).map_err(StoreError::unavailable)?;
                sqlx::query("INSERT INTO outbox (kind, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 0, $4)")
                    .bind(m.kind())
                    .bind(payload)
                    .bind(now.0)
                    .bind(due.0)
                    .execute(&mut **tx)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }

            pub(super) async fn apply_all(tx: &mut sqlx::Transaction<'_, $db>, ops: Vec<AccountOp>, now: UnixTime) -> StoreResult<()> {
                for op in ops {
                    Self::apply_op(tx, op, now).await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl AccountStore for SqlStore<$db> {
            async fn create_account(
                &self,
                id: UserId,
                new: NewUser,
                consents: &SignupConsents,
                ops: Vec<AccountOp>,
            ) -> StoreResult<User> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                let row = sqlx::query(concat!(
                    "INSERT INTO users (id, email, email_lookup, name, password_hash, status, is_admin, terms_version, \
                     terms_accepted_at, newsletter_consent_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING ",
                    user_cols!()
                ))
                .bind(id.as_uuid())
                .bind(new.email.as_str())
                .bind(new.email.lookup_key())
                .bind(new.name.as_deref())
                .bind(new.password_hash.as_deref())
                .bind(new.status.as_str())
                .bind(new.is_admin)
                .bind(consents.terms_version.as_deref())
                .bind(consents.terms_version.as_ref().map(|_| now.0))
                .bind(consents.newsletter.then_some(now.0))
                .bind(now.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict { constraint: "users_email" } } else { db_err(e) })?;
                let user = Self::user_from_row(&row)?;
                Self::apply_all(&mut tx, ops, now).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(user)
            }

            async fn apply(&self, ops: Vec<AccountOp>) -> StoreResult<()> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                Self::apply_all(&mut tx, ops, now).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn token(&self, digest: &str) -> StoreResult<Option<AccountToken>> {
                let row = sqlx::query(concat!("SELECT ", token_cols!(), " FROM account_tokens WHERE digest = $1"))
                    .bind(digest)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::token_from_row).transpose()
            }

            async fn live_code(&self, user: UserId, kind: TokenKind, now: UnixTime) -> StoreResult<Option<AccountToken>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    token_cols!(),
                    " FROM account_tokens WHERE user_id = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 \
                      AND attempts < $4 ORDER BY created_at DESC LIMIT 1"
                ))
                .bind(user.as_uuid())
                .bind(kind.as_str())
                .bind(now.0)
                .bind(CODE_MAX_ATTEMPTS)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(Self::token_from_row).transpose()
            }

            async fn code_failed(&self, user: UserId, kind: TokenKind, now: UnixTime) -> StoreResult<i64> {
                let _w = self.writing().await;
                let row = sqlx::query(
                    "UPDATE account_tokens SET attempts = attempts + 1 \
                     WHERE user_id = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 RETURNING attempts",
                )
                .bind(user.as_uuid())
                .bind(kind.as_str())
                .bind(now.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut most = 0;
                for r in row {
                    most = most.max(r.try_get::<i64, _>("attempts").map_err(db_err)?);
                }
                Ok(most)
            }

            async fn create_invitation(&self, inv: &NewInvitation, ops: Vec<AccountOp>) -> StoreResult<()> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                sqlx::query(
                    "INSERT INTO invitations (id, email, email_lookup, name, org, resource, invited_by, token_digest, created_at, expires_at, org_id, org_role) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(inv.id)
                .bind(inv.email.as_str())
                .bind(inv.email.lookup_key())
                .bind(inv.name.as_deref())
                .bind(inv.org.as_deref())
                .bind(inv.resource.as_deref())
                .bind(inv.invited_by.map(|u| u.as_uuid()))
                .bind(&inv.token_digest)
                .bind(now.0)
                .bind(inv.expires_at.0)
                .bind(inv.org_id.map(|o| o.as_uuid()))
                .bind(inv.org_role.map(|r| r.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                Self::apply_all(&mut tx, ops, now).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn invitation(&self, id: Uuid) -> StoreResult<Option<Invitation>> {
                let row = sqlx::query(concat!("SELECT ", invitation_cols!(), " FROM invitations WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::invitation_from_row).transpose()
            }

            async fn invitation_by_token(&self, digest: &str) -> StoreResult<Option<Invitation>> {
                let row = sqlx::query(concat!("SELECT ", invitation_cols!(), " FROM invitations WHERE token_digest = $1"))
                    .bind(digest)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(Self::invitation_from_row).transpose()
            }

            async fn list_invitations(&self, limit: i64) -> StoreResult<Vec<Invitation>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    invitation_cols!(),
                    " FROM invitations ORDER BY created_at DESC, id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::invitation_from_row).collect()
            }

            async fn invitations_for(&self, email_lookup: &str) -> StoreResult<Vec<Invitation>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    invitation_cols!(),
                    " FROM invitations WHERE email_lookup = $1 ORDER BY created_at DESC"
                ))
                .bind(email_lookup)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(Self::invitation_from_row).collect()
            }

            async fn revoke_invitation(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
                let _w = self.writing().await;
                let r = sqlx::query(
                    "UPDATE invitations SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL AND accepted_at IS NULL",
                )
                .bind(id)
                .bind(now.0)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn reissue_invitation(
                &self,
                id: Uuid,
                token_digest: &str,
                expires_at: UnixTime,
                ops: Vec<AccountOp>,
            ) -> StoreResult<()> {
                let _w = self.writing().await;
                let now = self.clock.now();
                let mut tx = super::begin(&self.pool).await.map_err(db_err)?;
                let r = sqlx::query(
                    "UPDATE invitations SET token_digest = $2, expires_at = $3 \
                     WHERE id = $1 AND revoked_at IS NULL AND accepted_at IS NULL",
                )
                .bind(id)
                .bind(token_digest)
                .bind(expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Self::apply_all(&mut tx, ops, now).await?;
                tx.commit().await.map_err(db_err)
            }

            async fn resources_of(&self, user: UserId) -> StoreResult<Vec<String>> {
                let rows = sqlx::query("SELECT resource FROM user_resources WHERE user_id = $1 ORDER BY resource")
                    .bind(user.as_uuid())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| r.try_get::<String, _>("resource").map_err(db_err)).collect()
            }

            async fn record_login(&self, user: UserId, e: &LoginEvent) -> StoreResult<()> {
                let _w = self.writing().await;
                sqlx::query(
                    "INSERT INTO login_events (user_id, at, success, method, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.as_uuid())
                .bind(e.at.0)
                .bind(e.success)
                .bind(&e.method)
                .bind(e.ip.as_deref())
                .bind(e.user_agent.as_deref())
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
            }

            async fn login_history(&self, user: UserId, limit: i64) -> StoreResult<Vec<LoginEvent>> {
                let rows = sqlx::query(
                    "SELECT at, success, method, ip, user_agent FROM login_events WHERE user_id = $1 \
                     ORDER BY at DESC, id DESC LIMIT $2",
                )
                .bind(user.as_uuid())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(LoginEvent {
                            at: UnixTime(r.try_get("at").map_err(db_err)?),
                            success: r.try_get("success").map_err(db_err)?,
                            method: r.try_get("method").map_err(db_err)?,
                            ip: r.try_get("ip").map_err(db_err)?,
                            user_agent: r.try_get("user_agent").map_err(db_err)?,
                        })
                    })
                    .collect()
            }

            async fn purge_accounts(&self, now: UnixTime) -> StoreResult<u64> {
                let _w = self.writing().await;
                let mut n = 0;
                for (sql, at) in [
                    ("DELETE FROM account_tokens WHERE expires_at <= $1 OR used_at <= $1", now.plus_secs(-3600)),
                    ("DELETE FROM outbox WHERE sent_at <= $1", now.plus_secs(-SENT_KEPT_SECS)),
                    ("DELETE FROM login_events WHERE at <= $1", now.plus_secs(-HISTORY_KEPT_SECS)),
                ] {
                    n += sqlx::query(sql).bind(at.0).execute(&self.pool).await.map_err(db_err)?.rows_affected();
                }
                Ok(n)
            }
        }
    };
}

impl_account_store!(Sqlite);
impl_account_store!(Postgres);
