//! Client registration and secrets. Secrets are 256-bit random values shown once; we keep a
//! keyed digest, HMAC-SHA256(server secret, secret): fast to check at the token endpoint (argon2
//! is for human passwords) and useless to whoever reads the database without the key directory.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::OidcProvider;
use crate::crypto::{keys::ServerSecret, tokens};
use crate::domain::client::validate_redirect_uri;
use crate::domain::{ApplicationType, Client, ClientAuthMethod, ClientId, GrantType, OrgId, SigningAlg};
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub auth_method: ClientAuthMethod,
    pub application_type: ApplicationType,
    pub grant_types: Vec<GrantType>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub first_party: bool,
    pub backchannel_logout_uri: Option<String>,
    pub id_token_signed_response_alg: SigningAlg,
    pub id_token_claims: bool,
    /// A resource server that may introspect other clients' access tokens (confidential only).
    pub introspection: bool,
    /// Sign-ins for this client need a second factor.
    pub require_mfa: bool,
    /// Bound to one organization.
    pub org_id: Option<crate::domain::OrgId>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn secret_digest(secret: &ServerSecret, client_secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.bytes()).unwrap_or_else(|_| unreachable_hmac());
    mac.update(client_secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

// HMAC accepts keys of any length; this is never reached.
#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 rejected a 32-byte key")
}

pub fn secret_matches(secret: &ServerSecret, client: &Client, presented: &str) -> bool {
    match &client.secret_digest {
        Some(d) => tokens::constant_time_eq(d.as_bytes(), secret_digest(secret, presented).as_bytes()),
        None => {
            // Same work either way.
            let _ = secret_digest(secret, presented);
            false
        }
    }
}

/// The registration rules (public for the fuzzing harness, src/fuzzing.rs).
#[doc(hidden)]
pub fn validate(r: &Registration) -> Result<(), String> {
    if r.name.trim().is_empty() || r.name.chars().count() > 200 {
        return Err("--name must be 1 to 200 characters".into());
    }
    if r.grant_types.is_empty() {
        return Err("at least one grant type is needed".into());
    }
    let code_flow = r.grant_types.contains(&GrantType::AuthorizationCode);
    if code_flow && r.redirect_uris.is_empty() {
        return Err("authorization_code clients need at least one --redirect-uri".into());
    }
    if r.grant_types.contains(&GrantType::RefreshToken) && !code_flow {
        return Err("refresh_token needs authorization_code".into());
    }
    for u in &r.redirect_uris {
        validate_redirect_uri(u, r.application_type)?;
    }
    for u in &r.post_logout_redirect_uris {
        validate_redirect_uri(u, r.application_type)
            .map_err(|e| e.replace("redirect URI", "post-logout redirect URI"))?;
    }
    let public = r.auth_method == ClientAuthMethod::None;
    if public && r.grant_types.contains(&GrantType::ClientCredentials) {
        return Err("public clients cannot use client_credentials".into());
    }
    if public && r.introspection {
        return Err("public clients cannot introspect tokens (--introspection needs a confidential client)".into());
    }
    if r.auth_method == ClientAuthMethod::PrivateKeyJwt && r.jwks.is_none() && r.jwks_uri.is_none() {
        return Err("private_key_jwt needs --jwks-uri or --jwks".into());
    }
    if r.jwks.is_some() && r.jwks_uri.is_some() {
        return Err("give --jwks-uri or --jwks, not both".into());
    }
    if let Some(j) = &r.jwks {
        if !j.get("keys").is_some_and(|k| k.is_array()) {
            return Err("--jwks must be a JWK Set ({\"keys\": [...]})".into());
        }
    }
    for (what, u) in [("--jwks-uri", &r.jwks_uri), ("--backchannel-logout-uri", &r.backchannel_logout_uri)] {
        if let Some(u) = u {
            let parsed = url::Url::parse(u).map_err(|e| format!("{what} {u:?}: {e}"))?;
            let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                return Err(format!("{what} {u:?} must be https (http only for localhost)"));
            }
            if parsed.fragment().is_some() {
                return Err(format!("{what} {u:?} must not contain a fragment"));
            }
        }
    }
    Ok(())
}

/// A random client_id (22 base64url characters, 132 bits) that never starts with `-`, so that
/// it reads as a value on any command line.
fn new_client_id() -> ClientId {
    loop {
        let t = tokens::random_token();
        if !t.starts_with('-') {
            return ClientId::new(t[..22].to_owned());
        }
    }
}

