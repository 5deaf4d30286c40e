//! /authorize rules: validation order, PKCE, prompt, max_age, hints, consent, form_post.

use guichet::domain::ClientAuthMethod;

use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{auth_url, exchange, get_code, redirect_params, registration, Rp, PW, REDIRECT};

async fn setup() -> (TestApp, Rp) {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.com", PW).await;
    let rp = app.register(registration("Gallery")).await;
    (app, rp)
}

#[tokio::test]
async fn bad_client_or_redirect_uri_is_a_page_never_a_redirect() {
    let (app, rp) = setup().await;
    let b = app.browser();
    for extra in [
        vec![("redirect_uri", "https://evil.example.com/cb")],
        vec![("redirect_uri", "https://rp.example.com/cb/extra")],
        vec![("redirect_uri", "")],
        vec![("client_id", "nope")],
        vec![("client_id", "")],
    ] {
        let (url, _) = auth_url(&app, &rp, &extra);
        let res = b.get(url).header("accept", "text/html").send().await.unwrap();
        assert_eq!(res.status(), 400, "{extra:?}");
        assert!(res.headers().get("location").is_none());
        assert!(res.text().await.unwrap().contains("<h1>"), "an HTML error page");
    }
}

#[tokio::test]
async fn later_errors_go_back_to_the_client_with_state_and_iss() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("response_type", "")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "code id_token")], "unsupported_response_type"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("code_challenge", "short"), ("code_challenge_method", "S256")], "invalid_request"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("claims", "{not json")], "invalid_request"),
        (&[("id_token_hint", "a.b.c")], "invalid_request"),
        (&[("request", "eyJ.x.y")], "request_not_supported"),
        (&[("request_uri", "https://rp.example.com/r")], "request_uri_not_supported"),
        (&[("response_mode", "fragment")], "invalid_request"),
        (&[("prompt", "none")], "login_required"),
    ];
    for (extra, code) in cases {
        let (url, _) = auth_url(&app, &rp, extra);
        let res = b.get(url).send().await.unwrap();
        let p = redirect_params(&res);
        assert_eq!(p.get("error").map(String::as_str), Some(*code), "{extra:?}: {p:?}");
        assert_eq!(p["state"], "st4te");
        assert_eq!(p["iss"], app.base);
    }
}

