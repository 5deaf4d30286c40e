//! The platform admin console (`/admin/*`) as a browser uses it: a platform admin sees every
//! page; a plain user and an organization's admin get 404 on every page and form, an anonymous
//! browser the sign-in redirect; the dashboard's chart counts the sign-ins and failures made
//! here (per UTC day); the account page's forms (suspend, resume, reset factors, sign out
//! every session, delete) work, need the CSRF token and leave audit entries; French renders.

use guichet::crypto::{PasswordHasher, SecretString};
use guichet::domain::org::OrgRole;
use guichet::domain::{Email, NewUser, User, UserStatus};
use guichet::orgs::Actor;

use crate::helpers::{form_value, unescape, TestApp};
use crate::oidc_helpers::{registration, PW};

const P: Actor = Actor::Platform;

/// Every console page (GET), with an element each must show.
const PAGES: &[(&str, &str)] = &[
    ("/admin", "id=\"dashboard-chart\""),
    ("/admin/users", "id=\"users-table\""),
    ("/admin/orgs", "id=\"orgs-list\""),
    ("/admin/clients", "id=\"clients-list\""),
    ("/admin/connections", "id=\"connections-list\""),
    ("/admin/webhooks", "id=\"webhooks-list\""),
];

async fn create_admin(app: &TestApp, email: &str) -> User {
    let hash = PasswordHasher::new(&app.settings.password).unwrap().hash(&SecretString::new(PW)).await.unwrap();
    app.state
        .stores
        .users
        .create_user(NewUser {
            email: Email::parse(email).unwrap(),
            name: Some("Root".into()),
            password_hash: Some(hash),
            status: UserStatus::Active,
            is_admin: true,
        })
        .await
        .unwrap()
}

/// A hub with a platform admin, Acme (boss: admin, mia: member), a client of Acme and a
/// SAML connection serving Acme.
async fn hub() -> TestApp {
    hub_with(|_| {}).await
}

async fn hub_with(customize: impl FnOnce(&mut guichet::Settings)) -> TestApp {
    let app = TestApp::spawn_with(customize).await;
    create_admin(&app, "root@example.com").await;
    let acme = app.state.orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    for (email, role) in [("boss@acme.test", OrgRole::Admin), ("mia@acme.test", OrgRole::Member)] {
        app.create_user(email, PW).await;
        app.state.orgs.set_member(P, "acme", email, role).await.unwrap();
    }
    let mut r = registration("Acme Portal");
    r.org_id = Some(acme.id);
    app.register(r).await;
    let idp = crate::saml_idp::TestIdp::new("https://idp.acme.test/saml", "https://idp.acme.test/sso");
    let source = guichet::federation::saml::SamlSource::Xml(idp.metadata_xml());
    app.state.federation.create_saml(P, &["acme".into()], Some("Acme IdP"), source, Default::default()).await.unwrap();
    app
}

async fn signed_in(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let b = app.browser();
    assert_eq!(app.login(&b, email, PW, None).await.status(), 303);
    let csrf = form_value(&get(&b, &app.url("/account")).await.1, "csrf_token").unwrap();
    (b, csrf)
}

/// Status and body of a page (its HTML escapes undone, so URLs read as written).
async fn get(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).header("accept", "text/html").send().await.unwrap();
    (res.status().as_u16(), unescape(&res.text().await.unwrap()))
}

/// Status, `Location` (if any), body of a form post.
async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let res = b.post(url).header("accept", "text/html").form(form).send().await.unwrap();
    let status = res.status().as_u16();
    let loc = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, loc, res.text().await.unwrap())
}

/// The `data-total` of a chart series.
fn series_total(html: &str, series: &str) -> i64 {
    let marker = format!("data-series=\"{series}\" data-total=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no series {series}")) + marker.len();
    html[start..].split('"').next().unwrap().parse().unwrap()
}

/// The values of a series' points, in order.
fn series_values(html: &str, series: &str) -> Vec<i64> {
    let start = html.find(&format!("data-series=\"{series}\"")).unwrap();
    let group = html[start..].split("</g>").next().unwrap();
    group.split("data-value=\"").skip(1).map(|v| v.split('"').next().unwrap().parse().unwrap()).collect()
}

