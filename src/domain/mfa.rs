//! Second factors and authentication levels.
//!
//! Levels (`acr`, listed in discovery): [`ACR_PWD`] one factor, [`ACR_MFA`] two factors,
//! [`ACR_PHR`] phishing-resistant (WebAuthn with user verification, next).

use std::fmt;
use std::str::FromStr;

use super::{UnixTime, UserId};

pub const ACR_PWD: &str = "urn:guichet:acr:pwd";
pub const ACR_MFA: &str = "urn:guichet:acr:mfa";
pub const ACR_PHR: &str = "urn:guichet:acr:phr";
pub const ACR_VALUES: [&str; 3] = [ACR_PWD, ACR_MFA, ACR_PHR];

/// Rank of a level (unknown values rank lowest).
pub fn acr_rank(acr: &str) -> u8 {
    match acr {
        ACR_PHR => 3,
        ACR_MFA => 2,
        ACR_PWD => 1,
        _ => 0,
    }
}

/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorKind {
    /// RFC 6238 time-based one-time passwords (authenticator apps).
    Totp,
    /// A WebAuthn credential: a security key or a passkey.
    WebAuthn,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::WebAuthn => "webauthn",
        }
    }
}

impl fmt::Display for FactorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FactorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "totp" => Ok(FactorKind::Totp),
            "webauthn" => Ok(FactorKind::WebAuthn),
            other => Err(format!("unknown factor kind {other:?}")),
        }
    }
}

/// A factor as stored: its secret material sealed.
#[derive(Debug, Clone)]
pub struct Factor {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub kind: FactorKind,
    pub name: String,
    pub secret_sealed: String,
    /// Usable (enrolment finished with a valid code).
    pub confirmed: bool,
    pub last_step: Option<i64>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl Factor {
    /// What the sealed secret is bound to (see `crypto::sealed`).
    pub fn seal_binding(id: uuid::Uuid, user: UserId) -> String {
        format!("mfa-factor|{id}|{user}")
    }
}
