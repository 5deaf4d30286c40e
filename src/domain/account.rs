//! Account lifecycle: the single-use links and codes sent to people, invitations, the outbox
//! of messages, and the changes to an account that must happen together (one transaction).
//!
//! # Every single-use token kind, in one place
//!
//! | kind | sent as | lifetime | bound to |
//! |---|---|---|---|
//! | [`TokenKind::EmailVerification`] | link | 24 h | the new account |
//! | [`TokenKind::PasswordReset`] | link | 1 h | the account |
//! | [`TokenKind::Invitation`] | link | 7 days (`accounts.invitation_ttl_secs`) | an invitation (table `invitations`) |
//! | [`TokenKind::Activation`] | link | 7 days | an account created by an operator |
//! | [`TokenKind::LoginLink`] | link | 15 min | the account and the browser that asked |
//! | [`TokenKind::EmailChangeCurrent`] | 6-digit code | 15 min | the account and the new address |
//! | [`TokenKind::EmailChangeNew`] | 6-digit code | 15 min | the account and the new address |
//! | [`TokenKind::PhoneCode`] | 6-digit code | 10 min | the account and the number |
//!
//! Links carry 256 random bits and are stored as their SHA-256 digest; codes are stored as an
//! HMAC-SHA256 (server secret) of kind, account and code, so a database dump does not reveal
//! them. Each is single use (consumed by one conditional statement: of two concurrent submits
//! exactly one wins), expires, and issuing one spends the previous live ones of the same kind
//! for the account. A code dies after [`CODE_MAX_ATTEMPTS`] wrong tries. Issuing is rate-limited
//! per account and per IP (`accounts.issue_per_hour`, `accounts.issue_per_ip_per_hour`).

use std::fmt;
use std::str::FromStr;

use super::{Email, UnixTime, UserId, UserStatus};

/// Wrong tries a code survives.
pub const CODE_MAX_ATTEMPTS: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    EmailVerification,
    PasswordReset,
    Invitation,
    Activation,
    LoginLink,
    EmailChangeCurrent,
    EmailChangeNew,
    PhoneCode,
}

impl TokenKind {
    pub const ALL: [TokenKind; 8] = [
        TokenKind::EmailVerification,
        TokenKind::PasswordReset,
        TokenKind::Invitation,
        TokenKind::Activation,
        TokenKind::LoginLink,
        TokenKind::EmailChangeCurrent,
        TokenKind::EmailChangeNew,
        TokenKind::PhoneCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::EmailVerification => "email_verification",
            TokenKind::PasswordReset => "password_reset",
            TokenKind::Invitation => "invitation",
            TokenKind::Activation => "activation",
            TokenKind::LoginLink => "login_link",
            TokenKind::EmailChangeCurrent => "email_change_current",
            TokenKind::EmailChangeNew => "email_change_new",
            TokenKind::PhoneCode => "phone_code",
        }
    }

    /// Default lifetime, seconds.
    pub fn lifetime_secs(self) -> i64 {
        match self {
            TokenKind::EmailVerification => 24 * 3600,
            TokenKind::PasswordReset => 3600,
            TokenKind::Invitation | TokenKind::Activation => 7 * 24 * 3600,
            TokenKind::LoginLink | TokenKind::EmailChangeCurrent | TokenKind::EmailChangeNew => 15 * 60,
            TokenKind::PhoneCode => 10 * 60,
        }
    }

    /// A 6-digit code typed by the person (else a link).
    pub fn is_code(self) -> bool {
        matches!(self, TokenKind::EmailChangeCurrent | TokenKind::EmailChangeNew | TokenKind::PhoneCode)
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown token kind {s:?}"))
    }
}

/// A link or code about to be stored (its digest only).
#[derive(Debug, Clone)]
pub struct NewAccountToken {
    pub digest: String,
    pub kind: TokenKind,
    pub user_id: Option<UserId>,
    /// The address it was sent to, when that is not the account's (email change).
    pub email: Option<String>,
    /// What the token carries (browser binding, new address, phone number, return path).
    pub data: serde_json::Value,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone)]
pub struct AccountToken {
    pub digest: String,
    pub kind: TokenKind,
    pub user_id: Option<UserId>,
    pub email: Option<String>,
    pub data: serde_json::Value,
    pub attempts: i64,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

impl AccountToken {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.used_at.is_none() && now < self.expires_at && self.attempts < CODE_MAX_ATTEMPTS
    }

    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(|v| v.as_str())
    }
}

