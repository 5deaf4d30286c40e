//! Links sent by mail, each tried twice, concurrently, expired, from another browser and for
//! another account: verification, reset, emailed sign-in, activation, invitations; and who may
//! register.

use crate::helpers::{form_value, link_in, TestApp};

const PW: &str = "a long and uncommon passphrase";

async fn page(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn csrf_of(b: &reqwest::Client, url: &str) -> String {
    form_value(&page(b, url).await.1, "csrf_token").expect("csrf_token")
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(url).form(form).send().await.unwrap()
}

async fn register(app: &TestApp, b: &reqwest::Client, email: &str, password: &str) -> u16 {
    let csrf = csrf_of(b, &app.url("/register")).await;
    let form = [("csrf_token", csrf.as_str()), ("email", email), ("password", password), ("accept_terms", "yes")];
    post(b, &app.url("/register"), &form).await.status().as_u16()
}

async fn request_reset(app: &TestApp, b: &reqwest::Client, email: &str) {
    let csrf = csrf_of(b, &app.url("/password/reset")).await;
    let res = post(b, &app.url("/password/reset"), &[("csrf_token", csrf.as_str()), ("email", email)]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn verification_links_expire_and_a_second_registration_replaces_the_first() {
    let app = TestApp::spawn().await;
    let b = app.browser();
    assert_eq!(register(&app, &b, "vera@example.com", PW).await, 200);
    let first = link_in(&app.mails(1).await[0], &app.url("/register/verify?token=")).unwrap();
    // A stranger registered first? The owner registers again: a new link, with their password.
    let mine = "the owner's own long passphrase";
    assert_eq!(register(&app, &app.browser(), "vera@example.com", mine).await, 200);
    let second = link_in(&app.mails(2).await[1], &app.url("/register/verify?token=")).unwrap();
    assert_ne!(first, second);
    assert_eq!(page(&b, &first).await.0, 400, "the first link died");
    let (status, html) = page(&b, &second).await;
    assert_eq!(status, 200);
    let csrf = form_value(&html, "csrf_token").unwrap();
    let res = post(&b, &app.url("/register/verify"), &[("csrf_token", &csrf), ("token", &token_of(&second))]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.login(&app.browser(), "vera@example.com", PW, None).await.status(), 401, "not the first password");
    assert_eq!(app.login(&app.browser(), "vera@example.com", mine, None).await.status(), 303);

    // Expiry: 24 h.
    assert_eq!(register(&app, &b, "late@example.com", PW).await, 200);
    let link = link_in(&app.mails(3).await[2], &app.url("/register/verify?token=")).unwrap();
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(page(&b, &link).await.0, 400);
}

#[tokio::test]
async fn reset_links_are_single_use_under_concurrency_and_expire() {
    let app = TestApp::spawn().await;
    app.create_user("rose@example.com", PW).await;
    let b = app.browser();
    request_reset(&app, &b, "rose@example.com").await;
    let link = link_in(&app.mails(1).await[0], &app.url("/password/reset/confirm?token=")).unwrap();
    let csrf = csrf_of(&b, &link).await;
    let token = token_of(&link);
    let url = app.url("/password/reset/confirm");
    let form = [("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", "first new long passphrase")];
    let form2 = [("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", "second new long passphrase")];
    let (a, z) = tokio::join!(post(&b, &url, &form), post(&b, &url, &form2));
    let mut codes = [a.status().as_u16(), z.status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 400], "one wins");
    // A weak password is refused on the form, the link stays usable.
    request_reset(&app, &b, "rose@example.com").await;
    let link = link_in(app.mails(3).await.last().unwrap(), &app.url("/password/reset/confirm?token=")).unwrap();
    let csrf = csrf_of(&b, &link).await;
    let weak = [("csrf_token", csrf.as_str()), ("token", &token_of(&link)), ("password", "short")];
    let res = post(&b, &url, &weak).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("at least 8 characters"));
    // An hour later it is dead.
    app.clock.advance(3601);
    assert_eq!(page(&b, &link).await.0, 400);
    // Notices went out for the reset that happened.
    assert!(app.mails(3).await.iter().any(|m| m.contains("Your password was changed")));
}

#[tokio::test]
async fn issuing_links_is_limited_per_account() {
    let app = TestApp::spawn().await;
    app.create_user("flood@example.com", PW).await;
    let b = app.browser();
    for _ in 0..8 {
        request_reset(&app, &b, "flood@example.com").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.mails(5).await.len(), 5, "at most accounts.issue_per_hour links an hour");
}

#[tokio::test]
async fn an_emailed_sign_in_link_works_once_in_the_browser_that_asked() {
    let app = TestApp::spawn().await;
    app.create_user("lina@example.com", PW).await;
    let asking = app.browser();
    let csrf = csrf_of(&asking, &app.url("/login?return_to=%2Faccount%2Fsessions")).await;
    let res = post(
        &asking,
        &app.url("/login/link"),
        &[("csrf_token", csrf.as_str()), ("email", "lina@example.com"), ("return_to", "/account/sessions")],
    )
    .await;
    assert!(res.text().await.unwrap().contains("id=\"link-sent\""));
    let link = link_in(&app.mails(1).await[0], &app.url("/login/link?token=")).unwrap();
    // Another browser: refused, and the link is not spent.
    let other = app.browser();
    other.get(app.url("/login")).send().await.unwrap();
    assert_eq!(other.get(&link).send().await.unwrap().status(), 403);
    assert_eq!(app.browser().get(&link).send().await.unwrap().status(), 403, "no session at all");
    let res = asking.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account/sessions");
    let (status, html) = page(&asking, &app.url("/account/sessions")).await;
    assert_eq!(status, 200);
    assert!(html.contains(">email<"), "the history names the method");
    assert_eq!(asking.get(&link).send().await.unwrap().status(), 400, "used once");
    // Unknown address: the same answer, no mail; expiry after 15 minutes.
    let b = app.browser();
    let csrf = csrf_of(&b, &app.url("/login")).await;
    post(&b, &app.url("/login/link"), &[("csrf_token", csrf.as_str()), ("email", "nobody@example.com")]).await;
    post(&b, &app.url("/login/link"), &[("csrf_token", csrf.as_str()), ("email", "lina@example.com")]).await;
    let link = link_in(&app.mails(2).await[1], &app.url("/login/link?token=")).unwrap();
    app.clock.advance(15 * 60 + 1);
    assert_eq!(b.get(&link).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn an_operator_created_account_is_activated_by_its_owner() {
    let app = TestApp::spawn().await;
    let (user, link) =
        app.state.accounts.create_by_operator("olga@example.com", Some("Olga"), None, false).await.unwrap();
    assert_eq!(user.status.as_str(), "pending");
    let link = link.unwrap();
    assert_eq!(link_in(&app.mails(1).await[0], &app.url("/activate?token=")).as_deref(), Some(link.as_str()));
    assert_eq!(app.login(&app.browser(), "olga@example.com", PW, None).await.status(), 401, "no password yet");
    // A new link kills the old one.
    let (_, relink) = app.state.accounts.activation_link("olga@example.com").await.unwrap();
    let b = app.browser();
    assert_eq!(page(&b, &link).await.0, 400);
    let csrf = csrf_of(&b, &relink).await;
    let res =
        post(&b, &app.url("/activate"), &[("csrf_token", &csrf), ("token", &token_of(&relink)), ("password", PW)])
            .await;
    assert_eq!(res.status(), 303, "signed in");
    assert_eq!(page(&b, &app.url("/account")).await.0, 200);
    assert_eq!(page(&app.browser(), &relink).await.0, 400, "used once");
    assert_eq!(app.login(&app.browser(), "olga@example.com", PW, None).await.status(), 303);
    assert!(app.state.accounts.activation_link("olga@example.com").await.is_err(), "active: no more links");
}

#[tokio::test]
async fn invitations_for_existing_accounts_other_accounts_revoked_and_expired() {
    let app = TestApp::spawn().await;
    app.create_user("eve@example.com", PW).await;
    app.create_user("mallory@example.com", PW).await;
    let accounts = &app.state.accounts;
    let en = guichet::i18n::Lang::En;
    let (_, link) = accounts.invite("eve@example.com", None, None, Some("gallery:7"), None, en).await.unwrap();
    // Signed in as somebody else: refused, nothing attached.
    let b = app.browser();
    assert_eq!(app.login(&b, "mallory@example.com", PW, None).await.status(), 303);
    let csrf = csrf_of(&b, &link).await;
    let res = post(&b, &app.url("/invite"), &[("csrf_token", &csrf), ("token", &token_of(&link))]).await;
    assert_eq!(res.status(), 409);
    // Not signed in: to the sign-in page, then back to the invitation.
    let b = app.browser();
    let csrf = csrf_of(&b, &link).await;
    let res = post(&b, &app.url("/invite"), &[("csrf_token", &csrf), ("token", &token_of(&link))]).await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/login?") && to.contains("login_hint=eve%40example.com"), "{to}");
    assert_eq!(app.login(&b, "eve@example.com", PW, None).await.status(), 303);
    let csrf = csrf_of(&b, &link).await;
    let res = post(&b, &app.url("/invite"), &[("csrf_token", &csrf), ("token", &token_of(&link))]).await;
    assert_eq!(res.status(), 303);
    let eve = accounts.user_by_email("eve@example.com").await.unwrap().unwrap();
    assert_eq!(app.state.stores.accounts.resources_of(eve.id).await.unwrap(), vec!["gallery:7".to_owned()]);
    assert_eq!(page(&b, &link).await.0, 400, "accepted: used");

    // Revoked, then expired.
    let (inv, link) = accounts.invite("new1@example.com", None, None, None, None, en).await.unwrap();
    assert!(accounts.revoke_invitation(inv.id).await.unwrap());
    assert_eq!(page(&app.browser(), &link).await.0, 400);
    let (inv, link) = accounts.invite("new2@example.com", None, None, None, None, en).await.unwrap();
    // Resent: the old link dies, the new one works.
    let (_, relink) = accounts.resend_invitation(inv.id, en).await.unwrap();
    assert_eq!(page(&app.browser(), &link).await.0, 400);
    assert_eq!(page(&app.browser(), &relink).await.0, 200);
    app.clock.advance(7 * 24 * 3600 + 1);
    assert_eq!(page(&app.browser(), &relink).await.0, 400);
}

#[tokio::test]
async fn registration_can_be_invite_only_or_closed() {
    for mode in ["invite_only", "closed"] {
        let app = TestApp::spawn_with(|s| {
            s.registration = Some(serde_json::from_value(serde_json::json!(mode)).unwrap());
        })
        .await;
        let b = app.browser();
        let (status, html) = page(&b, &app.url("/register")).await;
        assert_eq!(status, 403, "{mode}");
        assert!(html.contains("id=\"register-closed\""));
        let login = page(&b, &app.url("/login")).await.1;
        assert!(!login.contains("id=\"register-link\""), "no link to a closed door");
        let csrf = form_value(&login, "csrf_token").unwrap();
        let form =
            [("csrf_token", csrf.as_str()), ("email", "x@example.com"), ("password", PW), ("accept_terms", "yes")];
        assert_eq!(post(&b, &app.url("/register"), &form).await.status(), 403);
        assert!(app.state.accounts.user_by_email("x@example.com").await.unwrap().is_none());
    }
    // Open: terms must be accepted; nothing is written otherwise.
    let app = TestApp::spawn().await;
    let b = app.browser();
    let csrf = csrf_of(&b, &app.url("/register")).await;
    let res =
        post(&b, &app.url("/register"), &[("csrf_token", csrf.as_str()), ("email", "t@example.com"), ("password", PW)])
            .await;
    assert_eq!(res.status(), 400);
    assert!(app.state.accounts.user_by_email("t@example.com").await.unwrap().is_none());
    let forged = [("csrf_token", "forged"), ("email", "t@example.com"), ("password", PW), ("accept_terms", "yes")];
    assert_eq!(post(&b, &app.url("/register"), &forged).await.status(), 403);
}
