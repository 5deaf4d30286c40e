//! The federation service: connections to organizations' own identity providers, and sign-in
//! through them. Guichet is a relying party towards the company IdP (upstream OIDC here; SAML 2.0
//! SP next) and stays the one OpenID Provider towards the portals.
//!
//! A federated sign-in: `begin` (the login URL of a connection, or home-realm discovery) sends
//! the browser to the IdP with state, nonce and PKCE kept server-side, bound to that browser and
//! taken once; `finish` checks what comes back, maps the identity, and admits it only for emails
//! of a domain verified by one of the connection's organizations (JIT account or link), as a
//! member of that organization. The sign-in says how it was made: `amr` `fed`, `idp` = the
//! connection id.

pub mod oidc;
pub mod saml;

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::crypto::sealed::Sealer;
use crate::domain::federation::{AdmissionError, Connection, ConnectionConfig, OidcUpstream};
use crate::domain::{Clock, ConnectionId, OrgId};
use crate::orgs::{Actor, OrgError, OrgService};
use crate::store::{StoreError, Stores};

/// The one callback of upstream OIDC connections (the state names the connection).
pub const OIDC_CALLBACK: &str = "/sso/oidc/callback";

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("no such connection")]
    NotFound,
    #[error("only the platform may do this")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    /// The sign-in under way is unknown, expired, used, or was started by another browser.
    #[error("this sign-in is expired or was started elsewhere")]
    StateInvalid,
    /// The identity provider refused or failed (its error code, or what went wrong talking to it).
    #[error("the identity provider answered: {0}")]
    Upstream(String),
    /// What the identity provider sent did not pass the checks (never shown in detail).
    #[error("the identity provider's answer was refused: {0}")]
    Rejected(String),
    #[error(transparent)]
    NotAdmitted(#[from] AdmissionError),
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

pub type FederationResult<T> = Result<T, FederationError>;

/// What an organization admin may change on a connection (None: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ConnectionEdit {
    pub name: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub groups: Option<String>,
    pub want_assertions_signed: Option<bool>,
}

/// The claims or attributes a connection reads first: (email, name, groups).
pub fn mapping_view(c: &ConnectionConfig) -> (String, String, String) {
    match c {
        ConnectionConfig::Oidc(o) => (o.mapping.email.clone(), o.mapping.name.clone(), o.mapping.groups.clone()),
        ConnectionConfig::Saml(s) => {
            let first = |v: &[String]| v.first().cloned().unwrap_or_default();
            (first(&s.mapping.email), first(&s.mapping.name), first(&s.mapping.groups))
        }
    }
}

pub struct FederationService {
    pub(crate) stores: Stores,
    pub(crate) accounts: Arc<AccountService>,
    pub(crate) orgs: Arc<OrgService>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Our issuer: the base of the login and callback URLs.
    pub(crate) issuer: String,
    /// Talks to identity providers the operator configured: no redirects followed, short
    /// timeouts.
    pub(crate) http: reqwest::Client,
    /// Talks to identity providers organization admins configured: the outbound-URL policy
    /// (public addresses only, pinned; `src/net.rs`).
    pub(crate) outbound: crate::net::OutboundPolicy,
    /// Providers' metadata (with their JWKS), kept [`oidc::METADATA_TTL`] per connection; an ID
    /// token signed by a key not in it refreshes it once (key rotation at the provider).
    pub(crate) metadata: oidc::MetadataCache,
}