impl OidcProvider {
    /// Registers a client. Returns it and, for confidential secret-based clients, the secret
    /// (shown once, never stored in clear).
    pub async fn register_client(&self, r: Registration) -> Result<(Client, Option<String>), RegistrationError> {
        validate(&r).map_err(RegistrationError::Invalid)?;
        let uses_secret =
            matches!(r.auth_method, ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost);
        let secret = uses_secret.then(tokens::random_token);
        let client = Client {
            client_id: new_client_id(),
            name: r.name.trim().to_owned(),
            secret_digest: secret.as_deref().map(|s| secret_digest(&self.secret, s)),
            token_endpoint_auth_method: r.auth_method,
            application_type: r.application_type,
            redirect_uris: r.redirect_uris,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            grant_types: r.grant_types,
            jwks_uri: r.jwks_uri,
            jwks: r.jwks,
            first_party: r.first_party,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_signed_response_alg: r.id_token_signed_response_alg,
            id_token_claims: r.id_token_claims,
            introspection: r.introspection,
            require_mfa: r.require_mfa,
            org_id: r.org_id,
            created_at: self.clock.now(),
        };
        self.stores.clients.create_client(&client).await?;
        Ok((client, secret))
    }

    /// A registered client, kept in memory `oidc.client_cache_secs` so that the hot path (client
    /// authentication, userinfo) does not ask the database every time. Changes made on this
    /// node apply at once; changes made elsewhere within that time.
    pub async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let ttl = super::secs(self.cfg.client_cache_secs);
        let now = self.clock.now();
        if ttl > 0 {
            if let Some(c) = self.clients_cache.get(id, now, ttl) {
                return Ok(Some(c));
            }
        }
        let found = self.stores.clients.client(id).await?;
        if let (Some(c), true) = (&found, ttl > 0) {
            self.clients_cache.put(c.clone(), now);
        }
        Ok(found)
    }

    /// Deletes a client (and by cascade everything issued to it).
    pub async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError> {
        self.stores.clients.delete_client(id).await?;
        self.clients_cache.forget(id);
        Ok(())
    }

    /// New secret for a secret-based client; the old one stops working at once on this node,
    /// within `oidc.client_cache_secs` on the others.
    pub async fn rotate_client_secret(&self, id: &ClientId) -> Result<String, RegistrationError> {
        let client = self.stores.clients.client(id).await?.ok_or(StoreError::NotFound)?;
        if !matches!(
            client.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        ) {
            return Err(RegistrationError::Invalid(format!(
                "client {id} authenticates with {}, it has no secret",
                client.token_endpoint_auth_method
            )));
        }
        let secret = tokens::random_token();
        self.stores.clients.set_client_secret_digest(id, &secret_digest(&self.secret, &secret)).await?;
        self.clients_cache.forget(id);
        Ok(secret)
    }
}

/// The registration a client was made with (to change some of it and update).
pub fn registration_of(c: &Client) -> Registration {
    Registration {
        name: c.name.clone(),
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        auth_method: c.token_endpoint_auth_method,
        application_type: c.application_type,
        grant_types: c.grant_types.clone(),
        jwks_uri: c.jwks_uri.clone(),
        jwks: c.jwks.clone(),
        first_party: c.first_party,
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        id_token_signed_response_alg: c.id_token_signed_response_alg,
        id_token_claims: c.id_token_claims,
        introspection: c.introspection,
        require_mfa: c.require_mfa,
        org_id: c.org_id,
    }
}

impl OidcProvider {
    /// The clients bound to an organization, oldest first.
    pub async fn clients_of_org(&self, org: OrgId) -> Result<Vec<Client>, StoreError> {
        let mut all = self.stores.clients.list_clients().await?;
        all.retain(|c| c.org_id == Some(org));
        Ok(all)
    }

    /// A client bound to the organization, read afresh (None: unknown, or not the organization's).
    pub async fn client_of_org(&self, org: OrgId, id: &ClientId) -> Result<Option<Client>, StoreError> {
        Ok(self.stores.clients.client(id).await?.filter(|c| c.org_id == Some(org)))
    }

    /// Registers a client for an organization's own admins (or keys): the registration rules,
    /// and what only the operator may grant refused (first-party clients skip consent, resource
    /// servers introspect every client's tokens); the URLs Guichet itself calls (`jwks_uri`,
    /// `backchannel_logout_uri`) must pass the outbound-URL policy (public addresses only).
    pub async fn register_org_client(
        &self,
        org: OrgId,
        r: Registration,
        outbound: &crate::net::OutboundPolicy,
    ) -> Result<(Client, Option<String>), RegistrationError> {
        let r = Registration { org_id: Some(org), ..r };
        check_org_registration(&r, outbound).await?;
        self.register_client(r).await
    }

