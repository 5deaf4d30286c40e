//! The webhooks section of an organization (`/orgs/<slug>/webhooks`) as an admin's browser uses
//! it: a webhook added (its secret shown once, never on a reload), its deliveries logged on the
//! page, redelivered, its secret rotated (the new one shown once), deleted; a refused URL saves
//! nothing; another organization's admin gets 404 for the page and every form, a plain member 403.
//! The receiver listens on loopback (`[webhooks] allow_loopback`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;
use hmac::{Hmac, Mac};

use crate::helpers::{form_value, unescape, TestApp};
use crate::oidc_helpers::PW;

const P: Actor = Actor::Platform;

/// One request the receiver got: `webhook-id`, `webhook-timestamp`, `webhook-signature`, body.
#[derive(Clone, Debug)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver on loopback that echoes validation challenges and answers events with 204.
async fn receiver() -> (Arc<Mutex<Vec<Got>>>, String) {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let log = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let answer = match v["challenge"].as_str() {
                    Some(c) => (axum::http::StatusCode::OK, format!("{{\"challenge\":\"{c}\"}}")),
                    None => (axum::http::StatusCode::NO_CONTENT, String::new()),
                };
                let (id, timestamp, signature) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
                log.lock().unwrap().push(Got { id, timestamp, signature, body });
                answer
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

/// The events received (validation requests aside).
fn events(got: &Arc<Mutex<Vec<Got>>>) -> Vec<Got> {
    got.lock().unwrap().iter().filter(|g| !g.body.contains("webhook.validation")).cloned().collect()
}

/// Whether one of the request's signatures is `secret`'s (Standard Webhooks, from the spec).
fn signed_with(secret: &str, g: &Got) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    g.signature.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", g.id, g.timestamp, g.body).as_bytes());
        mac.verify_slice(&STANDARD.decode(sig).unwrap_or_default()).is_ok()
    })
}

/// The secret the page shows, if it shows one.
fn shown_secret(html: &str) -> Option<String> {
    let at = html.find("id=\"webhook-secret\"")?;
    let rest = &html[at..];
    let start = rest.find("value=\"")? + "value=\"".len();
    let end = rest[start..].find('"')?;
    Some(unescape(&rest[start..start + end]))
}

/// Acme (boss: admin, mia: member) and Globex (gina: admin), on a hub that accepts loopback
/// webhook URLs.
async fn hub() -> TestApp {
    let hub = TestApp::spawn_with(|s| s.webhooks.allow_loopback = true).await;
    let orgs = &hub.state.orgs;
    orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    for (email, org, role) in [
        ("boss@acme.test", "acme", OrgRole::Admin),
        ("mia@acme.test", "acme", OrgRole::Member),
        ("gina@globex.test", "globex", OrgRole::Admin),
    ] {
        hub.create_user(email, PW).await;
        orgs.set_member(P, org, email, role).await.unwrap();
    }
    hub
}

async fn signed_in(hub: &TestApp, email: &str) -> reqwest::Client {
    let b = hub.browser();
    assert_eq!(hub.login(&b, email, PW, None).await.status(), 303);
    b
}

/// Status and body of a page.
async fn get(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).header("accept", "text/html").send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Status, `Location` (if any), body of a form post.
async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let res = b.post(url).header("accept", "text/html").form(form).send().await.unwrap();
    let status = res.status().as_u16();
    let loc = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, loc, res.text().await.unwrap())
}

