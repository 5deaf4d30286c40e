//! /token: code exchange rules, replay, PKCE, client authentication, refresh rotation,
//! client_credentials, private_key_jwt.

use base64::Engine;
use guichet::domain::{ClientAuthMethod, GrantType};
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::{self, JwtPayload};

use crate::helpers::TestApp;
use crate::oidc_helpers::{exchange, get_code, registration, userinfo_status, Rp, PW, REDIRECT};

async fn setup() -> (TestApp, Rp, reqwest::Client) {
    let app = TestApp::spawn().await;
    app.create_user("tom@example.com", PW).await;
    let rp = app.register(registration("Billing")).await;
    let b = app.browser();
    (app, rp, b)
}

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v: serde_json::Value = res.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn token_responses_are_not_cached_and_well_formed() {
    let (app, rp, b) = setup().await;
    let (code, v) = get_code(&app, &b, &rp, "tom@example.com", &[("scope", "openid offline_access")]).await;
    let res = app
        .token_request(
            &rp,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let t: serde_json::Value = res.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 600);
    let at_header = crate::oidc_helpers::header(t["access_token"].as_str().unwrap());
    assert_eq!(at_header["typ"], "at+jwt", "RFC 9068");
    let at = crate::oidc_helpers::claims(t["access_token"].as_str().unwrap());
    for k in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"] {
        assert!(at.get(k).is_some(), "access token lacks {k}");
    }
    assert_eq!(at["client_id"], rp.client.client_id.as_str());
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let (app, rp, b) = setup().await;
    let (code, v) = get_code(&app, &b, &rp, "tom@example.com", &[]).await;
    let first = exchange(&app, &rp, &code, &v).await;
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, at).await, 200);
    let res = app
        .token_request(
            &rp,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)],
        )
        .await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    assert_eq!(userinfo_status(&app, at).await, 401, "tokens from the replayed code are revoked");
    let res = app
        .token_request(
            &rp,
            &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn code_is_bound_to_redirect_uri_pkce_client_and_lifetime() {
    let (app, rp, b) = setup().await;
    let other = app.register(registration("Other")).await;
    type MakeForm = Box<dyn Fn(&str, &str) -> Vec<(String, String)>>;
    let cases: Vec<(MakeForm, &Rp)> = vec![
        (
            Box::new(|c, v| {
                form(&[("code", c), ("redirect_uri", "https://rp.example.com/other"), ("code_verifier", v)])
            }),
            &rp,
        ),
        (Box::new(|c, _| form(&[("code", c), ("redirect_uri", REDIRECT), ("code_verifier", &"x".repeat(43))])), &rp),
        (Box::new(|c, _| form(&[("code", c), ("redirect_uri", REDIRECT)])), &rp),
        (Box::new(|c, v| form(&[("code", c), ("redirect_uri", REDIRECT), ("code_verifier", v)])), &other),
    ];
    for (i, (make, who)) in cases.iter().enumerate() {
        let (code, v) = get_code(&app, &b, &rp, "tom@example.com", &[]).await;
        let mut f = make(&code, &v);
        f.push(("grant_type".into(), "authorization_code".into()));
        let pairs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let res = app.token_request(who, &pairs).await;
        assert_eq!(error_of(res).await, (400, "invalid_grant".into()), "case {i}");
    }
    // Expired: codes live 60 s.
    let (code, v) = get_code(&app, &b, &rp, "tom@example.com", &[]).await;
    app.clock.advance(61);
    let res = app
        .token_request(
            &rp,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)],
        )
        .await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
}

