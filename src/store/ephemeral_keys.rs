//! Every kind of key Guichet keeps in the ephemeral store, in one place: its prefix, what it
//! holds and how long it lives. Code builds keys only through [`EphemeralKey`], never with
//! `format!` of its own, so two features cannot collide on a prefix and an operator can read here
//! what Redis (or the `ephemeral` table) contains.
//!
//! | kind | key | value | lifetime |
//! |---|---|---|---|
//! | browser session | `sess:<sha256(cookie)>` | CSRF token, browser name, signed-in user | `session.idle_timeout_secs`, sliding (absolute limit checked on read); an hour at most while nobody is signed in |
//! | authorization interaction | `ia:<sha256(id)>` | the validated request, its browser, progress | `oidc.interaction_ttl_secs` |
//! | client assertion `jti` | `jti:<client_id>:<sha256(jti)>` | marker (replay cache) | the assertion's `exp` + 60 s |
//! | throttle counter | `thr:<scope>:<digest or IP>` | counter | `login_throttle.window_secs` (fixed window) |
//! | throttle block | `<counter key>:block` | deadline (Unix seconds) | the block's delay |
//! | device binding | `dev:<sha256(device cookie)>` | sha256 of the account | [`crate::auth::throttle::DEVICE_TTL`] |
//! | links/codes sent | `iss:<token kind or "ip">:<sha256(account) or IP>` | counter | one hour (fixed window) |
//! | WebAuthn ceremony | `wa:<reg|2fa|pwl>:<sha256(browser)>` | the ceremony state (taken once) | 5 minutes |
//! | wrong second-factor codes | `mfa:<sha256(user id)>:<window number>` | counter | 5 minutes (fixed window, numbered from the clock) |
//! | proof of work spent | `pow:<sha256(challenge)>` | marker (single use) | the challenge's lifetime + 60 s |
//! | federated sign-in under way | `fed:<sha256(state)>` | connection, browser, nonce, PKCE verifier, where to go after (taken once) | 10 minutes |
//! | signed API request accepted | `apisig:<sha256(signature)>` | marker (replay cache) | twice the signature window (10 minutes) |
//! | SAML request under way | `samlreq:<sha256(RelayState)>` | connection, browser, AuthnRequest ID, where to go after (taken once) | 10 minutes |
//! | SAML assertion accepted | `samlid:<connection>:<sha256(assertion ID)>` | marker (replay cache) | until the assertion's NotOnOrAfter + 3 min (1 min to 24 h) |
//!
//! Values whose loss must not weaken security live in SQL instead (access-token revocations,
//! sign-in sessions): an emptied or evicting Redis only signs browsers out and resets counters.

use std::fmt;

/// What a throttle counter counts failures of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// One account from one browser that signed in to it before (digest of account|device).
    AccountDevice,
    /// One account from one IP (digest of account|IP).
    AccountIp,
    /// One account from anywhere (digest of the account).
    Account,
    /// One IP, all accounts.
    Ip,
}

impl ThrottleScope {
    fn tag(self) -> &'static str {
        match self {
            ThrottleScope::AccountDevice => "ad",
            ThrottleScope::AccountIp => "ai",
            ThrottleScope::Account => "a",
            ThrottleScope::Ip => "i",
        }
    }
}

/// A key of the ephemeral store. Digests are computed by the caller (the raw secret never
/// reaches a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EphemeralKey {
    Session {
        cookie_digest: String,
    },
    Interaction {
        id_digest: String,
    },
    AssertionJti {
        client_id: String,
        jti_digest: String,
    },
    ThrottleCounter {
        scope: ThrottleScope,
        subject: String,
    },
    ThrottleBlock {
        scope: ThrottleScope,
        subject: String,
    },
    Device {
        cookie_digest: String,
    },
    /// Links or codes of one kind sent to one account (or from one IP) this hour.
    Issue {
        kind: &'static str,
        subject: String,
    },
    PowChallenge {
        digest: String,
    },
    /// Second-factor guesses of one account.
    SecondFactor {
        subject: String,
    },
    /// A WebAuthn ceremony begun by one browser.
    WebauthnCeremony {
        purpose: &'static str,
        browser_digest: String,
    },
    /// A sign-in sent to an organization's identity provider, until it comes back.
    Federation {
        state_digest: String,
    },
    /// A SAML AuthnRequest sent to an organization's IdP, until its response comes back.
    SamlRequest {
        relay_digest: String,
    },
    /// A signed admin-API request already accepted (replay cache).
    ApiSignature {
        digest: String,
    },
    /// A SAML assertion already accepted (replay cache).
    SamlAssertion {
        connection: String,
        id_digest: String,
    },
}

impl EphemeralKey {
    /// The block key of a throttle counter (itself for a block key).
    pub fn block(&self) -> Self {
        match self {
            EphemeralKey::ThrottleCounter { scope, subject } | EphemeralKey::ThrottleBlock { scope, subject } => {
                EphemeralKey::ThrottleBlock { scope: *scope, subject: subject.clone() }
            }
            other => other.clone(),
        }
    }
}

impl fmt::Display for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EphemeralKey::Session { cookie_digest } => write!(f, "sess:{cookie_digest}"),
            EphemeralKey::Interaction { id_digest } => write!(f, "ia:{id_digest}"),
            EphemeralKey::AssertionJti { client_id, jti_digest } => write!(f, "jti:{client_id}:{jti_digest}"),
            EphemeralKey::ThrottleCounter { scope, subject } => write!(f, "thr:{}:{subject}", scope.tag()),
            EphemeralKey::ThrottleBlock { scope, subject } => write!(f, "thr:{}:{subject}:block", scope.tag()),
            EphemeralKey::Device { cookie_digest } => write!(f, "dev:{cookie_digest}"),
            EphemeralKey::Issue { kind, subject } => write!(f, "iss:{kind}:{subject}"),
            EphemeralKey::PowChallenge { digest } => write!(f, "pow:{digest}"),
            EphemeralKey::SecondFactor { subject } => write!(f, "mfa:{subject}"),
            EphemeralKey::WebauthnCeremony { purpose, browser_digest } => write!(f, "wa:{purpose}:{browser_digest}"),
            EphemeralKey::Federation { state_digest } => write!(f, "fed:{state_digest}"),
            EphemeralKey::ApiSignature { digest } => write!(f, "apisig:{digest}"),
            EphemeralKey::SamlRequest { relay_digest } => write!(f, "samlreq:{relay_digest}"),
            EphemeralKey::SamlAssertion { connection, id_digest } => write!(f, "samlid:{connection}:{id_digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_wire_form() {
        let k = EphemeralKey::ThrottleCounter { scope: ThrottleScope::AccountIp, subject: "d".into() };
        assert_eq!(k.to_string(), "thr:ai:d");
        assert_eq!(k.block().to_string(), "thr:ai:d:block");
        let ip = EphemeralKey::ThrottleCounter { scope: ThrottleScope::Ip, subject: "10.0.0.1".into() };
        assert_eq!(ip.to_string(), "thr:i:10.0.0.1");
        assert_eq!(EphemeralKey::Session { cookie_digest: "x".into() }.to_string(), "sess:x");
        assert_eq!(EphemeralKey::AssertionJti { client_id: "c".into(), jti_digest: "j".into() }.to_string(), "jti:c:j");
    }
}
