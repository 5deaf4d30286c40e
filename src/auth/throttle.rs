//! Failed-login throttling with progressive delay.
//!
//! Three counters over a fixed window (`login_throttle.window_secs`), all in the ephemeral store
//! so every node sees them:
//! - per account and IP (`per_account_ip` free failures),
//! - per account over all IPs (`per_account`),
//! - per IP over all accounts (`per_ip`, against credential stuffing).
//!
//! Past its allowance each further failure blocks that key for `base_delay · 2^k` seconds, capped
//! at `max_delay_secs`; attempts during a block are refused without being counted, so an attacker
//! can slow an account down but never lock it for good. An attempt is *reserved* before the
//! password is checked — counted as a failure up front, and past the allowance only the one
//! attempt that sets the block goes on — so parallel guesses get no more tries than sequential
//! ones; a success (or an attempt that ends before the password is judged) gives its count back. A browser that signed in to the account
//! before carries a *device cookie* (OWASP "device cookies"): for it only the per-account+device
//! counter applies, so an attacker spraying the victim's account from elsewhere does not lock the
//! victim's own browser out. Accounts are keyed by their normalised email whether or not they
//! exist, so throttling reveals nothing about existence.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ThrottleSettings;
use crate::crypto::tokens;
use crate::domain::Clock;
use crate::store::ephemeral_keys::{EphemeralKey, ThrottleScope};
use crate::store::{EphemeralStore, StoreResult};

