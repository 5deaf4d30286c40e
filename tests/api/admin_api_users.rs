//! The admin API's accounts (`/api/v1/users`), their sessions, an organization's invitations, and
//! the credentials beyond an organization's key: an admin's browser session (changes need
//! `X-CSRF-Token`) and a user's own developer keys (`/account/keys`). Authorization: an
//! organization reaches only the accounts it manages (its members with an address of a domain it
//! verified); anything else is 404 on every endpoint; read-only keys writing 403; expired keys 401.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::crypto::SecretString;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;
use reqwest::Method;
use serde_json::{json, Value};

use crate::dns_server::TestDns;
use crate::helpers::{form_value, unescape, TestApp};
use crate::oidc_helpers::PW;

const P: Actor = Actor::Platform;

/// Acme (verified acme.test) and Globex (verified globex.test); accounts:
/// alice, mia (members of Acme), boss (admin of Acme), bob@elsewhere.test (member of Acme, not
/// managed: his domain is not Acme's), gus (member of Globex), root (platform admin).
struct Hub {
    app: TestApp,
    _dns: TestDns,
    http: reqwest::Client,
    acme: String,
    acme_read: String,
    globex: String,
}

struct Ids {
    alice: String,
    mia: String,
    boss: String,
    bob: String,
    gus: String,
}

fn basic(key: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:{secret}")))
}

impl Hub {
    async fn new() -> (Self, Ids) {
        let dns = TestDns::start().await;
        let addr = dns.addr.to_string();
        let app = TestApp::spawn_with(|s| s.dns.resolver = Some(addr)).await;
        let orgs = &app.state.orgs;
        orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
        orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
        for (org, domain) in [("acme", "acme.test"), ("globex", "globex.test")] {
            let (_, d) = orgs.add_domain(P, org, domain).await.unwrap();
            dns.set_txt(&d.record_name(), &[&d.challenge]);
            assert!(orgs.verify_domain(P, org, domain).await.unwrap().verified());
        }
        let mut ids = Vec::new();
        for (email, org, role) in [
            ("alice@acme.test", "acme", OrgRole::Member),
            ("mia@acme.test", "acme", OrgRole::Member),
            ("boss@acme.test", "acme", OrgRole::Admin),
            ("bob@elsewhere.test", "acme", OrgRole::Member),
            ("gus@globex.test", "globex", OrgRole::Member),
        ] {
            let u = app.create_user(email, PW).await;
            orgs.set_member(P, org, email, role).await.unwrap();
            ids.push(u.id.to_string());
        }
        let pw = SecretString::new(PW);
        app.state.accounts.create_by_operator("root@platform.test", None, Some(&pw), true).await.unwrap();
        let key = |org: &'static str, scope: &'static str| {
            let d = app.state.devkeys.clone();
            async move {
                let (k, s) = d.create(P, org, "k", &[scope.into()], None).await.unwrap();
                basic(&k.id, &s)
            }
        };
        let (acme, acme_read, globex) =
            (key("acme", "write").await, key("acme", "read").await, key("globex", "write").await);
        let ids = Ids {
            alice: ids[0].clone(),
            mia: ids[1].clone(),
            boss: ids[2].clone(),
            bob: ids[3].clone(),
            gus: ids[4].clone(),
        };
        (Hub { app, _dns: dns, http: reqwest::Client::new(), acme, acme_read, globex }, ids)
    }

    async fn call(&self, m: Method, path: &str, auth: &str, body: Option<Value>) -> reqwest::Response {
        let mut r = self.http.request(m, self.app.url(path)).header("authorization", auth);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn signed_in(&self, email: &str) -> reqwest::Client {
        let b = self.app.browser();
        assert_eq!(self.app.login(&b, email, PW, None).await.status(), 303);
        b
    }
}

async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "{}", res.url());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], status);
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    v
}