/// An invitation to join (and, with an organization or resource, to see something).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: Option<String>,
    /// The organization's name when the invitation was sent (for display).
    pub org: Option<String>,
    /// The organization the invitee joins on accepting, with this org role.
    pub org_id: Option<super::OrgId>,
    pub org_role: Option<super::org::OrgRole>,
    pub resource: Option<String>,
    pub invited_by: Option<UserId>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub accepted_at: Option<UnixTime>,
    pub accepted_by: Option<UserId>,
    pub revoked_at: Option<UnixTime>,
}

impl Invitation {
    pub fn status(&self, now: UnixTime) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.accepted_at.is_some() {
            "accepted"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "pending"
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: uuid::Uuid,
    pub email: Email,
    pub name: Option<String>,
    pub org: Option<String>,
    pub org_id: Option<super::OrgId>,
    pub org_role: Option<super::org::OrgRole>,
    pub resource: Option<String>,
    pub invited_by: Option<UserId>,
    pub token_digest: String,
    pub expires_at: UnixTime,
}

/// A message for the outbox worker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OutboxMessage {
    Mail(MailMessage),
    Sms(SmsMessage),
    Webhook(Box<super::webhook::WebhookJob>),
    /// A Back-Channel Logout 1.0 notice to one client for one ended session.
    BackchannelLogout(BackchannelLogoutJob),
    /// Checks a claimed domain's TXT record until it is verified (or given up).
    DomainCheck(DomainCheckJob),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DomainCheckJob {
    pub org: super::OrgId,
    pub domain: String,
    /// When the claim was made (unix seconds): checks stop a week later.
    pub claimed_at: i64,
}

/// What a logout token says, fixed when the session ends: every attempt sends a token with
/// the same `jti`, so a relying party that got it twice can tell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackchannelLogoutJob {
    pub client_id: String,
    pub sid: String,
    pub sub: Option<String>,
    pub jti: String,
}

impl OutboxMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            OutboxMessage::Mail(_) => "mail",
            OutboxMessage::Sms(_) => "sms",
            OutboxMessage::Webhook(_) => "webhook",
            OutboxMessage::BackchannelLogout(_) => "backchannel_logout",
            OutboxMessage::DomainCheck(_) => "domain_check",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailMessage {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `en` or `fr`: the Content-Language of the message.
    pub lang: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmsMessage {
    pub to: String,
    pub body: String,
}

/// An outbox row claimed by a worker.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub message: OutboxMessage,
    pub attempts: i64,
}

/// An entry of the audit log. After the deletion of an account, its subject and actor are a
/// pseudonym and its IP and user agent are gone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEvent {
    pub at: UnixTime,
    pub action: String,
    pub subject: String,
    pub actor: Option<String>,
    pub detail: Option<String>,
    /// The client's address of the request that caused it (none for jobs and the CLI).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The organization the change concerns.
    pub org: Option<super::OrgId>,
    pub outcome: AuditOutcome,
}

/// How the audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// It was done.
    #[default]
    Success,
    /// It was tried and failed (a wrong password, a refused assertion).
    Failure,
    /// It was refused for want of a right.
    Denied,
}

impl AuditOutcome {
    pub const ALL: [AuditOutcome; 3] = [AuditOutcome::Success, AuditOutcome::Failure, AuditOutcome::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Denied => "denied",
        }
    }

    /// The obvious outcome of an action by its name (`login.failed` failed), success else.
    pub fn of_action(action: &str) -> Self {
        if action.ends_with(".failed") || action.ends_with("_failed") {
            AuditOutcome::Failure
        } else if action.ends_with(".denied") || action.ends_with("_denied") {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Success
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditOutcome::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

/// What a search of the audit log asks for (every field narrows it), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub org: Option<super::OrgId>,
    /// One action (`org.member_added`), or every action starting with it when `action_prefix`.
    pub action: Option<String>,
    pub action_prefix: bool,
    /// Entries by any of these actors (empty: anyone).
    pub actors: Vec<String>,
    pub subject: Option<String>,
    pub outcome: Option<AuditOutcome>,
    /// From this time (included) until that one (excluded).
    pub from: Option<UnixTime>,
    pub until: Option<UnixTime>,
    /// Entries older than this one (a page's cursor: the last id seen).
    pub before: Option<i64>,
    pub limit: i64,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self {
            org: None,
            action: None,
            action_prefix: false,
            actors: Vec::new(),
            subject: None,
            outcome: None,
            from: None,
            until: None,
            before: None,
            limit: 50,
        }
    }
}

