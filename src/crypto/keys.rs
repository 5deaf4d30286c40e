//! The key directory. Created on first start (0700), every file written 0600 with
//! create-new semantics so nodes starting together never overwrite each other's key.
//! Holds the server secret (keyed digests of client secrets and similar); the OIDC signing
//! keys join it in the OpenID Provider issue.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key directory {path}: {reason}")]
    Dir { path: PathBuf, reason: String },
    #[error("key file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// 256-bit server secret, loaded from `<dir>/server-secret.key` or generated there.
#[derive(Clone)]
pub struct ServerSecret([u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

impl ServerSecret {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

pub fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    let err = |reason: String| KeyError::Dir { path: dir.to_path_buf(), reason };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let meta = std::fs::metadata(dir).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Reads `path`, or creates it (0600) with `make()` when absent. A concurrent creator wins the
/// race cleanly: we then read what it wrote.
pub fn load_or_create(path: &Path, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, KeyError> {
    let err = |reason: String| KeyError::File { path: path.to_path_buf(), reason };
    if !path.exists() {
        // Written whole under a private name, then linked into place: a reader (another node
        // starting, a reload) never sees a half-written file, and of two creators one wins.
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let bytes = make();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()));
        let linked = written.and_then(|_| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated key file");
                return Ok(bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e.to_string())),
        }
    }
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err("is readable by group or others; run chmod 600 on it".into()));
    }
    std::fs::read(path).map_err(|e| err(e.to_string()))
}

pub fn server_secret(dir: &Path) -> Result<ServerSecret, KeyError> {
    ensure_dir(dir)?;
    let path = dir.join("server-secret.key");
    let raw = load_or_create(&path, || {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        hex::encode(b).into_bytes()
    })?;
    let text = String::from_utf8_lossy(&raw);
    let bytes =
        hex::decode(text.trim()).map_err(|e| KeyError::File { path: path.clone(), reason: format!("not hex: {e}") })?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| KeyError::File { path: path.clone(), reason: "must hold 32 bytes (64 hex digits)".into() })?;
    Ok(ServerSecret(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_with_private_permissions() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("keys");
        let a = server_secret(&dir).unwrap();
        let b = server_secret(&dir).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        let mode = std::fs::metadata(dir.join("server-secret.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::set_permissions(dir.join("server-secret.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(server_secret(&dir).unwrap_err().to_string().contains("chmod 600"));
    }
}
