//! The portal's own sessions, in memory, keyed by a random cookie value; and the sign-ins under
//! way (state, nonce, PKCE verifier), keyed by a cookie of their own so a callback only
//! completes the sign-in its browser started.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::{CsrfToken, Nonce, PkceCodeVerifier};
use rand::RngCore;

/// A portal session lives at most this long; the access token in it usually expires first (a
/// page then goes through Guichet again, without a form while Guichet's session lasts).
const SESSION_MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// A sign-in must come back from Guichet within this time.
const LOGIN_MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct Session {
    /// The user at Guichet (`sub` of the ID token).
    pub sub: String,
    /// Guichet's sign-in session (`sid` of the ID token): what back-channel logout and the
    /// `session.revoked` event name.
    pub sid: Option<String>,
    pub display_name: String,
    /// The RFC 9068 access token: verified again at every gated page, its `permissions` read.
    pub access_token: String,
    /// For `id_token_hint` at Guichet's end-session endpoint.
    pub id_token: String,
    created: Instant,
}

impl Session {
    pub fn new(sub: String, sid: Option<String>, display_name: String, access_token: String, id_token: String) -> Self {
        Session { sub, sid, display_name, access_token, id_token, created: Instant::now() }
    }
}

pub struct PendingLogin {
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
    pub return_to: String,
    created: Instant,
}

impl PendingLogin {
    pub fn new(state: CsrfToken, nonce: Nonce, verifier: PkceCodeVerifier, return_to: String) -> Self {
        PendingLogin { state, nonce, verifier, return_to, created: Instant::now() }
    }
}

#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    logins: Mutex<HashMap<String, PendingLogin>>,
}

/// 256 random bits, base64url.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl Sessions {
    pub fn create(&self, s: Session) -> String {
        let id = random_id();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, s| s.created.elapsed() < SESSION_MAX_AGE);
        open.insert(id.clone(), s);
        id
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(id).filter(|s| s.created.elapsed() < SESSION_MAX_AGE).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Session> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(id)
    }

    /// Ends the sessions of Guichet session `sid` (of user `sub` when given too), or every
    /// session of `sub` when no `sid` is given (Back-Channel Logout 1.0 §2.4). Returns how many.
    pub fn end(&self, sid: Option<&str>, sub: Option<&str>) -> usize {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let before = open.len();
        open.retain(|_, s| {
            let hit = match (sid, sub) {
                (Some(sid), sub) => s.sid.as_deref() == Some(sid) && sub.is_none_or(|u| u == s.sub),
                (None, Some(sub)) => s.sub == sub,
                (None, None) => false,
            };
            !hit
        });
        before - open.len()
    }

    pub fn start_login(&self, p: PendingLogin) -> String {
        let id = random_id();
        let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        logins.retain(|_, l| l.created.elapsed() < LOGIN_MAX_AGE);
        logins.insert(id.clone(), p);
        id
    }

    /// The sign-in this browser started (taken: a callback is used once).
    pub fn take_login(&self, id: &str) -> Option<PendingLogin> {
        let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        logins.remove(id).filter(|l| l.created.elapsed() < LOGIN_MAX_AGE)
    }
}

#[cfg(test)]
mod tests {
    use super::{Session, Sessions};

    fn session(sub: &str, sid: &str) -> Session {
        Session::new(sub.into(), Some(sid.into()), sub.into(), String::new(), String::new())
    }

    #[test]
    fn logout_ends_the_sessions_of_a_sid_or_of_a_user() {
        let s = Sessions::default();
        let a1 = s.create(session("ann", "s1"));
        let a2 = s.create(session("ann", "s2"));
        let b = s.create(session("bob", "s3"));
        assert_eq!(s.end(Some("s1"), Some("bob")), 0, "sid and sub must both match");
        assert_eq!(s.end(Some("s1"), None), 1);
        assert!(s.get(&a1).is_none() && s.get(&a2).is_some());
        assert_eq!(s.end(None, Some("ann")), 1);
        assert!(s.get(&a2).is_none() && s.get(&b).is_some());
        assert_eq!(s.end(None, None), 0);
    }
}
