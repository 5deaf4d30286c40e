//! The accounts service: every account use case (register, verify, invite, activate, reset,
//! sign in by emailed link, change password/email/phone, sessions, export, delete). Pages and
//! the CLI call it (the admin API will too); none of them touches a store for these.
//!
//! Changes that belong together are one list of [`AccountOp`] applied in one transaction,
//! mail included (the outbox), so an account is never half-written and a message is never
//! lost or sent for a change that did not happen. Single-use tokens: see
//! [`crate::domain::account`] for the kinds and lifetimes.

pub mod admin;
mod admin_stats;
pub mod claims;
mod console;
mod federated;
pub mod policy;
pub mod pow;
mod recovery;
mod signup;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use tokio::sync::Notify;

use crate::auth::{Amr, AuthError, AuthService, Authenticated};
use crate::config::{Registration, Settings};
use crate::crypto::{tokens, SecretString};
use crate::domain::account::{
    AccountOp, AccountToken, Invitation, LoginEvent, MailMessage, NewAccountToken, NewInvitation, OutboxMessage,
    ProfileUpdate, SignupConsents, SmsMessage, TokenKind,
};
use crate::domain::email::lookup_key;
use crate::domain::user::parse_display_name;
use crate::domain::{AuthSessionRecord, Clock, Email, Grant, NewUser, UnixTime, User, UserId, UserStatus};
use crate::i18n::Lang;
use crate::oidc::OidcProvider;
use crate::render::Templates;
use crate::store::ephemeral_keys::EphemeralKey;
use crate::store::{StoreError, Stores};

/// Why a use case did not go through. `Invalid` and `NotAllowed` carry a catalogue key (the
/// page shows it in the user's language).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The link or code is unknown, expired, used or revoked.
    #[error("link or code invalid, expired or used")]
    TokenInvalid,
    #[error("wrong code")]
    CodeWrong,
    #[error("too many requests")]
    Throttled,
    /// Needs a sign-in more recent than this.
    #[error("recent sign-in required")]
    Reauthenticate,
    #[error("the account does not exist")]
    NoAccount,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

pub type AccountResult<T> = Result<T, AccountError>;

/// The organization an invitation brings the invitee into.
#[derive(Debug, Clone)]
pub struct InviteOrg {
    pub id: crate::domain::OrgId,
    pub name: String,
    pub role: crate::domain::org::OrgRole,
}

/// The outcome of an invitation link.
pub enum InvitationOutcome {
    /// A new account was created and is signed in.
    Created(Box<Authenticated>),
    /// Attached to the signed-in account.
    Attached,
    /// The address has an account and this browser is not signed in to it.
    SignInFirst { email: String },
    /// Signed in as somebody else.
    OtherAccount { email: String },
}

/// Where the email change stands for an account.
pub enum EmailChangeStep {
    Start,
    /// A code went to the current address (for this new address).
    Current {
        new_email: String,
    },
    /// A code went to the new address.
    New {
        new_email: String,
    },
}

pub struct AccountService {
    stores: Stores,
    auth: Arc<AuthService>,
    templates: Arc<Templates>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    secret: [u8; 32],
    oidc: Arc<OidcProvider>,
    wake: Arc<Notify>,
    /// The organizations hear of sign-ins and failures (`login.succeeded`, `login.failed`).
    pub events: crate::domain::events::EventsCell,
}

