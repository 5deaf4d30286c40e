//! The organizations service: organizations, members, RBAC (permissions, roles, grants of
//! roles), verified domains and home-realm discovery. Pages, the CLI (and the admin API next)
//! call it; none of them touches the org store.
//!
//! Every use case takes an [`Actor`] and checks it first, in one place ([`OrgService::authorize`]):
//! the platform (CLI, platform admins) may do anything; an org admin (or owner) runs their own
//! organization; anybody else gets `NotFound`, never a hint that the organization exists.

pub mod claims;
pub mod domains;

use std::sync::Arc;

use crate::accounts::{AccountError, AccountService, InviteOrg};
use crate::domain::account::Invitation;
use crate::domain::org::{
    parse_accent_color, parse_org_name, parse_permission, parse_role_name, parse_slug, slug_from_name, sniff_logo,
    Member, Membership, Org, OrgRole, OrgRuleError, Role,
};
use crate::domain::{Client, ClientId, Clock, OrgId, RoleId, User, UserId};
use crate::i18n::Lang;
use crate::store::{StoreError, Stores};

pub use domains::TxtResolver;

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The operator: the CLI, or a platform admin (`--admin`) in the pages.
    Platform,
    User(UserId),
}

impl Actor {
    /// A signed-in user: the platform when they are a platform admin.
    pub fn of(user: &User) -> Self {
        if user.is_admin {
            Actor::Platform
        } else {
            Actor::User(user.id)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("{0}")]
    Invalid(#[from] OrgRuleError),
    /// Unknown, or not visible to this actor (the same answer on purpose).
    #[error("no such organization, member, role or domain")]
    NotFound,
    /// A member of the organization without the rights for this.
    #[error("only an admin or owner of the organization may do this")]
    Forbidden,
    #[error("the slug {0:?} is taken")]
    SlugTaken(String),
    #[error("an organization must keep at least one owner")]
    LastOwner,
    #[error("only an owner may grant or take away the owner role")]
    OwnerOnly,
    #[error("clients are bound to this organization: delete or unbind them first")]
    HasClients,
    #[error("type the organization's slug ({0}) to confirm")]
    ConfirmationMismatch(String),
    #[error("no account has the address {0}: invite them instead")]
    UnknownUser(String),
    #[error("{0} is not a member of the organization")]
    NotMember(String),
    #[error("the client {0} has no permission {1:?} (declare it first: guichet permission add)")]
    UnknownPermission(String, String),
    #[error("unknown client {0}")]
    UnknownClient(String),
    #[error("the client {0} belongs to another organization")]
    ForeignClient(String),
    #[error("a role named {0:?} exists already for this client")]
    RoleTaken(String),
    #[error("no role {0:?} here")]
    UnknownRole(String),
    #[error("several roles are named {0:?}: name the client (--client) or use the role id")]
    AmbiguousRole(String),
    #[error("this organization claimed {0} already")]
    DomainClaimed(String),
    #[error("{0} is verified by another organization")]
    DomainTaken(String),
    #[error("{0} is not a valid domain name")]
    DomainInvalid(String),
    #[error("{0}")]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OrgError {
    /// The catalogue key of the message pages show (`orgs.error.*`).
    pub fn key(&self) -> &'static str {
        match self {
            OrgError::Invalid(OrgRuleError::Slug) => "orgs.error.slug",
            OrgError::Invalid(OrgRuleError::Name) => "orgs.error.name",
            OrgError::Invalid(OrgRuleError::Permission) => "orgs.error.permission",
            OrgError::Invalid(OrgRuleError::RoleName) => "orgs.error.role_name",
            OrgError::Invalid(OrgRuleError::Colour) => "orgs.error.colour",
            OrgError::Invalid(OrgRuleError::Contrast) => "orgs.error.contrast",
            OrgError::Invalid(OrgRuleError::Logo(_)) => "orgs.error.logo",
            OrgError::NotFound => "orgs.error.not_found",
            OrgError::Forbidden => "orgs.error.forbidden",
            OrgError::SlugTaken(_) => "orgs.error.slug_taken",
            OrgError::LastOwner => "orgs.error.last_owner",
            OrgError::OwnerOnly => "orgs.error.owner_only",
            OrgError::HasClients => "orgs.error.has_clients",
            OrgError::ConfirmationMismatch(_) => "orgs.error.confirm",
            OrgError::UnknownUser(_) => "orgs.error.unknown_user",
            OrgError::NotMember(_) => "orgs.error.not_member",
            OrgError::UnknownPermission(..) => "orgs.error.unknown_permission",
            OrgError::UnknownClient(_) | OrgError::ForeignClient(_) => "orgs.error.unknown_client",
            OrgError::RoleTaken(_) => "orgs.error.role_taken",
            OrgError::UnknownRole(_) | OrgError::AmbiguousRole(_) => "orgs.error.unknown_role",
            OrgError::DomainClaimed(_) => "orgs.error.domain_claimed",
            OrgError::DomainTaken(_) => "orgs.error.domain_taken",
            OrgError::DomainInvalid(_) => "orgs.error.domain_invalid",
            OrgError::Account(_) | OrgError::Store(_) => "error.unavailable",
        }
    }
}

pub type OrgResult<T> = Result<T, OrgError>;

/// What an org admin may change in the settings (None: unchanged).
#[derive(Debug, Clone, Default)]
pub struct OrgSettingsUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub require_sso: Option<bool>,
    pub mfa_required: Option<bool>,
    /// `Some("")` removes the colour.
    pub accent_color: Option<String>,
}

