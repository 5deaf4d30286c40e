//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step of drift, a step never
//! accepted twice) and recovery codes (10, single use, stored as HMAC digests). Secrets are
//! sealed at rest (`crypto::sealed`). Wrong codes are limited per account (5 per 5 minutes,
//! counted before checking, so parallel guesses cannot exceed it), then the account waits.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::crypto::sealed::Sealer;
use crate::crypto::tokens;
use crate::domain::account::AccountOp;
use crate::domain::mfa::{Factor, FactorKind, RECOVERY_CODES};
use crate::domain::{Clock, User, UserId};
use crate::store::ephemeral_keys::EphemeralKey;
use crate::store::{StoreError, Stores};

use super::Amr;

/// TOTP parameters (what authenticator apps support).
const DIGITS: usize = 6;
const STEP_SECS: u64 = 30;
/// Wrong codes allowed per window, per account.
const MAX_FAILURES: i64 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("wrong code")]
    WrongCode,
    #[error("too many wrong codes; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    #[error("no such factor")]
    NoFactor,
    #[error("secret material does not open: {0}")]
    Sealed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the enrolment page shows.
pub struct TotpEnrolment {
    pub factor_id: uuid::Uuid,
    pub secret_base32: String,
    pub uri: String,
    /// The `otpauth://` URI as a QR code, inline SVG.
    pub qr_svg: String,
}

pub struct MfaService {
    pub(super) stores: Stores,
    pub(super) sealer: Arc<Sealer>,
    pub(super) clock: Arc<dyn Clock>,
    /// The WebAuthn relying party (None: WebAuthn off, e.g. an issuer on an IP address).
    pub(super) webauthn: Option<webauthn_rs::Webauthn>,
    secret: [u8; 32],
    /// Issuer shown by authenticator apps (`Guichet (host)`).
    label: String,
    /// The organizations hear of factors added and removed (`mfa.enabled`, `mfa.disabled`).
    pub events: crate::domain::events::EventsCell,
}

fn totp(secret: Vec<u8>) -> Result<TOTP, MfaError> {
    TOTP::new(Algorithm::SHA1, DIGITS, 1, STEP_SECS, secret).map_err(|e| MfaError::Sealed(e.to_string()))
}

fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(220, 220).quiet_zone(true).build();
            // Only the <svg> element, for inlining in a page.
            svg.find("<svg").map(|i| svg[i..].to_owned()).unwrap_or(svg)
        }
        Err(_) => String::new(),
    }
}

/// Recovery codes: 10 characters from an alphabet without look-alikes, shown as `xxxxx-xxxxx`.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..10).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

fn normalise_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

impl MfaService {
    pub fn new(
        stores: Stores,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        secret: [u8; 32],
        issuer: &str,
        webauthn: Option<webauthn_rs::Webauthn>,
    ) -> Self {
        let host = url::Url::parse(issuer).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        Self { stores, sealer, clock, webauthn, secret, label: format!("Guichet ({host})"), events: Default::default() }
    }

