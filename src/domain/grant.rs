//! Grants and the artefacts issued from them (authorization codes, refresh tokens).
//!
//! A grant is what one authorization gave one client: user, scope, session, authentication
//! facts. Codes and refresh tokens point at it; access tokens carry its id. Revoking the grant
//! (code replay, refresh-token reuse, logout, consent withdrawal) kills everything issued from it.

use super::{ClientId, GrantId, UnixTime, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: GrantId,
    pub client_id: ClientId,
    /// None for client_credentials.
    pub user_id: Option<UserId>,
    /// The sign-in session (OIDC `sid`), when there was one.
    pub sid: Option<String>,
    /// Space-separated granted scope.
    pub scope: String,
    /// `offline_access` was granted: refresh tokens outlive the session.
    pub offline: bool,
    pub auth_time: UnixTime,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// OIDC Core §5.5 `claims` request, as sent.
    pub claims: Option<serde_json::Value>,
    /// The organization the user acts for (chosen at sign-in): `org`, `roles` and
    /// `permissions` claims come from it, and it ends when the membership does.
    pub org_id: Option<super::OrgId>,
    /// The connection of a federated sign-in (the `idp` claim).
    pub idp: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

impl Grant {
    pub fn is_active(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

#[derive(Clone)]
pub struct NewAuthCode {
    pub code_hash: String,
    pub grant_id: GrantId,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub grant_id: GrantId,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    pub grant_id: GrantId,
    pub scope: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

/// A refresh token about to be stored (only its digest).
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub token_hash: String,
    pub grant_id: GrantId,
    pub scope: String,
    pub expires_at: UnixTime,
}

/// A sign-in session (OIDC `sid`) as the durable store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSessionRecord {
    pub sid: String,
    pub user_id: UserId,
    pub auth_time: UnixTime,
    pub last_seen: UnixTime,
    pub idle_expires_at: UnixTime,
    pub expires_at: UnixTime,
    pub ended_at: Option<UnixTime>,
    /// How the user authenticated (RFC 8176 values) and the level reached.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// Where the sign-in came from (shown on the account's session list).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}
