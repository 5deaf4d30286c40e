//! Typed, layered configuration: built-in defaults, then `guichet.toml` (path from `--config` or
//! `GUICHET_CONFIG`), then environment variables. Every key can be set from the environment as
//! `GUICHET_<SECTION>__<KEY>` (e.g. `GUICHET_SERVER__LISTEN=0.0.0.0:8080`); `DATABASE_URL` and
//! `REDIS_URL` are honoured too. Validated once at start-up; an error names the key and why.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("config key {key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), reason: reason.into() }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub keys: KeysSettings,
    pub password: PasswordSettings,
    pub session: SessionSettings,
    pub login_throttle: ThrottleSettings,
    pub oidc: OidcSettings,
    pub log: LogSettings,
    /// Shorthand for `accounts.registration` at the top of the file (`registration = "closed"`);
    /// wins when both are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<Registration>,
    pub accounts: AccountsSettings,
    pub mail: MailSettings,
    pub sms: SmsSettings,
    pub mfa: MfaSettings,
    pub webauthn: WebauthnSettings,
    pub dns: DnsSettings,
    pub outbound: OutboundSettings,
    pub webhooks: WebhookSettings,
    pub outbox: OutboxSettings,
    pub audit: AuditSettings,
}

/// The audit log (`src/audit.rs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Entries older than this many days are purged (hourly). At least
    /// [`AuditSettings::MIN_RETENTION_DAYS`]: the log is never kept forever, nor emptied at once.
    pub retention_days: u32,
}

impl AuditSettings {
    pub const MIN_RETENTION_DAYS: u32 = 7;
    /// About 100 years: beyond, a typo.
    pub const MAX_RETENTION_DAYS: u32 = 36_500;
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { retention_days: 365 }
    }
}

/// Webhook deliveries (`src/webhooks`): the outbound-URL policy applies to every callback URL.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Tests only: also deliver to loopback receivers. Refused when the issuer is https.
    pub allow_loopback: bool,
}

/// The durable outbox (mail, SMS, webhooks, back-channel logout), delivered by every node.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// How long a node that claimed a message has to deliver it before another node may take
    /// it over (the claimer died): longer than the slowest delivery (its timeout), or a slow
    /// delivery could be sent twice.
    pub lease_secs: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self { lease_secs: 120 }
    }
}

/// Requests to URLs organization admins give (their identity provider; webhooks next): public
/// addresses only, checked and pinned (`src/net.rs`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Tests only: also allow loopback addresses (127.0.0.0/8, ::1, localhost). Refused when the
    /// issuer is https.
    pub allow_loopback: bool,
}

/// The DNS server asked for domain verification TXT records (and webhook address checks).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSettings {
    /// An IP address with an optional port (53): `192.0.2.53`, `127.0.0.1:5353`, `[::1]:53`.
    /// Unset: the first `nameserver` of /etc/resolv.conf. `GUICHET_DNS_RESOLVER` overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// Deadline of one look-up (UDP, a retry, and TCP when the answer is truncated), ms.
    pub timeout_ms: u64,
    /// How often domains awaiting verification are checked again, seconds.
    pub recheck_interval_secs: u64,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self { resolver: None, timeout_ms: 3000, recheck_interval_secs: 3600 }
    }
}

impl DnsSettings {
    /// The configured server (port 53 unless given); `None` when unset or empty.
    pub fn resolver_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(raw) = self.resolver.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let bracketed = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        let addr = raw
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| raw.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
            .or_else(|| bracketed?.parse::<std::net::Ipv6Addr>().ok().map(|ip| SocketAddr::new(ip.into(), 53)))
            .ok_or_else(|| {
                invalid(
                    "dns.resolver",
                    format!(
                        "must be an IP address with an optional port, such as 127.0.0.1:5353 or [::1]:53, \
                         not a host name (got {raw:?})"
                    ),
                )
            })?;
        if addr.port() == 0 {
            return Err(invalid("dns.resolver", "port must not be 0"));
        }
        Ok(Some(addr))
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnSettings {
    /// The relying party ID (a domain). Empty: the issuer's host. WebAuthn is off when that is an
    /// IP address.
    pub rp_id: String,
    /// Origins allowed to run ceremonies. Empty: the issuer's origin.
    pub origins: Vec<String>,
}

/// Whether a second factor is asked at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    /// Never asked (factors enrolled are ignored at sign-in).
    Off,
    /// Asked of users who enrolled a factor.
    Optional,
    /// Everyone: a user without a factor enrols one at the next sign-in, before any application.
    Required,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaSettings {
    /// `off` | `optional` | `required` (a client created with `--require-mfa` requires it for
    /// its own sign-ins whatever this says).
    pub policy: MfaPolicy,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self { policy: MfaPolicy::Optional }
    }
}

