//! Developer keys (`domain/devkey.rs`) of an organization, created, listed, reset and deleted by
//! its admins (and the platform), and a user's own keys (for their own apps), managed by that
//! user; every change audited. And the authentication of admin-API requests with them (HTTP
//! Basic, or an HMAC signature within 5 minutes, each signature once): an organization's key is
//! confined to it; a user's key acts with its owner's rights, re-read at each request (a
//! suspended or deleted owner's keys stop working at once).

use std::sync::Arc;

use crate::crypto::tokens;
use crate::domain::devkey::{self, DevKey, KeyOwner};
use crate::domain::{Clock, OrgId, User, UserId, UserStatus};
use crate::orgs::{Actor, OrgError, OrgService};
use crate::store::ephemeral_keys::EphemeralKey;
use crate::store::{StoreError, Stores};

#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    #[error("no such key")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    /// Unknown key, wrong secret or signature, expired key, replayed or stale signature (one
    /// answer for all).
    #[error("the credentials are not valid")]
    Unauthorized,
    /// The sign-in is too old for this change: sign in again.
    #[error("sign in again first")]
    Reauthenticate,
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type DevKeyResult<T> = Result<T, DevKeyError>;

/// Who an API request comes from: an organization's key (confined to it), or a user's key (with
/// its owner, as read for this request).
#[derive(Debug, Clone)]
pub struct Principal {
    pub key: String,
    pub owner: PrincipalOwner,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum PrincipalOwner {
    Org(OrgId),
    User(Box<User>),
}

impl Principal {
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || (scope == "read" && s == "write"))
    }
}

/// A key as shown: never its secret or digest.
pub fn devkey_json(k: &DevKey) -> serde_json::Value {
    serde_json::json!({
        "key": k.id, "org": k.owner.org(), "user": k.owner.user(), "name": k.name, "scopes": k.scopes, "created_at": k.created_at.0,
        "last_used_at": k.last_used_at.map(|t| t.0), "expires_at": k.expires_at.map(|t| t.0),
    })
}

pub struct DevKeyService {
    stores: Stores,
    orgs: Arc<OrgService>,
    clock: Arc<dyn Clock>,
}

impl DevKeyService {
    pub fn new(stores: Stores, orgs: Arc<OrgService>, clock: Arc<dyn Clock>) -> Self {
        Self { stores, orgs, clock }
    }