fn form(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn client_authentication_failures() {
    let (app, rp, _) = setup().await;
    let c = reqwest::Client::new();
    let id = rp.client.client_id.as_str();
    // Wrong secret (Basic): 401 + WWW-Authenticate.
    let res = c
        .post(app.url("/token"))
        .basic_auth(id, Some("wrong"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    // Registered for basic, presents post with the right secret: the same secret, accepted
    // (the request then fails on its own merits).
    let res = c
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", id),
            ("client_secret", rp.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    // ...but a key-based client cannot use a secret.
    let mut reg = registration("Keyed");
    reg.auth_method = ClientAuthMethod::PrivateKeyJwt;
    reg.jwks = Some(serde_json::json!({"keys": []}));
    let keyed = app.register(reg).await;
    let res = c
        .post(app.url("/token"))
        .basic_auth(keyed.client.client_id.as_str(), Some("guess"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    // Unknown client; no authentication at all; two methods at once.
    let res = c
        .post(app.url("/token"))
        .basic_auth("ghost", Some("x"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    let res =
        c.post(app.url("/token")).form(&[("grant_type", "refresh_token"), ("client_id", id)]).send().await.unwrap();
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    let res = c
        .post(app.url("/token"))
        .basic_auth(id, rp.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("client_secret", "x"), ("client_id", id)])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (400, "invalid_request".into()));
    // Grant type problems.
    let res = app.token_request(&rp, &[("grant_type", "password")]).await;
    assert_eq!(error_of(res).await, (400, "unsupported_grant_type".into()));
    let res = app.token_request(&rp, &[("code", "x")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_request".into()));
    let res = app.token_request(&rp, &[("grant_type", "client_credentials")]).await;
    assert_eq!(error_of(res).await, (400, "unauthorized_client".into()));
    let res = app.token_request(&rp, &[("grant_type", "authorization_code")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_request".into()));
    // Not a form body.
    let res = c.post(app.url("/token")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(error_of(res).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn client_secret_post_and_secret_rotation() {
    let app = TestApp::spawn().await;
    let mut reg = registration("Post");
    reg.auth_method = ClientAuthMethod::ClientSecretPost;
    reg.grant_types = vec![GrantType::ClientCredentials];
    reg.redirect_uris = vec![];
    let rp = app.register(reg).await;
    let post = |secret: String| {
        let app_url = app.url("/token");
        let id = rp.client.client_id.to_string();
        async move {
            reqwest::Client::new()
                .post(app_url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_secret", secret.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(rp.secret.clone().unwrap()).await, 200);
    let new = app.state.oidc.rotate_client_secret(&rp.client.client_id).await.unwrap();
    assert_eq!(post(rp.secret.clone().unwrap()).await, 401, "old secret dead");
    assert_eq!(post(new).await, 200);
}

#[tokio::test]
async fn refresh_rotates_narrows_and_detects_reuse() {
    let (app, rp, b) = setup().await;
    let (code, v) =
        get_code(&app, &b, &rp, "tom@example.com", &[("scope", "openid email profile offline_access")]).await;
    let t0 = exchange(&app, &rp, &code, &v).await;
    let rt0 = t0["refresh_token"].as_str().unwrap();
    // Broaden: refused. Narrow: allowed, and the new refresh token keeps the full scope.
    let res = app
        .token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt0), ("scope", "openid phone")])
        .await;
    assert_eq!(error_of(res).await, (400, "invalid_scope".into()));
    let res = app
        .token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt0), ("scope", "openid email")])
        .await;
    assert_eq!(res.status(), 200);
    let t1: serde_json::Value = res.json().await.unwrap();
    assert_eq!(t1["scope"], "email openid");
    let rt1 = t1["refresh_token"].as_str().unwrap();
    assert_ne!(rt0, rt1);
    let res = app.token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt1)]).await;
    let t2: serde_json::Value = res.json().await.unwrap();
    assert_eq!(t2["scope"], "email offline_access openid profile");
    let rt2 = t2["refresh_token"].as_str().unwrap();
    // Reuse of rt0 (already rotated): the family is revoked, rt2 and its access token die.
    let res = app.token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt0)]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    let res = app.token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt2)]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    assert_eq!(userinfo_status(&app, t2["access_token"].as_str().unwrap()).await, 401);
    // Another client cannot use (or burn) someone else's refresh token.
    let (code, v) = get_code(&app, &b, &rp, "tom@example.com", &[]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    let other = app.register(registration("Other")).await;
    let res = app
        .token_request(
            &other,
            &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    let res = app
        .token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())])
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let app = TestApp::spawn().await;
    let mut reg = registration("Batch job");
    reg.grant_types = vec![GrantType::ClientCredentials];
    reg.redirect_uris = vec![];
    let rp = app.register(reg).await;
    let res = app.token_request(&rp, &[("grant_type", "client_credentials"), ("scope", "orders:read")]).await;
    assert_eq!(res.status(), 200);
    let t: serde_json::Value = res.json().await.unwrap();
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let at = crate::oidc_helpers::claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], rp.client.client_id.as_str());
    assert_eq!(at["scope"], "orders:read");
    let res = app.token_request(&rp, &[("grant_type", "client_credentials"), ("scope", "openid")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_scope".into()));
    // Registration refuses client_credentials for public clients.
    let mut reg = registration("Public");
    reg.auth_method = ClientAuthMethod::None;
    reg.grant_types = vec![GrantType::ClientCredentials];
    assert!(app.state.oidc.register_client(reg).await.is_err());
}

pub(crate) fn es256_client_key() -> (josekit::jwk::Jwk, serde_json::Value) {
    let kp = ES256.generate_key_pair().unwrap();
    let mut private = kp.to_jwk_key_pair();
    private.set_key_id("rp-key-1");
    let mut public = kp.to_jwk_public_key();
    public.set_key_id("rp-key-1");
    let jwks = serde_json::json!({ "keys": [serde_json::to_value(public.as_ref()).unwrap()] });
    (private, jwks)
}

pub(crate) fn assertion(key: &josekit::jwk::Jwk, client_id: &str, aud: &str, jti: &str, exp_in: i64) -> String {
    let mut h = JwsHeader::new();
    h.set_token_type("JWT");
    h.set_key_id("rp-key-1");
    let mut p = JwtPayload::new();
    p.set_issuer(client_id);
    p.set_subject(client_id);
    p.set_audience(vec![aud]);
    p.set_jwt_id(jti);
    let now = std::time::SystemTime::now();
    p.set_issued_at(&now);
    p.set_expires_at(&(now + std::time::Duration::from_secs(u64::try_from(exp_in.max(0)).unwrap())));
    if exp_in < 0 {
        p.set_expires_at(&(now - std::time::Duration::from_secs(u64::try_from(-exp_in).unwrap())));
    }
    jwt::encode_with_signer(&p, &h, &ES256.signer_from_jwk(key).unwrap()).unwrap()
}

#[tokio::test]
async fn private_key_jwt_with_replay_protection() {
    let app = TestApp::spawn().await;
    let (key, jwks) = es256_client_key();
    let mut reg = registration("Signed client");
    reg.auth_method = ClientAuthMethod::PrivateKeyJwt;
    reg.jwks = Some(jwks);
    reg.grant_types = vec![GrantType::ClientCredentials];
    reg.redirect_uris = vec![];
    let rp = app.register(reg).await;
    let id = rp.client.client_id.to_string();
    let send = |a: String| {
        let url = app.url("/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", a.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let good = assertion(&key, &id, &app.url("/token"), "jti-1", 60);
    let r = send(good.clone()).await;
    let st = r.status();
    assert_eq!(st, 200, "{}", r.text().await.unwrap());
    assert_eq!(error_of(send(good).await).await, (401, "invalid_client".into()), "replayed assertion");
    let issuer_aud = assertion(&key, &id, &app.base, "jti-2", 60);
    assert_eq!(send(issuer_aud).await.status(), 200, "issuer as audience");
    for bad in [
        assertion(&key, &id, "https://elsewhere.example.com/token", "jti-3", 60),
        assertion(&key, &id, &app.url("/token"), "jti-4", -120),
        assertion(&key, &id, &app.url("/token"), "jti-5", 3600),
        assertion(&es256_client_key().0, &id, &app.url("/token"), "jti-6", 60),
    ] {
        assert_eq!(error_of(send(bad).await).await, (401, "invalid_client".into()));
    }
    // alg=none assertion.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none"}"#),
        b64.encode(format!(r#"{{"iss":"{id}","sub":"{id}","aud":"{}","jti":"n","exp":9999999999}}"#, app.base))
    );
    assert_eq!(error_of(send(none).await).await, (401, "invalid_client".into()));
}