/// Who may create an account on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone, with an emailed confirmation link.
    Open,
    /// Only by invitation (or by an operator).
    InviteOnly,
    /// Nobody: operators create accounts.
    Closed,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsSettings {
    /// `open` | `invite_only` | `closed`.
    pub registration: Registration,
    /// Version of the terms of use accepted at sign-up (recorded with a timestamp).
    pub terms_version: String,
    /// Invitation links live this long, seconds.
    pub invitation_ttl_secs: u64,
    /// Links and codes of one kind sent to one account per hour (then silently not sent).
    pub issue_per_hour: i64,
    /// Links and codes sent on behalf of one IP address per hour.
    pub issue_per_ip_per_hour: i64,
    /// Account deletion needs a sign-in this recent, seconds.
    pub recent_auth_secs: u64,
    /// Proof of work before an SMS is sent: leading zero bits of SHA-256(challenge:nonce).
    pub pow_difficulty: u32,
}

impl Default for AccountsSettings {
    fn default() -> Self {
        Self {
            registration: Registration::Open,
            terms_version: "1".into(),
            invitation_ttl_secs: 7 * 24 * 3600,
            issue_per_hour: 5,
            issue_per_ip_per_hour: 30,
            recent_auth_secs: 300,
            pow_difficulty: 16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailDriver {
    /// One RFC 5322 `.eml` file per message under `outbox_dir`.
    File,
    /// An SMTP relay.
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// `file` (default; `.eml` files under `outbox_dir`) or `smtp`.
    pub driver: MailDriver,
    /// The From header.
    pub from: String,
    pub outbox_dir: PathBuf,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `none`, `starttls` (port 587) or `tls` (port 465).
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub smtp_password: String,
    /// Per-message SMTP timeout, seconds.
    pub timeout_secs: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            driver: MailDriver::File,
            from: "Guichet <no-reply@localhost>".into(),
            outbox_dir: PathBuf::from("./data/outbox"),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: String::new(),
            smtp_password: String::new(),
            timeout_secs: 10,
        }
    }
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("driver", &self.driver)
            .field("from", &self.from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsDriver {
    /// One JSON file per message under `outbox_dir`.
    File,
    /// POST `{"to": ..., "body": ...}` as JSON to `http_url` (with `http_token` as Bearer).
    Http,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    pub driver: SmsDriver,
    pub outbox_dir: PathBuf,
    pub http_url: String,
    pub http_token: String,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            driver: SmsDriver::File,
            outbox_dir: PathBuf::from("./data/outbox"),
            http_url: String::new(),
            http_token: String::new(),
        }
    }
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("driver", &self.driver)
            .field("http_url", &self.http_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// Authorization codes live this long, seconds (single use).
    pub code_ttl_secs: u64,
    /// Access tokens (RFC 9068 JWTs), seconds.
    pub access_token_ttl_secs: u64,
    /// ID tokens, seconds.
    pub id_token_ttl_secs: u64,
    /// A refresh token (rotated on every use) lives this long, seconds.
    pub refresh_token_ttl_secs: u64,
    /// A refresh token presented again this soon after its rotation, while its successor was
    /// never used, is a retry (the response was lost): a new successor is issued and the unused
    /// one retired, instead of revoking the family. Seconds; 0 = every reuse revokes.
    pub refresh_retry_grace_secs: u64,
    /// An offline_access grant ends this long after it was given, seconds, whatever its use.
    pub offline_grant_ttl_secs: u64,
    /// An unfinished sign-in / consent interaction expires after this, seconds.
    pub interaction_ttl_secs: u64,
    /// Registered clients are kept in memory this long, seconds: a client deleted or a secret
    /// rotated on another node (or by the CLI) takes effect here within this time. 0: no cache.
    pub client_cache_secs: u64,
    /// Back-channel logout: attempts per client and per-attempt timeout.
    pub backchannel_attempts: u32,
    pub backchannel_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL; the OIDC issuer. https required unless the host is a loopback name.
    pub issuer: String,
    /// Peers whose `X-Forwarded-For` is believed (your reverse proxies).
    pub trusted_proxies: Vec<IpAddr>,
    /// Whole-request deadline, seconds.
    pub request_timeout_secs: u64,
    /// Time allowed to send the request head, seconds (slow-loris guard).
    pub header_read_timeout_secs: u64,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers), bytes; at least 8192.
    pub max_header_bytes: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests may run before the process exits, seconds.
    pub shutdown_grace_secs: u64,
    /// Serve Prometheus metrics at /metrics on `metrics_listen`.
    pub metrics: bool,
    /// Where /metrics is served: a listener of its own, never the public one. Default loopback;
    /// port 0 picks a free port (logged at start).
    pub metrics_listen: SocketAddr,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`. `DATABASE_URL` overrides.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://host:6379/0`. When set, sessions, counters and replay caches live in Redis.
    /// `REDIS_URL` overrides.
    pub url: Option<String>,
    /// Prefix of every key Guichet writes.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSettings {
    /// Directory holding signing keys (created 0700, files 0600, on first start).
    pub dir: PathBuf,
    /// `keys rotate`: a new key is published this long before it signs, seconds.
    pub publish_delay_secs: u64,
    /// Every node re-reads the key directory this often, seconds.
    pub reload_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// argon2id memory cost, KiB (OWASP: 19456 with t=2, p=1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashes computed at once; further logins wait (bounded) rather than starve the server.
    /// 0 = number of CPUs.
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a hashing slot before answering 503, milliseconds.
    pub queue_timeout_ms: u64,
    pub min_length: usize,
    pub max_length: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// A session unused this long ends, seconds.
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in whatever its use, seconds.
    pub absolute_timeout_secs: u64,
    /// How often lapsed sessions are ended like a logout (grants revoked, RPs told), seconds.
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Failed logins are counted over this window, seconds.
    pub window_secs: u64,
    /// Failures allowed for one account from one IP before delays start.
    pub per_account_ip: i64,
    /// Failures allowed for one account from all IPs before delays start (account-wide).
    pub per_account: i64,
    /// Failures allowed from one IP over all accounts before delays start.
    pub per_ip: i64,
    /// First delay, seconds; it doubles with each further failure.
    pub base_delay_secs: u64,
    /// Longest delay, seconds: an attacker can slow an account down, never lock it for good.
    pub max_delay_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// tracing filter, e.g. `info` or `guichet=debug,tower_http=info`. `RUST_LOG` overrides.
    pub level: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://localhost:8080".into(),
            trusted_proxies: Vec::new(),
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            shutdown_grace_secs: 20,
            metrics: true,
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "sqlite://data/guichet.db".into(), max_connections: 10 }
    }
}