/// How long a device cookie (and its binding to the account) lives.
pub const DEVICE_TTL: Duration = Duration::from_secs(180 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTrust {
    /// No valid device cookie for this account.
    Unknown,
    /// A device cookie bound to this account; the string is its digest.
    Known(String),
}

pub struct Throttle {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    cfg: ThrottleSettings,
}

/// An attempt counted before its password was checked (see [`Throttle::reserve`]).
#[must_use]
#[derive(Debug, Default)]
pub struct Reservation {
    counted: Vec<String>,
    blocks: Vec<String>,
}

struct Rule {
    /// The counter's key; its block is `block`.
    key: String,
    block: String,
    allowance: i64,
}

impl Rule {
    fn new(scope: ThrottleScope, subject: String, allowance: i64) -> Self {
        let k = EphemeralKey::ThrottleCounter { scope, subject };
        Rule { key: k.to_string(), block: k.block().to_string(), allowance }
    }
}

impl Throttle {
    pub fn new(store: Arc<dyn EphemeralStore>, clock: Arc<dyn Clock>, cfg: ThrottleSettings) -> Self {
        Self { store, clock, cfg }
    }

    fn rules(&self, account: &str, ip: IpAddr, trust: &DeviceTrust) -> Vec<Rule> {
        let acct = tokens::digest(account);
        match trust {
            DeviceTrust::Known(dev) => vec![Rule::new(
                ThrottleScope::AccountDevice,
                tokens::digest(&format!("{acct}|{dev}")),
                self.cfg.per_account_ip,
            )],
            DeviceTrust::Unknown => vec![
                Rule::new(ThrottleScope::AccountIp, tokens::digest(&format!("{acct}|{ip}")), self.cfg.per_account_ip),
                Rule::new(ThrottleScope::Account, acct, self.cfg.per_account),
                Rule::new(ThrottleScope::Ip, ip.to_string(), self.cfg.per_ip),
            ],
        }
    }

    pub async fn device_trust(&self, account: &str, device: Option<&str>) -> StoreResult<DeviceTrust> {
        let Some(d) = device.filter(|d| !d.is_empty() && d.len() <= 128) else {
            return Ok(DeviceTrust::Unknown);
        };
        let digest = tokens::digest(d);
        let bound = self.store.get(&EphemeralKey::Device { cookie_digest: digest.clone() }.to_string()).await?;
        Ok(match bound {
            Some(v) if tokens::constant_time_eq(&v, tokens::digest(account).as_bytes()) => DeviceTrust::Known(digest),
            _ => DeviceTrust::Unknown,
        })
    }

    pub async fn issue_device(&self, account: &str) -> StoreResult<String> {
        let token = tokens::random_token();
        self.store
            .put(
                &EphemeralKey::Device { cookie_digest: tokens::digest(&token) }.to_string(),
                tokens::digest(account).as_bytes(),
                DEVICE_TTL,
            )
            .await?;
        Ok(token)
    }

    /// Seconds until the caller may try again, if any rule currently blocks it.
    pub async fn blocked(&self, account: &str, ip: IpAddr, trust: DeviceTrust) -> StoreResult<Option<i64>> {
        let now = self.clock.now().0;
        let mut wait = 0i64;
        for r in self.rules(account, ip, &trust) {
            if let Some(v) = self.store.get(&r.block).await? {
                let until = std::str::from_utf8(&v).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                wait = wait.max(until - now);
            }
        }
        Ok((wait > 0).then_some(wait))
    }

    /// Reserves one attempt before the password is checked: `Err(seconds)` when it must wait.
    pub async fn reserve(
        &self,
        account: &str,
        ip: IpAddr,
        trust: &DeviceTrust,
    ) -> StoreResult<Result<Reservation, i64>> {
        if let Some(wait) = self.blocked(account, ip, trust.clone()).await? {
            return Ok(Err(wait));
        }
        let window = Duration::from_secs(self.cfg.window_secs);
        let now = self.clock.now();
        let mut res = Reservation::default();
        for r in self.rules(account, ip, trust) {
            let n = self.store.incr(&r.key, window).await?;
            res.counted.push(r.key.clone());
            if n > r.allowance {
                let k = u32::try_from(n - r.allowance - 1).unwrap_or(u32::MAX).min(30);
                let delay = self.cfg.base_delay_secs.saturating_mul(1u64 << k).min(self.cfg.max_delay_secs).max(1);
                let until = now.plus_secs(i64::try_from(delay).unwrap_or(i64::MAX / 4));
                let block = r.block.clone();
                let value = until.0.to_string();
                let ttl = Duration::from_secs(delay);
                let mut won = self.store.put_if_absent(&block, value.as_bytes(), ttl).await?;
                if !won && self.block_until(&block).await?.is_some_and(|u| u <= now.0) {
                    // A block whose deadline passed (its key may outlive it a little): of the
                    // attempts that see it, the one that takes it away may set the next.
                    if self.store.take(&block).await?.is_some() {
                        won = self.store.put_if_absent(&block, value.as_bytes(), ttl).await?;
                    }
                }
                if won {
                    res.blocks.push(block);
                } else {
                    // A parallel attempt holds the block: this one is refused, and not counted.
                    let wait = self.block_wait(&block).await?.unwrap_or(1);
                    self.release(res).await?;
                    return Ok(Err(wait));
                }
            }
        }
        Ok(Ok(res))
    }

    /// The deadline stored in a block key, if the key exists.
    async fn block_until(&self, block_key: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .store
            .get(block_key)
            .await?
            .map(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0)))
    }

    async fn block_wait(&self, block_key: &str) -> StoreResult<Option<i64>> {
        let now = self.clock.now().0;
        Ok(self.block_until(block_key).await?.map(|until| (until - now).max(1)))
    }

    /// Gives a reserved attempt back (it was not a failure): counts returned, blocks it set lifted.
    pub async fn release(&self, res: Reservation) -> StoreResult<()> {
        for k in &res.counted {
            self.store.decr(k).await?;
        }
        for b in &res.blocks {
            self.store.delete(b).await?;
        }
        Ok(())
    }

    /// A successful sign-in gives its attempt back and clears the counter of this account from
    /// this IP or device.
    pub async fn succeeded(&self, res: Reservation, account: &str, ip: IpAddr, trust: &DeviceTrust) -> StoreResult<()> {
        self.release(res).await?;
        if let Some(first) = self.rules(account, ip, trust).into_iter().next() {
            self.store.delete(&first.key).await?;
            self.store.delete(&first.block).await?;
        }
        Ok(())
    }
}
