//! The accounts service: every account use case (register, verify, invite, activate, reset,
//! sign in by emailed link, change password/email/phone, sessions, export, delete). Pages and
//! the CLI call it (the admin API will too); none of them touches a store for these.
//!
//! Changes that belong together are one list of [`AccountOp`] applied in one transaction,
//! mail included (the outbox), so an account is never half-written and a message is never
//! lost or sent for a change that did not happen. Single-use tokens: see
//! [`crate::domain::account`] for the kinds and lifetimes.

pub mod claims;
pub mod policy;
pub mod pow;

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
use crate::store::ephemeral_keys::EphemeralKey;
use crate::store::{StoreError, Stores};
use crate::web::templates::Templates;

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
        Self { stores, auth, templates, settings, clock, secret, oidc, wake }
    }

    pub fn registration(&self) -> Registration {
        self.settings.accounts.registration
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

    // ------------------------------------------------------------------ registration

    /// Self-registration. The answer is the same whether or not the address has an account:
    /// a new address gets a confirmation link, an existing one a "someone tried" notice.
    #[allow(clippy::too_many_arguments)]
    pub async fn register(
        &self,
        email: &str,
        password: &SecretString,
        name: &str,
        accept_terms: bool,
        newsletter: bool,
        lang: Lang,
        ip: IpAddr,
    ) -> AccountResult<()> {
        match self.registration() {
            Registration::Open => {}
            Registration::InviteOnly => return Err(AccountError::NotAllowed("register.invite_only")),
            Registration::Closed => return Err(AccountError::NotAllowed("register.closed")),
        }
        let email = Email::parse(email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let name = parse_display_name(name).map_err(|_| AccountError::Invalid("register.name_invalid"))?;
        if !accept_terms {
            return Err(AccountError::Invalid("register.terms_required"));
        }
        self.policy(password, email.as_str())?;
        // Hashing first, for everyone: the answer takes as long for a known address.
        let hash = self.auth.hash_password(password).await?;
        if !self.allow_issue(TokenKind::EmailVerification, &email.lookup_key(), Some(ip)).await? {
            return Ok(());
        }
        if let Some(existing) = self.user_by_email(email.as_str()).await? {
            let lang = self.lang_of(Some(&existing), lang);
            let (raw, reset) = self.new_link_token(TokenKind::PasswordReset, Some(existing.id), serde_json::json!({}));
            let mail = self.compose(
                lang,
                Mail {
                    to: existing.email.as_str(),
                    name: existing.name.as_deref(),
                    kind: "already_registered",
                    paragraphs: vec![
                        self.p(lang, "mail.already_registered.body"),
                        self.p(lang, "mail.already_registered.hint"),
                    ],
                    action: Some(self.link("/password/reset/confirm", &raw)),
                    code: None,
                    expiry: Some(self.expiry_text(lang, TokenKind::PasswordReset)),
                },
            )?;
            self.stores.accounts.apply(vec![AccountOp::InsertToken(reset), AccountOp::Enqueue(mail)]).await?;
            self.sent();
            tracing::info!("registration attempted for an existing account: notice sent");
            return Ok(());
        }
        let id = UserId::new_random();
        let (raw, token) = self.new_link_token(TokenKind::EmailVerification, Some(id), serde_json::json!({}));
        let mail = self.compose(
            lang,
            Mail {
                to: email.as_str(),
                name: name.as_deref(),
                kind: "verify",
                paragraphs: vec![self.p(lang, "mail.verify.body")],
                action: Some(self.link("/register/verify", &raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::EmailVerification)),
            },
        )?;
        let new = NewUser {
            email: email.clone(),
            name,
            password_hash: Some(hash),
            status: UserStatus::Pending,
            is_admin: false,
        };
        let consents = SignupConsents { terms_version: Some(self.settings.accounts.terms_version.clone()), newsletter };
        let locale = ProfileUpdate { name: new.name.clone(), locale: Some(lang.code().to_owned()), time_zone: None };
        match self
            .stores
            .accounts
            .create_account(
                id,
                new,
                &consents,
                vec![
                    AccountOp::SetProfile { user: id, profile: locale },
                    AccountOp::InsertToken(token),
                    AccountOp::Enqueue(mail),
                ],
            )
            .await
        {
            Ok(_) => {}
            // Registered at the same moment by another request: same answer.
            Err(StoreError::Conflict { constraint: "users_email" }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.sent();
        tracing::info!(user_id = %id, "account registered, confirmation sent");
        Ok(())
    }

    /// The account a verification link is for (to show before confirming).
    pub async fn verification_target(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::EmailVerification, raw).await?;
        self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await
    }

    /// Confirms the address: the account becomes active.
    pub async fn verify_email(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::EmailVerification, raw).await?;
        let user = t.user_id.ok_or(AccountError::TokenInvalid)?;
        let u = self.user(user).await?;
        let mut ops = vec![AccountOp::ConsumeToken { digest: t.digest }, AccountOp::SetEmailVerified { user }];
        if u.status == UserStatus::Pending {
            ops.push(AccountOp::SetStatus { user, status: UserStatus::Active });
        }
        self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
        tracing::info!(user_id = %user, "email address verified");
        self.user(user).await
    }

    // ------------------------------------------------------------------ password reset

    /// Sends a reset link when the address has an account (same answer otherwise).
    pub async fn request_reset(&self, email: &str, lang: Lang, ip: IpAddr) -> AccountResult<()> {
        let Some(u) = self.user_by_email(email).await? else { return Ok(()) };
        if u.status == UserStatus::Suspended {
            return Ok(());
        }
        if !self.allow_issue(TokenKind::PasswordReset, &u.email.lookup_key(), Some(ip)).await? {
            return Ok(());
        }
        let lang = self.lang_of(Some(&u), lang);
        let (raw, token) = self.new_link_token(TokenKind::PasswordReset, Some(u.id), serde_json::json!({}));
        let mail = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "reset",
                paragraphs: vec![self.p(lang, "mail.reset.body"), self.p(lang, "mail.reset.ignore")],
                action: Some(self.link("/password/reset/confirm", &raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::PasswordReset)),
            },
        )?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        tracing::info!(user_id = %u.id, "password reset link sent");
        Ok(())
    }

    pub async fn reset_target(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::PasswordReset, raw).await?;
        self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await
    }

    /// Sets the new password; every session and refresh token of the account dies; a notice
    /// is sent. (The link proves the mailbox: a pending account becomes active.)
    pub async fn reset_password(&self, raw: &str, password: &SecretString) -> AccountResult<User> {
        let t = self.live_token(TokenKind::PasswordReset, raw).await?;
        let u = self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await?;
        self.policy(password, u.email.as_str())?;
        let hash = self.auth.hash_password(password).await?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let notice = self.password_changed_mail(&u, lang)?;
        let grants = self.session_grants_of(u.id, None).await?;
        let mut ops = vec![
            AccountOp::ConsumeToken { digest: t.digest },
            AccountOp::SetPassword { user: u.id, hash },
            AccountOp::SetEmailVerified { user: u.id },
            AccountOp::EndSessions { user: u.id, except: None },
            AccountOp::RevokeAllGrants { user: u.id },
            AccountOp::Enqueue(notice),
        ];
        if u.status == UserStatus::Pending {
            ops.push(AccountOp::SetStatus { user: u.id, status: UserStatus::Active });
        }
        self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
        self.sent();
        self.oidc.notify_logout(grants);
        tracing::info!(user_id = %u.id, "password reset: every session ended");
        Ok(u)
    }

    fn password_changed_mail(&self, u: &User, lang: Lang) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "password_changed",
                paragraphs: vec![
                    self.p(lang, "mail.password_changed.body"),
                    self.p(lang, "mail.password_changed.hint"),
                ],
                action: None,
                code: None,
                expiry: None,
            },
        )
    }

    /// Grants of the user's open sessions (all but `except`): whom to tell at logout. Read
    /// before the change, because a deletion takes the grants with it.
    async fn session_grants_of(&self, user: UserId, except: Option<&str>) -> AccountResult<Vec<Grant>> {
        let mut out = Vec::new();
        for s in self.stores.auth_sessions.sessions_of(user).await? {
            if s.ended_at.is_none() && Some(s.sid.as_str()) != except {
                out.extend(self.stores.grants.session_grants(&s.sid).await?);
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ emailed sign-in link

    /// Sends a sign-in link bound to this browser when the address has an active account.
    pub async fn request_login_link(
        &self,
        email: &str,
        browser: &str,
        return_to: &str,
        lang: Lang,
        ip: IpAddr,
    ) -> AccountResult<()> {
        let Some(u) = self.user_by_email(email).await? else { return Ok(()) };
        if u.status != UserStatus::Active {
            return Ok(());
        }
        if !self.allow_issue(TokenKind::LoginLink, &u.email.lookup_key(), Some(ip)).await? {
            return Ok(());
        }
        let lang = self.lang_of(Some(&u), lang);
        let data = serde_json::json!({ "browser": tokens::digest(browser), "return_to": return_to });
        let (raw, token) = self.new_link_token(TokenKind::LoginLink, Some(u.id), data);
        let mail = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "login_link",
                paragraphs: vec![self.p(lang, "mail.login_link.body")],
                action: Some(self.link("/login/link", &raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::LoginLink)),
            },
        )?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        Ok(())
    }

    /// Signs in with an emailed link, from the browser that asked for it only (another browser
    /// does not spend it). Returns who and where to go.
    pub async fn use_login_link(&self, raw: &str, browser: &str) -> AccountResult<(Authenticated, String)> {
        let t = self.live_token(TokenKind::LoginLink, raw).await?;
        let bound = t.data_str("browser").unwrap_or("");
        if browser.is_empty() || !tokens::constant_time_eq(bound.as_bytes(), tokens::digest(browser).as_bytes()) {
            return Err(AccountError::NotAllowed("link.other_browser"));
        }
        let user = t.user_id.ok_or(AccountError::TokenInvalid)?;
        let return_to = t.data_str("return_to").unwrap_or("/").to_owned();
        self.stores
            .accounts
            .apply(vec![AccountOp::ConsumeToken { digest: t.digest }, AccountOp::SetEmailVerified { user }])
            .await
            .map_err(Self::map_conflict)?;
        let u = self.user(user).await?;
        if u.status != UserStatus::Active {
            return Err(AccountError::Auth(AuthError::NotActive(u.status)));
        }
        Ok((self.authenticated(u, Amr::Otp), return_to))
    }

    fn authenticated(&self, user: User, amr: Amr) -> Authenticated {
        Authenticated { user, amr: vec![amr], acr: None, auth_time: self.clock.now() }
    }

    // ------------------------------------------------------------------ invitations

    /// Invites `email`; returns the invitation and its link (also mailed).
    pub async fn invite(
        &self,
        email: &str,
        name: Option<&str>,
        org: Option<&str>,
        resource: Option<&str>,
        invited_by: Option<UserId>,
        lang: Lang,
    ) -> AccountResult<(Invitation, String)> {
        let email = Email::parse(email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let name = match name {
            Some(n) => parse_display_name(n).map_err(|_| AccountError::Invalid("register.name_invalid"))?,
            None => None,
        };
        let clean = |v: Option<&str>| -> AccountResult<Option<String>> {
            match v.map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) if s.len() <= 200 && !s.chars().any(|c| c.is_control() || c.is_whitespace()) => {
                    Ok(Some(s.to_owned()))
                }
                Some(_) => Err(AccountError::Invalid("invite.invalid")),
            }
        };
        let (org, resource) = (clean(org)?, clean(resource)?);
        let raw = tokens::random_token();
        let id = uuid::Uuid::new_v4();
        let expires_at =
            self.clock.now().plus_secs(i64::try_from(self.settings.accounts.invitation_ttl_secs).unwrap_or(604_800));
        let inviter = match invited_by {
            Some(u) => self.stores.users.user_by_id(u).await?,
            None => None,
        };
        let existing = self.user_by_email(email.as_str()).await?;
        let lang = self.lang_of(existing.as_ref(), lang);
        let mail =
            self.invitation_mail(lang, email.as_str(), name.as_deref(), inviter.as_ref(), resource.as_deref(), &raw)?;
        let inv = NewInvitation {
            id,
            email: email.clone(),
            name,
            org,
            resource,
            invited_by,
            token_digest: tokens::digest(&raw),
            expires_at,
        };
        self.stores.accounts.create_invitation(&inv, vec![AccountOp::Enqueue(mail)]).await?;
        self.sent();
        let created = self.stores.accounts.invitation(id).await?.ok_or(AccountError::NoAccount)?;
        tracing::info!(invitation = %id, "invitation sent");
        Ok((created, self.link("/invite", &raw)))
    }

    fn invitation_mail(
        &self,
        lang: Lang,
        to: &str,
        name: Option<&str>,
        inviter: Option<&User>,
        resource: Option<&str>,
        raw: &str,
    ) -> AccountResult<OutboxMessage> {
        let mut paragraphs = vec![match inviter {
            Some(i) => {
                self.pf(lang, "mail.invitation.body", &[("inviter", i.name.as_deref().unwrap_or(i.email.as_str()))])
            }
            None => self.p(lang, "mail.invitation.body_anonymous"),
        }];
        if let Some(r) = resource {
            paragraphs.push(self.pf(lang, "mail.invitation.resource", &[("resource", r)]));
        }
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind: "invitation",
                paragraphs,
                action: Some(self.link("/invite", raw)),
                code: None,
                expiry: Some(self.pf(
                    lang,
                    "mail.expires_days",
                    &[("n", &(self.settings.accounts.invitation_ttl_secs / 86400).max(1).to_string())],
                )),
            },
        )
    }

    pub async fn invitations(&self, limit: i64) -> AccountResult<Vec<Invitation>> {
        Ok(self.stores.accounts.list_invitations(limit).await?)
    }

    pub async fn revoke_invitation(&self, id: uuid::Uuid) -> AccountResult<bool> {
        Ok(self.stores.accounts.revoke_invitation(id, self.clock.now()).await?)
    }

    /// A new link for a pending invitation (the old link dies, the expiry restarts).
    pub async fn resend_invitation(&self, id: uuid::Uuid, lang: Lang) -> AccountResult<(Invitation, String)> {
        let inv = self.stores.accounts.invitation(id).await?.ok_or(AccountError::TokenInvalid)?;
        let raw = tokens::random_token();
        let inviter = match inv.invited_by {
            Some(u) => self.stores.users.user_by_id(u).await?,
            None => None,
        };
        let mail = self.invitation_mail(
            lang,
            &inv.email,
            inv.name.as_deref(),
            inviter.as_ref(),
            inv.resource.as_deref(),
            &raw,
        )?;
        let expires_at =
            self.clock.now().plus_secs(i64::try_from(self.settings.accounts.invitation_ttl_secs).unwrap_or(604_800));
        self.stores
            .accounts
            .reissue_invitation(id, &tokens::digest(&raw), expires_at, vec![AccountOp::Enqueue(mail)])
            .await
            .map_err(|e| if matches!(e, StoreError::NotFound) { AccountError::TokenInvalid } else { e.into() })?;
        self.sent();
        let inv = self.stores.accounts.invitation(id).await?.ok_or(AccountError::TokenInvalid)?;
        Ok((inv, self.link("/invite", &raw)))
    }

    /// The pending invitation of a link.
    pub async fn invitation_of_link(&self, raw: &str) -> AccountResult<Invitation> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(AccountError::TokenInvalid);
        }
        match self.stores.accounts.invitation_by_token(&tokens::digest(raw)).await? {
            Some(i) if i.status(self.clock.now()) == "pending" => Ok(i),
            _ => Err(AccountError::TokenInvalid),
        }
    }

    /// Accepts an invitation. No account for the address: one is created, verified (the link
    /// proves the mailbox) and signed in, without a password. An account exists: the browser
    /// must be signed in to it; the resource is attached.
    pub async fn accept_invitation(&self, raw: &str, signed_in: Option<UserId>) -> AccountResult<InvitationOutcome> {
        let inv = self.invitation_of_link(raw).await?;
        let existing = self.user_by_email(&inv.email).await?;
        let resource_op = |user: UserId| {
            inv.resource.clone().map(|r| AccountOp::AddResource { user, resource: r, invitation: Some(inv.id) })
        };
        match (existing, signed_in) {
            (Some(u), Some(me)) if u.id == me => {
                let mut ops = vec![AccountOp::AcceptInvitation { id: inv.id, user: me }];
                ops.extend(resource_op(me));
                self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
                tracing::info!(invitation = %inv.id, user_id = %me, "invitation accepted by an existing account");
                Ok(InvitationOutcome::Attached)
            }
            (Some(u), None) => Ok(InvitationOutcome::SignInFirst { email: u.email.to_string() }),
            (_, Some(me)) => {
                let current = self.user(me).await?;
                Ok(InvitationOutcome::OtherAccount { email: current.email.to_string() })
            }
            (None, None) => {
                let email = Email::parse(&inv.email).map_err(|_| AccountError::TokenInvalid)?;
                let id = UserId::new_random();
                let mut ops = vec![
                    AccountOp::AcceptInvitation { id: inv.id, user: id },
                    AccountOp::SetEmailVerified { user: id },
                ];
                ops.extend(resource_op(id));
                let new = NewUser {
                    email,
                    name: inv.name.clone(),
                    password_hash: None,
                    status: UserStatus::Active,
                    is_admin: false,
                };
                let u = match self.stores.accounts.create_account(id, new, &SignupConsents::default(), ops).await {
                    Ok(u) => u,
                    Err(StoreError::Conflict { constraint: "users_email" }) => {
                        return Ok(InvitationOutcome::SignInFirst { email: inv.email.clone() })
                    }
                    Err(e) => return Err(Self::map_conflict(e)),
                };
                let u = self.user(u.id).await?;
                tracing::info!(invitation = %inv.id, user_id = %u.id, "account created from an invitation");
                Ok(InvitationOutcome::Created(Box::new(self.authenticated(u, Amr::Otp))))
            }
        }
    }

    // ------------------------------------------------------------------ operator-created accounts

    /// An account created by an operator. With a password: active at once. Without: pending,
    /// and an activation link is mailed (returned too); the user chooses the password.
    pub async fn create_by_operator(
        &self,
        email: &str,
        name: Option<&str>,
        password: Option<&SecretString>,
        admin: bool,
    ) -> AccountResult<(User, Option<String>)> {
        let email = Email::parse(email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let name = match name {
            Some(n) => parse_display_name(n).map_err(|_| AccountError::Invalid("register.name_invalid"))?,
            None => None,
        };
        let id = UserId::new_random();
        let (hash, status) = match password {
            Some(p) => {
                self.policy(p, email.as_str())?;
                (Some(self.auth.hash_password(p).await?), UserStatus::Active)
            }
            None => (None, UserStatus::Pending),
        };
        let mut ops = Vec::new();
        let mut link = None;
        if status == UserStatus::Pending {
            let (raw, token) = self.new_link_token(TokenKind::Activation, Some(id), serde_json::json!({}));
            let lang = Lang::En;
            ops.push(AccountOp::InsertToken(token));
            ops.push(AccountOp::Enqueue(self.activation_mail(lang, email.as_str(), name.as_deref(), &raw)?));
            link = Some(self.link("/activate", &raw));
        }
        let new = NewUser { email, name, password_hash: hash, status, is_admin: admin };
        let u = self.stores.accounts.create_account(id, new, &SignupConsents::default(), ops).await.map_err(
            |e| match e {
                StoreError::Conflict { constraint: "users_email" } => AccountError::NotAllowed("exists"),
                other => other.into(),
            },
        )?;
        self.sent();
        Ok((u, link))
    }

    fn activation_mail(&self, lang: Lang, to: &str, name: Option<&str>, raw: &str) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind: "activation",
                paragraphs: vec![self.p(lang, "mail.activation.body")],
                action: Some(self.link("/activate", raw)),
                code: None,
                expiry: Some(self.expiry_text(lang, TokenKind::Activation)),
            },
        )
    }

    /// A new activation link for a pending account (the previous one dies); mailed and returned.
    pub async fn activation_link(&self, email: &str) -> AccountResult<(User, String)> {
        let u = self.user_by_email(email).await?.ok_or(AccountError::NoAccount)?;
        if u.status != UserStatus::Pending {
            return Err(AccountError::NotAllowed("not_pending"));
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let (raw, token) = self.new_link_token(TokenKind::Activation, Some(u.id), serde_json::json!({}));
        let mail = self.activation_mail(lang, u.email.as_str(), u.name.as_deref(), &raw)?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        Ok((u, self.link("/activate", &raw)))
    }

    pub async fn activation_target(&self, raw: &str) -> AccountResult<User> {
        let t = self.live_token(TokenKind::Activation, raw).await?;
        self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await
    }

    /// The user chooses the password: active, verified, signed in.
    pub async fn activate(&self, raw: &str, password: &SecretString) -> AccountResult<Authenticated> {
        let t = self.live_token(TokenKind::Activation, raw).await?;
        let u = self.user(t.user_id.ok_or(AccountError::TokenInvalid)?).await?;
        self.policy(password, u.email.as_str())?;
        let hash = self.auth.hash_password(password).await?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::SetPassword { user: u.id, hash },
                AccountOp::SetEmailVerified { user: u.id },
                AccountOp::SetStatus { user: u.id, status: UserStatus::Active },
            ])
            .await
            .map_err(Self::map_conflict)?;
        let u = self.user(u.id).await?;
        tracing::info!(user_id = %u.id, "account activated");
        Ok(self.authenticated(u, Amr::Pwd))
    }

    // ------------------------------------------------------------------ the console

    pub async fn profile(&self, user: UserId) -> AccountResult<User> {
        self.user(user).await
    }

    pub async fn update_profile(&self, user: UserId, name: &str, locale: &str, time_zone: &str) -> AccountResult<()> {
        let name = parse_display_name(name).map_err(|_| AccountError::Invalid("register.name_invalid"))?;
        let locale = match locale.trim() {
            "" => None,
            l => Some(Lang::parse(l).ok_or(AccountError::Invalid("account.locale_invalid"))?.code().to_owned()),
        };
        let tz = time_zone.trim();
        let time_zone = if tz.is_empty() {
            None
        } else if valid_time_zone(tz) {
            Some(tz.to_owned())
        } else {
            return Err(AccountError::Invalid("account.time_zone_invalid"));
        };
        self.stores
            .accounts
            .apply(vec![AccountOp::SetProfile { user, profile: ProfileUpdate { name, locale, time_zone } }])
            .await?;
        Ok(())
    }

    pub async fn set_locale(&self, user: UserId, lang: Lang) -> AccountResult<()> {
        let u = self.user(user).await?;
        let profile = ProfileUpdate { name: u.name, locale: Some(lang.code().to_owned()), time_zone: u.time_zone };
        self.stores.accounts.apply(vec![AccountOp::SetProfile { user, profile }]).await?;
        Ok(())
    }

    /// Changes the password (the current one is required when there is one); the other
    /// sessions end; a notice is sent.
    pub async fn change_password(
        &self,
        user: UserId,
        current: &SecretString,
        new: &SecretString,
        current_sid: &str,
    ) -> AccountResult<()> {
        let u = self.user(user).await?;
        if self.auth.has_password(&u).await? && !self.auth.verify_user_password(&u, current).await? {
            return Err(AccountError::Invalid("account.current_wrong"));
        }
        self.policy(new, u.email.as_str())?;
        let hash = self.auth.hash_password(new).await?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let grants = self.session_grants_of(user, Some(current_sid)).await?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::SetPassword { user, hash },
                AccountOp::EndSessions { user, except: Some(current_sid.to_owned()) },
                AccountOp::Enqueue(self.password_changed_mail(&u, lang)?),
            ])
            .await?;
        self.sent();
        self.oidc.notify_logout(grants);
        tracing::info!(user_id = %user, "password changed; other sessions ended");
        Ok(())
    }

    /// Where the email change stands.
    pub async fn email_change_step(&self, user: UserId) -> AccountResult<EmailChangeStep> {
        let now = self.clock.now();
        if let Some(t) = self.stores.accounts.live_code(user, TokenKind::EmailChangeNew, now).await? {
            return Ok(EmailChangeStep::New { new_email: t.email.unwrap_or_default() });
        }
        if let Some(t) = self.stores.accounts.live_code(user, TokenKind::EmailChangeCurrent, now).await? {
            return Ok(EmailChangeStep::Current { new_email: t.email.unwrap_or_default() });
        }
        Ok(EmailChangeStep::Start)
    }

    fn code_mail(
        &self,
        lang: Lang,
        to: &str,
        name: Option<&str>,
        kind: &'static str,
        code: &str,
        body: String,
    ) -> AccountResult<OutboxMessage> {
        self.compose(
            lang,
            Mail {
                to,
                name,
                kind,
                paragraphs: vec![body],
                action: None,
                code: Some(code.to_owned()),
                expiry: Some(self.expiry_text(lang, TokenKind::EmailChangeCurrent)),
            },
        )
    }

    /// Step 1: a code to the current address, for `new_email`.
    pub async fn start_email_change(&self, user: UserId, new_email: &str, ip: IpAddr) -> AccountResult<()> {
        let u = self.user(user).await?;
        let new = Email::parse(new_email).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        if new.lookup_key() == u.email.lookup_key() {
            return Err(AccountError::Invalid("email_change.same"));
        }
        if !self.allow_issue(TokenKind::EmailChangeCurrent, &u.email.lookup_key(), Some(ip)).await? {
            return Err(AccountError::Throttled);
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let (code, token) =
            self.new_code(TokenKind::EmailChangeCurrent, user, Some(new.to_string()), serde_json::json!({}));
        let body = self.pf(lang, "mail.email_code_current.body", &[("email", new.as_str())]);
        let mail = self.code_mail(lang, u.email.as_str(), u.name.as_deref(), "email_code_current", &code, body)?;
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(mail)]).await?;
        self.sent();
        Ok(())
    }

    /// Checks a code of `kind`; a wrong one counts (the code dies after a few).
    async fn check_code(&self, user: UserId, kind: TokenKind, code: &str) -> AccountResult<AccountToken> {
        let now = self.clock.now();
        let Some(t) = self.stores.accounts.live_code(user, kind, now).await? else {
            return Err(AccountError::TokenInvalid);
        };
        let code = code.trim();
        let digest = code_digest(&self.secret, kind, user, code);
        if code.len() != 6 || !tokens::constant_time_eq(digest.as_bytes(), t.digest.as_bytes()) {
            let attempts = self.stores.accounts.code_failed(user, kind, now).await?;
            return Err(if attempts >= crate::domain::account::CODE_MAX_ATTEMPTS {
                AccountError::TokenInvalid
            } else {
                AccountError::CodeWrong
            });
        }
        Ok(t)
    }

    /// Step 2: the current address's code is right; a code goes to the new address.
    pub async fn confirm_email_current(&self, user: UserId, code: &str) -> AccountResult<()> {
        let t = self.check_code(user, TokenKind::EmailChangeCurrent, code).await?;
        let u = self.user(user).await?;
        let new_email = t.email.clone().unwrap_or_default();
        let lang = self.lang_of(Some(&u), Lang::En);
        let (code, token) =
            self.new_code(TokenKind::EmailChangeNew, user, Some(new_email.clone()), serde_json::json!({}));
        let body = self.p(lang, "mail.email_code_new.body");
        let mail = self.code_mail(lang, &new_email, u.name.as_deref(), "email_code_new", &code, body)?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::InsertToken(token),
                AccountOp::Enqueue(mail),
            ])
            .await
            .map_err(Self::map_conflict)?;
        self.sent();
        Ok(())
    }

    /// Step 3: the new address's code is right: the address changes, the old one is told,
    /// the other sessions end.
    pub async fn confirm_email_new(&self, user: UserId, code: &str, current_sid: &str) -> AccountResult<()> {
        let t = self.check_code(user, TokenKind::EmailChangeNew, code).await?;
        let u = self.user(user).await?;
        let new = Email::parse(t.email.as_deref().unwrap_or("")).map_err(|_| AccountError::TokenInvalid)?;
        let lang = self.lang_of(Some(&u), Lang::En);
        let notice = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "email_changed",
                paragraphs: vec![
                    self.pf(lang, "mail.email_changed.body", &[("email", new.as_str())]),
                    self.p(lang, "mail.email_changed.hint"),
                ],
                action: None,
                code: None,
                expiry: None,
            },
        )?;
        let grants = self.session_grants_of(user, Some(current_sid)).await?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::ChangeEmail { user, email: new },
                AccountOp::EndSessions { user, except: Some(current_sid.to_owned()) },
                AccountOp::Enqueue(notice),
            ])
            .await
            .map_err(|e| match e {
                StoreError::Conflict { constraint: "users_email" } => AccountError::Invalid("email_change.taken"),
                other => Self::map_conflict(other),
            })?;
        self.sent();
        self.oidc.notify_logout(grants);
        tracing::info!(user_id = %user, "email address changed");
        Ok(())
    }

    pub async fn cancel_email_change(&self, user: UserId) -> AccountResult<()> {
        let now = self.clock.now();
        let mut ops = Vec::new();
        for kind in [TokenKind::EmailChangeCurrent, TokenKind::EmailChangeNew] {
            if let Some(t) = self.stores.accounts.live_code(user, kind, now).await? {
                ops.push(AccountOp::ConsumeToken { digest: t.digest });
            }
        }
        if !ops.is_empty() {
            self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
        }
        Ok(())
    }

    pub fn pow_challenge(&self, user: UserId) -> String {
        pow::challenge(&self.secret, user, self.clock.now())
    }

    pub fn pow_difficulty(&self) -> u32 {
        self.settings.accounts.pow_difficulty
    }

    /// The pending phone number (a code was sent to it), if any.
    pub async fn pending_phone(&self, user: UserId) -> AccountResult<Option<String>> {
        Ok(self.stores.accounts.live_code(user, TokenKind::PhoneCode, self.clock.now()).await?.and_then(|t| t.email))
    }

    /// Sends an SMS code to `phone` after checking the proof of work.
    pub async fn start_phone(
        &self,
        user: UserId,
        phone: &str,
        challenge: &str,
        nonce: &str,
        ip: IpAddr,
    ) -> AccountResult<()> {
        let phone = parse_phone(phone).ok_or(AccountError::Invalid("phone.invalid"))?;
        let now = self.clock.now();
        pow::verify(&self.secret, user, now, challenge, nonce, self.pow_difficulty())
            .map_err(|_| AccountError::Invalid("phone.pow_failed"))?;
        let once = EphemeralKey::PowChallenge { digest: tokens::digest(challenge) }.to_string();
        let ttl = Duration::from_secs(u64::try_from(pow::MAX_AGE_SECS + 60).unwrap_or(660));
        if !self.stores.ephemeral.put_if_absent(&once, b"1", ttl).await? {
            return Err(AccountError::Invalid("phone.pow_failed"));
        }
        let u = self.user(user).await?;
        if !self.allow_issue(TokenKind::PhoneCode, &u.email.lookup_key(), Some(ip)).await? {
            return Err(AccountError::Throttled);
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let (code, token) = self.new_code(TokenKind::PhoneCode, user, Some(phone.clone()), serde_json::json!({}));
        let sms =
            OutboxMessage::Sms(SmsMessage { to: phone, body: self.pf(lang, "sms.phone_code", &[("code", &code)]) });
        self.stores.accounts.apply(vec![AccountOp::InsertToken(token), AccountOp::Enqueue(sms)]).await?;
        self.sent();
        Ok(())
    }

    pub async fn verify_phone(&self, user: UserId, code: &str) -> AccountResult<()> {
        let t = self.check_code(user, TokenKind::PhoneCode, code).await?;
        let phone = t.email.clone();
        self.stores
            .accounts
            .apply(vec![
                AccountOp::ConsumeToken { digest: t.digest },
                AccountOp::SetPhone { user, phone, verified: true },
            ])
            .await
            .map_err(Self::map_conflict)?;
        tracing::info!(user_id = %user, "phone number verified");
        Ok(())
    }

    pub async fn sessions(&self, user: UserId) -> AccountResult<Vec<AuthSessionRecord>> {
        let now = self.clock.now();
        Ok(self
            .stores
            .auth_sessions
            .sessions_of(user)
            .await?
            .into_iter()
            .filter(|s| s.ended_at.is_none() && s.idle_expires_at > now && s.expires_at > now)
            .collect())
    }

    /// Ends one of the user's sessions (its grants revoked, relying parties told).
    pub async fn revoke_session(&self, user: UserId, sid: &str) -> AccountResult<()> {
        let mine = self.stores.auth_sessions.auth_session(sid).await?.is_some_and(|s| s.user_id == user);
        if !mine {
            return Err(AccountError::TokenInvalid);
        }
        self.oidc.end_session(sid).await;
        Ok(())
    }

    pub async fn revoke_other_sessions(&self, user: UserId, current_sid: &str) -> AccountResult<()> {
        let grants = self.session_grants_of(user, Some(current_sid)).await?;
        self.stores.accounts.apply(vec![AccountOp::EndSessions { user, except: Some(current_sid.to_owned()) }]).await?;
        self.oidc.notify_logout(grants);
        Ok(())
    }

    pub async fn record_login(&self, user: UserId, success: bool, method: &str, ip: IpAddr, user_agent: Option<&str>) {
        let e = LoginEvent {
            at: self.clock.now(),
            success,
            method: method.to_owned(),
            ip: Some(ip.to_string()),
            user_agent: user_agent.map(|s| s.chars().take(300).collect()),
        };
        if let Err(err) = self.stores.accounts.record_login(user, &e).await {
            tracing::warn!(error = %err, "could not record the sign-in in the history");
        }
    }

    /// A failed password sign-in: recorded in the account's history when the account exists.
    pub async fn record_login_failure(&self, email: &str, ip: IpAddr, user_agent: Option<&str>) {
        if let Ok(Some(u)) = self.user_by_email(email).await {
            self.record_login(u.id, false, "pwd", ip, user_agent).await;
        }
    }

    pub async fn login_history(&self, user: UserId) -> AccountResult<Vec<LoginEvent>> {
        Ok(self.stores.accounts.login_history(user, 50).await?)
    }

    /// Everything held about the user, as JSON (RGPD art. 15 and 20).
    pub async fn export(&self, user: UserId) -> AccountResult<serde_json::Value> {
        let u = self.user(user).await?;
        let consents: Vec<_> = self
            .stores
            .consents
            .consents_of(user)
            .await?
            .into_iter()
            .map(|(c, scope, at)| serde_json::json!({"client_id": c.client_id.to_string(), "client_name": c.name, "scope": scope, "granted_at": at.0}))
            .collect();
        let sessions: Vec<_> = self
            .stores
            .auth_sessions
            .sessions_of(user)
            .await?
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "signed_in_at": s.auth_time.0, "last_seen": s.last_seen.0, "ended_at": s.ended_at.map(|t| t.0),
                    "amr": s.amr, "acr": s.acr, "ip": s.ip, "user_agent": s.user_agent,
                })
            })
            .collect();
        let invitations = self.stores.accounts.invitations_for(&u.email.lookup_key()).await?;
        Ok(serde_json::json!({
            "exported_at": self.clock.now().0,
            "issuer": self.issuer(),
            "profile": u,
            "resources": self.stores.accounts.resources_of(user).await?,
            "consents": consents,
            "sessions": sessions,
            "login_history": self.stores.accounts.login_history(user, 1000).await?,
            "invitations": invitations,
            "memberships": [],
        }))
    }

    /// Deletes the account for good, in one transaction: profile, credentials, sessions,
    /// grants and tokens, consents, history. Relying parties are told by back-channel logout;
    /// the audit log keeps a pseudonymous id only. `auth_time`: the session's last sign-in
    /// (None for operators).
    pub async fn delete(
        &self,
        user: UserId,
        confirm_email: Option<&str>,
        auth_time: Option<UnixTime>,
        actor: &str,
    ) -> AccountResult<()> {
        let u = self.user(user).await?;
        if let Some(at) = auth_time {
            let recent = i64::try_from(self.settings.accounts.recent_auth_secs).unwrap_or(300);
            if at.secs_until(self.clock.now()) > recent {
                return Err(AccountError::Reauthenticate);
            }
        }
        if let Some(typed) = confirm_email {
            if lookup_key(typed) != u.email.lookup_key() {
                return Err(AccountError::Invalid("delete.mismatch"));
            }
        }
        let lang = self.lang_of(Some(&u), Lang::En);
        let goodbye = self.compose(
            lang,
            Mail {
                to: u.email.as_str(),
                name: u.name.as_deref(),
                kind: "deleted",
                paragraphs: vec![self.p(lang, "mail.deleted.body")],
                action: None,
                code: None,
                expiry: None,
            },
        )?;
        let grants = self.session_grants_of(user, None).await?;
        self.stores
            .accounts
            .apply(vec![
                AccountOp::Audit {
                    action: "account.deleted".into(),
                    subject: self.pseudonym(user),
                    actor: Some(actor.to_owned()),
                    detail: None,
                },
                AccountOp::Enqueue(goodbye),
                AccountOp::DeleteUser { user },
            ])
            .await?;
        self.sent();
        self.oidc.notify_logout(grants);
        tracing::info!(subject = %self.pseudonym(user), "account deleted");
        Ok(())
    }

    /// A stable pseudonym of a user id (HMAC with the server secret): the audit log can tell
    /// events of one account apart without holding who it was.
    pub fn pseudonym(&self, user: UserId) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else { return String::new() };
        mac.update(b"guichet-pseudonym\0");
        mac.update(user.to_string().as_bytes());
        format!("anon-{}", &hex::encode(mac.finalize().into_bytes())[..24])
    }

    /// Messages not delivered yet.
    pub async fn outbox_pending(&self) -> AccountResult<i64> {
        Ok(self.stores.accounts.outbox_pending().await?)
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
