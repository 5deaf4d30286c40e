//! Guichet's signing keys (its JWKS, found through discovery) and the JWTs the portal checks
//! itself: the access token (RFC 9068, `typ: at+jwt`) and the back-channel logout token
//! (`typ: logout+jwt`). The ID token is checked by `openidconnect`'s own verifier, with the same
//! key set.
//!
//! Signatures are verified by `openidconnect`'s JSON Web Key types; this module only splits the
//! token, picks the key by `kid` (fetching the JWKS again, at most every 30 s, for an unknown one:
//! Guichet rotates keys), and checks the registered claims every token shares.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeySetUrl};
use serde_json::{Map, Value};

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;
/// An unknown `kid` fetches the key set again, at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(30);

/// Why a token is refused (logged; the browser or Guichet only sees a 400 / a new sign-in).
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("not a signed JWT")]
    Malformed,
    #[error("typ {0:?} is not the one expected here")]
    WrongType(Option<String>),
    #[error("algorithm {0:?} not accepted")]
    Algorithm(String),
    #[error("no key in Guichet's JWKS matches")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("claim {0}")]
    Claim(&'static str),
}

pub struct Keys {
    url: JsonWebKeySetUrl,
    set: RwLock<CoreJsonWebKeySet>,
    fetched: Mutex<Option<Instant>>,
}

impl Keys {
    pub fn new(url: JsonWebKeySetUrl, set: CoreJsonWebKeySet) -> Self {
        Keys { url, set: RwLock::new(set), fetched: Mutex::new(Some(Instant::now())) }
    }

    pub fn current(&self) -> CoreJsonWebKeySet {
        self.set.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The keys a token naming `kid` may be signed with (all of them when it names none).
    fn candidates(&self, kid: Option<&str>) -> Vec<CoreJsonWebKey> {
        let set = self.set.read().unwrap_or_else(PoisonError::into_inner);
        set.keys().iter().filter(|k| kid.is_none() || k.key_id().map(|id| id.as_str()) == kid).cloned().collect()
    }

    /// Makes sure the key named in `token`'s header is known: fetches the JWKS again when it is
    /// not (rate-limited). Errors are logged; verification then fails with `UnknownKey`.
    pub async fn refresh_for(&self, http: &reqwest::Client, token: &str) {
        let Ok((header, _, _, _)) = split(token) else { return };
        if !self.candidates(header.get("kid").and_then(Value::as_str)).is_empty() {
            return;
        }
        {
            let mut fetched = self.fetched.lock().unwrap_or_else(PoisonError::into_inner);
            if fetched.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
                return;
            }
            *fetched = Some(Instant::now());
        }
        match CoreJsonWebKeySet::fetch_async(&self.url, http).await {
            Ok(set) => *self.set.write().unwrap_or_else(PoisonError::into_inner) = set,
            Err(e) => tracing::warn!(error = %e, "cannot fetch Guichet's JWKS"),
        }
    }

    /// Verifies the signature and `typ` of `token`; returns its claims (not yet checked).
    pub async fn verify(&self, http: &reqwest::Client, token: &str, typ: &str) -> Result<Map<String, Value>, JwtError> {
        self.refresh_for(http, token).await;
        let (header, claims, signing_input, signature) = split(token)?;
        let found = header.get("typ").and_then(Value::as_str);
        if !found.is_some_and(|t| t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}")))
        {
            return Err(JwtError::WrongType(found.map(str::to_owned)));
        }
        let alg = algorithm(&header)?;
        let keys = self.candidates(header.get("kid").and_then(Value::as_str));
        if keys.is_empty() {
            return Err(JwtError::UnknownKey);
        }
        // A key of another type or algorithm refuses the signature: it is never a match.
        if keys.iter().any(|k| k.verify_signature(&alg, signing_input.as_bytes(), &signature).is_ok()) {
            Ok(claims)
        } else {
            Err(JwtError::Signature)
        }
    }
}

type Parts<'a> = (Map<String, Value>, Map<String, Value>, &'a str, Vec<u8>);

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwtError::Malformed);
    };
    let json = |part: &str| -> Result<Map<String, Value>, JwtError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
    };
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    Ok((json(h)?, json(p)?, &token[..h.len() + 1 + p.len()], signature))
}

/// Only the asymmetric algorithms Guichet signs with: never `none`, never HMAC.
fn algorithm(header: &Map<String, Value>) -> Result<CoreJwsSigningAlgorithm, JwtError> {
    let raw = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    match raw {
        "RS256" => Ok(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        "ES256" => Ok(CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        "EdDSA" => Ok(CoreJwsSigningAlgorithm::EdDsa),
        other => Err(JwtError::Algorithm(other.to_owned())),
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The claims every token from Guichet to this portal carries: `iss`, `aud` (naming this
/// client), `iat` (not in the future), `exp` when `exp_required` or present (not past), at
/// time `now` (Unix seconds).
pub fn check_common(
    c: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    exp_required: bool,
    now: i64,
) -> Result<(), JwtError> {
    if c.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(JwtError::Claim("iss"));
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::Claim("aud"));
    }
    match c.get("iat").and_then(Value::as_i64) {
        Some(iat) if iat <= now + LEEWAY_SECS => {}
        _ => return Err(JwtError::Claim("iat")),
    }
    match c.get("exp") {
        None if !exp_required => {}
        Some(v) if v.as_i64().is_some_and(|exp| exp + LEEWAY_SECS > now) => {}
        _ => return Err(JwtError::Claim("exp")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{check_common, JwtError};

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn registered_claims() {
        let now = 1_000_000;
        let ok = claims(json!({"iss": "https://id.example", "aud": ["other", "portal"], "iat": now, "exp": now + 60}));
        assert!(check_common(&ok, "https://id.example", "portal", true, now).is_ok());
        assert!(matches!(check_common(&ok, "https://evil.example", "portal", true, now), Err(JwtError::Claim("iss"))));
        assert!(matches!(check_common(&ok, "https://id.example", "x", true, now), Err(JwtError::Claim("aud"))));
        assert!(matches!(
            check_common(&ok, "https://id.example", "portal", true, now + 3600),
            Err(JwtError::Claim("exp"))
        ));
        let future = claims(json!({"iss": "https://id.example", "aud": "portal", "iat": now + 3600}));
        assert!(matches!(
            check_common(&future, "https://id.example", "portal", false, now),
            Err(JwtError::Claim("iat"))
        ));
        let no_exp = claims(json!({"iss": "https://id.example", "aud": "portal", "iat": now}));
        assert!(check_common(&no_exp, "https://id.example", "portal", false, now).is_ok());
        assert!(check_common(&no_exp, "https://id.example", "portal", true, now).is_err());
    }
}