impl Default for KeysSettings {
    fn default() -> Self {
        Self { dir: PathBuf::from("keys"), publish_delay_secs: 3600, reload_secs: 30 }
    }
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
            queue_timeout_ms: 5_000,
            min_length: 8,
            max_length: 256,
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { idle_timeout_secs: 8 * 3600, absolute_timeout_secs: 7 * 24 * 3600, sweep_interval_secs: 30 }
    }
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            window_secs: 900,
            per_account_ip: 5,
            per_account: 20,
            per_ip: 100,
            base_delay_secs: 2,
            max_delay_secs: 900,
        }
    }
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            code_ttl_secs: 60,
            access_token_ttl_secs: 600,
            id_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_retry_grace_secs: 0,
            offline_grant_ttl_secs: 365 * 24 * 3600,
            interaction_ttl_secs: 1800,
            client_cache_secs: 5,
            backchannel_attempts: 3,
            backchannel_timeout_secs: 5,
        }
    }
}

impl OidcSettings {
    /// The longest lifetime of anything signed: how long a retired key stays in the JWKS.
    pub fn max_signed_ttl(&self) -> i64 {
        i64::try_from(self.access_token_ttl_secs.max(self.id_token_ttl_secs).max(120)).unwrap_or(i64::MAX / 4)
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: "text".into(), level: "info".into() }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// A URL with its password replaced, for logs.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".into(),
    }
}

