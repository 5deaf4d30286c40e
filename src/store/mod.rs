//! Storage ports (traits) and their adapters.
//!
//! Durable data lives behind narrow traits ([`UserStore`], later `ClientStore`, `GrantStore`, ...)
//! implemented once per backend (SQLite, PostgreSQL). Short-lived data (sessions, one-time codes,
//! rate-limit counters, replay caches) lives behind [`EphemeralStore`], backed by the SQL database
//! by default and by Redis when `REDIS_URL` is set. Only `app.rs` knows which implementation is used.

pub mod db_pool;
pub mod ephemeral;
pub mod ephemeral_keys;
pub mod migrations;
pub mod redis_ephemeral;
#[macro_use]
pub mod sql;
pub mod sql_accounts;
pub mod sql_devkeys;
pub mod sql_federation;
pub mod sql_journal;
pub mod sql_mfa;
pub mod sql_oidc;
pub mod sql_orgs;
pub mod sql_stats;
pub mod sql_webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::account::{
    AccountOp, AccountToken, AuditEvent, Invitation, LoginEvent, NewInvitation, OutboxItem, OutboxMessage,
    SignupConsents, TokenKind,
};
use crate::domain::org::{Member, Membership, Org, OrgDomain, OrgRole, Role};
use crate::domain::{
    AuthCode, AuthSessionRecord, Client, ClientId, Grant, GrantId, NewAuthCode, NewRefresh, NewUser, OrgId,
    RefreshRecord, RoleId, UnixTime, User, UserId, UserStatus,
};

pub use ephemeral::EphemeralStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; `constraint` names the rule (e.g. `users_email`).
    #[error("conflict on {constraint}")]
    Conflict { constraint: &'static str },
    /// The backend could not be reached or failed. Never shown to clients.
    #[error("store unavailable: {0:#}")]
    Unavailable(#[source] anyhow::Error),
}

impl StoreError {
    pub fn unavailable(e: impl Into<anyhow::Error>) -> Self {
        StoreError::Unavailable(e.into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user plus the secret material needed to authenticate them. Kept apart from [`User`] so the
/// hash never travels into templates or JSON by accident.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials").field("user", &self.user).finish_non_exhaustive()
    }
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the account; `Conflict{constraint:"users_email"}` when the email is taken
    /// (case-insensitively, after NFC).
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Look-up by [`crate::domain::Email::lookup_key`].
    async fn credentials_by_email(&self, lookup_key: &str) -> StoreResult<Option<UserCredentials>>;
    async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<Vec<User>>;
    /// Users by id (after `after`), whose address or name contains `q` (case-insensitively),
    /// with this status: the admin API's search.
    async fn search_users(
        &self,
        q: Option<&str>,
        status: Option<UserStatus>,
        after: Option<UserId>,
        limit: i64,
    ) -> StoreResult<Vec<User>>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()>;
    async fn set_status(&self, id: UserId, status: UserStatus) -> StoreResult<()>;
}

/// Liveness of a backing service, for `/readyz`.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}

/// Every store the application uses, chosen once in `app.rs`.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub clients: Arc<dyn ClientStore>,
    pub consents: Arc<dyn ConsentStore>,
    pub grants: Arc<dyn GrantStore>,
    pub auth_sessions: Arc<dyn AuthSessionStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub journal: Arc<dyn JournalStore>,
    pub mfa: Arc<dyn MfaStore>,
    pub orgs: Arc<dyn OrgStore>,
    pub federation: Arc<dyn FederationStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub devkeys: Arc<dyn DevKeyStore>,
    pub stats: Arc<dyn StatsStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub durable_health: Arc<dyn Health>,
    pub backend: &'static str,
    pub ephemeral_backend: &'static str,
}

/// Default timeout for acquiring a pooled connection: a dead database must fail readiness
/// quickly, not hang requests.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Registered OAuth clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(&self, c: &Client) -> StoreResult<()>;
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>>;
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes the client and, by cascade, its grants, codes, refresh tokens and consents.
    async fn delete_client(&self, id: &ClientId) -> StoreResult<()>;
    async fn set_client_secret_digest(&self, id: &ClientId, digest: &str) -> StoreResult<()>;
    /// Replaces a client's metadata (everything but its id, secret, owner and creation time).
    async fn update_client(&self, c: &Client) -> StoreResult<()>;
}

