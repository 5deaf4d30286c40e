//! Organizations (customer companies), their members, RBAC and verified domains.
//!
//! - An organization has a slug (its address in URLs, `organization=` in requests), a name, and
//!   settings: require SSO, a second factor required, branding (accent colour, logo).
//! - A member has an org role ([`OrgRole`]: who may run the organization) and, per relying
//!   client, roles ([`Role`]: named sets of that client's permissions) released in tokens.
//! - A domain is claimed by an organization with a random challenge published as a TXT record
//!   `_guichet-challenge.<domain>`; once seen, it is verified and belongs to that organization
//!   only. Verified domains route sign-ins (home-realm discovery).

use std::fmt;
use std::str::FromStr;

use super::{ClientId, OrgId, RoleId, UnixTime, UserId};

/// The name of the TXT record proving a domain: `_guichet-challenge.<domain>`.
pub const CHALLENGE_LABEL: &str = "_guichet-challenge";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Org {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub require_sso: bool,
    pub mfa_required: bool,
    pub accent_color: Option<String>,
    /// Digest of the logo, when there is one (its URL carries it, so caches stay correct).
    pub logo_digest: Option<String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// What a member may do in the organization itself (not in the relying apps: that is [`Role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Member,
    Admin,
    Owner,
}

impl OrgRole {
    pub const ALL: &'static [OrgRole] = &[OrgRole::Owner, OrgRole::Admin, OrgRole::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }

    /// Owners and admins run the organization (members, roles, domains, settings).
    pub fn administers(self) -> bool {
        self >= OrgRole::Admin
    }
}

impl FromStr for OrgRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "owner" => Ok(OrgRole::Owner),
            "admin" => Ok(OrgRole::Admin),
            "member" => Ok(OrgRole::Member),
            other => Err(format!("unknown org role {other:?} (owner, admin or member)")),
        }
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's membership, with the organization.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Membership {
    pub org: Org,
    pub role: OrgRole,
}

/// A member as the organization's pages list them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub role: OrgRole,
    pub joined_at: UnixTime,
    /// Roles granted in this organization (all clients).
    pub roles: Vec<RoleRef>,
}

/// A role as shown next to a member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleRef {
    pub id: RoleId,
    pub client_id: ClientId,
    pub name: String,
}

/// A named set of one client's permissions; `org` None: defined by the operator for every
/// organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Role {
    pub id: RoleId,
    pub client_id: ClientId,
    pub org: Option<OrgId>,
    pub name: String,
    pub permissions: Vec<String>,
    pub created_at: UnixTime,
}

/// A domain claimed by an organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrgDomain {
    pub org: OrgId,
    pub domain: String,
    /// The value to publish in the TXT record.
    pub challenge: String,
    pub verified_at: Option<UnixTime>,
    pub last_checked_at: Option<UnixTime>,
    /// Why the last check failed (shown to the org admin).
    pub last_error: Option<String>,
    pub created_at: UnixTime,
}

impl OrgDomain {
    pub fn record_name(&self) -> String {
        format!("{CHALLENGE_LABEL}.{}", self.domain)
    }
    pub fn verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgRuleError {
    #[error("a slug is 2 to 63 characters: lowercase letters, digits and hyphens, not at either end")]
    Slug,
    #[error("a name is 1 to 100 characters, without control characters")]
    Name,
    #[error("a permission is 1 to 100 characters: letters, digits and : . _ - * /")]
    Permission,
    #[error("a role name is 1 to 64 characters: letters, digits and : . _ - /")]
    RoleName,
    #[error("the accent colour must be #rrggbb")]
    Colour,
    #[error("the accent colour is too light: white text on it must have a contrast ratio of at least 4.5:1")]
    Contrast,
    #[error("the logo must be a PNG, JPEG, GIF or WebP image of at most {0} bytes")]
    Logo(usize),
}

/// `acme`, `acme-corp`, `o1`: lowercase ASCII letters, digits and inner hyphens. Never a UUID
/// (ids and slugs share the `organization=` parameter).
pub fn parse_slug(s: &str) -> Result<String, OrgRuleError> {
    let s = s.trim();
    let ok = (2..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && uuid::Uuid::parse_str(s).is_err();
    if ok {
        Ok(s.to_owned())
    } else {
        Err(OrgRuleError::Slug)
    }
}

/// A slug derived from a name: `Acme Corp.` → `acme-corp`.
pub fn slug_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in unicode_normalization::UnicodeNormalization::nfd(name) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c.is_whitespace() || c == '-' || c == '_' || c == '.') && !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut s: String = out.trim_matches('-').chars().take(63).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.len() < 2 {
        s = format!("org-{s}").trim_end_matches('-').to_owned();
    }
    s
}

