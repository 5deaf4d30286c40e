//! The command line, as operators and scripts use it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::helpers::fresh_store_settings;

struct Cli {
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Cli {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let s = fresh_store_settings(dir.path()).await;
        let mut env = vec![
            ("DATABASE_URL".to_string(), s.database.url.clone()),
            ("GUICHET_KEYS__DIR".to_string(), s.keys.dir.display().to_string()),
            ("GUICHET_PASSWORD__ARGON2_MEMORY_KIB".to_string(), "1024".to_string()),
            ("GUICHET_PASSWORD__ARGON2_ITERATIONS".to_string(), "1".to_string()),
            ("GUICHET_SERVER__METRICS_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ];
        if let Some(r) = &s.redis.url {
            env.push(("REDIS_URL".into(), r.clone()));
        }
        Self { env, _dir: dir }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_guichet"));
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self._dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }
}

fn stderr_line(o: &Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr).trim().to_owned();
    assert_eq!(s.lines().count(), 1, "one clear line on error, got: {s}");
    s
}

#[tokio::test]
async fn user_create_and_list_with_json() {
    let cli = Cli::new().await;
    let out = cli.run(
        &["user", "create", "--email", "Ops@Example.com", "--name", "Ops", "--password-stdin", "--json"],
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let u: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u["email"], "Ops@Example.com");
    assert_eq!(u["status"], "active");
    assert_eq!(u["name"], "Ops");
    assert!(u.get("password_hash").is_none());

    let out = cli.run(&["user", "create", "--email", "admin@example.com", "--admin", "--json"], None);
    assert!(out.status.success());
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a["status"], "pending", "no password: pending activation");
    assert_eq!(a["is_admin"], true);

