//! Administration of user accounts by someone else (the admin API): search, creation, suspension,
//! factor reset, deletion, sessions; and an organization's invitations. Every use case checks
//! here, in one place ([`UserAdmin::reach`]), who may act on which account:
//!
//! - a platform admin (or the operator) reaches every account;
//! - an organization's caller (its developer key, or a user who is admin or owner of it) reaches
//!   only the accounts that organization **manages**: its members whose address is of one of its
//!   verified domains (`OrgService::managing_org`); never a platform admin's account; and a
//!   user who is only an admin (not owner) may not change an owner;
//! - anything else is `NotFound` (never "forbidden": an id of another organization tells
//!   nothing), and a read-only credential changing something is `Forbidden`.
//!
//! Audit entries name the caller (`key:<id>`, `user:<id>`) as actor.

use crate::domain::account::{AccountOp, Invitation};
use crate::domain::org::{Org, OrgRole};
use crate::domain::{AuthSessionRecord, OrgId, User, UserId, UserStatus};
use crate::i18n::Lang;
use crate::orgs::{Actor, OrgError, OrgService, Realm};
use crate::store::StoreError;

use super::{AccountError, AccountService};

/// Who acts, as the admin API authenticated them.
#[derive(Debug, Clone, Copy)]
pub struct AdminScope<'a> {
    /// The platform (a platform admin, or an organization's key confined by `org`), or a user.
    pub actor: Actor,
    /// An organization's key: this organization only.
    pub org: Option<OrgId>,
    /// May change things.
    pub write: bool,
    /// The audit's actor: `key:<id>` or `user:<id>`.
    pub label: &'a str,
}

impl AdminScope<'_> {
    fn is_platform(&self) -> bool {
        self.actor == Actor::Platform && self.org.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Unknown, or not this caller's to see (the same answer on purpose).
    #[error("there is nothing at this address for this caller")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("an account has this address already")]
    Exists,
    /// Only a pending invitation can be sent again.
    #[error("this invitation is not pending any more")]
    NotPending,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccountError> for AdminError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => AdminError::Store(s),
            AccountError::NoAccount | AccountError::TokenInvalid => AdminError::NotFound,
            AccountError::NotAllowed("exists") => AdminError::Exists,
            AccountError::Invalid(k) => AdminError::Invalid(invalid_message(k)),
            other => AdminError::Invalid(other.to_string()),
        }
    }
}

impl From<OrgError> for AdminError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Store(s) => AdminError::Store(s),
            OrgError::Account(a) => a.into(),
            OrgError::OwnerOnly => AdminError::Forbidden("only an owner may make an owner"),
            OrgError::Invalid(r) => AdminError::Invalid(r.to_string()),
            _ => AdminError::NotFound,
        }
    }
}

/// Catalogue keys of the account rules, in words for API clients.
fn invalid_message(key: &str) -> String {
    match key {
        "register.email_invalid" => "email is not a valid address".into(),
        "register.name_invalid" => "name is not a valid name (1 to 100 characters, no control characters)".into(),
        "invite.invalid" => "the invitation is not valid".into(),
        other => format!("refused: {other}"),
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// A page of accounts, and whether more follow.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub more: bool,
}

/// The admin use cases on accounts: a view over the account and organization services.
pub struct UserAdmin<'a> {
    accounts: &'a AccountService,
    orgs: &'a OrgService,
}

impl<'a> UserAdmin<'a> {
    pub fn new(accounts: &'a AccountService, orgs: &'a OrgService) -> Self {
        Self { accounts, orgs }
    }

    /// May `scope` administer `org` (its key, an admin of it, the platform)?
    async fn administers(&self, scope: &AdminScope<'_>, org: OrgId) -> AdminResult<bool> {
        if let Some(own) = scope.org {
            return Ok(own == org);
        }
        Ok(self.orgs.role_of(scope.actor, org).await?.is_some_and(|r| r >= OrgRole::Admin))
    }

