//! Password sign-in through the HTML form: the contract scripted clients rely on.

use guichet::crypto::SecretString;
use guichet::domain::UserStatus;

use crate::helpers::{cookie_value, form_value, set_cookies, TestApp};

#[tokio::test]
async fn login_page_is_a_plain_form_with_the_documented_fields() {
    let app = TestApp::spawn().await;
    let res = app.browser().get(app.url("/login")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<form method="post" action="/login">"#));
    assert!(html.contains(r#"name="email""#) && html.contains(r#"name="password""#));
    assert!(html.contains(r#"type="hidden" name="csrf_token""#));
    assert!(!html.contains("<script"), "no inline script on the sign-in page");
}

#[tokio::test]
async fn correct_password_signs_in_and_rotates_the_session() {
    let app = TestApp::spawn().await;
    app.create_user("Alice@Example.com", "correct horse battery").await;
    let browser = app.browser();
    let first = browser.get(app.url("/login")).send().await.unwrap();
    let before = cookie_value(&set_cookies(&first), "guichet_session").expect("anonymous session cookie");
    let csrf = form_value(&first.text().await.unwrap(), "csrf_token").unwrap();

    // Case and surrounding spaces do not matter for the email.
    let res = browser
        .post(app.url("/login"))
        .form(&[("email", "  alice@EXAMPLE.com "), ("password", "correct horse battery"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let cookies = set_cookies(&res);
    let after = cookie_value(&cookies, "guichet_session").expect("new session cookie");
    assert_ne!(before, after, "session id must change at sign-in");
    let session_cookie = cookies.iter().find(|c| c.starts_with("guichet_session=")).unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"));
    assert!(!session_cookie.contains("Secure"), "http issuer: no Secure flag");

    let home = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Alice@Example.com"));

    // The pre-login session id is dead: replaying it is anonymous.
    let old = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = old.get(app.url("/account")).header("cookie", format!("guichet_session={before}")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login"));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.create_user("bob@example.com", "correct horse battery").await;
    let browser = app.browser();
    let wrong = app.login(&browser, "bob@example.com", "not the password", None).await;
    let wrong_status = wrong.status();
    let wrong_body = wrong.text().await.unwrap().replace("bob@example.com", "EMAIL");
    let unknown = app.login(&browser, "nobody@example.com", "not the password", None).await;
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.unwrap().replace("nobody@example.com", "EMAIL");
    assert_eq!(wrong_status, 401);
    assert_eq!(unknown_status, 401);
    assert!(wrong_body.contains("Invalid email or password."));
    assert_eq!(wrong_body, unknown_body, "the two answers must not differ");
}

#[tokio::test]
async fn missing_or_wrong_csrf_token_is_rejected_and_nothing_happens() {
    let app = TestApp::spawn().await;
    app.create_user("carol@example.com", "correct horse battery").await;
    let browser = app.browser();
    let csrf = app.open_login(&browser).await;
    for (token, site) in [("", None), ("forged", None), (csrf.as_str(), Some("cross-site"))] {
        let mut req = browser.post(app.url("/login")).form(&[
            ("email", "carol@example.com"),
            ("password", "correct horse battery"),
            ("csrf_token", token),
        ]);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "token {token:?} site {site:?}");
        assert!(set_cookies(&res).is_empty(), "no session handed out");
    }
    // A form posted with no session at all (cookie-less client) is refused too.
    let bare = reqwest::Client::new();
    let res = bare
        .post(app.url("/login"))
        .form(&[("email", "carol@example.com"), ("password", "correct horse battery"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    // Still anonymous.
    assert_eq!(browser.get(app.url("/account")).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn malformed_posts_get_a_4xx_with_a_message() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let csrf = app.open_login(&browser).await;
    let res =
        browser.post(app.url("/login")).form(&[("csrf_token", csrf.as_str()), ("email", "")]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Enter your email address and your password."));
    let res =
        browser.post(app.url("/login")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(res.status(), 415);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "rendered by the one error renderer");
    let res = browser
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=%ZZ&&&password")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn inactive_accounts_cannot_sign_in() {
    let app = TestApp::spawn().await;
    app.create_user_with("pending@example.com", Some("correct horse battery"), UserStatus::Pending).await;
    app.create_user_with("suspended@example.com", Some("correct horse battery"), UserStatus::Suspended).await;
    app.create_user_with("nopassword@example.com", None, UserStatus::Pending).await;
    let browser = app.browser();
    let res = app.login(&browser, "pending@example.com", "correct horse battery", None).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("not activated"));
    let res = app.login(&browser, "suspended@example.com", "correct horse battery", None).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("suspended"));
    // No password at all: indistinguishable from a wrong password.
    let res = app.login(&browser, "nopassword@example.com", "anything at all", None).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn return_to_is_followed_only_for_local_paths() {
    let app = TestApp::spawn().await;
    app.create_user("dan@example.com", "correct horse battery").await;
    for (asked, expected) in
        [("/account?tab=1", "/account?tab=1"), ("https://evil.example/", "/"), ("//evil.example", "/")]
    {
        let browser = app.browser();
        let page =
            browser.get(app.url("/login")).query(&[("return_to", asked)]).send().await.unwrap().text().await.unwrap();
        let csrf = form_value(&page, "csrf_token").unwrap();
        let rt = form_value(&page, "return_to").unwrap();
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("email", "dan@example.com"),
                ("password", "correct horse battery"),
                ("csrf_token", &csrf),
                ("return_to", &rt),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], expected);
        // Forged hidden field: same rule.
        let browser = app.browser();
        let csrf = app.open_login(&browser).await;
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("email", "dan@example.com"),
                ("password", "correct horse battery"),
                ("csrf_token", &csrf),
                ("return_to", asked),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["location"], expected);
    }
}

#[tokio::test]
async fn logout_needs_a_post_with_csrf_and_ends_the_session() {
    let app = TestApp::spawn().await;
    app.create_user("erin@example.com", "correct horse battery").await;
    let browser = app.browser();
    assert_eq!(app.login(&browser, "erin@example.com", "correct horse battery", None).await.status(), 303);
    let page = browser.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(page.status(), 200, "GET shows a confirmation, it does not sign out");
    let csrf = form_value(&page.text().await.unwrap(), "csrf_token").unwrap();
    assert_eq!(browser.get(app.url("/account")).send().await.unwrap().status(), 200);
    let res = browser.post(app.url("/logout")).form(&[("csrf_token", "forged")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(browser.get(app.url("/account")).send().await.unwrap().status(), 200, "still signed in");
    let res = browser.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(set_cookies(&res).iter().any(|c| c.starts_with("guichet_session=;") && c.contains("Max-Age=0")));
    let res = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login"));
}

#[tokio::test]
async fn password_hash_is_upgraded_when_parameters_change() {
    let old = TestApp::spawn().await;
    old.create_user("frank@example.com", "correct horse battery").await;
    let stored = |app: &TestApp| {
        let users = app.state.stores.users.clone();
        async move { users.credentials_by_email("frank@example.com").await.unwrap().unwrap().password_hash.unwrap() }
    };
    let before = stored(&old).await;
    assert!(before.contains("m=1024,t=1,p=1"), "{before}");
    // Same database, new parameters.
    let mut settings = old.settings.clone();
    settings.password.argon2_memory_kib = 2048;
    settings.password.argon2_iterations = 2;
    let new = old.spawn_sibling_with(settings).await;
    let browser = new.browser();
    assert_eq!(new.login(&browser, "frank@example.com", "wrong password!", None).await.status(), 401);
    assert_eq!(stored(&new).await, before, "a failed attempt changes nothing");
    assert_eq!(new.login(&browser, "frank@example.com", "correct horse battery", None).await.status(), 303);
    let after = stored(&new).await;
    assert!(after.contains("m=2048,t=2,p=1"), "{after}");
    let hasher = guichet::crypto::PasswordHasher::new(&new.settings.password).unwrap();
    assert!(hasher.verify(Some(&after), &SecretString::new("correct horse battery")).await.unwrap().ok);
}
