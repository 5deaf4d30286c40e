//! The developer keys section of an organization (`/orgs/<slug>/keys`) as an admin's browser uses
//! it: a key created (its DevSecret shown once, never on a reload) that works against the admin
//! API; its secret reset (the old one refused at once, the new one shown once and working), and
//! refused when the sign-in is older than the recent-authentication window; deleted once its
//! name is typed; refused forms save nothing; another organization's admin gets 404 for the page
//! and every form, a plain member 403.

use guichet::domain::org::OrgRole;
use guichet::i18n::Lang;
use guichet::orgs::Actor;

use crate::helpers::{form_value, unescape, TestApp};
use crate::oidc_helpers::PW;

const P: Actor = Actor::Platform;

/// The value of the readonly input `id` on the page, if there is one.
fn shown(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let start = rest.find("value=\"")? + "value=\"".len();
    let end = rest[start..].find('"')?;
    Some(unescape(&rest[start..start + end]))
}

/// The DevKey and DevSecret the page shows, if it shows them.
fn shown_secret(html: &str) -> Option<(String, String)> {
    html.find("id=\"devkey-secret\"")?;
    Some((shown(html, "devkey-shown")?, shown(html, "devsecret")?))
}

/// Acme (boss: admin, mia: member) and Globex (gina: admin).
async fn hub() -> TestApp {
    let hub = TestApp::spawn().await;
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

/// The status of `GET /api/v1/orgs/acme` with HTTP Basic `key:secret`.
async fn api_status(hub: &TestApp, key: &str, secret: &str) -> u16 {
    let res =
        reqwest::Client::new().get(hub.url("/api/v1/orgs/acme")).basic_auth(key, Some(secret)).send().await.unwrap();
    res.status().as_u16()
}

/// Creates a key from the page; its (DevKey, DevSecret).
async fn create_key(hub: &TestApp, b: &reqwest::Client, csrf: &str, name: &str, scope: &str) -> (String, String) {
    let form = [("csrf_token", csrf), ("name", name), ("scope", scope), ("expires_days", "")];
    let (status, loc, html) = post(b, &hub.url("/orgs/acme/keys"), &form).await;
    assert_eq!((status, loc.as_str()), (200, ""), "{html}");
    shown_secret(&html).expect("the DevSecret is shown")
}

fn message(hub: &TestApp, key: &str) -> String {
    hub.state.templates.t(Lang::En, key).to_owned()
}

#[tokio::test]
async fn an_org_admin_creates_uses_resets_and_deletes_a_developer_key() {
    let hub = hub().await;
    let b = signed_in(&hub, "boss@acme.test").await;
    // Linked from the organization's pages.
    let (status, html) = get(&b, &hub.url("/orgs/acme")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"nav-keys\" href=\"/orgs/acme/keys\""), "{html}");
    let (status, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"devkey-form\"") && html.contains("id=\"no-devkeys\""), "{html}");
    assert!(html.contains("id=\"scope-read\" name=\"scope\" type=\"radio\" value=\"read\""));
    assert!(html.contains("id=\"scope-write\" name=\"scope\" type=\"radio\" value=\"write\""));
    assert!(shown_secret(&html).is_none());
    let csrf = form_value(&html, "csrf_token").unwrap();

    // Created: the page itself (200, no redirect) shows the DevKey and DevSecret once, with the
    // copy button, how to use them, and the API's description.
    let form = [("csrf_token", csrf.as_str()), ("name", "CI deploys"), ("scope", "write"), ("expires_days", "30")];
    let (status, loc, html) = post(&b, &hub.url("/orgs/acme/keys"), &form).await;
    assert_eq!((status, loc.as_str()), (200, ""), "{html}");
    let (key, secret) = shown_secret(&html).expect("the DevSecret is shown");
    assert!(key.starts_with("gk_") && secret.starts_with("gs_"), "{key} {secret}");
    assert!(html.contains("id=\"copy-devsecret\" type=\"button\"") && html.contains("data-copy=\"devsecret\""));
    assert!(html.contains("src=\"/static/copy.js\""));
    assert!(html.contains("id=\"devkey-usage\"") && html.contains("href=\"/api/v1/openapi.json\""), "{html}");
    assert!(unescape(&html).contains(&message(&hub, "orgs.admin.notice.devkey_created")));
    assert!(
        unescape(&html).contains(&format!("curl -u {key}:DEVSECRET {}/api/v1/orgs/acme", hub.settings.server.issuer))
    );
    let keys = hub.state.devkeys.list(P, "acme").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].id.as_str(), keys[0].name.as_str(), keys[0].scopes.clone()),
        (key.as_str(), "CI deploys", vec!["write".to_owned()])
    );
    assert!(keys[0].expires_at.is_some());
    // Never again: not on a reload, where the key is listed, never used yet.
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    assert!(shown_secret(&html).is_none() && !unescape(&html).contains(&secret));
    assert!(html.contains(&format!("id=\"devkey-{key}\"")), "{html}");
    let never = message(&hub, "orgs.devkeys.never");
    assert!(html.contains(&format!("<td class=\"devkey-last-used\">{never}</td>")), "{html}");
    assert!(!html.contains("devkey-expired"));

    // It works against the admin API; a wrong secret does not.
    assert_eq!(api_status(&hub, &key, &secret).await, 200);
    assert_eq!(api_status(&hub, &key, "gs_wrong").await, 401);
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    assert!(!html.contains(&format!("<td class=\"devkey-last-used\">{never}</td>")), "used: {html}");

    // Reset: a new DevSecret shown once; the old one is refused at once, the new one works.
    let reset = hub.url(&format!("/orgs/acme/keys/{key}/reset"));
    let (status, loc, html) = post(&b, &reset, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!((status, loc.as_str()), (200, ""), "{html}");
    let (same_key, new_secret) = shown_secret(&html).expect("the new DevSecret is shown");
    assert_eq!(same_key, key, "the DevKey never changes");
    assert!(new_secret.starts_with("gs_") && new_secret != secret);
    assert!(unescape(&html).contains(&message(&hub, "orgs.admin.notice.devkey_reset")));
    assert_eq!(api_status(&hub, &key, &secret).await, 401);
    assert_eq!(api_status(&hub, &key, &new_secret).await, 200);
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    assert!(shown_secret(&html).is_none() && !unescape(&html).contains(&new_secret));

    // Delete: the name typed wrong is 400 and keeps the key; typed right, it is gone.
    let delete = hub.url(&format!("/orgs/acme/keys/{key}/delete"));
    let (status, _, html) = post(&b, &delete, &[("csrf_token", csrf.as_str()), ("confirm", "CI")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"error\"") && unescape(&html).contains(&message(&hub, "orgs.devkeys.error.confirm")));
    assert!(shown_secret(&html).is_none());
    assert_eq!(api_status(&hub, &key, &new_secret).await, 200);
    let (status, loc, _) = post(&b, &delete, &[("csrf_token", csrf.as_str()), ("confirm", "CI deploys")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/keys?notice=devkey_deleted"));
    assert!(hub.state.devkeys.list(P, "acme").await.unwrap().is_empty());
    assert_eq!(api_status(&hub, &key, &new_secret).await, 401);
    let (_, html) = get(&b, &hub.url(&loc)).await;
    assert!(html.contains("id=\"no-devkeys\"") && html.contains("id=\"notice\""));
    assert!(unescape(&html).contains(&message(&hub, "orgs.admin.notice.devkey_deleted")));
    // Again: 404.
    assert_eq!(post(&b, &delete, &[("csrf_token", csrf.as_str()), ("confirm", "CI deploys")]).await.0, 404);
}

#[tokio::test]
async fn resetting_a_secret_needs_a_recent_sign_in() {
    let hub = hub().await;
    let b = signed_in(&hub, "boss@acme.test").await;
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let (key, secret) = create_key(&hub, &b, &csrf, "reporting", "read").await;

    // Past the window: to the sign-in page (then back to the keys), and nothing changes.
    let window = i64::try_from(hub.settings.accounts.recent_auth_secs).unwrap();
    hub.clock.advance(window + 60);
    let reset = hub.url(&format!("/orgs/acme/keys/{key}/reset"));
    let (status, loc, html) = post(&b, &reset, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(status, 303, "{html}");
    assert!(loc.starts_with("/login?") && loc.contains("prompt=login") && loc.contains("notice=reauth"), "{loc}");
    assert!(loc.contains("return_to=%2Forgs%2Facme%2Fkeys"), "{loc}");
    assert!(shown_secret(&html).is_none());
    assert_eq!(api_status(&hub, &key, &secret).await, 200, "the secret is unchanged");
    // The page itself and the other forms still answer (only the reset needs the recent sign-in).
    assert_eq!(get(&b, &hub.url("/orgs/acme/keys")).await.0, 200);

    // Signed in again: the reset goes through.
    let (_, login) = get(&b, &hub.url("/login?prompt=login&return_to=%2Forgs%2Facme%2Fkeys")).await;
    let login_csrf = form_value(&login, "csrf_token").unwrap();
    let form = [
        ("csrf_token", login_csrf.as_str()),
        ("email", "boss@acme.test"),
        ("password", PW),
        ("return_to", "/orgs/acme/keys"),
    ];
    let (status, loc, _) = post(&b, &hub.url("/login"), &form).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/keys"));
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let (status, _, html) = post(&b, &reset, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(status, 200, "{html}");
    let (_, new_secret) = shown_secret(&html).expect("the new DevSecret is shown");
    assert_eq!(api_status(&hub, &key, &secret).await, 401);
    assert_eq!(api_status(&hub, &key, &new_secret).await, 200);
}

#[tokio::test]
async fn refused_forms_save_nothing_and_expired_keys_are_flagged() {
    let hub = hub().await;
    let b = signed_in(&hub, "boss@acme.test").await;
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let invalid = message(&hub, "orgs.devkeys.error.invalid");
    for (name, scope, days) in [
        ("", "read", ""),
        ("ci", "", ""),
        ("ci", "admin", ""),
        ("ci", "read", "0"),
        ("ci", "read", "3651"),
        ("ci", "read", "soon"),
    ] {
        let form = [("csrf_token", csrf.as_str()), ("name", name), ("scope", scope), ("expires_days", days)];
        let (status, _, html) = post(&b, &hub.url("/orgs/acme/keys"), &form).await;
        assert_eq!(status, 400, "{name:?} {scope:?} {days:?}");
        assert!(html.contains("id=\"error\"") && unescape(&html).contains(&invalid), "{html}");
        assert!(shown_secret(&html).is_none());
    }
    assert!(hub.state.devkeys.list(P, "acme").await.unwrap().is_empty());

    // A key for a day, two days later: flagged expired, refused by the API.
    let form = [("csrf_token", csrf.as_str()), ("name", "short"), ("scope", "read"), ("expires_days", "1")];
    let (status, _, html) = post(&b, &hub.url("/orgs/acme/keys"), &form).await;
    assert_eq!(status, 200);
    let (key, secret) = shown_secret(&html).unwrap();
    assert_eq!(api_status(&hub, &key, &secret).await, 200);
    hub.clock.advance(2 * 86_400);
    assert_eq!(api_status(&hub, &key, &secret).await, 401);
    let b = signed_in(&hub, "boss@acme.test").await;
    let (status, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("id=\"devkey-{key}\" class=\"expired\"")), "{html}");
    assert!(html.contains("class=\"devkey-expired\""), "{html}");
}

#[tokio::test]
async fn another_orgs_admin_gets_404_and_a_plain_member_403() {
    let hub = hub().await;
    let b = signed_in(&hub, "boss@acme.test").await;
    let (_, html) = get(&b, &hub.url("/orgs/acme/keys")).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let (key, secret) = create_key(&hub, &b, &csrf, "acme-ci", "write").await;

    for (who, status) in [("gina@globex.test", 404), ("mia@acme.test", 403)] {
        let o = signed_in(&hub, who).await;
        let (_, account) = get(&o, &hub.url("/account")).await;
        let c = form_value(&account, "csrf_token").unwrap();
        assert_eq!(get(&o, &hub.url("/orgs/acme/keys")).await.0, status, "{who}");
        let forms: [(String, Vec<(&str, &str)>); 3] = [
            ("/orgs/acme/keys".into(), vec![("name", "mine"), ("scope", "write")]),
            (format!("/orgs/acme/keys/{key}/reset"), vec![]),
            (format!("/orgs/acme/keys/{key}/delete"), vec![("confirm", "acme-ci")]),
        ];
        for (path, fields) in &forms {
            let mut form = vec![("csrf_token", c.as_str())];
            form.extend(fields.iter().copied());
            let (got, _, html) = post(&o, &hub.url(path), &form).await;
            assert_eq!(got, status, "{who} {path}");
            assert!(shown_secret(&html).is_none());
        }
    }
    // In Globex's own pages, Acme's key is unknown: 404, and not listed.
    let g = signed_in(&hub, "gina@globex.test").await;
    let (status, html) = get(&g, &hub.url("/orgs/globex/keys")).await;
    assert_eq!(status, 200);
    assert!(!html.contains(&key) && html.contains("id=\"no-devkeys\""));
    let c = form_value(&html, "csrf_token").unwrap();
    let reset = hub.url(&format!("/orgs/globex/keys/{key}/reset"));
    assert_eq!(post(&g, &reset, &[("csrf_token", c.as_str())]).await.0, 404);
    let delete = hub.url(&format!("/orgs/globex/keys/{key}/delete"));
    assert_eq!(post(&g, &delete, &[("csrf_token", c.as_str()), ("confirm", "acme-ci")]).await.0, 404);
    // Nothing changed at Acme, and Globex has no key.
    let keys = hub.state.devkeys.list(P, "acme").await.unwrap();
    assert_eq!((keys.len(), keys[0].id.as_str()), (1, key.as_str()));
    assert_eq!(api_status(&hub, &key, &secret).await, 200, "not reset");
    assert!(hub.state.devkeys.list(P, "globex").await.unwrap().is_empty());
}
