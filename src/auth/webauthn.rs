//! WebAuthn factors (webauthn-rs does the relying-party steps): security keys and passkeys,
//! registered from the security page, used as a second factor or, being discoverable, for
//! passwordless sign-in. User verification is required (passkey ceremonies). The ceremony
//! state lives in the ephemeral store, keyed by purpose and by the browser that began it: a
//! ceremony begun by another session does not finish here, and each state is taken once (a
//! replayed response finds nothing). The credential (public key, signature counter, backup
//! state) is sealed like the other factors' material; a counter going backwards (a cloned
//! authenticator) is refused by webauthn-rs.

use std::time::Duration;

use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use super::mfa::{MfaError, MfaService};
use crate::crypto::tokens;
use crate::domain::account::AccountOp;
use crate::domain::mfa::{Factor, FactorKind};
use crate::domain::{User, UserId};
use crate::store::ephemeral_keys::EphemeralKey;

const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// The relying party from the configuration: RP ID (default: the issuer's host) and allowed
/// origins (default: the issuer's origin). None when the issuer has no domain name (WebAuthn
/// needs one: `localhost` works, an IP address does not).
pub fn relying_party(issuer: &str, rp_id: &str, origins: &[String]) -> Option<Webauthn> {
    let issuer = Url::parse(issuer).ok()?;
    let rp_id = if rp_id.is_empty() { issuer.host_str()?.to_owned() } else { rp_id.to_owned() };
    if rp_id.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let mut all: Vec<Url> = origins.iter().filter_map(|o| Url::parse(o).ok()).collect();
    if all.is_empty() {
        all.push(issuer.clone());
    }
    let mut b = WebauthnBuilder::new(&rp_id, &all[0]).ok()?.rp_name("Guichet");
    for o in &all[1..] {
        b = b.append_allowed_origin(o);
    }
    match b.build() {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, rp_id, "WebAuthn is off: the relying party is not valid");
            None
        }
    }
}

/// How a WebAuthn sign-in went, for amr/acr.
#[derive(Debug, Clone, Copy)]
pub struct WebauthnUse {
    pub user_verified: bool,
    /// Synced (backup-eligible) credentials are software keys (`swk`), others hardware (`hwk`).
    pub backup_eligible: bool,
}

#[derive(Debug, Clone, Copy)]
enum Ceremony {
    Register,
    SecondFactor,
    Passwordless,
}

impl Ceremony {
    fn tag(self) -> &'static str {
        match self {
            Ceremony::Register => "reg",
            Ceremony::SecondFactor => "2fa",
            Ceremony::Passwordless => "pwl",
        }
    }
}

fn bad(e: impl std::fmt::Display) -> MfaError {
    tracing::info!(error = %e, "WebAuthn ceremony refused");
    MfaError::WrongCode
}

impl MfaService {
    pub fn webauthn_enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    fn rp(&self) -> Result<&Webauthn, MfaError> {
        self.webauthn.as_ref().ok_or(MfaError::NoFactor)
    }

    fn ceremony_key(kind: Ceremony, browser: &str) -> String {
        EphemeralKey::WebauthnCeremony { purpose: kind.tag(), browser_digest: tokens::digest(browser) }.to_string()
    }

    async fn keep<T: serde::Serialize>(&self, kind: Ceremony, browser: &str, state: &T) -> Result<(), MfaError> {
        let raw = serde_json::to_vec(state).map_err(bad)?;
        Ok(self.stores.ephemeral.put(&Self::ceremony_key(kind, browser), &raw, CEREMONY_TTL).await?)
    }

    /// The ceremony's state, once (a second response finds nothing).
    async fn take<T: serde::de::DeserializeOwned>(&self, kind: Ceremony, browser: &str) -> Result<T, MfaError> {
        let raw = self.stores.ephemeral.take(&Self::ceremony_key(kind, browser)).await?.ok_or(MfaError::WrongCode)?;
        serde_json::from_slice(&raw).map_err(bad)
    }

