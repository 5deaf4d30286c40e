//! Authentication service: who is this? Password sign-in with throttling today; the MFA steps
//! (TOTP, WebAuthn) and federated sign-in slot in as further steps of the same flow.

pub mod flow;
pub mod mfa;
pub mod throttle;
pub mod webauthn;

use std::net::IpAddr;
use std::sync::Arc;

use crate::crypto::{PasswordError, PasswordHasher, SecretString};
use crate::domain::email::lookup_key;
use crate::domain::{Clock, UnixTime, User, UserStatus};
use crate::store::{StoreError, UserStore};
pub use throttle::{DeviceTrust, Throttle};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email and wrong password alike: one error, one message.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    /// Correct password, but the account may not sign in (told only after the password matched).
    #[error("account is {0}")]
    NotActive(UserStatus),
    #[error("server busy")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<PasswordError> for AuthError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => AuthError::Busy,
            PasswordError::Internal(m) => AuthError::Internal(m),
        }
    }
}

/// Authentication methods references (RFC 8176), carried into sessions and later ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// Password.
    Pwd,
    /// A one-time password: a TOTP code or a recovery code (RFC 8176 `otp`).
    Otp,
    /// A one-time link sent to the user's mailbox (emailed sign-in link, invitation).
    Email,
    /// More than one factor (RFC 8176 `mfa`), added beside the factors used.
    Mfa,
    /// A hardware-bound key (a security key, a device-bound passkey).
    Hwk,
    /// A software key (a synced passkey).
    Swk,
    /// User verification by the authenticator (PIN or biometrics).
    User,
    /// Federated: the organization's identity provider authenticated the user.
    Fed,
}

impl Amr {
    /// The RFC 8176 value, as it appears in the `amr` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Pwd => "pwd",
            Amr::Otp => "otp",
            Amr::Email => "email",
            Amr::Mfa => "mfa",
            Amr::Hwk => "hwk",
            Amr::Swk => "swk",
            Amr::User => "user",
            Amr::Fed => "fed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub amr: Vec<Amr>,
    /// Authentication context class reached, when one is claimed (MFA sets it).
    pub acr: Option<String>,
    pub auth_time: UnixTime,
    /// The connection a federated sign-in came through (the `idp` claim).
    pub idp: Option<String>,
}

pub struct PasswordLogin<'a> {
    pub email: &'a str,
    pub password: &'a SecretString,
    pub ip: IpAddr,
    /// The device cookie the browser presented, if any (see [`throttle`]).
    pub device: Option<&'a str>,
}

pub struct AuthService {
    users: Arc<dyn UserStore>,
    hasher: PasswordHasher,
    throttle: Throttle,
    clock: Arc<dyn Clock>,
}

impl AuthService {
    pub fn new(users: Arc<dyn UserStore>, hasher: PasswordHasher, throttle: Throttle, clock: Arc<dyn Clock>) -> Self {
        Self { users, hasher, throttle, clock }
    }

    /// Frees the password hasher's working memory after `idle` without sign-ins.
    pub fn release_idle_hash_memory(&self, idle: std::time::Duration) -> usize {
        self.hasher.release_idle_memory(idle)
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Checks throttles, verifies the password (dummy work for unknown users), records the
    /// outcome, upgrades the hash when parameters changed.
    pub async fn login_password(&self, req: PasswordLogin<'_>) -> Result<Authenticated, AuthError> {
        let account = lookup_key(req.email);
        let trust = self.throttle.device_trust(&account, req.device).await?;
        let reservation = match self.throttle.reserve(&account, req.ip, &trust).await? {
            Ok(r) => r,
            Err(retry_after_secs) => return Err(AuthError::Throttled { retry_after_secs }),
        };
        let creds = match self.check_password(&account, req.password).await {
            Ok(c) => c,
            Err(e) => {
                // Not judged (store or hasher trouble): the attempt does not count.
                self.throttle.release(reservation).await?;
                return Err(e);
            }
        };
        // A wrong password stays counted (it was reserved as a failure).
        let Some((creds, needs_rehash)) = creds else { return Err(AuthError::InvalidCredentials) };
        if needs_rehash {
            match self.hasher.hash(req.password).await {
                Ok(h) => {
                    if let Err(e) = self.users.set_password_hash(creds.user.id, &h).await {
                        tracing::warn!(error = %e, "could not store upgraded password hash");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not upgrade password hash"),
            }
        }
        if creds.user.status != UserStatus::Active {
            self.throttle.release(reservation).await?;
            return Err(AuthError::NotActive(creds.user.status));
        }
        self.throttle.succeeded(reservation, &account, req.ip, &trust).await?;
        Ok(Authenticated { user: creds.user, amr: vec![Amr::Pwd], acr: None, auth_time: self.clock.now(), idp: None })
    }

    /// The account's credentials when the password matches (and whether its hash needs an
    /// upgrade); `None` for a wrong password or an unknown account (same work for both).
    async fn check_password(
        &self,
        account: &str,
        password: &SecretString,
    ) -> Result<Option<(crate::store::UserCredentials, bool)>, AuthError> {
        let creds = if account.is_empty() { None } else { self.users.credentials_by_email(account).await? };
        let stored = creds.as_ref().and_then(|c| c.password_hash.as_deref());
        let v = self.hasher.verify(stored, password).await?;
        Ok(creds.filter(|_| v.ok).map(|c| (c, v.needs_rehash)))
    }

    /// An argon2id hash of a new password (on the bounded hashing pool).
    pub async fn hash_password(&self, password: &SecretString) -> Result<String, AuthError> {
        Ok(self.hasher.hash(password).await?)
    }

    /// Checks a signed-in user's password (re-authentication, password change): `None` when
    /// the account has no password (made from an invitation), else whether it matches.
    pub async fn check_user_password(&self, user: &User, password: &SecretString) -> Result<Option<bool>, AuthError> {
        let creds = self.users.credentials_by_email(&user.email.lookup_key()).await?;
        let Some(stored) = creds.as_ref().filter(|c| c.user.id == user.id).and_then(|c| c.password_hash.as_deref())
        else {
            return Ok(None);
        };
        Ok(Some(self.hasher.verify(Some(stored), password).await?.ok))
    }

    /// A device cookie for a browser that just signed in to `account` (see [`throttle`]).
    pub async fn issue_device_cookie(&self, email: &str) -> Result<String, AuthError> {
        Ok(self.throttle.issue_device(&lookup_key(email)).await?)
    }
}
