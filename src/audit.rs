//! The audit log: who did what, when, from where (IP, user agent), in which organization, and
//! how it ended. Entries are written by the services in the transaction of the change
//! (`AccountOp::Audit`); this module gives them their context and reads them.
//!
//! - **Context**: the web layer serves each request inside [`with_request`] (client IP as
//!   `web::client_ip` resolves it, User-Agent); the store reads [`current_context`] when it writes
//!   an entry, so every service's entries carry it without passing it along. Work outside a
//!   request (jobs, the CLI) has none.
//! - **Reading**: [`AuditService`] is the one way in for the pages and the API. A platform admin
//!   (or the operator) reads every entry; an organization's admin, or its developer key, only the
//!   entries of that organization (another organization is "not found").
//! - **Retention**: entries older than `[audit] retention_days` are purged.
//! - **Pseudonymisation**: deleting an account rewrites its entries (see `AccountOp::DeleteUser`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::AccountService;
use crate::domain::account::{AuditContext, AuditEvent, AuditFilter, AuditOutcome};
use crate::domain::org::{Org, OrgRole};
use crate::domain::{Clock, OrgId, UnixTime};
use crate::orgs::{Actor, OrgError, OrgService};
use crate::store::{JournalStore, StoreError};

tokio::task_local! {
    static CONTEXT: Captured;
}

/// What the web edge captures per request, as it comes: the strings of [`AuditContext`] are made
/// only for the (few) requests that write an audit entry.
#[derive(Clone, Debug)]
struct Captured {
    ip: std::net::IpAddr,
    user_agent: Option<axum::http::HeaderValue>,
}

/// The context of the request being served (empty outside one).
pub fn current_context() -> AuditContext {
    CONTEXT
        .try_with(|c| AuditContext {
            ip: Some(c.ip.to_string()),
            user_agent: c
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(USER_AGENT_MAX).collect::<String>())
                .filter(|s| !s.is_empty()),
        })
        .unwrap_or_default()
}

/// Runs `f` as a request from `ip` with this `User-Agent` header (kept to [`USER_AGENT_MAX`]
/// characters when an entry is written).
///
/// A plain function returning the scoped future: an `async fn` would keep `f` twice in its state,
/// as an argument and as the future it awaits (a request's whole state, copied on every move).
pub fn with_request<F: Future>(
    ip: std::net::IpAddr,
    user_agent: Option<axum::http::HeaderValue>,
    f: F,
) -> impl Future<Output = F::Output> {
    CONTEXT.scope(Captured { ip, user_agent }, f)
}

/// The longest a user agent is kept.
pub const USER_AGENT_MAX: usize = 300;
/// The largest page.
pub const PAGE_MAX: i64 = 200;
/// The most entries one export holds.
pub const EXPORT_MAX: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// No such organization, or not one this reader may read (the same answer on purpose).
    #[error("no such organization")]
    NotFound,
    /// A member of the organization who is not its admin; a user asking for the whole log.
    #[error("not allowed to read this audit log")]
    Forbidden,
    /// A malformed filter: the message says which parameter.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AuditResult<T> = Result<T, AuditError>;

impl From<OrgError> for AuditError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Forbidden | OrgError::OwnerOnly => AuditError::Forbidden,
            OrgError::Store(s) => AuditError::Store(s),
            _ => AuditError::NotFound,
        }
    }
}

/// Who reads the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    /// The platform (operator, platform admin, or an organization's key, confined below) or a user.
    pub actor: Actor,
    /// An organization's developer key: its organization only.
    pub confined_to: Option<OrgId>,
}

impl Reader {
    pub fn actor(actor: Actor) -> Self {
        Self { actor, confined_to: None }
    }
}

/// A search as people type it (console form fields, API query parameters): every field
/// optional, parsed by [`AuditService::filter`].
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct AuditQuery {
    /// `org.member_added`, or a prefix ending in `*` or `.` (`org.*`, `account.`).
    pub action: Option<String>,
    /// A user's id or address, `platform`, `operator`, `self`, `key:<id>`.
    pub actor: Option<String>,
    pub subject: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// A day (`2024-05-01`, UTC), an RFC 3339 time or Unix seconds; `until`'s day is included.
    pub from: Option<String>,
    pub until: Option<String>,
    /// The whole log only: one organization's entries (id or slug).
    pub org: Option<String>,
}