/// Remembered consent decisions (revocable by the user).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn consent(&self, user: UserId, client: &ClientId) -> StoreResult<Option<String>>;
    async fn save_consent(&self, user: UserId, client: &ClientId, scope: &str) -> StoreResult<()>;
    /// (client, scope, granted_at) for each client the user consented to.
    async fn consents_of(&self, user: UserId) -> StoreResult<Vec<(Client, String, UnixTime)>>;
    async fn delete_consent(&self, user: UserId, client: &ClientId) -> StoreResult<()>;
}

/// Outcome of presenting a single-use artefact (code or refresh token).
#[derive(Debug)]
pub enum Consumed<T> {
    /// First use: here is what it was bound to.
    Fresh(T),
    /// Presented again: a replay. The grant it belongs to should be revoked.
    Replayed(GrantId),
    NotFound,
}

/// Grants, authorization codes and refresh tokens. Consuming operations are atomic: a single
/// statement, or one transaction when a successor is stored with it (STYLE habit 6). A call that
/// fails leaves what was presented usable, so a client may retry after a 503.
#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(&self, g: &Grant) -> StoreResult<()>;
    async fn grant(&self, id: GrantId) -> StoreResult<Option<Grant>>;
    async fn revoke_grant(&self, id: GrantId, now: UnixTime) -> StoreResult<()>;
    /// Revokes the session's grants (`offline` ones too when `include_offline`); returns them.
    async fn revoke_session_grants(&self, sid: &str, include_offline: bool, now: UnixTime) -> StoreResult<Vec<Grant>>;
    /// Grants (active or not) that took part in a session: the clients to notify at logout.
    async fn session_grants(&self, sid: &str) -> StoreResult<Vec<Grant>>;
    async fn revoke_user_client_grants(&self, user: UserId, client: &ClientId, now: UnixTime) -> StoreResult<()>;
    async fn insert_code(&self, c: &NewAuthCode) -> StoreResult<()>;
    /// The code and whether it was consumed already, without consuming it.
    async fn code(&self, code_hash: &str) -> StoreResult<Option<(AuthCode, bool)>>;
    /// In one transaction: marks the code consumed and stores the first refresh token, if any.
    /// `Replayed` when it was consumed already (nothing is stored then).
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: UnixTime,
        refresh: Option<&NewRefresh>,
    ) -> StoreResult<Consumed<AuthCode>>;
    async fn insert_refresh(&self, r: &NewRefresh) -> StoreResult<()>;
    /// Atomically (one statement): marks the refresh token used and stores its successor.
    /// `Replayed` when it was used already, `NotFound` when it is unknown or expired (nothing is
    /// stored then).
    async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: UnixTime,
        successor: &NewRefresh,
    ) -> StoreResult<Consumed<()>>;
    /// A rotation retried (its answer was lost): in one transaction, retires the unused token
    /// that replaced `token_hash` and stores `successor` in its place. `Replayed` when the
    /// replacement was used already (a real reuse: nothing is stored).
    async fn retry_rotation(
        &self,
        token_hash: &str,
        now: UnixTime,
        successor: &NewRefresh,
    ) -> StoreResult<Consumed<()>>;
    async fn refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshRecord>>;
    /// A refresh token, its grant and the grant's user, in one round trip (None when the token
    /// or its grant is missing; the user is None when the grant has none or it is gone).
    async fn refresh_grant(&self, token_hash: &str) -> StoreResult<Option<(RefreshRecord, Grant, Option<User>)>>;
    /// Records an access token's revocation (by the digest of its `jti`) until it expires.
    async fn revoke_access_token(&self, jti_hash: &str, expires_at: UnixTime) -> StoreResult<()>;
    async fn access_token_revoked(&self, jti_hash: &str) -> StoreResult<bool>;
    /// What an access token needs checked, in one round trip: whether its `jti` was revoked,
    /// and its grant (None when the grant does not exist).
    async fn access_token_grant(&self, jti_hash: &str, grant: GrantId) -> StoreResult<(bool, Option<Grant>)>;
    /// `access_token_grant` with the grant's user (None when the grant has none or it is gone),
    /// in the same round trip: what userinfo needs.
    async fn access_token_grant_user(
        &self,
        jti_hash: &str,
        grant: GrantId,
    ) -> StoreResult<(bool, Option<(Grant, Option<User>)>)>;
    /// Deletes expired codes, long-dead grants and expired revocations; returns how many rows went.
    async fn purge_grants(&self, now: UnixTime) -> StoreResult<u64>;
}