fn code_digest(secret: &[u8; 32], kind: TokenKind, user: UserId, code: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(kind.as_str().as_bytes());
    mac.update(b"\0");
    mac.update(user.to_string().as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Mail content before rendering.
struct Mail<'a> {
    to: &'a str,
    name: Option<&'a str>,
    kind: &'static str,
    paragraphs: Vec<String>,
    action: Option<String>,
    code: Option<String>,
    expiry: Option<String>,
}

impl AccountService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stores: Stores,
        auth: Arc<AuthService>,
        templates: Arc<Templates>,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
        secret: [u8; 32],
        oidc: Arc<OidcProvider>,
        wake: Arc<Notify>,
    ) -> Self {
        Self { stores, auth, templates, settings, clock, secret, oidc, wake, events: Default::default() }
    }

    pub fn registration(&self) -> Registration {
        self.settings.registration()
    }

    fn issuer(&self) -> &str {
        self.settings.server.issuer.trim_end_matches('/')
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.issuer())
    }

    fn lang_of(&self, user: Option<&User>, fallback: Lang) -> Lang {
        user.and_then(|u| u.locale.as_deref()).and_then(Lang::parse).unwrap_or(fallback)
    }

    fn compose(&self, lang: Lang, m: Mail<'_>) -> AccountResult<OutboxMessage> {
        let t = &self.templates;
        let subject = t.t(lang, &format!("mail.{}.subject", m.kind)).to_owned();
        let greeting = match m.name {
            Some(n) => t.tf(lang, "mail.greeting", &[("name", n)]),
            None => t.t(lang, "mail.greeting_anonymous").to_owned(),
        };
        let action_text = t.t(lang, &format!("mail.{}.action", m.kind)).to_owned();
        let ctx = serde_json::json!({
            "subject": subject,
            "greeting": greeting,
            "paragraphs": m.paragraphs,
            "action_url": m.action,
            "action_text": action_text,
            "code": m.code,
            "expiry": m.expiry,
        });
        let render = |name: &str| t.mail(lang, name, &ctx).map_err(|e| AccountError::Internal(e.into()));
        Ok(OutboxMessage::Mail(MailMessage {
            to: m.to.to_owned(),
            subject,
            text: render("email/message.txt")?,
            html: render("email/message.html")?,
            lang: lang.code().to_owned(),
        }))
    }

    fn p(&self, lang: Lang, key: &str) -> String {
        self.templates.t(lang, key).to_owned()
    }

    fn pf(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        self.templates.tf(lang, key, args)
    }

    fn expiry_text(&self, lang: Lang, kind: TokenKind) -> String {
        let secs = kind.lifetime_secs();
        if kind.is_code() {
            self.pf(lang, "mail.expires_minutes", &[("n", &(secs / 60).to_string())])
        } else if secs < 3600 {
            self.pf(lang, "mail.expires_minutes_link", &[("n", &(secs / 60).to_string())])
        } else if secs <= 48 * 3600 {
            self.pf(lang, "mail.expires_hours", &[("n", &(secs / 3600).to_string())])
        } else {
            self.pf(lang, "mail.expires_days", &[("n", &(secs / 86400).to_string())])
        }
    }

    /// Messages are in the outbox: wake this node's worker.
    fn sent(&self) {
        self.wake.notify_one();
    }

    /// `ops`, then the back-channel logout notices of the sessions of `grants` (which `ops`
    /// end), to be applied in one transaction: a node dying after the change loses no notice.
    pub(crate) async fn with_logout_jobs(
        &self,
        grants: &[crate::domain::Grant],
        mut ops: Vec<AccountOp>,
    ) -> Vec<AccountOp> {
        ops.extend(self.oidc.logout_jobs(grants).await.into_iter().map(AccountOp::Enqueue));
        ops
    }

    /// Jobs were written to the outbox by another service: wake this node's worker.
    pub(crate) fn wake_outbox(&self) {
        self.wake.notify_one();
    }

    /// Counts one more link or code for `kind` to this account and from this IP; `false` when
    /// either is over its hourly allowance.
    async fn allow_issue(&self, kind: TokenKind, account: &str, ip: Option<IpAddr>) -> AccountResult<bool> {
        let hour = Duration::from_secs(3600);
        let acct = EphemeralKey::Issue { kind: kind.as_str(), subject: tokens::digest(account) }.to_string();
        let n = self.stores.ephemeral.incr(&acct, hour).await?;
        if n > self.settings.accounts.issue_per_hour {
            tracing::warn!(kind = kind.as_str(), "links/codes for one account over the hourly allowance");
            return Ok(false);
        }
        if let Some(ip) = ip {
            let k = EphemeralKey::Issue { kind: "ip", subject: ip.to_string() }.to_string();
            if self.stores.ephemeral.incr(&k, hour).await? > self.settings.accounts.issue_per_ip_per_hour {
                tracing::warn!(%ip, "links/codes from one IP over the hourly allowance");
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn new_link_token(
        &self,
        kind: TokenKind,
        user: Option<UserId>,
        data: serde_json::Value,
    ) -> (String, NewAccountToken) {
        let raw = tokens::random_token();
        let t = NewAccountToken {
            digest: tokens::digest(&raw),
            kind,
            user_id: user,
            email: None,
            data,
            expires_at: self.clock.now().plus_secs(kind.lifetime_secs()),
        };
        (raw, t)
    }

    fn new_code(
        &self,
        kind: TokenKind,
        user: UserId,
        email: Option<String>,
        data: serde_json::Value,
    ) -> (String, NewAccountToken) {
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let t = NewAccountToken {
            digest: code_digest(&self.secret, kind, user, &code),
            kind,
            user_id: Some(user),
            email,
            data,
            expires_at: self.clock.now().plus_secs(kind.lifetime_secs()),
        };
        (code, t)
    }

    /// A live link token of `kind` by its raw value.
    async fn live_token(&self, kind: TokenKind, raw: &str) -> AccountResult<AccountToken> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(AccountError::TokenInvalid);
        }
        match self.stores.accounts.token(&tokens::digest(raw)).await? {
            Some(t) if t.kind == kind && t.is_live(self.clock.now()) => Ok(t),
            _ => Err(AccountError::TokenInvalid),
        }
    }

    fn policy(&self, password: &SecretString, email: &str) -> AccountResult<()> {
        let p = &self.settings.password;
        policy::check(password.expose(), email, p.min_length, p.max_length).map_err(|e| AccountError::Invalid(e.key()))
    }

    async fn user(&self, id: UserId) -> AccountResult<User> {
        self.stores.users.user_by_id(id).await?.ok_or(AccountError::NoAccount)
    }

    pub async fn user_by_email(&self, email: &str) -> AccountResult<Option<User>> {
        let key = lookup_key(email);
        if key.is_empty() {
            return Ok(None);
        }
        Ok(self.stores.users.credentials_by_email(&key).await?.map(|c| c.user))
    }

    fn map_conflict(e: StoreError) -> AccountError {
        match e {
            StoreError::Conflict { constraint: "token_spent" } => AccountError::TokenInvalid,
            other => AccountError::Store(other),
        }
    }
}

