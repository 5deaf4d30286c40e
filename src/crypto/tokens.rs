//! High-entropy opaque values we generate (session ids, CSRF tokens, later refresh tokens,
//! client secrets, link codes). Only their SHA-256 digest is stored; comparisons are
//! constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits from the OS CSPRNG, base64url without padding (43 characters).
pub fn random_token() -> String {
    random_b64(&mut rand::rngs::OsRng)
}

/// 256 random bits from the thread's ChaCha generator (rand's `ThreadRng`, seeded and reseeded
/// from the OS), base64url: for identifiers that must be unique and unguessable but guard
/// nothing by themselves (a token's `jti`), minted on every token request. No system call, where
/// [`random_token`] makes one per value; secrets keep coming from the OS directly.
pub fn random_id() -> String {
    random_b64(&mut rand::thread_rng())
}

fn random_b64(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Hex SHA-256 digest: the stored form of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_url_safe() {
        for (a, b) in [(random_token(), random_token()), (random_id(), random_id())] {
            assert_ne!(a, b);
            assert_eq!(a.len(), 43);
            assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(constant_time_eq(b"x", b"x"));
        assert!(!constant_time_eq(b"x", b"xy"));
    }
}
