//! Account lifecycle, black-box: registration and its emailed link, enumeration-safe answers,
//! single use under concurrency, reset ending every session, invitations, deletion.

use crate::helpers::{form_value, link_in, TestApp};

const PW: &str = "a long and uncommon passphrase";

async fn csrf_of(b: &reqwest::Client, url: &str) -> String {
    let html = b.get(url).send().await.unwrap().text().await.unwrap();
    form_value(&html, "csrf_token").expect("csrf_token")
}

async fn register(app: &TestApp, b: &reqwest::Client, email: &str) -> reqwest::Response {
    let csrf = csrf_of(b, &app.url("/register")).await;
    b.post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", PW),
            ("name", "Zoé"),
            ("accept_terms", "yes"),
            ("newsletter", "yes"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn register_verify_then_sign_in_and_the_link_works_once() {
    let app = TestApp::spawn().await;
    let b = app.browser();
    let res = register(&app, &b, "zoe@example.com").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"register-sent\""));
    // Not active before the link is used.
    assert_eq!(app.login(&b, "zoe@example.com", PW, None).await.status(), 403);
    let mail = app.mails(1).await.remove(0);
    assert!(mail.contains("multipart/alternative") && mail.contains("To: zoe@example.com"));
    let link = link_in(&mail, &app.url("/register/verify?token=")).expect("absolute link on the issuer");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let csrf = csrf_of(&b, &link).await;
    // Two concurrent submits of one link: exactly one succeeds.
    let post =
        || b.post(app.url("/register/verify")).form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())]).send();
    let (r1, r2) = tokio::join!(post(), post());
    let mut codes = [r1.unwrap().status().as_u16(), r2.unwrap().status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 400]);
    assert_eq!(app.login(&b, "zoe@example.com", PW, None).await.status(), 303);
    let account = b.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("id=\"account\"") && account.contains("zoe@example.com"));
    // A password: changing it asks for the current one.
    assert!(account.contains("id=\"current_password\"") && !account.contains("id=\"no-password\""));
    // The terms version and the newsletter consent are recorded with their time.
    let export: serde_json::Value = b.get(app.url("/account/export")).send().await.unwrap().json().await.unwrap();
    let p = &export["profile"];
    assert_eq!(p["terms_version"], "1");
    assert!(p["terms_accepted_at"].is_i64() && p["newsletter_consent_at"].is_i64(), "{p}");
    assert_eq!(p["email_verified"], true);
    assert_eq!(p["name"], "Zoé");
}

#[tokio::test]
async fn resources_from_invitations_are_released_under_scope_resources() {
    use crate::oidc_helpers::{claims, registration, tokens_for};
    let app = TestApp::spawn().await;
    let user = app.create_user("photo.client@example.com", crate::oidc_helpers::PW).await;
    let (_, link) = app
        .state
        .accounts
        .invite("photo.client@example.com", None, None, Some("gallery:123"), None, guichet::i18n::Lang::En)
        .await
        .unwrap();
    let token = link.split("token=").nth(1).unwrap();
    assert!(matches!(
        app.state.accounts.accept_invitation(token, Some(user.id)).await.unwrap(),
        guichet::accounts::InvitationOutcome::Attached
    ));
    let mut reg = registration("Galleries");
    reg.first_party = true;
    let rp = app.register(reg).await;
    let t = tokens_for(&app, &app.browser(), &rp, "photo.client@example.com", &[("scope", "openid resources")]).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["resources"], serde_json::json!(["gallery:123"]));
    let info: serde_json::Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["resources"], serde_json::json!(["gallery:123"]));
    let t = tokens_for(&app, &app.browser(), &rp, "photo.client@example.com", &[("scope", "openid")]).await;
    assert!(claims(t["id_token"].as_str().unwrap()).get("resources").is_none(), "only under scope resources");
}