    async fn own(&self, actor: Actor, org_ref: &str, id: &str) -> DevKeyResult<(crate::domain::org::Org, DevKey)> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let k = self
            .stores
            .devkeys
            .devkey(id.trim())
            .await?
            .filter(|k| k.owner == KeyOwner::Org(org.id))
            .ok_or(DevKeyError::NotFound)?;
        Ok((org, k))
    }

    /// A new key of the organization: (the key, its DevSecret — shown this once).
    pub async fn create(
        &self,
        actor: Actor,
        org_ref: &str,
        name: &str,
        scopes: &[String],
        expires_in_days: Option<i64>,
    ) -> DevKeyResult<(DevKey, String)> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let (k, secret) = self.new_key(KeyOwner::Org(org.id), name, scopes, expires_in_days)?;
        self.stores.devkeys.create_devkey(&k).await?;
        self.orgs
            .audit_event(
                "org.devkey_created",
                org.id,
                actor,
                Some(serde_json::json!({"key": k.id, "scopes": k.scopes})),
            )
            .await;
        Ok((k, secret))
    }

    pub async fn list(&self, actor: Actor, org_ref: &str) -> DevKeyResult<Vec<DevKey>> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        Ok(self.stores.devkeys.devkeys_of(org.id).await?)
    }

    pub async fn delete(&self, actor: Actor, org_ref: &str, id: &str) -> DevKeyResult<()> {
        let (org, k) = self.own(actor, org_ref, id).await?;
        self.stores.devkeys.delete_devkey(&k.id).await?;
        self.orgs.audit_event("org.devkey_deleted", org.id, actor, Some(serde_json::json!({"key": k.id}))).await;
        Ok(())
    }

    /// Deletes a key once its name is typed again (`confirm`, else `Invalid("confirm")`): another
    /// organization's key is `NotFound` before the name is looked at.
    pub async fn delete_confirmed(&self, actor: Actor, org_ref: &str, id: &str, confirm: &str) -> DevKeyResult<()> {
        let (_, k) = self.own(actor, org_ref, id).await?;
        if confirm.trim() != k.name {
            return Err(DevKeyError::Invalid("confirm".into()));
        }
        self.delete(actor, org_ref, &k.id).await
    }

    /// A new DevSecret (shown once); the old one stops working at once.
    pub async fn reset(&self, actor: Actor, org_ref: &str, id: &str) -> DevKeyResult<(DevKey, String)> {
        let (org, mut k) = self.own(actor, org_ref, id).await?;
        let secret = devkey::new_secret();
        k.secret_digest = tokens::digest(&secret);
        self.stores.devkeys.set_devkey_secret(&k.id, &k.secret_digest).await?;
        self.orgs.audit_event("org.devkey_reset", org.id, actor, Some(serde_json::json!({"key": k.id}))).await;
        Ok((k, secret))
    }

    /// A new key (not stored yet) and its DevSecret, after checking the name, scopes and expiry.
    fn new_key(
        &self,
        owner: KeyOwner,
        name: &str,
        scopes: &[String],
        expires_in_days: Option<i64>,
    ) -> DevKeyResult<(DevKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DevKeyError::Invalid("the name is 1 to 100 characters".into()));
        }
        let scopes = devkey::parse_scopes(scopes).map_err(DevKeyError::Invalid)?;
        if expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            return Err(DevKeyError::Invalid("the expiry is 1 to 3650 days".into()));
        }
        let now = self.clock.now();
        let secret = devkey::new_secret();
        let k = DevKey {
            id: devkey::new_key_id(),
            owner,
            name: name.to_owned(),
            scopes,
            secret_digest: tokens::digest(&secret),
            created_at: now,
            last_used_at: None,
            expires_at: expires_in_days.map(|d| now.plus_secs(d * 86_400)),
        };
        Ok((k, secret))
    }

    // ------------------------------------------------------------------ a user's own keys

    /// Records a user's key change in the audit log (subject: the user).
    async fn audit_user(&self, action: &str, user: UserId, key: &str) {
        let op = crate::domain::account::AccountOp::Audit {
            action: action.to_owned(),
            subject: user.to_string(),
            actor: Some(user.to_string()),
            detail: Some(serde_json::json!({"key": key}).to_string()),
            org: None,
            outcome: Default::default(),
        };
        if let Err(e) = self.stores.accounts.apply(vec![op]).await {
            tracing::warn!(error = %e, action, "could not write the audit event");
        }
    }

    /// A new key of the user, for their own apps: (the key, its DevSecret — shown this once).
    pub async fn create_for_user(
        &self,
        user: UserId,
        name: &str,
        scopes: &[String],
        expires_in_days: Option<i64>,
    ) -> DevKeyResult<(DevKey, String)> {
        let (k, secret) = self.new_key(KeyOwner::User(user), name, scopes, expires_in_days)?;
        self.stores.devkeys.create_devkey(&k).await?;
        self.audit_user("account.devkey_created", user, &k.id).await;
        Ok((k, secret))
    }

    pub async fn list_for_user(&self, user: UserId) -> DevKeyResult<Vec<DevKey>> {
        Ok(self.stores.devkeys.devkeys_of_user(user).await?)
    }

    /// The user's key `id` (another's, or an organization's, is `NotFound`).
    async fn own_user_key(&self, user: UserId, id: &str) -> DevKeyResult<DevKey> {
        self.stores
            .devkeys
            .devkey(id.trim())
            .await?
            .filter(|k| k.owner == KeyOwner::User(user))
            .ok_or(DevKeyError::NotFound)
    }

    /// A new DevSecret for the user's key (shown once); the old one stops working at once.
    /// `auth_time`: when the user last signed in, which must be recent (else `Reauthenticate`).
    pub async fn reset_for_user(
        &self,
        user: UserId,
        id: &str,
        auth_time: crate::domain::UnixTime,
        recent_secs: i64,
    ) -> DevKeyResult<(DevKey, String)> {
        let mut k = self.own_user_key(user, id).await?;
        if auth_time.secs_until(self.clock.now()) > recent_secs {
            return Err(DevKeyError::Reauthenticate);
        }
        let secret = devkey::new_secret();
        k.secret_digest = tokens::digest(&secret);
        self.stores.devkeys.set_devkey_secret(&k.id, &k.secret_digest).await?;
        self.audit_user("account.devkey_reset", user, &k.id).await;
        Ok((k, secret))
    }

    /// Deletes the user's key (`NotFound` when it is not theirs or gone).
    pub async fn delete_for_user(&self, user: UserId, id: &str) -> DevKeyResult<()> {
        let k = self.own_user_key(user, id).await?;
        self.stores.devkeys.delete_devkey(&k.id).await?;
        self.audit_user("account.devkey_deleted", user, &k.id).await;
        Ok(())
    }

    // ------------------------------------------------------------------ authentication

    async fn usable(&self, key: &str) -> DevKeyResult<DevKey> {
        if key.len() > 64 || !key.starts_with("gk_") {
            return Err(DevKeyError::Unauthorized);
        }
        let k = self.stores.devkeys.devkey(key).await?.ok_or(DevKeyError::Unauthorized)?;
        let now = self.clock.now();
        if k.expired(now) {
            return Err(DevKeyError::Unauthorized);
        }
        // Last use, to the minute (not a write per request).
        if k.last_used_at.is_none_or(|t| now.0 - t.0 >= 60) {
            if let Err(e) = self.stores.devkeys.devkey_used(&k.id, now).await {
                tracing::warn!(error = %e, "cannot record a key's last use");
            }
        }
        Ok(k)
    }

    /// The principal of a key that passed: a user's key only while its owner is active.
    async fn principal(&self, k: DevKey) -> DevKeyResult<Principal> {
        let owner = match k.owner {
            KeyOwner::Org(o) => PrincipalOwner::Org(o),
            KeyOwner::User(u) => match self.stores.users.user_by_id(u).await? {
                Some(user) if user.status == UserStatus::Active => PrincipalOwner::User(Box::new(user)),
                _ => return Err(DevKeyError::Unauthorized),
            },
        };
        Ok(Principal { key: k.id, owner, scopes: k.scopes })
    }

    /// HTTP Basic: `DevKey:DevSecret`.
    pub async fn authenticate_basic(&self, key: &str, secret: &str) -> DevKeyResult<Principal> {
        let k = self.usable(key).await?;
        if !tokens::constant_time_eq(k.secret_digest.as_bytes(), tokens::digest(secret).as_bytes()) {
            return Err(DevKeyError::Unauthorized);
        }
        self.principal(k).await
    }

    /// A signed request: the signature over method, path, timestamp and body hash, within the
    /// window of Guichet's clock, never seen before.
    pub async fn authenticate_signed(
        &self,
        header: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> DevKeyResult<Principal> {
        let (key, ts, sig) = devkey::parse_hmac_header(header).ok_or(DevKeyError::Unauthorized)?;
        if (self.clock.now().0 - ts).abs() > devkey::SIGNATURE_WINDOW_SECS {
            return Err(DevKeyError::Unauthorized);
        }
        let k = self.usable(&key).await?;
        let want = devkey::request_signature(&k.secret_digest, method, path_and_query, ts, body);
        if !tokens::constant_time_eq(want.as_bytes(), sig.as_bytes()) {
            return Err(DevKeyError::Unauthorized);
        }
        let replay = EphemeralKey::ApiSignature { digest: tokens::digest(&sig) }.to_string();
        let ttl = std::time::Duration::from_secs(devkey::SIGNATURE_WINDOW_SECS.unsigned_abs() * 2);
        if !self.stores.ephemeral.put_if_absent(&replay, b"1", ttl).await? {
            return Err(DevKeyError::Unauthorized);
        }
        self.principal(k).await
    }
}