    let out = cli.run(&["user", "list", "--json"], None);
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 2);
    let out = cli.run(&["user", "list"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin@example.com"));
}

#[tokio::test]
async fn user_create_errors_are_one_clear_line() {
    let cli = Cli::new().await;
    assert!(cli
        .run(&["user", "create", "--email", "x@example.com", "--password-stdin"], Some("long enough pw"))
        .status
        .success());
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (&["user", "create", "--email", "X@EXAMPLE.COM", "--password-stdin"], Some("long enough pw"), "already exists"),
        (&["user", "create", "--email", "not-an-email"], None, "invalid --email"),
        (&["user", "create", "--email", "y@example.com", "--password-stdin"], Some("short\n"), "password too short"),
    ];
    for (args, stdin, expected) in cases {
        let out = cli.run(args, *stdin);
        assert!(!out.status.success(), "{args:?}");
        let line = stderr_line(&out);
        assert!(line.starts_with("error: ") && line.contains(expected), "{args:?}: {line}");
    }
    // Nothing half-written by the failures.
    let out = cli.run(&["user", "list", "--json"], None);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn migrate_reports_what_it_applied() {
    let cli = Cli::new().await;
    let out = cli.run(&["migrate", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let every: Vec<i64> = guichet::store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(v["applied"], serde_json::json!(every));
    let out = cli.run(&["migrate", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["applied"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_configuration_stops_with_the_key_and_the_reason() {
    let mut cli = Cli::new().await;
    cli.env.push(("GUICHET_SERVER__ISSUER".into(), "http://idp.example.com".into()));
    let out = cli.run(&["serve"], None);
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_line(&out);
    assert!(line.contains("server.issuer") && line.contains("https"), "{line}");

    let mut cli = Cli::new().await;
    cli.env.push(("GUICHET_PASSWORD__ARGON2_ITERATIONS".into(), "zero".into()));
    let out = cli.run(&["user", "list"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("password.argon2_iterations"));

    let cli = Cli::new().await;
    let out = cli.run(&["--config", "/nonexistent/guichet.toml", "user", "list"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("/nonexistent/guichet.toml"));

    let mut cli = Cli::new().await;
    cli.env.retain(|(k, _)| k != "DATABASE_URL");
    cli.env.push(("DATABASE_URL".into(), "postgres://nobody@127.0.0.1:1/none".into()));
    let out = cli.run(&["user", "list"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("cannot connect to database"));
}

#[tokio::test]
async fn every_command_has_help() {
    let cli = Cli::new().await;
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["user", "create", "--help"],
        &["user", "list", "--help"],
    ] {
        let out = cli.run(args, None);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    }
    let out = cli.run(&["user", "create"], None);
    assert!(!out.status.success());
}

#[tokio::test]
async fn client_commands() {
    let cli = Cli::new().await;
    let out = cli.run(
        &[
            "client",
            "create",
            "--name",
            "Orders",
            "--redirect-uri",
            "https://orders.example.com/cb",
            "--post-logout-redirect-uri",
            "https://orders.example.com/",
            "--backchannel-logout-uri",
            "https://orders.example.com/bc",
            "--id-token-signed-response-alg",
            "ES256",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = c["client_id"].as_str().unwrap().to_owned();
    let secret = c["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256-bit secret, base64url");
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(c["id_token_signed_response_alg"], "ES256");

    let out = cli.run(
        &["client", "create", "--name", "SPA", "--public", "--redirect-uri", "http://localhost:5173/cb", "--json"],
        None,
    );
    let spa: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spa["token_endpoint_auth_method"], "none");
    assert!(spa.get("client_secret").is_none());
    assert_eq!(c["introspection"], false);

    // A resource server allowed to introspect other clients' tokens; never a public client.
    let out = cli.run(&["client", "create", "--name", "Orders API", "--introspection", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let api: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(api["introspection"], true);
    let out = cli.run(
        &[
            "client",
            "create",
            "--name",
            "Bad",
            "--public",
            "--redirect-uri",
            "http://localhost:1/cb",
            "--introspection",
        ],
        None,
    );
    assert!(!out.status.success());

    let out = cli.run(
        &[
            "client",
            "create",
            "--name",
            "Multi",
            "--redirect-uri",
            "https://m.example.com/a",
            "https://m.example.com/b",
            "--grant",
            "authorization_code,refresh_token",
            "--grant",
            "client_credentials",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(m["grant_types"], serde_json::json!(["authorization_code", "refresh_token", "client_credentials"]));
    let out = cli.run(&["client", "delete", &format!("--client-id={}", m["client_id"].as_str().unwrap())], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli.run(&["client", "show", &id, "--json"], None);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(shown.get("client_secret").is_none(), "the secret is shown once only");
    let out = cli.run(&["client", "list", "--json"], None);
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap().len(), 3);
    let out = cli.run(&["client", "rotate-secret", &id, "--json"], None);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(r["client_secret"].as_str().unwrap(), secret);
    let out = cli.run(&["client", "delete", &id, "--json"], None);
    assert!(out.status.success());
    let out = cli.run(&["client", "show", &id], None);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("no client"));

    // Bad registrations: one clear line each.
    for (args, expected) in [
        (vec!["client", "create", "--name", "X", "--redirect-uri", "http://app.example.com/cb"], "https"),
        (vec!["client", "create", "--name", "X", "--redirect-uri", "https://a.example.com/cb#frag"], "fragment"),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example.com/cb",
                "--auth-method",
                "private_key_jwt",
            ],
            "jwks",
        ),
        (vec!["client", "create", "--name", "X", "--public", "--grant", "client_credentials"], "public clients"),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example.com/cb",
                "--id-token-signed-response-alg",
                "none",
            ],
            "none",
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "X",
                "--public",
                "--auth-method",
                "client_secret_post",
                "--redirect-uri",
                "https://a.example.com/cb",
            ],
            "conflicts",
        ),
    ] {
        let out = cli.run(&args, None);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn keys_list_and_rotate() {
    let cli = Cli::new().await;
    let out = cli.run(&["keys", "list", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k["state"] == "active"));
    let out = cli.run(&["keys", "rotate", "--alg", "EdDSA", "--json"], None);
    let new: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["state"], "next");
    assert_eq!(new[0]["alg"], "EdDSA");
    let out = cli.run(&["keys", "list", "--json"], None);
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys.len(), 4);
    // Key files are private.
    use std::os::unix::fs::PermissionsExt;
    let dir = cli.env.iter().find(|(k, _)| k == "GUICHET_KEYS__DIR").unwrap().1.clone();
    for e in std::fs::read_dir(dir).unwrap() {
        let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let out = cli.run(&["keys", "rotate", "--alg", "HS256"], None);
    assert!(!out.status.success());
    // Revoking the signing RS256 key: it is revoked, and a new RS256 key signs at once.
    let rs = keys.iter().find(|k| k["alg"] == "RS256" && k["state"] == "active").unwrap();
    let kid = rs["kid"].as_str().unwrap();
    let out = cli.run(&["keys", "revoke", kid, "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let changed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(changed.iter().any(|k| k["kid"] == kid && k["state"] == "revoked"), "{changed:?}");
    assert!(changed.iter().any(|k| k["kid"] != kid && k["alg"] == "RS256" && k["state"] == "active"), "{changed:?}");
    let out = cli.run(&["keys", "revoke", "no-such-kid"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}

#[tokio::test]
async fn serve_answers_then_stops_cleanly_on_sigterm() {
    let cli = Cli::new().await;
    // Port 0: the server binds a free port itself (no race with other tests) and logs it.
    let mut env = cli.env.clone();
    env.push(("GUICHET_SERVER__ISSUER".into(), "http://127.0.0.1:8080".into()));
    let mut served = crate::process::Served::start(&env, cli._dir.path()).await;
    // One access-log line per request, in the span that carries the caller's request id; no
    // colour codes when stderr is not a terminal; never the query string.
    let res = reqwest::Client::new()
        .get(served.url("/jwks?probe=secret-ish"))
        .header("x-request-id", "access-log-probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "access-log-probe-1");
    let waited = std::time::Instant::now();
    let line = loop {
        // Raw, colour codes included (the log writer batches lines for 20 ms).
        let raw = served.log.lock().unwrap().clone();
        if let Some(l) = raw.lines().find(|l| l.contains("access-log-probe-1")) {
            break l.to_owned();
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(5), "no access-log line: {raw}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!line.contains('\x1b'), "colour codes in a piped log: {line:?}");
    assert!(line.contains("INFO request{request_id=access-log-probe-1}: GET /jwks status=200 latency_us="), "{line}");
    assert!(!line.contains("secret-ish"), "{line}");
    // The process tunes malloc by re-executing itself: same PID, so signals reach the server.
    let pid = served.child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    for setting in [
        "MALLOC_MMAP_THRESHOLD_=131072",
        "MIMALLOC_PURGE_DELAY=0",
        "MIMALLOC_ALLOW_THP=0",
        "MIMALLOC_ABANDONED_RECLAIM_ON_FREE=1",
    ] {
        assert!(environ.split('\0').any(|v| v == setting), "{setting} not set");
    }
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(s) = served.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "did not stop on SIGTERM");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(code.success(), "exit status {code:?}");
    // The log reader may still be draining the pipe.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = served.logs();
    assert!(log.contains("shutdown signal received"), "{log}");
}

/// The `.eml` files the CLI's file mail driver wrote (under its working directory).
fn cli_mails(cli: &Cli) -> Vec<String> {
    let dir = cli._dir.path().join("data/outbox");
    let mut files: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

#[tokio::test]
async fn invitations_from_the_command_line() {
    let cli = Cli::new().await;
    assert!(cli.run(&["org", "create", "--name", "Acme", "--slug", "acme"], None).status.success());
    let out = cli.run(
        &[
            "invite",
            "create",
            "--email",
            "guest@example.com",
            "--resource",
            "gallery:123",
            "--name",
            "Guest",
            "--org",
            "acme",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["id", "expires", "expires_at", "link", "status"] {
        assert!(!inv[k].is_null(), "--json prints {k}: {inv}");
    }
    assert_eq!(inv["status"], "pending");
    assert_eq!(inv["resource"], "gallery:123");
    assert!(inv["link"].as_str().unwrap().contains("/invite?token="));
    let mails = cli_mails(&cli);
    assert_eq!(mails.len(), 1, "mailed before the command exits");
    assert!(mails[0].contains("To: guest@example.com"));
    let id = inv["id"].as_str().unwrap();
    let out = cli.run(&["invite", "resend", id, "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(again["link"], inv["link"], "a new link");
    let out = cli.run(&["invite", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = cli.run(&["invite", "revoke", id, "--json"], None);
    assert!(out.status.success());
    let out = cli.run(&["invite", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["status"], "revoked");
    let out = cli.run(&["invite", "revoke", id], None);
    assert!(!out.status.success());
    assert!(stderr_line(&out).starts_with("error: "));
    let out = cli.run(&["invite", "create", "--email", "not an address"], None);
    assert!(!out.status.success());
    stderr_line(&out);
}

#[tokio::test]
async fn operators_create_pending_accounts_and_delete_them() {
    let cli = Cli::new().await;
    let out = cli.run(&["user", "create", "--email", "pending@example.com", "--name", "Pat", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let u: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u["status"], "pending");
    let first = u["activation_link"].as_str().unwrap().to_owned();
    assert!(first.contains("/activate?token="));
    assert!(cli_mails(&cli)[0].contains("To: pending@example.com"));
    let out = cli.run(&["user", "activate-link", "--email", "pending@example.com", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(v["activation_link"].as_str().unwrap(), first);
    assert_eq!(cli_mails(&cli).len(), 2);
    let out = cli.run(&["user", "mfa-reset", "--email", "pending@example.com", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli.run(&["user", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["factors"], serde_json::json!([]), "user list shows the factors");
    for (cmd, status) in [("suspend", "suspended"), ("resume", "pending")] {
        let out = cli.run(&["user", cmd, "--email", "pending@example.com", "--json"], None);
        assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], status, "a never-activated account resumes as pending");
    }
    let out = cli.run(&["user", "delete", "--email", "pending@example.com", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["subject"].as_str().unwrap().starts_with("anon-"));
    let out = cli.run(&["user", "list", "--json"], None);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), serde_json::json!([]));
    let out = cli.run(&["user", "delete", "--email", "pending@example.com"], None);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("no user"));
}

#[tokio::test]
async fn seal_keys_rotate() {
    let cli = Cli::new().await;
    let out = cli.run(&["keys", "rotate-seal", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kid = v["kid"].as_str().unwrap();
    let keys = cli._dir.path().join("keys");
    let seals: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seal-"))
        .collect();
    assert_eq!(seals.len(), 2, "the first key (made on first use) and the new one: {seals:?}");
    assert!(seals.iter().any(|n| n.contains(kid)));
}

fn json_of(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// Organizations, permissions, roles and domains from the command line, every command with
/// `--json`; domain verification against a DNS server on loopback.
// Multi-threaded: the CLI runs as a blocking child process while the DNS server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_permission_role_and_domain_commands() {
    let dns = crate::dns_server::TestDns::start().await;
    let mut cli = Cli::new().await;
    cli.env.push(("GUICHET_DNS_RESOLVER".into(), dns.addr.to_string()));
    cli.env.push(("GUICHET_DNS__TIMEOUT_MS".into(), "1000".into()));
    let o = json_of(&cli.run(&["org", "create", "--name", "Acme Corp", "--json"], None));
    assert_eq!(o["slug"], "acme-corp");
    assert_eq!(o["name"], "Acme Corp");
    let id = o["id"].as_str().unwrap().to_owned();
    let o2 = json_of(&cli.run(&["org", "create", "--name", "Globex", "--slug", "globex", "--json"], None));
    assert_eq!(o2["slug"], "globex");
    let out = cli.run(&["org", "create", "--name", "Again", "--slug", "globex", "--json"], None);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("taken"));
    let list = json_of(&cli.run(&["org", "list", "--json"], None));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(json_of(&cli.run(&["org", "show", &id, "--json"], None))["slug"], "acme-corp");
    assert_eq!(json_of(&cli.run(&["org", "show", "--org", "acme-corp", "--json"], None))["id"], id);
    let u = json_of(&cli.run(
        &[
            "org",
            "update",
            "acme-corp",
            "--name",
            "Acme Corporation",
            "--require-sso",
            "true",
            "--accent-color",
            "#1a4d8f",
            "--json",
        ],
        None,
    ));
    assert_eq!(
        (u["name"].as_str(), u["require_sso"].as_bool(), u["accent_color"].as_str()),
        (Some("Acme Corporation"), Some(true), Some("#1a4d8f"))
    );
    let out = cli.run(&["org", "update", "acme-corp", "--accent-color", "#ffff00", "--json"], None);
    assert!(stderr_line(&out).contains("too light"));

    // Members.
    assert!(cli
        .run(&["user", "create", "--email", "ann@acme.test", "--password-stdin"], Some("long enough pw"))
        .status
        .success());
    let m = json_of(&cli.run(
        &["org", "member", "add", "--org", "acme-corp", "--email", "ann@acme.test", "--role", "admin", "--json"],
        None,
    ));
    assert_eq!(m["role"], "admin");
    let out = cli.run(&["org", "member", "add", "--org", "acme-corp", "--email", "ghost@acme.test", "--json"], None);
    assert!(stderr_line(&out).contains("invite"), "unknown accounts are invited, not added");

    // Permissions and roles of a client.
    let c = json_of(&cli.run(
        &["client", "create", "--name", "Orders", "--redirect-uri", "https://orders.example.com/cb", "--json"],
        None,
    ));
    let client = c["client_id"].as_str().unwrap().to_owned();
    let p =
        json_of(&cli.run(&["permission", "add", "--client", &client, "orders:read", "billing:manage", "--json"], None));
    assert_eq!(p["permissions"], serde_json::json!(["billing:manage", "orders:read"]));
    let r = json_of(&cli.run(
        &[
            "role",
            "create",
            "--client",
            &client,
            "--name",
            "buyer",
            "--permission",
            "orders:read",
            "billing:manage",
            "--json",
        ],
        None,
    ));
    assert_eq!(r["name"], "buyer");
    assert_eq!(r["permissions"], serde_json::json!(["billing:manage", "orders:read"]));
    assert!(r["org_id"].is_null());
    let r2 = json_of(&cli.run(
        &[
            "role",
            "create",
            "--client",
            &client,
            "--name",
            "reader",
            "--permission",
            "orders:read",
            "--org",
            "acme-corp",
            "--json",
        ],
        None,
    ));
    assert_eq!(r2["org_id"], id);
    let out =
        cli.run(&["role", "create", "--client", &client, "--name", "x", "--permission", "nope:nope", "--json"], None);
    assert!(stderr_line(&out).contains("no permission"));
    let g =
        json_of(&cli.run(
            &["role", "grant", "--org", "acme-corp", "--email", "ann@acme.test", "--role", "buyer", "--json"],
            None,
        ));
    assert_eq!(g["granted"], true);
    let show = json_of(&cli.run(&["org", "show", "acme-corp", "--json"], None));
    assert_eq!(show["members"][0]["roles"][0]["name"], "buyer");
    let g =
        json_of(&cli.run(
            &["role", "revoke", "--org", "acme-corp", "--email", "ann@acme.test", "--role", "buyer", "--json"],
            None,
        ));
    assert_eq!(g["revoked"], true);
    // A role of another organization cannot be granted here.
    let r3 = json_of(&cli.run(
        &[
            "role",
            "create",
            "--client",
            &client,
            "--name",
            "globex-only",
            "--permission",
            "orders:read",
            "--org",
            "globex",
            "--json",
        ],
        None,
    ));
    let out = cli.run(
        &["role", "grant", "--org", "acme-corp", "--email", "ann@acme.test", "--role", r3["id"].as_str().unwrap()],
        None,
    );
    assert!(!out.status.success());

    // Domains: the TXT record to publish, then verification.
    let d = json_of(&cli.run(&["domain", "add", "--org", "acme-corp", "--domain", "acme.test", "--json"], None));
    assert_eq!(d["record"]["type"], "TXT");
    assert_eq!(d["record"]["name"], "_guichet-challenge.acme.test");
    let value = d["record"]["value"].as_str().unwrap().to_owned();
    assert!(value.len() > 30);
    assert_eq!(d["status"], "pending");
    let out = cli.run(&["domain", "verify", "--org", "acme-corp", "--domain", "acme.test", "--json"], None);
    assert!(!out.status.success(), "no record yet");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "pending");
    assert!(stderr_line(&out).contains("no TXT record"));
    dns.set_txt("_guichet-challenge.acme.test", &[&value]);
    let v = json_of(&cli.run(&["domain", "verify", "--org", "acme-corp", "--domain", "acme.test", "--json"], None));
    assert_eq!(v["status"], "verified");
    let out = cli.run(&["domain", "add", "--org", "globex", "--domain", "acme.test", "--json"], None);
    assert!(stderr_line(&out).contains("verified by another organization"));
    assert_eq!(json_of(&cli.run(&["domain", "list", "--org", "acme-corp", "--json"], None))[0]["verified"], true);

    // Invitation into an organization.
    let inv = json_of(&cli.run(
        &["invite", "create", "--email", "new@acme.test", "--org", "acme-corp", "--role", "admin", "--json"],
        None,
    ));
    assert_eq!(inv["org_id"], id);
    assert_eq!(inv["org_role"], "admin");

    // A client bound to an organization blocks its deletion; typed confirmation.
    json_of(&cli.run(
        &[
            "client",
            "create",
            "--name",
            "Bound",
            "--redirect-uri",
            "https://b.example.com/cb",
            "--org",
            "globex",
            "--json",
        ],
        None,
    ));
    let out = cli.run(&["org", "delete", "globex", "--confirm", "globex", "--json"], None);
    assert!(stderr_line(&out).contains("clients are bound"));
    let out = cli.run(&["org", "delete", "acme-corp", "--confirm", "acme", "--json"], None);
    assert!(stderr_line(&out).contains("type the organization's slug"));
    let out = cli.run(&["org", "delete", "acme-corp", "--json"], Some("acme-corp\n"));
    assert_eq!(json_of(&out)["deleted"], true);
    // The member's account remains.
    let users = json_of(&cli.run(&["user", "list", "--json"], None));
    assert!(users.as_array().unwrap().iter().any(|u| u["email"] == "ann@acme.test"));
}

/// `connection create --type oidc` against a real OpenID Provider (another Guichet), and the
/// other connection commands, every one with `--json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_commands() {
    let idp = crate::helpers::TestApp::spawn().await;
    let (client, secret) = idp.state.oidc.register_client(crate::oidc_helpers::registration("Hub")).await.unwrap();
    let cli = Cli::new().await;
    json_of(&cli.run(&["org", "create", "--name", "Acme", "--slug", "acme", "--json"], None));
    json_of(&cli.run(&["org", "create", "--name", "Globex", "--slug", "globex", "--json"], None));
    let c = json_of(&cli.run(
        &[
            "connection",
            "create",
            "--org",
            "acme",
            "--type",
            "oidc",
            "--name",
            "Acme Entra",
            "--issuer",
            &idp.base,
            "--client-id",
            client.client_id.as_str(),
            "--client-secret-stdin",
            "--json",
        ],
        Some(&format!("{}\n", secret.unwrap())),
    ));
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["name"], "Acme Entra");
    assert_eq!(c["type"], "oidc");
    assert!(c["redirect_uri"].as_str().unwrap().ends_with("/sso/oidc/callback"));
    assert!(c["login_url"].as_str().unwrap().ends_with(&format!("/sso/{id}")));
    for k in ["sp_entity_id", "acs_url", "metadata_url"] {
        assert!(c.get(k).is_some(), "{k} is printed (null for OIDC)");
    }
    assert!(c.get("client_secret").is_none() && c.get("client_secret_sealed").is_none(), "the secret is never printed");
    assert_eq!(c["orgs"].as_array().unwrap().len(), 1);
    let c = json_of(&cli.run(&["connection", "associate", &id, "--org", "globex", "--json"], None));
    assert_eq!(c["orgs"].as_array().unwrap().len(), 2);
    let c = json_of(&cli.run(&["connection", "dissociate", &id, "--org", "globex", "--json"], None));
    assert_eq!(c["orgs"].as_array().unwrap().len(), 1);
    assert_eq!(json_of(&cli.run(&["connection", "list", "--json"], None)).as_array().unwrap().len(), 1);
    // Scopes, the groups claim, and a group mapped to a role.
    let c = json_of(&cli.run(
        &["connection", "update", &id, "--scope", "email", "--scope", "groups", "--groups-claim", "groups", "--json"],
        None,
    ));
    assert_eq!(c["scopes"], serde_json::json!(["email", "groups"]));
    let portal = json_of(&cli.run(
        &["client", "create", "--name", "Portal", "--redirect-uri", "https://portal.example.com/cb", "--json"],
        None,
    ));
    let pid = portal["client_id"].as_str().unwrap().to_owned();
    json_of(&cli.run(&["permission", "add", "--client", &pid, "orders:read", "--json"], None));
    let role =
        json_of(&cli.run(
            &["role", "create", "--client", &pid, "--name", "buyer", "--permission", "orders:read", "--json"],
            None,
        ));
    let c = json_of(&cli.run(&["connection", "map-group", &id, "--group", "Sales", "--role", "buyer", "--json"], None));
    assert_eq!(c["group_roles"][0]["group"], "Sales");
    assert_eq!(c["group_roles"][0]["role"], role["id"]);
    let out = cli.run(&["connection", "map-group", &id, "--group", "Sales", "--role", "nope", "--json"], None);
    assert!(stderr_line(&out).contains("no role"));
    let c = json_of(&cli.run(&["connection", "unmap-group", &id, "--group", "Sales", "--json"], None));
    assert!(c["group_roles"].as_array().unwrap().is_empty());
    assert_eq!(json_of(&cli.run(&["connection", "show", &id, "--json"], None))["id"], id);
    // An issuer that does not answer is refused now, in one line; nothing is saved.
    let out = cli.run(
        &[
            "connection",
            "create",
            "--org",
            "acme",
            "--type",
            "oidc",
            "--issuer",
            "http://127.0.0.1:9",
            "--client-id",
            "x",
            "--client-secret-stdin",
            "--json",
        ],
        Some("s"),
    );
    assert!(stderr_line(&out).contains("discovery"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli.run(&["connection", "create", "--org", "acme", "--type", "oidc", "--client-id", "x", "--json"], None);
    assert!(stderr_line(&out).contains("--issuer"));
    assert_eq!(json_of(&cli.run(&["connection", "delete", &id, "--json"], None))["deleted"], true);
    assert!(json_of(&cli.run(&["connection", "list", "--json"], None)).as_array().unwrap().is_empty());
}

/// `connection create --type saml` from a metadata file, and the SAML values printed: the SP
/// entityID, the ACS and the SP metadata URL; wrong combinations get one clear line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_connection_commands() {
    let cli = Cli::new().await;
    json_of(&cli.run(&["org", "create", "--name", "Acme", "--slug", "acme", "--json"], None));
    let idp = crate::saml_idp::TestIdp::new("https://idp.acme.test/saml", "https://idp.acme.test/sso");
    let file = cli._dir.path().join("idp-metadata.xml");
    std::fs::write(&file, idp.metadata_xml()).unwrap();
    let path = file.to_str().unwrap();
    let c = json_of(&cli.run(
        &[
            "connection",
            "create",
            "--org",
            "acme",
            "--type",
            "saml",
            "--metadata-file",
            path,
            "--name",
            "Acme Okta",
            "--want-assertions-signed",
            "--allow-idp-initiated",
            "--json",
        ],
        None,
    ));
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["type"], "saml");
    assert_eq!(c["name"], "Acme Okta");
    let sp = c["sp_entity_id"].as_str().unwrap();
    assert!(sp.ends_with(&format!("/saml/{id}/metadata")), "{sp}");
    assert_eq!(c["metadata_url"], c["sp_entity_id"]);
    assert!(c["acs_url"].as_str().unwrap().ends_with(&format!("/saml/{id}/acs")));
    assert!(c["login_url"].as_str().unwrap().ends_with(&format!("/sso/{id}")));
    assert_eq!(c["redirect_uri"], serde_json::Value::Null);
    assert_eq!(c["want_assertions_signed"], true);
    assert_eq!(c["allow_idp_initiated"], true);
    assert_eq!(c["allow_sha1"], false);
    assert_eq!(c["idp_entity_id"], "https://idp.acme.test/saml");
    assert!(c.get("sp_key_sealed").is_none(), "the SP key is never printed");
    let shown = json_of(&cli.run(&["connection", "show", &id, "--json"], None));
    assert_eq!(shown["acs_url"], c["acs_url"]);
    let u = json_of(&cli.run(
        &[
            "connection",
            "update",
            &id,
            "--allow-sha1",
            "true",
            "--allow-idp-initiated",
            "false",
            "--email-claim",
            "upn",
            "--groups-claim",
            "roles",
            "--json",
        ],
        None,
    ));
    assert_eq!(u["allow_sha1"], true);
    assert_eq!(u["allow_idp_initiated"], false);
    assert_eq!(u["want_assertions_signed"], true, "left as it was");
    assert_eq!(u["attribute_mapping"]["email"][0], "upn");
    assert_eq!(u["attribute_mapping"]["groups"][0], "roles");
    let out = cli.run(&["connection", "update", &id, "--scope", "email", "--json"], None);
    assert_eq!(out.status.code(), Some(1), "scopes are for OIDC");
    assert_eq!(json_of(&cli.run(&["connection", "refresh-metadata", "--json"], None)), serde_json::json!([]));
    // Mistakes: one line each, exit 1.
    for args in [
        vec!["connection", "create", "--org", "acme", "--type", "saml", "--json"],
        vec![
            "connection",
            "create",
            "--org",
            "acme",
            "--type",
            "saml",
            "--metadata-file",
            path,
            "--metadata-url",
            "https://x.test/m",
            "--json",
        ],
        vec![
            "connection",
            "create",
            "--org",
            "acme",
            "--type",
            "saml",
            "--metadata-file",
            path,
            "--issuer",
            "https://x.test",
            "--json",
        ],
        vec![
            "connection",
            "create",
            "--org",
            "acme",
            "--type",
            "saml",
            "--metadata-file",
            "/nonexistent.xml",
            "--json",
        ],
    ] {
        let out = cli.run(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        stderr_line(&out);
    }
    std::fs::write(&file, "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>")
        .unwrap();
    let out =
        cli.run(&["connection", "create", "--org", "acme", "--type", "saml", "--metadata-file", path, "--json"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("IDPSSODescriptor"));
}

/// `webhook create|list|deliveries|rotate-secret|delete` with `--json`; a refused URL gets the
/// one generic line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_commands() {
    let mut cli = Cli::new().await;
    cli.env.push(("GUICHET_WEBHOOKS__ALLOW_LOOPBACK".into(), "true".into()));
    json_of(&cli.run(&["org", "create", "--name", "Acme", "--slug", "acme", "--json"], None));
    // A receiver that echoes the validation challenge.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|body: String| async move {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            format!("{{\"challenge\":{}}}", v["challenge"])
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let w = json_of(&cli.run(
        &[
            "webhook",
            "create",
            "--org",
            "acme",
            "--url",
            &url,
            "--event",
            "membership.changed,login.succeeded",
            "--json",
        ],
        None,
    ));
    let id = w["id"].as_str().unwrap().to_owned();
    assert!(w["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(w["events"], serde_json::json!(["membership.changed", "login.succeeded"]));
    let list = json_of(&cli.run(&["webhook", "list", "--org", "acme", "--json"], None));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("secret").is_none(), "the secret is printed once");
    let r = json_of(&cli.run(&["webhook", "rotate-secret", &id, "--org", "acme", "--json"], None));
    assert_ne!(r["secret"], w["secret"]);
    assert!(r["previous_secret_until"].is_i64());
    assert_eq!(
        json_of(&cli.run(&["webhook", "deliveries", &id, "--org", "acme", "--json"], None)),
        serde_json::json!([])
    );
    let out = cli.run(
        &[
            "webhook",
            "create",
            "--org",
            "acme",
            "--url",
            "http://10.0.0.1/hook",
            "--event",
            "login.succeeded",
            "--json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("this URL cannot be used for webhooks"));
    let out = cli.run(&["webhook", "create", "--org", "acme", "--url", &url, "--event", "nope", "--json"], None);
    assert_eq!(out.status.code(), Some(1));
    stderr_line(&out);
    assert_eq!(json_of(&cli.run(&["webhook", "delete", &id, "--org", "acme", "--json"], None))["deleted"], true);
}

/// `devkey create|list|reset|delete` with `--json`: the DevSecret printed once; the key works
/// against the API only with the current secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devkey_commands() {
    let cli = Cli::new().await;
    json_of(&cli.run(&["org", "create", "--name", "Acme", "--slug", "acme", "--json"], None));
    let k = json_of(&cli.run(
        &["devkey", "create", "--org", "acme", "--name", "CI", "--scope", "read", "--expires-days", "30", "--json"],
        None,
    ));
    let key = k["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("gk_") && k["secret"].as_str().unwrap().starts_with("gs_"));
    assert_eq!(k["scopes"], serde_json::json!(["read"]));
    assert!(k["expires_at"].is_i64());
    let list = json_of(&cli.run(&["devkey", "list", "--org", "acme", "--json"], None));
    assert_eq!(list[0]["key"], key.as_str());
    assert!(list[0].get("secret").is_none() && list[0].get("secret_digest").is_none());
    let r = json_of(&cli.run(&["devkey", "reset", &key, "--org", "acme", "--json"], None));
    assert_ne!(r["secret"], k["secret"]);
    let out = cli.run(&["devkey", "create", "--org", "acme", "--name", "x", "--scope", "admin", "--json"], None);
    assert_eq!(out.status.code(), Some(1));
    stderr_line(&out);
    assert_eq!(json_of(&cli.run(&["devkey", "delete", &key, "--org", "acme", "--json"], None))["deleted"], true);
    let out = cli.run(&["devkey", "delete", &key, "--org", "acme", "--json"], None);
    assert_eq!(out.status.code(), Some(1));
}
