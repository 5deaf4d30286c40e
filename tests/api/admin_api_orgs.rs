//! Organizations and webhooks through the admin API: `GET/POST /api/v1/orgs` (the platform
//! creates; anyone else 403), `PATCH /api/v1/orgs/{org}` (ETag/If-Match, 400 with the reason),
//! `DELETE /api/v1/orgs/{org}?confirm=<slug>`; a webhook's secret rotation (the new secret
//! signs deliveries) and a delivery sent again with the same `webhook-id`. Every other
//! organization is 404.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::crypto::SecretString;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin_api_rbac::problem;
use crate::api_calls::{basic, expect, Session};
use crate::helpers::TestApp;

const P: Actor = Actor::Platform;
const PW: &str = "correct horse battery staple";
const ROOT: &str = "root@platform.test";

/// Acme (boss: owner, adm: admin, ann: member) and Globex; root, a platform admin, with a
/// write and a read personal key; Acme's write and read keys.
struct World {
    app: TestApp,
    root_write: String,
    root_read: String,
    acme: String,
    acme_read: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn_with(|s| s.webhooks.allow_loopback = true).await;
        let orgs = &app.state.orgs;
        orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
        orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
        for (email, role) in
            [("boss@acme.test", OrgRole::Owner), ("adm@acme.test", OrgRole::Admin), ("ann@acme.test", OrgRole::Member)]
        {
            app.create_user(email, PW).await;
            orgs.set_member(P, "acme", email, role).await.unwrap();
        }
        let pw = SecretString::new(PW);
        let (root, _) = app.state.accounts.create_by_operator(ROOT, None, Some(&pw), true).await.unwrap();
        let ks = &app.state.devkeys;
        let (k, s) = ks.create_for_user(root.id, "ops", &["write".into()], None).await.unwrap();
        let root_write = basic(&k.id, &s);
        let (k, s) = ks.create_for_user(root.id, "dash", &["read".into()], None).await.unwrap();
        let root_read = basic(&k.id, &s);
        let (k, s) = ks.create(P, "acme", "ci", &["write".into()], None).await.unwrap();
        let acme = basic(&k.id, &s);
        let (k, s) = ks.create(P, "acme", "ro", &["read".into()], None).await.unwrap();
        let acme_read = basic(&k.id, &s);
        World { app, root_write, root_read, acme, acme_read }
    }

    async fn call(
        &self,
        m: Method,
        path: &str,
        auth: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        crate::api_calls::call(&self.app, m, path, auth, body, if_match).await
    }

    async fn signed_in(&self, email: &str) -> Session {
        Session::sign_in(&self.app, email, PW).await
    }
}

fn slugs(page: &Value) -> Vec<String> {
    let mut s: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap().into()).collect();
    s.sort();
    s
}

#[tokio::test]
async fn each_caller_lists_the_organizations_it_administers() {
    let w = World::new().await;
    // The platform admin's session: all, page by page.
    let root = w.signed_in(ROOT).await;
    let (all, _) = expect(root.call(Method::GET, "/api/v1/orgs", None, None).await, 200).await;
    assert_eq!(slugs(&all), ["acme", "globex"]);
    let (p1, _) = expect(root.call(Method::GET, "/api/v1/orgs?limit=1", None, None).await, 200).await;
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (p2, _) =
        expect(root.call(Method::GET, &format!("/api/v1/orgs?limit=1&cursor={cursor}"), None, None).await, 200).await;
    assert!(p2.get("next_cursor").is_none());
    let mut both = [p1["items"][0]["slug"].as_str().unwrap(), p2["items"][0]["slug"].as_str().unwrap()];
    both.sort();
    assert_eq!(both, ["acme", "globex"]);
    problem(root.call(Method::GET, "/api/v1/orgs?cursor=nope", None, None).await, 400).await;
    // An organization's key: its own.
    let (own, _) = expect(w.call(Method::GET, "/api/v1/orgs", &w.acme, None, None).await, 200).await;
    assert_eq!(slugs(&own), ["acme"]);
    assert!(own["items"][0]["created_at"].as_i64().unwrap() > 0);
    // Users: where they are an admin or owner.
    let adm = w.signed_in("adm@acme.test").await;
    let (mine, _) = expect(adm.call(Method::GET, "/api/v1/orgs", None, None).await, 200).await;
    assert_eq!(slugs(&mine), ["acme"]);
    let ann = w.signed_in("ann@acme.test").await;
    let (none, _) = expect(ann.call(Method::GET, "/api/v1/orgs", None, None).await, 200).await;
    assert_eq!(slugs(&none), Vec::<String>::new());
}

