//! Upstream OpenID Connect (the company's IdP is an OpenID Provider): discovery, code flow with
//! PKCE, state and nonce, ID token verification (signature against the provider's JWKS, an
//! algorithm allow-list, issuer, audience, expiry, nonce), optional userinfo, claim mapping —
//! all through the `openidconnect` crate.

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FederationError, FederationResult, FederationService};
use crate::crypto::tokens;
use crate::domain::federation::{ConnectionConfig, FederatedIdentity, OidcUpstream};
use crate::domain::ConnectionId;
use crate::store::ephemeral_keys::EphemeralKey;

/// How long a browser has to come back from the identity provider.
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Claims beyond the standard ones (groups, or whatever the mapping names).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub other: HashMap<String, Value>,
}

impl openidconnect::AdditionalClaims for ExtraClaims {}

type UpstreamIdToken =
    IdToken<ExtraClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// A sign-in sent to the IdP, kept server-side until it comes back.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    connection: ConnectionId,
    browser_digest: String,
    nonce: String,
    pkce_verifier: String,
    return_to: String,
    /// A test of the connection by an admin of this organization: nobody is signed in.
    #[serde(default)]
    test_for: Option<crate::domain::OrgId>,
}

/// What a test of a connection saw: the identity the provider sent, whether Guichet would admit
/// it (and into which organization), and the claims it would issue.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub connection: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// None when admitted; else why not.
    pub refusal: Option<String>,
    /// The organization (slug) the identity would join.
    pub org: Option<String>,
    /// The roles the groups would grant.
    pub roles: Vec<String>,
    pub test_for: crate::domain::OrgId,
}

/// How a federated sign-in came back.
pub enum Finished {
    SignedIn(Box<crate::auth::Authenticated>, String),
    /// A test: nobody was signed in.
    Tested(Box<TestReport>),
}

/// How long a provider's metadata and keys are reused before being fetched again.
pub const METADATA_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Providers' metadata by connection, with when each was fetched.
#[derive(Default)]
pub struct MetadataCache(std::sync::Mutex<HashMap<ConnectionId, (std::time::Instant, CoreProviderMetadata)>>);

impl MetadataCache {
    fn get(&self, id: ConnectionId) -> Option<CoreProviderMetadata> {
        let map = self.0.lock().ok()?;
        map.get(&id).filter(|(at, _)| at.elapsed() < METADATA_TTL).map(|(_, m)| m.clone())
    }

    fn put(&self, id: ConnectionId, meta: &CoreProviderMetadata) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(id, (std::time::Instant::now(), meta.clone()));
        }
    }

    /// Drops a connection's metadata (changed or deleted).
    pub fn forget(&self, id: ConnectionId) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&id);
        }
    }
}

/// The provider's metadata (its issuer must be the one configured: the crate checks it).
pub async fn discover(http: &reqwest::Client, issuer: &str) -> FederationResult<CoreProviderMetadata> {
    let url = IssuerUrl::new(issuer.to_owned()).map_err(|e| FederationError::Invalid(format!("issuer: {e}")))?;
    CoreProviderMetadata::discover_async(url, http)
        .await
        .map_err(|e| FederationError::Upstream(format!("discovery of {issuer} failed: {e}")))
}

fn upstream(c: &crate::domain::federation::Connection) -> FederationResult<&OidcUpstream> {
    match &c.config {
        ConnectionConfig::Oidc(o) => Ok(o),
        ConnectionConfig::Saml(_) => Err(FederationError::NotFound),
    }
}

impl FederationService {
    /// The provider's metadata and keys: cached, or fetched (`fresh`: always fetched). Returns
    /// whether it came from the cache.
    async fn metadata_for(
        &self,
        c: &crate::domain::federation::Connection,
        fresh: bool,
    ) -> FederationResult<(CoreProviderMetadata, bool)> {
        if !fresh {
            if let Some(m) = self.metadata.get(c.id) {
                return Ok((m, true));
            }
        }
        let cfg = upstream(c)?;
        let m = discover(&self.http_for(cfg.restricted), &cfg.issuer).await?;
        self.metadata.put(c.id, &m);
        Ok((m, false))
    }

