//! Secret material of authentication factors (TOTP seeds) encrypted at rest with AES-256-GCM.
//!
//! Keys are files `keys/seal-<kid>.key` (32 random bytes, 0600), created on first start. The
//! newest seals; every key present can open what it sealed (the `kid` is in the sealed text), so
//! `guichet keys rotate-seal` adds a key without breaking stored secrets. Each sealed value is
//! bound to what it belongs to (associated data: e.g. the factor id and the user id), so a sealed
//! secret copied onto another row does not open.
//!
//! Format: `v1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>`.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::keys::{ensure_dir, load_or_create, KeyError};

struct SealKey {
    kid: String,
    cipher: Aes256Gcm,
}

pub struct Sealer {
    dir: PathBuf,
    /// Oldest first; the last one seals.
    keys: RwLock<Vec<SealKey>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("no seal key {0} in the key directory")]
    UnknownKey(String),
    #[error("sealed value does not open (wrong key or bound to something else)")]
    Open,
    #[error(transparent)]
    Key(#[from] KeyError),
}

fn key_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, KeyError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| KeyError::Dir { path: dir.to_path_buf(), reason: e.to_string() })?;
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kid = name.strip_prefix("seal-")?.strip_suffix(".key")?.to_owned();
            Some((kid, e.path()))
        })
        .collect();
    // Kids start with their creation time: this order is their age.
    out.sort();
    Ok(out)
}

/// Kids sort by creation time (nanoseconds: two keys made in one second still sort).
fn new_kid() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{now:020}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn random_key() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

impl Sealer {
    /// Loads the seal keys of `dir`, creating the first one when there is none.
    pub fn load_or_init(dir: &Path) -> Result<Self, KeyError> {
        ensure_dir(dir)?;
        let s = Self { dir: dir.to_path_buf(), keys: RwLock::new(Vec::new()) };
        if key_files(dir)?.is_empty() {
            load_or_create(&dir.join(format!("seal-{}.key", new_kid())), random_key)?;
        }
        s.reload()?;
        Ok(s)
    }

    /// Re-reads the key directory (a key added by another node or the CLI).
    pub fn reload(&self) -> Result<(), KeyError> {
        let mut keys = Vec::new();
        for (kid, path) in key_files(&self.dir)? {
            let bytes = load_or_create(&path, random_key)?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| KeyError::File { path: path.clone(), reason: "a seal key is 32 bytes".into() })?;
            keys.push(SealKey { kid, cipher });
        }
        if let Ok(mut w) = self.keys.write() {
            *w = keys;
        }
        Ok(())
    }

    /// Adds a key that seals from now on; returns its kid. Older keys keep opening.
    pub fn rotate(&self) -> Result<String, KeyError> {
        let kid = new_kid();
        load_or_create(&self.dir.join(format!("seal-{kid}.key")), random_key)?;
        self.reload()?;
        Ok(kid)
    }

    pub fn seal(&self, plaintext: &[u8], bound_to: &str) -> Result<String, SealError> {
        let keys = self.keys.read().map_err(|_| SealError::Open)?;
        let key = keys.last().ok_or_else(|| SealError::UnknownKey("(none)".into()))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: bound_to.as_bytes() })
            .map_err(|_| SealError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("v1.{}.{}", key.kid, URL_SAFE_NO_PAD.encode(out)))
    }

    pub fn open(&self, sealed: &str, bound_to: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let find = |keys: &Vec<SealKey>| keys.iter().position(|k| k.kid == kid);
        if self.keys.read().map(|k| find(&k).is_none()).unwrap_or(true) {
            // Added by another node since we last read the directory?
            self.reload()?;
        }
        let keys = self.keys.read().map_err(|_| SealError::Open)?;
        let key = find(&keys).map(|i| &keys[i]).ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let (nonce, ct) = raw.split_at(12);
        key.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: bound_to.as_bytes() })
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_bind_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::load_or_init(dir.path()).unwrap();
        let sealed = s.seal(b"totp seed", "factor-1|user-1").unwrap();
        assert!(sealed.starts_with("v1.") && !sealed.contains("totp seed"));
        assert_eq!(s.open(&sealed, "factor-1|user-1").unwrap(), b"totp seed");
        assert!(matches!(s.open(&sealed, "factor-2|user-1"), Err(SealError::Open)), "bound to its row");
        // A new key seals; the old one still opens; another node sees the new key.
        let other = Sealer::load_or_init(dir.path()).unwrap();
        let kid = s.rotate().unwrap();
        let sealed2 = s.seal(b"second", "x").unwrap();
        assert!(sealed2.contains(&kid));
        assert_eq!(s.open(&sealed, "factor-1|user-1").unwrap(), b"totp seed");
        assert_eq!(other.open(&sealed2, "x").unwrap(), b"second");
        // Tampering is detected.
        let mut bad = sealed2.clone();
        bad.pop();
        bad.push(if sealed2.ends_with('A') { 'B' } else { 'A' });
        assert!(s.open(&bad, "x").is_err());
        assert!(matches!(s.open("v1.nope.AAAA", "x"), Err(SealError::Malformed)));
    }
}
