//! Black-box harness: the real app on port 0 with a fresh database per test (SQLite temp file;
//! a new PostgreSQL database when `DATABASE_URL` points at PostgreSQL; a fresh Redis key prefix
//! when `REDIS_URL` is set), spoken to over HTTP like a browser or a relying app would.

use std::net::SocketAddr;
use std::sync::Arc;

use guichet::crypto::{PasswordHasher, SecretString};
use guichet::domain::clock::OffsetClock;
use guichet::domain::{Email, NewUser, User, UserStatus};
use guichet::web::state::AppState;
use guichet::{App, Settings};
use reqwest::redirect::Policy;
use sqlx::Connection;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics listener (its own port, never the public one).
    pub metrics_addr: Option<SocketAddr>,
    pub base: String,
    pub state: AppState,
    pub clock: OffsetClock,
    pub settings: Settings,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<()>>,
    _dir: Arc<tempfile::TempDir>,
}

/// The stores a test runs against, from the environment.
pub async fn fresh_store_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    match std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) {
        Some(admin_url) => {
            let name = format!("guichet_t_{}", uuid::Uuid::new_v4().simple());
            let mut c = sqlx::PgConnection::connect(&admin_url).await.expect("connect to DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut c).await.expect("create test database");
            let mut u = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
            u.set_path(&format!("/{name}"));
            s.database.url = u.to_string();
        }
        None => s.database.url = format!("sqlite://{}", dir.join("guichet.db").display()),
    }
    if let Some(r) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
        s.redis.url = Some(r);
        s.redis.key_prefix = format!("guichet-test-{}:", uuid::Uuid::new_v4().simple());
    }
    s.keys.dir = dir.join("keys");
    s.mail.outbox_dir = dir.join("outbox");
    s.sms.outbox_dir = dir.join("outbox");
    s
}

/// The messages the file mail driver wrote so far (raw RFC 5322 text, decoded from
/// quoted-printable), oldest first.
pub fn outbox(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files.iter().map(|p| decode_qp(&std::fs::read_to_string(p).unwrap_or_default())).collect()
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first link starting with `prefix` in a message.
pub fn link_in(mail: &str, prefix: &str) -> Option<String> {
    let start = mail.find(prefix)?;
    let end = mail[start..].find(|c: char| c.is_whitespace() || c == '"' || c == '<').map_or(mail.len(), |e| start + e);
    Some(mail[start..end].to_owned())
}

pub fn test_defaults(s: &mut Settings) {
    // Cheap hashes: tests are about behaviour, not cost (benchmarks measure that).
    s.password.argon2_memory_kib = 1024;
    s.password.argon2_iterations = 1;
    // Lets tests play several client IPs through X-Forwarded-For.
    s.server.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    s.server.shutdown_grace_secs = 2;
    // Tests run side by side: each metrics listener on a free port.
    s.server.metrics_listen = "127.0.0.1:0".parse().expect("addr");
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customize: impl FnOnce(&mut Settings)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut s = fresh_store_settings(dir.path()).await;
        test_defaults(&mut s);
        customize(&mut s);
        Self::start(s, dir, OffsetClock::new(), false).await
    }

    /// A server whose issuer names another host (`localhost`): a browser keeps its cookies for
    /// it apart from a server on 127.0.0.1 (cookies do not tell ports apart).
    pub async fn spawn_on_host(host: &str) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut s = fresh_store_settings(dir.path()).await;
        test_defaults(&mut s);
        Self::start_on(s, dir, OffsetClock::new(), false, host).await
    }

    /// A second node of the same service: same database, same Redis prefix, same keys, same
    /// clock, same issuer (as behind one load balancer).
    pub async fn spawn_sibling(&self) -> Self {
        Self::start(self.settings.clone(), self._dir.clone(), self.clock.clone(), true).await
    }

    /// A sibling node with other settings (same database and clock).
    pub async fn spawn_sibling_with(&self, settings: Settings) -> Self {
        Self::start(settings, self._dir.clone(), self.clock.clone(), true).await
    }

    async fn start(s: Settings, dir: Arc<tempfile::TempDir>, clock: OffsetClock, keep_issuer: bool) -> Self {
        Self::start_on(s, dir, clock, keep_issuer, "127.0.0.1").await
    }

    async fn start_on(
        mut s: Settings,
        dir: Arc<tempfile::TempDir>,
        clock: OffsetClock,
        keep_issuer: bool,
        host: &str,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        if !keep_issuer {
            s.server.issuer = format!("http://{host}:{}", addr.port());
        }
        let app = App::build(s.clone(), Some(listener), Arc::new(clock.clone())).await.expect("app builds");
        let state = app.state.clone();
        let metrics_addr = app.metrics_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            metrics_addr,
            base: format!("http://{host}:{}", addr.port()),
            state,
            clock,
            settings: s,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// Waits (up to 10 s) until the outbox holds `n` mail files; returns them.
    pub async fn mails(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let m = outbox(&self.settings.mail.outbox_dir);
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("expected {n} mails, found {}", outbox(&self.settings.mail.outbox_dir).len());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser: its own cookie jar, redirects not followed (tests look at them).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client")
    }

    pub async fn create_user(&self, email: &str, password: &str) -> User {
        self.create_user_with(email, Some(password), UserStatus::Active).await
    }

    pub async fn create_user_with(&self, email: &str, password: Option<&str>, status: UserStatus) -> User {
        let hasher = PasswordHasher::new(&self.settings.password).expect("hasher");
        let password_hash = match password {
            Some(p) => Some(hasher.hash(&SecretString::new(p)).await.expect("hash")),
            None => None,
        };
        self.state
            .stores
            .users
            .create_user(NewUser {
                email: Email::parse(email).expect("email"),
                name: None,
                password_hash,
                status,
                is_admin: false,
            })
            .await
            .expect("create user")
    }

    /// Opens the sign-in page and returns the CSRF token of its form.
    pub async fn open_login(&self, browser: &reqwest::Client) -> String {
        let page = browser.get(self.url("/login")).send().await.expect("GET /login");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("body");
        form_value(&html, "csrf_token").expect("csrf_token in the login form")
    }

    /// Fills in and submits the sign-in form, optionally as if from `ip`.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        email: &str,
        password: &str,
        ip: Option<&str>,
    ) -> reqwest::Response {
        let csrf = self.open_login(browser).await;
        let mut req =
            browser.post(self.url("/login")).form(&[("email", email), ("password", password), ("csrf_token", &csrf)]);
        if let Some(ip) = ip {
            req = req.header("x-forwarded-for", ip);
        }
        req.send().await.expect("POST /login")
    }

    /// Signs out through the confirmation form.
    pub async fn logout(&self, browser: &reqwest::Client) {
        let page = browser.get(self.url("/logout")).send().await.expect("GET /logout").text().await.expect("body");
        let csrf = form_value(&page, "csrf_token").expect("csrf_token in the logout form");
        let res = browser.post(self.url("/logout")).form(&[("csrf_token", csrf)]).send().await.expect("POST /logout");
        assert_eq!(res.status(), 303);
    }

    /// Stops the server (graceful shutdown) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `value` of the input named `name` in an HTML form (our templates quote attributes).
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(unescape(&html[start..start + end]))
}

/// Undoes Tera's HTML escaping, as a browser does when it submits a form.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

pub fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