    fn recovery_digest(&self, user: UserId, code: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else { return String::new() };
        mac.update(b"guichet-recovery\0");
        mac.update(user.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(normalise_code(code).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Every factor of the user (pending enrolments too).
    pub async fn factors(&self, user: UserId) -> Result<Vec<Factor>, MfaError> {
        Ok(self.stores.mfa.factors_of(user).await?)
    }

    /// The kinds of the user's usable factors (`["totp"]`), for pages and `user list`.
    pub async fn factor_kinds(&self, user: UserId) -> Result<Vec<&'static str>, MfaError> {
        let mut kinds: Vec<&'static str> =
            self.factors(user).await?.iter().filter(|f| f.confirmed).map(|f| f.kind.as_str()).collect();
        kinds.dedup();
        Ok(kinds)
    }

    pub async fn has_factor(&self, user: UserId) -> Result<bool, MfaError> {
        Ok(self.factors(user).await?.iter().any(|f| f.confirmed))
    }

    pub async fn recovery_codes_left(&self, user: UserId) -> Result<i64, MfaError> {
        Ok(self.stores.mfa.recovery_codes_left(user).await?)
    }

    fn enrolment(&self, user: &User, f: &Factor) -> Result<TotpEnrolment, MfaError> {
        let secret = self
            .sealer
            .open(&f.secret_sealed, &Factor::seal_binding(f.id, user.id))
            .map_err(|e| MfaError::Sealed(e.to_string()))?;
        let base32 = match Secret::Raw(secret).to_encoded() {
            Secret::Encoded(s) => s,
            Secret::Raw(_) => String::new(),
        };
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20");
        let uri = format!(
            "otpauth://totp/{}:{}?secret={base32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(&self.label),
            enc(user.email.as_str()),
            enc(&self.label)
        );
        Ok(TotpEnrolment { factor_id: f.id, secret_base32: base32, qr_svg: qr_svg(&uri), uri })
    }

    /// The TOTP enrolment under way, or a new one (a 160-bit secret, sealed, not usable until
    /// confirmed with a code).
    pub async fn totp_enrolment(&self, user: &User) -> Result<TotpEnrolment, MfaError> {
        if let Some(f) = self.factors(user.id).await?.iter().find(|f| f.kind == FactorKind::Totp && !f.confirmed) {
            return self.enrolment(user, f);
        }
        let id = uuid::Uuid::new_v4();
        let mut secret = vec![0u8; 20];
        rand::rngs::OsRng.fill(&mut secret[..]);
        let sealed = self
            .sealer
            .seal(&secret, &Factor::seal_binding(id, user.id))
            .map_err(|e| MfaError::Sealed(e.to_string()))?;
        let f = Factor {
            id,
            user_id: user.id,
            kind: FactorKind::Totp,
            name: "Authenticator app".into(),
            secret_sealed: sealed,
            confirmed: false,
            last_step: None,
            created_at: self.clock.now(),
            last_used_at: None,
        };
        self.stores.accounts.apply(vec![AccountOp::AddFactor(f.clone())]).await?;
        self.enrolment(user, &f)
    }

    /// The step at which `code` is valid for the factor (±1 step), if any.
    fn matching_step(&self, f: &Factor, code: &str) -> Result<Option<i64>, MfaError> {
        let secret = self
            .sealer
            .open(&f.secret_sealed, &Factor::seal_binding(f.id, f.user_id))
            .map_err(|e| MfaError::Sealed(e.to_string()))?;
        let t = totp(secret)?;
        let now = u64::try_from(self.clock.now().0).unwrap_or(0);
        let step = now / STEP_SECS;
        for s in [step.saturating_sub(1), step, step + 1] {
            if tokens::constant_time_eq(t.generate(s * STEP_SECS).as_bytes(), code.as_bytes()) {
                return Ok(i64::try_from(s).ok());
            }
        }
        Ok(None)
    }

    /// Counts a guess before checking it; `Err` when the account is over its allowance.
    /// The window is numbered from the service's clock (one time source for every window, in
    /// SQL or Redis alike); the store's TTL only cleans up.
    async fn reserve(&self, user: UserId) -> Result<String, MfaError> {
        let window = i64::try_from(FAILURE_WINDOW.as_secs()).unwrap_or(300);
        let now = self.clock.now().0;
        let subject = format!("{}:{}", tokens::digest(&user.to_string()), now.div_euclid(window));
        let key = EphemeralKey::SecondFactor { subject }.to_string();
        let n = self.stores.ephemeral.incr(&key, FAILURE_WINDOW).await?;
        if n > MAX_FAILURES {
            return Err(MfaError::Throttled { retry_after_secs: window - now.rem_euclid(window) });
        }
        Ok(key)
    }

    /// A right code gives its guess back.
    async fn release(&self, key: &str) -> Result<(), MfaError> {
        Ok(self.stores.ephemeral.decr(key).await?)
    }

    /// Checks a TOTP code against the user's confirmed TOTP factors (the step is spent).
    async fn check_totp(&self, user: UserId, code: &str, only: Option<uuid::Uuid>) -> Result<bool, MfaError> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let now = self.clock.now();
        for f in self.factors(user).await? {
            if f.kind != FactorKind::Totp || !f.confirmed || only.is_some_and(|id| id != f.id) {
                continue;
            }
            if let Some(step) = self.matching_step(&f, code)? {
                // One statement: a step already accepted (a replay) is refused.
                return Ok(self.stores.mfa.accept_totp_step(f.id, step, now).await?);
            }
        }
        Ok(false)
    }

    /// The second step of a sign-in (or a step-up): a TOTP code or a recovery code.
    pub async fn verify(&self, user: UserId, code: &str) -> Result<Amr, MfaError> {
        let key = self.reserve(user).await?;
        if self.check_totp(user, code, None).await? {
            self.release(&key).await?;
            return Ok(Amr::Otp);
        }
        let digest = self.recovery_digest(user, code);
        if normalise_code(code).len() == 10
            && self.stores.mfa.use_recovery_code(user, &digest, self.clock.now()).await?
        {
            self.release(&key).await?;
            tracing::info!(user_id = %user, "recovery code used");
            return Ok(Amr::Otp);
        }
        Err(MfaError::WrongCode)
    }

    /// Finishes a TOTP enrolment with a valid code. The first factor of an account comes with
    /// recovery codes (returned, shown once).
    pub async fn confirm_totp(&self, user: &User, code: &str) -> Result<Option<Vec<String>>, MfaError> {
        let key = self.reserve(user.id).await?;
        let factors = self.factors(user.id).await?;
        let pending = factors.iter().find(|f| f.kind == FactorKind::Totp && !f.confirmed).ok_or(MfaError::NoFactor)?;
        let step = self.matching_step(pending, code.trim())?.ok_or(MfaError::WrongCode)?;
        self.release(&key).await?;
        let first = !factors.iter().any(|f| f.confirmed);
        let mut ops = vec![AccountOp::ConfirmFactor { user: user.id, id: pending.id }];
        let codes = if first { Some(self.new_codes(user.id, &mut ops)) } else { None };
        self.stores.accounts.apply(ops).await.map_err(|e| match e {
            StoreError::Conflict { .. } => MfaError::NoFactor,
            other => MfaError::Store(other),
        })?;
        // The enrolment code's step is spent like any other.
        self.stores.mfa.accept_totp_step(pending.id, step, self.clock.now()).await?;
        tracing::info!(user_id = %user.id, "TOTP factor enrolled");
        self.events.emit(user.id, "mfa.enabled", serde_json::json!({"user": user.id, "kind": "totp"}));
        Ok(codes)
    }

    pub(super) fn new_codes(&self, user: UserId, ops: &mut Vec<AccountOp>) -> Vec<String> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        ops.push(AccountOp::SetRecoveryCodes {
            user,
            digests: codes.iter().map(|c| self.recovery_digest(user, c)).collect(),
        });
        codes
    }

