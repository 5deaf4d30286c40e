//! Developer keys: how a relying app's backend (or an organization's tooling) calls the admin
//! API. A **DevKey** is the public, immutable key id (`gk_...`); its **DevSecret** (`gs_...`) is
//! shown once, at creation and at reset, and kept only as its SHA-256 digest.
//!
//! A request authenticates with HTTP Basic (`DevKey:DevSecret`), or with an HMAC-SHA256 signature
//! (no secret on the wire): `Authorization: Guichet-HMAC-SHA256 key=<DevKey>, ts=<unix seconds>,
//! sig=<base64>` where `sig` = HMAC-SHA256 keyed with SHA-256(DevSecret) (the digest Guichet
//! keeps) over `METHOD \n path?query \n ts \n hex SHA-256(body)`; accepted within 5 minutes of
//! Guichet's clock, once.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

use super::{OrgId, UnixTime, UserId};

/// What a key may do in its organization's admin API.
pub const SCOPES: &[&str] = &["read", "write"];
/// How far a signed request's timestamp may be from Guichet's clock.
pub const SIGNATURE_WINDOW_SECS: i64 = 300;
/// The `Authorization` scheme of signed requests.
pub const HMAC_SCHEME: &str = "Guichet-HMAC-SHA256";

/// Whose a key is: an organization's (confined to it), or a user's own, for their own apps
/// (acting with that user's rights).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    Org(OrgId),
    User(UserId),
}

impl KeyOwner {
    pub fn org(self) -> Option<OrgId> {
        match self {
            KeyOwner::Org(o) => Some(o),
            KeyOwner::User(_) => None,
        }
    }

    pub fn user(self) -> Option<UserId> {
        match self {
            KeyOwner::User(u) => Some(u),
            KeyOwner::Org(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevKey {
    /// The DevKey (`gk_` + 24 alphanumerics): public, never changes.
    pub id: String,
    pub owner: KeyOwner,
    pub name: String,
    pub scopes: Vec<String>,
    /// SHA-256 (hex) of the DevSecret.
    pub secret_digest: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub expires_at: Option<UnixTime>,
}

impl DevKey {
    pub fn allows(&self, scope: &str) -> bool {
        // `write` includes reading.
        self.scopes.iter().any(|s| s == scope || (scope == "read" && s == "write"))
    }

    pub fn expired(&self, now: UnixTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

fn alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..n).map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())])).collect()
}

/// A new DevKey id.
pub fn new_key_id() -> String {
    format!("gk_{}", alnum(24))
}

/// A new DevSecret (256 bits).
pub fn new_secret() -> String {
    format!("gs_{}", alnum(43))
}

/// Parses the scopes given (repeatable or comma-separated).
pub fn parse_scopes(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.iter().flat_map(|s| s.split([',', ' '])).map(str::trim).filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(format!("unknown scope {s:?} (read or write)"));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err("at least one scope is needed (read or write)".into());
    }
    Ok(out)
}

/// The signature of a request, keyed with the secret's digest (hex, as stored).
pub fn request_signature(secret_digest_hex: &str, method: &str, path_and_query: &str, ts: i64, body: &[u8]) -> String {
    let key = hex::decode(secret_digest_hex).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap_or_else(|_| unreachable_mac());
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(ts.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(hex::encode(Sha256::digest(body)).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

// HMAC accepts keys of any length: this is never reached.
fn unreachable_mac() -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    Hmac::<Sha256>::new_from_slice(b"k").expect("HMAC takes any key length")
}

/// The parts of a `Guichet-HMAC-SHA256 key=..., ts=..., sig=...` header.
pub fn parse_hmac_header(value: &str) -> Option<(String, i64, String)> {
    let rest = value.strip_prefix(HMAC_SCHEME)?.trim();
    let (mut key, mut ts, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "key" => key = Some(v.trim().to_owned()),
            "ts" => ts = v.trim().parse::<i64>().ok(),
            "sig" => sig = Some(v.trim().to_owned()),
            _ => return None,
        }
    }
    Some((key?, ts?, sig?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_scopes_and_signatures() {
        let k = new_key_id();
        assert!(k.starts_with("gk_") && k.len() == 27);
        assert!(new_secret().len() == 46);
        assert_eq!(parse_scopes(&["read,write".into()]).unwrap(), vec!["read", "write"]);
        assert!(parse_scopes(&["admin".into()]).is_err());
        let d = crate::crypto::tokens::digest("gs_secret");
        let a = request_signature(&d, "GET", "/api/v1/orgs/acme", 100, b"");
        assert_eq!(a, request_signature(&d, "GET", "/api/v1/orgs/acme", 100, b""));
        assert_ne!(a, request_signature(&d, "GET", "/api/v1/orgs/acme", 101, b""));
        assert_ne!(a, request_signature(&d, "POST", "/api/v1/orgs/acme", 100, b""));
        let h = format!("{HMAC_SCHEME} key=gk_x, ts=100, sig={a}");
        assert_eq!(parse_hmac_header(&h), Some(("gk_x".into(), 100, a)));
        assert_eq!(parse_hmac_header("Basic abc"), None);
    }
}