    /// THE check: the account `user` if `scope` may act on it (`write`: to change it), else
    /// `NotFound` (`Forbidden` for a read-only credential changing, or an admin changing an
    /// owner).
    pub async fn reach(&self, scope: &AdminScope<'_>, user: UserId, write: bool) -> AdminResult<User> {
        let u = self.accounts.find(user).await?.ok_or(AdminError::NotFound)?;
        if !scope.is_platform() {
            if u.is_admin {
                return Err(AdminError::NotFound);
            }
            let org = self.orgs.managing_org(&u).await?.ok_or(AdminError::NotFound)?;
            if !self.administers(scope, org.id).await? {
                return Err(AdminError::NotFound);
            }
            if write && scope.org.is_none() {
                let mine = self.orgs.role_of(scope.actor, org.id).await?;
                let theirs = self.orgs.role_of(Actor::User(u.id), org.id).await?;
                if theirs == Some(OrgRole::Owner) && mine != Some(OrgRole::Owner) && u.id != self.user_of(scope) {
                    return Err(AdminError::Forbidden("only an owner may change an owner's account"));
                }
            }
        }
        if write && !scope.write {
            return Err(AdminError::Forbidden("this credential may only read"));
        }
        Ok(u)
    }

    fn user_of(&self, scope: &AdminScope<'_>) -> UserId {
        match scope.actor {
            Actor::User(u) => u,
            Actor::Platform => UserId::from_uuid(uuid::Uuid::nil()),
        }
    }

    /// Accounts by id after `after`: every account for the platform, the managed accounts of the
    /// organizations it administers for anyone else. `q`: part of the address or name.
    pub async fn search(
        &self,
        scope: &AdminScope<'_>,
        q: Option<&str>,
        status: Option<UserStatus>,
        after: Option<UserId>,
        limit: usize,
    ) -> AdminResult<UserPage> {
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        let want = i64::try_from(limit).unwrap_or(200) + 1;
        let mut users = if scope.is_platform() {
            self.accounts.stores.users.search_users(q, status, after, want).await?
        } else {
            let orgs: Vec<OrgId> = match (scope.org, scope.actor) {
                (Some(o), _) => vec![o],
                (None, Actor::User(u)) => self.orgs.administered_by(u).await?.into_iter().map(|o| o.id).collect(),
                (None, Actor::Platform) => Vec::new(),
            };
            let mut ids = Vec::new();
            for o in orgs {
                ids.extend(self.orgs.managed_members(o).await?);
            }
            ids.sort_by_key(|id| id.as_uuid());
            ids.dedup();
            let needle = q.map(str::to_lowercase);
            let mut out = Vec::new();
            for id in ids.into_iter().filter(|id| after.is_none_or(|a| id.as_uuid() > a.as_uuid())) {
                let Some(u) = self.accounts.find(id).await? else { continue };
                let matches = needle.as_deref().is_none_or(|n| {
                    u.email.as_str().to_lowercase().contains(n)
                        || u.name.as_deref().is_some_and(|m| m.to_lowercase().contains(n))
                });
                if !u.is_admin && matches && status.is_none_or(|s| u.status == s) {
                    out.push(u);
                    if out.len() > limit {
                        break;
                    }
                }
            }
            out
        };
        let more = users.len() > limit;
        users.truncate(limit);
        Ok(UserPage { users, more })
    }

    async fn audit(&self, action: &str, subject: String, scope: &AdminScope<'_>, org: Option<OrgId>) {
        let op = AccountOp::Audit {
            action: action.to_owned(),
            subject,
            actor: Some(scope.label.to_owned()),
            detail: None,
            org,
            outcome: Default::default(),
        };
        if let Err(e) = self.accounts.stores.accounts.apply(vec![op]).await {
            tracing::warn!(error = %e, action, "could not write the audit event");
        }
    }

