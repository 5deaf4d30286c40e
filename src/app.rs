//! Composition root: the only place that knows which store implementations are in use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::accounts::claims::ResourceClaims;
use crate::accounts::AccountService;
use crate::auth::{AuthService, Throttle};
use crate::config::{redact_url, DatabaseKind, Settings};
use crate::crypto::{keys, PasswordHasher};
use crate::domain::Clock;
use crate::mail::Delivery;
use crate::oidc::{KeySet, OidcProvider};
use crate::store::redis_ephemeral::RedisEphemeral;
use crate::store::sql::{PgStore, SqlStore, SqliteStore};
use crate::store::{
    AccountStore, AuthSessionStore, ClientStore, ConsentStore, DevKeyStore, EphemeralStore, FederationStore,
    GrantStore, Health, JournalStore, MfaStore, OrgStore, StatsStore, Stores, UserStore, WebhookStore,
};
use crate::web::metrics::Metrics;
use crate::web::serve::{serve, Limits};
use crate::web::session::Sessions;
use crate::web::state::{AppState, Services};
use crate::web::templates::Templates;

/// Stores, what the background purge cleans, and the migrations this start applied.
pub struct OpenedStores {
    pub stores: Stores,
    /// What the background purge cleans (expired ephemeral rows, spent codes, dead grants).
    pub purge: PurgeFn,
    pub applied_migrations: Vec<i64>,
}

/// The trait objects of one SQL store (it implements every durable port).
struct SqlParts {
    users: Arc<dyn UserStore>,
    clients: Arc<dyn ClientStore>,
    consents: Arc<dyn ConsentStore>,
    grants: Arc<dyn GrantStore>,
    auth_sessions: Arc<dyn AuthSessionStore>,
    accounts: Arc<dyn AccountStore>,
    journal: Arc<dyn JournalStore>,
    mfa: Arc<dyn MfaStore>,
    orgs: Arc<dyn OrgStore>,
    federation: Arc<dyn FederationStore>,
    webhooks: Arc<dyn WebhookStore>,
    devkeys: Arc<dyn DevKeyStore>,
    stats: Arc<dyn StatsStore>,
    health: Arc<dyn Health>,
    ephemeral: Arc<dyn EphemeralStore>,
}

fn sql_parts<DB: sqlx::Database>(s: SqlStore<DB>) -> SqlParts
where
    SqlStore<DB>: UserStore
        + ClientStore
        + ConsentStore
        + GrantStore
        + AuthSessionStore
        + AccountStore
        + JournalStore
        + MfaStore
        + OrgStore
        + FederationStore
        + WebhookStore
        + DevKeyStore
        + StatsStore
        + Health
        + EphemeralStore
        + 'static,
{
    let a = Arc::new(s);
    SqlParts {
        users: a.clone(),
        clients: a.clone(),
        consents: a.clone(),
        grants: a.clone(),
        auth_sessions: a.clone(),
        accounts: a.clone(),
        journal: a.clone(),
        mfa: a.clone(),
        orgs: a.clone(),
        federation: a.clone(),
        webhooks: a.clone(),
        devkeys: a.clone(),
        stats: a.clone(),
        health: a.clone(),
        ephemeral: a,
    }
}

/// Connects the durable store (migrating it) and the ephemeral store.
pub async fn open_stores(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<OpenedStores> {
    let db = &settings.database;
    let url_for_errors = redact_url(&db.url);
    let (parts, backend, applied, purge_target) = match db.kind()? {
        DatabaseKind::Sqlite => {
            let s = SqliteStore::connect(&db.url, db.max_connections, clock.clone())
                .await
                .with_context(|| format!("cannot open database {url_for_errors}"))?;
            let applied = s.migrate().await.context("migrating the SQLite database")?;
            let p = PurgeFn::Sqlite(s.clone());
            (sql_parts(s), "sqlite", applied, p)
        }
        DatabaseKind::Postgres => {
            let s = PgStore::connect(&db.url, db.max_connections, clock.clone())
                .await
                .with_context(|| format!("cannot connect to database {url_for_errors}"))?;
            let applied = s.migrate().await.context("migrating the PostgreSQL database")?;
            let p = PurgeFn::Postgres(s.clone());
            (sql_parts(s), "postgres", applied, p)
        }
    };
    let (ephemeral, ephemeral_backend): (Arc<dyn EphemeralStore>, _) = match &settings.redis.url {
        Some(url) => {
            let prefix = if settings.redis.key_prefix.is_empty() { "guichet:" } else { &settings.redis.key_prefix };
            let r = RedisEphemeral::connect(url, prefix)
                .await
                .with_context(|| format!("cannot connect to redis {}", redact_url(url)))?;
            (Arc::new(r), "redis")
        }
        None => (parts.ephemeral.clone(), backend),
    };
    Ok(OpenedStores {
        stores: Stores {
            users: parts.users,
            clients: parts.clients,
            consents: parts.consents,
            grants: parts.grants,
            auth_sessions: parts.auth_sessions,
            accounts: parts.accounts,
            journal: parts.journal,
            mfa: parts.mfa,
            orgs: parts.orgs,
            federation: parts.federation,
            webhooks: parts.webhooks,
            devkeys: parts.devkeys,
            stats: parts.stats,
            ephemeral,
            durable_health: parts.health,
            backend,
            ephemeral_backend,
        },
        purge: purge_target,
        applied_migrations: applied,
    })
}

pub enum PurgeFn {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

fn spawn_purge(p: PurgeFn) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let r = match &p {
                PurgeFn::Sqlite(s) => match s.purge_expired().await {
                    Ok(_) => match s.purge_grants(s.now()).await {
                        Ok(_) => s.purge_accounts(s.now()).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
                PurgeFn::Postgres(s) => match s.purge_expired().await {
                    Ok(_) => match s.purge_grants(s.now()).await {
                        Ok(_) => s.purge_accounts(s.now()).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "purging expired entries failed");
            }
            // SQLite: the statement stack's connections unused for the idle timeout (sqlx's
            // reaper does not see them). The purge itself keeps the top one in use.
            if let PurgeFn::Sqlite(s) = &p {
                let closed = s.close_idle_connections().await;
                if closed > 0 {
                    tracing::debug!(closed, "idle database connections closed");
                }
            }
        }
    })
}

/// A built application, bound to its listener, not yet serving.
pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: crate::web::App,
    limits: Limits,
    tasks: Vec<JoinHandle<()>>,
    pub state: AppState,
}