#[tokio::test]
async fn only_the_platform_creates_organizations() {
    let w = World::new().await;
    let res = w
        .call(
            Method::POST,
            "/api/v1/orgs",
            &w.root_write,
            Some(json!({"name": "Initech", "owner": "ann@acme.test"})),
            None,
        )
        .await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let (org, etag) = expect(res, 201).await;
    assert_eq!((org["slug"].as_str(), org["name"].as_str()), (Some("initech"), Some("Initech")));
    assert!(etag.is_some());
    let (got, _) = expect(w.call(Method::GET, &location, &w.root_write, None, None).await, 200).await;
    assert_eq!(got, org);
    // ann owns it now, and sees it in her list.
    let ann = w.signed_in("ann@acme.test").await;
    let (mine, _) = expect(ann.call(Method::GET, "/api/v1/orgs", None, None).await, 200).await;
    assert_eq!(slugs(&mine), ["initech"]);
    // The session, with its CSRF token (and without: 403).
    let root = w.signed_in(ROOT).await;
    let (o, _) = expect(
        root.call(Method::POST, "/api/v1/orgs", Some(json!({"name": "Umbrella", "slug": "umb"})), None).await,
        201,
    )
    .await;
    assert_eq!(o["slug"], "umb");
    let no_csrf = root.b.post(w.app.url("/api/v1/orgs")).json(&json!({"name": "X"})).send().await.unwrap();
    problem(no_csrf, 403).await;
    // Mistakes: 400 with the reason.
    let taken = problem(
        w.call(Method::POST, "/api/v1/orgs", &w.root_write, Some(json!({"name": "Again", "slug": "acme"})), None).await,
        400,
    )
    .await;
    assert!(taken["detail"].as_str().unwrap().contains("taken"), "{taken}");
    problem(
        w.call(Method::POST, "/api/v1/orgs", &w.root_write, Some(json!({"name": "Y", "slug": "Not A Slug"})), None)
            .await,
        400,
    )
    .await;
    let nobody = problem(
        w.call(Method::POST, "/api/v1/orgs", &w.root_write, Some(json!({"name": "Z", "owner": "nobody@x.test"})), None)
            .await,
        400,
    )
    .await;
    assert!(nobody["detail"].as_str().unwrap().contains("nobody@x.test"));
    problem(w.call(Method::POST, "/api/v1/orgs", &w.root_write, Some(json!({"nom": "Z"})), None).await, 400).await;
    // Anyone else: 403.
    for auth in [&w.acme, &w.root_read] {
        problem(w.call(Method::POST, "/api/v1/orgs", auth, Some(json!({"name": "Nope"})), None).await, 403).await;
    }
    let boss = w.signed_in("boss@acme.test").await;
    let v = problem(boss.call(Method::POST, "/api/v1/orgs", Some(json!({"name": "Nope"})), None).await, 403).await;
    assert_eq!(v["detail"], "only the platform creates organizations");
}

