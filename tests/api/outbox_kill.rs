//! The outbox under a crash: a node killed (`kill -9`) while it delivers a webhook loses
//! nothing. Another node takes the message over once the dead node's lease ends and delivers
//! it with the same id; nothing is delivered twice once it was answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;

use crate::helpers::{form_value, TestApp};
use crate::process::{env_of, Served};

#[derive(Clone, Debug)]
struct Hit {
    id: String,
    body: String,
}

/// A webhook receiver that echoes validation challenges, holds the first event's request
/// without answering (the sender dies meanwhile), and answers the next ones at once.
async fn hanging_receiver() -> (String, Arc<Mutex<Vec<Hit>>>) {
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let hits = h.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if let Some(c) = v["challenge"].as_str() {
                    return (axum::http::StatusCode::OK, format!("{{\"challenge\":\"{c}\"}}"));
                }
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let first = {
                    let mut g = hits.lock().unwrap();
                    g.push(Hit { id, body });
                    g.len() == 1
                };
                if first {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                (axum::http::StatusCode::NO_CONTENT, String::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

async fn wait_hits(hits: &Arc<Mutex<Vec<Hit>>>, n: usize, secs: u64) -> Vec<Hit> {
    for _ in 0..secs * 10 {
        {
            let g = hits.lock().unwrap();
            if g.len() >= n {
                return g.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} deliveries, got {:?}", hits.lock().unwrap());
}

#[tokio::test]
async fn a_node_killed_during_a_delivery_loses_no_event() {
    // Set up with an in-process node, then stop it: the processes below share its stores.
    let mut app = TestApp::spawn_with(|s| s.webhooks.allow_loopback = true).await;
    app.create_user("crash@example.com", "correct horse battery").await;
    let p = Actor::Platform;
    app.state.orgs.create(p, "Crash Corp", Some("crash"), None).await.unwrap();
    app.state.orgs.set_member(p, "crash", "crash@example.com", OrgRole::Member).await.unwrap();
    let (url, hits) = hanging_receiver().await;
    app.state.webhooks.create(p, "crash", &url, &["login.failed".to_string()]).await.unwrap();
    let mut env = env_of(&app.settings);
    app.stop().await;
    env.push(("GUICHET_WEBHOOKS__ALLOW_LOOPBACK".into(), "true".into()));
    env.push(("GUICHET_OUTBOX__LEASE_SECS".into(), "12".into()));
    env.push(("GUICHET_SERVER__ISSUER".into(), "http://127.0.0.1:8080".into()));
    let work = tempfile::tempdir().unwrap();

    // Node A: a failed sign-in of a member raises login.failed; A starts delivering it and
    // is killed while the receiver holds the request.
    let mut a = Served::start(&env, work.path()).await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(a.url("/login")).send().await.unwrap().text().await.unwrap();
    let csrf = form_value(&page, "csrf_token").unwrap();
    let res = browser
        .post(a.url("/login"))
        .form(&[("email", "crash@example.com"), ("password", "wrong password here"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error() || res.status() == 200, "{}", res.status());
    let first = wait_hits(&hits, 1, 15).await;
    a.kill_9();

    // Node B (a restart, or another node): takes the message over when A's lease ends and
    // delivers the same event, with the same id.
    let b = Served::start(&env, work.path()).await;
    let both = wait_hits(&hits, 2, 40).await;
    assert_eq!(both[1].id, first[0].id, "the same message, by its id");
    assert_eq!(both[1].body, first[0].body);
    let event: serde_json::Value = serde_json::from_str(&both[1].body).unwrap();
    assert_eq!(event["type"], "login.failed");
    // Answered once: never sent again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(hits.lock().unwrap().len(), 2, "{:?}", hits.lock().unwrap());
    assert!(b.logs().contains("outbox: delivered"), "{}", b.logs());
}