    /// New recovery codes; the old ones die.
    pub async fn regenerate_recovery_codes(&self, user: UserId) -> Result<Vec<String>, MfaError> {
        let mut ops = Vec::new();
        let codes = self.new_codes(user, &mut ops);
        self.stores.accounts.apply(ops).await?;
        Ok(codes)
    }

    /// Removes a factor. A TOTP factor needs a current code of it or a recovery code; a
    /// security key or passkey only the recent sign-in the page asks for. The last factor
    /// takes the recovery codes with it.
    pub async fn remove(&self, user: UserId, factor: uuid::Uuid, code: &str) -> Result<(), MfaError> {
        let factors = self.factors(user).await?;
        let target = factors.iter().find(|f| f.id == factor).ok_or(MfaError::NoFactor)?;
        if target.kind == FactorKind::Totp {
            let key = self.reserve(user).await?;
            let ok = self.check_totp(user, code, Some(factor)).await? || {
                let digest = self.recovery_digest(user, code);
                self.stores.mfa.use_recovery_code(user, &digest, self.clock.now()).await?
            };
            if !ok {
                return Err(MfaError::WrongCode);
            }
            self.release(&key).await?;
        }
        let mut ops = vec![AccountOp::RemoveFactor { user, id: factor }];
        if !factors.iter().any(|f| f.id != factor && f.confirmed) {
            ops.push(AccountOp::SetRecoveryCodes { user, digests: Vec::new() });
        }
        self.stores.accounts.apply(ops).await?;
        tracing::info!(user_id = %user, "second factor removed");
        self.events.emit(user, "mfa.disabled", serde_json::json!({"user": user, "kind": target.kind.as_str()}));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (8-digit values; their last 6 digits are the 6-digit codes).
    #[test]
    fn rfc6238_vectors() {
        let t = TOTP::new(Algorithm::SHA1, 8, 1, 30, b"12345678901234567890".to_vec()).unwrap();
        for (time, code) in
            [(59, "94287082"), (1_111_111_109, "07081804"), (1_234_567_890, "89005924"), (2_000_000_000, "69279037")]
        {
            assert_eq!(t.generate(time), code);
        }
        let six = totp(b"12345678901234567890".to_vec()).unwrap();
        assert_eq!(six.generate(59), "287082");
    }

    #[test]
    fn recovery_codes_look_right() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 11);
        assert_eq!(normalise_code(&c.to_uppercase()), normalise_code(&c));
        assert_ne!(new_recovery_code(), new_recovery_code());
    }
}
