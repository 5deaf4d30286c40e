//! A real relying party — the `openidconnect` crate — signs a user in through Guichet:
//! discovery, code + PKCE with the HTML form, ID token verified against the JWKS (for each
//! signing alg), at_hash, userinfo, refresh.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use guichet::domain::SigningAlg;

use crate::helpers::TestApp;
use crate::oidc_helpers::{redirect_params, registration, PW, REDIRECT};

async fn full_login_with(alg: SigningAlg, core_alg: CoreJwsSigningAlgorithm) {
    let app = TestApp::spawn().await;
    let user = app.create_user("rp-user@example.com", PW).await;
    let mut reg = registration("Orders portal");
    reg.id_token_signed_response_alg = alg;
    let rp = app.register(reg).await;

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.client.client_id.to_string()),
        rp.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();
    let res = app.authorize_as(&browser, url.as_str(), "rp-user@example.com").await;
    let params = redirect_params(&res);
    assert_eq!(params["state"], *csrf.secret());
    assert_eq!(params["iss"], app.base, "RFC 9207 iss in the authorization response");

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier().set_allowed_algs(vec![core_alg]);
    let claims = id_token.claims(&verifier, &nonce).expect("ID token verifies against the JWKS");
    assert_eq!(claims.subject().as_str(), user.id.to_string());
    assert_eq!(claims.email().map(|e| e.as_str()), Some("rp-user@example.com"));
    assert!(claims.auth_time().is_some());
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);

    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some("rp-user@example.com"));

    let refresh = tokens.refresh_token().expect("offline_access gives a refresh token");
    let again = client.exchange_refresh_token(refresh).unwrap().request_async(&http).await.expect("refresh");
    assert_ne!(again.refresh_token().unwrap().secret(), refresh.secret(), "refresh tokens rotate");
    let id2 = again.id_token().expect("a new ID token on refresh");
    // No nonce on refresh-issued ID tokens (OIDC Core §12.2).
    let c2 = id2.claims(&verifier, |_: Option<&Nonce>| Ok(())).expect("refreshed ID token verifies");
    assert_eq!(c2.subject(), claims.subject());
    assert_eq!(c2.auth_time(), claims.auth_time());
}

#[tokio::test]
async fn openidconnect_rp_signs_in_with_rs256() {
    full_login_with(SigningAlg::RS256, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256).await;
}

#[tokio::test]
async fn openidconnect_rp_signs_in_with_es256() {
    full_login_with(SigningAlg::ES256, CoreJwsSigningAlgorithm::EcdsaP256Sha256).await;
}

#[tokio::test]
async fn openidconnect_rp_signs_in_with_eddsa() {
    full_login_with(SigningAlg::EdDSA, CoreJwsSigningAlgorithm::EdDsa).await;
}

#[tokio::test]
async fn discovery_matches_what_is_served() {
    let app = TestApp::spawn().await;
    let res = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    // Open to every origin with the same answer, asked with an Origin or not: a shared cache may
    // give one copy to all (no `Vary: Origin` needed).
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let jwks = reqwest::get(app.url("/jwks")).await.unwrap();
    assert_eq!(jwks.status(), 200);
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=300");
    assert_eq!(jwks.headers()["content-type"], "application/jwk-set+json");
    let d: serde_json::Value = res.json().await.unwrap();
    assert_eq!(d["issuer"], app.base);
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(d["id_token_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == alg));
    }
    // Every advertised endpoint exists (a wrong method or missing parameters, never a 404).
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let url = d[key].as_str().unwrap();
        assert!(url.starts_with(&app.base), "{key}");
        let get = reqwest::get(url).await.unwrap().status().as_u16();
        let post = reqwest::Client::new().post(url).form(&[("x", "y")]).send().await.unwrap().status().as_u16();
        assert!(get != 404 && post != 404, "{key}: GET {get}, POST {post}");
    }
    let jwks: serde_json::Value = reqwest::get(app.url("/jwks")).await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k.get("d").is_none() && k.get("p").is_none(), "no private material in the JWKS");
        assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
    }
}
