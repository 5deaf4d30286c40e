//! Server-side sessions in the ephemeral store (shared by every node), referenced by an opaque
//! cookie. The store key is the SHA-256 of the cookie value, so a dump of the store yields no
//! usable cookie. The id is replaced at sign-in (no fixation), the cookie is `HttpOnly`,
//! `SameSite=Lax`, and `Secure` (with the `__Host-` prefix) when the issuer is https.
//! Each session carries its CSRF token.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};

use crate::auth::Amr;
use crate::crypto::tokens;
use crate::domain::{AuthSessionRecord, Clock, UnixTime, UserId};
use crate::store::ephemeral_keys::EphemeralKey;
use crate::store::{AuthSessionStore, EphemeralStore, StoreError};

use super::error::WebError;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionData {
    pub csrf: String,
    /// Names this browser for as long as it keeps its session, across sign-ins (the cookie
    /// value changes at each sign-in, this does not): interactions are bound to it.
    #[serde(default)]
    pub browser: String,
    pub created_at: UnixTime,
    pub last_seen: UnixTime,
    pub user: Option<SessionUser>,
    /// A sign-in half done: the first factor passed, the second is asked next (or a signed-in
    /// user stepping up). Kept server-side, so any node continues it.
    #[serde(default)]
    pub pending: Option<PendingSignIn>,
}

/// The state of a sign-in between its first and second factor.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    pub user: UserId,
    /// Methods used so far.
    pub amr: Vec<Amr>,
    pub started_at: UnixTime,
    /// Where to go once done.
    pub return_to: String,
}

/// A pending sign-in is abandoned after this.
pub const PENDING_TTL_SECS: i64 = 300;

/// Who is signed in and how: the user id and the authentication facts, never copies of
/// profile data (pages read the account, so a changed name or address shows at once).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionUser {
    pub id: UserId,
    pub auth_time: UnixTime,
    pub amr: Vec<Amr>,
    /// Authentication context class reached (OIDC `acr`), when one is claimed.
    #[serde(default)]
    pub acr: Option<String>,
    /// Session id exposed to relying parties (OIDC `sid`), unrelated to the cookie value. Kept
    /// when the same user signs in again; a new one when another user signs in.
    pub sid: String,
    /// New at every sign-in (even when the sid is kept): tells a fresh sign-in apart from an
    /// older one where auth_time, with its one-second resolution, cannot.
    #[serde(default)]
    pub login_id: String,
    /// The connection of a federated sign-in (the `idp` claim).
    #[serde(default)]
    pub idp: Option<String>,
}

pub struct Session {
    id: String,
    pub data: SessionData,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("data", &self.data).finish_non_exhaustive()
    }
}

pub struct Sessions {
    store: Arc<dyn EphemeralStore>,
    auth_sessions: Arc<dyn AuthSessionStore>,
    clock: Arc<dyn Clock>,
    secure: bool,
    idle: Duration,
    absolute_secs: i64,
}

/// Where a sign-in comes from (kept with the sign-in session, shown on the session list).
#[derive(Debug, Clone)]
pub struct SignInOrigin {
    pub ip: std::net::IpAddr,
    pub user_agent: Option<String>,
}

impl SignInOrigin {
    pub fn new(ip: std::net::IpAddr, headers: &HeaderMap) -> Self {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect::<String>());
        Self { ip, user_agent }
    }
}

pub const DEVICE_COOKIE: &str = "guichet_device";

/// How long a session nobody signed in to is kept (sign-in form, pending interaction).
const ANONYMOUS_TTL: Duration = Duration::from_secs(3600);