#[tokio::test]
async fn answers_do_not_tell_whether_an_address_has_an_account() {
    let app = TestApp::spawn().await;
    app.create_user("known@example.com", PW).await;
    let b = app.browser();
    let known = register(&app, &b, "known@example.com").await;
    let unknown = register(&app, &b, "unknown@example.com").await;
    assert_eq!(known.status(), unknown.status());
    let strip = |s: String, e: &str| s.replace(e, "EMAIL");
    assert_eq!(
        strip(known.text().await.unwrap(), "known@example.com"),
        strip(unknown.text().await.unwrap(), "unknown@example.com")
    );
    let mails = app.mails(2).await;
    let to_known = mails.iter().find(|m| m.contains("To: known@example.com")).unwrap();
    assert!(to_known.contains("Someone tried to create an account"), "the owner is told instead");
    // Reset: same answer for both.
    let csrf = csrf_of(&b, &app.url("/password/reset")).await;
    let a = b
        .post(app.url("/password/reset"))
        .form(&[("csrf_token", csrf.as_str()), ("email", "known@example.com")])
        .send()
        .await
        .unwrap();
    let u = b
        .post(app.url("/password/reset"))
        .form(&[("csrf_token", csrf.as_str()), ("email", "nobody@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), u.status());
    assert!(a.text().await.unwrap().contains("id=\"reset-sent\""));
    // A common password is refused, the form says why.
    let csrf = csrf_of(&b, &app.url("/register")).await;
    let res = b
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "x@example.com"),
            ("password", "password123"),
            ("accept_terms", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("too common"));
}

#[tokio::test]
async fn a_reset_ends_a_live_session_elsewhere() {
    let app = TestApp::spawn().await;
    app.create_user("rita@example.com", PW).await;
    let elsewhere = app.browser();
    assert_eq!(app.login(&elsewhere, "rita@example.com", PW, None).await.status(), 303);
    assert_eq!(elsewhere.get(app.url("/account")).send().await.unwrap().status(), 200);
    let b = app.browser();
    let csrf = csrf_of(&b, &app.url("/password/reset")).await;
    b.post(app.url("/password/reset"))
        .form(&[("csrf_token", csrf.as_str()), ("email", "rita@example.com")])
        .send()
        .await
        .unwrap();
    let mail = app.mails(1).await.remove(0);
    let link = link_in(&mail, &app.url("/password/reset/confirm?token=")).unwrap();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let csrf = csrf_of(&b, &link).await;
    let new_pw = "another quite long passphrase";
    let res = b
        .post(app.url("/password/reset/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", new_pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"password-set\""));
    assert_eq!(elsewhere.get(app.url("/account")).send().await.unwrap().status(), 303, "the other session is over");
    // The link is spent; the old password is dead, the new one works.
    assert_eq!(b.get(&link).send().await.unwrap().status(), 400);
    assert_eq!(app.login(&app.browser(), "rita@example.com", PW, None).await.status(), 401);
    assert_eq!(app.login(&app.browser(), "rita@example.com", new_pw, None).await.status(), 303);
}

#[tokio::test]
async fn an_invitation_creates_the_account_and_signs_in_then_deletion_removes_it() {
    let app = TestApp::spawn().await;
    let (inv, link) = app
        .state
        .accounts
        .invite("client@example.com", Some("Client"), None, Some("gallery:123"), None, guichet::i18n::Lang::Fr)
        .await
        .unwrap();
    assert_eq!(inv.accepted_at, None);
    let mail = app.mails(1).await.remove(0);
    assert!(mail.contains("Subject: Vous") || mail.contains("Guichet"), "{mail}");
    let b = app.browser();
    let csrf = csrf_of(&b, &link).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let res = b
        .post(app.url("/invite"))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in at once");
    let account = b.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("client@example.com"));
    let export: serde_json::Value = b.get(app.url("/account/export")).send().await.unwrap().json().await.unwrap();
    assert_eq!(export["resources"], serde_json::json!(["gallery:123"]));
    // The link works once.
    assert_eq!(b.get(&link).send().await.unwrap().status(), 400);
    // No password yet: a first one needs no current password, only a recent sign-in.
    let csrf = form_value(&account, "csrf_token").unwrap();
    app.clock.advance(6 * 60);
    let first = [("csrf_token", csrf.as_str()), ("current_password", ""), ("password", "my very first passphrase")];
    let res = b.post(app.url("/account/password")).form(&first).send().await.unwrap();
    assert_eq!(res.status(), 303, "six minutes later: sign in again first");
    assert!(res.headers()["location"].to_str().unwrap().contains("prompt=login"));
    app.clock.advance(-6 * 60);
    let res = b.post(app.url("/account/password")).form(&first).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.login(&app.browser(), "client@example.com", "my very first passphrase", None).await.status(), 303);
    // Deletion: typed address, then gone.
    let page = b.get(app.url("/account/delete")).send().await.unwrap().text().await.unwrap();
    let csrf = form_value(&page, "csrf_token").unwrap();
    let wrong = b
        .post(app.url("/account/delete"))
        .form(&[("csrf_token", csrf.as_str()), ("confirm_email", "other@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let res = b
        .post(app.url("/account/delete"))
        .form(&[("csrf_token", csrf.as_str()), ("confirm_email", "client@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"deleted\""));
    assert!(app.state.accounts.user_by_email("client@example.com").await.unwrap().is_none());
}