/// Where an audited change came from: the request being served (set by the web layer for the
/// whole request, read when the entry is written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A sign-in or failed sign-in, for the account's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoginEvent {
    pub at: UnixTime,
    pub success: bool,
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Profile fields a user edits.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

/// What is recorded at self-registration.
#[derive(Debug, Clone, Default)]
pub struct SignupConsents {
    pub terms_version: Option<String>,
    pub newsletter: bool,
}

/// One step of an account change. A list of them is applied in one transaction: all or none.
#[derive(Debug, Clone)]
pub enum AccountOp {
    /// Spends a live, unused token; the whole change fails with `Conflict{"token_spent"}` when
    /// it is used, expired or unknown (two concurrent submits: one wins).
    ConsumeToken {
        digest: String,
    },
    /// Stores a token after spending the live ones of the same kind for the same account.
    InsertToken(NewAccountToken),
    SetPassword {
        user: UserId,
        hash: String,
    },
    SetStatus {
        user: UserId,
        status: UserStatus,
    },
    SetEmailVerified {
        user: UserId,
    },
    /// `Conflict{"users_email"}` when the address belongs to another account.
    ChangeEmail {
        user: UserId,
        email: Email,
    },
    SetPhone {
        user: UserId,
        phone: Option<String>,
        verified: bool,
    },
    SetProfile {
        user: UserId,
        profile: ProfileUpdate,
    },
    /// Ends the user's open sign-in sessions (except `except`) and revokes their grants
    /// (non-offline ones; see `RevokeAllGrants`).
    EndSessions {
        user: UserId,
        except: Option<String>,
    },
    EndSession {
        user: UserId,
        sid: String,
    },
    /// Every grant of the user, offline ones included: all refresh tokens die.
    RevokeAllGrants {
        user: UserId,
    },
    AddResource {
        user: UserId,
        resource: String,
        invitation: Option<uuid::Uuid>,
    },
    /// Makes the user a member of the organization (an existing membership keeps its role).
    JoinOrg {
        org: super::OrgId,
        user: UserId,
        role: super::org::OrgRole,
    },
    /// Links an identity of a connection to the account (or records a new sign-in with it).
    LinkIdentity {
        connection: super::ConnectionId,
        subject: String,
        user: UserId,
        email: Option<String>,
    },
    /// Grants a role to a member (nothing when they hold it already).
    GrantRole {
        org: super::OrgId,
        user: UserId,
        role: super::RoleId,
    },
    RevokeRole {
        org: super::OrgId,
        user: UserId,
        role: super::RoleId,
    },
    /// Marks a pending invitation accepted; `Conflict{"token_spent"}` when it is not pending.
    AcceptInvitation {
        id: uuid::Uuid,
        user: UserId,
    },
    /// Deletes the account and, by cascade, everything attached to it.
    /// Its audit entries name `pseudonym` instead of the user, and lose their IP and user agent.
    DeleteUser {
        user: UserId,
        pseudonym: String,
    },
    Enqueue(OutboxMessage),
    /// A job not to run before this time.
    EnqueueAt(OutboxMessage, UnixTime),
    /// An organization's event (its webhooks' and its live stream's).
    OrgEvent(Box<super::webhook::WebhookEvent>),
    /// A new (unconfirmed) factor; the user's other unconfirmed factors of its kind go.
    AddFactor(super::mfa::Factor),
    /// Enrolment finished: the factor is usable.
    ConfirmFactor {
        user: UserId,
        id: uuid::Uuid,
    },
    RemoveFactor {
        user: UserId,
        id: uuid::Uuid,
    },
    /// A factor was used: its last use, and its new secret material when it changed (a
    /// WebAuthn credential's signature counter and backup state).
    TouchFactor {
        user: UserId,
        id: uuid::Uuid,
        secret_sealed: Option<String>,
    },
    RenameFactor {
        user: UserId,
        id: uuid::Uuid,
        name: String,
    },
    /// Every factor and recovery code of the user (operator reset).
    RemoveFactors {
        user: UserId,
    },
    /// Replaces the user's recovery codes (digests); an empty list removes them.
    SetRecoveryCodes {
        user: UserId,
        digests: Vec<String>,
    },
    /// An audit entry. The IP and user agent are the current request's (see `crate::audit`);
    /// `org: None` with an `org:<id>` subject is that organization.
    Audit {
        action: String,
        subject: String,
        actor: Option<String>,
        detail: Option<String>,
        org: Option<super::OrgId>,
        outcome: AuditOutcome,
    },
}
