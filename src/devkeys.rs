//! Developer keys of an organization (`domain/devkey.rs`): created, listed, reset and deleted by
//! its admins (and the platform), every change audited; and the authentication of admin-API
//! requests with them (HTTP Basic, or an HMAC signature within 5 minutes, each signature once).

use std::sync::Arc;

use crate::crypto::tokens;
use crate::domain::devkey::{self, DevKey};
use crate::domain::{Clock, OrgId};
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
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type DevKeyResult<T> = Result<T, DevKeyError>;

/// Who an API request comes from: a key, confined to its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key: String,
    pub org: OrgId,
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || (scope == "read" && s == "write"))
    }
}

/// A key as shown: never its secret or digest.
pub fn devkey_json(k: &DevKey) -> serde_json::Value {
    serde_json::json!({
        "key": k.id, "org": k.org, "name": k.name, "scopes": k.scopes, "created_at": k.created_at.0,
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
        let k =
            self.stores.devkeys.devkey(id.trim()).await?.filter(|k| k.org == org.id).ok_or(DevKeyError::NotFound)?;
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
            org: org.id,
            name: name.to_owned(),
            scopes,
            secret_digest: tokens::digest(&secret),
            created_at: now,
            last_used_at: None,
            expires_at: expires_in_days.map(|d| now.plus_secs(d * 86_400)),
        };
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

    fn principal(k: DevKey) -> Principal {
        Principal { key: k.id, org: k.org, scopes: k.scopes }
    }

    /// HTTP Basic: `DevKey:DevSecret`.
    pub async fn authenticate_basic(&self, key: &str, secret: &str) -> DevKeyResult<Principal> {
        let k = self.usable(key).await?;
        if !tokens::constant_time_eq(k.secret_digest.as_bytes(), tokens::digest(secret).as_bytes()) {
            return Err(DevKeyError::Unauthorized);
        }
        Ok(Self::principal(k))
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
        Ok(Self::principal(k))
    }
}
