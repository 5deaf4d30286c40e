//! The OpenID Provider: protocol logic only (no HTTP types; `web::oidc` adapts it).
//! OIDC Core 1.0, OIDC Discovery 1.0, RFC 6749, RFC 7636, RFC 9700, RFC 8725, RFC 9068,
//! RFC 7662, RFC 7009, RP-Initiated Logout 1.0, Back-Channel Logout 1.0.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod clients;
pub mod discovery;
pub mod error;
pub mod introspection;
pub mod jwt;
pub mod keys;
pub mod logout;
pub mod pkce;
pub mod revocation;
pub mod token;
pub mod tokens;
pub mod types;
pub mod userinfo;

use std::sync::Arc;

use crate::config::{OidcSettings, Settings};
use crate::crypto::keys::ServerSecret;
use crate::domain::Clock;
use crate::store::Stores;

pub use claims::{ClaimsHook, ClaimsHooks, NoExtraClaims};
pub use error::{OAuthError, OAuthErrorCode};
pub use keys::KeySet;

/// Endpoint paths (relative to the issuer). Discovery advertises exactly these.
pub mod paths {
    pub const AUTHORIZE: &str = "/authorize";
    pub const TOKEN: &str = "/token";
    pub const USERINFO: &str = "/userinfo";
    pub const JWKS: &str = "/jwks";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
    pub const END_SESSION: &str = "/end_session";
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
}

pub struct OidcProvider {
    pub issuer: String,
    pub stores: Stores,
    pub keys: Arc<KeySet>,
    pub clock: Arc<dyn Clock>,
    pub cfg: OidcSettings,
    /// Session lifetime: non-offline grants end with the session.
    pub session_absolute_secs: i64,
    pub secret: ServerSecret,
    pub claims_hook: Arc<dyn ClaimsHook>,
    /// `[mfa] policy = "required"`: every sign-in needs a second factor.
    pub mfa_required: bool,
    /// Outbound HTTP (client jwks_uri, back-channel logout).
    pub http: reqwest::Client,
    pub jwks_cache: client_auth::JwksCache,
    clients_cache: clients::ClientCache,
    /// The discovery document as served, serialised once (it depends on settings only).
    discovery_doc: std::sync::OnceLock<bytes::Bytes>,
    /// Told when a sign-in session ends (the organizations' `session.revoked` events).
    session_events: std::sync::OnceLock<Arc<dyn SessionEvents>>,
    /// Wakes this node's outbox worker (back-channel logout notices are outbox jobs).
    outbox_wake: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
    /// The outbound-URL policy for the URLs of clients an organization registered (their
    /// `jwks_uri` and back-channel logout URI): checked, pinned, no redirects. The operator's
    /// own clients may use internal addresses.
    org_outbound: std::sync::OnceLock<crate::net::OutboundPolicy>,
}

/// Hears of sign-in sessions ending (logout, revocation, password reset, lapse).
pub trait SessionEvents: Send + Sync {
    fn session_ended(&self, user: crate::domain::UserId, sid: &str);
}

impl OidcProvider {
    pub fn new(
        settings: &Settings,
        stores: Stores,
        keys: Arc<KeySet>,
        clock: Arc<dyn Clock>,
        secret: ServerSecret,
        claims_hook: Arc<dyn ClaimsHook>,
    ) -> anyhow::Result<Self> {
        let http = crate::net::client_builder()?
            .timeout(std::time::Duration::from_secs(settings.oidc.backchannel_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("guichet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            issuer: settings.server.issuer.clone(),
            stores,
            keys,
            clock,
            cfg: settings.oidc.clone(),
            mfa_required: settings.mfa.policy == crate::config::MfaPolicy::Required,
            session_absolute_secs: i64::try_from(settings.session.absolute_timeout_secs).unwrap_or(i64::MAX / 4),
            secret,
            claims_hook,
            http,
            jwks_cache: client_auth::JwksCache::default(),
            discovery_doc: std::sync::OnceLock::new(),
            clients_cache: clients::ClientCache::default(),
            session_events: std::sync::OnceLock::new(),
            outbox_wake: std::sync::OnceLock::new(),
            org_outbound: std::sync::OnceLock::new(),
        })
    }

    /// Who hears of sessions ending (set once, at start).
    pub fn set_session_events(&self, sink: Arc<dyn SessionEvents>) {
        let _ = self.session_events.set(sink);
    }

    /// The outbox worker to wake when notices are queued (set once, at start).
    pub fn set_outbox_wake(&self, wake: Arc<tokio::sync::Notify>) {
        let _ = self.outbox_wake.set(wake);
    }

    /// The policy for organizations' clients' URLs (set once, at start).
    pub fn set_org_outbound(&self, policy: crate::net::OutboundPolicy) {
        let _ = self.org_outbound.set(policy);
    }

    /// GET or POST a client's URL: through the outbound policy for an organization's client
    /// (refused when it has none: fail closed), directly for the operator's.
    pub(crate) async fn client_request(
        &self,
        client: &crate::domain::Client,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        if client.org_id.is_none() {
            return Ok(build(&self.http).send().await?);
        }
        let policy = self.org_outbound.get().ok_or_else(|| anyhow::anyhow!("no outbound policy for this client"))?;
        policy.send(build(&policy.client())).await.map_err(|e| anyhow::anyhow!(e.reason()))
    }

    pub(crate) fn wake_outbox(&self) {
        if let Some(w) = self.outbox_wake.get() {
            w.notify_one();
        }
    }

    pub(crate) fn session_ended(&self, user: crate::domain::UserId, sid: &str) {
        if let Some(s) = self.session_events.get() {
            s.session_ended(user, sid);
        }
    }

    /// The discovery document as served (JSON bytes), serialised once.
    pub fn discovery_document(&self) -> bytes::Bytes {
        self.discovery_doc
            .get_or_init(|| bytes::Bytes::from(serde_json::to_vec(&self.discovery()).unwrap_or_default()))
            .clone()
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

pub(crate) fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / 4)
}
