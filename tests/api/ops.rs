//! Operations and web hardening: health, readiness, metrics, headers, limits, errors, shutdown.

use std::io::{Read, Write};

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let c = reqwest::Client::new();
    let h: serde_json::Value = c.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    let res = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let r: serde_json::Value = res.json().await.unwrap();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["database"]["status"], "ok");
    assert_eq!(r["checks"]["ephemeral"]["status"], "ok");
    let expected = if std::env::var("REDIS_URL").map(|v| !v.is_empty()).unwrap_or(false) {
        "redis"
    } else {
        r["checks"]["database"]["backend"].as_str().unwrap()
    };
    assert_eq!(r["checks"]["ephemeral"]["backend"], expected);
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_logins() {
    let app = TestApp::spawn().await;
    app.create_user("m@example.com", "correct horse battery").await;
    let b = app.browser();
    app.login(&b, "m@example.com", "nope nope", None).await;
    app.login(&b, "m@example.com", "correct horse battery", None).await;
    // Any method token and any path: the labels stay within a bounded set.
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let res = reqwest::Client::new().request(odd, app.url("/no/such/path-1")).send().await.unwrap();
    let odd_status = res.status().as_u16();
    assert!((400..500).contains(&odd_status));
    // Not on the public listener: only on the metrics listener.
    assert_eq!(reqwest::get(app.url("/metrics")).await.unwrap().status(), 404);
    let metrics = app.metrics_addr.expect("metrics listener");
    let text = reqwest::get(format!("http://{metrics}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"guichet_logins_total{result="ok"} 1"#), "{text}");
    assert!(text.contains(r#"guichet_logins_total{result="failed"} 1"#), "{text}");
    assert!(text.contains(r#"guichet_http_requests_total{method="POST",route="/login",status="303"} 1"#), "{text}");
    assert!(text.contains("guichet_http_request_duration_seconds_bucket"), "{text}");
    let odd = format!(r#"guichet_http_requests_total{{method="other",route="unmatched",status="{odd_status}"}} 1"#);
    assert!(text.contains(&odd), "{text}");
    assert!(!text.contains("BREW") && !text.contains("path-1"), "{text}");
}

#[tokio::test]
async fn security_headers_and_request_ids() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(app.url("/login")).await.unwrap();
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.get("strict-transport-security").is_none(), "no HSTS on a plain-http issuer");
    assert_eq!(h["x-request-id"].to_str().unwrap().len(), 36);
    // A caller's request id is kept.
    let res = reqwest::Client::new().get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn https_issuer_sets_hsts_and_secure_host_cookies() {
    let app = TestApp::spawn_with(|_| {}).await;
    // Rebuild with an https issuer on the same stores (issuer is normally set from the port).
    let mut s = app.settings.clone();
    s.server.issuer = "https://login.example.com".into();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let built = guichet::App::build(s, Some(listener), std::sync::Arc::new(app.clock.clone())).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(built.run(async {
        let _ = rx.await;
    }));
    let res = reqwest::get(format!("http://{addr}/login")).await.unwrap();
    assert!(res.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-guichet_session=") && cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let _ = tx.send(());
    h.await.unwrap();
}

#[tokio::test]
async fn errors_are_json_for_apis_and_pages_for_browsers() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(app.url("/no/such/page")).await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let res = reqwest::Client::new().get(app.url("/no/such/page")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("There is nothing at this address."));
}

#[tokio::test]
async fn oversized_bodies_and_headers_are_refused() {
    let app = TestApp::spawn().await;
    let b = app.browser();
    let csrf = app.open_login(&b).await;
    let big = "x".repeat(100 * 1024);
    let res = b
        .post(app.url("/login"))
        .form(&[("email", "a@example.com"), ("password", big.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res =
        reqwest::Client::new().get(app.url("/healthz")).header("x-junk", "y".repeat(20 * 1024)).send().await.unwrap();
    assert_eq!(res.status(), 431);
    // A long password under the body limit but over the policy maximum is a plain failure.
    let long = "p".repeat(1000);
    let res = b
        .post(app.url("/login"))
        .form(&[("email", "a@example.com"), ("password", long.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = TestApp::spawn_with(|s| s.server.header_read_timeout_secs = 1).await;
    let addr = app.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut buf = Vec::new();
        // The server closes the connection (possibly after a 408) well before our 10 s.
        let started = std::time::Instant::now();
        let _ = s.read_to_end(&mut buf);
        started.elapsed() < std::time::Duration::from_secs(8)
    })
    .await
    .unwrap();
    assert!(closed);
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting_and_returns() {
    let mut app = TestApp::spawn().await;
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await.expect("server stops");
    assert!(reqwest::get(app.url("/healthz")).await.is_err(), "no longer listening");
}
