//! argon2id password hashing on the blocking pool, behind a bounded semaphore so a login flood
//! queues (briefly) instead of starving the async runtime; a caller that cannot get a slot in
//! time gets [`PasswordError::Busy`] (503 + Retry-After). Unknown users are verified against a
//! dummy hash computed with the same parameters, so both paths do the same work.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::SecretString;
use crate::config::PasswordSettings;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many sign-ins are being processed; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Outcome of a verification. `needs_rehash`: the stored hash uses other parameters than the
/// configured ones and should be replaced by a fresh hash of the (now verified) password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy_hash: Arc<str>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(s: &PasswordSettings) -> Result<Self, PasswordError> {
        let params = Params::new(s.argon2_memory_kib, s.argon2_iterations, s.argon2_parallelism, None)
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        let slots = if s.max_concurrent_hashes == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        } else {
            s.max_concurrent_hashes
        };
        let dummy_hash = hash_blocking(&params, "guichet dummy password, never matches")?;
        Ok(Self {
            params,
            dummy_hash: dummy_hash.into(),
            slots: Arc::new(Semaphore::new(slots)),
            queue_timeout: Duration::from_millis(s.queue_timeout_ms),
        })
    }

    fn argon2(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    /// Hashes a new password (PHC string).
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let pw = password.clone();
        self.run(move || hash_blocking(&params, pw.expose())).await
    }

    /// Verifies `password` against `stored`; `None` (unknown user, or an account without a
    /// password) runs the same work against the dummy hash and never succeeds.
    pub async fn verify(&self, stored: Option<&str>, password: &SecretString) -> Result<Verification, PasswordError> {
        let real = stored.is_some();
        let hash: String = stored.map(str::to_owned).unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        let pw = password.clone();
        self.run(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(p) => p,
                // A corrupt stored hash fails closed (and is logged by the caller's metrics).
                Err(_) => return Ok(Verification { ok: false, needs_rehash: false }),
            };
            let ok = Self::argon2(&params).verify_password(pw.expose().as_bytes(), &parsed).is_ok() && real;
            let needs_rehash = ok && !matches_params(&parsed, &params);
            Ok(Verification { ok, needs_rehash })
        })
        .await
    }

    async fn run<T, F>(&self, f: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _g = span.enter();
            f()
        })
        .await
        .map_err(|e| PasswordError::Internal(e.to_string()))?
    }
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    PasswordHasher::argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Internal(e.to_string()))
}

fn matches_params(h: &PasswordHash<'_>, p: &Params) -> bool {
    if h.algorithm.as_str() != "argon2id" || h.version != Some(0x13) {
        return false;
    }
    match Params::try_from(h) {
        Ok(hp) => hp.m_cost() == p.m_cost() && hp.t_cost() == p.t_cost() && hp.p_cost() == p.p_cost(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(m: u32, t: u32) -> PasswordSettings {
        PasswordSettings { argon2_memory_kib: m, argon2_iterations: t, ..PasswordSettings::default() }
    }

    #[tokio::test]
    async fn hash_verify_and_rehash_on_parameter_change() {
        let old = PasswordHasher::new(&settings(1024, 1)).unwrap();
        let pw = SecretString::new("correct horse battery staple");
        let h = old.hash(&pw).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert_eq!(old.verify(Some(&h), &pw).await.unwrap(), Verification { ok: true, needs_rehash: false });
        assert!(!old.verify(Some(&h), &SecretString::new("wrong")).await.unwrap().ok);

        let new = PasswordHasher::new(&settings(2048, 2)).unwrap();
        assert_eq!(new.verify(Some(&h), &pw).await.unwrap(), Verification { ok: true, needs_rehash: true });
        // A wrong password never asks for a rehash (we must not hash what we did not verify).
        assert_eq!(
            new.verify(Some(&h), &SecretString::new("x")).await.unwrap(),
            Verification { ok: false, needs_rehash: false }
        );
    }

    #[tokio::test]
    async fn unknown_user_uses_dummy_hash_with_same_parameters_and_fails() {
        let h = PasswordHasher::new(&settings(1024, 1)).unwrap();
        assert!(h.dummy_hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let v = h.verify(None, &SecretString::new("guichet dummy password, never matches")).await.unwrap();
        assert!(!v.ok);
        assert!(!h.verify(Some("not a phc string"), &SecretString::new("x")).await.unwrap().ok);
    }

    #[tokio::test]
    async fn saturated_pool_answers_busy_instead_of_queuing_forever() {
        let mut s = settings(1024, 1);
        s.max_concurrent_hashes = 1;
        s.queue_timeout_ms = 50;
        let h = PasswordHasher::new(&s).unwrap();
        let _held = h.slots.clone().acquire_owned().await.unwrap();
        assert!(matches!(h.hash(&SecretString::new("x")).await, Err(PasswordError::Busy)));
    }
}
