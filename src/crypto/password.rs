//! argon2id password hashing on the blocking pool, behind a bounded semaphore so a login flood
//! queues (briefly) instead of starving the async runtime; a caller that cannot get a slot in
//! time gets [`PasswordError::Busy`] (503 + Retry-After). Unknown users are verified against a
//! dummy hash computed with the same parameters, so both paths do the same work.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
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
    max_slots: usize,
    queue_timeout: Duration,
    memory: Arc<BlockPool>,
}

/// argon2's working memory (`argon2_memory_kib`, 19 MiB by default), reused from one
/// verification to the next: a fresh allocation per sign-in is a fresh mmap and page faults,
/// about a third of a hash's time in system CPU. At most one set per hashing slot is kept, and
/// [`PasswordHasher::release_idle_memory`] gives them back to the OS once sign-ins stop, so the
/// idle RSS stays small.
#[derive(Default)]
struct BlockPool {
    free: std::sync::Mutex<Vec<Vec<argon2::Block>>>,
    /// When a set was last handed out (milliseconds since the pool was made).
    last_use_ms: std::sync::atomic::AtomicU64,
    born: std::sync::OnceLock<std::time::Instant>,
}

impl BlockPool {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.get_or_init(std::time::Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn take(&self, blocks: usize) -> Vec<argon2::Block> {
        self.last_use_ms.store(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
        let mut set = self.free.lock().ok().and_then(|mut f| f.pop()).unwrap_or_default();
        if set.len() != blocks {
            set = vec![argon2::Block::default(); blocks];
        }
        set
    }

    fn give_back(&self, set: Vec<argon2::Block>, keep: usize) {
        if let Ok(mut f) = self.free.lock() {
            if f.len() < keep {
                f.push(set);
            }
        }
    }

    /// Frees the kept sets when none was used for `idle`; returns how many were freed.
    fn release_if_idle(&self, idle: Duration) -> usize {
        let last = self.last_use_ms.load(std::sync::atomic::Ordering::Relaxed);
        if self.now_ms().saturating_sub(last) < u64::try_from(idle.as_millis()).unwrap_or(u64::MAX) {
            return 0;
        }
        self.free.lock().map(|mut f| std::mem::take(&mut *f).len()).unwrap_or(0)
    }
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
            max_slots: slots,
            queue_timeout: Duration::from_millis(s.queue_timeout_ms),
            memory: Arc::new(BlockPool::default()),
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
        let memory = self.memory.clone();
        let keep = self.slots_total();
        self.run(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(p) => p,
                // A corrupt stored hash fails closed (and is logged by the caller's metrics).
                Err(_) => return Ok(Verification { ok: false, needs_rehash: false }),
            };
            let ok = verify_with_pool(&parsed, pw.expose().as_bytes(), &memory, keep) && real;
            let needs_rehash = ok && !matches_params(&parsed, &params);
            Ok(Verification { ok, needs_rehash })
        })
        .await
    }

    /// Gives argon2's working memory back to the OS once no sign-in used it for `idle`.
    pub fn release_idle_memory(&self, idle: Duration) -> usize {
        self.memory.release_if_idle(idle)
    }

    fn slots_total(&self) -> usize {
        // The semaphore's size: what may hash at once, and so how many memory sets to keep.
        self.max_slots
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
        let request_id = crate::telemetry::current_request_id();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            crate::telemetry::in_request(request_id, f)
        })
        .await
        .map_err(|e| PasswordError::Internal(e.to_string()))?
    }
}

/// RFC 9106 verification as `PasswordVerifier` does it (same parameters, salt and output length
/// as the stored hash, constant-time comparison), with working memory from the pool.
fn verify_with_pool(h: &PasswordHash<'_>, password: &[u8], pool: &BlockPool, keep: usize) -> bool {
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
    let Ok(alg) = Algorithm::try_from(h.algorithm) else { return false };
    let Ok(version) = Version::try_from(h.version.unwrap_or(0x13)) else { return false };
    let Ok(params) = Params::try_from(h) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    let mut blocks = pool.take(params.block_count());
    let ok =
        Argon2::new(alg, version, params).hash_password_into_with_memory(password, salt, &mut out, &mut blocks).is_ok()
            && crate::crypto::tokens::constant_time_eq(&out, expected.as_bytes());
    pool.give_back(blocks, keep);
    ok
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
    use argon2::password_hash::PasswordVerifier;

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
    async fn working_memory_is_reused_then_released_when_idle() {
        let mut s = settings(1024, 1);
        s.max_concurrent_hashes = 2;
        let h = PasswordHasher::new(&s).unwrap();
        let pw = SecretString::new("correct horse battery staple");
        let stored = h.hash(&pw).await.unwrap();
        for _ in 0..3 {
            assert!(h.verify(Some(&stored), &pw).await.unwrap().ok);
            assert!(!h.verify(Some(&stored), &SecretString::new("nope")).await.unwrap().ok);
        }
        assert_eq!(h.memory.free.lock().unwrap().len(), 1, "one set kept, reused");
        assert_eq!(h.release_idle_memory(Duration::from_secs(3600)), 0, "in use recently: kept");
        assert_eq!(h.release_idle_memory(Duration::ZERO), 1, "idle: given back");
        // Hashes made by the reference verifier agree with ours (other parameters too).
        let other = PasswordHasher::new(&settings(2048, 2)).unwrap().hash(&pw).await.unwrap();
        assert_eq!(h.verify(Some(&other), &pw).await.unwrap(), Verification { ok: true, needs_rehash: true });
        let reference = Argon2::default();
        assert!(reference.verify_password(pw.expose().as_bytes(), &PasswordHash::new(&stored).unwrap()).is_ok());
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