#[tokio::test]
async fn a_platform_admin_sees_every_page() {
    let app = hub().await;
    let (b, _) = signed_in(&app, "root@example.com").await;
    for (path, element) in PAGES {
        let (status, html) = get(&b, &app.url(path)).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains(element), "{path} shows {element}");
        assert!(
            html.contains("id=\"admin-nav\"") && html.contains("href=\"/admin/audit\""),
            "{path} has the navigation"
        );
    }
    // The account page links to the console.
    assert!(get(&b, &app.url("/account")).await.1.contains("id=\"admin-link\""));
    let (_, dashboard) = get(&b, &app.url("/admin")).await;
    assert!(dashboard.contains("role=\"img\"") && dashboard.contains("<title id=\"dashboard-chart-title\">"));
    assert!(!dashboard.contains("<script"), "no JavaScript on the dashboard");
    let count =
        |id: &str| dashboard.split(&format!("id=\"{id}\">")).nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(
        (count("count-users"), count("count-active"), count("count-orgs")),
        ("3".into(), "3".into(), "1".into())
    );
    assert_eq!((count("count-clients"), count("count-connections")), ("1".into(), "1".into()));

    let (_, users) = get(&b, &app.url("/admin/users")).await;
    assert!(users.contains("boss@acme.test") && users.contains("mia@acme.test") && users.contains("root@example.com"));
    // Search by address, by name, and by status.
    let (_, found) = get(&b, &app.url("/admin/users?q=MIA")).await;
    assert!(found.contains("mia@acme.test") && !found.contains("boss@acme.test"));
    let (_, found) = get(&b, &app.url("/admin/users?q=root")).await;
    assert!(found.contains("root@example.com") && !found.contains("mia@acme.test"));
    let (_, found) = get(&b, &app.url("/admin/users?q=%25")).await;
    assert!(found.contains("id=\"no-users\""), "a % is a character, not a wildcard");
    let (_, found) = get(&b, &app.url("/admin/users?status=suspended")).await;
    assert!(found.contains("id=\"no-users\""));
    assert_eq!(get(&b, &app.url("/admin/users?status=active&page=2")).await.0, 200);

    let (_, orgs) = get(&b, &app.url("/admin/orgs")).await;
    assert!(orgs.contains("id=\"orgs-table\"") && orgs.contains("href=\"/orgs/acme\""));
    let (_, clients) = get(&b, &app.url("/admin/clients")).await;
    assert!(
        clients.contains("id=\"clients-table\"")
            && clients.contains("Acme Portal")
            && clients.contains("authorization_code")
    );
    assert!(clients.contains("https://rp.example.com/cb") && clients.contains("href=\"/orgs/acme\""));
    // Nothing yet: the pages say so.
    let (_, hooks) = get(&b, &app.url("/admin/webhooks")).await;
    assert!(hooks.contains("id=\"no-webhooks\""));
    let (_, conns) = get(&b, &app.url("/admin/connections")).await;
    assert!(conns.contains("id=\"connections-table\"") && conns.contains("Acme IdP"));
    assert!(conns.contains("href=\"/orgs/acme/sso\"") && conns.contains("data-status=\"active\""));
    assert!(conns.contains("data-metadata=\"static\"") && conns.contains("https://idp.acme.test/saml"));

    // An account's page: its details and its forms.
    let mia = app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let (status, page) = get(&b, &app.url(&format!("/admin/users/{}", mia.id))).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"user-actions\"")
            && page.contains("id=\"suspend-form\"")
            && page.contains("id=\"delete-form\"")
    );
    assert!(page.contains("href=\"/orgs/acme/members\""), "its organizations");
    assert!(page.contains("id=\"user-factors\" data-count=\"0\""));
    // Unknown or malformed ids: 404.
    assert_eq!(get(&b, &app.url(&format!("/admin/users/{}", uuid::Uuid::new_v4()))).await.0, 404);
    assert_eq!(get(&b, &app.url("/admin/users/not-an-id")).await.0, 404);
}

