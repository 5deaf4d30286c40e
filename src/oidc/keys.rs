//! Signing keys (RS256, ES256, EdDSA) and the JWKS.
//!
//! One file per key in the key directory, `sig-<alg>-<kid>.json` (0600), holding the private
//! JWK and its life: `active_from` (it signs from then on), `retired_at` (it stops signing then).
//! Lifecycle, so relying parties never meet a token signed by a key they have not seen:
//! - `guichet keys rotate --alg A` writes a new key whose `active_from` is
//!   `keys.publish_delay_secs` away: it is in the JWKS at once, signs only later;
//!   the current key of that alg gets `retired_at` = that same instant;
//! - a retired key stays in the JWKS until every token it signed has expired
//!   (`retired_at` + the longest token lifetime), then leaves it.
//!
//! Every node reads the directory at start and every `keys.reload_secs`, so nodes sharing it
//! share one key set. The `kid` is the RFC 7638 thumbprint of the public key.

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsSigner, JwsVerifier, ES256, RS256};
use sha2::{Digest, Sha256};

use crate::crypto::keys::{ensure_dir, KeyError};
use crate::domain::{Clock, SigningAlg, UnixTime};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyFile {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: UnixTime,
    pub active_from: UnixTime,
    pub retired_at: Option<UnixTime>,
    /// Compromised: out of the JWKS at once, signs nothing, verifies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixTime>,
    private_jwk: serde_json::Map<String, serde_json::Value>,
}

/// What `guichet keys list` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: &'static str,
    pub created_at: UnixTime,
    pub active_from: UnixTime,
    pub retired_at: Option<UnixTime>,
    pub published_until: Option<UnixTime>,
}

pub struct LoadedKey {
    pub file: KeyFile,
    signer: Signer,
    verifier: Box<dyn JwsVerifier>,
    public_jwk: serde_json::Value,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey").field("kid", &self.file.kid).field("alg", &self.file.alg).finish()
    }
}

impl LoadedKey {
    pub fn kid(&self) -> &str {
        &self.file.kid
    }
    pub fn alg(&self) -> SigningAlg {
        self.file.alg
    }
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let err = |e: &dyn std::fmt::Display| key_err(Path::new(&self.file.kid), e);
        match &self.signer {
            Signer::Jose(s) => s.sign(message).map_err(|e| err(&e)),
            Signer::P256(key) => p256_sign(key, message).map_err(|e| err(&e)),
            Signer::Ed25519(key) => Ok(ed25519_dalek::Signer::sign(key.as_ref(), message).to_bytes().to_vec()),
        }
    }
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify(message, signature).is_ok()
    }
}