/// Sign-in sessions (OIDC `sid`), durable: the per-user index and the record of how each ended.
#[async_trait]
pub trait AuthSessionStore: Send + Sync {
    async fn open_session(&self, s: &AuthSessionRecord) -> StoreResult<()>;
    async fn auth_session(&self, sid: &str) -> StoreResult<Option<AuthSessionRecord>>;
    /// A new sign-in of the same user in the same session: new auth_time, lifetimes and
    /// authentication facts (a step-up raises `acr`).
    async fn reauthenticated(
        &self,
        sid: &str,
        auth_time: UnixTime,
        idle_expires_at: UnixTime,
        expires_at: UnixTime,
        amr: &[String],
        acr: Option<&str>,
    ) -> StoreResult<()>;
    /// Activity: pushes the idle deadline.
    async fn touch_session(&self, sid: &str, now: UnixTime, idle_expires_at: UnixTime) -> StoreResult<()>;
    /// Marks the session ended; `true` for the call that ended it.
    async fn end_auth_session(&self, sid: &str, now: UnixTime) -> StoreResult<bool>;
    /// Open sessions past their idle or absolute deadline (at most `limit`).
    async fn lapsed_sessions(&self, now: UnixTime, limit: i64) -> StoreResult<Vec<String>>;
    /// The user's sessions, newest first.
    async fn sessions_of(&self, user: UserId) -> StoreResult<Vec<AuthSessionRecord>>;
}

/// Account lifecycle: single-use tokens and codes, invitations, resources, sign-in history and
/// the durable outbox. Changes that must happen together are lists of [`AccountOp`] applied in
/// one transaction.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// In one transaction: the account (with this id and its sign-up consents), then `ops`.
    /// `Conflict{constraint:"users_email"}` when the address is taken.
    async fn create_account(
        &self,
        id: UserId,
        new: NewUser,
        consents: &SignupConsents,
        ops: Vec<AccountOp>,
    ) -> StoreResult<User>;
    /// Applies every step in one transaction, or none (the first failing step's error).
    async fn apply(&self, ops: Vec<AccountOp>) -> StoreResult<()>;
    /// A token by digest, whatever its state.
    async fn token(&self, digest: &str) -> StoreResult<Option<AccountToken>>;
    /// The newest live code of `kind` for the account.
    async fn live_code(&self, user: UserId, kind: TokenKind, now: UnixTime) -> StoreResult<Option<AccountToken>>;
    /// Counts a wrong code against the live code of `kind`; returns the attempts so far.
    async fn code_failed(&self, user: UserId, kind: TokenKind, now: UnixTime) -> StoreResult<i64>;
    /// In one transaction: the invitation, then `ops` (its mail).
    async fn create_invitation(&self, inv: &NewInvitation, ops: Vec<AccountOp>) -> StoreResult<()>;
    async fn invitation(&self, id: uuid::Uuid) -> StoreResult<Option<Invitation>>;
    async fn invitation_by_token(&self, digest: &str) -> StoreResult<Option<Invitation>>;
    async fn list_invitations(&self, limit: i64) -> StoreResult<Vec<Invitation>>;
    /// Invitations sent to an address (by lookup key).
    async fn invitations_for(&self, email_lookup: &str) -> StoreResult<Vec<Invitation>>;
    /// `true` when a pending invitation was revoked by this call.
    async fn revoke_invitation(&self, id: uuid::Uuid, now: UnixTime) -> StoreResult<bool>;
    /// A new link for a pending invitation (the old one dies), then `ops`, in one transaction.
    /// `NotFound` when the invitation is not pending.
    async fn reissue_invitation(
        &self,
        id: uuid::Uuid,
        token_digest: &str,
        expires_at: UnixTime,
        ops: Vec<AccountOp>,
    ) -> StoreResult<()>;
    async fn resources_of(&self, user: UserId) -> StoreResult<Vec<String>>;
    async fn record_login(&self, user: UserId, event: &LoginEvent) -> StoreResult<()>;
    /// The newest sign-ins and failures first.
    async fn login_history(&self, user: UserId, limit: i64) -> StoreResult<Vec<LoginEvent>>;
    /// Deletes spent tokens, sent messages older than a day and sign-in history older than 90
    /// days; returns how many rows went.
    async fn purge_accounts(&self, now: UnixTime) -> StoreResult<u64>;
}