/// A receiver on loopback that echoes validation challenges and answers events with 204.
async fn receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|body: String| async move {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            match v["challenge"].as_str() {
                Some(c) => (axum::http::StatusCode::OK, format!("{{\"challenge\":\"{c}\"}}")),
                None => (axum::http::StatusCode::NO_CONTENT, String::new()),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn webhooks_are_listed_with_their_last_delivery() {
    let app = hub_with(|s| s.webhooks.allow_loopback = true).await;
    let url = receiver().await;
    let events = ["membership.changed".to_owned()];
    let (w, _) = app.state.webhooks.create(P, "acme", &url, &events).await.unwrap();
    let (b, _) = signed_in(&app, "root@example.com").await;
    let (status, html) = get(&b, &app.url("/admin/webhooks")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"webhooks-table\"") && html.contains(&url));
    assert!(html.contains(&format!("id=\"webhook-{}\" data-last=\"none\"", w.id)));
    assert!(html.contains(&format!("href=\"/orgs/acme/webhooks#webhook-{}\"", w.id)), "links to its delivery log");
    // A membership change: delivered, and the list says so.
    app.create_user("new@acme.test", PW).await;
    app.state.orgs.set_member(P, "acme", "new@acme.test", OrgRole::Member).await.unwrap();
    let mut delivered = false;
    for _ in 0..50 {
        let html = get(&b, &app.url("/admin/webhooks")).await.1;
        if html.contains(&format!("id=\"webhook-{}\" data-last=\"ok\"", w.id)) {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "the last delivery shows");
    // The organization's page holds the log.
    let (status, html) = get(&b, &app.url("/orgs/acme/webhooks")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("id=\"deliveries-{}\"", w.id)));
}

#[tokio::test]
async fn everyone_else_gets_404_and_anonymous_browsers_sign_in() {
    let app = hub().await;
    let mia = app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let user_page = format!("/admin/users/{}", mia.id);
    for email in ["mia@acme.test", "boss@acme.test"] {
        let (b, csrf) = signed_in(&app, email).await;
        for (path, _) in PAGES.iter().chain([(user_page.as_str(), "")].iter()) {
            assert_eq!(get(&b, &app.url(path)).await.0, 404, "{email} {path}");
        }
        for action in ["suspend", "resume", "reset-factors", "revoke-sessions", "delete"] {
            let form = [("csrf_token", csrf.as_str()), ("confirm_email", "mia@acme.test")];
            let (status, _, _) = post(&b, &app.url(&format!("{user_page}/{action}")), &form).await;
            assert_eq!(status, 404, "{email} {action}");
        }
        assert!(!get(&b, &app.url("/account")).await.1.contains("id=\"admin-link\""));
    }
    let mia = app.state.accounts.find(mia.id).await.unwrap().unwrap();
    assert_eq!(mia.status, UserStatus::Active, "nothing changed");
    // Anonymous: to the sign-in page, and back after it.
    let anon = app.browser();
    for (path, _) in PAGES {
        let res = anon.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path}");
        let loc = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(loc.starts_with("/login?return_to="), "{path}: {loc}");
    }
}

#[tokio::test]
async fn the_chart_counts_the_sign_ins_and_failures_of_each_day() {
    let app = hub().await;
    // Yesterday: mia signs in once and fails twice.
    app.clock.advance(-86_400);
    let b = app.browser();
    assert_eq!(app.login(&b, "mia@acme.test", PW, None).await.status(), 303);
    for ip in ["10.0.0.1", "10.0.0.2"] {
        assert_eq!(app.login(&app.browser(), "mia@acme.test", "wrong password!", Some(ip)).await.status(), 401);
    }
    app.clock.advance(86_400);
    // Today: boss signs in twice and fails three times; an unknown address fails (counted from
    // the audit log, which keeps it without the address); the admin signs in (counted).
    for _ in 0..2 {
        assert_eq!(app.login(&app.browser(), "boss@acme.test", PW, None).await.status(), 303);
    }
    for ip in ["10.0.1.1", "10.0.1.2", "10.0.1.3"] {
        assert_eq!(app.login(&app.browser(), "boss@acme.test", "wrong password!", Some(ip)).await.status(), 401);
    }
    assert_eq!(app.login(&app.browser(), "nobody@acme.test", PW, Some("10.0.2.1")).await.status(), 401);
    let (b, _) = signed_in(&app, "root@example.com").await;
    let (status, html) = get(&b, &app.url("/admin")).await;
    assert_eq!(status, 200);
    assert_eq!(series_total(&html, "succeeded"), 4);
    assert_eq!(series_total(&html, "failed"), 6);
    let ok = series_values(&html, "succeeded");
    let ko = series_values(&html, "failed");
    assert_eq!(ok.len(), 30, "one point per day over 30 days");
    assert_eq!((&ok[28..], &ko[28..]), (&[1, 3][..], &[2, 4][..]), "yesterday, then today");
    assert!(ok[..28].iter().chain(&ko[..28]).all(|v| *v == 0));
    assert!(html.contains("id=\"total-sign-ins\">4<") && html.contains("id=\"total-failures\">6<"));
    // The chart's scale holds the highest day.
    assert!(html.contains("data-scale-top=\"4\""), "the scale holds the highest day");
}

