//! Composition root: the only place that knows which store implementations are in use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::{AuthService, Throttle};
use crate::config::{redact_url, DatabaseKind, Settings};
use crate::crypto::{keys, PasswordHasher};
use crate::domain::Clock;
use crate::store::redis_ephemeral::RedisEphemeral;
use crate::store::sql::{PgStore, SqlStore, SqliteStore};
use crate::store::{EphemeralStore, Health, Stores, UserStore};
use crate::web::metrics::Metrics;
use crate::web::serve::{serve, Limits};
use crate::web::session::Sessions;
use crate::web::state::AppState;
use crate::web::templates::Templates;

/// Stores plus the background task that purges expired SQL ephemeral rows (if any).
pub struct OpenedStores {
    pub stores: Stores,
    pub purge: Option<JoinHandle<()>>,
    pub applied_migrations: Vec<i64>,
}

fn sql_stores<DB: sqlx::Database>(s: SqlStore<DB>) -> (Arc<dyn UserStore>, Arc<dyn Health>, Arc<dyn EphemeralStore>)
where
    SqlStore<DB>: UserStore + Health + EphemeralStore + 'static,
{
    let a = Arc::new(s);
    (a.clone(), a.clone(), a)
}

/// Connects the durable store (migrating it) and the ephemeral store.
pub async fn open_stores(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<OpenedStores> {
    let db = &settings.database;
    let url_for_errors = redact_url(&db.url);
    let (users, health, sql_eph, backend, applied, purger): (_, _, _, _, _, Box<dyn Fn() -> JoinHandle<()> + Send>) =
        match db.kind()? {
            DatabaseKind::Sqlite => {
                let s = SqliteStore::connect(&db.url, db.max_connections, clock.clone())
                    .await
                    .with_context(|| format!("cannot open database {url_for_errors}"))?;
                let applied = s.migrate().await.context("migrating the SQLite database")?;
                let p = s.clone();
                let (u, h, e) = sql_stores(s);
                (u, h, e, "sqlite", applied, Box::new(move || spawn_purge(PurgeFn::Sqlite(p.clone()))))
            }
            DatabaseKind::Postgres => {
                let s = PgStore::connect(&db.url, db.max_connections, clock.clone())
                    .await
                    .with_context(|| format!("cannot connect to database {url_for_errors}"))?;
                let applied = s.migrate().await.context("migrating the PostgreSQL database")?;
                let p = s.clone();
                let (u, h, e) = sql_stores(s);
                (u, h, e, "postgres", applied, Box::new(move || spawn_purge(PurgeFn::Postgres(p.clone()))))
            }
        };
    let (ephemeral, ephemeral_backend, purge): (Arc<dyn EphemeralStore>, _, _) = match &settings.redis.url {
        Some(url) => {
            let prefix = if settings.redis.key_prefix.is_empty() { "guichet:" } else { &settings.redis.key_prefix };
            let r = RedisEphemeral::connect(url, prefix)
                .await
                .with_context(|| format!("cannot connect to redis {}", redact_url(url)))?;
            (Arc::new(r), "redis", None)
        }
        None => (sql_eph, backend, Some(purger())),
    };
    Ok(OpenedStores {
        stores: Stores { users, ephemeral, durable_health: health, backend, ephemeral_backend },
        purge,
        applied_migrations: applied,
    })
}

enum PurgeFn {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

fn spawn_purge(p: PurgeFn) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let r = match &p {
                PurgeFn::Sqlite(s) => s.purge_expired().await,
                PurgeFn::Postgres(s) => s.purge_expired().await,
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "purging expired ephemeral entries failed");
            }
        }
    })
}

/// A built application, bound to its listener, not yet serving.
pub struct App {
    listener: TcpListener,
    router: Router,
    limits: Limits,
    purge: Option<JoinHandle<()>>,
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
        keys::server_secret(&settings.keys.dir)?;
        let opened = open_stores(&settings, clock.clone()).await?;
        let stores = opened.stores;
        let hasher = PasswordHasher::new(&settings.password)?;
        let throttle = Throttle::new(stores.ephemeral.clone(), clock.clone(), settings.login_throttle.clone());
        let auth = AuthService::new(stores.users.clone(), hasher, throttle, clock.clone());
        let sessions = Sessions::new(
            stores.ephemeral.clone(),
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
        let limits = Limits {
            max_header_bytes: settings.server.max_header_bytes,
            header_read_timeout: Duration::from_secs(settings.server.header_read_timeout_secs),
            shutdown_grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        };
        let state = AppState {
            settings: Arc::new(settings),
            stores,
            auth: Arc::new(auth),
            sessions: Arc::new(sessions),
            templates: Arc::new(Templates::new()?),
            metrics: Arc::new(Metrics::new()),
            clock,
        };
        let router = crate::web::router(state.clone());
        Ok(Self { listener, router, limits, purge: opened.purge, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
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
        serve(self.listener, self.router, self.limits, shutdown).await;
        if let Some(p) = self.purge {
            p.abort();
        }
    }
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