/// How a key signs. ES256 calls OpenSSL's ECDSA on a prepared key with the SHA-256 digest
/// made beforehand: the generic `EVP_DigestSign` path (what josekit uses) looks the algorithms
/// up in OpenSSL 3's provider tables on every call and encodes then decodes a DER signature,
/// about 40k of the 290k instructions of a signature (callgrind, docs/PERFORMANCE.md).
/// EdDSA signs with ed25519-dalek: OpenSSL 3.0's Ed25519 is portable C, at half the speed
/// (docs/PERFORMANCE.md). Ed25519 is deterministic, so both make the same signature (tested).
enum Signer {
    Jose(Box<dyn JwsSigner>),
    P256(openssl::ec::EcKey<openssl::pkey::Private>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// The Ed25519 private key of an EdDSA JWK (`crv` Ed25519, `d`, `x`), checked: `x` must be
/// the public key of `d`.
fn ed25519_key(jwk: &Jwk, path: &Path) -> Result<ed25519_dalek::SigningKey, KeyError> {
    let field = |name: &str| -> Result<[u8; 32], KeyError> {
        jwk.parameter(name)
            .and_then(|v| v.as_str())
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| key_err(path, format!("EdDSA key without a valid {name}")))
    };
    if jwk.parameter("crv").and_then(|v| v.as_str()) != Some("Ed25519") {
        return Err(key_err(path, "EdDSA key not on Ed25519"));
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&field("d")?);
    if key.verifying_key().to_bytes() != field("x")? {
        return Err(key_err(path, "EdDSA key whose x is not the public key of d"));
    }
    Ok(key)
}

/// The P-256 private key of an ES256 JWK (`d`, `x`, `y`), checked.
fn p256_key(jwk: &Jwk, path: &Path) -> Result<openssl::ec::EcKey<openssl::pkey::Private>, KeyError> {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::nid::Nid;
    let field = |name: &str| -> Result<BigNum, KeyError> {
        let bytes = jwk
            .parameter(name)
            .and_then(|v| v.as_str())
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| key_err(path, format!("ES256 key without a valid {name}")))?;
        BigNum::from_slice(&bytes).map_err(|e| key_err(path, e))
    };
    let (d, x, y) = (field("d")?, field("x")?, field("y")?);
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| key_err(path, e))?;
    let mut ctx = BigNumContext::new().map_err(|e| key_err(path, e))?;
    let mut point = EcPoint::new(&group).map_err(|e| key_err(path, e))?;
    point.set_affine_coordinates_gfp(&group, &x, &y, &mut ctx).map_err(|e| key_err(path, e))?;
    let key = EcKey::from_private_components(&group, &d, &point).map_err(|e| key_err(path, e))?;
    key.check_key().map_err(|e| key_err(path, e))?;
    Ok(key)
}

/// An ES256 JWS signature (RFC 7518 §3.4: R and S, 32 bytes each).
fn p256_sign(
    key: &openssl::ec::EcKey<openssl::pkey::Private>,
    message: &[u8],
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let digest = Sha256::digest(message);
    let sig = openssl::ecdsa::EcdsaSig::sign(&digest, key)?;
    let mut out = sig.r().to_vec_padded(32)?;
    out.extend_from_slice(&sig.s().to_vec_padded(32)?);
    Ok(out)
}

fn key_err(path: &Path, e: impl std::fmt::Display) -> KeyError {
    KeyError::File { path: path.to_path_buf(), reason: e.to_string() }
}

