//! Compact JWS for the tokens we issue and the client assertions we accept (RFC 7515, RFC 7519,
//! RFC 8725). Verification is strict: the header `alg` must be one we support (never `none`,
//! never HMAC), the key is chosen by `kid` and must be a key *of that alg* (no algorithm
//! confusion), and `typ` is checked where a token type is expected (`at+jwt`, `logout+jwt`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsVerifier, ES256, RS256};
use serde::Serialize;

use super::keys::{KeySet, LoadedKey};
use crate::crypto::keys::KeyError;
use crate::domain::SigningAlg;

pub type Claims = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported or forbidden alg {0:?}")]
    Alg(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("wrong token type")]
    Type,
}

#[derive(Debug, serde::Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// The JOSE header of the tokens we sign, in this member order.
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// Longest base64url signature: RS256 with a 4096-bit key (512 bytes).
const MAX_SIGNATURE_B64: usize = 683;

/// Signs `claims` as a compact JWS. The token is written into one buffer sized up front
/// (header, payload, then the signature appended), with no intermediate strings.
pub fn encode(key: &LoadedKey, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let mut json = Vec::with_capacity(512);
    serde_json::to_writer(&mut json, &JwsHeader { alg: key.alg().as_str(), kid: key.kid(), typ })
        .map_err(|e| KeyError::File { path: "header".into(), reason: e.to_string() })?;
    let header_len = json.len();
    serde_json::to_writer(&mut json, claims)
        .map_err(|e| KeyError::File { path: "claims".into(), reason: e.to_string() })?;
    let (header, payload) = json.split_at(header_len);
    let b64_len = |n: usize| (n * 4).div_ceil(3);
    let mut token = String::with_capacity(b64_len(header.len()) + b64_len(payload.len()) + 2 + MAX_SIGNATURE_B64);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let sig = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    Ok(token)
}

struct Parts<'a> {
    header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > 16 * 1024 {
        return Err(JwtError::Malformed);
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Header =
        URL_SAFE_NO_PAD.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(JwtError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Parts { header, signing_input, payload, signature })
}

fn claims_of(payload: &[u8]) -> Result<Claims, JwtError> {
    serde_json::from_slice::<Claims>(payload).map_err(|_| JwtError::Malformed)
}

fn typ_matches(actual: Option<&str>, expected: &str) -> bool {
    let Some(t) = actual else { return false };
    let t = t.to_ascii_lowercase();
    t == expected || t.strip_prefix("application/") == Some(expected)
}

/// Verifies a token we signed. `expected_typ`: `Some("at+jwt")` etc.; `None` accepts `JWT`
/// or no `typ` (ID tokens).
pub fn verify_ours(keys: &KeySet, token: &str, expected_typ: Option<&str>) -> Result<Claims, JwtError> {
    let parts = split(token)?;
    let alg: SigningAlg = parts.header.alg.parse().map_err(|_| JwtError::Alg(parts.header.alg.clone()))?;
    let kid = parts.header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let key = keys.verification_key(kid).ok_or(JwtError::UnknownKey)?;
    if key.alg() != alg {
        return Err(JwtError::Alg(parts.header.alg.clone()));
    }
    if !key.verify(parts.signing_input.as_bytes(), &parts.signature) {
        return Err(JwtError::Signature);
    }
    match expected_typ {
        Some(t) if !typ_matches(parts.header.typ.as_deref(), t) => return Err(JwtError::Type),
        None if parts.header.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("jwt")) => {
            return Err(JwtError::Type)
        }
        _ => {}
    }
    claims_of(&parts.payload)
}

/// Verifies a JWT signed by a client with one of the keys of its JWK Set (private_key_jwt).
pub fn verify_with_jwks(jwks: &serde_json::Value, token: &str) -> Result<Claims, JwtError> {
    let parts = split(token)?;
    let alg: SigningAlg = parts.header.alg.parse().map_err(|_| JwtError::Alg(parts.header.alg.clone()))?;
    let keys = jwks.get("keys").and_then(|k| k.as_array()).ok_or(JwtError::UnknownKey)?;
    let candidates: Vec<&serde_json::Value> = keys
        .iter()
        .filter(|k| match (&parts.header.kid, k.get("kid").and_then(|v| v.as_str())) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    if candidates.is_empty() {
        // A kid the set does not have (the client may have rotated its keys).
        return Err(JwtError::UnknownKey);
    }
    for k in candidates {
        if k.get("use").and_then(|u| u.as_str()).is_some_and(|u| u != "sig") {
            continue;
        }
        if k.get("alg").and_then(|a| a.as_str()).is_some_and(|a| a != alg.as_str()) {
            continue;
        }
        let Some(map) = k.as_object() else { continue };
        let Ok(jwk) = Jwk::from_map(map.clone()) else { continue };
        let verifier: Option<Box<dyn JwsVerifier>> = match (alg, jwk.key_type()) {
            (SigningAlg::RS256, "RSA") => {
                RS256.verifier_from_jwk(&jwk).ok().map(|v| Box::new(v) as Box<dyn JwsVerifier>)
            }
            (SigningAlg::ES256, "EC") => {
                ES256.verifier_from_jwk(&jwk).ok().map(|v| Box::new(v) as Box<dyn JwsVerifier>)
            }
            (SigningAlg::EdDSA, "OKP") => {
                EdDSA.verifier_from_jwk(&jwk).ok().map(|v| Box::new(v) as Box<dyn JwsVerifier>)
            }
            _ => None,
        };
        if let Some(v) = verifier {
            if v.verify(parts.signing_input.as_bytes(), &parts.signature).is_ok() {
                return claims_of(&parts.payload);
            }
        }
    }
    Err(JwtError::Signature)
}

/// The claims of a token whose signature we do not check (only to read hints; never trust).
pub fn peek_claims(token: &str) -> Result<Claims, JwtError> {
    claims_of(&split(token)?.payload)
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional), truncated to whole seconds.
pub fn numeric_date(claims: &Claims, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f.trunc() as i64))
}
