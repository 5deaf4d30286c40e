//! Webhooks: a receiver on loopback (`[webhooks] allow_loopback`) checks every request's
//! Standard Webhooks signature with its own HMAC code; validation by echoed challenge; events
//! raised by organization changes delivered by the outbox worker, retried after a failure, logged,
//! redelivered with the same id; secret rotation with overlap; URL refusals with one message;
//! another organization's admin sees nothing.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;
use guichet::webhooks::{WebhookError, URL_REFUSED};
use hmac::{Hmac, Mac};

use crate::helpers::TestApp;

const P: Actor = Actor::Platform;

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signatures: Vec<String>,
    body: String,
}

/// A receiver: echoes validation challenges, answers `fail_next` requests with 500 first.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<Mutex<usize>>,
    echo: Arc<Mutex<bool>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let r = Receiver { echo: Arc::new(Mutex::new(true)), ..Default::default() };
        let me = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    me.got.lock().unwrap().push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signatures: h("webhook-signature").split(' ').map(str::to_owned).collect(),
                        body: body.clone(),
                    });
                    let mut fail = me.fail_next.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new());
                    }
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    match v["challenge"].as_str() {
                        Some(c) if *me.echo.lock().unwrap() => {
                            (axum::http::StatusCode::OK, format!("{{\"challenge\":\"{c}\"}}"))
                        }
                        _ => (axum::http::StatusCode::NO_CONTENT, String::new()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn events(&self) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| !r.body.contains("webhook.validation")).cloned().collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            let e = self.events();
            if e.len() >= n {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.events());
    }
}

/// The Standard Webhooks check, written from the specification: base64 HMAC-SHA256 with the
/// decoded `whsec_` key over `id.timestamp.body`.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    r.signatures.iter().any(|s| {
        let Some(sig) = s.strip_prefix("v1,") else { return false };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
        mac.verify_slice(&STANDARD.decode(sig).unwrap_or_default()).is_ok()
    })
}

async fn hub() -> TestApp {
    let hub = TestApp::spawn_with(|s| s.webhooks.allow_loopback = true).await;
    hub.state.orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    hub
}

#[tokio::test]
async fn events_are_signed_delivered_retried_logged_and_redelivered() {
    let hub = hub().await;
    let (rx, url) = Receiver::start().await;
    let w = &hub.state.webhooks;
    let (hook, secret) = w.create(P, "acme", &url, &["membership.changed".into()]).await.unwrap();
    assert!(secret.starts_with("whsec_"));
    // The validation request was signed with the new secret.
    let validation = rx.got.lock().unwrap()[0].clone();
    assert!(validation.body.contains("webhook.validation") && verifies(&secret, &validation));

    // A membership change raises membership.changed; the first attempt fails (500), the retry
    // (after its backoff) succeeds with the same event id.
    *rx.fail_next.lock().unwrap() = 1;
    hub.create_user("ann@acme.test", "correct horse battery").await;
    hub.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Member).await.unwrap();
    rx.wait_for(1).await;
    hub.clock.advance(5);
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].id, got[1].id, "a retry carries the same id");
    for r in &got {
        assert!(verifies(&secret, r), "signature of {r:?}");
        let ts: i64 = r.timestamp.parse().unwrap();
        assert!((ts - hub.state.clock.now().0).abs() < 300);
    }
    let event: serde_json::Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(event["type"], "membership.changed");
    assert_eq!(event["id"], got[1].id.as_str());
    assert_eq!(event["org"], hook.org.to_string());
    assert!(event["time"].is_string() && event["data"]["action"] == "org.member_added");
    // The log: both attempts, newest first.
    let log = w.deliveries(P, "acme", &hook.id.to_string(), 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].status, log[1].status), (Some(204), Some(500)));
    assert_eq!((log[0].attempt, log[1].attempt), (2, 1));
    // Redeliver: the same event again.
    w.redeliver(P, "acme", log[0].id).await.unwrap();
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].id, got[1].id);
    // Events not asked for are not sent.
    hub.state.orgs.create(P, "Other", Some("other"), None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(rx.events().len(), 3);

    // Rotation: both secrets sign for a day.
    let (_, new_secret) = w.rotate_secret(P, "acme", &hook.id.to_string()).await.unwrap();
    hub.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Admin).await.unwrap();
    let got = rx.wait_for(4).await;
    assert!(verifies(&new_secret, &got[3]) && verifies(&secret, &got[3]));
    assert_eq!(got[3].signatures.len(), 2);
}

#[tokio::test]
async fn urls_are_checked_and_validated_before_they_are_saved() {
    let hub = hub().await;
    let (rx, url) = Receiver::start().await;
    let w = &hub.state.webhooks;
    // A receiver that does not echo the challenge: nothing saved.
    *rx.echo.lock().unwrap() = false;
    let e = w.create(P, "acme", &url, &["login.succeeded".into()]).await.unwrap_err();
    assert!(matches!(e, WebhookError::UrlRefused), "{e}");
    assert_eq!(e.to_string(), URL_REFUSED);
    assert!(w.list(P, "acme").await.unwrap().is_empty());
    // Unknown events, bad URLs: refused; every URL refusal says the same.
    assert!(matches!(w.create(P, "acme", &url, &["nope".into()]).await, Err(WebhookError::Invalid(_))));
    for bad in [
        "ftp://example.com/hook",
        "http://user@127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost.localdomain/hook",
        "http://example.internal/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "not a url",
    ] {
        let e = w.create(P, "acme", bad, &["login.succeeded".into()]).await.unwrap_err();
        assert_eq!(e.to_string(), URL_REFUSED, "{bad}");
    }
    // Without allow_loopback, loopback receivers are refused too.
    let strict = TestApp::spawn().await;
    strict.state.orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    *rx.echo.lock().unwrap() = true;
    let e = strict.state.webhooks.create(P, "acme", &url, &["login.succeeded".into()]).await.unwrap_err();
    assert_eq!(e.to_string(), URL_REFUSED);
}

#[tokio::test]
async fn another_organizations_admin_sees_nothing() {
    let hub = hub().await;
    let (_rx, url) = Receiver::start().await;
    let w = &hub.state.webhooks;
    let (hook, _) = w.create(P, "acme", &url, &["membership.changed".into()]).await.unwrap();
    hub.state.orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    let gina = hub.create_user("gina@globex.test", "correct horse battery").await;
    hub.state.orgs.set_member(P, "globex", "gina@globex.test", OrgRole::Admin).await.unwrap();
    let g = Actor::User(gina.id);
    let id = hook.id.to_string();
    assert!(matches!(w.list(g, "acme").await, Err(WebhookError::Org(_))));
    assert!(matches!(w.delete(g, "globex", &id).await, Err(WebhookError::NotFound)));
    assert!(matches!(w.rotate_secret(g, "globex", &id).await, Err(WebhookError::NotFound)));
    assert!(matches!(w.deliveries(g, "globex", &id, 5).await, Err(WebhookError::NotFound)));
    assert_eq!(w.list(P, "acme").await.unwrap().len(), 1);
    w.delete(P, "acme", &id).await.unwrap();
    assert!(w.list(P, "acme").await.unwrap().is_empty());
}
