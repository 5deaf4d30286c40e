//! A self-hosted proof of work before an SMS is sent (no third-party CAPTCHA): the page gets a
//! challenge signed by the server (HMAC, with its time and the account), the browser finds a
//! nonce such that SHA-256(`challenge:nonce`) starts with `difficulty` zero bits
//! (`/static/pow.js`, about 2^difficulty hashes), and the server checks signature, age (10 min),
//! account, work, and that the challenge is used once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::{UnixTime, UserId};

pub const MAX_AGE_SECS: i64 = 600;

fn sign(secret: &[u8; 32], body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(b"guichet-pow\0");
    mac.update(body.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A new challenge for `user`: `<time>.<random>.<signature>`.
pub fn challenge(secret: &[u8; 32], user: UserId, now: UnixTime) -> String {
    let body = format!("{}.{}", now.0, &crate::crypto::tokens::random_token()[..16]);
    let sig = sign(secret, &format!("{body}.{user}"));
    format!("{body}.{sig}")
}

/// Leading zero bits of a digest.
fn zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for b in d {
        if *b == 0 {
            n += 8;
        } else {
            n += b.leading_zeros();
            break;
        }
    }
    n
}

#[derive(Debug, PartialEq, Eq)]
pub enum PowError {
    Malformed,
    Expired,
    NotEnoughWork,
}

/// Checks a solved challenge (single use is the caller's: it records the challenge).
pub fn verify(
    secret: &[u8; 32],
    user: UserId,
    now: UnixTime,
    challenge: &str,
    nonce: &str,
    difficulty: u32,
) -> Result<(), PowError> {
    let mut parts = challenge.rsplitn(2, '.');
    let (Some(sig), Some(body)) = (parts.next(), parts.next()) else { return Err(PowError::Malformed) };
    let expected = sign(secret, &format!("{body}.{user}"));
    if !crate::crypto::tokens::constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
        return Err(PowError::Malformed);
    }
    let issued: i64 = body.split('.').next().and_then(|t| t.parse().ok()).ok_or(PowError::Malformed)?;
    if now.0 - issued > MAX_AGE_SECS || issued > now.0 + 60 {
        return Err(PowError::Expired);
    }
    if nonce.is_empty() || nonce.len() > 32 || !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PowError::NotEnoughWork);
    }
    let d = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    if zero_bits(&d) < difficulty {
        return Err(PowError::NotEnoughWork);
    }
    Ok(())
}

/// Solves a challenge (tests and scripted clients; browsers run `/static/pow.js`).
pub fn solve(challenge: &str, difficulty: u32) -> String {
    let mut n: u64 = 0;
    loop {
        let d = Sha256::digest(format!("{challenge}:{n}").as_bytes());
        if zero_bits(&d) >= difficulty {
            return n.to_string();
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_and_verify() {
        let secret = [7u8; 32];
        let user = UserId::new_random();
        let now = UnixTime(1_700_000_000);
        let c = challenge(&secret, user, now);
        let n = solve(&c, 10);
        assert_eq!(verify(&secret, user, now, &c, &n, 10), Ok(()));
        assert_eq!(verify(&secret, UserId::new_random(), now, &c, &n, 10), Err(PowError::Malformed));
        assert_eq!(verify(&secret, user, now.plus_secs(601), &c, &n, 10), Err(PowError::Expired));
        assert_eq!(verify(&secret, user, now, &format!("{c}x"), &n, 10), Err(PowError::Malformed));
        // A nonce that does not do the work (almost surely for 20 bits).
        assert!(verify(&secret, user, now, &c, "0", 20).is_err());
    }
}