pub struct KeySet {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    /// Longest lifetime of anything we sign: how long a retired key stays published.
    max_token_ttl: i64,
    keys: RwLock<Arc<Vec<Arc<LoadedKey>>>>,
    /// The JWKS document as served, and until when it stays right (the next retired key to
    /// leave it); cleared when the key set changes.
    jwks_doc: RwLock<Option<(bytes::Bytes, UnixTime)>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl KeySet {
    /// Loads the key directory, generating a key for each algorithm that has none.
    pub fn load_or_init(dir: &Path, clock: Arc<dyn Clock>, max_token_ttl: i64) -> Result<Self, KeyError> {
        ensure_dir(dir)?;
        let now = clock.now();
        {
            // Nodes started together on an empty directory take turns here: the first writes
            // the keys, the others find them (each generating its own, they refused each
            // other's tokens until their next reload). Released when the file is closed.
            let lock_path = dir.join(".init.lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&lock_path)
                .map_err(|e| key_err(&lock_path, e))?;
            lock.lock().map_err(|e| key_err(&lock_path, e))?;
            let existing = read_dir(dir)?;
            for alg in SigningAlg::ALL {
                if !existing.iter().any(|k| k.alg == *alg) {
                    write_new(dir, generate(*alg, now, now)?)?;
                }
            }
        }
        let set = Self {
            dir: dir.to_path_buf(),
            clock,
            max_token_ttl,
            keys: RwLock::new(Arc::new(Vec::new())),
            jwks_doc: RwLock::new(None),
        };
        set.reload()?;
        Ok(set)
    }

    /// Re-reads the directory (new keys from a rotation on another node or the CLI).
    ///
    /// A directory listing is not atomic: read while another process rotates, it can show the
    /// old key already retired but not yet the new one. Such a reading, which would leave an
    /// algorithm that signs now without a signing key, is read again (a few times) before it
    /// is believed.
    pub fn reload(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let current = self.snapshot();
        let mut attempts = 0;
        let loaded = loop {
            let mut loaded = Vec::new();
            for f in read_dir(&self.dir)? {
                loaded.push(Arc::new(load(f, &self.dir)?));
            }
            let gap = SigningAlg::ALL
                .iter()
                .any(|alg| signing_in(&current, *alg, now).is_some() && signing_in(&loaded, *alg, now).is_none());
            attempts += 1;
            if !gap || attempts >= 5 {
                break loaded;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        if let Ok(mut w) = self.keys.write() {
            *w = Arc::new(loaded);
        }
        if let Ok(mut d) = self.jwks_doc.write() {
            *d = None;
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<Arc<LoadedKey>>> {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// The key that signs for `alg` now: the most recently activated one that is active.
    pub fn signing_key(&self, alg: SigningAlg) -> Option<Arc<LoadedKey>> {
        signing_in(&self.snapshot(), alg, self.clock.now())
    }

    fn published(&self, k: &LoadedKey, now: UnixTime) -> bool {
        k.file.revoked_at.is_none() && k.file.retired_at.is_none_or(|r| r.plus_secs(self.max_token_ttl) > now)
    }

    /// A published key by `kid`, for verifying our own tokens.
    pub fn verification_key(&self, kid: &str) -> Option<Arc<LoadedKey>> {
        let now = self.clock.now();
        self.snapshot().iter().find(|k| k.file.kid == kid && self.published(k, now)).cloned()
    }

    /// The public JWK Set (RFC 7517 §5): every published key.
    pub fn jwks(&self) -> serde_json::Value {
        let now = self.clock.now();
        let keys: Vec<serde_json::Value> =
            self.snapshot().iter().filter(|k| self.published(k, now)).map(|k| k.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// The JWKS as served (JSON bytes): serialised once per change of the key set, not per
    /// request.
    pub fn jwks_document(&self) -> bytes::Bytes {
        let now = self.clock.now();
        if let Ok(cached) = self.jwks_doc.read() {
            if let Some((doc, until)) = cached.as_ref() {
                if now < *until {
                    return doc.clone();
                }
            }
        }
        let doc = bytes::Bytes::from(serde_json::to_vec(&self.jwks()).unwrap_or_default());
        let until = self
            .snapshot()
            .iter()
            .filter_map(|k| k.file.retired_at.map(|r| r.plus_secs(self.max_token_ttl)))
            .filter(|t| *t > now)
            .min()
            .unwrap_or(UnixTime(i64::MAX));
        if let Ok(mut w) = self.jwks_doc.write() {
            *w = Some((doc.clone(), until));
        }
        doc
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        let now = self.clock.now();
        let mut v: Vec<KeyInfo> = self
            .snapshot()
            .iter()
            .map(|k| {
                let f = &k.file;
                let state = if f.revoked_at.is_some() {
                    "revoked"
                } else if !self.published(k, now) {
                    "expired"
                } else if f.retired_at.is_some_and(|r| r <= now) {
                    "retired"
                } else if f.active_from > now {
                    "next"
                } else if self.signing_key(f.alg).is_some_and(|s| s.file.kid == f.kid) {
                    "active"
                } else {
                    "standby"
                };
                KeyInfo {
                    kid: f.kid.clone(),
                    alg: f.alg,
                    state,
                    created_at: f.created_at,
                    active_from: f.active_from,
                    retired_at: f.retired_at,
                    published_until: f.retired_at.map(|r| r.plus_secs(self.max_token_ttl)),
                }
            })
            .collect();
        v.sort_by_key(|k| (k.alg, k.active_from));
        v
    }

    /// Adds a key for `alg` that signs from `now + publish_delay` on, and retires the current
    /// one(s) of that alg at that instant. Returns the new key's description.
    pub fn rotate(&self, alg: SigningAlg, publish_delay: i64) -> Result<KeyInfo, KeyError> {
        let now = self.clock.now();
        let active_from = now.plus_secs(publish_delay.max(0));
        // Order matters for nodes reloading meanwhile: the new key exists before the old one
        // is told to retire, so there is never an instant without a signing key.
        self.reload()?;
        let new = generate(alg, now, active_from)?;
        let kid = new.kid.clone();
        write_new(&self.dir, new)?;
        for k in self.snapshot().iter() {
            let f = &k.file;
            if f.alg == alg && f.kid != kid && f.retired_at.is_none_or(|r| r > active_from) {
                let mut f = f.clone();
                f.retired_at = Some(active_from);
                write_replace(&self.dir, &f)?;
            }
        }
        self.reload()?;
        self.list()
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| key_err(&self.dir, "new key not found after writing it"))
    }
}

impl KeySet {
    /// Revokes a compromised key: it leaves the JWKS and stops verifying at once (tokens it
    /// signed are refused); if it was signing, a new key of its algorithm signs from now on.
    /// Other nodes apply it at their next reload (`keys.reload_secs`). Returns the keys changed.
    pub fn revoke(&self, kid: &str) -> Result<Vec<KeyInfo>, KeyError> {
        self.reload()?;
        let now = self.clock.now();
        let target = self
            .snapshot()
            .iter()
            .find(|k| k.file.kid == kid)
            .map(|k| k.file.clone())
            .ok_or_else(|| key_err(&self.dir, format!("no key with kid {kid:?}")))?;
        let mut changed = Vec::new();
        if self.signing_key(target.alg).is_some_and(|s| s.file.kid == kid) {
            changed.push(self.rotate(target.alg, 0)?);
        }
        let mut f = target;
        f.revoked_at = Some(now);
        f.retired_at = Some(f.retired_at.map_or(now, |r| r.min(now)));
        write_replace(&self.dir, &f)?;
        self.reload()?;
        changed.extend(self.list().into_iter().filter(|k| k.kid == kid));
        Ok(changed)
    }
}

/// The key of `keys` that signs for `alg` at `now`: the most recently activated active one.
fn signing_in(keys: &[Arc<LoadedKey>], alg: SigningAlg, now: UnixTime) -> Option<Arc<LoadedKey>> {
    keys.iter()
        .filter(|k| {
            k.file.alg == alg
                && k.file.revoked_at.is_none()
                && k.file.active_from <= now
                && k.file.retired_at.is_none_or(|r| r > now)
        })
        .max_by(|a, b| (a.file.active_from, &a.file.kid).cmp(&(b.file.active_from, &b.file.kid)))
        .cloned()
}

fn file_name(f: &KeyFile) -> String {
    format!("sig-{}-{}.json", f.alg.as_str().to_ascii_lowercase(), f.kid)
}

fn read_dir(dir: &Path) -> Result<Vec<KeyFile>, KeyError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| KeyError::Dir { path: dir.to_path_buf(), reason: e.to_string() })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| KeyError::Dir { path: dir.to_path_buf(), reason: e.to_string() })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("sig-") && name.ends_with(".json")) {
            continue;
        }
        let path = e.path();
        let meta = std::fs::metadata(&path).map_err(|err| key_err(&path, err))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(key_err(&path, "is readable by group or others; run chmod 600 on it"));
        }
        let raw = std::fs::read(&path).map_err(|err| key_err(&path, err))?;
        let f: KeyFile =
            serde_json::from_slice(&raw).map_err(|err| key_err(&path, format!("not a key file: {err}")))?;
        out.push(f);
    }
    Ok(out)
}

fn load(f: KeyFile, dir: &Path) -> Result<LoadedKey, KeyError> {
    let path = dir.join(file_name(&f));
    let jwk = Jwk::from_map(f.private_jwk.clone()).map_err(|e| key_err(&path, e))?;
    let (signer, verifier): (Signer, Box<dyn JwsVerifier>) = match f.alg {
        SigningAlg::RS256 => (
            Signer::Jose(Box::new(RS256.signer_from_jwk(&jwk).map_err(|e| key_err(&path, e))?)),
            Box::new(RS256.verifier_from_jwk(&public_of(&jwk, &path)?).map_err(|e| key_err(&path, e))?),
        ),
        SigningAlg::ES256 => (
            Signer::P256(p256_key(&jwk, &path)?),
            Box::new(ES256.verifier_from_jwk(&public_of(&jwk, &path)?).map_err(|e| key_err(&path, e))?),
        ),
        SigningAlg::EdDSA => (
            Signer::Ed25519(Box::new(ed25519_key(&jwk, &path)?)),
            Box::new(EdDSA.verifier_from_jwk(&public_of(&jwk, &path)?).map_err(|e| key_err(&path, e))?),
        ),
    };
    let mut public: serde_json::Map<String, serde_json::Value> = public_of(&jwk, &path)?.as_ref().clone();
    public.insert("kid".into(), f.kid.clone().into());
    public.insert("alg".into(), f.alg.as_str().into());
    public.insert("use".into(), "sig".into());
    Ok(LoadedKey { file: f, signer, verifier, public_jwk: serde_json::Value::Object(public) })
}

fn public_of(jwk: &Jwk, path: &Path) -> Result<Jwk, KeyError> {
    let mut p = jwk.to_public_key().map_err(|e| key_err(path, e))?;
    // Only the members a public key needs (to_public_key keeps kid/alg/use if present).
    let _ = p.set_parameter("key_ops", None);
    Ok(p)
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url).
pub fn thumbprint(public: &serde_json::Map<String, serde_json::Value>) -> String {
    let members: &[&str] = match public.get("kty").and_then(|v| v.as_str()) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["crv", "kty", "x"],
    };
    let canon: BTreeMap<&str, &serde_json::Value> =
        members.iter().filter_map(|m| public.get(*m).map(|v| (*m, v))).collect();
    let json = serde_json::to_string(&canon).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

fn generate(alg: SigningAlg, now: UnixTime, active_from: UnixTime) -> Result<KeyFile, KeyError> {
    let err = |e: josekit::JoseError| KeyError::File { path: PathBuf::from(alg.as_str()), reason: e.to_string() };
    let jwk = match alg {
        SigningAlg::RS256 => RS256.generate_key_pair(2048).map_err(err)?.to_jwk_key_pair(),
        SigningAlg::ES256 => ES256.generate_key_pair().map_err(err)?.to_jwk_key_pair(),
        SigningAlg::EdDSA => EdDSA.generate_key_pair(EdCurve::Ed25519).map_err(err)?.to_jwk_key_pair(),
    };
    let private_jwk: serde_json::Map<String, serde_json::Value> = jwk.as_ref().clone();
    let public: serde_json::Map<String, serde_json::Value> = jwk.to_public_key().map_err(err)?.as_ref().clone();
    Ok(KeyFile {
        kid: thumbprint(&public),
        alg,
        created_at: now,
        active_from,
        retired_at: None,
        revoked_at: None,
        private_jwk,
    })
}

fn write_new(dir: &Path, f: KeyFile) -> Result<(), KeyError> {
    let path = dir.join(file_name(&f));
    let bytes = serde_json::to_vec_pretty(&f).map_err(|e| key_err(&path, e))?;
    crate::crypto::keys::load_or_create(&path, || bytes)?;
    Ok(())
}

/// Atomic replace (temp file 0600 + rename).
fn write_replace(dir: &Path, f: &KeyFile) -> Result<(), KeyError> {
    use std::io::Write;
    let path = dir.join(file_name(f));
    let tmp = dir.join(format!(".{}.tmp", file_name(f)));
    let bytes = serde_json::to_vec_pretty(f).map_err(|e| key_err(&path, e))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| key_err(&tmp, e))?;
    file.write_all(&bytes).and_then(|_| file.sync_all()).map_err(|e| key_err(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| key_err(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SystemClock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A node reloading while another rotates never finds itself without a signing key.
    /// The prepared ES256 signer makes signatures that josekit (another implementation of the
    /// JWS encoding) verifies, and that fail once the message changes.
    #[test]
    fn es256_signatures_verify_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_init(dir.path(), Arc::new(SystemClock), 600).unwrap();
        let key = keys.signing_key(SigningAlg::ES256).unwrap();
        let public = Jwk::from_map(key.public_jwk.as_object().unwrap().clone()).unwrap();
        let verifier = ES256.verifier_from_jwk(&public).unwrap();
        for i in 0..50 {
            let message = format!("header.payload-{i}");
            let sig = key.sign(message.as_bytes()).unwrap();
            assert_eq!(sig.len(), 64);
            verifier.verify(message.as_bytes(), &sig).unwrap();
            assert!(verifier.verify(b"header.other", &sig).is_err());
        }
    }

    /// The Ed25519 signer makes the very signatures OpenSSL's (through josekit) makes: Ed25519
    /// is deterministic. A key file whose public half does not match is refused.
    #[test]
    fn eddsa_signatures_are_openssl_s() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeySet::load_or_init(dir.path(), Arc::new(SystemClock), 600).unwrap();
        let key = keys.signing_key(SigningAlg::EdDSA).unwrap();
        let private = Jwk::from_map(key.file.private_jwk.clone()).unwrap();
        let openssl = EdDSA.signer_from_jwk(&private).unwrap();
        let public = Jwk::from_map(key.public_jwk.as_object().unwrap().clone()).unwrap();
        let verifier = EdDSA.verifier_from_jwk(&public).unwrap();
        for i in 0..50 {
            let message = format!("header.payload-{i}").repeat(i + 1);
            let sig = key.sign(message.as_bytes()).unwrap();
            assert_eq!(sig, openssl.sign(message.as_bytes()).unwrap());
            verifier.verify(message.as_bytes(), &sig).unwrap();
            assert!(verifier.verify(b"header.other", &sig).is_err());
        }

        let mut other = private.clone();
        let x = URL_SAFE_NO_PAD.encode([9u8; 32]);
        other.set_parameter("x", Some(x.into())).unwrap();
        let err = ed25519_key(&other, Path::new("k.json")).unwrap_err().to_string();
        assert!(err.contains("not the public key"), "{err}");
        let mut short = private.clone();
        short.set_parameter("d", Some("AAAA".into())).unwrap();
        let err = ed25519_key(&short, Path::new("k.json")).unwrap_err().to_string();
        assert!(err.contains("valid d"), "{err}");
    }

    /// Nodes started at the same instant on an empty key directory end up with one key set.
    #[test]
    fn nodes_starting_together_share_one_key_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || KeySet::load_or_init(&path, Arc::new(SystemClock), 600).unwrap())
            })
            .collect();
        let kids: Vec<String> = nodes
            .into_iter()
            .map(|n| n.join().unwrap().signing_key(SigningAlg::ES256).unwrap().kid().to_owned())
            .collect();
        assert!(kids.iter().all(|k| k == &kids[0]), "{kids:?}");
        assert_eq!(read_dir(&path).unwrap().len(), SigningAlg::ALL.len());
    }

    #[test]
    fn rotation_never_leaves_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let a = KeySet::load_or_init(dir.path(), clock.clone(), 600).unwrap();
        let b = Arc::new(KeySet::load_or_init(dir.path(), clock, 600).unwrap());
        let done = Arc::new(AtomicBool::new(false));
        let (b2, done2) = (b.clone(), done.clone());
        let watcher = std::thread::spawn(move || {
            let mut gaps = 0;
            while !done2.load(Ordering::SeqCst) {
                b2.reload().unwrap();
                if b2.signing_key(SigningAlg::ES256).is_none() {
                    gaps += 1;
                }
            }
            gaps
        });
        for _ in 0..20 {
            a.rotate(SigningAlg::ES256, 0).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        assert_eq!(watcher.join().unwrap(), 0);
        // Exactly one ES256 key signs; the others are retired.
        let active: Vec<_> =
            a.list().into_iter().filter(|k| k.alg == SigningAlg::ES256 && k.state == "active").collect();
        assert_eq!(active.len(), 1);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let jwk: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
