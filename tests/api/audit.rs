//! The audit log: every entry carries the client's IP (X-Forwarded-For only from a trusted
//! proxy), user agent, organization and outcome; searches by action (or prefix), actor, outcome,
//! dates and organization in the API and the pages; an organization's admin reads only its
//! entries (another organization's log is 404, a plain member gets 403, the console 404); the
//! JSON lines exports honour the filters; entries past the retention are purged; deleting an
//! account pseudonymises its entries and clears their IP and user agent; each organization
//! the account belonged to gets `user.deleted` (pseudonym, never the address).

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::domain::account::{AccountOp, AuditOutcome};
use guichet::domain::org::OrgRole;
use guichet::domain::{Email, NewUser, User, UserStatus};
use guichet::orgs::Actor;

use crate::helpers::{form_value, unescape, TestApp};

const P: Actor = Actor::Platform;
const PW: &str = "correct horse battery";
const UA: &str = "audit-test/1.0 (black box)";

struct World {
    app: TestApp,
    key: String,
    secret: String,
    adam: User,
}

/// Acme (adam admin, mia member, a write key) and Beta (bob owner).
async fn world_with(customize: impl FnOnce(&mut guichet::Settings)) -> World {
    let app = TestApp::spawn_with(customize).await;
    let orgs = &app.state.orgs;
    let adam = app.create_user("adam@acme.test", PW).await;
    app.create_user("mia@acme.test", PW).await;
    let bob = app.create_user("bob@beta.test", PW).await;
    orgs.create(P, "Acme", Some("acme"), None).await.unwrap();
    orgs.create(P, "Beta", Some("beta"), Some(bob.id)).await.unwrap();
    orgs.set_member(P, "acme", "adam@acme.test", OrgRole::Admin).await.unwrap();
    orgs.set_member(P, "acme", "mia@acme.test", OrgRole::Member).await.unwrap();
    let (k, secret) = app.state.devkeys.create(P, "acme", "audit", &["write".into()], None).await.unwrap();
    World { app, key: k.id, secret, adam }
}

async fn world() -> World {
    world_with(|_| {}).await
}