/// The journal: the durable outbox (mail, webhooks and other jobs, written by
/// [`AccountStore::apply`] in the transaction of the change that causes them) and the audit log.
#[async_trait]
pub trait JournalStore: Send + Sync {
    async fn enqueue(&self, messages: &[OutboxMessage]) -> StoreResult<()>;
    /// Claims due messages for `lease_secs` (a claim that is not settled in time is retried).
    async fn claim_outbox(&self, now: UnixTime, lease_secs: i64, limit: i64) -> StoreResult<Vec<OutboxItem>>;
    async fn outbox_sent(&self, id: i64, now: UnixTime) -> StoreResult<()>;
    async fn outbox_failed(&self, id: i64, error: &str, next_attempt_at: UnixTime) -> StoreResult<()>;
    /// Messages not sent yet (for operators and tests).
    async fn outbox_pending(&self) -> StoreResult<i64>;
    /// The newest audit entries first.
    async fn audit_events(&self, limit: i64) -> StoreResult<Vec<AuditEvent>>;
    /// A subject's audit entries (e.g. `org:<id>`), newest first, before entry `before` (an id),
    /// optionally of one action: (id, entry).
    async fn audit_of(
        &self,
        subject: &str,
        action: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<(i64, AuditEvent)>>;
    /// The entries the filter finds, newest first: (id, entry).
    async fn search_audit(&self, filter: &crate::domain::account::AuditFilter) -> StoreResult<Vec<(i64, AuditEvent)>>;
    /// Removes the entries written before `before` (the retention): how many went.
    async fn purge_audit(&self, before: UnixTime) -> StoreResult<u64>;
}

/// Second factors: reads and the single-statement checks (changes go through
/// [`AccountStore::apply`]).
#[async_trait]
pub trait MfaStore: Send + Sync {
    async fn factors_of(&self, user: UserId) -> StoreResult<Vec<crate::domain::mfa::Factor>>;
    /// Accepts TOTP time step `step` for the factor unless it (or a later one) was accepted
    /// before: `true` for the call that accepts it (one statement: two nodes cannot both).
    async fn accept_totp_step(&self, id: uuid::Uuid, step: i64, now: UnixTime) -> StoreResult<bool>;
    /// Spends a recovery code: `true` for the call that spends it.
    async fn use_recovery_code(&self, user: UserId, digest: &str, now: UnixTime) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, user: UserId) -> StoreResult<i64>;
}