#[tokio::test]
async fn public_clients_must_use_pkce() {
    let app = TestApp::spawn().await;
    let mut reg = registration("SPA");
    reg.auth_method = ClientAuthMethod::None;
    let rp = app.register(reg).await;
    assert!(rp.secret.is_none());
    let (url, _) = auth_url(&app, &rp, &[("code_challenge", ""), ("code_challenge_method", "")]);
    let res = app.browser().get(url).send().await.unwrap();
    assert_eq!(redirect_params(&res)["error"], "invalid_request");
    // With PKCE it works, and the token request needs no secret.
    app.create_user("spa@example.com", PW).await;
    let b = app.browser();
    let (code, verifier) = get_code(&app, &b, &rp, "spa@example.com", &[]).await;
    let res = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", rp.client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn prompt_none_answers_without_pages() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let (code, _) = get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    assert!(!code.is_empty());
    // Signed in now: prompt=none gives a code straight away.
    let (url, _) = auth_url(&app, &rp, &[("prompt", "none")]);
    let p = redirect_params(&b.get(url).send().await.unwrap());
    assert!(p.contains_key("code"), "{p:?}");
    // A third-party client without consent: consent_required.
    let mut reg = registration("Third party");
    reg.first_party = false;
    let third = app.register(reg).await;
    let (url, _) = auth_url(&app, &third, &[("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "consent_required");
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_sign_in() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    let first = crate::oidc_helpers::claims(exchange(&app, &rp, &code, &v).await["id_token"].as_str().unwrap());

    // prompt=login: the login form again, though signed in.
    let (url, _) = auth_url(&app, &rp, &[("prompt", "login")]);
    let res = app.follow(&b, b.get(url.clone()).send().await.unwrap()).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(r#"action="/login""#));

    // max_age: a sign-in older than max_age needs a new one.
    app.clock.advance(120);
    let (url, _) = auth_url(&app, &rp, &[("max_age", "60")]);
    let res = app.follow(&b, b.get(url.clone()).send().await.unwrap()).await;
    assert_eq!(res.status(), 200, "login page");
    let (code, v) = get_code(&app, &b, &rp, "ana@example.com", &[("max_age", "60")]).await;
    let second = crate::oidc_helpers::claims(exchange(&app, &rp, &code, &v).await["id_token"].as_str().unwrap());
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64());
    assert_eq!(second["sid"], first["sid"], "the same user signing in again keeps the sign-in session");
    // A generous max_age does not ask again.
    let (url, _) = auth_url(&app, &rp, &[("max_age", "10000")]);
    assert!(redirect_params(&b.get(url).send().await.unwrap()).contains_key("code"));
    // max_age with prompt=none and an old sign-in: login_required.
    app.clock.advance(120);
    let (url, _) = auth_url(&app, &rp, &[("max_age", "60"), ("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "login_required");
}

#[tokio::test]
async fn login_hint_fills_the_form_and_id_token_hint_checks_the_user() {
    let (app, rp) = setup().await;
    app.create_user("bea@example.com", PW).await;
    let b = app.browser();
    let (url, _) = auth_url(&app, &rp, &[("login_hint", "ana@example.com"), ("ui_locales", "fr-CA fr en")]);
    let res = app.follow(&b, b.get(url).send().await.unwrap()).await;
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"value="ana@example.com""#), "email pre-filled");

    let (code, v) = get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    let ana_id_token = exchange(&app, &rp, &code, &v).await["id_token"].as_str().unwrap().to_owned();
    let (url, _) = auth_url(&app, &rp, &[("prompt", "none"), ("id_token_hint", &ana_id_token)]);
    assert!(redirect_params(&b.get(url).send().await.unwrap()).contains_key("code"));
    // Another browser signed in as bea, hinting ana: login_required with prompt=none.
    let b2 = app.browser();
    get_code(&app, &b2, &rp, "bea@example.com", &[]).await;
    let (url, _) = auth_url(&app, &rp, &[("prompt", "none"), ("id_token_hint", &ana_id_token)]);
    assert_eq!(redirect_params(&b2.get(url).send().await.unwrap())["error"], "login_required");
}

#[tokio::test]
async fn consent_is_asked_remembered_and_revocable() {
    let (app, _) = setup().await;
    let mut reg = registration("Partner billing");
    reg.first_party = false;
    let rp = app.register(reg).await;
    let b = app.browser();
    // Deny → access_denied.
    let (url, _) = auth_url(&app, &rp, &[]);
    let res = app.follow(&b, b.get(url.clone()).send().await.unwrap()).await;
    let html = res.text().await.unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let rt = form_value(&html, "return_to").unwrap();
    let res = b
        .post(app.url("/login"))
        .form(&[("email", "ana@example.com"), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
        .send()
        .await
        .unwrap();
    let res = app.follow(&b, res).await;
    let html = res.text().await.unwrap();
    assert!(html.contains("Partner billing") && html.contains("your email address"), "{html}");
    let res = app.decide(&b, &html, "/authorize/consent", "deny").await;
    assert_eq!(redirect_params(&res)["error"], "access_denied");
    // Allow → code; next time no consent page.
    let (url, _) = auth_url(&app, &rp, &[]);
    let res = app.authorize_as(&b, &url, "ana@example.com").await;
    let (code, _) = (redirect_params(&res)["code"].clone(), ());
    assert!(!code.is_empty());
    let (url, _) = auth_url(&app, &rp, &[]);
    assert!(redirect_params(&b.get(url).send().await.unwrap()).contains_key("code"), "consent remembered");
    // More scope than consented: asked again. prompt=consent: asked again.
    for extra in [vec![("scope", "openid email profile phone")], vec![("prompt", "consent")]] {
        let (url, _) = auth_url(&app, &rp, &extra);
        let res = app.follow(&b, b.get(url).send().await.unwrap()).await;
        assert_eq!(res.status(), 200, "{extra:?}");
        assert!(res.text().await.unwrap().contains(r#"action="/authorize/consent""#));
    }
    // Revoke from the account page: the app's tokens die and consent is asked again.
    let (url, v) = auth_url(&app, &rp, &[]);
    let code = redirect_params(&b.get(url).send().await.unwrap())["code"].clone();
    let tokens = exchange(&app, &rp, &code, &v).await;
    let home = b.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Partner billing"));
    let csrf = form_value(&home, "csrf_token").unwrap();
    let res = b
        .post(app.url("/account/consents/revoke"))
        .form(&[("csrf_token", csrf.as_str()), ("client_id", rp.client.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(crate::oidc_helpers::userinfo_status(&app, tokens["access_token"].as_str().unwrap()).await, 401);
    let rt = tokens["refresh_token"].as_str().unwrap();
    let res = app.token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(res.status(), 400);
    let (url, _) = auth_url(&app, &rp, &[("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "consent_required");
}

#[tokio::test]
async fn select_account_offers_the_current_account_or_another() {
    let (app, rp) = setup().await;
    let b = app.browser();
    get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    let (url, _) = auth_url(&app, &rp, &[("prompt", "select_account")]);
    let res = app.follow(&b, b.get(url).send().await.unwrap()).await;
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"action="/authorize/select""#) && html.contains("ana@example.com"));
    let res = app.decide(&b, &html, "/authorize/select", "continue").await;
    assert!(redirect_params(&res).contains_key("code"));
}

#[tokio::test]
async fn form_post_response_mode_posts_the_code_without_inline_script() {
    let (app, rp) = setup().await;
    let b = app.browser();
    get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    let (url, _) = auth_url(&app, &rp, &[("response_mode", "form_post")]);
    let res = b.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!csp.contains("unsafe-inline"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"<form id="form_post" method="post" action="{}">"#, REDIRECT.replace('/', "&#x2F;")))
    );
    assert!(form_value(&html, "code").is_some());
    assert_eq!(form_value(&html, "state").as_deref(), Some("st4te"));
    assert!(html.contains(r#"<script src="/static/form_post.js"></script>"#));
}

#[tokio::test]
async fn unknown_scopes_are_dropped_and_claims_follow_scope() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "ana@example.com", &[("scope", "email openid weird:scope")]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    assert_eq!(t["scope"], "email openid");
    let idt = crate::oidc_helpers::claims(t["id_token"].as_str().unwrap());
    assert_eq!(idt["email"], "ana@example.com");
    assert!(idt.get("name").is_none(), "no profile scope, no profile claims");
    assert_eq!(idt["nonce"], "n0nce");
    assert_eq!(idt["azp"], rp.client.client_id.as_str());
    assert_eq!(idt["amr"], serde_json::json!(["pwd"]));
    assert!(idt["sid"].is_string() && idt["acr"].is_string());
    // No nonce in the request: none in the token (code flow allows it).
    let (code, v) = get_code(&app, &b, &rp, "ana@example.com", &[("nonce", "")]).await;
    let idt = crate::oidc_helpers::claims(exchange(&app, &rp, &code, &v).await["id_token"].as_str().unwrap());
    assert!(idt.get("nonce").is_none());
    // claims parameter asks for one claim individually.
    let (code, v) = get_code(
        &app,
        &b,
        &rp,
        "ana@example.com",
        &[("scope", "openid"), ("claims", r#"{"id_token":{"email":{"essential":true}}}"#)],
    )
    .await;
    let idt = crate::oidc_helpers::claims(exchange(&app, &rp, &code, &v).await["id_token"].as_str().unwrap());
    assert_eq!(idt["email"], "ana@example.com");
}

#[tokio::test]
async fn max_age_zero_always_asks_again_and_duplicate_parameters_are_refused() {
    let (app, rp) = setup().await;
    let b = app.browser();
    get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    let (url, _) = auth_url(&app, &rp, &[("max_age", "0")]);
    let res = app.follow(&b, b.get(url).send().await.unwrap()).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(r#"action="/login""#), "max_age=0 is prompt=login");
    let (url, _) = auth_url(&app, &rp, &[("max_age", "0"), ("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "login_required");
    // A parameter twice, by GET or POST: refused (RFC 6749 §3.1), never a code.
    let (url, _) = auth_url(&app, &rp, &[]);
    let dup = format!("{url}&state=again");
    let res = b.get(&dup).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body = url::Url::parse(&dup).unwrap().query().unwrap().to_owned();
    let res = b
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // POST without duplicates works like GET.
    let (url, _) = auth_url(&app, &rp, &[]);
    let body = url::Url::parse(&url).unwrap().query().unwrap().to_owned();
    let res = b
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(redirect_params(&res).contains_key("code"));
}

#[tokio::test]
async fn a_user_suspended_after_sign_in_gets_no_more_codes() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    let user = app.state.stores.users.credentials_by_email("ana@example.com").await.unwrap().unwrap().user;
    app.state.stores.users.set_status(user.id, guichet::domain::UserStatus::Suspended).await.unwrap();
    let (url, _) = auth_url(&app, &rp, &[("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "login_required");
    let (url, _) = auth_url(&app, &rp, &[]);
    let res = app.follow(&b, b.get(url).send().await.unwrap()).await;
    assert!(res.text().await.unwrap().contains(r#"action="/login""#), "asked to sign in again");
    // Existing tokens stop working too.
    assert_eq!(crate::oidc_helpers::userinfo_status(&app, t["access_token"].as_str().unwrap()).await, 401);
    let res = app
        .token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())])
        .await;
    assert_eq!(res.status(), 400);
}