impl AuditQuery {
    /// The non-empty fields as query parameters (for links to the next page and the export).
    pub fn to_query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("action", &self.action),
            ("actor", &self.actor),
            ("subject", &self.subject),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("until", &self.until),
            ("org", &self.org),
        ] {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// A page of entries, newest first: (id, entry), and the id to continue before.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<(i64, AuditEvent)>,
    pub next_before: Option<i64>,
}

pub struct AuditService {
    journal: Arc<dyn JournalStore>,
    orgs: Arc<OrgService>,
    accounts: Arc<AccountService>,
    clock: Arc<dyn Clock>,
    retention_secs: i64,
}

impl AuditService {
    pub fn new(
        journal: Arc<dyn JournalStore>,
        orgs: Arc<OrgService>,
        accounts: Arc<AccountService>,
        clock: Arc<dyn Clock>,
        retention_days: u32,
    ) -> Self {
        Self { journal, orgs, accounts, clock, retention_secs: i64::from(retention_days) * 86_400 }
    }

    /// The organization `org_ref` if `reader` may read its log (its admins, the platform, its
    /// keys): not found for anyone else.
    pub async fn org_for(&self, reader: Reader, org_ref: &str) -> AuditResult<Org> {
        if let Some(own) = reader.confined_to {
            let org = self.orgs.find(org_ref).await?.ok_or(AuditError::NotFound)?;
            return if org.id == own { Ok(org) } else { Err(AuditError::NotFound) };
        }
        Ok(self.orgs.authorize(reader.actor, org_ref, OrgRole::Admin).await?)
    }