    fn oidc_client(
        &self,
        id: ConnectionId,
        cfg: &OidcUpstream,
        meta: CoreProviderMetadata,
    ) -> FederationResult<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
    > {
        let secret = self
            .sealer
            .open(&cfg.client_secret_sealed, &format!("connection:{id}"))
            .map_err(|e| FederationError::Internal(anyhow::anyhow!("cannot open the connection's secret: {e}")))?;
        let secret = String::from_utf8(secret).map_err(|e| FederationError::Internal(e.into()))?;
        let redirect = RedirectUrl::new(self.oidc_redirect_uri()).map_err(|e| FederationError::Internal(e.into()))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(secret)),
        )
        .set_redirect_uri(redirect))
    }

    /// Sends the browser to the OpenID Provider (authorization request with state, nonce, PKCE).
    pub(super) async fn begin_oidc(
        &self,
        c: &crate::domain::federation::Connection,
        browser: &str,
        return_to: &str,
        login_hint: Option<&str>,
        test_for: Option<crate::domain::OrgId>,
        force: bool,
    ) -> FederationResult<String> {
        let cfg = upstream(c)?;
        let (meta, _) = self.metadata_for(c, false).await?;
        let client = self.oidc_client(c.id, cfg, meta)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for s in &cfg.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if force {
            // OIDC Core §3.1.2.1: the provider must authenticate the user again.
            req = req.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
        }
        if let Some(h) = login_hint.filter(|h| !h.is_empty() && h.len() <= 320) {
            req = req.add_extra_param("login_hint", h.to_owned());
        }
        let (url, state, nonce) = req.url();
        let pending = Pending {
            connection: c.id,
            browser_digest: tokens::digest(browser),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            return_to: return_to.to_owned(),
            test_for,
        };
        let raw = serde_json::to_vec(&pending).map_err(|e| FederationError::Internal(e.into()))?;
        let key = EphemeralKey::Federation { state_digest: tokens::digest(state.secret()) }.to_string();
        self.stores.ephemeral.put(&key, &raw, PENDING_TTL).await?;
        tracing::info!(connection = %c.id, "federated sign-in sent to the identity provider");
        Ok(url.to_string())
    }

    /// The identity provider came back (`state`, and `code` or an `error`). Checks everything,
    /// then admits the identity: (the user, where to go next).
    pub async fn finish_oidc(
        &self,
        browser: &str,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> FederationResult<Finished> {
        if state.is_empty() || state.len() > 128 {
            return Err(FederationError::StateInvalid);
        }
        let key = EphemeralKey::Federation { state_digest: tokens::digest(state) }.to_string();
        // Taken once: a replayed callback finds nothing.
        let raw = self.stores.ephemeral.take(&key).await?.ok_or(FederationError::StateInvalid)?;
        let p: Pending = serde_json::from_slice(&raw).map_err(|_| FederationError::StateInvalid)?;
        if !tokens::constant_time_eq(p.browser_digest.as_bytes(), tokens::digest(browser).as_bytes()) {
            return Err(FederationError::StateInvalid);
        }
        if let Some(e) = error {
            return Err(FederationError::Upstream(e.chars().take(64).collect()));
        }
        let code = code.filter(|c| !c.is_empty()).ok_or_else(|| FederationError::Rejected("no code".into()))?;
        let c = self.stores.federation.connection(p.connection).await?.ok_or(FederationError::NotFound)?;
        let cfg = upstream(&c)?;
        let (meta, cached) = self.metadata_for(&c, false).await?;
        let mut client = self.oidc_client(c.id, cfg, meta)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| FederationError::Upstream(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(p.pkce_verifier))
            .request_async(&self.http_for(cfg.restricted))
            .await
            .map_err(|e| FederationError::Upstream(format!("code exchange failed: {e}")))?;
        let raw_id = token.id_token().ok_or_else(|| FederationError::Rejected("no ID token".into()))?.to_string();
        let id_token: UpstreamIdToken =
            raw_id.parse().map_err(|e| FederationError::Rejected(format!("malformed ID token: {e}")))?;
        let algs: Vec<CoreJwsSigningAlgorithm> =
            cfg.algs.iter().filter_map(|a| serde_json::from_value(Value::String(a.clone())).ok()).collect();
        let nonce = Nonce::new(p.nonce);
        let verified = {
            let verifier = client.id_token_verifier().set_allowed_algs(algs.clone());
            id_token.claims(&verifier, &nonce).is_ok()
        };
        if !verified && cached {
            // Perhaps signed by a key the provider rotated in since the metadata was cached.
            let (meta, _) = self.metadata_for(&c, true).await?;
            client = self.oidc_client(c.id, cfg, meta)?;
        }
        let verifier = client.id_token_verifier().set_allowed_algs(algs);
        let claims =
            id_token.claims(&verifier, &nonce).map_err(|e| FederationError::Rejected(format!("ID token: {e}")))?;
        let extra = &claims.additional_claims().other;
        let mut identity = FederatedIdentity {
            connection: c.id,
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
            groups: groups(extra.get(&cfg.mapping.groups)),
        };
        if cfg.mapping.email != "email" {
            identity.email = extra.get(&cfg.mapping.email).and_then(|v| v.as_str()).map(str::to_owned);
        }
        if cfg.userinfo {
            let req = client
                .user_info(token.access_token().clone(), Some(claims.subject().clone()))
                .map_err(|e| FederationError::Upstream(format!("no userinfo endpoint: {e}")))?;
            let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> = req
                .request_async(&self.http_for(cfg.restricted))
                .await
                .map_err(|e| FederationError::Upstream(format!("userinfo failed: {e}")))?;
            if identity.email.is_none() {
                identity.email = info.email().map(|e| e.as_str().to_owned());
                identity.email_verified = info.email_verified().unwrap_or(false);
            }
            if identity.name.is_none() {
                identity.name = info.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
            }
        }
        if let Some(org) = p.test_for {
            return Ok(Finished::Tested(Box::new(self.test_report(&c, identity, org).await?)));
        }
        let auth = self.admit(&c, identity).await?;
        Ok(Finished::SignedIn(Box::new(auth), p.return_to))
    }

    /// What admitting `identity` would do, without doing it.
    pub(super) async fn test_report(
        &self,
        c: &crate::domain::federation::Connection,
        identity: FederatedIdentity,
        test_for: crate::domain::OrgId,
    ) -> FederationResult<TestReport> {
        let domain = identity.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_owned());
        let owner = match domain.as_deref().map(crate::domain::DomainName::parse) {
            Some(Ok(d)) => self.stores.orgs.verified_owner(d.as_str()).await?.map(|o| o.id),
            _ => None,
        };
        let admitted = crate::domain::federation::admit(&identity, &c.orgs, owner);
        let (org, roles) = match &admitted {
            Ok(o) => {
                let (grant, _) = crate::domain::federation::role_changes(c.config.group_roles(), &identity.groups);
                let roles = self
                    .stores
                    .orgs
                    .roles(Some(*o))
                    .await?
                    .into_iter()
                    .filter(|r| grant.contains(&r.id))
                    .map(|r| format!("{}/{}", r.client_id, r.name))
                    .collect();
                (self.stores.orgs.org(*o).await?.map(|o| o.slug), roles)
            }
            Err(_) => (None, Vec::new()),
        };
        tracing::info!(connection = %c.id, admitted = admitted.is_ok(), "connection tested");
        Ok(TestReport {
            connection: c.name.clone(),
            subject: identity.subject,
            email: identity.email,
            email_verified: identity.email_verified,
            name: identity.name,
            groups: identity.groups,
            refusal: admitted.err().map(|e| e.to_string()),
            org,
            roles,
            test_for,
        })
    }
}

fn groups(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}