#[tokio::test]
async fn settings_are_patched_with_etags_and_clear_errors() {
    let w = World::new().await;
    let (before, etag) = expect(w.call(Method::GET, "/api/v1/orgs/acme", &w.acme, None, None).await, 200).await;
    let etag = etag.unwrap();
    assert_eq!(before["accent_color"], Value::Null);
    let body = json!({"name": "Acme Inc", "mfa_required": true, "accent_color": "#1A4D8F"});
    let (after, new_etag) =
        expect(w.call(Method::PATCH, "/api/v1/orgs/acme", &w.acme, Some(body.clone()), Some(&etag)).await, 200).await;
    assert_eq!((after["name"].as_str(), after["mfa_required"].as_bool()), (Some("Acme Inc"), Some(true)));
    assert_eq!(after["accent_color"], "#1a4d8f");
    assert_eq!(after["require_sso"], false);
    let new_etag = new_etag.unwrap();
    assert_ne!(new_etag, etag);
    // The old ETag is stale now: 412; the same change again is idempotent.
    problem(w.call(Method::PATCH, "/api/v1/orgs/acme", &w.acme, Some(body.clone()), Some(&etag)).await, 412).await;
    let (again, e2) =
        expect(w.call(Method::PATCH, "/api/v1/orgs/acme", &w.acme, Some(body), Some(&new_etag)).await, 200).await;
    assert_eq!((again, e2.as_deref()), (after, Some(new_etag.as_str())));
    // The audit log has the change (from the service).
    let log = w.app.state.orgs.audit_log(P, "acme", Some("org.updated"), None, 50).await.unwrap();
    assert!(!log.is_empty());
    // Bad values: 400 with the reason.
    for (bad, word) in [
        (json!({"accent_color": "red"}), ""),
        (json!({"accent_color": "#ffff00"}), ""),
        (json!({"slug": "Not A Slug"}), ""),
        (json!({"name": ""}), ""),
        (json!({"slug": "globex"}), "taken"),
        (json!({"colour": "#000000"}), "colour"),
        (json!({"mfa_required": "yes"}), ""),
    ] {
        let v = problem(w.call(Method::PATCH, "/api/v1/orgs/acme", &w.acme, Some(bad.clone()), None).await, 400).await;
        assert!(v["detail"].as_str().unwrap().contains(word), "{bad}: {v}");
    }
    // The slug changes; the accent colour goes with "".
    let (o, _) = expect(
        w.call(
            Method::PATCH,
            "/api/v1/orgs/acme",
            &w.acme,
            Some(json!({"slug": "acme-inc", "accent_color": ""})),
            Some("*"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!((o["slug"].as_str(), &o["accent_color"]), (Some("acme-inc"), &Value::Null));
    // A read-only key, a member, another organization: 403, 404, 404.
    problem(w.call(Method::PATCH, "/api/v1/orgs/acme-inc", &w.acme_read, Some(json!({"name": "R"})), None).await, 403)
        .await;
    let ann = w.signed_in("ann@acme.test").await;
    problem(ann.call(Method::PATCH, "/api/v1/orgs/acme-inc", Some(json!({"name": "R"})), None).await, 404).await;
    problem(w.call(Method::PATCH, "/api/v1/orgs/globex", &w.acme, Some(json!({"name": "R"})), None).await, 404).await;
    problem(w.call(Method::GET, "/api/v1/orgs/globex", &w.acme, None, None).await, 404).await;
    // An org admin's session may.
    let adm = w.signed_in("adm@acme.test").await;
    let (o, _) =
        expect(adm.call(Method::PATCH, "/api/v1/orgs/acme-inc", Some(json!({"require_sso": true})), None).await, 200)
            .await;
    assert_eq!(o["require_sso"], true);
}

#[tokio::test]
async fn deleting_an_organization_takes_its_slug_typed_again() {
    let w = World::new().await;
    // An organization's own key never deletes it; another organization is 404.
    problem(w.call(Method::DELETE, "/api/v1/orgs/acme?confirm=acme", &w.acme, None, None).await, 403).await;
    problem(w.call(Method::DELETE, "/api/v1/orgs/globex?confirm=globex", &w.acme, None, None).await, 404).await;
    // An admin is not an owner: 403; a member: 404.
    let adm = w.signed_in("adm@acme.test").await;
    problem(adm.call(Method::DELETE, "/api/v1/orgs/acme?confirm=acme", None, None).await, 403).await;
    let ann = w.signed_in("ann@acme.test").await;
    problem(ann.call(Method::DELETE, "/api/v1/orgs/acme?confirm=acme", None, None).await, 404).await;
    // No confirm, or the wrong one: 400 naming the slug.
    let boss = w.signed_in("boss@acme.test").await;
    let v = problem(boss.call(Method::DELETE, "/api/v1/orgs/acme", None, None).await, 400).await;
    assert!(v["detail"].as_str().unwrap().contains("acme"), "{v}");
    problem(boss.call(Method::DELETE, "/api/v1/orgs/acme?confirm=globex", None, None).await, 400).await;
    // The owner, confirmed: 204; then it is gone for them (404).
    expect(boss.call(Method::DELETE, "/api/v1/orgs/acme?confirm=acme", None, None).await, 204).await;
    assert!(w.app.state.orgs.find("acme").await.unwrap().is_none());
    problem(boss.call(Method::DELETE, "/api/v1/orgs/acme?confirm=acme", None, None).await, 404).await;
    // The platform: a read-only key 403; the write key deletes, and again is 204.
    problem(w.call(Method::DELETE, "/api/v1/orgs/globex?confirm=globex", &w.root_read, None, None).await, 403).await;
    problem(w.call(Method::DELETE, "/api/v1/orgs/globex", &w.root_write, None, None).await, 400).await;
    for _ in 0..2 {
        expect(w.call(Method::DELETE, "/api/v1/orgs/globex?confirm=globex", &w.root_write, None, None).await, 204)
            .await;
    }
    let (all, _) = expect(w.call(Method::GET, "/api/v1/orgs", &w.root_write, None, None).await, 200).await;
    assert_eq!(slugs(&all), Vec::<String>::new());
}

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signatures: Vec<String>,
    body: String,
}

/// A webhook receiver on loopback that echoes validation challenges.
async fn receiver() -> (Arc<Mutex<Vec<Received>>>, String) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let me = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let me = me.clone();
            async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                me.lock().unwrap().push(Received {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signatures: h("webhook-signature").split(' ').map(str::to_owned).collect(),
                    body: body.clone(),
                });
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                match v["challenge"].as_str() {
                    Some(c) => (axum::http::StatusCode::OK, json!({"challenge": c}).to_string()),
                    None => (axum::http::StatusCode::NO_CONTENT, String::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, n: usize) -> Vec<Received> {
    for _ in 0..100 {
        let e: Vec<Received> =
            got.lock().unwrap().iter().filter(|r| !r.body.contains("webhook.validation")).cloned().collect();
        if e.len() >= n {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("expected {n} deliveries");
}

/// The Standard Webhooks check: base64 HMAC-SHA256 with the decoded `whsec_` key over
/// `id.timestamp.body`.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    r.signatures.iter().any(|s| {
        let Some(sig) = s.strip_prefix("v1,") else { return false };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
        mac.verify_slice(&STANDARD.decode(sig).unwrap_or_default()).is_ok()
    })
}

#[tokio::test]
async fn a_webhooks_secret_is_rotated_and_a_delivery_sent_again() {
    let w = World::new().await;
    let (got, url) = receiver().await;
    let (created, _) = expect(
        w.call(
            Method::POST,
            "/api/v1/orgs/acme/webhooks",
            &w.acme,
            Some(json!({"url": url, "events": ["membership.changed"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let old = created["secret"].as_str().unwrap().to_owned();
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/orgs/acme/webhooks/{id}");

    // Rotation: a read-only key may not; the write key gets the new secret, shown once.
    problem(w.call(Method::POST, &format!("{base}/secret"), &w.acme_read, None, None).await, 403).await;
    let res = w.call(Method::POST, &format!("{base}/secret"), &w.acme, None, None).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (rotated, _) = expect(res, 200).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(rotated["webhook"]["id"], id.as_str());
    assert!(rotated["webhook"]["previous_secret_until"].as_i64().unwrap() > 0);
    let (list, _) = expect(w.call(Method::GET, "/api/v1/orgs/acme/webhooks", &w.acme, None, None).await, 200).await;
    assert!(!list.to_string().contains(&new));

    // A delivery after it is signed with the new secret (and the old one, for a day).
    w.app.create_user("joe@acme.test", PW).await;
    w.app.state.orgs.set_member(P, "acme", "joe@acme.test", OrgRole::Member).await.unwrap();
    let first = wait_for(&got, 1).await;
    assert!(verifies(&new, &first[0]) && verifies(&old, &first[0]));

    // Redeliver: 202, the same webhook-id again.
    let (log, _) = expect(w.call(Method::GET, &format!("{base}/deliveries"), &w.acme, None, None).await, 200).await;
    let delivery = log[0]["id"].as_i64().unwrap();
    problem(
        w.call(Method::POST, &format!("{base}/deliveries/{delivery}/redeliver"), &w.acme_read, None, None).await,
        403,
    )
    .await;
    expect(w.call(Method::POST, &format!("{base}/deliveries/{delivery}/redeliver"), &w.acme, None, None).await, 202)
        .await;
    let again = wait_for(&got, 2).await;
    assert_eq!(again[1].id, again[0].id);
    assert_eq!(again[1].body, again[0].body);
    assert!(verifies(&new, &again[1]));

    // Unknown ids, another webhook's delivery, another organization: 404.
    problem(w.call(Method::POST, &format!("{base}/deliveries/999999/redeliver"), &w.acme, None, None).await, 404).await;
    problem(w.call(Method::POST, &format!("{base}/deliveries/abc/redeliver"), &w.acme, None, None).await, 404).await;
    let (other, _) = expect(
        w.call(
            Method::POST,
            "/api/v1/orgs/acme/webhooks",
            &w.acme,
            Some(json!({"url": url, "events": ["user.created"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let other_id = other["webhook"]["id"].as_str().unwrap();
    problem(
        w.call(
            Method::POST,
            &format!("/api/v1/orgs/acme/webhooks/{other_id}/deliveries/{delivery}/redeliver"),
            &w.acme,
            None,
            None,
        )
        .await,
        404,
    )
    .await;
    let nil = uuid::Uuid::nil();
    problem(w.call(Method::POST, &format!("/api/v1/orgs/acme/webhooks/{nil}/secret"), &w.acme, None, None).await, 404)
        .await;
    let (k, s) = w.app.state.devkeys.create(P, "globex", "ci", &["write".into()], None).await.unwrap();
    let globex = basic(&k.id, &s);
    problem(w.call(Method::POST, &format!("{base}/secret"), &globex, None, None).await, 404).await;
    problem(w.call(Method::POST, &format!("{base}/deliveries/{delivery}/redeliver"), &globex, None, None).await, 404)
        .await;
    problem(
        w.call(
            Method::POST,
            &format!("/api/v1/orgs/globex/webhooks/{id}/deliveries/{delivery}/redeliver"),
            &w.acme,
            None,
            None,
        )
        .await,
        404,
    )
    .await;
    assert_eq!(wait_for(&got, 2).await.len(), 2);
}

#[tokio::test]
async fn the_openapi_document_describes_the_new_operations() {
    let w = World::new().await;
    let doc: Value =
        reqwest::Client::new().get(w.app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/orgs", "get"),
        ("/api/v1/orgs", "post"),
        ("/api/v1/orgs/{org}", "patch"),
        ("/api/v1/orgs/{org}", "delete"),
        ("/api/v1/orgs/{org}/webhooks/{id}/secret", "post"),
        ("/api/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/redeliver", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["OrgPatch"].is_object());
}