pub fn parse_org_name(s: &str) -> Result<String, OrgRuleError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(OrgRuleError::Name);
    }
    Ok(s.to_owned())
}

/// `orders:read`, `galleries:view`, `billing:manage`, `docs/*:read`.
pub fn parse_permission(s: &str) -> Result<String, OrgRuleError> {
    let ok = (1..=100).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-*/".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(OrgRuleError::Permission)
    }
}

pub fn parse_role_name(s: &str) -> Result<String, OrgRuleError> {
    let s = s.trim();
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b":._-/".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(OrgRuleError::RoleName)
    }
}

/// An accent colour `#rrggbb` (lowercased) on which white text is readable (WCAG 2.x contrast
/// ratio ≥ 4.5:1, the AA level for normal text): buttons and headers use it with white text.
pub fn parse_accent_color(s: &str) -> Result<String, OrgRuleError> {
    let s = s.trim().to_ascii_lowercase();
    let hex = s.strip_prefix('#').ok_or(OrgRuleError::Colour)?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OrgRuleError::Colour);
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| OrgRuleError::Colour);
    let (r, g, b) = (channel(0)?, channel(2)?, channel(4)?);
    if contrast_with_white(r, g, b) < 4.5 {
        return Err(OrgRuleError::Contrast);
    }
    Ok(s)
}

/// WCAG 2.x contrast ratio between white and the colour.
pub fn contrast_with_white(r: u8, g: u8, b: u8) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    1.05 / (l + 0.05)
}

/// Largest logo accepted, in bytes.
pub const LOGO_MAX_BYTES: usize = 100 * 1024;

/// The media type of a logo, judged by its content (never by what the upload claims). SVG is
/// refused: it can carry scripts.
pub fn sniff_logo(bytes: &[u8]) -> Result<&'static str, OrgRuleError> {
    if bytes.is_empty() || bytes.len() > LOGO_MAX_BYTES {
        return Err(OrgRuleError::Logo(LOGO_MAX_BYTES));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Ok("image/gif")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Ok("image/webp")
    } else {
        Err(OrgRuleError::Logo(LOGO_MAX_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(parse_slug("acme-corp").unwrap(), "acme-corp");
        for bad in ["a", "-acme", "acme-", "Acme", "ac me", "", "6f1c1b2e-8a7d-4c55-9a52-0d2a6c3c2b11"] {
            assert!(parse_slug(bad).is_err(), "{bad}");
        }
        assert_eq!(slug_from_name("Acme Corp."), "acme-corp");
        assert_eq!(slug_from_name("Éditions Gallimard"), "editions-gallimard");
        assert_eq!(slug_from_name("X"), "org-x");
        assert!(parse_slug(&slug_from_name("  Été  à  Paris ")).is_ok());
    }

    #[test]
    fn permissions_and_roles() {
        assert!(parse_permission("orders:read").is_ok());
        assert!(parse_permission("billing:manage").is_ok());
        assert!(parse_permission("a b").is_err());
        assert!(parse_role_name("viewer").is_ok());
        assert!(parse_role_name("").is_err());
    }

    #[test]
    fn accent_colour_contrast() {
        assert_eq!(parse_accent_color("#1A4D8F").unwrap(), "#1a4d8f");
        assert_eq!(parse_accent_color("#ffff00"), Err(OrgRuleError::Contrast));
        assert_eq!(parse_accent_color("red"), Err(OrgRuleError::Colour));
        assert!((contrast_with_white(0, 0, 0) - 21.0).abs() < 0.01);
    }

    #[test]
    fn logos() {
        assert_eq!(sniff_logo(b"\x89PNG\r\n\x1a\n....").unwrap(), "image/png");
        assert!(sniff_logo(b"<svg onload=alert(1)>").is_err());
        assert!(sniff_logo(&vec![0xff; LOGO_MAX_BYTES + 1]).is_err());
    }
}