    /// A new account, pending: an activation link is mailed, the user chooses the password.
    /// With `org`, they join it (`role`, member by default). An organization's caller must name
    /// its organization, and the address must be of a domain it verified.
    pub async fn create(
        &self,
        scope: &AdminScope<'_>,
        email: &str,
        name: Option<&str>,
        org: Option<&str>,
        role: Option<OrgRole>,
    ) -> AdminResult<User> {
        if !scope.write {
            return Err(AdminError::Forbidden("this credential may only read"));
        }
        let org: Option<Org> = match org {
            Some(r) => {
                let o = self.orgs.find(r).await?.ok_or(AdminError::NotFound)?;
                if !scope.is_platform() && !self.administers(scope, o.id).await? {
                    return Err(AdminError::NotFound);
                }
                Some(o)
            }
            None if scope.is_platform() => None,
            None => return Err(AdminError::Invalid("org is required: the organization the account joins".into())),
        };
        if role.is_some() && org.is_none() {
            return Err(AdminError::Invalid("role needs org".into()));
        }
        let role = role.unwrap_or(OrgRole::Member);
        if crate::domain::Email::parse(email).is_err() {
            return Err(AdminError::Invalid(invalid_message("register.email_invalid")));
        }
        if let Some(o) = &org {
            if !scope.is_platform() {
                match self.orgs.realm_of(email).await? {
                    Realm::Org { org: owner } if owner.id == o.id => {}
                    _ => {
                        return Err(AdminError::Forbidden("the address must be of a domain the organization verified"))
                    }
                }
            }
            if role == OrgRole::Owner && self.orgs.role_of(scope.actor, o.id).await? != Some(OrgRole::Owner) {
                return Err(AdminError::Forbidden("only an owner may make an owner"));
            }
        }
        // The account, its membership, their audit entries and the organization's
        // membership.changed event: one transaction.
        let id = UserId::new_random();
        let mut then = vec![AccountOp::Audit {
            action: "account.created".into(),
            subject: id.to_string(),
            actor: Some(scope.label.to_owned()),
            detail: None,
            org: org.as_ref().map(|o| o.id),
            outcome: Default::default(),
        }];
        if let Some(o) = &org {
            then.push(AccountOp::JoinOrg { org: o.id, user: id, role });
            let detail = serde_json::json!({"user": id, "email": email.trim(), "role": role});
            let mut steps = self.orgs.audit_ops("org.member_added", o.id, scope.actor, Some(detail)).await;
            for step in &mut steps {
                if let AccountOp::Audit { actor, .. } = step {
                    *actor = Some(scope.label.to_owned());
                }
            }
            then.extend(steps);
        }
        let has_event = crate::webhooks::has_event(&then);
        let (u, _link) = self.accounts.create_by_operator_with(id, email, name, None, false, then).await?;
        if let Some(o) = &org {
            self.orgs.after_commit(true, has_event, o.id);
        }
        tracing::info!(user_id = %u.id, actor = scope.label, "account created by an admin");
        Ok(u)
    }