/// Organizations, members, RBAC and domains. Changes that must go together (removing a member
/// and revoking their grants for the organization) are one transaction.
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// `Conflict{"orgs_slug"}` when the slug is taken. With `owner`, that user is its first
    /// owner, in the same transaction.
    async fn create_org(&self, org: &Org, owner: Option<UserId>) -> StoreResult<()>;
    async fn org(&self, id: OrgId) -> StoreResult<Option<Org>>;
    async fn org_by_slug(&self, slug: &str) -> StoreResult<Option<Org>>;
    async fn list_orgs(&self, limit: i64) -> StoreResult<Vec<Org>>;
    /// Name, slug and settings (not the logo). `Conflict{"orgs_slug"}` when the slug is taken.
    async fn update_org(&self, org: &Org) -> StoreResult<()>;
    /// Sets (or with None removes) the logo: bytes, media type, digest.
    async fn set_logo(&self, id: OrgId, logo: Option<(&[u8], &str, &str)>, now: UnixTime) -> StoreResult<()>;
    /// The logo's bytes and media type.
    async fn logo(&self, id: OrgId) -> StoreResult<Option<(Vec<u8>, String)>>;
    /// Deletes the organization, its memberships, roles, domains and grants (members' accounts
    /// remain). `Conflict{"clients_org"}` while clients are bound to it.
    async fn delete_org(&self, id: OrgId) -> StoreResult<()>;

    /// Adds the member or changes their org role.
    async fn set_member(&self, org: OrgId, user: UserId, role: OrgRole, now: UnixTime) -> StoreResult<()>;
    /// In one transaction: the membership, its roles, and the user's grants for the organization
    /// (their refresh tokens die). `true` when there was a membership.
    async fn remove_member(&self, org: OrgId, user: UserId, now: UnixTime) -> StoreResult<bool>;
    async fn membership(&self, org: OrgId, user: UserId) -> StoreResult<Option<OrgRole>>;
    async fn memberships_of(&self, user: UserId) -> StoreResult<Vec<Membership>>;
    /// Members with their roles, by email.
    async fn members(&self, org: OrgId) -> StoreResult<Vec<Member>>;
    async fn member(&self, org: OrgId, user: UserId) -> StoreResult<Option<Member>>;

    /// Declares permissions of a client (existing ones are kept).
    async fn add_permissions(&self, client: &ClientId, names: &[String], now: UnixTime) -> StoreResult<()>;
    /// Removes a permission from the client and from every role holding it.
    async fn remove_permission(&self, client: &ClientId, name: &str) -> StoreResult<bool>;
    async fn permissions(&self, client: &ClientId) -> StoreResult<Vec<String>>;
    /// Clients with at least one permission declared (those roles can be made for).
    async fn clients_with_permissions(&self) -> StoreResult<Vec<ClientId>>;

    /// The role and its permissions, in one transaction. `Conflict{"roles_name"}` when the client
    /// has a role of that name in that scope; `Conflict{"role_permissions"}` when a permission is
    /// not declared by the client.
    async fn create_role(&self, role: &Role) -> StoreResult<()>;
    /// Replaces the role's permissions (same conflicts as `create_role`).
    async fn set_role_permissions(&self, role: RoleId, client: &ClientId, permissions: &[String]) -> StoreResult<()>;
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>>;
    /// Roles grantable in `org` (the operator's and the organization's own); None: every role.
    async fn roles(&self, org: Option<OrgId>) -> StoreResult<Vec<Role>>;
    async fn delete_role(&self, id: RoleId) -> StoreResult<bool>;
    /// `NotFound` when the user is not a member.
    async fn grant_role(&self, org: OrgId, user: UserId, role: RoleId, now: UnixTime) -> StoreResult<()>;
    async fn revoke_role(&self, org: OrgId, user: UserId, role: RoleId) -> StoreResult<bool>;
    /// The member's roles for one client, with their permissions (for tokens).
    async fn member_roles(&self, org: OrgId, user: UserId, client: &ClientId) -> StoreResult<Vec<Role>>;

    /// `Conflict{"org_domains"}` when the organization claimed it already.
    /// The claim, then `then` (its check job, its audit entry), in one transaction.
    async fn add_domain(&self, d: &OrgDomain, then: Vec<crate::domain::account::AccountOp>) -> StoreResult<()>;
    async fn domains(&self, org: OrgId) -> StoreResult<Vec<OrgDomain>>;
    async fn domain(&self, org: OrgId, domain: &str) -> StoreResult<Option<OrgDomain>>;
    /// The organization that verified `domain`, if any.
    async fn verified_owner(&self, domain: &str) -> StoreResult<Option<Org>>;
    /// Records a check: verified (`Conflict{"org_domains_verified"}` when another organization
    /// verified it first) or failed with a reason.
    async fn domain_checked(
        &self,
        org: OrgId,
        domain: &str,
        verified: bool,
        error: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<()>;
    async fn remove_domain(&self, org: OrgId, domain: &str) -> StoreResult<bool>;
}

/// Connections to organizations' identity providers and the identities linked to accounts
/// (links are written with the account change they belong to: [`AccountOp::LinkIdentity`]).
#[async_trait]
pub trait FederationStore: Send + Sync {
    /// The connection and its organizations, in one transaction.
    async fn create_connection(&self, c: &crate::domain::federation::Connection) -> StoreResult<()>;
    async fn connection(
        &self,
        id: crate::domain::ConnectionId,
    ) -> StoreResult<Option<crate::domain::federation::Connection>>;
    async fn connections(&self) -> StoreResult<Vec<crate::domain::federation::Connection>>;
    /// The connections serving an organization.
    async fn connections_of(&self, org: OrgId) -> StoreResult<Vec<crate::domain::federation::Connection>>;
    async fn delete_connection(&self, id: crate::domain::ConnectionId) -> StoreResult<bool>;
    /// Replaces the connection's name and settings.
    async fn update_connection(&self, c: &crate::domain::federation::Connection) -> StoreResult<()>;
    /// `NotFound` when the connection or the organization does not exist.
    async fn associate(&self, id: crate::domain::ConnectionId, org: OrgId) -> StoreResult<()>;
    async fn dissociate(&self, id: crate::domain::ConnectionId, org: OrgId) -> StoreResult<bool>;
    async fn identity(
        &self,
        id: crate::domain::ConnectionId,
        subject: &str,
    ) -> StoreResult<Option<crate::domain::federation::IdentityLink>>;
    async fn identities_of(&self, user: UserId) -> StoreResult<Vec<crate::domain::federation::IdentityLink>>;
}