/// Which durable backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseSettings {
    pub fn kind(&self) -> Result<DatabaseKind, ConfigError> {
        let scheme = self.url.split(':').next().unwrap_or("");
        match scheme {
            "sqlite" => Ok(DatabaseKind::Sqlite),
            "postgres" | "postgresql" => Ok(DatabaseKind::Postgres),
            other => Err(invalid(
                "database.url",
                format!("unsupported scheme {other:?} (use sqlite://path or postgres://user@host/db)"),
            )),
        }
    }
}

impl Settings {
    /// Loads defaults <- file <- environment, then validates.
    /// `file`: an explicit path (must exist); without one, `./guichet.toml` is read if present.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        let default_path = Path::new("guichet.toml");
        let (path, required) = match file {
            Some(p) => (Some(p), true),
            None => (Some(default_path).filter(|p| p.exists()), false),
        };
        let mut source = "defaults".to_owned();
        if let Some(p) = path {
            match std::fs::read_to_string(p) {
                Ok(text) => {
                    table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                        path: p.display().to_string(),
                        reason: e.message().to_owned() + &line_of(&text, e.span()),
                    })?;
                    source = p.display().to_string();
                }
                Err(e) if required || e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ConfigError::Read { path: p.display().to_string(), reason: e.to_string() })
                }
                Err(_) => {}
            }
        }
        apply_env(&mut table, env)?;
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let reason = e.inner().message().to_owned();
            if key == "." || key.is_empty() {
                ConfigError::Parse { path: source.clone(), reason }
            } else {
                invalid(&key, reason)
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn from_process_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load(file, &env)
    }

    /// Who may create an account (`registration`, else `accounts.registration`).
    pub fn registration(&self) -> Registration {
        self.registration.unwrap_or(self.accounts.registration)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.issuer_url()?;
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("mail.from", "must be an address such as \"Guichet <no-reply@example.com>\""));
        }
        if self.sms.driver == SmsDriver::Http {
            let u = Url::parse(&self.sms.http_url).map_err(|e| invalid("sms.http_url", format!("not a URL: {e}")))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(invalid("sms.http_url", "must be an http(s) URL"));
            }
        }
        if self.accounts.pow_difficulty > 28 {
            return Err(invalid("accounts.pow_difficulty", "at most 28 bits"));
        }
        self.database.kind()?;
        if let Some(r) = &self.redis.url {
            let u = Url::parse(r).map_err(|e| invalid("redis.url", format!("not a URL: {e}")))?;
            if !matches!(u.scheme(), "redis" | "rediss") {
                return Err(invalid("redis.url", "must start with redis:// or rediss://"));
            }
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.server.max_header_bytes < 8192 {
            return Err(invalid("server.max_header_bytes", "must be at least 8192"));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        if self.server.request_timeout_secs == 0 || self.server.header_read_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "timeouts must be at least 1 second"));
        }
        let p = &self.password;
        if p.argon2_memory_kib < 8 * p.argon2_parallelism.max(1) {
            return Err(invalid("password.argon2_memory_kib", "must be at least 8 × argon2_parallelism"));
        }
        if p.argon2_iterations == 0 {
            return Err(invalid("password.argon2_iterations", "must be at least 1"));
        }
        if p.argon2_parallelism == 0 {
            return Err(invalid("password.argon2_parallelism", "must be at least 1"));
        }
        if p.min_length < 8 {
            return Err(invalid("password.min_length", "must be at least 8 (NIST SP 800-63B)"));
        }
        if p.max_length < 64 || p.max_length > 4096 {
            return Err(invalid("password.max_length", "must be between 64 and 4096"));
        }
        let s = &self.session;
        if s.idle_timeout_secs < 60 || s.absolute_timeout_secs < s.idle_timeout_secs {
            return Err(invalid(
                "session.idle_timeout_secs",
                "must be at least 60 and no more than session.absolute_timeout_secs",
            ));
        }
        let t = &self.login_throttle;
        if t.window_secs == 0 || t.per_account_ip < 1 || t.per_account < 1 || t.per_ip < 1 {
            return Err(invalid("login_throttle", "window and thresholds must be at least 1"));
        }
        if t.max_delay_secs < t.base_delay_secs || t.base_delay_secs == 0 {
            return Err(invalid("login_throttle.max_delay_secs", "must be ≥ base_delay_secs, and base_delay_secs ≥ 1"));
        }
        let o = &self.oidc;
        if o.code_ttl_secs == 0 || o.code_ttl_secs > 600 {
            return Err(invalid(
                "oidc.code_ttl_secs",
                "must be between 1 and 600 (RFC 6749 §4.1.2: at most 10 minutes)",
            ));
        }
        if o.access_token_ttl_secs == 0 || o.id_token_ttl_secs == 0 || o.refresh_token_ttl_secs == 0 {
            return Err(invalid("oidc", "token lifetimes must be at least 1 second"));
        }
        if o.backchannel_attempts == 0 || o.backchannel_timeout_secs == 0 {
            return Err(invalid("oidc.backchannel_attempts", "attempts and timeout must be at least 1"));
        }
        if self.keys.reload_secs == 0 {
            return Err(invalid("keys.reload_secs", "must be at least 1"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be \"text\" or \"json\""));
        }
        self.dns.resolver_addr()?;
        if self.dns.timeout_ms == 0 || self.dns.timeout_ms > 60_000 {
            return Err(invalid("dns.timeout_ms", "must be between 1 and 60000"));
        }
        if self.dns.recheck_interval_secs == 0 {
            return Err(invalid("dns.recheck_interval_secs", "must be at least 1"));
        }
        if self.outbound.allow_loopback && self.issuer_is_https() {
            return Err(invalid("outbound.allow_loopback", "is for tests: refused when the issuer is https"));
        }
        if self.webhooks.allow_loopback && self.issuer_is_https() {
            return Err(invalid("webhooks.allow_loopback", "is for tests: refused when the issuer is https"));
        }
        // Webhook deliveries time out after 10 s.
        let slowest = self.oidc.backchannel_timeout_secs.max(self.mail.timeout_secs).max(10);
        if self.outbox.lease_secs <= slowest || self.outbox.lease_secs > 3600 {
            return Err(invalid(
                "outbox.lease_secs",
                format!("must be longer than the slowest delivery's timeout ({slowest} s) and at most 3600"),
            ));
        }
        if !(AuditSettings::MIN_RETENTION_DAYS..=AuditSettings::MAX_RETENTION_DAYS).contains(&self.audit.retention_days)
        {
            return Err(invalid(
                "audit.retention_days",
                format!(
                    "must be between {} and {} days (the audit log is never kept forever)",
                    AuditSettings::MIN_RETENTION_DAYS,
                    AuditSettings::MAX_RETENTION_DAYS
                ),
            ));
        }
        Ok(())
    }

    /// The issuer as a URL: absolute http(s), no query or fragment, no trailing slash;
    /// https unless the host is loopback (`localhost`, 127.0.0.0/8, ::1).
    pub fn issuer_url(&self) -> Result<Url, ConfigError> {
        let key = "server.issuer";
        let raw = &self.server.issuer;
        let u = Url::parse(raw).map_err(|e| invalid(key, format!("not an absolute URL ({e}): {raw:?}")))?;
        if u.query().is_some() || u.fragment().is_some() {
            return Err(invalid(key, "must not have a query or fragment"));
        }
        if raw.ends_with('/') {
            return Err(invalid(key, format!("must not end with '/' (use {:?})", raw.trim_end_matches('/'))));
        }
        let host = u.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host.trim_matches(['[', ']']).parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
        match u.scheme() {
            "https" => Ok(u),
            "http" if loopback => Ok(u),
            "http" => Err(invalid(key, format!("must use https unless the host is localhost (got {raw})"))),
            other => Err(invalid(key, format!("scheme must be https (got {other})"))),
        }
    }

    pub fn issuer_is_https(&self) -> bool {
        self.server.issuer.starts_with("https://")
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| format!(" (line {})", text[..s.start.min(text.len())].lines().count().max(1))).unwrap_or_default()
}

