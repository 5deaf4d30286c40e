//! The account console: profile and language, password change, email change by codes, phone
//! by proof of work + SMS code (file and HTTP drivers), sessions and history, export,
//! deletion (recent sign-in, back-channel logout), suspension.

use std::sync::{Arc, Mutex};

use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{registration, tokens_for, userinfo_status, PW};

async fn page(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = b.post(url).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn signed_in(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let b = app.browser();
    assert_eq!(app.login(&b, email, PW, None).await.status(), 303);
    let csrf = form_value(&page(&b, &app.url("/account")).await.1, "csrf_token").unwrap();
    (b, csrf)
}

/// The 6-digit code in the newest mail to `to`.
async fn code_mailed_to(app: &TestApp, n: usize, to: &str) -> String {
    let mails = app.mails(n).await;
    let m = mails.iter().rev().find(|m| m.contains(&format!("To: {to}"))).unwrap_or_else(|| panic!("no mail to {to}"));
    let text = m.split("text/plain").nth(1).unwrap();
    text.split_whitespace().find(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit())).unwrap().to_owned()
}

#[tokio::test]
async fn profile_language_and_password_change() {
    let app = TestApp::spawn().await;
    app.create_user("paul@example.com", PW).await;
    let (b, csrf) = signed_in(&app, "paul@example.com").await;
    let (other, _) = signed_in(&app, "paul@example.com").await;
    // The browser's language until the user chooses one.
    let fr = b.get(app.url("/account")).header("accept-language", "fr-FR,fr;q=0.9").send().await.unwrap();
    assert!(fr.text().await.unwrap().contains("<html lang=\"fr\">"));
    let bad = [("csrf_token", csrf.as_str()), ("name", "Paul"), ("locale", "en"), ("time_zone", "Not a zone")];
    let (status, html) = post(&b, &app.url("/account/profile"), &bad).await;
    assert_eq!(status, 400);
    assert!(html.contains("Europe/Paris"), "the message says what is expected");
    let good =
        [("csrf_token", csrf.as_str()), ("name", "Paul Durand"), ("locale", "fr"), ("time_zone", "Europe/Paris")];
    let (status, html) = post(&b, &app.url("/account/profile"), &good).await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"fr\">") && html.contains("Paul Durand"), "saved locale wins");
    // The switch on the page saves the choice for a signed-in user.
    let res = b.get(app.url("/lang?lang=en&return_to=%2Faccount")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account");
    assert!(page(&b, &app.url("/account")).await.1.contains("<html lang=\"en\">"));
    // Password: the current one is required; the other session ends, this one stays.
    let wrong =
        [("csrf_token", csrf.as_str()), ("current_password", "nope nope nope"), ("password", "a brand new passphrase")];
    let (status, html) = post(&b, &app.url("/account/password"), &wrong).await;
    assert_eq!(status, 400);
    assert!(html.contains("current password is not correct"));
    let forged = [("csrf_token", "forged"), ("current_password", PW), ("password", "a brand new passphrase")];
    assert_eq!(post(&b, &app.url("/account/password"), &forged).await.0, 403);
    let ok = [("csrf_token", csrf.as_str()), ("current_password", PW), ("password", "a brand new passphrase")];
    let (status, html) = post(&b, &app.url("/account/password"), &ok).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"notice\""));
    assert_eq!(page(&b, &app.url("/account")).await.0, 200, "this session stays");
    assert_eq!(page(&other, &app.url("/account")).await.0, 303, "the other one ends");
    assert!(app.mails(1).await[0].contains("Your password was changed"));
    assert_eq!(app.login(&app.browser(), "paul@example.com", "a brand new passphrase", None).await.status(), 303);
}