/// The webhooks page, polled (up to ~5 s) until `done` holds.
async fn page_until(hub: &TestApp, b: &reqwest::Client, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..50 {
        let (status, html) = get(b, &hub.url("/orgs/acme/webhooks")).await;
        assert_eq!(status, 200);
        if done(&html) {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the webhooks page never showed what was awaited");
}

#[tokio::test]
async fn an_org_admin_adds_watches_redelivers_rotates_and_deletes_a_webhook() {
    let hub = hub().await;
    let (got, url) = receiver().await;
    let b = signed_in(&hub, "boss@acme.test").await;
    // Linked from the organization's pages; the form lists every event type.
    let (status, html) = get(&b, &hub.url("/orgs/acme")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"nav-webhooks\" href=\"/orgs/acme/webhooks\""), "{html}");
    let (status, html) = get(&b, &hub.url("/orgs/acme/webhooks")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"webhook-form\"") && html.contains("id=\"no-webhooks\""), "{html}");
    for e in guichet::domain::webhook::EVENT_TYPES {
        assert!(html.contains(&format!("id=\"event-{e}\" name=\"events\" type=\"checkbox\" value=\"{e}\"")), "{e}");
    }
    assert!(shown_secret(&html).is_none());
    let csrf = form_value(&html, "csrf_token").unwrap();

    // Added: the page itself (200, no redirect) shows the secret once, with its copy button.
    let form = [
        ("csrf_token", csrf.as_str()),
        ("url", url.as_str()),
        ("events", "membership.changed"),
        ("events", "login.succeeded"),
    ];
    let (status, loc, html) = post(&b, &hub.url("/orgs/acme/webhooks"), &form).await;
    assert_eq!((status, loc.as_str()), (200, ""), "{html}");
    let secret = shown_secret(&html).expect("the secret is shown");
    assert!(secret.starts_with("whsec_"));
    assert!(html.contains("id=\"copy-secret\"") && html.contains("src=\"/static/copy.js\""), "{html}");
    assert!(html.contains("id=\"notice\""));
    let hooks = hub.state.webhooks.list(P, "acme").await.unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = hooks[0].id.to_string();
    assert_eq!(hooks[0].events, ["membership.changed", "login.succeeded"]);
    assert!(signed_with(&secret, &got.lock().unwrap()[0]), "the validation request was signed with it");
    // Never again: not on a reload, and the script is served.
    let (_, html) = get(&b, &hub.url("/orgs/acme/webhooks")).await;
    assert!(shown_secret(&html).is_none() && !unescape(&html).contains(&secret));
    assert!(html.contains(&format!("id=\"webhook-{hook}\"")) && html.contains("membership.changed, login.succeeded"));
    let js = b.get(hub.url("/static/copy.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);

    // A member added: the delivery shows in the log, with its status.
    hub.create_user("ann@acme.test", PW).await;
    hub.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Member).await.unwrap();
    let html = page_until(&hub, &b, |h| h.contains("id=\"delivery-")).await;
    assert!(html.contains(&format!("id=\"deliveries-{hook}\"")) && html.contains("membership.changed"));
    assert!(html.contains("<span class=\"status\">204</span>"), "{html}");
    let first = events(&got);
    assert_eq!(first.len(), 1);
    assert!(html.contains(&first[0].id), "the event id is shown");
    assert!(signed_with(&secret, &first[0]));

    // Redeliver: the same event id again, and a second line in the log.
    let delivery = form_value(&html, "delivery").unwrap();
    let (status, loc, _) = post(
        &b,
        &hub.url("/orgs/acme/webhooks/redeliver"),
        &[("csrf_token", csrf.as_str()), ("delivery", delivery.as_str())],
    )
    .await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/webhooks?notice=webhook_redelivered"));
    page_until(&hub, &b, |h| h.matches("id=\"delivery-").count() == 2).await;
    let again = events(&got);
    assert_eq!((again.len(), again[1].id.as_str()), (2, first[0].id.as_str()));

    // Rotate: a new secret, shown once; the next delivery is signed with it.
    let rotate = hub.url(&format!("/orgs/acme/webhooks/{hook}/rotate"));
    let (status, loc, html) = post(&b, &rotate, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!((status, loc.as_str()), (200, ""), "{html}");
    let new_secret = shown_secret(&html).expect("the new secret is shown");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let (_, html) = get(&b, &hub.url("/orgs/acme/webhooks?notice=webhook_rotated")).await;
    assert!(shown_secret(&html).is_none() && !unescape(&html).contains(&new_secret));
    hub.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Admin).await.unwrap();
    page_until(&hub, &b, |h| h.matches("id=\"delivery-").count() == 3).await;
    let third = events(&got).pop().unwrap();
    assert!(signed_with(&new_secret, &third) && signed_with(&secret, &third), "both sign for a day");

    // Delete.
    let delete = hub.url(&format!("/orgs/acme/webhooks/{hook}/delete"));
    let (status, loc, _) = post(&b, &delete, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/webhooks?notice=webhook_deleted"));
    assert!(hub.state.webhooks.list(P, "acme").await.unwrap().is_empty());
    let (_, html) = get(&b, &hub.url(&loc)).await;
    assert!(html.contains("id=\"no-webhooks\"") && html.contains("id=\"notice\""));
}

#[tokio::test]
async fn refused_urls_save_nothing_and_other_people_get_404_or_403() {
    let hub = hub().await;
    let (_got, url) = receiver().await;
    let b = signed_in(&hub, "boss@acme.test").await;
    let (_, html) = get(&b, &hub.url("/orgs/acme/webhooks")).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let create = hub.url("/orgs/acme/webhooks");
    // A private address: 400, the one message, nothing saved.
    let refused = hub.state.templates.t(guichet::i18n::Lang::En, "orgs.webhooks.error.url_refused").to_owned();
    for bad in ["http://10.0.0.1/hook", "ftp://example.com/hook", "not a url"] {
        let form = [("csrf_token", csrf.as_str()), ("url", bad), ("events", "login.succeeded")];
        let (status, _, html) = post(&b, &create, &form).await;
        assert_eq!(status, 400, "{bad}");
        assert!(html.contains("id=\"error\"") && unescape(&html).contains(&refused), "{bad}: {html}");
        assert!(shown_secret(&html).is_none());
    }
    // No event, or one not in the list: 400.
    for events in [vec![], vec![("events", "nope")]] {
        let mut form = vec![("csrf_token", csrf.as_str()), ("url", url.as_str())];
        form.extend(events);
        assert_eq!(post(&b, &create, &form).await.0, 400);
    }
    assert!(hub.state.webhooks.list(P, "acme").await.unwrap().is_empty());

    // Acme's webhook, with one delivery logged.
    let form = [("csrf_token", csrf.as_str()), ("url", url.as_str()), ("events", "membership.changed")];
    assert_eq!(post(&b, &create, &form).await.0, 200);
    let hook = hub.state.webhooks.list(P, "acme").await.unwrap()[0].id.to_string();
    hub.create_user("ann@acme.test", PW).await;
    hub.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Member).await.unwrap();
    let html = page_until(&hub, &b, |h| h.contains("id=\"delivery-")).await;
    let delivery = form_value(&html, "delivery").unwrap();

    // Another organization's admin: 404 for Acme's page and every form, in Acme's path or theirs;
    // their own page shows nothing of Acme's.
    for (who, status) in [("gina@globex.test", 404), ("mia@acme.test", 403)] {
        let o = signed_in(&hub, who).await;
        let (_, account) = get(&o, &hub.url("/account")).await;
        let c = form_value(&account, "csrf_token").unwrap();
        assert_eq!(get(&o, &hub.url("/orgs/acme/webhooks")).await.0, status, "{who}");
        let forms: [(String, Vec<(&str, &str)>); 4] = [
            ("/orgs/acme/webhooks".into(), vec![("url", url.as_str()), ("events", "login.succeeded")]),
            (format!("/orgs/acme/webhooks/{hook}/rotate"), vec![]),
            (format!("/orgs/acme/webhooks/{hook}/delete"), vec![]),
            ("/orgs/acme/webhooks/redeliver".into(), vec![("delivery", delivery.as_str())]),
        ];
        for (path, fields) in &forms {
            let mut form = vec![("csrf_token", c.as_str())];
            form.extend(fields.iter().copied());
            assert_eq!(post(&o, &hub.url(path), &form).await.0, status, "{who} {path}");
        }
    }
    let g = signed_in(&hub, "gina@globex.test").await;
    let (status, html) = get(&g, &hub.url("/orgs/globex/webhooks")).await;
    assert_eq!(status, 200);
    assert!(!html.contains(&hook) && html.contains("id=\"no-webhooks\""));
    let c = form_value(&html, "csrf_token").unwrap();
    for path in [format!("/orgs/globex/webhooks/{hook}/rotate"), format!("/orgs/globex/webhooks/{hook}/delete")] {
        assert_eq!(post(&g, &hub.url(&path), &[("csrf_token", c.as_str())]).await.0, 404, "{path}");
    }
    let form = [("csrf_token", c.as_str()), ("delivery", delivery.as_str())];
    assert_eq!(post(&g, &hub.url("/orgs/globex/webhooks/redeliver"), &form).await.0, 404);
    // Nothing changed at Acme.
    let hooks = hub.state.webhooks.list(P, "acme").await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].previous_until.is_none(), "not rotated");
}