/// IANA-like zone names (`Europe/Paris`, `America/Argentina/Buenos_Aires`, `UTC`).
pub fn valid_time_zone(tz: &str) -> bool {
    tz.len() <= 64
        && (tz == "UTC"
            || (tz.split('/').count() >= 2
                && tz.split('/').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
                })))
}

/// E.164: `+` and 8 to 15 digits (spaces, dots, dashes and brackets are dropped); a French
/// national number `0X XX XX XX XX` becomes `+33X...`.
pub fn parse_phone(raw: &str) -> Option<String> {
    let cleaned: String = raw.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')')).collect();
    let digits = if let Some(rest) = cleaned.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = cleaned.strip_prefix("00") {
        rest.to_owned()
    } else if cleaned.len() == 10 && cleaned.starts_with('0') {
        format!("33{}", &cleaned[1..])
    } else {
        return None;
    };
    if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0') {
        Some(format!("+{digits}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert_eq!(parse_phone("+33 6 12 34 56 78").as_deref(), Some("+33612345678"));
        assert_eq!(parse_phone("06.12.34.56.78").as_deref(), Some("+33612345678"));
        assert_eq!(parse_phone("0044 20 7946 0958").as_deref(), Some("+442079460958"));
        for bad in ["", "12345", "+0612", "+33 6 12 34 56 78 90 12 34", "+33abc"] {
            assert_eq!(parse_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn time_zones() {
        for ok in ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+2"] {
            assert!(valid_time_zone(ok), "{ok}");
        }
        for bad in ["", "Paris", "Europe/", "Europe/Par is", "../etc"] {
            assert!(!valid_time_zone(bad), "{bad}");
        }
    }
}