#[tokio::test]
async fn email_change_needs_a_code_from_each_address() {
    let app = TestApp::spawn().await;
    app.create_user("old@example.com", PW).await;
    app.create_user("taken@example.com", PW).await;
    let (b, csrf) = signed_in(&app, "old@example.com").await;
    let (other, _) = signed_in(&app, "old@example.com").await;
    let url = |p: &str| app.url(p);
    let (status, _) =
        post(&b, &url("/account/email"), &[("csrf_token", &csrf), ("new_email", "new@example.com")]).await;
    assert_eq!(status, 200);
    let code = code_mailed_to(&app, 1, "old@example.com").await;
    // Wrong codes count; the fifth kills the code.
    for i in 0..4 {
        let (status, html) =
            post(&b, &url("/account/email/current"), &[("csrf_token", &csrf), ("code", "000000")]).await;
        assert_eq!(status, 400, "try {i}");
        assert!(html.contains("not correct") || code == "000000");
    }
    let (status, html) = post(&b, &url("/account/email/current"), &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("new@example.com"));
    let code_new = code_mailed_to(&app, 2, "new@example.com").await;
    // The first code is spent.
    assert_eq!(post(&b, &url("/account/email/new"), &[("csrf_token", &csrf), ("code", &code)]).await.0, 400);
    let (status, html) = post(&b, &url("/account/email/new"), &[("csrf_token", &csrf), ("code", &code_new)]).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"notice\""));
    let notice = app.mails(3).await;
    assert!(notice.iter().any(|m| m.contains("To: old@example.com") && m.contains("was changed to new@example.com")));
    assert_eq!(page(&other, &url("/account")).await.0, 303, "other sessions end");
    assert_eq!(app.login(&app.browser(), "new@example.com", PW, None).await.status(), 303);
    assert_eq!(app.login(&app.browser(), "old@example.com", PW, None).await.status(), 401);
    // An address in use elsewhere cannot be taken; five wrong codes kill a code.
    post(&b, &url("/account/email"), &[("csrf_token", &csrf), ("new_email", "taken@example.com")]).await;
    let code = code_mailed_to(&app, 4, "new@example.com").await;
    post(&b, &url("/account/email/current"), &[("csrf_token", &csrf), ("code", &code)]).await;
    let code_new = code_mailed_to(&app, 5, "taken@example.com").await;
    let (status, html) = post(&b, &url("/account/email/new"), &[("csrf_token", &csrf), ("code", &code_new)]).await;
    assert_eq!(status, 400);
    assert!(html.contains("cannot be used"));
    post(&b, &url("/account/email/cancel"), &[("csrf_token", &csrf)]).await;
    post(&b, &url("/account/email"), &[("csrf_token", &csrf), ("new_email", "third@example.com")]).await;
    let code = code_mailed_to(&app, 6, "new@example.com").await;
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for _ in 0..5 {
        post(&b, &url("/account/email/current"), &[("csrf_token", &csrf), ("code", wrong)]).await;
    }
    let (status, html) = post(&b, &url("/account/email/current"), &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(status, 400, "dead after five wrong tries");
    assert!(html.contains("expired") || html.contains("too many"));
    // Codes expire after 15 minutes.
    post(&b, &url("/account/email"), &[("csrf_token", &csrf), ("new_email", "fourth@example.com")]).await;
    let code = code_mailed_to(&app, 7, "new@example.com").await;
    app.clock.advance(15 * 60 + 1);
    // (the session's idle timeout is longer than this)
    let (status, _) = post(&b, &url("/account/email/current"), &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(status, 400);
}

async fn phone_flow(app: &TestApp, b: &reqwest::Client) -> (u16, String) {
    let html = page(b, &app.url("/account/phone")).await.1;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let challenge = form_value(&html, "pow_challenge").unwrap();
    // Without the work: refused.
    let lazy = [
        ("csrf_token", csrf.as_str()),
        ("phone", "+33 6 12 34 56 78"),
        ("pow_challenge", &challenge),
        ("pow_nonce", ""),
    ];
    assert_eq!(post(b, &app.url("/account/phone"), &lazy).await.0, 400);
    let nonce = guichet::accounts::pow::solve(&challenge, app.settings.accounts.pow_difficulty);
    let done = [
        ("csrf_token", csrf.as_str()),
        ("phone", "06 12 34 56 78"),
        ("pow_challenge", &challenge),
        ("pow_nonce", &nonce),
    ];
    let r = post(b, &app.url("/account/phone"), &done).await;
    // The same solved challenge twice: refused.
    assert_eq!(post(b, &app.url("/account/phone"), &done).await.0, 400);
    r
}

#[tokio::test]
async fn phone_numbers_are_verified_by_sms_after_a_proof_of_work() {
    let app = TestApp::spawn_with(|s| s.accounts.pow_difficulty = 8).await;
    app.create_user("sam@example.com", PW).await;
    let (b, csrf) = signed_in(&app, "sam@example.com").await;
    let (status, html) = phone_flow(&app, &b).await;
    assert_eq!(status, 200);
    assert!(html.contains("+33612345678"));
    let mut sms = Vec::new();
    for _ in 0..50 {
        sms = std::fs::read_dir(&app.settings.sms.outbox_dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".sms.json")).collect())
            .unwrap_or_default();
        if !sms.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let msg: serde_json::Value = serde_json::from_slice(&std::fs::read(&sms[0]).unwrap()).unwrap();
    assert_eq!(msg["to"], "+33612345678");
    let body = msg["body"].as_str().unwrap();
    let code: String = body
        .split_whitespace()
        .find(|w| w.trim_end_matches('.').len() == 6 && w.chars().take(6).all(|c| c.is_ascii_digit()))
        .unwrap()[..6]
        .to_owned();
    assert_eq!(post(&b, &app.url("/account/phone/verify"), &[("csrf_token", &csrf), ("code", "999999x")]).await.0, 400);
    let (status, html) = post(&b, &app.url("/account/phone/verify"), &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"notice\""));
    let u = app.state.accounts.user_by_email("sam@example.com").await.unwrap().unwrap();
    assert_eq!(u.phone_number.as_deref(), Some("+33612345678"));
    assert!(u.phone_number_verified);
    assert_eq!(
        post(&b, &app.url("/account/phone/verify"), &[("csrf_token", &csrf), ("code", &code)]).await.0,
        400,
        "once"
    );
}