/// Organizations' webhooks and their delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// `NotFound` when the organization does not exist.
    async fn create_webhook(&self, w: &crate::domain::webhook::Webhook) -> StoreResult<()>;
    async fn webhook(&self, id: crate::domain::WebhookId) -> StoreResult<Option<crate::domain::webhook::Webhook>>;
    async fn webhooks_of(&self, org: OrgId) -> StoreResult<Vec<crate::domain::webhook::Webhook>>;
    /// Replaces the URL, the events and the secrets.
    async fn update_webhook(&self, w: &crate::domain::webhook::Webhook) -> StoreResult<()>;
    async fn delete_webhook(&self, id: crate::domain::WebhookId) -> StoreResult<bool>;
    /// Logs an attempt; returns its id.
    async fn record_delivery(&self, d: &crate::domain::webhook::DeliveryAttempt) -> StoreResult<i64>;
    /// The latest attempts of a webhook, newest first.
    async fn deliveries(
        &self,
        webhook: crate::domain::WebhookId,
        limit: i64,
    ) -> StoreResult<Vec<crate::domain::webhook::DeliveryAttempt>>;
    async fn delivery(&self, id: i64) -> StoreResult<Option<crate::domain::webhook::DeliveryAttempt>>;
    /// The organization's events after `after` (a `seq`), oldest first: (seq, event JSON).
    async fn org_events_after(&self, org: OrgId, after: i64, limit: i64) -> StoreResult<Vec<(i64, String)>>;
    /// The latest `seq` of the organization's events (0 when none).
    async fn last_org_event(&self, org: OrgId) -> StoreResult<i64>;
    /// Drops events older than `before`; returns how many.
    async fn purge_org_events(&self, before: UnixTime) -> StoreResult<u64>;
}

/// Developer keys (their secrets as digests).
#[async_trait]
pub trait DevKeyStore: Send + Sync {
    /// `NotFound` when the organization does not exist.
    async fn create_devkey(&self, k: &crate::domain::devkey::DevKey) -> StoreResult<()>;
    async fn devkey(&self, id: &str) -> StoreResult<Option<crate::domain::devkey::DevKey>>;
    async fn devkeys_of(&self, org: OrgId) -> StoreResult<Vec<crate::domain::devkey::DevKey>>;
    /// A user's own keys.
    async fn devkeys_of_user(&self, user: UserId) -> StoreResult<Vec<crate::domain::devkey::DevKey>>;
    async fn delete_devkey(&self, id: &str) -> StoreResult<bool>;
    /// Replaces the secret's digest (the old secret stops working at once).
    async fn set_devkey_secret(&self, id: &str, digest: &str) -> StoreResult<bool>;
    async fn devkey_used(&self, id: &str, at: UnixTime) -> StoreResult<()>;
}

/// What the platform admin console reads that no use case writes: tallies for its dashboard
/// and its account search (read-only; `sql_stats.rs`).
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Sign-ins and failures recorded in the accounts' history (`login_events`) per UTC day,
    /// from `since` (the start of a day) on, oldest first; days without any are left out.
    async fn login_days(&self, since: UnixTime) -> StoreResult<Vec<LoginDay>>;
    /// How many accounts of each status, organizations, clients and connections there are.
    async fn totals(&self) -> StoreResult<Totals>;
    /// The accounts whose address or name contains `query` (case-insensitively; all when it is
    /// empty), of `status` when given, by address: `limit` of them from `offset`, and how many
    /// match in all.
    async fn find_users(
        &self,
        query: &str,
        status: Option<UserStatus>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;
}

/// One UTC day of sign-ins: its start, how many succeeded and how many failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginDay {
    pub day: UnixTime,
    pub succeeded: i64,
    pub failed: i64,
}

/// Counts for the admin dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Accounts per status (statuses without any left out).
    pub users: Vec<(UserStatus, i64)>,
    pub orgs: i64,
    pub clients: i64,
    pub connections: i64,
}

/// `Pool::begin`, safe to cancel. sqlx 0.8's is not: a future dropped while its `BEGIN` is in
/// flight (a client that hung up, a request deadline) hands the connection back to the pool
/// inside a transaction, and the next request on it fails or writes into that transaction
/// (launchbadge/sqlx#4393; seen by `benches/scale.sh` as a foreign-key violation after wrk
/// stopped mid-request). The `BEGIN` runs in a task of its own: if the caller is gone by then,
/// the transaction is dropped there, which rolls it back.
pub(crate) async fn begin<DB: sqlx::Database>(
    pool: &db_pool::DbPool<DB>,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    let pool = pool.pool.clone();
    tokio::spawn(async move { pool.begin().await })
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("the task opening a transaction failed: {e}")))?
}