impl FederationService {
    pub fn new(
        stores: Stores,
        accounts: Arc<AccountService>,
        orgs: Arc<OrgService>,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        issuer: &str,
        outbound: crate::net::OutboundPolicy,
    ) -> anyhow::Result<Self> {
        let http = crate::net::client_builder()?
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("guichet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            stores,
            accounts,
            orgs,
            sealer,
            clock,
            issuer: issuer.trim_end_matches('/').to_owned(),
            http,
            outbound,
            metadata: Default::default(),
        })
    }

    /// Where a browser starts signing in through the connection.
    pub fn login_url(&self, id: ConnectionId) -> String {
        format!("{}/sso/{id}", self.issuer)
    }

    /// The redirect URI to register at an upstream OpenID Provider.
    pub fn oidc_redirect_uri(&self) -> String {
        format!("{}{OIDC_CALLBACK}", self.issuer)
    }

    async fn org_ids(&self, orgs: &[String]) -> FederationResult<Vec<OrgId>> {
        let mut out = Vec::new();
        for r in orgs {
            let o = self.orgs.authorize(Actor::Platform, r, crate::domain::org::OrgRole::Admin).await?;
            out.push(o.id);
        }
        Ok(out)
    }

    /// Creates an upstream OIDC connection for `orgs` (platform only). The provider's discovery
    /// document is fetched now: a connection that cannot work is not saved.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_oidc(
        &self,
        actor: Actor,
        name: Option<&str>,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        orgs: &[String],
        userinfo: bool,
    ) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let org_ids = self.org_ids(orgs).await?;
        let c = self.new_oidc(name, issuer, client_id, client_secret, org_ids, userinfo, false).await?;
        self.audit_all("org.connection_created", &c, actor).await;
        Ok(c)
    }

    /// An organization admin connects their organization's provider (self-service). The
    /// connection is *restricted*: every request to the provider goes through the outbound-URL
    /// policy. Audited.
    pub async fn create_oidc_for_org(
        &self,
        actor: Actor,
        org_ref: &str,
        name: Option<&str>,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
    ) -> FederationResult<Connection> {
        let restricted = actor != Actor::Platform;
        self.create_oidc_in_org(actor, restricted, org_ref, name, issuer, client_id, client_secret).await
    }

    /// [`Self::create_oidc_for_org`], `restricted` chosen by the caller: an organization's
    /// developer key acts as the platform within its organization, yet its connections are the
    /// organization's own (restricted) like those its admins make.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_oidc_in_org(
        &self,
        actor: Actor,
        restricted: bool,
        org_ref: &str,
        name: Option<&str>,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
    ) -> FederationResult<Connection> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let c = self.new_oidc(name, issuer, client_id, client_secret, vec![org.id], false, restricted).await?;
        self.audit("org.connection_created", org.id, actor, serde_json::json!({"connection": c.id, "name": c.name}))
            .await;
        Ok(c)
    }

    /// The connections serving an organization (its admins and the platform).
    pub async fn connections_for_org(&self, actor: Actor, org_ref: &str) -> FederationResult<Vec<Connection>> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        Ok(self.stores.federation.connections_of(org.id).await?)
    }

    /// Deletes a connection of the organization after its name was typed again. A connection
    /// that also serves other organizations is the operator's to delete.
    pub async fn delete_for_org(&self, actor: Actor, org_ref: &str, id: &str, confirm: &str) -> FederationResult<()> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let c = self.connection(id).await?;
        if !c.orgs.contains(&org.id) {
            return Err(FederationError::NotFound);
        }
        if c.orgs.len() > 1 && actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        if confirm.trim() != c.name {
            return Err(FederationError::Invalid("confirm".into()));
        }
        self.stores.federation.delete_connection(c.id).await?;
        self.metadata.forget(c.id);
        self.audit("org.connection_deleted", org.id, actor, serde_json::json!({"connection": c.id, "name": c.name}))
            .await;
        Ok(())
    }

    async fn audit(&self, action: &str, org: OrgId, actor: Actor, detail: serde_json::Value) {
        self.orgs.audit_event(action, org, actor, Some(detail)).await
    }

    /// Audits a change of a connection in every organization it serves (their webhooks hear of
    /// it: `connection.changed`).
    pub(crate) async fn audit_all(&self, action: &str, c: &Connection, actor: Actor) {
        let detail = serde_json::json!({"connection": c.id, "name": c.name, "type": c.config.kind()});
        for org in &c.orgs {
            self.audit(action, *org, actor, detail.clone()).await;
        }
    }

    /// The HTTP client for a provider: the outbound-URL policy's for restricted connections
    /// (every request — discovery, JWKS, token, userinfo — to checked, public addresses only).
    pub(crate) fn http_for(&self, restricted: bool) -> reqwest::Client {
        if restricted {
            self.outbound.client()
        } else {
            self.http.clone()
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn new_oidc(
        &self,
        name: Option<&str>,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        org_ids: Vec<OrgId>,
        userinfo: bool,
        restricted: bool,
    ) -> FederationResult<Connection> {
        let issuer = issuer.trim().trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&issuer).map_err(|e| FederationError::Invalid(format!("--issuer: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.fragment().is_some() || parsed.query().is_some() {
            return Err(FederationError::Invalid("--issuer must be an https URL without query or fragment".into()));
        }
        let client_id = client_id.trim();
        if client_id.is_empty() || client_secret.is_empty() {
            return Err(FederationError::Invalid("the client id and secret are required".into()));
        }
        if restricted {
            // The same rules as every request of the connection, with a clear answer now.
            self.outbound.check(&format!("{issuer}/.well-known/openid-configuration")).await.map_err(|e| {
                tracing::info!(reason = %e.reason(), "identity provider URL refused");
                FederationError::Invalid("issuer not allowed".into())
            })?;
        }
        // Fails closed: an issuer whose discovery does not answer (or names another issuer) is
        // refused now rather than at the first sign-in.
        oidc::discover(&self.http_for(restricted), &issuer).await?;
        let id = ConnectionId::new_random();
        let sealed = self
            .sealer
            .seal(client_secret.as_bytes(), &format!("connection:{id}"))
            .map_err(|e| FederationError::Internal(anyhow::anyhow!("{e}")))?;
        let now = self.clock.now();
        let host = parsed.host_str().unwrap_or("oidc").to_owned();
        let c = Connection {
            id,
            name: name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).unwrap_or(host),
            config: ConnectionConfig::Oidc(OidcUpstream {
                issuer,
                client_id: client_id.to_owned(),
                client_secret_sealed: sealed,
                scopes: vec!["email".into(), "profile".into()],
                userinfo,
                algs: vec!["RS256".into(), "ES256".into(), "EdDSA".into(), "PS256".into()],
                mapping: Default::default(),
                restricted,
                group_roles: Vec::new(),
            }),
            orgs: org_ids,
            created_at: now,
            updated_at: now,
        };
        self.stores.federation.create_connection(&c).await?;
        tracing::info!(connection = %c.id, "federation connection created");
        Ok(c)
    }

    pub async fn connection(&self, id: &str) -> FederationResult<Connection> {
        let id = id.trim().parse::<ConnectionId>().map_err(|_| FederationError::NotFound)?;
        self.stores.federation.connection(id).await?.ok_or(FederationError::NotFound)
    }

    pub async fn connections(&self) -> FederationResult<Vec<Connection>> {
        Ok(self.stores.federation.connections().await?)
    }

    pub async fn delete(&self, actor: Actor, id: &str) -> FederationResult<()> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let c = self.connection(id).await?;
        self.stores.federation.delete_connection(c.id).await?;
        self.metadata.forget(c.id);
        self.audit_all("org.connection_deleted", &c, actor).await;
        Ok(())
    }

    pub async fn associate(&self, actor: Actor, id: &str, org: &str, on: bool) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let c = self.connection(id).await?;
        let o = self.org_ids(&[org.to_owned()]).await?;
        for org in &o {
            if on {
                self.stores.federation.associate(c.id, *org).await?;
            } else {
                self.stores.federation.dissociate(c.id, *org).await?;
            }
        }
        let after = self.connection(&c.id.to_string()).await?;
        // Every organization it served or serves now hears of it.
        let mut all = after.clone();
        for org in c.orgs.iter().chain(&o) {
            if !all.orgs.contains(org) {
                all.orgs.push(*org);
            }
        }
        self.audit_all("org.connection_updated", &all, actor).await;
        Ok(after)
    }

    /// The identities linked to an account, with their connection's name (for the account page).
    pub async fn identities_of(
        &self,
        user: crate::domain::UserId,
    ) -> FederationResult<Vec<(String, crate::domain::federation::IdentityLink)>> {
        let mut out = Vec::new();
        for l in self.stores.federation.identities_of(user).await? {
            let name = self.stores.federation.connection(l.connection).await?.map(|c| c.name).unwrap_or_default();
            out.push((name, l));
        }
        Ok(out)
    }

    /// Maps an IdP group to a role (platform only): at each sign-in through the connection, the
    /// role follows the group. `role`: id, name or `client/name` (with `client` to tell apart);
    /// None removes every mapping of the group.
    pub async fn map_group(
        &self,
        actor: Actor,
        id: &str,
        group: &str,
        role: Option<(&str, Option<&str>)>,
    ) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let mut c = self.connection(id).await?;
        let group = group.trim();
        if group.is_empty() || group.len() > 256 {
            return Err(FederationError::Invalid("--group is 1 to 256 characters".into()));
        }
        let first_org = c.orgs.first().copied();
        let role_id = match role {
            Some((role_ref, client)) => Some(self.orgs.resolve_role(first_org, role_ref, client).await?.id),
            None => None,
        };
        let group_roles = c.config.group_roles_mut();
        match role_id {
            Some(r) => {
                group_roles.retain(|m| !(m.group == group && m.role == r));
                group_roles.push(crate::domain::federation::GroupRole { group: group.to_owned(), role: r });
            }
            None => group_roles.retain(|m| m.group != group),
        }
        c.updated_at = self.clock.now();
        self.stores.federation.update_connection(&c).await?;
        self.metadata.forget(c.id);
        self.audit_all("org.connection_updated", &c, actor).await;
        Ok(c)
    }

    /// Sets the scopes asked and the claim that carries groups (platform only).
    pub async fn set_claims(
        &self,
        actor: Actor,
        id: &str,
        scopes: Option<Vec<String>>,
        groups_claim: Option<String>,
    ) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let mut c = self.connection(id).await?;
        let groups_claim = groups_claim.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty());
        match &mut c.config {
            ConnectionConfig::Oidc(cfg) => {
                if let Some(s) = scopes {
                    if s.iter().any(|x| x.is_empty() || x.len() > 100 || x.contains(char::is_whitespace)) {
                        return Err(FederationError::Invalid("a scope is 1 to 100 characters without spaces".into()));
                    }
                    cfg.scopes = s.into_iter().filter(|x| x != "openid").collect();
                }
                if let Some(g) = groups_claim {
                    cfg.mapping.groups = g;
                }
            }
            ConnectionConfig::Saml(cfg) => {
                if scopes.is_some() {
                    return Err(FederationError::Invalid("--scope is for OIDC connections".into()));
                }
                if let Some(g) = groups_claim {
                    // Read first; the defaults stay as fallbacks.
                    cfg.mapping.groups.retain(|x| *x != g);
                    cfg.mapping.groups.insert(0, g);
                }
            }
        }
        c.updated_at = self.clock.now();
        self.stores.federation.update_connection(&c).await?;
        self.metadata.forget(c.id);
        self.audit_all("org.connection_updated", &c, actor).await;
        Ok(c)
    }

    /// Starts a sign-in through connection `id` for the browser `browser` (its session's browser
    /// name): returns the identity provider's authorization URL.
    pub async fn begin(
        &self,
        id: &str,
        browser: &str,
        return_to: &str,
        login_hint: Option<&str>,
        force: bool,
    ) -> FederationResult<String> {
        let c = self.connection(id).await?;
        self.begin_with(&c, browser, return_to, login_hint, None, force).await
    }

    /// Starts a test of a connection of the organization (its admins): a real sign-in at the
    /// provider whose result is shown, without signing anyone in.
    pub async fn begin_test(
        &self,
        actor: crate::orgs::Actor,
        org_ref: &str,
        id: &str,
        browser: &str,
    ) -> FederationResult<String> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let c = self.connection(id).await?;
        if !c.orgs.contains(&org.id) {
            return Err(FederationError::NotFound);
        }
        self.begin_with(&c, browser, "/", None, Some(org.id), true).await
    }

    async fn begin_with(
        &self,
        c: &Connection,
        browser: &str,
        return_to: &str,
        login_hint: Option<&str>,
        test_for: Option<OrgId>,
        force: bool,
    ) -> FederationResult<String> {
        match &c.config {
            ConnectionConfig::Oidc(_) => self.begin_oidc(c, browser, return_to, login_hint, test_for, force).await,
            ConnectionConfig::Saml(_) => self.begin_saml(c, browser, return_to, login_hint, test_for, force).await,
        }
    }

    /// Sets the claim (OIDC) or attribute (SAML) read for the email and the name (platform only).
    /// For SAML the name given is read first, the defaults stay as fallbacks.
    pub async fn set_mapping(
        &self,
        actor: Actor,
        id: &str,
        email: Option<String>,
        name: Option<String>,
    ) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let mut c = self.connection(id).await?;
        let clean = |v: Option<String>| -> FederationResult<Option<String>> {
            match v.map(|x| x.trim().to_owned()) {
                Some(x) if x.is_empty() || x.len() > 256 => {
                    Err(FederationError::Invalid("a claim or attribute name is 1 to 256 characters".into()))
                }
                other => Ok(other),
            }
        };
        let (email, name) = (clean(email)?, clean(name)?);
        match &mut c.config {
            ConnectionConfig::Oidc(cfg) => {
                if let Some(e) = email {
                    cfg.mapping.email = e;
                }
                if let Some(n) = name {
                    cfg.mapping.name = n;
                }
            }
            ConnectionConfig::Saml(cfg) => {
                for (value, list) in [(email, &mut cfg.mapping.email), (name, &mut cfg.mapping.name)] {
                    if let Some(v) = value {
                        list.retain(|x| *x != v);
                        list.insert(0, v);
                    }
                }
            }
        }
        c.updated_at = self.clock.now();
        self.stores.federation.update_connection(&c).await?;
        self.metadata.forget(c.id);
        self.audit_all("org.connection_updated", &c, actor).await;
        Ok(c)
    }

    /// A connection of the organization `org_ref` that `actor` may change: an admin of the
    /// organization (and of every other organization a shared connection serves), or the platform.
    async fn own_connection(
        &self,
        actor: Actor,
        org_ref: &str,
        id: &str,
    ) -> FederationResult<(crate::domain::org::Org, Connection)> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let c = self.connection(id).await?;
        if !c.orgs.contains(&org.id) {
            return Err(FederationError::NotFound);
        }
        for other in c.orgs.iter().filter(|o| **o != org.id) {
            match self.orgs.authorize(actor, &other.to_string(), crate::domain::org::OrgRole::Admin).await {
                Ok(_) => {}
                Err(crate::orgs::OrgError::NotFound | crate::orgs::OrgError::Forbidden) => {
                    return Err(FederationError::Forbidden)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((org, c))
    }

    async fn save_edited(
        &self,
        actor: Actor,
        org: OrgId,
        before: &Connection,
        mut c: Connection,
    ) -> FederationResult<Connection> {
        c.updated_at = self.clock.now();
        self.stores.federation.update_connection(&c).await?;
        self.metadata.forget(c.id);
        let view = |c: &Connection| {
            serde_json::json!({
                "name": c.name, "mapping": mapping_view(&c.config), "group_roles": c.config.group_roles(),
                "orgs": c.orgs,
                "want_assertions_signed": matches!(&c.config, ConnectionConfig::Saml(s) if s.want_assertions_signed),
            })
        };
        self.audit(
            "org.connection_updated",
            org,
            actor,
            serde_json::json!({"connection": c.id, "before": view(before), "after": view(&c)}),
        )
        .await;
        Ok(c)
    }

    /// An organization admin edits a connection of the organization: its name, the claims or
    /// attributes read, and (SAML) whether assertions must be signed. Audited with before/after.
    pub async fn edit_for_org(
        &self,
        actor: Actor,
        org_ref: &str,
        id: &str,
        edit: ConnectionEdit,
    ) -> FederationResult<Connection> {
        let (org, before) = self.own_connection(actor, org_ref, id).await?;
        let mut c = before.clone();
        if let Some(n) = edit.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
            if n.chars().count() > 100 {
                return Err(FederationError::Invalid("the name is at most 100 characters".into()));
            }
            c.name = n;
        }
        let clean = |v: Option<String>| -> FederationResult<Option<String>> {
            match v.map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()) {
                Some(x) if x.len() > 256 || x.chars().any(char::is_control) => {
                    Err(FederationError::Invalid("a claim or attribute name is 1 to 256 characters".into()))
                }
                other => Ok(other),
            }
        };
        let (email, display, groups) = (clean(edit.email)?, clean(edit.display_name)?, clean(edit.groups)?);
        match &mut c.config {
            ConnectionConfig::Oidc(cfg) => {
                if let Some(e) = email {
                    cfg.mapping.email = e;
                }
                if let Some(n) = display {
                    cfg.mapping.name = n;
                }
                if let Some(g) = groups {
                    cfg.mapping.groups = g;
                }
            }
            ConnectionConfig::Saml(cfg) => {
                for (value, list) in [
                    (email, &mut cfg.mapping.email),
                    (display, &mut cfg.mapping.name),
                    (groups, &mut cfg.mapping.groups),
                ] {
                    if let Some(v) = value {
                        list.retain(|x| *x != v);
                        list.insert(0, v);
                    }
                }
                if let Some(w) = edit.want_assertions_signed {
                    cfg.want_assertions_signed = w;
                }
            }
        }
        self.save_edited(actor, org.id, &before, c).await
    }

    /// An organization admin maps an IdP group to one of the organization's roles (`role`: its
    /// id), or removes the group's mappings (`None`).
    pub async fn map_group_for_org(
        &self,
        actor: Actor,
        org_ref: &str,
        id: &str,
        group: &str,
        role: Option<&str>,
    ) -> FederationResult<Connection> {
        let (org, before) = self.own_connection(actor, org_ref, id).await?;
        let group = group.trim();
        if group.is_empty() || group.len() > 256 {
            return Err(FederationError::Invalid("a group is 1 to 256 characters".into()));
        }
        let mut c = before.clone();
        let mappings = c.config.group_roles_mut();
        match role {
            Some(r) => {
                let rid = r.trim().parse::<crate::domain::RoleId>().map_err(|_| FederationError::NotFound)?;
                // Only a role grantable in this organization.
                let grantable = self.stores.orgs.roles(Some(org.id)).await?;
                if !grantable.iter().any(|x| x.id == rid) {
                    return Err(FederationError::NotFound);
                }
                mappings.retain(|m| !(m.group == group && m.role == rid));
                mappings.push(crate::domain::federation::GroupRole { group: group.to_owned(), role: rid });
            }
            None => mappings.retain(|m| m.group != group),
        }
        self.save_edited(actor, org.id, &before, c).await
    }

    /// An organization admin lets the connection serve another organization they also run (or
    /// stop serving it; never the organization of the page).
    pub async fn associate_for_org(
        &self,
        actor: Actor,
        org_ref: &str,
        id: &str,
        other_ref: &str,
        on: bool,
    ) -> FederationResult<Connection> {
        let (org, before) = self.own_connection(actor, org_ref, id).await?;
        let other = self.orgs.authorize(actor, other_ref.trim(), crate::domain::org::OrgRole::Admin).await?;
        if other.id == org.id {
            return Err(FederationError::Invalid("the organization of this page".into()));
        }
        if on {
            self.stores.federation.associate(before.id, other.id).await?;
        } else {
            self.stores.federation.dissociate(before.id, other.id).await?;
        }
        let after = self.connection(&before.id.to_string()).await?;
        self.save_edited(actor, org.id, &before, after).await
    }

    /// The connection a sign-in for this organization goes to (home-realm discovery), if any.
    pub async fn connection_of_org(&self, org: OrgId) -> FederationResult<Option<Connection>> {
        Ok(self.stores.federation.connections_of(org).await?.into_iter().next())
    }

    /// Admits an identity the IdP vouched for: only with an email of a domain verified by one
    /// of the connection's organizations. Its account (linked before, found by email, or created
    /// now) becomes a member of that organization; the link is recorded in the same transaction.
    pub(crate) async fn admit(
        &self,
        c: &Connection,
        identity: crate::domain::federation::FederatedIdentity,
    ) -> FederationResult<crate::auth::Authenticated> {
        let domain = identity.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_owned());
        let owner = match domain.as_deref().map(crate::domain::DomainName::parse) {
            Some(Ok(d)) => self.stores.orgs.verified_owner(d.as_str()).await?.map(|o| o.id),
            _ => None,
        };
        let org = match crate::domain::federation::admit(&identity, &c.orgs, owner) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(connection = %c.id, reason = %e, "federated identity not admitted");
                return Err(e.into());
            }
        };
        let linked = self.stores.federation.identity(c.id, &identity.subject).await?.map(|l| l.user_id);
        // Group mapping: only roles grantable in the organization admitted into.
        let (grant, revoke) = crate::domain::federation::role_changes(c.config.group_roles(), &identity.groups);
        let grantable: Vec<crate::domain::RoleId> =
            self.stores.orgs.roles(Some(org)).await?.into_iter().map(|r| r.id).collect();
        let roles = (
            grant.into_iter().filter(|r| grantable.contains(r)).collect::<Vec<_>>(),
            revoke.into_iter().filter(|r| grantable.contains(r)).collect::<Vec<_>>(),
        );
        let user = self.accounts.federated_account(&identity, linked, org, &roles).await.map_err(|e| match e {
            crate::accounts::AccountError::Store(s) => FederationError::Store(s),
            other => FederationError::Rejected(other.to_string()),
        })?;
        tracing::info!(connection = %c.id, user_id = %user.id, org = %org, "federated identity admitted");
        Ok(crate::auth::Authenticated {
            user,
            amr: vec![crate::auth::Amr::Fed],
            acr: None,
            auth_time: self.clock.now(),
            idp: Some(c.id.to_string()),
        })
    }
}
