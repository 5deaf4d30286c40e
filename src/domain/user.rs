//! User accounts.

use std::fmt;
use std::str::FromStr;

use super::{Email, UnixTime, UserId};

/// Account status. `Pending`: created but not activated (no password yet, or email not
/// verified); `Active`: may sign in; `Suspended`: an administrator blocked sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Pending,
    Active,
    Suspended,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(UserStatus::Pending),
            "active" => Ok(UserStatus::Active),
            "suspended" => Ok(UserStatus::Suspended),
            other => Err(format!("unknown user status {other:?}")),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub status: UserStatus,
    pub is_admin: bool,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    /// OIDC Core §5.1.1 address object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// IANA time zone name (e.g. `Europe/Paris`), OIDC `zoneinfo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Version of the terms accepted at sign-up, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_accepted_at: Option<UnixTime>,
    /// When the user agreed to receive the newsletter (None: no consent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newsletter_consent_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// What is needed to create an account. The password hash is computed by the caller
/// (crypto::password) so the store never sees a plaintext.
#[derive(Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub status: UserStatus,
    pub is_admin: bool,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .field("status", &self.status)
            .field("is_admin", &self.is_admin)
            .finish()
    }
}

/// Display names: trimmed, NFC, no control characters, at most 200 characters.
pub fn parse_display_name(raw: &str) -> Result<Option<String>, &'static str> {
    use unicode_normalization::UnicodeNormalization;
    let s: String = raw.trim().nfc().collect();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > 200 {
        return Err("name is too long (at most 200 characters)");
    }
    if s.chars().any(char::is_control) {
        return Err("name contains control characters");
    }
    Ok(Some(s))
}