/// Overlays environment variables: `GUICHET_A__B=v` sets `a.b`. Values are read as TOML
/// scalars/arrays when they parse as such (`8080`, `true`, `["10.0.0.1"]`), else as strings.
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, value) in env {
        let path: Vec<String> = if name == "DATABASE_URL" {
            vec!["database".into(), "url".into()]
        } else if name == "REDIS_URL" {
            vec!["redis".into(), "url".into()]
        } else if name == "GUICHET_REGISTRATION" {
            vec!["registration".into()]
        } else if name == "GUICHET_DNS_RESOLVER" {
            vec!["dns".into(), "resolver".into()]
        } else if let Some(rest) = name.strip_prefix("GUICHET_") {
            // Overrides are GUICHET_<SECTION>__<KEY>; other GUICHET_* variables (GUICHET_CONFIG,
            // tooling's own) are not ours to judge. A misspelt section or key with `__` still
            // fails loudly (deny_unknown_fields).
            if !rest.contains("__") {
                continue;
            }
            rest.split("__").map(|s| s.to_ascii_lowercase()).collect()
        } else {
            continue;
        };
        if value.is_empty() && (name == "DATABASE_URL" || name == "REDIS_URL") {
            continue;
        }
        if path.iter().any(|p| p.is_empty()) || (path.len() < 2 && name != "GUICHET_REGISTRATION") {
            return Err(invalid(name, "environment overrides look like GUICHET_<SECTION>__<KEY>"));
        }
        let v = parse_env_value(value);
        let mut cur = &mut *table;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cur.insert(seg.clone(), v.clone());
            } else {
                let entry = cur.entry(seg.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                cur = match entry {
                    toml::Value::Table(t) => t,
                    _ => return Err(invalid(name, format!("{seg} is not a section"))),
                };
            }
        }
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Probe {
        v: toml::Value,
    }
    let looks_structured = raw.starts_with('[') || raw == "true" || raw == "false" || raw.parse::<f64>().is_ok();
    if looks_structured {
        if let Ok(p) = toml::from_str::<Probe>(&format!("v = {raw}")) {
            return p.v;
        }
    }
    toml::Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn nofile() -> Option<&'static Path> {
        None
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let s = Settings::load(nofile(), &[]).unwrap();
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server.issuer, "http://localhost:8080");
        assert_eq!(s.database.kind().unwrap(), DatabaseKind::Sqlite);
        assert!(s.redis.url.is_none());
    }

    #[test]
    fn env_overrides_with_types() {
        let s = Settings::load(
            nofile(),
            &env(&[
                ("GUICHET_SERVER__LISTEN", "0.0.0.0:9000"),
                ("GUICHET_PASSWORD__ARGON2_ITERATIONS", "3"),
                ("GUICHET_SERVER__TRUSTED_PROXIES", "[\"10.0.0.1\"]"),
                ("DATABASE_URL", "postgres://postgres@127.0.0.1/guichet"),
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("GUICHET_CONFIG", "ignored.toml"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.listen.port(), 9000);
        assert_eq!(s.password.argon2_iterations, 3);
        assert_eq!(s.server.trusted_proxies.len(), 1);
        assert_eq!(s.database.kind().unwrap(), DatabaseKind::Postgres);
        assert_eq!(s.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::load(nofile(), &env(&[("GUICHET_SERVER__ISSUER", "http://idp.example.com")])).unwrap_err();
        assert!(e.to_string().starts_with("config key server.issuer: must use https"), "{e}");
        let e = Settings::load(nofile(), &env(&[("GUICHET_SERVER__LISTEN", "nope")])).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = Settings::load(nofile(), &env(&[("GUICHET_SERVER__LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("unknown field `listn`"), "{e}");
        let e = Settings::load(nofile(), &env(&[("GUICHET_SERVR__LISTEN", "x")])).unwrap_err();
        assert!(e.to_string().contains("unknown field `servr`"), "{e}");
        // Variables that are not overrides are left alone.
        assert!(Settings::load(nofile(), &env(&[("GUICHET_VENV", "/tmp/venv")])).is_ok());
        let e = Settings::load(nofile(), &env(&[("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(e.to_string().contains("database.url"), "{e}");
        let e = Settings::load(nofile(), &env(&[("GUICHET_SERVER__ISSUER", "https://idp.example.com/")])).unwrap_err();
        assert!(e.to_string().contains("must not end with '/'"), "{e}");
    }

    #[test]
    fn https_and_loopback_issuers_are_accepted() {
        for ok in ["https://idp.example.com", "http://127.0.0.1:8080", "http://[::1]:80", "http://app.localhost"] {
            Settings::load(nofile(), &env(&[("GUICHET_SERVER__ISSUER", ok)])).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn file_layer_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.toml");
        std::fs::write(&p, "[server]\nlisten = \"127.0.0.1:9999\"\nissuer = \"https://login.example.com\"\n").unwrap();
        let s = Settings::load(Some(&p), &env(&[("GUICHET_SERVER__LISTEN", "127.0.0.1:7777")])).unwrap();
        assert_eq!(s.server.listen.port(), 7777);
        assert_eq!(s.server.issuer, "https://login.example.com");
        std::fs::write(&p, "[server\nlisten = 1").unwrap();
        let e = Settings::load(Some(&p), &[]).unwrap_err();
        assert!(e.to_string().contains("g.toml"), "{e}");
        let e = Settings::load(Some(&dir.path().join("missing.toml")), &[]).unwrap_err();
        assert!(e.to_string().starts_with("cannot read config file"), "{e}");
    }

    #[test]
    fn dns_resolver_is_an_ip_address() {
        let s = Settings::load(nofile(), &[]).unwrap();
        assert_eq!(s.dns.resolver_addr().unwrap(), None);
        assert_eq!((s.dns.timeout_ms, s.dns.recheck_interval_secs), (3000, 3600));
        for (raw, want) in [
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("192.0.2.53", "192.0.2.53:53"),
            ("[::1]:5353", "[::1]:5353"),
            ("::1", "[::1]:53"),
            ("[2001:db8::1]", "[2001:db8::1]:53"),
        ] {
            let s = Settings::load(nofile(), &env(&[("GUICHET_DNS_RESOLVER", raw)])).unwrap();
            assert_eq!(s.dns.resolver_addr().unwrap().unwrap().to_string(), want, "{raw}");
        }
        let s = Settings::load(nofile(), &env(&[("GUICHET_DNS__RESOLVER", "10.0.0.53"), ("GUICHET_DNS_RESOLVER", "")]))
            .unwrap();
        assert_eq!(s.dns.resolver_addr().unwrap(), None);
        for bad in ["dns.example.com", "dns.example.com:53", "127.0.0.1:0", "127.0.0.1:99999"] {
            let e = Settings::load(nofile(), &env(&[("GUICHET_DNS_RESOLVER", bad)])).unwrap_err();
            assert!(e.to_string().starts_with("config key dns.resolver:"), "{bad}: {e}");
        }
        let e = Settings::load(nofile(), &env(&[("GUICHET_DNS__TIMEOUT_MS", "0")])).unwrap_err();
        assert!(e.to_string().contains("dns.timeout_ms"), "{e}");
    }

    #[test]
    fn audit_retention_is_bounded() {
        assert_eq!(Settings::load(nofile(), &[]).unwrap().audit.retention_days, 365);
        let s = Settings::load(nofile(), &env(&[("GUICHET_AUDIT__RETENTION_DAYS", "30")])).unwrap();
        assert_eq!(s.audit.retention_days, 30);
        for bad in ["0", "6", "36501"] {
            let e = Settings::load(nofile(), &env(&[("GUICHET_AUDIT__RETENTION_DAYS", bad)])).unwrap_err();
            assert!(e.to_string().contains("audit.retention_days"), "{bad}: {e}");
        }
    }

    #[test]
    fn example_file_is_valid_and_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("guichet.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        Settings::load(Some(&path), &[]).unwrap();
        let defaults = toml::Value::try_from(Settings::default()).unwrap();
        let mut sections: Vec<String> = vec!["redis.url".into()];
        for (section, keys) in defaults.as_table().unwrap() {
            for key in keys.as_table().unwrap().keys() {
                sections.push(format!("{section}.{key}"));
            }
        }
        for dotted in sections {
            let (section, key) = dotted.split_once('.').unwrap();
            let body = text.split(&format!("[{section}]\n")).nth(1).unwrap_or_else(|| panic!("no [{section}]"));
            let body = body.split("\n[").next().unwrap();
            assert!(
                body.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "guichet.example.toml does not document {dotted}"
            );
        }
    }
}