    /// The user's WebAuthn credentials, opened.
    async fn passkeys(&self, user: UserId) -> Result<Vec<(Factor, Passkey)>, MfaError> {
        let mut out = Vec::new();
        for f in self.factors(user).await? {
            if f.kind != FactorKind::WebAuthn || !f.confirmed {
                continue;
            }
            let raw = self
                .sealer
                .open(&f.secret_sealed, &Factor::seal_binding(f.id, user))
                .map_err(|e| MfaError::Sealed(e.to_string()))?;
            let pk: Passkey = serde_json::from_slice(&raw).map_err(|e| MfaError::Sealed(e.to_string()))?;
            out.push((f, pk));
        }
        Ok(out)
    }

    pub async fn has_passkey(&self, user: UserId) -> Result<bool, MfaError> {
        Ok(self.factors(user).await?.iter().any(|f| f.kind == FactorKind::WebAuthn && f.confirmed))
    }

    /// Begins registering a security key or passkey: the options for
    /// `navigator.credentials.create`.
    pub async fn start_registration(&self, user: &User, browser: &str) -> Result<serde_json::Value, MfaError> {
        let exclude: Vec<_> = self.passkeys(user.id).await?.iter().map(|(_, pk)| pk.cred_id().clone()).collect();
        let name = user.email.as_str();
        let display = user.name.as_deref().unwrap_or(name);
        let (options, state) =
            self.rp()?.start_passkey_registration(user.id.as_uuid(), name, display, Some(exclude)).map_err(bad)?;
        self.keep::<PasskeyRegistration>(Ceremony::Register, browser, &state).await?;
        let mut v = serde_json::to_value(options).map_err(bad)?;
        // A discoverable credential (a passkey proper), so it also signs in without a username.
        if let Some(sel) = v.pointer_mut("/publicKey/authenticatorSelection").and_then(|s| s.as_object_mut()) {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        Ok(v)
    }

    /// Finishes a registration: the credential is stored (sealed) under `name`. The first
    /// factor of an account comes with recovery codes (returned, shown once).
    pub async fn finish_registration(
        &self,
        user: &User,
        browser: &str,
        name: &str,
        credential: &str,
    ) -> Result<Option<Vec<String>>, MfaError> {
        let state: PasskeyRegistration = self.take(Ceremony::Register, browser).await?;
        let reg: RegisterPublicKeyCredential = serde_json::from_str(credential).map_err(bad)?;
        let pk = self.rp()?.finish_passkey_registration(&reg, &state).map_err(bad)?;
        let id = uuid::Uuid::new_v4();
        let sealed = self
            .sealer
            .seal(&serde_json::to_vec(&pk).map_err(bad)?, &Factor::seal_binding(id, user.id))
            .map_err(|e| MfaError::Sealed(e.to_string()))?;
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(60).collect();
        let first = !self.has_factor(user.id).await?;
        let mut ops = vec![AccountOp::AddFactor(Factor {
            id,
            user_id: user.id,
            kind: FactorKind::WebAuthn,
            name: if name.is_empty() { "Passkey".into() } else { name },
            secret_sealed: sealed,
            confirmed: true,
            last_step: None,
            created_at: self.clock.now(),
            last_used_at: None,
        })];
        let codes = if first { Some(self.new_codes(user.id, &mut ops)) } else { None };
        self.stores.accounts.apply(ops).await?;
        tracing::info!(user_id = %user.id, "WebAuthn credential registered");
        self.events.emit(user.id, "mfa.enabled", serde_json::json!({"user": user.id, "kind": "webauthn"}));
        Ok(codes)
    }

    /// Begins a second-factor check with the user's credentials.
    pub async fn start_second_factor(&self, user: UserId, browser: &str) -> Result<serde_json::Value, MfaError> {
        let pks: Vec<Passkey> = self.passkeys(user).await?.into_iter().map(|(_, pk)| pk).collect();
        if pks.is_empty() {
            return Err(MfaError::NoFactor);
        }
        let (options, state) = self.rp()?.start_passkey_authentication(&pks).map_err(bad)?;
        self.keep::<PasskeyAuthentication>(Ceremony::SecondFactor, browser, &state).await?;
        serde_json::to_value(options).map_err(bad)
    }

    pub async fn finish_second_factor(
        &self,
        user: UserId,
        browser: &str,
        credential: &str,
    ) -> Result<WebauthnUse, MfaError> {
        let state: PasskeyAuthentication = self.take(Ceremony::SecondFactor, browser).await?;
        let cred: PublicKeyCredential = serde_json::from_str(credential).map_err(bad)?;
        let res = self.rp()?.finish_passkey_authentication(&cred, &state).map_err(bad)?;
        self.record_use(user, &res).await
    }

    /// Begins a passwordless sign-in with a discoverable credential (any user).
    pub async fn start_passwordless(&self, browser: &str) -> Result<serde_json::Value, MfaError> {
        let (options, state) = self.rp()?.start_discoverable_authentication().map_err(bad)?;
        self.keep::<DiscoverableAuthentication>(Ceremony::Passwordless, browser, &state).await?;
        serde_json::to_value(options).map_err(bad)
    }

    /// Finishes a passwordless sign-in: who it is (user verification is required).
    pub async fn finish_passwordless(
        &self,
        browser: &str,
        credential: &str,
    ) -> Result<(UserId, WebauthnUse), MfaError> {
        let state: DiscoverableAuthentication = self.take(Ceremony::Passwordless, browser).await?;
        let cred: PublicKeyCredential = serde_json::from_str(credential).map_err(bad)?;
        let rp = self.rp()?;
        let (user_handle, _) = rp.identify_discoverable_authentication(&cred).map_err(bad)?;
        let user = UserId::from_uuid(user_handle);
        let keys: Vec<DiscoverableKey> = self.passkeys(user).await?.iter().map(|(_, pk)| pk.into()).collect();
        if keys.is_empty() {
            return Err(MfaError::WrongCode);
        }
        let res = rp.finish_discoverable_authentication(&cred, state, &keys).map_err(bad)?;
        if !res.user_verified() {
            return Err(MfaError::WrongCode);
        }
        Ok((user, self.record_use(user, &res).await?))
    }

    /// Stores the credential's new counter / backup state and its last use.
    async fn record_use(
        &self,
        user: UserId,
        res: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<WebauthnUse, MfaError> {
        let mut found = None;
        for (f, mut pk) in self.passkeys(user).await? {
            if pk.cred_id() == res.cred_id() {
                let changed = pk.update_credential(res).unwrap_or(false);
                let sealed = if changed {
                    Some(
                        self.sealer
                            .seal(&serde_json::to_vec(&pk).map_err(bad)?, &Factor::seal_binding(f.id, user))
                            .map_err(|e| MfaError::Sealed(e.to_string()))?,
                    )
                } else {
                    None
                };
                found = Some(AccountOp::TouchFactor { user, id: f.id, secret_sealed: sealed });
                break;
            }
        }
        let op = found.ok_or(MfaError::WrongCode)?;
        self.stores.accounts.apply(vec![op]).await?;
        Ok(WebauthnUse { user_verified: res.user_verified(), backup_eligible: res.backup_eligible() })
    }

    pub async fn rename(&self, user: UserId, factor: uuid::Uuid, name: &str) -> Result<(), MfaError> {
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(60).collect();
        if name.is_empty() {
            return Err(MfaError::NoFactor);
        }
        self.stores.accounts.apply(vec![AccountOp::RenameFactor { user, id: factor, name }]).await.map_err(
            |e| match e {
                crate::store::StoreError::NotFound => MfaError::NoFactor,
                other => MfaError::Store(other),
            },
        )
    }
}