#[tokio::test]
async fn account_actions_work_and_need_the_csrf_token() {
    let app = hub().await;
    let (b, csrf) = signed_in(&app, "root@example.com").await;
    let (mia_b, _) = signed_in(&app, "mia@acme.test").await;
    let mia = app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let page = format!("/admin/users/{}", mia.id);
    let url = |action: &str| app.url(&format!("{page}/{action}"));
    let with = |c: &str| vec![("csrf_token", c.to_owned()), ("confirm_email", "mia@acme.test".to_owned())];
    let form = with(&csrf);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Without the token (or with another), nothing happens.
    for action in ["suspend", "reset-factors", "revoke-sessions", "delete"] {
        assert_eq!(post(&b, &url(action), &[("confirm_email", "mia@acme.test")]).await.0, 403, "{action}");
        let bad = with("not-the-token");
        let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(post(&b, &url(action), &bad).await.0, 403, "{action}");
    }
    assert_eq!(app.state.accounts.find(mia.id).await.unwrap().unwrap().status, UserStatus::Active);

    // Suspend: mia's session ends and she cannot sign in.
    let (status, loc, _) = post(&b, &url("suspend"), &form).await;
    assert_eq!((status, loc.as_str()), (303, format!("{page}?notice=suspended").as_str()));
    assert_eq!(app.state.accounts.find(mia.id).await.unwrap().unwrap().status, UserStatus::Suspended);
    assert_eq!(mia_b.get(app.url("/account")).send().await.unwrap().status(), 303, "signed out");
    assert_eq!(app.login(&app.browser(), "mia@acme.test", PW, None).await.status(), 403);
    let (_, html) = get(&b, &app.url(&loc)).await;
    assert!(
        html.contains("id=\"notice\"")
            && html.contains("data-status=\"suspended\"")
            && html.contains("id=\"resume-form\"")
    );

    // Resume.
    let (status, loc, _) = post(&b, &url("resume"), &form).await;
    assert_eq!((status, loc.as_str()), (303, format!("{page}?notice=resumed").as_str()));
    assert_eq!(app.state.accounts.find(mia.id).await.unwrap().unwrap().status, UserStatus::Active);
    let (mia_b, _) = signed_in(&app, "mia@acme.test").await;

    // Reset factors: a TOTP factor goes.
    enrol_totp(&app, &mia).await;
    assert_eq!(app.state.mfa.factors(mia.id).await.unwrap().len(), 1);
    let (status, loc, _) = post(&b, &url("reset-factors"), &form).await;
    assert_eq!((status, loc.as_str()), (303, format!("{page}?notice=factors_reset").as_str()));
    assert!(app.state.mfa.factors(mia.id).await.unwrap().is_empty());

    // Sign out every session.
    assert_eq!(mia_b.get(app.url("/account")).send().await.unwrap().status(), 200);
    let (status, loc, _) = post(&b, &url("revoke-sessions"), &form).await;
    assert_eq!((status, loc.as_str()), (303, format!("{page}?notice=sessions_revoked").as_str()));
    assert_eq!(mia_b.get(app.url("/account")).send().await.unwrap().status(), 303, "signed out");
    assert!(get(&b, &app.url(&page)).await.1.contains("id=\"no-sessions\""));

    // Delete: the typed address must be the account's.
    let wrong = [("csrf_token", csrf.as_str()), ("confirm_email", "boss@acme.test")];
    let (status, _, html) = post(&b, &url("delete"), &wrong).await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"error\""));
    assert!(app.state.accounts.find(mia.id).await.unwrap().is_some());
    let (status, loc, _) = post(&b, &url("delete"), &form).await;
    assert_eq!((status, loc.as_str()), (303, "/admin/users?notice=deleted"));
    assert!(app.state.accounts.find(mia.id).await.unwrap().is_none());
    assert_eq!(get(&b, &app.url(&page)).await.0, 404);

    // Each action is in the audit log, in the admin's name.
    let root = app.state.accounts.user_by_email("root@example.com").await.unwrap().unwrap();
    let audit = app.state.stores.journal.audit_events(50).await.unwrap();
    for action in ["account.suspended", "account.resumed", "mfa.reset", "sessions.revoked", "account.deleted"] {
        assert!(
            audit.iter().any(|e| e.action == action && e.actor.as_deref() == Some(root.id.to_string().as_str())),
            "{action} audited"
        );
    }

    // The admin's own account: no suspend or delete form, and the forms refuse.
    let own = format!("/admin/users/{}", root.id);
    let (_, html) = get(&b, &app.url(&own)).await;
    assert!(html.contains("id=\"self-note\"") && !html.contains("id=\"suspend-form\""));
    let mine = [("csrf_token", csrf.as_str()), ("confirm_email", "root@example.com")];
    assert_eq!(post(&b, &app.url(&format!("{own}/suspend")), &mine).await.0, 403);
    assert_eq!(post(&b, &app.url(&format!("{own}/delete")), &mine).await.0, 403);
    assert!(app.state.accounts.find(root.id).await.unwrap().is_some());

    // An older sign-in: to the sign-in page first (and back), nothing done.
    app.clock.advance(i64::try_from(app.settings.accounts.recent_auth_secs).unwrap() + 60);
    let boss = app.state.accounts.user_by_email("boss@acme.test").await.unwrap().unwrap();
    let (status, loc, _) =
        post(&b, &app.url(&format!("/admin/users/{}/suspend", boss.id)), &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/login?prompt=login") && loc.contains(&boss.id.to_string()), "{loc}");
    assert_eq!(app.state.accounts.find(boss.id).await.unwrap().unwrap().status, UserStatus::Active);
}