    /// Replaces a client's metadata with `r` (validated like a registration). Its id, owner,
    /// secret and authentication method stay: another method is another client.
    pub async fn update_client(&self, id: &ClientId, r: Registration) -> Result<Client, RegistrationError> {
        validate(&r).map_err(RegistrationError::Invalid)?;
        let before = self.stores.clients.client(id).await?.ok_or(StoreError::NotFound)?;
        if r.auth_method != before.token_endpoint_auth_method {
            return Err(RegistrationError::Invalid(format!(
                "token_endpoint_auth_method stays {} (register another client for another method)",
                before.token_endpoint_auth_method
            )));
        }
        let c = Client {
            name: r.name.trim().to_owned(),
            application_type: r.application_type,
            redirect_uris: r.redirect_uris,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            grant_types: r.grant_types,
            jwks_uri: r.jwks_uri,
            jwks: r.jwks,
            first_party: r.first_party,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_signed_response_alg: r.id_token_signed_response_alg,
            id_token_claims: r.id_token_claims,
            introspection: r.introspection,
            require_mfa: r.require_mfa,
            ..before
        };
        self.stores.clients.update_client(&c).await?;
        self.clients_cache.forget(id);
        Ok(c)
    }

    /// [`Self::update_client`] for an organization's admins: the same limits as
    /// [`Self::register_org_client`].
    pub async fn update_org_client(
        &self,
        org: OrgId,
        id: &ClientId,
        r: Registration,
        outbound: &crate::net::OutboundPolicy,
    ) -> Result<Client, RegistrationError> {
        let before = self.client_of_org(org, id).await?.ok_or(StoreError::NotFound)?;
        let r = Registration { org_id: Some(org), ..r };
        validate(&r).map_err(RegistrationError::Invalid)?;
        // What the operator set stays; an organization cannot set it.
        if (r.first_party && !before.first_party) || (r.introspection && !before.introspection) {
            return Err(RegistrationError::Invalid(
                "first_party and introspection are set by the operator only".into(),
            ));
        }
        let changed = |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
        if changed(&r.jwks_uri, &before.jwks_uri) || changed(&r.backchannel_logout_uri, &before.backchannel_logout_uri)
        {
            check_outbound_urls(&r, outbound).await?;
        }
        self.update_client(id, r).await
    }
}

/// What an organization may not register: operator-only switches; URLs Guichet calls that fail
/// the outbound-URL policy.
async fn check_org_registration(
    r: &Registration,
    outbound: &crate::net::OutboundPolicy,
) -> Result<(), RegistrationError> {
    validate(r).map_err(RegistrationError::Invalid)?;
    if r.first_party || r.introspection {
        return Err(RegistrationError::Invalid("first_party and introspection are set by the operator only".into()));
    }
    check_outbound_urls(r, outbound).await
}

async fn check_outbound_urls(r: &Registration, outbound: &crate::net::OutboundPolicy) -> Result<(), RegistrationError> {
    for (what, u) in [("jwks_uri", &r.jwks_uri), ("backchannel_logout_uri", &r.backchannel_logout_uri)] {
        if let Some(u) = u {
            if let Err(e) = outbound.check(u).await {
                tracing::info!(reason = %e.reason(), what, "client URL refused");
                return Err(RegistrationError::Invalid(format!(
                    "{what}: this URL cannot be used (public https addresses only)"
                )));
            }
        }
    }
    Ok(())
}

/// Clients by id, with when they were read. Bounded: past `CACHE_MAX` entries it starts afresh.
#[derive(Default)]
pub struct ClientCache(std::sync::Mutex<std::collections::HashMap<String, (crate::domain::UnixTime, Client)>>);

const CACHE_MAX: usize = 10_000;

impl ClientCache {
    fn get(&self, id: &ClientId, now: crate::domain::UnixTime, ttl: i64) -> Option<Client> {
        let map = self.0.lock().ok()?;
        let (at, c) = map.get(id.as_str())?;
        (at.secs_until(now) < ttl).then(|| c.clone())
    }

    fn put(&self, c: Client, now: crate::domain::UnixTime) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= CACHE_MAX {
                map.clear();
            }
            map.insert(c.client_id.to_string(), (now, c));
        }
    }

    fn forget(&self, id: &ClientId) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id.as_str());
        }
    }
}