/// Waits (up to 10 s) for a mail holding every one of `needles`.
async fn mail_with(app: &TestApp, needles: &[&str]) {
    for _ in 0..100 {
        if crate::helpers::outbox(&app.settings.mail.outbox_dir).iter().any(|m| needles.iter().all(|n| m.contains(n))) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail with {needles:?}");
}

/// Every endpoint on account `id`: (method, path).
fn every_endpoint(id: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, format!("/api/v1/users/{id}")),
        (Method::DELETE, format!("/api/v1/users/{id}")),
        (Method::POST, format!("/api/v1/users/{id}/suspend")),
        (Method::POST, format!("/api/v1/users/{id}/resume")),
        (Method::POST, format!("/api/v1/users/{id}/reset-factors")),
        (Method::GET, format!("/api/v1/users/{id}/sessions")),
        (Method::DELETE, format!("/api/v1/users/{id}/sessions")),
        (Method::DELETE, format!("/api/v1/users/{id}/sessions/some-sid")),
    ]
}

fn emails(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_organization_key_manages_its_accounts() {
    let (hub, ids) = Hub::new().await;
    let k = &hub.acme;
    // The list: Acme's managed accounts only (not bob, not gus, not root), by id, in pages.
    let page: Value = hub.call(Method::GET, "/api/v1/users", k, None).await.json().await.unwrap();
    let mut all = emails(&page);
    all.sort();
    assert_eq!(all, ["alice@acme.test", "boss@acme.test", "mia@acme.test"]);
    assert!(page["next_cursor"].is_null());
    let p1: Value = hub.call(Method::GET, "/api/v1/users?limit=2", k, None).await.json().await.unwrap();
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2: Value =
        hub.call(Method::GET, &format!("/api/v1/users?limit=2&cursor={cursor}"), k, None).await.json().await.unwrap();
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let mut paged = [emails(&p1), emails(&p2)].concat();
    paged.sort();
    assert_eq!(paged, all);
    // Search and filter.
    let q: Value = hub.call(Method::GET, "/api/v1/users?q=ALI", k, None).await.json().await.unwrap();
    assert_eq!(emails(&q), ["alice@acme.test"]);
    let s: Value = hub.call(Method::GET, "/api/v1/users?status=suspended", k, None).await.json().await.unwrap();
    assert!(emails(&s).is_empty());
    // Malformed queries: 400 problems.
    for bad in ["limit=0", "limit=x", "status=gone", "cursor=%%%", "q=a&q=b"] {
        problem(hub.call(Method::GET, &format!("/api/v1/users?{bad}"), k, None).await, 400).await;
    }

    // One account.
    let res = hub.call(Method::GET, &format!("/api/v1/users/{}", ids.alice), k, None).await;
    assert_eq!(res.status(), 200);
    let alice: Value = res.json().await.unwrap();
    assert_eq!((alice["email"].as_str(), alice["status"].as_str()), (Some("alice@acme.test"), Some("active")));
    problem(hub.call(Method::GET, "/api/v1/users/not-a-uuid", k, None).await, 404).await;

    // Suspend and resume (idempotent).
    for _ in 0..2 {
        let res = hub.call(Method::POST, &format!("/api/v1/users/{}/suspend", ids.alice), k, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "suspended");
    }
    let s: Value = hub.call(Method::GET, "/api/v1/users?status=suspended", k, None).await.json().await.unwrap();
    assert_eq!(emails(&s), ["alice@acme.test"]);
    let res = hub.call(Method::POST, &format!("/api/v1/users/{}/resume", ids.alice), k, None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "active");
    let res = hub.call(Method::POST, &format!("/api/v1/users/{}/reset-factors", ids.alice), k, None).await;
    assert_eq!(res.status(), 204);

    // The audit names the key.
    let key_id = {
        let b = STANDARD.decode(k.trim_start_matches("Basic ")).unwrap();
        String::from_utf8(b).unwrap().split(':').next().unwrap().to_owned()
    };
    let events = hub.app.state.stores.journal.audit_events(100).await.unwrap();
    for action in ["account.suspended", "account.resumed", "mfa.reset"] {
        let e = events.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action} audited"));
        assert_eq!(e.actor.as_deref(), Some(format!("key:{key_id}").as_str()), "{action}");
    }

    // Sessions: listed, one revoked (204, twice), all revoked.
    let b1 = hub.signed_in("alice@acme.test").await;
    let _b2 = hub.signed_in("alice@acme.test").await;
    let sessions_path = format!("/api/v1/users/{}/sessions", ids.alice);
    let list: Value = hub.call(Method::GET, &sessions_path, k, None).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let sid = list[0]["sid"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let res = hub.call(Method::DELETE, &format!("{sessions_path}/{sid}"), k, None).await;
        assert_eq!(res.status(), 204);
    }
    let list: Value = hub.call(Method::GET, &sessions_path, k, None).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(hub.call(Method::DELETE, &sessions_path, k, None).await.status(), 204);
    let list: Value = hub.call(Method::GET, &sessions_path, k, None).await.json().await.unwrap();
    assert!(list.as_array().unwrap().is_empty());
    // The browser's session is over.
    let res = b1.get(hub.app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);

    // Creation: pending, in Acme, activation mailed; the address taken: 409.
    let body = json!({"email": "carol@acme.test", "name": "Carol", "org": "acme"});
    let res = hub.call(Method::POST, "/api/v1/users", k, Some(body.clone())).await;
    assert_eq!(res.status(), 201);
    let carol: Value = res.json().await.unwrap();
    assert_eq!((carol["status"].as_str(), carol["name"].as_str()), (Some("pending"), Some("Carol")));
    let carol_id = carol["id"].as_str().unwrap().to_owned();
    mail_with(&hub.app, &["carol@acme.test", "/activate"]).await;
    assert_eq!(hub.call(Method::GET, &format!("/api/v1/users/{carol_id}"), k, None).await.status(), 200);
    // Her membership is an event of Acme's, written with the account.
    let acme = hub.app.state.orgs.find("acme").await.unwrap().unwrap();
    let events = hub.app.state.webhooks.events_after(acme.id, 0, 1000).await.unwrap();
    assert!(
        events.iter().any(|(_, kind, data)| kind == "membership.changed" && data.contains(&carol_id)),
        "{events:?}"
    );
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(body)).await, 409).await;
    // An address outside Acme's verified domains, no organization, another organization,
    // an owner, a malformed body.
    let outside = json!({"email": "dave@elsewhere.test", "org": "acme"});
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(outside)).await, 403).await;
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(json!({"email": "dave@acme.test"}))).await, 400).await;
    let other = json!({"email": "dave@globex.test", "org": "globex"});
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(other)).await, 404).await;
    let owner = json!({"email": "dave@acme.test", "org": "acme", "role": "owner"});
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(owner)).await, 403).await;
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(json!({"mail": "x"}))).await, 400).await;
    problem(hub.call(Method::POST, "/api/v1/users", k, Some(json!({"email": "nope", "org": "acme"}))).await, 400).await;

    // Deletion: 204, and 204 again once gone; then 404 to read.
    for _ in 0..2 {
        assert_eq!(hub.call(Method::DELETE, &format!("/api/v1/users/{carol_id}"), k, None).await.status(), 204);
    }
    problem(hub.call(Method::GET, &format!("/api/v1/users/{carol_id}"), k, None).await, 404).await;
    assert!(hub.app.state.accounts.find(carol_id.parse().unwrap()).await.unwrap().is_none());
    let _ = ids.mia;
}