impl Sessions {
    pub fn new(
        store: Arc<dyn EphemeralStore>,
        auth_sessions: Arc<dyn AuthSessionStore>,
        clock: Arc<dyn Clock>,
        secure: bool,
        idle_secs: u64,
        absolute_secs: u64,
    ) -> Self {
        Self {
            store,
            auth_sessions,
            clock,
            secure,
            idle: Duration::from_secs(idle_secs),
            absolute_secs: i64::try_from(absolute_secs).unwrap_or(i64::MAX / 4),
        }
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-guichet_session"
        } else {
            "guichet_session"
        }
    }

    fn key(id: &str) -> String {
        EphemeralKey::Session { cookie_digest: tokens::digest(id) }.to_string()
    }

    /// The session named by the request's cookie, if it exists and has not expired.
    pub async fn load(&self, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
        let Some(id) = cookie(headers, self.cookie_name()) else { return Ok(None) };
        if id.len() > 128 {
            return Ok(None);
        }
        let Some(raw) = self.store.get(&Self::key(&id)).await? else { return Ok(None) };
        let Ok(mut data) = serde_json::from_slice::<SessionData>(&raw) else {
            self.store.delete(&Self::key(&id)).await?;
            return Ok(None);
        };
        let now = self.clock.now();
        let absolute_end =
            data.user.as_ref().map(|u| u.auth_time).unwrap_or(data.created_at).plus_secs(self.absolute_secs);
        let idle_end = data.last_seen.plus_secs(i64::try_from(self.idle.as_secs()).unwrap_or(i64::MAX / 4));
        if now >= absolute_end || now >= idle_end {
            self.store.delete(&Self::key(&id)).await?;
            return Ok(None);
        }
        // A sign-in session ended elsewhere (revoked from the account page, password reset,
        // deletion, suspension, logout on another node) ends this browser's session at once.
        if let Some(u) = &data.user {
            let open = self.auth_sessions.auth_session(&u.sid).await?.is_some_and(|r| r.ended_at.is_none());
            if !open {
                self.store.delete(&Self::key(&id)).await?;
                return Ok(None);
            }
        }
        // A session stored before browsers were named gets its name now (and is saved below).
        let unnamed = data.browser.is_empty();
        if unnamed {
            data.browser = tokens::random_token();
        }
        // Sliding idle timeout, written at most once a minute (here and on the sign-in session).
        if unnamed || data.last_seen.secs_until(now) >= 60 {
            data.last_seen = now;
            let s = Session { id, data };
            self.save(&s).await?;
            if let Some(u) = &s.data.user {
                // Best effort: a database hiccup must not turn away a signed-in browser.
                if let Err(e) = self.auth_sessions.touch_session(&u.sid, now, self.idle_deadline(now)).await {
                    tracing::warn!(error = %e, "could not record session activity");
                }
            }
            return Ok(Some(s));
        }
        Ok(Some(Session { id, data }))
    }

    /// A new anonymous session (with its CSRF token); the caller sends [`Self::set_cookie`].
    pub async fn create(&self) -> Result<Session, StoreError> {
        self.create_for(tokens::random_token(), None).await
    }

    async fn create_for(&self, browser: String, user: Option<SessionUser>) -> Result<Session, StoreError> {
        let now = self.clock.now();
        let s = Session {
            id: tokens::random_token(),
            data: SessionData {
                csrf: tokens::random_token(),
                browser,
                created_at: now,
                last_seen: now,
                user,
                pending: None,
            },
        };
        self.save(&s).await?;
        Ok(s)
    }

    fn idle_deadline(&self, now: UnixTime) -> UnixTime {
        now.plus_secs(i64::try_from(self.idle.as_secs()).unwrap_or(i64::MAX / 4))
    }

    pub async fn load_or_create(&self, headers: &HeaderMap) -> Result<(Session, bool), StoreError> {
        match self.load(headers).await? {
            Some(s) => Ok((s, false)),
            None => Ok((self.create().await?, true)),
        }
    }

    pub async fn save(&self, s: &Session) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(&s.data).map_err(StoreError::unavailable)?;
        // Anyone can make an anonymous session (a sign-in form, an authorization request): it
        // is kept an hour at most, not the signed-in idle timeout.
        let ttl = if s.data.user.is_some() { self.idle } else { self.idle.min(ANONYMOUS_TTL) };
        self.store.put(&Self::key(&s.id), &raw, ttl).await
    }

    /// Sign-in: the old cookie id dies and a new id and CSRF token are issued (session fixation
    /// defence); the browser keeps its name. The same user signing in again keeps the sign-in
    /// session (same `sid`, new auth_time); another user gets a new one, and the sid of the
    /// session this replaces is returned so that the caller ends it fully (grants, RPs).
    pub async fn sign_in(
        &self,
        old: Session,
        auth: &crate::auth::Authenticated,
        origin: &SignInOrigin,
    ) -> Result<(Session, Option<String>), StoreError> {
        let previous = old.data.user.clone();
        let browser = if old.data.browser.is_empty() { tokens::random_token() } else { old.data.browser.clone() };
        let now = self.clock.now();
        let idle = self.idle_deadline(now);
        let expires = auth.auth_time.plus_secs(self.absolute_secs);
        let (sid, ended) = match previous {
            Some(p) if p.id == auth.user.id => {
                let amr: Vec<String> = auth.amr.iter().map(|a| a.as_str().to_owned()).collect();
                self.auth_sessions
                    .reauthenticated(&p.sid, auth.auth_time, idle, expires, &amr, auth.acr.as_deref())
                    .await?;
                (p.sid, None)
            }
            other => {
                let sid = tokens::random_token();
                self.auth_sessions
                    .open_session(&AuthSessionRecord {
                        sid: sid.clone(),
                        user_id: auth.user.id,
                        auth_time: auth.auth_time,
                        last_seen: now,
                        idle_expires_at: idle,
                        expires_at: expires,
                        ended_at: None,
                        amr: auth.amr.iter().map(|a| a.as_str().to_owned()).collect(),
                        acr: auth.acr.clone(),
                        ip: Some(origin.ip.to_string()),
                        user_agent: origin.user_agent.clone(),
                    })
                    .await?;
                (sid, other.map(|p| p.sid))
            }
        };
        // The durable record is written first: if that fails, the browser keeps its session.
        self.store.delete(&Self::key(&old.id)).await?;
        let user = SessionUser {
            id: auth.user.id,
            auth_time: auth.auth_time,
            amr: auth.amr.clone(),
            acr: auth.acr.clone(),
            sid,
            login_id: tokens::random_token(),
            idp: auth.idp.clone(),
        };
        Ok((self.create_for(browser, Some(user)).await?, ended))
    }

    pub async fn destroy(&self, s: Session) -> Result<(), StoreError> {
        self.store.delete(&Self::key(&s.id)).await
    }

    pub fn set_cookie(&self, s: &Session) -> HeaderValue {
        self.cookie_header(self.cookie_name(), &s.id, None)
    }

    pub fn clear_cookie(&self) -> HeaderValue {
        self.cookie_header(self.cookie_name(), "", Some(0))
    }

    pub fn device_cookie(&self, value: &str) -> HeaderValue {
        self.cookie_header(DEVICE_COOKIE, value, Some(crate::auth::throttle::DEVICE_TTL.as_secs()))
    }

    fn cookie_header(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(m) = max_age {
            c.push_str(&format!("; Max-Age={m}"));
        }
        // Values are base64url tokens: always a valid header value.
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// CSRF: the form's token must equal the session's (constant time), and a browser that says the
/// request is cross-site is refused outright.
pub fn check_csrf(session: Option<&Session>, form_token: &str, headers: &HeaderMap) -> Result<(), WebError> {
    let cross_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site");
    match session {
        Some(s) if !cross_site && tokens::constant_time_eq(s.data.csrf.as_bytes(), form_token.as_bytes()) => Ok(()),
        _ => Err(WebError::csrf()),
    }
}