impl World {
    fn auth(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.key, self.secret)))
    }

    async fn api(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new().get(self.app.url(path)).header("authorization", self.auth()).send().await.unwrap()
    }

    async fn items(&self, path: &str) -> Vec<serde_json::Value> {
        let res = self.api(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let page: serde_json::Value = res.json().await.unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// `PUT /api/v1/orgs/acme/members/{email}` as `UA`, with an `X-Forwarded-For`.
    async fn put_member(&self, email: &str, role: &str, forwarded: &str) {
        let res = reqwest::Client::new()
            .put(self.app.url(&format!("/api/v1/orgs/acme/members/{email}")))
            .header("authorization", self.auth())
            .header("user-agent", UA)
            .header("x-forwarded-for", forwarded)
            .json(&serde_json::json!({"role": role}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }

    /// A failed attempt in the organization's log (nothing raises one through HTTP yet).
    async fn failure(&self, org: &str, action: &str) {
        let org = self.app.state.orgs.find(org).await.unwrap().unwrap();
        let op = AccountOp::Audit {
            action: action.into(),
            subject: format!("org:{}", org.id),
            actor: Some("platform".into()),
            detail: None,
            org: None,
            outcome: AuditOutcome::Failure,
        };
        self.app.state.stores.accounts.apply(vec![op]).await.unwrap();
    }
}

async fn signed_in(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(UA)
        .build()
        .unwrap();
    assert_eq!(app.login(&b, email, PW, None).await.status(), 303);
    let html = b.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    (b, form_value(&html, "csrf_token").unwrap())
}

async fn page(b: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let res = b.get(app.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn entries_carry_the_client_ip_user_agent_org_and_outcome() {
    // No trusted proxy: X-Forwarded-For is ignored, the peer is the client.
    let w = world_with(|s| s.server.trusted_proxies.clear()).await;
    w.put_member("mia@acme.test", "admin", "203.0.113.9").await;
    let acme = w.app.state.orgs.find("acme").await.unwrap().unwrap();
    let items = w.items("/api/v1/orgs/acme/audit?action=org.member_role_changed").await;
    assert_eq!(items.len(), 1, "{items:?}");
    let e = &items[0];
    assert_eq!(e["ip"], "127.0.0.1");
    assert_eq!(e["user_agent"], UA);
    assert_eq!(e["org"], acme.id.to_string());
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["subject"], format!("org:{}", acme.id));
    // Written outside a request (the setup's service calls): no IP, no user agent.
    let setup = w.items("/api/v1/orgs/acme/audit?action=org.member_added").await;
    assert!(setup.iter().all(|e| e["ip"].is_null() && e["user_agent"].is_null()), "{setup:?}");

    // Behind a trusted proxy: the client is the right-most address it forwarded for.
    let w = world_with(|s| s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    w.put_member("mia@acme.test", "admin", "198.51.100.1, 203.0.113.9").await;
    let items = w.items("/api/v1/orgs/acme/audit?action=org.member_role_changed").await;
    assert_eq!(items[0]["ip"], "203.0.113.9");
    assert_eq!(items[0]["user_agent"], UA);

    // A page: the signed-in admin's browser.
    let (b, csrf) = signed_in(&w.app, "adam@acme.test").await;
    let mia = w.app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let res = b
        .post(w.app.url("/orgs/acme/members/role"))
        .header("x-forwarded-for", "192.0.2.77")
        .form(&[("csrf_token", csrf.as_str()), ("user_id", &mia.id.to_string()), ("role", "member")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let items = w.items("/api/v1/orgs/acme/audit?action=org.member_role_changed&limit=1").await;
    assert_eq!(items[0]["actor"], w.adam.id.to_string());
    assert_eq!((items[0]["ip"].as_str(), items[0]["user_agent"].as_str()), (Some("192.0.2.77"), Some(UA)));
}

#[tokio::test]
async fn the_api_filters_by_action_actor_outcome_dates_and_stays_in_its_organization() {
    let w = world().await;
    let day = 86_400;
    let t0 = w.app.state.clock.now().0;
    w.app.clock.advance(3 * day);
    w.put_member("mia@acme.test", "admin", "203.0.113.9").await;
    w.failure("acme", "org.connection_metadata_failed").await;
    w.failure("beta", "org.connection_metadata_failed").await;
    let (b, csrf) = signed_in(&w.app, "adam@acme.test").await;
    let mia = w.app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let form = [("csrf_token", csrf.as_str()), ("user_id", &mia.id.to_string()), ("role", "member")];
    assert_eq!(b.post(w.app.url("/orgs/acme/members/role")).form(&form).send().await.unwrap().status(), 303);

    // Action, exact and by prefix.
    let added = w.items("/api/v1/orgs/acme/audit?action=org.member_added").await;
    assert_eq!(added.len(), 2);
    let members = w.items("/api/v1/orgs/acme/audit?action=org.member_*").await;
    assert_eq!(members.len(), 4, "{members:?}");
    assert!(members.iter().all(|e| e["action"].as_str().unwrap().starts_with("org.member_")));
    // Actor: by address or id, or `platform`.
    let by_adam = w.items("/api/v1/orgs/acme/audit?actor=adam%40acme.test").await;
    assert_eq!(by_adam.len(), 1);
    assert_eq!(by_adam[0]["action"], "org.member_role_changed");
    assert_eq!(w.items(&format!("/api/v1/orgs/acme/audit?actor={}", w.adam.id)).await.len(), 1);
    assert!(w.items("/api/v1/orgs/acme/audit?actor=platform").await.len() >= 4);
    assert!(w.items("/api/v1/orgs/acme/audit?actor=nobody%40acme.test").await.is_empty());
    // Outcome: only acme's failure.
    let failed = w.items("/api/v1/orgs/acme/audit?outcome=failure").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["outcome"], "failure");
    // Dates: the setup is three days older than the rest.
    let old = w.items(&format!("/api/v1/orgs/acme/audit?until={}", t0 + day)).await;
    let recent = w.items(&format!("/api/v1/orgs/acme/audit?from={}", t0 + day)).await;
    assert!(old.iter().all(|e| e["at"].as_i64().unwrap() < t0 + day) && !old.is_empty());
    assert_eq!(recent.len(), 3, "{recent:?}");
    let today = chrono::DateTime::from_timestamp(w.app.state.clock.now().0, 0).unwrap().format("%Y-%m-%d").to_string();
    let by_day = w.items(&format!("/api/v1/orgs/acme/audit?from={today}&until={today}")).await;
    assert_eq!(by_day.len(), 3);
    // Combined, and paged.
    let page = w.items("/api/v1/orgs/acme/audit?action=org.member_*&actor=platform&limit=1").await;
    assert_eq!(page.len(), 1);
    // Malformed filters are 400 problems.
    for bad in ["outcome=maybe", "from=yesterday", "action=org%20x", "actor=a&actor=b"] {
        let res = w.api(&format!("/api/v1/orgs/acme/audit?{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    // The whole log, for a key: its organization's entries only; another organization is 404.
    let all = w.items("/api/v1/audit?outcome=failure").await;
    assert_eq!(all.len(), 1);
    let acme = w.app.state.orgs.find("acme").await.unwrap().unwrap();
    assert_eq!(all[0]["org"], acme.id.to_string());
    assert_eq!(w.api("/api/v1/audit?org=beta").await.status(), 404);
    assert_eq!(w.api("/api/v1/orgs/beta/audit").await.status(), 404);
    assert_eq!(w.api("/api/v1/orgs/beta/audit/export").await.status(), 404);

    // The export: JSON lines, the same filters.
    let res = w.api("/api/v1/orgs/acme/audit/export?action=org.member_*&actor=platform").await;
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let got = lines(&res.text().await.unwrap());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|l| l["actor"] == "platform" && l["action"].as_str().unwrap().starts_with("org.member_")));
    assert!(got.iter().all(|l| l.get("ip").is_some() && l.get("user_agent").is_some() && l["org"].is_string()));
    let res = w.api("/api/v1/audit/export?outcome=failure").await;
    assert_eq!(lines(&res.text().await.unwrap()).len(), 1);
}

async fn platform_admin(app: &TestApp, email: &str) -> User {
    let hasher = guichet::crypto::PasswordHasher::new(&app.settings.password).unwrap();
    let hash = hasher.hash(&guichet::crypto::SecretString::new(PW)).await.unwrap();
    app.state
        .stores
        .users
        .create_user(NewUser {
            email: Email::parse(email).unwrap(),
            name: None,
            password_hash: Some(hash),
            status: UserStatus::Active,
            is_admin: true,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn the_pages_filter_page_export_and_keep_each_organization_to_itself() {
    let w = world().await;
    let app = &w.app;
    w.put_member("mia@acme.test", "admin", "203.0.113.9").await;
    w.failure("acme", "org.connection_metadata_failed").await;
    w.failure("beta", "org.sso_denied").await;

    // Acme's admin: acme's entries, with the filters, the navigation link and the export link.
    let (b, _) = signed_in(app, "adam@acme.test").await;
    let (status, html) = page(&b, app, "/orgs/acme/audit").await;
    assert_eq!(status, 200);
    let html = unescape(&html);
    assert!(html.contains("id=\"audit-table\"") && html.contains("id=\"audit-filter\""));
    assert!(html.contains("id=\"nav-audit\" href=\"/orgs/acme/audit\" aria-current=\"page\""));
    assert!(html.contains("org.member_role_changed") && html.contains("203.0.113.9") && html.contains(UA));
    assert!(html.contains("href=\"/orgs/acme/audit/export\""));
    assert!(!html.contains("org.sso_denied"), "beta's entries stay out");
    let html = unescape(&page(&b, app, "/orgs/acme/audit?outcome=failure").await.1);
    assert_eq!(html.matches("data-outcome=\"failure\"").count(), 1);
    assert!(!html.contains("data-outcome=\"success\""));
    assert!(html.contains("href=\"/orgs/acme/audit/export?outcome=failure\""));
    let (_, html) = page(&b, app, "/orgs/acme/audit?action=org.member_added&actor=platform").await;
    assert_eq!(html.matches("<tr id=\"audit-").count(), 2);
    let far = "2999-01-01";
    let (_, html) = page(&b, app, &format!("/orgs/acme/audit?from={far}")).await;
    assert!(html.contains("id=\"audit-none\""));
    // Export from the page: JSON lines with the filters.
    let res = b.get(app.url("/orgs/acme/audit/export?action=org.member_added")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let got = lines(&res.text().await.unwrap());
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|l| l["action"] == "org.member_added"));
    // Paging: one older page link, then the rest.
    for i in 0..60 {
        let email = format!("p{i}@acme.test");
        app.create_user(&email, PW).await;
        app.state.orgs.set_member(P, "acme", &email, OrgRole::Member).await.unwrap();
    }
    let (_, html) = page(&b, app, "/orgs/acme/audit").await;
    assert_eq!(html.matches("<tr id=\"audit-").count(), 50);
    let next = unescape(html.split("id=\"audit-older\" href=\"").nth(1).unwrap().split('"').next().unwrap());
    let (status, html) = page(&b, app, &next).await;
    assert_eq!(status, 200);
    assert!(html.matches("<tr id=\"audit-").count() >= 10 && html.contains("id=\"audit-newest\""));
    // A malformed filter is a 400 page.
    assert_eq!(page(&b, app, "/orgs/acme/audit?outcome=maybe").await.0, 400);

    // A plain member: 403; another organization's owner: 404, for the page and the export.
    let (m, _) = signed_in(app, "bob@beta.test").await;
    assert_eq!(page(&m, app, "/orgs/acme/audit").await.0, 404);
    assert_eq!(page(&m, app, "/orgs/acme/audit/export").await.0, 404);
    let (status, html) = page(&m, app, "/orgs/beta/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("org.sso_denied") && !html.contains("org.member_role_changed"));
    app.state.orgs.set_member(P, "acme", "bob@beta.test", OrgRole::Member).await.unwrap();
    assert_eq!(page(&m, app, "/orgs/acme/audit").await.0, 403);
    // The console: 404 for anyone but a platform admin; an anonymous browser goes to sign in.
    assert_eq!(page(&b, app, "/admin/audit").await.0, 404);
    assert_eq!(page(&b, app, "/admin/audit/export").await.0, 404);
    assert_eq!(page(&app.browser(), app, "/admin/audit").await.0, 303);

    // A platform admin: every organization's entries, one organization's on demand.
    platform_admin(app, "root@platform.test").await;
    let (r, _) = signed_in(app, "root@platform.test").await;
    let (status, html) = page(&r, app, "/admin/audit?outcome=failure").await;
    assert_eq!(status, 200);
    assert!(html.contains("org.sso_denied") && html.contains("org.connection_metadata_failed"));
    assert!(html.contains("id=\"audit-org\""));
    let (_, html) = page(&r, app, "/admin/audit?outcome=failure&org=beta").await;
    assert!(html.contains("org.sso_denied") && !html.contains("org.connection_metadata_failed"));
    assert_eq!(page(&r, app, "/admin/audit?org=nope").await.0, 404);
    let res = r.get(app.url("/admin/audit/export?org=beta")).send().await.unwrap();
    let got = lines(&res.text().await.unwrap());
    assert!(!got.is_empty());
    let beta = app.state.orgs.find("beta").await.unwrap().unwrap();
    assert!(got.iter().all(|l| l["org"] == beta.id.to_string()));
}

#[tokio::test]
async fn entries_past_the_retention_are_purged() {
    let w = world_with(|s| s.audit.retention_days = 30).await;
    let before = w.app.state.stores.journal.audit_events(1000).await.unwrap().len();
    assert!(before >= 4);
    w.app.clock.advance(31 * 86_400);
    w.put_member("mia@acme.test", "admin", "203.0.113.9").await;
    let removed = w.app.state.audit.purge(w.app.state.clock.now()).await.unwrap();
    assert_eq!(removed as usize, before);
    let left = w.items("/api/v1/orgs/acme/audit").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["action"], "org.member_role_changed");
    // Nothing younger than the retention goes.
    w.app.clock.advance(29 * 86_400);
    assert_eq!(w.app.state.audit.purge(w.app.state.clock.now()).await.unwrap(), 0);
}

#[tokio::test]
async fn a_deleted_account_s_entries_keep_a_pseudonym_only() {
    let w = world().await;
    let app = &w.app;
    let adam = w.adam.clone();
    // Entries by adam (a page, with his IP and browser) and about him (operator actions).
    let (b, csrf) = signed_in(app, "adam@acme.test").await;
    let mia = app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let form = [("csrf_token", csrf.as_str()), ("user_id", &mia.id.to_string()), ("role", "admin")];
    let res = b.post(app.url("/orgs/acme/members/role")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    app.state.accounts.set_suspended(adam.id, true, "operator").await.unwrap();
    app.state.accounts.set_suspended(adam.id, false, "operator").await.unwrap();
    let id = adam.id.to_string();
    let all = app.state.stores.journal.audit_events(1000).await.unwrap();
    assert!(all.iter().any(|e| e.actor.as_deref() == Some(id.as_str()) && e.ip.is_some() && e.user_agent.is_some()));
    assert!(all.iter().any(|e| e.subject == id));
    assert!(all.iter().any(|e| e.detail.as_deref().unwrap_or_default().contains(&id)));
    assert!(!app.state.accounts.login_history(adam.id).await.unwrap().is_empty());

    app.state.accounts.delete(adam.id, None, None, "operator").await.unwrap();
    let pseudonym = app.state.accounts.pseudonym(adam.id);
    let all = app.state.stores.journal.audit_events(1000).await.unwrap();
    for e in &all {
        let text = format!("{} {} {:?} {:?}", e.action, e.subject, e.actor, e.detail);
        assert!(!text.contains(&id) && !text.contains("adam@acme.test"), "{e:?}");
    }
    let his: Vec<_> = all
        .iter()
        .filter(|e| {
            e.subject == pseudonym
                || e.actor.as_deref() == Some(pseudonym.as_str())
                || e.detail.as_deref().unwrap_or_default().contains(&pseudonym)
        })
        .collect();
    assert!(his
        .iter()
        .any(|e| e.action == "org.member_role_changed" && e.actor.as_deref() == Some(pseudonym.as_str())));
    assert!(his.iter().any(|e| e.action == "account.suspended" && e.subject == pseudonym));
    assert!(his.iter().any(|e| e.action == "account.deleted"));
    assert!(his.iter().any(|e| e.action == "org.member_added"), "the detail names the pseudonym");
    assert!(
        his.iter()
            .filter(|e| e.subject == pseudonym || e.actor.as_deref() == Some(pseudonym.as_str()))
            .all(|e| e.ip.is_none() && e.user_agent.is_none()),
        "{his:?}"
    );
    // Others' entries keep their context.
    let items = w.items("/api/v1/orgs/acme/audit?actor=platform&action=org.member_added").await;
    assert!(!items.is_empty());
    // The sign-in history went with the account.
    assert!(app.state.stores.accounts.login_history(adam.id, 10).await.unwrap().is_empty());
    // The API shows the pseudonym.
    let items = w.items(&format!("/api/v1/orgs/acme/audit?actor={pseudonym}")).await;
    assert_eq!(items.len(), 1);
    assert!(items[0]["ip"].is_null() && items[0]["user_agent"].is_null());
}

/// A webhook receiver on loopback: echoes validation challenges, keeps the events.
async fn receiver() -> (Arc<Mutex<Vec<String>>>, String) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let me = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let me = me.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                match v["challenge"].as_str() {
                    Some(c) => (axum::http::StatusCode::OK, format!("{{\"challenge\":\"{c}\"}}")),
                    None => {
                        me.lock().unwrap().push(body);
                        (axum::http::StatusCode::NO_CONTENT, String::new())
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

#[tokio::test]
async fn deleting_an_account_tells_its_organizations_user_deleted() {
    let w = world_with(|s| s.webhooks.allow_loopback = true).await;
    let app = &w.app;
    let (got, url) = receiver().await;
    app.state.webhooks.create(P, "acme", &url, &["user.deleted".into()]).await.unwrap();
    let (beta_got, beta_url) = receiver().await;
    app.state.webhooks.create(P, "beta", &beta_url, &["user.deleted".into()]).await.unwrap();
    let mia = app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    app.state.accounts.delete(mia.id, None, None, "operator").await.unwrap();
    let pseudonym = app.state.accounts.pseudonym(mia.id);
    let mut body = None;
    for _ in 0..100 {
        if let Some(b) = got.lock().unwrap().first().cloned() {
            body = Some(b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body = body.expect("user.deleted delivered");
    assert!(!body.contains("mia@acme.test"), "{body}");
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "user.deleted");
    assert_eq!(event["data"]["pseudonym"], pseudonym);
    assert_eq!(event["data"]["user"], mia.id.to_string());
    let acme = app.state.orgs.find("acme").await.unwrap().unwrap();
    assert_eq!(event["org"], acme.id.to_string());
    // Beta, where mia was not a member, hears nothing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(beta_got.lock().unwrap().is_empty());
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn sign_ins_failures_and_refusals_are_audited() {
    let app = TestApp::spawn().await;
    let sia = app.create_user("sia@example.com", PW).await;
    assert_eq!(app.login(&app.browser(), "sia@example.com", PW, None).await.status(), 303);
    assert_ne!(app.login(&app.browser(), "sia@example.com", "wrong password!!", None).await.status(), 303);
    assert_ne!(app.login(&app.browser(), "nobody@example.com", "wrong password!!", None).await.status(), 303);
    // A read-only key trying to change something.
    app.state.orgs.create(P, "Read Only", Some("ro"), None).await.unwrap();
    let (k, s) = app.state.devkeys.create(P, "ro", "reader", &["read".into()], None).await.unwrap();
    let res = reqwest::Client::new()
        .put(app.url("/api/v1/orgs/ro/members/sia%40example.com"))
        .header("authorization", format!("Basic {}", STANDARD.encode(format!("{}:{s}", k.id))))
        .json(&serde_json::json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let entries = app.state.stores.journal.audit_events(50).await.unwrap();
    let me = sia.id.to_string();
    let ok = entries.iter().find(|e| e.action == "login.succeeded" && e.subject == me).expect("the sign-in");
    assert_eq!(ok.outcome, AuditOutcome::Success);
    assert_eq!(ok.actor.as_deref(), Some(me.as_str()));
    assert!(ok.ip.is_some());
    let failed = entries.iter().find(|e| e.action == "login.failed" && e.subject == me).expect("the failure");
    assert_eq!(failed.outcome, AuditOutcome::Failure);
    let unknown =
        entries.iter().find(|e| e.action == "login.failed" && e.subject == "unknown").expect("unknown address");
    assert!(!format!("{unknown:?}").contains("nobody"), "no one's typo is kept: {unknown:?}");
    let denied = entries.iter().find(|e| e.action == "api.write_denied").expect("the refusal");
    assert_eq!(denied.outcome, AuditOutcome::Denied);
    assert_eq!(denied.actor.as_deref(), Some(format!("key:{}", k.id).as_str()));
}