/// A confirmed TOTP factor for `u`, made through the service as the security page would.
async fn enrol_totp(app: &TestApp, u: &User) {
    let e = app.state.mfa.totp_enrolment(u).await.unwrap();
    let bytes = totp_rs::Secret::Encoded(e.secret_base32.clone()).to_bytes().unwrap();
    let t = u64::try_from(app.state.clock.now().0).unwrap();
    let code = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).unwrap().generate(t);
    app.state.mfa.confirm_totp(u, &code).await.unwrap();
}

#[tokio::test]
async fn the_console_speaks_french() {
    let app = hub().await;
    let (b, _) = signed_in(&app, "root@example.com").await;
    let mia = app.state.accounts.user_by_email("mia@acme.test").await.unwrap().unwrap();
    let user_page = format!("/admin/users/{}", mia.id);
    for (path, _) in PAGES.iter().chain([(user_page.as_str(), "")].iter()) {
        let res = b.get(app.url(path)).header("accept-language", "fr-FR,fr;q=0.9").send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains("<html lang=\"fr\">"), "{path}");
        assert!(html.contains("Tableau de bord") && html.contains("Journal d’audit"), "{path}: French navigation");
    }
    let (_, html) = {
        let res = b.get(app.url("/admin")).header("accept-language", "fr").send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    };
    assert!(html.contains("Connexions et échecs par jour"), "the chart's title in French");
    // The language cookie (the switch) works too.
    let res = b.get(app.url("/lang?lang=fr&return_to=%2Fadmin%2Fusers")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let (_, html) = get(&b, &app.url("/admin/users")).await;
    assert!(html.contains("<html lang=\"fr\">") && html.contains("Adresse ou nom"));
}