#[tokio::test]
async fn nothing_outside_what_an_organization_manages_is_reachable() {
    let (hub, ids) = Hub::new().await;
    // Globex's key against Acme's accounts, Acme's key against Globex's, an account Acme does
    // not manage (bob: his domain is not Acme's), a platform admin: 404 on every endpoint, and
    // nothing changed.
    let root = hub.app.state.accounts.user_by_email("root@platform.test").await.unwrap().unwrap().id.to_string();
    for (key, id) in [(&hub.globex, &ids.alice), (&hub.acme, &ids.gus), (&hub.acme, &ids.bob), (&hub.acme, &root)] {
        for (m, path) in every_endpoint(id) {
            problem(hub.call(m.clone(), &path, key, None).await, 404).await;
        }
    }
    for id in [&ids.alice, &ids.gus, &ids.bob] {
        let u = hub.app.state.accounts.find(id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(u.status.as_str(), "active");
    }
    // A read-only key reads, and may not write (403).
    assert_eq!(
        hub.call(Method::GET, &format!("/api/v1/users/{}", ids.alice), &hub.acme_read, None).await.status(),
        200
    );
    for (m, path) in every_endpoint(&ids.alice).into_iter().filter(|(m, _)| *m != Method::GET) {
        problem(hub.call(m, &path, &hub.acme_read, None).await, 403).await;
    }
    let body = json!({"email": "carol@acme.test", "org": "acme"});
    problem(hub.call(Method::POST, "/api/v1/users", &hub.acme_read, Some(body)).await, 403).await;
    // An expired key: 401.
    let (k, s) = hub.app.state.devkeys.create(P, "acme", "short", &["write".into()], Some(1)).await.unwrap();
    let short = basic(&k.id, &s);
    assert_eq!(hub.call(Method::GET, "/api/v1/users", &short, None).await.status(), 200);
    hub.app.clock.advance(2 * 86_400);
    problem(hub.call(Method::GET, "/api/v1/users", &short, None).await, 401).await;
    problem(hub.call(Method::GET, &format!("/api/v1/users/{}", ids.alice), &short, None).await, 401).await;
}

/// The CSRF token of the signed-in browser's session (from a page's form).
async fn csrf_of(hub: &Hub, b: &reqwest::Client) -> String {
    let html = b.get(hub.app.url("/account/keys")).send().await.unwrap().text().await.unwrap();
    form_value(&html, "csrf_token").unwrap()
}

#[tokio::test]
async fn an_admins_session_is_a_credential_and_changes_need_its_csrf_token() {
    let (hub, ids) = Hub::new().await;
    // No session, no key: 401.
    problem(hub.http.get(hub.app.url("/api/v1/users")).send().await.unwrap(), 401).await;
    // Boss (Acme's admin) by his browser session: Acme's managed accounts.
    let b = hub.signed_in("boss@acme.test").await;
    let page: Value = b.get(hub.app.url("/api/v1/users")).send().await.unwrap().json().await.unwrap();
    let mut all = emails(&page);
    all.sort();
    assert_eq!(all, ["alice@acme.test", "boss@acme.test", "mia@acme.test"]);
    let alice = hub.app.url(&format!("/api/v1/users/{}", ids.alice));
    assert_eq!(b.get(&alice).send().await.unwrap().status(), 200);
    // A change without the CSRF token, or a wrong one: 403, nothing done.
    let suspend = format!("{alice}/suspend");
    problem(b.post(&suspend).send().await.unwrap(), 403).await;
    problem(b.post(&suspend).header("x-csrf-token", "wrong").send().await.unwrap(), 403).await;
    let csrf = csrf_of(&hub, &b).await;
    problem(
        b.post(&suspend).header("x-csrf-token", &csrf).header("sec-fetch-site", "cross-site").send().await.unwrap(),
        403,
    )
    .await;
    let u = hub.app.state.accounts.find(ids.alice.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(u.status.as_str(), "active");
    // With it, but a sign-in older than accounts.recent_auth_secs: refused (reads still work).
    hub.app.clock.advance(301);
    problem(b.post(&suspend).header("x-csrf-token", &csrf).send().await.unwrap(), 403).await;
    assert_eq!(b.get(hub.app.url("/api/v1/users")).send().await.unwrap().status(), 200);
    hub.app.clock.advance(-301);
    // With it and a recent sign-in: done, and the audit names the user.
    let res = b.post(&suspend).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let events = hub.app.state.stores.journal.audit_events(100).await.unwrap();
    let e = events.iter().find(|e| e.action == "account.suspended").unwrap();
    assert_eq!(e.actor.as_deref(), Some(format!("user:{}", ids.boss).as_str()));
    // Other organizations' accounts and unmanaged ones: 404.
    for id in [&ids.gus, &ids.bob] {
        for (m, path) in every_endpoint(id) {
            let res = b.request(m, hub.app.url(&path)).header("x-csrf-token", &csrf).send().await.unwrap();
            problem(res, 404).await;
        }
    }
    // Invitations into Acme by session.
    let res = b
        .post(hub.app.url("/api/v1/orgs/acme/invitations"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"email": "new@acme.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // Mia is only a member: no account reachable, an empty list, no invitations.
    let m = hub.signed_in("mia@acme.test").await;
    let page: Value = m.get(hub.app.url("/api/v1/users")).send().await.unwrap().json().await.unwrap();
    assert!(emails(&page).is_empty(), "{page}");
    let mcsrf = csrf_of(&hub, &m).await;
    for (meth, path) in every_endpoint(&ids.alice) {
        let res = m.request(meth, hub.app.url(&path)).header("x-csrf-token", &mcsrf).send().await.unwrap();
        problem(res, 404).await;
    }
    problem(m.get(hub.app.url("/api/v1/orgs/acme/invitations")).send().await.unwrap(), 404).await;

    // The platform admin reaches every account.
    let r = hub.signed_in("root@platform.test").await;
    let page: Value = r.get(hub.app.url("/api/v1/users?limit=200")).send().await.unwrap().json().await.unwrap();
    let all = emails(&page);
    for e in ["alice@acme.test", "bob@elsewhere.test", "gus@globex.test", "root@platform.test"] {
        assert!(all.iter().any(|x| x == e), "{e} in {all:?}");
    }
    let page: Value = r.get(hub.app.url("/api/v1/users?q=elsewhere")).send().await.unwrap().json().await.unwrap();
    assert_eq!(emails(&page), ["bob@elsewhere.test"]);
    let page: Value = r.get(hub.app.url("/api/v1/users?q=%25")).send().await.unwrap().json().await.unwrap();
    assert!(emails(&page).is_empty(), "% is a character, not a wildcard");
    assert_eq!(r.get(hub.app.url(&format!("/api/v1/users/{}", ids.bob))).send().await.unwrap().status(), 200);
    // Pages of the whole platform.
    let p1: Value = r.get(hub.app.url("/api/v1/users?limit=4")).send().await.unwrap().json().await.unwrap();
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2: Value = r
        .get(hub.app.url(&format!("/api/v1/users?limit=4&cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(emails(&p1).len() + emails(&p2).len(), 6);
    assert!(p2["next_cursor"].is_null());

    // A suspended account's session is no credential.
    let alice_b = {
        let rcsrf = csrf_of(&hub, &r).await;
        let res = r
            .post(hub.app.url(&format!("/api/v1/users/{}/resume", ids.alice)))
            .header("x-csrf-token", &rcsrf)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        hub.signed_in("alice@acme.test").await
    };
    assert_eq!(alice_b.get(hub.app.url("/api/v1/users")).send().await.unwrap().status(), 200);
    hub.app.state.accounts.set_suspended(ids.alice.parse().unwrap(), true, "test").await.unwrap();
    problem(alice_b.get(hub.app.url("/api/v1/users")).send().await.unwrap(), 401).await;
}

#[tokio::test]
async fn invitations_of_an_organization() {
    let (hub, _ids) = Hub::new().await;
    let k = &hub.acme;
    let res = hub
        .call(
            Method::POST,
            "/api/v1/orgs/acme/invitations",
            k,
            Some(json!({"email": "neo@acme.test", "role": "admin"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let inv: Value = res.json().await.unwrap();
    assert_eq!((inv["status"].as_str(), inv["role"].as_str()), (Some("pending"), Some("admin")));
    let id = inv["id"].as_str().unwrap().to_owned();
    mail_with(&hub.app, &["neo@acme.test", "/invite"]).await;
    for email in ["b@acme.test", "c@acme.test"] {
        let res = hub.call(Method::POST, "/api/v1/orgs/acme/invitations", k, Some(json!({"email": email}))).await;
        assert_eq!(res.status(), 201);
    }
    // Listed in pages.
    let p1: Value = hub.call(Method::GET, "/api/v1/orgs/acme/invitations?limit=2", k, None).await.json().await.unwrap();
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2: Value = hub
        .call(Method::GET, &format!("/api/v1/orgs/acme/invitations?limit=2&cursor={cursor}"), k, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    // Sent again.
    let res = hub.call(Method::POST, &format!("/api/v1/orgs/acme/invitations/{id}/resend"), k, None).await;
    assert_eq!(res.status(), 200);
    // Globex's key: Acme's invitations are not there; an Acme invitation under Globex neither.
    problem(hub.call(Method::GET, "/api/v1/orgs/acme/invitations", &hub.globex, None).await, 404).await;
    problem(hub.call(Method::DELETE, &format!("/api/v1/orgs/acme/invitations/{id}"), &hub.globex, None).await, 404)
        .await;
    problem(hub.call(Method::DELETE, &format!("/api/v1/orgs/globex/invitations/{id}"), &hub.globex, None).await, 404)
        .await;
    problem(
        hub.call(Method::POST, &format!("/api/v1/orgs/globex/invitations/{id}/resend"), &hub.globex, None).await,
        404,
    )
    .await;
    // Read-only: 403 to change.
    problem(hub.call(Method::DELETE, &format!("/api/v1/orgs/acme/invitations/{id}"), &hub.acme_read, None).await, 403)
        .await;
    let body = json!({"email": "x@acme.test"});
    problem(hub.call(Method::POST, "/api/v1/orgs/acme/invitations", &hub.acme_read, Some(body)).await, 403).await;
    // Malformed.
    let body = json!({"email": "x@acme.test", "role": "owner"});
    problem(hub.call(Method::POST, "/api/v1/orgs/acme/invitations", k, Some(body)).await, 403).await;
    let body = json!({"email": "not an address"});
    problem(hub.call(Method::POST, "/api/v1/orgs/acme/invitations", k, Some(body)).await, 400).await;
    problem(
        hub.call(Method::POST, "/api/v1/orgs/acme/invitations", k, Some(json!({"lang": "de", "email": "a@b.test"})))
            .await,
        400,
    )
    .await;
    // Revoked: 204, and again; then it shows as revoked and cannot be sent again.
    for _ in 0..2 {
        let res = hub.call(Method::DELETE, &format!("/api/v1/orgs/acme/invitations/{id}"), k, None).await;
        assert_eq!(res.status(), 204);
    }
    assert_eq!(hub.call(Method::DELETE, "/api/v1/orgs/acme/invitations/not-an-id", k, None).await.status(), 204);
    let all: Value = hub.call(Method::GET, "/api/v1/orgs/acme/invitations", k, None).await.json().await.unwrap();
    let it = all["items"].as_array().unwrap().iter().find(|i| i["id"] == id.as_str()).unwrap();
    assert_eq!(it["status"], "revoked");
    problem(hub.call(Method::POST, &format!("/api/v1/orgs/acme/invitations/{id}/resend"), k, None).await, 409).await;
}

/// The DevKey and DevSecret a page shows, if it shows them.
fn shown_secret(html: &str) -> Option<(String, String)> {
    html.find("id=\"devkey-secret\"")?;
    let value = |id: &str| {
        let at = html.find(&format!("id=\"{id}\""))?;
        let rest = &html[at..];
        let start = rest.find("value=\"")? + "value=\"".len();
        let end = rest[start..].find('"')?;
        Some(unescape(&rest[start..start + end]))
    };
    Some((value("devkey-shown")?, value("devsecret")?))
}

#[tokio::test]
async fn a_users_own_keys_from_the_account_page() {
    let (hub, ids) = Hub::new().await;
    let b = hub.signed_in("boss@acme.test").await;
    let html = b.get(hub.app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"keys-link\" href=\"/account/keys\""), "{html}");
    let html = b.get(hub.app.url("/account/keys")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"no-devkeys\"") && shown_secret(&html).is_none());
    let csrf = form_value(&html, "csrf_token").unwrap();

    // Created: the secret is shown this once, with its copy button.
    let form = [("csrf_token", csrf.as_str()), ("name", "my script"), ("scope", "write"), ("expires_days", "")];
    let res = b.post(hub.app.url("/account/keys")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let (key, secret) = shown_secret(&html).expect("the secret is shown");
    assert!(html.contains("data-copy=\"devsecret\""));
    let again = b.get(hub.app.url("/account/keys")).send().await.unwrap().text().await.unwrap();
    assert!(shown_secret(&again).is_none() && !again.contains(&secret) && again.contains(&key));
    // A refused form: 400, nothing saved.
    let bad = [("csrf_token", csrf.as_str()), ("name", ""), ("scope", "admin"), ("expires_days", "")];
    assert_eq!(b.post(hub.app.url("/account/keys")).form(&bad).send().await.unwrap().status(), 400);
    let no_csrf = [("csrf_token", "x"), ("name", "n"), ("scope", "read"), ("expires_days", "")];
    assert_ne!(b.post(hub.app.url("/account/keys")).form(&no_csrf).send().await.unwrap().status(), 200);
    assert_eq!(hub.app.state.devkeys.list_for_user(ids.boss.parse().unwrap()).await.unwrap().len(), 1);

    // It works on the API, with boss's rights (Acme's accounts; not Globex's), Basic or signed.
    let auth = basic(&key, &secret);
    assert_eq!(hub.call(Method::GET, &format!("/api/v1/users/{}", ids.alice), &auth, None).await.status(), 200);
    problem(hub.call(Method::GET, &format!("/api/v1/users/{}", ids.gus), &auth, None).await, 404).await;
    let path = format!("/api/v1/users/{}", ids.alice);
    let ts = hub.app.state.clock.now().0;
    let sig =
        guichet::domain::devkey::request_signature(&guichet::crypto::tokens::digest(&secret), "GET", &path, ts, b"");
    let signed = format!("Guichet-HMAC-SHA256 key={key}, ts={ts}, sig={sig}");
    assert_eq!(hub.call(Method::GET, &path, &signed, None).await.status(), 200);
    // No CSRF token needed with a key.
    let res = hub.call(Method::POST, &format!("/api/v1/users/{}/reset-factors", ids.alice), &auth, None).await;
    assert_eq!(res.status(), 204);

    // Reset: the old secret dies at once, the new one is shown once and works.
    let res =
        b.post(hub.app.url(&format!("/account/keys/{key}/reset"))).form(&[("csrf_token", &csrf)]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (same, fresh) = shown_secret(&res.text().await.unwrap()).unwrap();
    assert_eq!(same, key);
    assert_ne!(fresh, secret);
    problem(hub.call(Method::GET, "/api/v1/users", &auth, None).await, 401).await;
    let auth = basic(&key, &fresh);
    assert_eq!(hub.call(Method::GET, "/api/v1/users", &auth, None).await.status(), 200);
    // Another user's key id on this page: 404.
    let mia = hub.signed_in("mia@acme.test").await;
    let mcsrf = csrf_of(&hub, &mia).await;
    let res = mia
        .post(hub.app.url(&format!("/account/keys/{key}/reset")))
        .form(&[("csrf_token", &mcsrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A reset after the recent-sign-in window: to the sign-in page, the secret unchanged.
    hub.app.clock.advance(i64::try_from(hub.app.settings.accounts.recent_auth_secs).unwrap() + 60);
    let res =
        b.post(hub.app.url(&format!("/account/keys/{key}/reset"))).form(&[("csrf_token", &csrf)]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?"));
    assert_eq!(hub.call(Method::GET, "/api/v1/users", &auth, None).await.status(), 200);

    // A suspended owner's key stops working at once; resumed, it works again.
    let boss = ids.boss.parse().unwrap();
    hub.app.state.accounts.set_suspended(boss, true, "test").await.unwrap();
    problem(hub.call(Method::GET, "/api/v1/users", &auth, None).await, 401).await;
    hub.app.state.accounts.set_suspended(boss, false, "test").await.unwrap();
    assert_eq!(hub.call(Method::GET, "/api/v1/users", &auth, None).await.status(), 200);

    // Deleted: gone from the page and from the API.
    let b = hub.signed_in("boss@acme.test").await;
    let csrf = csrf_of(&hub, &b).await;
    let res = b
        .post(hub.app.url(&format!("/account/keys/{key}/delete")))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    problem(hub.call(Method::GET, "/api/v1/users", &auth, None).await, 401).await;
}

#[tokio::test]
async fn the_openapi_document_describes_users_sessions_and_invitations() {
    let (hub, _) = Hub::new().await;
    let doc: Value = reqwest::get(hub.app.url("/api/v1/openapi.json")).await.unwrap().json().await.unwrap();
    for path in [
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/suspend",
        "/api/v1/users/{id}/resume",
        "/api/v1/users/{id}/reset-factors",
        "/api/v1/users/{id}/sessions",
        "/api/v1/users/{id}/sessions/{sid}",
        "/api/v1/orgs/{org}/invitations",
        "/api/v1/orgs/{org}/invitations/{id}",
        "/api/v1/orgs/{org}/invitations/{id}/resend",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    assert!(doc["components"]["schemas"]["UserWire"].is_object());
}