    /// Parses a typed search. `org`: the organization the search is confined to (its `org`
    /// field is then ignored); else the whole log, where `org` picks one organization.
    pub async fn filter(&self, q: &AuditQuery, org: Option<OrgId>) -> AuditResult<AuditFilter> {
        let mut f = AuditFilter { org, ..AuditFilter::default() };
        if let Some(a) = nonempty(&q.action) {
            let (name, prefix) = match a.strip_suffix('*') {
                Some(p) => (p, true),
                None => (a, a.ends_with('.')),
            };
            if name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(AuditError::Invalid(
                    "action: letters, digits, '.', '_' or '-', optionally ending in '*'".into(),
                ));
            }
            if !name.is_empty() {
                f.action = Some(name.to_owned());
                f.action_prefix = prefix;
            }
        }
        if let Some(a) = nonempty(&q.actor) {
            if a.len() > 320 {
                return Err(AuditError::Invalid("actor: too long".into()));
            }
            f.actors = self.actor_names(a).await?;
        }
        if let Some(s) = nonempty(&q.subject) {
            if s.len() > 320 {
                return Err(AuditError::Invalid("subject: too long".into()));
            }
            f.subject = Some(s.to_owned());
        }
        if let Some(o) = nonempty(&q.outcome) {
            f.outcome = Some(
                o.parse::<AuditOutcome>()
                    .map_err(|_| AuditError::Invalid("outcome: success, failure or denied".into()))?,
            );
        }
        f.from = nonempty(&q.from).map(|t| parse_time(t, false, "from")).transpose()?;
        f.until = nonempty(&q.until).map(|t| parse_time(t, true, "until")).transpose()?;
        if f.org.is_none() {
            if let Some(o) = nonempty(&q.org) {
                f.org = Some(self.orgs.find(o).await?.ok_or(AuditError::NotFound)?.id);
            }
        }
        Ok(f)
    }

    /// How an actor may be named in the log: a user by id (bare or `user:<id>`) whether typed
    /// as their id or their address; anything else as typed.
    async fn actor_names(&self, typed: &str) -> AuditResult<Vec<String>> {
        let id = if typed.contains('@') {
            match self.accounts.user_by_email(typed).await {
                Ok(Some(u)) => Some(u.id.to_string()),
                Ok(None) => None,
                Err(crate::accounts::AccountError::Store(s)) => return Err(AuditError::Store(s)),
                Err(_) => None,
            }
        } else {
            typed.parse::<uuid::Uuid>().ok().map(|u| u.to_string())
        };
        Ok(match id {
            Some(id) => vec![format!("user:{id}"), id],
            None => vec![typed.to_owned()],
        })
    }

    /// One page of the log for `reader`: `org` (id or slug) for one organization's log,
    /// `None` for the whole log (platform only; a key gets its organization's).
    pub async fn search(
        &self,
        reader: Reader,
        org: Option<&str>,
        q: &AuditQuery,
        before: Option<i64>,
        limit: i64,
    ) -> AuditResult<AuditPage> {
        let mut f = self.scoped_filter(reader, org, q).await?;
        f.before = before;
        f.limit = limit.clamp(1, PAGE_MAX);
        let want = f.limit;
        f.limit = want + 1;
        let mut entries = self.journal.search_audit(&f).await?;
        let next_before = if entries.len() > usize::try_from(want).unwrap_or(usize::MAX) {
            entries.truncate(usize::try_from(want).unwrap_or(0));
            entries.last().map(|(id, _)| *id)
        } else {
            None
        };
        Ok(AuditPage { entries, next_before })
    }

    /// The entries a search finds (newest first, [`EXPORT_MAX`] at most), for an export.
    pub async fn export(
        &self,
        reader: Reader,
        org: Option<&str>,
        q: &AuditQuery,
    ) -> AuditResult<Vec<(i64, AuditEvent)>> {
        let mut f = self.scoped_filter(reader, org, q).await?;
        f.limit = EXPORT_MAX;
        Ok(self.journal.search_audit(&f).await?)
    }

    async fn scoped_filter(&self, reader: Reader, org: Option<&str>, q: &AuditQuery) -> AuditResult<AuditFilter> {
        // The path's organization, else the one the search names.
        let org = org.or(nonempty(&q.org));
        let confined = match (org, reader.confined_to) {
            (Some(o), _) => Some(self.org_for(reader, o).await?.id),
            (None, Some(own)) => Some(own),
            (None, None) if reader.actor == Actor::Platform => None,
            (None, None) => return Err(AuditError::Forbidden),
        };
        self.filter(q, confined).await
    }

    /// Removes the entries older than the retention (`[audit] retention_days`) at `now`.
    pub async fn purge(&self, now: UnixTime) -> AuditResult<u64> {
        Ok(self.journal.purge_audit(now.plus_secs(-self.retention_secs)).await?)
    }

    /// The purge, hourly (the first one at start).
    pub fn spawn_purge(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.purge(self.clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "audit entries past their retention purged"),
                    Err(e) => tracing::warn!(error = %e, "purging the audit log failed"),
                }
            }
        })
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A day (UTC; the end of it when `end_of_day`), an RFC 3339 time, or Unix seconds.
fn parse_time(t: &str, end_of_day: bool, field: &str) -> AuditResult<UnixTime> {
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(UnixTime(secs));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let d = if end_of_day { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(UnixTime(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(UnixTime(dt.timestamp()));
    }
    Err(AuditError::Invalid(format!("{field}: a day (YYYY-MM-DD), an RFC 3339 time or Unix seconds")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_days_rfc3339_or_seconds() {
        assert_eq!(parse_time("86400", false, "from").unwrap().0, 86_400);
        assert_eq!(parse_time("1970-01-02", false, "from").unwrap().0, 86_400);
        assert_eq!(parse_time("1970-01-02", true, "until").unwrap().0, 2 * 86_400);
        assert_eq!(parse_time("1970-01-02T00:00:10Z", false, "from").unwrap().0, 86_410);
        assert!(parse_time("yesterday", false, "from").is_err());
    }

    #[tokio::test]
    async fn the_context_is_the_scope_s() {
        assert_eq!(current_context(), AuditContext::default());
        let ctx = AuditContext { ip: Some("203.0.113.9".into()), user_agent: Some("test".into()) };
        let ip = "203.0.113.9".parse().unwrap();
        let ua = axum::http::HeaderValue::from_static("test");
        let seen = with_request(ip, Some(ua), async { current_context() }).await;
        assert_eq!(seen, ctx);
    }

    #[tokio::test]
    async fn a_request_s_context_is_made_when_an_entry_needs_it() {
        use axum::http::HeaderValue;
        let ip: std::net::IpAddr = "2001:db8::7".parse().unwrap();
        let long = "Mozilla/5.0 ".repeat(50);
        let seen = with_request(ip, Some(HeaderValue::from_str(&long).unwrap()), async { current_context() }).await;
        assert_eq!(seen.ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(seen.user_agent.unwrap(), long[..USER_AGENT_MAX]);
        let seen = with_request(ip, Some(HeaderValue::from_static("")), async { current_context() }).await;
        assert_eq!(seen.user_agent, None);
        let seen = with_request(ip, None, async { current_context() }).await;
        assert_eq!(seen, AuditContext { ip: Some("2001:db8::7".into()), user_agent: None });
    }
}