    /// Deletes the account for good (`Ok` when there is no such account any more).
    pub async fn delete(&self, scope: &AdminScope<'_>, user: UserId) -> AdminResult<()> {
        match self.reach(scope, user, true).await {
            Ok(_) => {}
            // Gone already (or never was): nothing to do, and nothing learnt.
            Err(AdminError::NotFound) if self.accounts.find(user).await?.is_none() => {
                return if scope.write { Ok(()) } else { Err(AdminError::Forbidden("this credential may only read")) }
            }
            Err(e) => return Err(e),
        }
        match self.accounts.delete(user, None, None, scope.label).await {
            Ok(()) | Err(AccountError::NoAccount) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_suspended(&self, scope: &AdminScope<'_>, user: UserId, suspended: bool) -> AdminResult<User> {
        self.reach(scope, user, true).await?;
        Ok(self.accounts.set_suspended(user, suspended, scope.label).await?)
    }

    pub async fn reset_factors(&self, scope: &AdminScope<'_>, user: UserId) -> AdminResult<()> {
        self.reach(scope, user, true).await?;
        Ok(self.accounts.reset_factors(user, scope.label).await?)
    }

    /// The account's open sign-in sessions.
    pub async fn sessions(&self, scope: &AdminScope<'_>, user: UserId) -> AdminResult<Vec<AuthSessionRecord>> {
        self.reach(scope, user, false).await?;
        Ok(self.accounts.sessions(user).await?)
    }

    /// Ends one session of the account (`Ok` when it is not, or no longer, open).
    pub async fn revoke_session(&self, scope: &AdminScope<'_>, user: UserId, sid: &str) -> AdminResult<()> {
        self.reach(scope, user, true).await?;
        let open = self.accounts.sessions(user).await?.into_iter().any(|s| s.sid == sid);
        if !open {
            return Ok(());
        }
        match self.accounts.revoke_session(user, sid).await {
            Ok(()) | Err(AccountError::TokenInvalid) => {}
            Err(e) => return Err(e.into()),
        }
        self.audit("session.revoked", user.to_string(), scope, None).await;
        Ok(())
    }

    /// Ends every session of the account.
    pub async fn revoke_sessions(&self, scope: &AdminScope<'_>, user: UserId) -> AdminResult<()> {
        self.reach(scope, user, true).await?;
        self.accounts.revoke_all_sessions(user, scope.label).await?;
        Ok(())
    }

    // ------------------------------------------------------------------ invitations

    /// The organization `org_ref` if `scope` administers it (else `NotFound`), for a change
    /// (`write`) a credential allowed to write.
    pub async fn organization(&self, scope: &AdminScope<'_>, org_ref: &str, write: bool) -> AdminResult<Org> {
        let org = self.orgs.find(org_ref).await?.ok_or(AdminError::NotFound)?;
        if !scope.is_platform() && !self.administers(scope, org.id).await? {
            return Err(AdminError::NotFound);
        }
        if write && !scope.write {
            return Err(AdminError::Forbidden("this credential may only read"));
        }
        Ok(org)
    }

    /// The organization's invitations, newest first.
    pub async fn invitations(&self, scope: &AdminScope<'_>, org_ref: &str) -> AdminResult<(Org, Vec<Invitation>)> {
        let org = self.organization(scope, org_ref, false).await?;
        let mut list: Vec<Invitation> =
            self.accounts.invitations(10_000).await?.into_iter().filter(|i| i.org_id == Some(org.id)).collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok((org, list))
    }

    /// Invites `email` into the organization (mailed).
    pub async fn invite(
        &self,
        scope: &AdminScope<'_>,
        org_ref: &str,
        email: &str,
        role: OrgRole,
        lang: Lang,
    ) -> AdminResult<Invitation> {
        let org = self.organization(scope, org_ref, true).await?;
        let actor = if scope.org.is_some() { Actor::Platform } else { scope.actor };
        let (inv, _link) = self.orgs.invite(actor, &org.id.to_string(), email, role, lang).await?;
        Ok(inv)
    }

    /// One of the organization's invitations (another organization's is `NotFound`).
    async fn invitation_of(&self, org: &Org, id: uuid::Uuid) -> AdminResult<Option<Invitation>> {
        match self.accounts.stores.accounts.invitation(id).await? {
            Some(i) if i.org_id == Some(org.id) => Ok(Some(i)),
            Some(_) => Err(AdminError::NotFound),
            None => Ok(None),
        }
    }

    /// Revokes the invitation (`Ok` when there is no such invitation, or it is not pending).
    pub async fn revoke_invitation(&self, scope: &AdminScope<'_>, org_ref: &str, id: uuid::Uuid) -> AdminResult<()> {
        let org = self.organization(scope, org_ref, true).await?;
        if self.invitation_of(&org, id).await?.is_none() {
            return Ok(());
        }
        if self.accounts.revoke_invitation(id).await? {
            let subject = format!("org:{}", org.id);
            self.audit("org.invitation_revoked", subject, scope, Some(org.id)).await;
        }
        Ok(())
    }

    /// Sends a pending invitation again, with a new link (the old one dies).
    pub async fn resend_invitation(
        &self,
        scope: &AdminScope<'_>,
        org_ref: &str,
        id: uuid::Uuid,
        lang: Lang,
    ) -> AdminResult<Invitation> {
        let org = self.organization(scope, org_ref, true).await?;
        let inv = self.invitation_of(&org, id).await?.ok_or(AdminError::NotFound)?;
        if inv.accepted_at.is_some() || inv.revoked_at.is_some() {
            return Err(AdminError::NotPending);
        }
        let (inv, _link) = self.accounts.resend_invitation(id, lang).await.map_err(|e| match e {
            AccountError::TokenInvalid => AdminError::NotPending,
            other => other.into(),
        })?;
        self.audit("org.invitation_resent", format!("org:{}", org.id), scope, Some(org.id)).await;
        Ok(inv)
    }
}