/// Where a sign-in for an email address goes (home-realm discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Realm {
    /// Guichet's own sign-in (password, passkey, emailed link).
    Local,
    /// The address's domain is verified by this organization; `require_sso`: local sign-in is
    /// refused for it. The federation work adds the connection to send the user to.
    Org { org: Org },
}

pub struct OrgService {
    stores: Stores,
    accounts: Arc<AccountService>,
    resolver: Arc<dyn TxtResolver>,
    clock: Arc<dyn Clock>,
    /// Wakes the live event streams when an event is written (set once, at start).
    bus: std::sync::OnceLock<Arc<crate::events::EventBus>>,
    /// `[dns] recheck_interval_secs`: the longest wait between two checks of a pending domain.
    recheck_interval: std::sync::OnceLock<u64>,
}

impl OrgService {
    pub fn new(
        stores: Stores,
        accounts: Arc<AccountService>,
        resolver: Arc<dyn TxtResolver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            stores,
            accounts,
            resolver,
            clock,
            bus: std::sync::OnceLock::new(),
            recheck_interval: std::sync::OnceLock::new(),
        }
    }

    // ------------------------------------------------------------------ access

    /// The organization named by id or slug, if `actor` may see it with at least `need`
    /// (`NotFound` for anyone who is not a member; `Forbidden` for a member below `need`).
    pub async fn authorize(&self, actor: Actor, org_ref: &str, need: OrgRole) -> OrgResult<Org> {
        let org = self.find(org_ref).await?.ok_or(OrgError::NotFound)?;
        match actor {
            Actor::Platform => Ok(org),
            Actor::User(u) => match self.stores.orgs.membership(org.id, u).await? {
                None => Err(OrgError::NotFound),
                Some(r) if r < need => Err(OrgError::Forbidden),
                Some(_) => Ok(org),
            },
        }
    }

    /// By id or slug, unchecked (for the OIDC `organization=` parameter and the CLI).
    pub async fn find(&self, org_ref: &str) -> OrgResult<Option<Org>> {
        let r = org_ref.trim();
        if let Ok(id) = r.parse::<OrgId>() {
            return Ok(self.stores.orgs.org(id).await?);
        }
        if parse_slug(r).is_err() {
            return Ok(None);
        }
        Ok(self.stores.orgs.org_by_slug(r).await?)
    }

    /// The role `actor` has in `org` (owner for the platform).
    pub async fn role_of(&self, actor: Actor, org: OrgId) -> OrgResult<Option<OrgRole>> {
        match actor {
            Actor::Platform => Ok(Some(OrgRole::Owner)),
            Actor::User(u) => Ok(self.stores.orgs.membership(org, u).await?),
        }
    }

    // ------------------------------------------------------------------ organizations

    /// Creates an organization (platform only). `owner`: its first owner.
    pub async fn create(&self, actor: Actor, name: &str, slug: Option<&str>, owner: Option<UserId>) -> OrgResult<Org> {
        if actor != Actor::Platform {
            return Err(OrgError::Forbidden);
        }
        let name = parse_org_name(name)?;
        let slug = match slug {
            Some(s) => parse_slug(s)?,
            None => slug_from_name(&name),
        };
        let now = self.clock.now();
        let org = Org {
            id: OrgId::new_random(),
            slug: slug.clone(),
            name,
            require_sso: false,
            mfa_required: false,
            accent_color: None,
            logo_digest: None,
            created_at: now,
            updated_at: now,
        };
        match self.stores.orgs.create_org(&org, owner).await {
            Err(StoreError::Conflict { .. }) => Err(OrgError::SlugTaken(slug)),
            r => r.map_err(OrgError::from),
        }?;
        tracing::info!(org = %org.id, slug = %org.slug, "organization created");
        self.audit("org.created", &org, actor, None).await;
        Ok(org)
    }

    /// Organizations the actor may see: all for the platform, their memberships otherwise.
    pub async fn list(&self, actor: Actor) -> OrgResult<Vec<Membership>> {
        match actor {
            Actor::Platform => Ok(self
                .stores
                .orgs
                .list_orgs(10_000)
                .await?
                .into_iter()
                .map(|org| Membership { org, role: OrgRole::Owner })
                .collect()),
            Actor::User(u) => Ok(self.stores.orgs.memberships_of(u).await?),
        }
    }

    /// The organization whose branding the person's own pages wear: their only one.
    pub async fn home_org(&self, user: UserId) -> OrgResult<Option<Org>> {
        let mut m = self.stores.orgs.memberships_of(user).await?;
        Ok(if m.len() == 1 { m.pop().map(|m| m.org) } else { None })
    }

    pub async fn memberships_of(&self, user: UserId) -> OrgResult<Vec<Membership>> {
        Ok(self.stores.orgs.memberships_of(user).await?)
    }

    pub async fn update_settings(&self, actor: Actor, org_ref: &str, u: OrgSettingsUpdate) -> OrgResult<Org> {
        let mut org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        if let Some(n) = &u.name {
            org.name = parse_org_name(n)?;
        }
        if let Some(s) = &u.slug {
            org.slug = parse_slug(s)?;
        }
        if let Some(v) = u.require_sso {
            org.require_sso = v;
        }
        if let Some(v) = u.mfa_required {
            org.mfa_required = v;
        }
        if let Some(c) = &u.accent_color {
            org.accent_color = if c.trim().is_empty() { None } else { Some(parse_accent_color(c)?) };
        }
        org.updated_at = self.clock.now();
        match self.stores.orgs.update_org(&org).await {
            Err(StoreError::Conflict { .. }) => return Err(OrgError::SlugTaken(org.slug)),
            r => r?,
        }
        self.audit("org.updated", &org, actor, None).await;
        Ok(org)
    }

    /// Sets the logo (PNG, JPEG, GIF or WebP by content, size-limited), or removes it (None).
    pub async fn set_logo(&self, actor: Actor, org_ref: &str, bytes: Option<&[u8]>) -> OrgResult<Org> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let now = self.clock.now();
        match bytes {
            Some(b) => {
                let media = sniff_logo(b)?;
                let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
                self.stores.orgs.set_logo(org.id, Some((b, media, &digest[..16])), now).await?;
            }
            None => self.stores.orgs.set_logo(org.id, None, now).await?,
        }
        self.stores.orgs.org(org.id).await?.ok_or(OrgError::NotFound)
    }

    /// The logo's bytes and media type (public: shown on sign-in pages).
    pub async fn logo(&self, id: OrgId) -> OrgResult<Option<(Vec<u8>, String)>> {
        Ok(self.stores.orgs.logo(id).await?)
    }

    pub async fn org(&self, id: OrgId) -> OrgResult<Option<Org>> {
        Ok(self.stores.orgs.org(id).await?)
    }

    /// Deletes the organization (owners and the platform), after the slug was typed again.
    /// Members' accounts remain; their grants for the organization end.
    pub async fn delete(&self, actor: Actor, org_ref: &str, confirm: &str) -> OrgResult<Org> {
        let org = self.authorize(actor, org_ref, OrgRole::Owner).await?;
        if confirm.trim() != org.slug {
            return Err(OrgError::ConfirmationMismatch(org.slug));
        }
        match self.stores.orgs.delete_org(org.id).await {
            Err(StoreError::Conflict { .. }) => return Err(OrgError::HasClients),
            r => r?,
        }
        tracing::info!(org = %org.id, slug = %org.slug, "organization deleted");
        self.audit("org.deleted", &org, actor, None).await;
        Ok(org)
    }

    // ------------------------------------------------------------------ members

    pub async fn members(&self, actor: Actor, org_ref: &str) -> OrgResult<(Org, Vec<Member>)> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let members = self.stores.orgs.members(org.id).await?;
        Ok((org, members))
    }

    async fn user_by_email(&self, email: &str) -> OrgResult<User> {
        self.accounts.user_by_email(email).await?.ok_or_else(|| OrgError::UnknownUser(email.trim().to_owned()))
    }

    /// Only owners hand out or take away ownership.
    async fn check_owner_change(
        &self,
        actor: Actor,
        org: &Org,
        from: Option<OrgRole>,
        to: Option<OrgRole>,
    ) -> OrgResult<()> {
        let touches_owner = from == Some(OrgRole::Owner) || to == Some(OrgRole::Owner);
        if touches_owner && self.role_of(actor, org.id).await? != Some(OrgRole::Owner) {
            return Err(OrgError::OwnerOnly);
        }
        if from == Some(OrgRole::Owner) && to != Some(OrgRole::Owner) {
            let owners = self.stores.orgs.members(org.id).await?.iter().filter(|m| m.role == OrgRole::Owner).count();
            if owners <= 1 {
                return Err(OrgError::LastOwner);
            }
        }
        Ok(())
    }

    /// Adds an existing account as a member, or changes a member's org role.
    pub async fn set_member(&self, actor: Actor, org_ref: &str, email: &str, role: OrgRole) -> OrgResult<Member> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let user = self.user_by_email(email).await?;
        let current = self.stores.orgs.membership(org.id, user.id).await?;
        self.check_owner_change(actor, &org, current, Some(role)).await?;
        self.stores.orgs.set_member(org.id, user.id, role, self.clock.now()).await?;
        self.audit(
            if current.is_some() { "org.member_role_changed" } else { "org.member_added" },
            &org,
            actor,
            Some(serde_json::json!({"user": user.id, "role": role})),
        )
        .await;
        self.member(org.id, user.id).await
    }

    async fn member(&self, org: OrgId, user: UserId) -> OrgResult<Member> {
        self.stores.orgs.member(org, user).await?.ok_or(OrgError::NotFound)
    }

    /// Removes a member: their roles go, and their grants for the organization are revoked (so
    /// their refresh tokens stop working) in the same transaction. Their account remains.
    pub async fn remove_member(&self, actor: Actor, org_ref: &str, email: &str) -> OrgResult<()> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let user = self.user_by_email(email).await?;
        let current =
            self.stores.orgs.membership(org.id, user.id).await?.ok_or_else(|| OrgError::NotMember(email.to_owned()))?;
        self.check_owner_change(actor, &org, Some(current), None).await?;
        self.stores.orgs.remove_member(org.id, user.id, self.clock.now()).await?;
        tracing::info!(org = %org.id, user_id = %user.id, "member removed");
        self.audit("org.member_removed", &org, actor, Some(serde_json::json!({"user": user.id}))).await;
        Ok(())
    }

    /// Removes a member by user id (the pages post ids).
    pub async fn remove_member_id(&self, actor: Actor, org_ref: &str, user: UserId) -> OrgResult<()> {
        let u = self.accounts.find(user).await?.ok_or(OrgError::NotFound)?;
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        if self.stores.orgs.membership(org.id, user).await?.is_none() {
            return Err(OrgError::NotFound);
        }
        self.remove_member(actor, &org.id.to_string(), u.email.as_str()).await
    }

    /// Changes a member's org role by user id (the pages post ids).
    pub async fn set_member_role_id(
        &self,
        actor: Actor,
        org_ref: &str,
        user: UserId,
        role: OrgRole,
    ) -> OrgResult<Member> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        if self.stores.orgs.membership(org.id, user).await?.is_none() {
            return Err(OrgError::NotFound);
        }
        let u = self.accounts.find(user).await?.ok_or(OrgError::NotFound)?;
        self.set_member(actor, &org.id.to_string(), u.email.as_str(), role).await
    }

    /// Invites an address into the organization (the lifecycle invitation: an account is created
    /// on acceptance when there is none).
    pub async fn invite(
        &self,
        actor: Actor,
        org_ref: &str,
        email: &str,
        role: OrgRole,
        lang: Lang,
    ) -> OrgResult<(Invitation, String)> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        self.check_owner_change(actor, &org, None, Some(role)).await?;
        let by = match actor {
            Actor::User(u) => Some(u),
            Actor::Platform => None,
        };
        let target = InviteOrg { id: org.id, name: org.name.clone(), role };
        let out = self.accounts.invite(email, None, Some(&target), None, by, lang).await?;
        self.audit("org.member_invited", &org, actor, Some(serde_json::json!({"invitation": out.0.id, "role": role})))
            .await;
        Ok(out)
    }

    // ------------------------------------------------------------------ permissions and roles

    async fn client(&self, id: &str) -> OrgResult<Client> {
        self.stores.clients.client(&ClientId::new(id)).await?.ok_or_else(|| OrgError::UnknownClient(id.to_owned()))
    }

    /// Declares permissions of a client (platform only).
    pub async fn add_permissions(&self, actor: Actor, client: &str, names: &[String]) -> OrgResult<Vec<String>> {
        if actor != Actor::Platform {
            return Err(OrgError::Forbidden);
        }
        let c = self.client(client).await?;
        let names = names.iter().map(|n| parse_permission(n.trim())).collect::<Result<Vec<_>, _>>()?;
        self.stores.orgs.add_permissions(&c.client_id, &names, self.clock.now()).await?;
        Ok(self.stores.orgs.permissions(&c.client_id).await?)
    }

    pub async fn remove_permission(&self, actor: Actor, client: &str, name: &str) -> OrgResult<bool> {
        if actor != Actor::Platform {
            return Err(OrgError::Forbidden);
        }
        let c = self.client(client).await?;
        Ok(self.stores.orgs.remove_permission(&c.client_id, name).await?)
    }

    pub async fn permissions(&self, client: &str) -> OrgResult<Vec<String>> {
        let c = self.client(client).await?;
        Ok(self.stores.orgs.permissions(&c.client_id).await?)
    }

    /// Clients an org admin may make roles for: those with permissions, not bound to another
    /// organization; with their permissions.
    pub async fn role_clients(&self, org: Option<OrgId>) -> OrgResult<Vec<(Client, Vec<String>)>> {
        let mut out = Vec::new();
        for id in self.stores.orgs.clients_with_permissions().await? {
            if let Some(c) = self.stores.clients.client(&id).await? {
                if c.org_id.is_none() || c.org_id == org || org.is_none() {
                    let p = self.stores.orgs.permissions(&id).await?;
                    out.push((c, p));
                }
            }
        }
        Ok(out)
    }

    /// Creates a role of `client` with `permissions`; for one organization (its admins may) or,
    /// with `org` None, for every organization (platform only).
    pub async fn create_role(
        &self,
        actor: Actor,
        client: &str,
        name: &str,
        permissions: &[String],
        org_ref: Option<&str>,
    ) -> OrgResult<Role> {
        let org = match org_ref {
            Some(r) => Some(self.authorize(actor, r, OrgRole::Admin).await?),
            None if actor == Actor::Platform => None,
            None => return Err(OrgError::Forbidden),
        };
        let c = self.client(client).await?;
        if c.org_id.is_some() && c.org_id != org.as_ref().map(|o| o.id) && actor != Actor::Platform {
            return Err(OrgError::UnknownClient(client.to_owned()));
        }
        let name = parse_role_name(name)?;
        let mut perms = permissions.iter().map(|p| parse_permission(p.trim())).collect::<Result<Vec<_>, _>>()?;
        perms.sort();
        perms.dedup();
        let declared = self.stores.orgs.permissions(&c.client_id).await?;
        if let Some(p) = perms.iter().find(|p| !declared.contains(p)) {
            return Err(OrgError::UnknownPermission(c.client_id.to_string(), p.clone()));
        }
        let role = Role {
            id: RoleId::new_random(),
            client_id: c.client_id.clone(),
            org: org.as_ref().map(|o| o.id),
            name: name.clone(),
            permissions: perms,
            created_at: self.clock.now(),
        };
        match self.stores.orgs.create_role(&role).await {
            Err(StoreError::Conflict { constraint: "roles_name" }) => return Err(OrgError::RoleTaken(name)),
            Err(StoreError::Conflict { .. }) => {
                return Err(OrgError::UnknownPermission(c.client_id.to_string(), String::new()))
            }
            r => r?,
        }
        if let Some(o) = &org {
            self.audit("org.role_created", o, actor, Some(serde_json::json!({"role": role.id, "name": role.name})))
                .await;
        }
        Ok(role)
    }

    /// Roles grantable in the organization (the operator's and its own).
    pub async fn roles(&self, actor: Actor, org_ref: Option<&str>) -> OrgResult<Vec<Role>> {
        match org_ref {
            Some(r) => {
                let org = self.authorize(actor, r, OrgRole::Admin).await?;
                Ok(self.stores.orgs.roles(Some(org.id)).await?)
            }
            None if actor == Actor::Platform => Ok(self.stores.orgs.roles(None).await?),
            None => Err(OrgError::Forbidden),
        }
    }

    /// A role by id, name or `client/name`, among those grantable in `org` (None: all roles).
    pub async fn resolve_role(&self, org: Option<OrgId>, role_ref: &str, client: Option<&str>) -> OrgResult<Role> {
        let r = role_ref.trim();
        let roles = self.stores.orgs.roles(org).await?;
        if let Ok(id) = r.parse::<RoleId>() {
            return roles.into_iter().find(|x| x.id == id).ok_or_else(|| OrgError::UnknownRole(r.to_owned()));
        }
        let (client, name) = match (client, r.split_once('/')) {
            (Some(c), _) => (Some(c), r),
            (None, Some((c, n))) if roles.iter().any(|x| x.client_id.as_str() == c) => (Some(c), n),
            (None, _) => (None, r),
        };
        let mut found: Vec<Role> =
            roles.into_iter().filter(|x| x.name == name && client.is_none_or(|c| x.client_id.as_str() == c)).collect();
        // An organization's own role shadows the operator's role of the same name.
        if found.len() > 1 && found.iter().any(|x| x.org.is_some()) {
            found.retain(|x| x.org.is_some());
        }
        match found.len() {
            0 => Err(OrgError::UnknownRole(r.to_owned())),
            1 => Ok(found.remove(0)),
            _ => Err(OrgError::AmbiguousRole(r.to_owned())),
        }
    }

    /// Deletes a role of the organization (its own roles only; the platform: any).
    pub async fn delete_role(&self, actor: Actor, org_ref: Option<&str>, role: RoleId) -> OrgResult<()> {
        let org = match org_ref {
            Some(r) => Some(self.authorize(actor, r, OrgRole::Admin).await?),
            None if actor == Actor::Platform => None,
            None => return Err(OrgError::Forbidden),
        };
        let found = self.stores.orgs.role(role).await?.ok_or(OrgError::NotFound)?;
        if let Some(o) = &org {
            if found.org != Some(o.id) {
                return Err(OrgError::NotFound);
            }
        }
        self.stores.orgs.delete_role(role).await?;
        if let Some(o) = &org {
            self.audit("org.role_deleted", o, actor, Some(serde_json::json!({"role": role, "name": found.name}))).await;
        }
        Ok(())
    }

    /// Replaces the permissions of an organization's own role.
    pub async fn set_role_permissions(
        &self,
        actor: Actor,
        org_ref: &str,
        role: RoleId,
        permissions: &[String],
    ) -> OrgResult<Role> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let found = self.stores.orgs.role(role).await?.ok_or(OrgError::NotFound)?;
        if found.org != Some(org.id) {
            return Err(OrgError::NotFound);
        }
        let mut perms = permissions.iter().map(|p| parse_permission(p.trim())).collect::<Result<Vec<_>, _>>()?;
        perms.sort();
        perms.dedup();
        let declared = self.stores.orgs.permissions(&found.client_id).await?;
        if let Some(p) = perms.iter().find(|p| !declared.contains(p)) {
            return Err(OrgError::UnknownPermission(found.client_id.to_string(), p.clone()));
        }
        self.stores.orgs.set_role_permissions(role, &found.client_id, &perms).await?;
        let after = self.stores.orgs.role(role).await?.ok_or(OrgError::NotFound)?;
        let detail = serde_json::json!({"role": role, "before": found.permissions, "after": after.permissions});
        self.audit("org.role_updated", &org, actor, Some(detail)).await;
        Ok(after)
    }

    /// Replaces the permissions of one of the platform's roles (not bound to an organization;
    /// platform only).
    pub async fn set_platform_role_permissions(
        &self,
        actor: Actor,
        role: RoleId,
        permissions: &[String],
    ) -> OrgResult<Role> {
        if actor != Actor::Platform {
            return Err(OrgError::Forbidden);
        }
        let found = self.stores.orgs.role(role).await?.ok_or(OrgError::NotFound)?;
        if found.org.is_some() {
            return Err(OrgError::NotFound);
        }
        let mut perms = permissions.iter().map(|p| parse_permission(p.trim())).collect::<Result<Vec<_>, _>>()?;
        perms.sort();
        perms.dedup();
        let declared = self.stores.orgs.permissions(&found.client_id).await?;
        if let Some(p) = perms.iter().find(|p| !declared.contains(p)) {
            return Err(OrgError::UnknownPermission(found.client_id.to_string(), p.clone()));
        }
        self.stores.orgs.set_role_permissions(role, &found.client_id, &perms).await?;
        self.stores.orgs.role(role).await?.ok_or(OrgError::NotFound)
    }

    /// Grants a role to a member (by email) of the organization.
    pub async fn grant_role(
        &self,
        actor: Actor,
        org_ref: &str,
        email: &str,
        role_ref: &str,
        client: Option<&str>,
    ) -> OrgResult<Role> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let user = self.user_by_email(email).await?;
        self.grant_role_to(actor, &org, user.id, email, role_ref, client).await
    }

    /// Grants a role to a member (by id; the pages post ids).
    pub async fn grant_role_id(&self, actor: Actor, org_ref: &str, user: UserId, role: RoleId) -> OrgResult<Role> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        self.grant_role_to(actor, &org, user, &user.to_string(), &role.to_string(), None).await
    }

    async fn grant_role_to(
        &self,
        actor: Actor,
        org: &Org,
        user: UserId,
        who: &str,
        role_ref: &str,
        client: Option<&str>,
    ) -> OrgResult<Role> {
        if self.stores.orgs.membership(org.id, user).await?.is_none() {
            return Err(OrgError::NotMember(who.to_owned()));
        }
        let role = self.resolve_role(Some(org.id), role_ref, client).await?;
        match self.stores.orgs.grant_role(org.id, user, role.id, self.clock.now()).await {
            Err(StoreError::NotFound) => return Err(OrgError::NotMember(who.to_owned())),
            r => r?,
        }
        self.audit("org.role_granted", org, actor, Some(serde_json::json!({"user": user, "role": role.id}))).await;
        Ok(role)
    }

    /// Takes a role away from a member (by email); `false` when they did not have it.
    pub async fn revoke_role(
        &self,
        actor: Actor,
        org_ref: &str,
        email: &str,
        role_ref: &str,
        client: Option<&str>,
    ) -> OrgResult<bool> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let user = self.user_by_email(email).await?;
        let role = self.resolve_role(Some(org.id), role_ref, client).await?;
        let done = self.stores.orgs.revoke_role(org.id, user.id, role.id).await?;
        self.audit("org.role_revoked", &org, actor, Some(serde_json::json!({"user": user.id, "role": role.id}))).await;
        Ok(done)
    }

    /// Takes a role away (by ids; the pages post ids).
    pub async fn revoke_role_id(&self, actor: Actor, org_ref: &str, user: UserId, role: RoleId) -> OrgResult<bool> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let done = self.stores.orgs.revoke_role(org.id, user, role).await?;
        if done {
            self.audit("org.role_revoked", &org, actor, Some(serde_json::json!({"user": user, "role": role}))).await;
        }
        Ok(done)
    }

    // ------------------------------------------------------------------ home-realm discovery

    /// Where a sign-in for `email` goes: the organization that verified its domain, if any.
    pub async fn realm_of(&self, email: &str) -> OrgResult<Realm> {
        let Some((_, domain)) = email.trim().rsplit_once('@') else { return Ok(Realm::Local) };
        let Ok(domain) = crate::domain::DomainName::parse(domain) else { return Ok(Realm::Local) };
        match self.stores.orgs.verified_owner(domain.as_str()).await? {
            Some(org) => Ok(Realm::Org { org }),
            None => Ok(Realm::Local),
        }
    }

    async fn audit(&self, action: &str, org: &Org, actor: Actor, detail: Option<serde_json::Value>) {
        self.audit_event(action, org.id, actor, detail).await
    }

    /// `[dns] recheck_interval_secs` (set once, at start; an hour otherwise).
    pub fn set_recheck_interval(&self, secs: u64) {
        let _ = self.recheck_interval.set(secs);
    }

    pub(crate) fn recheck_interval_secs(&self) -> u64 {
        self.recheck_interval.get().copied().unwrap_or(3600)
    }

    /// Where written events are announced to the live streams.
    pub fn set_event_bus(&self, bus: Arc<crate::events::EventBus>) {
        let _ = self.bus.set(bus);
    }

    /// `ops` were applied: if they held an organization's event, its streams wake.
    fn announce(&self, ops_had_event: bool, org: OrgId) {
        if ops_had_event {
            if let Some(bus) = self.bus.get() {
                bus.publish(org);
            }
        }
    }

    /// Records an organization's audit event (best effort: a failure is logged), with the
    /// webhook deliveries it raises in the same transaction.
    pub(crate) async fn audit_event(&self, action: &str, org: OrgId, actor: Actor, detail: Option<serde_json::Value>) {
        let ops = self.audit_ops(action, org, actor, detail).await;
        if let Err(e) = self.apply_announced(ops, org).await {
            tracing::warn!(error = %e, action, "could not write the audit event");
        }
    }

    /// Applies `ops` in one transaction; then wakes the outbox if they queued jobs, and the
    /// organization's live streams if they wrote an event.
    pub(crate) async fn apply_announced(
        &self,
        ops: Vec<crate::domain::account::AccountOp>,
        org: OrgId,
    ) -> Result<(), crate::store::StoreError> {
        let queued = crate::webhooks::queues_jobs(&ops);
        let has_event = crate::webhooks::has_event(&ops);
        self.stores.accounts.apply(ops).await?;
        self.after_commit(queued, has_event, org);
        Ok(())
    }

    pub(crate) fn after_commit(&self, queued: bool, has_event: bool, org: OrgId) {
        if queued {
            self.accounts.wake_outbox();
        }
        self.announce(has_event, org);
    }

    /// The steps of an organization's audit event: its webhook deliveries and event-log entry
    /// (when the action raises an event), then the audit entry.
    pub(crate) async fn audit_ops(
        &self,
        action: &str,
        org: OrgId,
        actor: Actor,
        detail: Option<serde_json::Value>,
    ) -> Vec<crate::domain::account::AccountOp> {
        let actor = match actor {
            Actor::Platform => "platform".to_owned(),
            Actor::User(u) => u.to_string(),
        };
        let mut ops = match crate::webhooks::event_for_action(action) {
            Some(event) => {
                let data = serde_json::json!({"action": action, "actor": actor, "detail": detail.clone()});
                self.webhook_jobs(org, event, data).await
            }
            None => Vec::new(),
        };
        ops.push(crate::domain::account::AccountOp::Audit {
            action: action.to_owned(),
            subject: format!("org:{org}"),
            actor: Some(actor),
            detail: detail.map(|d| d.to_string()),
            org: Some(org),
            outcome: crate::domain::account::AuditOutcome::of_action(action),
        });
        ops
    }

    /// The outbox jobs delivering `event_type` to the organization's webhooks that want it.
    async fn webhook_jobs(
        &self,
        org: OrgId,
        event_type: &str,
        data: serde_json::Value,
    ) -> Vec<crate::domain::account::AccountOp> {
        match self.stores.webhooks.webhooks_of(org).await {
            Ok(hooks) => crate::webhooks::event_ops(&hooks, org, event_type, data, self.clock.now()),
            Err(e) => {
                tracing::warn!(error = %e, event_type, "cannot read the organization's webhooks");
                Vec::new()
            }
        }
    }

    /// The organization's audit log, newest first (its admins; the platform): (entry id, entry).
    pub async fn audit_log(
        &self,
        actor: Actor,
        org_ref: &str,
        action: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> OrgResult<Vec<(i64, crate::domain::account::AuditEvent)>> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        Ok(self.stores.journal.audit_of(&format!("org:{}", org.id), action, before, limit.clamp(1, 10_000)).await?)
    }

    /// Queues an event for the organization's webhooks (best effort: a failure is logged).
    pub(crate) async fn emit(&self, org: OrgId, event_type: &str, data: serde_json::Value) {
        let ops = self.webhook_jobs(org, event_type, data).await;
        if ops.is_empty() {
            return;
        }
        let queued = crate::webhooks::queues_jobs(&ops);
        let has_event = crate::webhooks::has_event(&ops);
        match self.stores.accounts.apply(ops).await {
            Ok(()) => {
                if queued {
                    self.accounts.wake_outbox();
                }
                self.announce(has_event, org);
            }
            Err(e) => tracing::warn!(error = %e, event_type, "could not record the organization's event"),
        }
    }
}

/// Organizations hear of their members' account events: each event goes to every organization
/// the user belongs to (webhooks, live stream) — e.g. `session.revoked`, so portals can sign the
/// user out at once.
pub struct MemberEventSink(pub Arc<OrgService>);

impl MemberEventSink {
    fn to_orgs_of(&self, user: UserId, event_type: &'static str, data: serde_json::Value) {
        let orgs = self.0.clone();
        tokio::spawn(async move {
            let memberships = match orgs.memberships_of(user).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, event_type, "cannot read a user's memberships: event not sent");
                    return;
                }
            };
            for m in memberships {
                orgs.emit(m.org.id, event_type, data.clone()).await;
            }
        });
    }
}

impl crate::oidc::SessionEvents for MemberEventSink {
    fn session_ended(&self, user: UserId, sid: &str) {
        self.to_orgs_of(user, "session.revoked", serde_json::json!({"user": user, "sid": sid}));
    }
}

impl crate::domain::events::UserEvents for MemberEventSink {
    fn user_event(&self, user: UserId, event_type: &'static str, data: serde_json::Value) {
        self.to_orgs_of(user, event_type, data);
    }
}
