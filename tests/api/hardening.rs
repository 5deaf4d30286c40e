//! The defects of the security review (issue "Hardening"), one test each, black-box over HTTP.
//! Numbers refer to the issue's list; docs/SPEC-COVERAGE.md maps them here.

use std::io::{Read, Write};
use std::time::Duration;

use guichet::domain::{ApplicationType, ClientAuthMethod, GrantType};
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::{self, JwtPayload};

use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{
    auth_url, claims, exchange, get_code, redirect_params, registration, tokens_for, userinfo_status, Rp, PW,
};

async fn setup() -> (TestApp, Rp) {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.com", PW).await;
    app.create_user("bob@example.com", PW).await;
    let rp = app.register(registration("Orders")).await;
    (app, rp)
}

/// A first-party client with a back-channel logout endpoint, and the logout tokens it receives.
async fn rp_with_backchannel_logout(app: &TestApp, name: &str) -> (Rp, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let (bc_url, got) = crate::oidc_logout::logout_receiver(0).await;
    let mut reg = registration(name);
    reg.backchannel_logout_uri = Some(bc_url);
    (app.register(reg).await, got)
}

async fn refresh(app: &TestApp, rp: &Rp, token: &str) -> (u16, serde_json::Value) {
    let res = app.token_request(rp, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await;
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Signs in through the form (no OIDC request) in `browser`, signed in already or not (the
/// form is at /login?prompt=login then, as "use another account" shows it).
async fn sign_in(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let page = browser.get(app.url("/login?prompt=login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = form_value(&page.text().await.unwrap(), "csrf_token").unwrap();
    let res = browser
        .post(app.url("/login"))
        .form(&[("email", email), ("password", PW), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "sign-in as {email}");
}

// 1. The claims parameter does not bypass consent.
#[tokio::test]
async fn claims_asked_by_name_need_consent() {
    let (app, _) = setup().await;
    let mut reg = registration("Third party");
    reg.first_party = false;
    let rp = app.register(reg).await;
    let b = app.browser();
    // The user consents to `openid` only.
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[("scope", "openid")]).await;
    assert!(claims(t["id_token"].as_str().unwrap()).get("email").is_none());

    let asked = r#"{"id_token":{"email":null},"userinfo":{"email":null}}"#;
    // prompt=none: no silent code for claims never consented to.
    let (url, _) = auth_url(&app, &rp, &[("scope", "openid"), ("claims", asked), ("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "consent_required");
    // Interactive: the consent page names the email address.
    let (url, _) = auth_url(&app, &rp, &[("scope", "openid"), ("claims", asked)]);
    let page = app.follow(&b, b.get(url).send().await.unwrap()).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"action="/authorize/consent""#), "consent page");
    assert!(html.contains("your email address"), "the consent page shows the claim asked for: {html}");
    // Denied: nothing released.
    let denied = app.decide(&b, &html, "/authorize/consent", "deny").await;
    assert_eq!(redirect_params(&denied)["error"], "access_denied");
    // Allowed: released, and remembered (prompt=none works afterwards).
    let (url, v) = auth_url(&app, &rp, &[("scope", "openid"), ("claims", asked)]);
    let res = app.authorize_as(&b, &url, "ana@example.com").await;
    let t = exchange(&app, &rp, &redirect_params(&res)["code"], &v).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["email"], "ana@example.com");
    let (url, _) = auth_url(&app, &rp, &[("scope", "openid"), ("claims", asked), ("prompt", "none")]);
    assert!(redirect_params(&b.get(url).send().await.unwrap()).contains_key("code"));
}

// 2. Signing in again: same user keeps the session; another user ends the previous one fully.
#[tokio::test]
async fn signing_in_again_never_orphans_the_previous_session() {
    let (app, _) = setup().await;
    let (rp, got) = rp_with_backchannel_logout(&app, "Billing").await;
    let b = app.browser();
    let first = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let first_sid = claims(first["id_token"].as_str().unwrap())["sid"].clone();

    // Ana signs in again (a second POST /login): same sid, her tokens keep working.
    app.clock.advance(5);
    sign_in(&app, &b, "ana@example.com").await;
    let second = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let id2 = claims(second["id_token"].as_str().unwrap());
    assert_eq!(id2["sid"], first_sid, "same user, same session");
    assert!(id2["auth_time"].as_i64() > claims(first["id_token"].as_str().unwrap())["auth_time"].as_i64());
    assert_eq!(userinfo_status(&app, first["access_token"].as_str().unwrap()).await, 200);

    // Bob signs in on the same browser: Ana's session ends everywhere.
    sign_in(&app, &b, "bob@example.com").await;
    assert_eq!(userinfo_status(&app, first["access_token"].as_str().unwrap()).await, 401);
    assert_eq!(userinfo_status(&app, second["access_token"].as_str().unwrap()).await, 401);
    let (status, body) = refresh(&app, &rp, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let tokens = crate::oidc_logout::wait_for(&got, 1).await;
    assert_eq!(claims(&tokens[0])["sid"], first_sid, "back-channel logout for the replaced session");
    // Bob's own sign-in works and has a session of its own.
    let bob = tokens_for(&app, &b, &rp, "bob@example.com", &[]).await;
    assert_ne!(claims(bob["id_token"].as_str().unwrap())["sid"], first_sid);
}

// 3. prompt=login / max_age cannot be skipped by resuming from another browser or at once.
#[tokio::test]
async fn fresh_sign_in_cannot_be_skipped() {
    let (app, rp) = setup().await;
    let b = app.browser();
    sign_in(&app, &b, "ana@example.com").await;

    // Started without a cookie, resumed by the signed-in browser: refused.
    let stranger = app.browser();
    let (url, _) = auth_url(&app, &rp, &[("prompt", "login"), ("max_age", "0")]);
    let res = stranger.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let login = res.headers()["location"].to_str().unwrap().to_owned();
    let return_to: String = url::Url::parse(&app.url(&login))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let resumed = b.get(app.url(&return_to)).send().await.unwrap();
    assert_eq!(resumed.status(), 403, "an interaction belongs to the browser that started it");
    assert!(resumed.headers().get("location").is_none());

    // Same browser, prompt=login right after signing in (same second): resuming without
    // signing in shows the form again, never a code.
    let (url, _) = auth_url(&app, &rp, &[("prompt", "login")]);
    let res = b.get(url).send().await.unwrap();
    let login = res.headers()["location"].to_str().unwrap().to_owned();
    let return_to: String = url::Url::parse(&app.url(&login))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let res = app.follow(&b, b.get(app.url(&return_to)).send().await.unwrap()).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(r#"action="/login""#), "the sign-in form, not a code");
    // max_age=0 likewise, and a sign-in during the interaction satisfies it.
    let (url, v) = auth_url(&app, &rp, &[("max_age", "0")]);
    let res = app.authorize_as(&b, &url, "ana@example.com").await;
    let t = exchange(&app, &rp, &redirect_params(&res)["code"], &v).await;
    assert!(claims(t["id_token"].as_str().unwrap())["auth_time"].as_i64().is_some());
}

// 4. Parallel guesses get no more tries than sequential ones.
#[tokio::test]
async fn parallel_wrong_passwords_respect_the_allowance() {
    let app = TestApp::spawn().await;
    app.create_user("eve@example.com", PW).await;
    let allowance = app.settings.login_throttle.per_account_ip;
    let mut forms = Vec::new();
    for _ in 0..40 {
        let b = app.browser();
        let csrf = app.open_login(&b).await;
        forms.push((b, csrf));
    }
    let url = app.url("/login");
    let tasks: Vec<_> = forms
        .into_iter()
        .map(|(b, csrf)| {
            let url = url.clone();
            tokio::spawn(async move {
                b.post(url)
                    .form(&[("email", "eve@example.com"), ("password", "wrong guess"), ("csrf_token", &csrf)])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(wrong as i64 <= allowance + 1, "{wrong} passwords were checked: {statuses:?}");
    assert_eq!(wrong + throttled, 40, "{statuses:?}");
}

// 5. Loopback redirect URIs: only the port may vary.
#[tokio::test]
async fn loopback_redirect_uris_are_not_normalised() {
    let app = TestApp::spawn().await;
    let mut reg = registration("Desktop app");
    reg.application_type = ApplicationType::Native;
    reg.auth_method = ClientAuthMethod::None;
    reg.redirect_uris = vec!["http://127.0.0.1/cb".into()];
    let rp = app.register(reg).await;
    let b = app.browser();
    let ok = |uri: &str| {
        let (u, _) = auth_url(&app, &rp, &[("redirect_uri", uri)]);
        u
    };
    let res = b.get(ok("http://127.0.0.1:51234/cb")).send().await.unwrap();
    assert_eq!(res.status(), 303, "any port");
    for bad in [
        "http://127.1:51234/cb",
        "http://2130706433:51234/cb",
        "http://0x7f000001:51234/cb",
        "http://127.0.0.1:51234/x/../cb",
        "HTTP://127.0.0.1:51234/cb",
        "http://127.0.0.1:51234/c\tb",
        "http://user@127.0.0.1:51234/cb",
        "http://127.0.0.1:51234/cb#frag",
    ] {
        let res = b.get(ok(bad)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad:?} must be refused on a page");
    }
}

fn assertion_for(key: &josekit::jwk::Jwk, client_id: &str, aud: Vec<&str>, jti: &str, kid: &str) -> String {
    let mut h = JwsHeader::new();
    h.set_token_type("JWT");
    h.set_key_id(kid);
    let mut p = JwtPayload::new();
    p.set_issuer(client_id);
    p.set_subject(client_id);
    p.set_audience(aud);
    p.set_jwt_id(jti);
    let now = std::time::SystemTime::now();
    p.set_issued_at(&now);
    p.set_expires_at(&(now + Duration::from_secs(60)));
    // josekit takes the kid from the key: give the key the kid wanted.
    let mut key = key.clone();
    key.set_key_id(kid);
    jwt::encode_with_signer(&p, &h, &ES256.signer_from_jwk(&key).unwrap()).unwrap()
}

async fn client_credentials_with(app: &TestApp, assertion: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn signed_client(jwks_uri: Option<String>, jwks: Option<serde_json::Value>) -> guichet::oidc::clients::Registration {
    let mut reg = registration("Signed client");
    reg.auth_method = ClientAuthMethod::PrivateKeyJwt;
    reg.jwks = jwks;
    reg.jwks_uri = jwks_uri;
    reg.grant_types = vec![GrantType::ClientCredentials];
    reg.redirect_uris = vec![];
    reg
}

// 6. private_key_jwt: the issuer or the token endpoint, and nothing else.
#[tokio::test]
async fn private_key_jwt_audience_is_the_issuer_or_token_endpoint_only() {
    let app = TestApp::spawn().await;
    let (key, jwks) = crate::oidc_token::es256_client_key();
    let rp = app.register(signed_client(None, Some(jwks))).await;
    let id = rp.client.client_id.to_string();
    let token = app.url("/token");
    assert_eq!(client_credentials_with(&app, &assertion_for(&key, &id, vec![&app.base], "a1", "rp-key-1")).await, 200);
    assert_eq!(client_credentials_with(&app, &assertion_for(&key, &id, vec![&token], "a2", "rp-key-1")).await, 200);
    let userinfo = app.url("/userinfo");
    for (jti, aud) in
        [("a3", vec![app.base.as_str(), "https://other.example.com"]), ("a4", vec![userinfo.as_str()]), ("a5", vec![])]
    {
        assert_eq!(
            client_credentials_with(&app, &assertion_for(&key, &id, aud.clone(), jti, "rp-key-1")).await,
            401,
            "aud {aud:?}"
        );
    }
}

// 7. Unauthenticated requests cannot make Guichet refetch a client's jwks_uri at will.
#[tokio::test]
async fn jwks_uri_is_refetched_only_for_an_unknown_kid_once_a_minute() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let app = TestApp::spawn().await;
    let (key, jwks) = crate::oidc_token::es256_client_key();
    let fetches = Arc::new(AtomicUsize::new(0));
    let f = fetches.clone();
    let served = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let f = f.clone();
            let jwks = jwks.clone();
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let rp = app.register(signed_client(Some(format!("http://127.0.0.1:{port}/jwks")), None)).await;
    let id = rp.client.client_id.to_string();
    let good = assertion_for(&key, &id, vec![&app.base], "j1", "rp-key-1");
    assert_eq!(client_credentials_with(&app, &good).await, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // Bad signatures with the known kid: no refetch at all.
    let (other, _) = crate::oidc_token::es256_client_key();
    for i in 0..5 {
        let forged = assertion_for(&other, &id, vec![&app.base], &format!("f{i}"), "rp-key-1");
        assert_eq!(client_credentials_with(&app, &forged).await, 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "no refetch for a known kid");
    // Unknown kids: one refetch (the last fetch is over a minute old), then none for a minute.
    app.clock.advance(61);
    for i in 0..5 {
        let forged = assertion_for(&other, &id, vec![&app.base], &format!("u{i}"), &format!("kid-{i}"));
        assert_eq!(client_credentials_with(&app, &forged).await, 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "one refetch for unknown kids");
    app.clock.advance(61);
    let forged = assertion_for(&other, &id, vec![&app.base], "u9", "kid-9");
    assert_eq!(client_credentials_with(&app, &forged).await, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), 3, "a minute later, one more");
}

// 8. S256 challenges are exactly 43 base64url characters.
#[tokio::test]
async fn pkce_challenges_of_the_wrong_length_are_refused() {
    let (app, rp) = setup().await;
    let b = app.browser();
    for challenge in ["a".repeat(44), "a".repeat(128), "a".repeat(42), format!("{}=", "a".repeat(42))] {
        let (url, _) = auth_url(&app, &rp, &[("code_challenge", challenge.as_str())]);
        let p = redirect_params(&b.get(url).send().await.unwrap());
        assert_eq!(p["error"], "invalid_request", "{} characters", challenge.len());
    }
}

async fn introspect_as(app: &TestApp, rp: &Rp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth(rp.client.client_id.as_str(), rp.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

// 9. A client introspects its own tokens; others' only as a registered resource server.
#[tokio::test]
async fn introspection_is_limited_to_the_audience_and_resource_servers() {
    let (app, rp) = setup().await;
    let other = app.register(registration("Other app")).await;
    let mut api = registration("Orders API");
    api.introspection = true;
    let api = app.register(api).await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let at = t["access_token"].as_str().unwrap();
    let own: serde_json::Value = introspect_as(&app, &rp, at).await.json().await.unwrap();
    assert_eq!(own["active"], true);
    let foreign: serde_json::Value = introspect_as(&app, &other, at).await.json().await.unwrap();
    assert_eq!(foreign, serde_json::json!({ "active": false }), "nothing about another client's token");
    let rs: serde_json::Value = introspect_as(&app, &api, at).await.json().await.unwrap();
    assert_eq!(rs["active"], true, "a resource server may introspect");
    assert_eq!(rs["sub"], own["sub"]);
    // Refresh tokens: only their owner, even for a resource server.
    let rt = t["refresh_token"].as_str().unwrap();
    let rs: serde_json::Value = introspect_as(&app, &api, rt).await.json().await.unwrap();
    assert_eq!(rs["active"], false);
}

// 10a. First-party clients: prompt=consent is honoured, offline_access needs consent.
#[tokio::test]
async fn first_party_clients_ask_for_consent_when_told_to_and_for_offline_access() {
    let (app, rp) = setup().await;
    let b = app.browser();
    get_code(&app, &b, &rp, "ana@example.com", &[]).await;
    // Signed in, consent never asked for a first-party client...
    let (url, _) = auth_url(&app, &rp, &[("prompt", "none")]);
    assert!(redirect_params(&b.get(url).send().await.unwrap()).contains_key("code"));
    // ... unless prompt=consent,
    let (url, _) = auth_url(&app, &rp, &[("prompt", "consent")]);
    let page = app.follow(&b, b.get(url).send().await.unwrap()).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"action="/authorize/consent""#));
    // ... or offline access (OIDC Core §11).
    let (url, _) = auth_url(&app, &rp, &[("scope", "openid offline_access"), ("prompt", "none")]);
    assert_eq!(redirect_params(&b.get(url).send().await.unwrap())["error"], "consent_required");
    let (url, _) = auth_url(&app, &rp, &[("scope", "openid offline_access")]);
    let page = app.follow(&b, b.get(url).send().await.unwrap()).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("offline access"), "{html}");
}

// 10b. A session that ends by idle timeout ends like a logout.
#[tokio::test]
async fn an_idle_session_ends_like_a_logout() {
    let app = TestApp::spawn_with(|s| {
        s.session.idle_timeout_secs = 600;
        s.session.sweep_interval_secs = 1;
    })
    .await;
    app.create_user("ana@example.com", PW).await;
    let (rp, got) = rp_with_backchannel_logout(&app, "Gallery").await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let sid = claims(t["id_token"].as_str().unwrap())["sid"].clone();
    app.clock.advance(601);
    let tokens = crate::oidc_logout::wait_for(&got, 1).await;
    assert_eq!(claims(&tokens[0])["sid"], sid);
    let (status, body) = refresh(&app, &rp, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

// 10c. The consent given in an interaction belongs to the user who gave it.
#[tokio::test]
async fn consent_in_an_interaction_is_the_consenting_users_only() {
    let (app, _) = setup().await;
    let mut reg = registration("Third party");
    reg.first_party = false;
    let rp = app.register(reg).await;
    let b = app.browser();
    sign_in(&app, &b, "ana@example.com").await;
    let (url, _) = auth_url(&app, &rp, &[("max_age", "60")]);
    let page = app.follow(&b, b.get(url).send().await.unwrap()).await;
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"action="/authorize/consent""#));
    // Ana takes her time: when she allows, her sign-in is older than max_age, so the
    // interaction asks for a sign-in again...
    app.clock.advance(120);
    let login = app.decide(&b, &html, "/authorize/consent", "allow").await;
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(html.contains(r#"action="/login""#));
    // ... and Bob signs in there. Ana's consent is not Bob's: Bob is asked, no code yet.
    let csrf = form_value(&html, "csrf_token").unwrap();
    let rt = form_value(&html, "return_to").unwrap();
    let res = b
        .post(app.url("/login"))
        .form(&[("email", "bob@example.com"), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
        .send()
        .await
        .unwrap();
    let res = app.follow(&b, res).await;
    assert_eq!(res.status(), 200, "a page for Bob, not a redirect with a code");
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"action="/authorize/consent""#), "Bob is asked for his own consent");
    assert!(html.contains("bob@example.com"));
}

// 10d. A compromised key leaves the JWKS and its tokens are refused.
#[tokio::test]
async fn a_revoked_key_is_unpublished_and_its_tokens_refused() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let at = t["access_token"].as_str().unwrap();
    let kid = crate::oidc_helpers::header(at)["kid"].as_str().unwrap().to_owned();
    assert_eq!(userinfo_status(&app, at).await, 200);
    app.state.oidc.keys.revoke(&kid).unwrap();
    let jwks: serde_json::Value = reqwest::get(app.url("/jwks")).await.unwrap().json().await.unwrap();
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k["kid"] != kid.as_str()), "out of the JWKS");
    assert_eq!(userinfo_status(&app, at).await, 401, "tokens it signed are refused");
    // A new key signs at once.
    let (status, body) = refresh(&app, &rp, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let new_kid = crate::oidc_helpers::header(body["access_token"].as_str().unwrap())["kid"].clone();
    assert_ne!(new_kid, kid.as_str());
    assert_eq!(userinfo_status(&app, body["access_token"].as_str().unwrap()).await, 200);
}

// 14. Revocations are durable: a node with an empty ephemeral store still refuses the token.
#[tokio::test]
async fn access_token_revocation_survives_an_empty_ephemeral_store() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let at = t["access_token"].as_str().unwrap();
    let res = reqwest::Client::new()
        .post(app.url("/revoke"))
        .basic_auth(rp.client.client_id.as_str(), rp.secret.as_deref())
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Another node whose Redis is empty (a fresh key prefix), same database.
    let mut s = app.settings.clone();
    s.redis.key_prefix = format!("guichet-test-{}:", uuid::Uuid::new_v4().simple());
    let node = app.spawn_sibling_with(s).await;
    assert_eq!(userinfo_status(&node, at).await, 401);
    let v: serde_json::Value = introspect_as(&node, &rp, at).await.json().await.unwrap();
    assert_eq!(v["active"], false);
}

/// A raw HTTP/1.1 client: sends the bytes, returns all the server answers (lowercased).
struct TestAppAddr(std::net::SocketAddr);

impl TestAppAddr {
    fn raw(&self, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(self.0).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(request);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).to_lowercase()
    }
}

// 15. A stalled body gets 408, not a 503 after 30 s.
#[tokio::test]
async fn a_stalled_body_gets_408() {
    let app = TestApp::spawn_with(|s| s.server.header_read_timeout_secs = 1).await;
    let started = std::time::Instant::now();
    let a = app.addr;
    let out = tokio::task::spawn_blocking(move || {
        TestAppAddr(a).raw(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=")
    })
    .await
    .unwrap();
    assert!(out.starts_with("http/1.1 408"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

// 16. Auth schemes are case-insensitive; a failed Basic attempt is challenged with Basic.
#[tokio::test]
async fn basic_scheme_is_case_insensitive_and_challenged() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let mut reg = registration("Service");
    reg.grant_types = vec![GrantType::ClientCredentials];
    reg.redirect_uris = vec![];
    let rp = app.register(reg).await;
    let creds =
        |secret: &str| base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", rp.client.client_id));
    let send = |scheme: &'static str, c: String| {
        let url = app.url("/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .header("authorization", format!("{scheme} {c}"))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("BASIC", creds(rp.secret.as_deref().unwrap())).await.status(), 200);
    assert_eq!(send("basic", creds(rp.secret.as_deref().unwrap())).await.status(), 200);
    let res = send("BaSiC", creds("wrong")).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
}

// 17. Every error goes through the one renderer, in our words.
#[tokio::test]
async fn every_error_is_rendered_in_our_words() {
    let (app, rp) = setup().await;
    let b = app.browser();
    // Wrong Content-Type at POST /authorize and /end_session: 415, rendered.
    for path in ["/authorize", "/end_session"] {
        let res = b.post(app.url(path)).header("content-type", "application/json").body("{}").send().await.unwrap();
        assert_eq!(res.status(), 415, "{path}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{path}");
    }
    // A repeated query parameter at /login and /authorize/resume: 400, rendered, our words.
    for path in ["/login?return_to=/a&return_to=/b", "/authorize/resume?interaction=a&interaction=b"] {
        let res = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert!(!v["error_description"].as_str().unwrap().contains("duplicate field"), "{v}");
    }
    // Library wording never reaches the RP, and error_description stays in RFC 6749's set.
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let (url, _) = auth_url(&app, &rp, &[("claims", deep.as_str())]);
    let p = redirect_params(&b.get(url).send().await.unwrap());
    assert_eq!(p["error"], "invalid_request");
    assert!(!p["error_description"].contains("recursion"), "{p:?}");
    let (url, _) = auth_url(&app, &rp, &[("response_mode", "q\u{e9}\"\\x")]);
    let p = redirect_params(&b.get(url).send().await.unwrap());
    assert!(p["error_description"].chars().all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'), "{p:?}");
    // An oversized chunked body: 413, rendered.
    let max = app.settings.server.max_body_bytes;
    let a = app.addr;
    let out = tokio::task::spawn_blocking(move || {
        let mut req = b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b'a'; max + 10];
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n0\r\n\r\n");
        TestAppAddr(a).raw(&req)
    })
    .await
    .unwrap();
    assert!(out.starts_with("http/1.1 413"), "{out}");
    assert!(out.contains("invalid_request") && !out.contains("length limit"), "{out}");
}

// 18. Host: exactly one, valid.
#[tokio::test]
async fn requests_without_a_valid_single_host_get_400() {
    let app = TestApp::spawn().await;
    let a = app.addr;
    let out = tokio::task::spawn_blocking(move || {
        let t = TestAppAddr(a);
        [
            t.raw(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"),
            t.raw(b"GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n"),
            t.raw(b"GET /healthz HTTP/1.1\r\nHost: exa mple\r\nConnection: close\r\n\r\n"),
            t.raw(b"GET /healthz HTTP/1.1\r\nHost: user@example.com\r\nConnection: close\r\n\r\n"),
            t.raw(b"GET /healthz HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n"),
        ]
    })
    .await
    .unwrap();
    for (i, o) in out[..4].iter().enumerate() {
        assert!(o.starts_with("http/1.1 400"), "case {i}: {o}");
    }
    assert!(out[4].starts_with("http/1.1 200"), "{}", out[4]);
}

// 11. A rotation whose answer was lost may be retried (when the operator allows a grace), and
// the retry never hides a real reuse.
#[tokio::test]
async fn a_lost_refresh_answer_can_be_retried_within_the_grace() {
    let app = TestApp::spawn_with(|s| s.oidc.refresh_retry_grace_secs = 30).await;
    app.create_user("ana@example.com", PW).await;
    let rp = app.register(registration("Orders")).await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let a = t["refresh_token"].as_str().unwrap().to_owned();
    // The answer to this rotation is "lost": B never reaches the client.
    let (status, lost) = refresh(&app, &rp, &a).await;
    assert_eq!(status, 200);
    let b_token = lost["refresh_token"].as_str().unwrap().to_owned();
    // The client retries with A: a new token, C.
    app.clock.advance(5);
    let (status, retried) = refresh(&app, &rp, &a).await;
    assert_eq!(status, 200, "{retried}");
    let c = retried["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(c, b_token);
    // B was retired: presenting it is a reuse, and the whole family dies (C included).
    let (status, body) = refresh(&app, &rp, &b_token).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&app, &rp, &c).await;
    assert_eq!(status, 400, "the family is revoked");

    // Past the grace, or once the replacement was used, a reuse revokes at once.
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let a = t["refresh_token"].as_str().unwrap().to_owned();
    let (_, next) = refresh(&app, &rp, &a).await;
    let (status, _) = refresh(&app, &rp, next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the replacement is used");
    let (status, body) = refresh(&app, &rp, &a).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a real reuse");
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let a = t["refresh_token"].as_str().unwrap().to_owned();
    refresh(&app, &rp, &a).await;
    app.clock.advance(31);
    let (status, _) = refresh(&app, &rp, &a).await;
    assert_eq!(status, 400, "past the grace");
}

// 11. By default (no grace) a reuse revokes at once, even right after the rotation and while
// the replacement is unused.
#[tokio::test]
async fn without_a_grace_an_immediate_reuse_revokes() {
    let (app, rp) = setup().await;
    let b = app.browser();
    let t = tokens_for(&app, &b, &rp, "ana@example.com", &[]).await;
    let a = t["refresh_token"].as_str().unwrap();
    let (status, next) = refresh(&app, &rp, a).await;
    assert_eq!(status, 200);
    let (status, body) = refresh(&app, &rp, a).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&app, &rp, next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "the family is revoked");
}
