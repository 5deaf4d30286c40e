//! userinfo, introspection, revocation — and tokens that must be refused there:
//! expired, revoked, `alg: none`, HMAC with the public key (alg confusion), wrong typ.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::TestApp;
use crate::oidc_helpers::{exchange, get_code, registration, userinfo_status, Rp, PW};

async fn signed_in() -> (TestApp, Rp, serde_json::Value) {
    let app = TestApp::spawn().await;
    app.create_user("uma@example.com", PW).await;
    let rp = app.register(registration("Support")).await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "uma@example.com", &[("scope", "openid email profile")]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    (app, rp, t)
}

#[tokio::test]
async fn userinfo_by_header_get_post_and_body() {
    let (app, _, t) = signed_in().await;
    let at = t["access_token"].as_str().unwrap();
    let c = reqwest::Client::new();
    for res in [
        c.get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap(),
        c.post(app.url("/userinfo")).bearer_auth(at).send().await.unwrap(),
        c.post(app.url("/userinfo")).form(&[("access_token", at)]).send().await.unwrap(),
    ] {
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["email"], "uma@example.com");
        assert!(v["sub"].is_string() && v.get("updated_at").is_some());
    }
    // Query-string tokens are not accepted (as if none were sent: 401 with a bare challenge);
    // two ways at once is an error.
    let res = c.get(app.url("/userinfo")).query(&[("access_token", at)]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"guichet\"");
    let res = c.get(app.url("/userinfo")).basic_auth("a", Some("b")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = c.post(app.url("/userinfo")).bearer_auth(at).form(&[("access_token", at)]).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

fn forge(header: serde_json::Value, claims: &serde_json::Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64.encode(sig))
}

#[tokio::test]
async fn forged_tokens_are_refused_at_userinfo_and_introspection() {
    let (app, rp, t) = signed_in().await;
    let at = t["access_token"].as_str().unwrap();
    let claims = crate::oidc_helpers::claims(at);
    let kid = crate::oidc_helpers::header(at)["kid"].clone();
    let jwks: serde_json::Value = reqwest::get(app.url("/jwks")).await.unwrap().json().await.unwrap();
    let public_key_bytes = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let hs256 = |key: Vec<u8>| {
        move |m: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        }
    };
    let mut tampered = claims.clone();
    tampered["sub"] = serde_json::json!("someone-else");
    let parts: Vec<&str> = at.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged = [
        forge(serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid}), &claims, |_| vec![]),
        forge(serde_json::json!({"alg": "none", "typ": "at+jwt"}), &claims, |_| vec![]),
        forge(serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}), &claims, hs256(public_key_bytes)),
        // Our header, someone else's claims, our signature: the signature no longer matches.
        format!("{}.{}.{}", parts[0], b64.encode(tampered.to_string()), parts[2]),
        // alg swapped to another of ours while keeping the kid.
        forge(serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}), &claims, |_| vec![0; 64]),
        "not-a-jwt".into(),
    ];
    for f in &forged {
        assert_eq!(userinfo_status(&app, f).await, 401, "{f}");
        let res = reqwest::Client::new()
            .post(app.url("/introspect"))
            .basic_auth(rp.client.client_id.as_str(), rp.secret.as_deref())
            .form(&[("token", f.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"active": false}));
    }
    // An ID token is not an access token (typ differs).
    assert_eq!(userinfo_status(&app, t["id_token"].as_str().unwrap()).await, 401);
    // Expired.
    app.clock.advance(601);
    let res = reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
}

async fn introspect(app: &TestApp, rp: &Rp, token: &str) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth(rp.client.client_id.as_str(), rp.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn revoke(app: &TestApp, rp: &Rp, token: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/revoke"))
        .basic_auth(rp.client.client_id.as_str(), rp.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn introspection_and_revocation_of_access_and_refresh_tokens() {
    let (app, rp, t) = signed_in().await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let i = introspect(&app, &rp, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], rp.client.client_id.as_str());
    assert_eq!(i["token_type"], "Bearer");
    let i = introspect(&app, &rp, rt).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(introspect(&app, &rp, "unknown-token").await, serde_json::json!({"active": false}));
    // Another client does not learn about this refresh token.
    let other = app.register(registration("Other")).await;
    assert_eq!(introspect(&app, &other, rt).await["active"], false);
    // Another client cannot revoke it either (200, nothing happens).
    assert_eq!(revoke(&app, &other, rt).await, 200);
    assert_eq!(introspect(&app, &rp, rt).await["active"], true);
    // Revoke the access token alone.
    assert_eq!(revoke(&app, &rp, at).await, 200);
    assert_eq!(introspect(&app, &rp, at).await["active"], false);
    assert_eq!(userinfo_status(&app, at).await, 401);
    assert_eq!(introspect(&app, &rp, rt).await["active"], true, "refresh token unaffected");
    // Revoke the refresh token: its grant goes, with the access tokens issued from it.
    let res = app.token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    let t2: serde_json::Value = res.json().await.unwrap();
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_eq!(revoke(&app, &rp, rt2).await, 200);
    assert_eq!(introspect(&app, &rp, rt2).await["active"], false);
    assert_eq!(userinfo_status(&app, t2["access_token"].as_str().unwrap()).await, 401);
    assert_eq!(revoke(&app, &rp, "garbage").await, 200, "unknown tokens: 200");
    // Unauthenticated introspection / revocation.
    let res = reqwest::Client::new().post(app.url("/introspect")).form(&[("token", rt)]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = reqwest::Client::new()
        .post(app.url("/revoke"))
        .basic_auth("x", Some("y"))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn tokens_verify_on_every_node_sharing_the_stores() {
    let (a, _, t) = signed_in().await;
    let b = a.spawn_sibling().await;
    assert_eq!(userinfo_status(&b, t["access_token"].as_str().unwrap()).await, 200);
}

#[tokio::test]
async fn browser_clients_may_call_token_and_userinfo_cross_origin_without_cookies() {
    let app = TestApp::spawn().await;
    let c = reqwest::Client::new();
    let res = c
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(res.headers().get("access-control-allow-credentials").is_none());
    for path in ["/userinfo", "/.well-known/openid-configuration", "/jwks"] {
        let res = c.get(app.url(path)).header("origin", "https://spa.example.com").send().await.unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
    }
    // Pages are not opened to other origins.
    let res = c.get(app.url("/login")).header("origin", "https://spa.example.com").send().await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