/// What the gateway received: the Authorization header and the JSON body.
type Received = (Option<String>, serde_json::Value);

#[tokio::test]
async fn the_http_sms_driver_posts_json_to_the_gateway() {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    let gateway = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |h: axum::http::HeaderMap, axum::Json(v): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                let auth = h.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                sink.lock().unwrap().push((auth, v));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gateway).await.unwrap() });
    let app = TestApp::spawn_with(|s| {
        s.accounts.pow_difficulty = 8;
        s.sms.driver = guichet::config::SmsDriver::Http;
        s.sms.http_url = url.clone();
        s.sms.http_token = "gateway-token".into();
    })
    .await;
    app.create_user("hugo@example.com", PW).await;
    let (b, _) = signed_in(&app, "hugo@example.com").await;
    assert_eq!(phone_flow(&app, &b).await.0, 200);
    for _ in 0..50 {
        if !got.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (auth, v) = got.lock().unwrap()[0].clone();
    assert_eq!(auth.as_deref(), Some("Bearer gateway-token"));
    assert_eq!(v["to"], "+33612345678");
    assert!(v["body"].as_str().unwrap().contains("Guichet"));
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_or_all_others() {
    let app = TestApp::spawn().await;
    app.create_user("sue@example.com", PW).await;
    app.create_user("zed@example.com", PW).await;
    assert_eq!(app.login(&app.browser(), "sue@example.com", "wrong password here", None).await.status(), 401);
    let (me, csrf) = signed_in(&app, "sue@example.com").await;
    let (second, _) = signed_in(&app, "sue@example.com").await;
    let (third, _) = signed_in(&app, "sue@example.com").await;
    let (zed, zed_csrf) = signed_in(&app, "zed@example.com").await;
    let html = page(&me, &app.url("/account/sessions")).await.1;
    assert_eq!(html.matches("data-sid-hash=").count(), 3);
    assert!(html.contains("(this device)"));
    assert!(html.contains("class=\"failed\""), "the failed sign-in is in the history");
    let handles: Vec<String> =
        html.split("name=\"session\" value=\"").skip(1).map(|s| s.split('"').next().unwrap().to_owned()).collect();
    assert_eq!(handles.len(), 2, "no revoke button on this session");
    // Another user cannot end them.
    let (status, _) =
        post(&zed, &app.url("/account/sessions/revoke"), &[("csrf_token", &zed_csrf), ("session", &handles[0])]).await;
    assert_eq!(status, 400);
    assert_eq!(page(&second, &app.url("/account")).await.0, 200);
    assert_eq!(page(&third, &app.url("/account")).await.0, 200);
    // One...
    let (status, _) =
        post(&me, &app.url("/account/sessions/revoke"), &[("csrf_token", &csrf), ("session", &handles[0])]).await;
    assert_eq!(status, 200);
    let alive = [page(&second, &app.url("/account")).await.0, page(&third, &app.url("/account")).await.0];
    assert_eq!(alive.iter().filter(|s| **s == 303).count(), 1);
    // ... then all others.
    let (status, _) = post(&me, &app.url("/account/sessions/revoke-others"), &[("csrf_token", &csrf)]).await;
    assert_eq!(status, 200);
    assert_eq!(page(&second, &app.url("/account")).await.0, 303);
    assert_eq!(page(&third, &app.url("/account")).await.0, 303);
    assert_eq!(page(&me, &app.url("/account")).await.0, 200);
    assert_eq!(page(&zed, &app.url("/account")).await.0, 200);
}

#[tokio::test]
async fn export_holds_everything_and_no_secret() {
    let app = TestApp::spawn().await;
    app.create_user("xena@example.com", PW).await;
    assert_eq!(app.login(&app.browser(), "xena@example.com", "not the password", None).await.status(), 401);
    let (b, _) = signed_in(&app, "xena@example.com").await;
    let res = b.get(app.url("/account/export")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let raw = res.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["profile"]["email"], "xena@example.com");
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    let history = v["login_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["success"], false);
    for k in ["consents", "invitations", "resources", "memberships"] {
        assert!(v[k].is_array(), "{k}");
    }
    assert!(!raw.contains("argon2") && !raw.contains("password_hash"));
    assert_eq!(app.browser().get(app.url("/account/export")).send().await.unwrap().status(), 303, "signed in only");
}

#[tokio::test]
async fn deletion_needs_a_recent_sign_in_and_tells_relying_apps() {
    let app = TestApp::spawn().await;
    let dan = app.create_user("dan@example.com", PW).await;
    let (bc_url, got) = crate::oidc_logout::logout_receiver(0).await;
    let mut reg = registration("Orders");
    reg.backchannel_logout_uri = Some(bc_url);
    let rp = app.register(reg).await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "dan@example.com", &[("scope", "openid offline_access")]).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let csrf = form_value(&page(&b, &app.url("/account")).await.1, "csrf_token").unwrap();
    // Six minutes later: sign in again first.
    app.clock.advance(6 * 60);
    let res = b.get(app.url("/account/delete")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().contains("prompt=login"));
    let (status, _) =
        post(&b, &app.url("/account/delete"), &[("csrf_token", &csrf), ("confirm_email", "dan@example.com")]).await;
    assert_eq!(status, 303);
    assert!(app.state.accounts.user_by_email("dan@example.com").await.unwrap().is_some());
    // Signing in again (prompt=login shows the form to a signed-in user) leads back here.
    let login = page(&b, &app.url("/login?prompt=login&return_to=%2Faccount%2Fdelete")).await.1;
    let csrf = form_value(&login, "csrf_token").unwrap();
    let res = b
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "dan@example.com"),
            ("password", PW),
            ("return_to", "/account/delete"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/account/delete");
    let html = page(&b, &app.url("/account/delete")).await.1;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let (status, html) =
        post(&b, &app.url("/account/delete"), &[("csrf_token", &csrf), ("confirm_email", "DAN@example.com")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"deleted\""));
    crate::oidc_logout::wait_for(&got, 1).await;
    assert_eq!(userinfo_status(&app, &at).await, 401);
    let res = app
        .token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())])
        .await;
    assert_eq!(res.status(), 400, "offline tokens die with the account");
    assert_eq!(app.login(&app.browser(), "dan@example.com", PW, None).await.status(), 401);
    assert!(app.mails(1).await.iter().any(|m| m.contains("Your account was deleted")));
    // The audit log keeps a pseudonym, nothing that names the person.
    let audit = app.state.stores.journal.audit_events(10).await.unwrap();
    let deleted = audit.iter().find(|e| e.action == "account.deleted").unwrap();
    assert!(deleted.subject.starts_with("anon-"));
    let raw = format!("{audit:?}");
    assert!(!raw.contains("dan@example.com") && !raw.contains(&dan.id.to_string()));
}

#[tokio::test]
async fn suspension_ends_every_session_and_refuses_sign_in() {
    let app = TestApp::spawn().await;
    let u = app.create_user("tim@example.com", PW).await;
    let (b, _) = signed_in(&app, "tim@example.com").await;
    app.state.accounts.set_suspended(u.id, true, "test").await.unwrap();
    assert_eq!(page(&b, &app.url("/account")).await.0, 303);
    let res = app.login(&app.browser(), "tim@example.com", PW, None).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("suspended"));
    app.state.accounts.set_suspended(u.id, false, "test").await.unwrap();
    assert_eq!(app.login(&app.browser(), "tim@example.com", PW, None).await.status(), 303);
}