impl App {
    /// Builds everything. `listener`: an already-bound socket (tests bind port 0 first so they
    /// know the issuer); otherwise `server.listen` is bound.
    pub async fn build(
        settings: Settings,
        listener: Option<std::net::TcpListener>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let secret = keys::server_secret(&settings.keys.dir)?;
        let keyset = Arc::new(KeySet::load_or_init(&settings.keys.dir, clock.clone(), settings.oidc.max_signed_ttl())?);
        let opened = open_stores(&settings, clock.clone()).await?;
        let stores = opened.stores;
        let secret_bytes = *secret.bytes();
        let oidc = Arc::new(OidcProvider::new(
            &settings,
            stores.clone(),
            keyset.clone(),
            clock.clone(),
            secret,
            Arc::new(crate::oidc::ClaimsHooks(vec![
                Arc::new(ResourceClaims { accounts: stores.accounts.clone() }),
                Arc::new(crate::orgs::claims::OrgClaims { orgs: stores.orgs.clone() }),
            ])),
        )?);
        let hasher = PasswordHasher::new(&settings.password)?;
        let throttle = Throttle::new(stores.ephemeral.clone(), clock.clone(), settings.login_throttle.clone());
        let auth = Arc::new(AuthService::new(stores.users.clone(), hasher, throttle, clock.clone()));
        let templates = Arc::new(Templates::new()?);
        let settings = Arc::new(settings);
        let wake = Arc::new(tokio::sync::Notify::new());
        let delivery = Arc::new(Delivery::new(&settings.mail, &settings.sms)?.with_lease(settings.outbox.lease_secs));
        let accounts = Arc::new(AccountService::new(
            stores.clone(),
            auth.clone(),
            templates.clone(),
            settings.clone(),
            clock.clone(),
            secret_bytes,
            oidc.clone(),
            wake.clone(),
        ));
        let sessions = Sessions::new(
            stores.ephemeral.clone(),
            stores.auth_sessions.clone(),
            clock.clone(),
            settings.issuer_is_https(),
            settings.session.idle_timeout_secs,
            settings.session.absolute_timeout_secs,
        );
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)?
            }
            None => TcpListener::bind(settings.server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.server.listen))?,
        };
        let metrics_listener = if settings.server.metrics {
            let addr = settings.server.metrics_listen;
            Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for metrics (server.metrics_listen; port 0 picks a free one)")
            })?)
        } else {
            None
        };
        let limits = Limits {
            max_header_bytes: settings.server.max_header_bytes,
            header_read_timeout: Duration::from_secs(settings.server.header_read_timeout_secs),
            shutdown_grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        };
        let sealer = Arc::new(crate::crypto::sealed::Sealer::load_or_init(&settings.keys.dir)?);
        let mfa = Arc::new(crate::auth::mfa::MfaService::new(
            stores.clone(),
            sealer.clone(),
            clock.clone(),
            secret_bytes,
            &settings.server.issuer,
            crate::auth::webauthn::relying_party(
                &settings.server.issuer,
                &settings.webauthn.rp_id,
                &settings.webauthn.origins,
            ),
        ));
        let resolver = Arc::new(crate::dns::Resolver::new(&settings.dns)?);
        let orgs = Arc::new(crate::orgs::OrgService::new(stores.clone(), accounts.clone(), resolver, clock.clone()));
        let member_events = Arc::new(crate::orgs::MemberEventSink(orgs.clone()));
        oidc.set_session_events(member_events.clone());
        accounts.events.set(member_events.clone());
        mfa.events.set(member_events);
        let federation = Arc::new(crate::federation::FederationService::new(
            stores.clone(),
            accounts.clone(),
            orgs.clone(),
            sealer.clone(),
            clock.clone(),
            &settings.server.issuer,
            crate::net::OutboundPolicy::new(
                crate::dns::Resolver::new(&settings.dns)?,
                settings.outbound.allow_loopback,
            )?,
        )?);
        let webhooks = Arc::new(crate::webhooks::WebhookService::new(
            stores.clone(),
            orgs.clone(),
            sealer.clone(),
            clock.clone(),
            crate::net::OutboundPolicy::new(
                crate::dns::Resolver::new(&settings.dns)?,
                settings.webhooks.allow_loopback,
            )?,
            wake.clone(),
        ));
        delivery.set_webhooks(webhooks.clone());
        delivery.set_oidc(oidc.clone());
        delivery.set_orgs(orgs.clone());
        orgs.set_recheck_interval(settings.dns.recheck_interval_secs);
        oidc.set_outbox_wake(wake.clone());
        oidc.set_org_outbound(crate::net::OutboundPolicy::new(
            crate::dns::Resolver::new(&settings.dns)?,
            settings.outbound.allow_loopback,
        )?);
        let event_purge = crate::webhooks::spawn_event_purge(webhooks.clone());
        let devkeys = Arc::new(crate::devkeys::DevKeyService::new(stores.clone(), orgs.clone(), clock.clone()));
        let audit = Arc::new(crate::audit::AuditService::new(
            stores.journal.clone(),
            orgs.clone(),
            accounts.clone(),
            clock.clone(),
            settings.audit.retention_days,
        ));
        let bus = match &settings.redis.url {
            Some(url) => {
                let prefix = if settings.redis.key_prefix.is_empty() { "guichet:" } else { &settings.redis.key_prefix };
                crate::events::EventBus::redis(url, prefix).await?
            }
            None => crate::events::EventBus::local(),
        };
        orgs.set_event_bus(bus.clone());
        let outbox = crate::mail::spawn_worker(stores.journal.clone(), delivery, clock.clone(), wake);
        let state = AppState::new(Services {
            settings,
            stores,
            auth,
            accounts,
            mfa,
            orgs: orgs.clone(),
            federation: federation.clone(),
            webhooks,
            devkeys,
            bus,
            audit: audit.clone(),
            sessions: Arc::new(sessions),
            templates,
            metrics: Arc::new(Metrics::new()),
            oidc,
            clock,
        });
        let router = crate::web::router(state.clone());
        let tasks = vec![
            spawn_session_sweep(state.oidc.clone(), Duration::from_secs(state.settings.session.sweep_interval_secs)),
            spawn_purge(opened.purge),
            crate::federation::saml::spawn_metadata_refresh(federation, crate::federation::saml::METADATA_REFRESH),
            event_purge,
            audit.spawn_purge(),
            spawn_key_reload(keyset, Duration::from_secs(state.settings.keys.reload_secs)),
            spawn_hash_memory_release(state.auth.clone()),
            outbox,
        ];
        Ok(Self { listener, metrics_listener, router, limits, tasks, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where /metrics is served, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(
            addr = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            issuer = %self.state.settings.server.issuer,
            database = self.state.stores.backend,
            ephemeral = self.state.stores.ephemeral_backend,
            "guichet listening"
        );
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics_listener.map(|l| {
            tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics listening");
            let limits = Limits { ..self.limits.clone() };
            let router = crate::web::ops::metrics_router(self.state.clone());
            tokio::spawn(serve(l, router, limits, async {
                let _ = metrics_stopped.await;
            }))
        });
        serve(self.listener, self.router, self.limits, shutdown).await;
        let _ = stop_metrics.send(());
        if let Some(m) = metrics {
            let _ = m.await;
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Ends lapsed sign-in sessions as a logout would (grants revoked, relying parties notified).
fn spawn_session_sweep(oidc: Arc<OidcProvider>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        loop {
            tick.tick().await;
            if let Err(e) = oidc.end_lapsed_sessions().await {
                tracing::warn!(error = %e, "ending lapsed sessions failed");
            }
        }
    })
}

/// argon2's working memory is reused between sign-ins and given back once they stop (10 s),
/// so the idle RSS stays small.
fn spawn_hash_memory_release(auth: Arc<AuthService>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let freed = auth.release_idle_hash_memory(Duration::from_secs(10));
            if freed > 0 {
                tracing::debug!(freed, "argon2 working memory released");
            }
        }
    })
}

/// Re-reads the key directory periodically: keys rotated elsewhere get published here too.
fn spawn_key_reload(keys: Arc<KeySet>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let k = keys.clone();
            match tokio::task::spawn_blocking(move || k.reload()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "reloading signing keys failed; keeping the current set"),
                Err(e) => tracing::error!(error = %e, "key reload task failed"),
                Ok(Ok(())) => {}
            }
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
