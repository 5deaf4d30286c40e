//! Helpers for the OpenID Provider tests: register clients, drive a browser through
//! /authorize (sign-in and consent pages), exchange codes.

use guichet::domain::{ApplicationType, Client, ClientAuthMethod, GrantType, SigningAlg};
use guichet::oidc::clients::Registration;

use crate::helpers::{form_value, TestApp};

pub const PW: &str = "correct horse battery";
pub const REDIRECT: &str = "https://rp.example.com/cb";

pub fn registration(name: &str) -> Registration {
    Registration {
        name: name.into(),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec!["https://rp.example.com/bye".into()],
        auth_method: ClientAuthMethod::ClientSecretBasic,
        application_type: ApplicationType::Web,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        jwks_uri: None,
        jwks: None,
        first_party: true,
        backchannel_logout_uri: None,
        id_token_signed_response_alg: SigningAlg::RS256,
        id_token_claims: true,
        introspection: false,
        require_mfa: false,
        org_id: None,
    }
}

pub struct Rp {
    pub client: Client,
    pub secret: Option<String>,
}

impl TestApp {
    pub async fn register(&self, r: Registration) -> Rp {
        let (client, secret) = self.state.oidc.register_client(r).await.expect("client registers");
        Rp { client, secret }
    }

    /// Follows redirects while they stay on Guichet; returns the first response that is not a
    /// redirect to Guichet (a redirect to the client, or a page).
    pub async fn follow(&self, browser: &reqwest::Client, mut res: reqwest::Response) -> reqwest::Response {
        for _ in 0..10 {
            if !res.status().is_redirection() {
                return res;
            }
            let loc = res.headers()["location"].to_str().unwrap().to_owned();
            let next = if loc.starts_with('/') {
                self.url(&loc)
            } else if loc.starts_with(&self.base) {
                loc
            } else {
                return res;
            };
            res = browser.get(next).send().await.unwrap();
        }
        panic!("too many redirects");
    }

    /// GET the authorization URL in `browser`; sign in with the form if asked (as `email`),
    /// consent if asked. Returns the final response (normally a redirect to the client).
    pub async fn authorize_as(&self, browser: &reqwest::Client, url: &str, email: &str) -> reqwest::Response {
        let res = browser.get(url).send().await.unwrap();
        let mut res = self.follow(browser, res).await;
        for _ in 0..4 {
            if res.status() != 200 {
                return res;
            }
            let page_url = res.url().clone();
            let html = res.text().await.unwrap();
            if html.contains(r#"action="/login""#) {
                let csrf = form_value(&html, "csrf_token").unwrap();
                let rt = form_value(&html, "return_to").unwrap();
                let r = browser
                    .post(self.url("/login"))
                    .form(&[("email", email), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303, "sign-in at {page_url}");
                res = self.follow(browser, r).await;
            } else if html.contains(r#"action="/authorize/consent""#) {
                res = self.decide(browser, &html, "/authorize/consent", "allow").await;
            } else {
                panic!("unexpected page at {page_url}: {html}");
            }
        }
        res
    }

    pub async fn decide(
        &self,
        browser: &reqwest::Client,
        html: &str,
        action: &str,
        decision: &str,
    ) -> reqwest::Response {
        let csrf = form_value(html, "csrf_token").unwrap();
        let ia = form_value(html, "interaction").unwrap();
        let r = browser
            .post(self.url(action))
            .form(&[("csrf_token", csrf.as_str()), ("interaction", ia.as_str()), ("decision", decision)])
            .send()
            .await
            .unwrap();
        self.follow(browser, r).await
    }

    /// POST /token with client_secret_basic.
    pub async fn token_request(&self, rp: &Rp, form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/token"))
            .basic_auth(rp.client.client_id.as_str(), rp.secret.as_deref())
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// Query parameters of a redirect to the client.
pub fn redirect_params(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert!(res.status().is_redirection(), "expected a redirect, got {}", res.status());
    let loc = res.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(REDIRECT) || loc.starts_with("https://rp.example.com"), "redirected to {loc}");
    url::Url::parse(loc).unwrap().query_pairs().into_owned().collect()
}

/// An authorization URL for `rp` with PKCE; `extra` replaces defaults of the same name
/// (an empty value removes the parameter). Returns (url, verifier).
pub fn auth_url(app: &TestApp, rp: &Rp, extra: &[(&str, &str)]) -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = guichet::oidc::pkce::s256(&verifier);
    let mut params: Vec<(String, String)> = [
        ("client_id", rp.client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email profile"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    (u.to_string(), verifier)
}

/// Signs in and returns (code, verifier) for `rp`.
pub async fn get_code(
    app: &TestApp,
    browser: &reqwest::Client,
    rp: &Rp,
    email: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (url, verifier) = auth_url(app, rp, extra);
    let res = app.authorize_as(browser, &url, email).await;
    let p = redirect_params(&res);
    (p.get("code").unwrap_or_else(|| panic!("no code: {p:?}")).clone(), verifier)
}

/// Signs in if asked and exchanges the code: the token response (asserting 200).
pub async fn tokens_for(
    app: &TestApp,
    browser: &reqwest::Client,
    rp: &Rp,
    email: &str,
    extra: &[(&str, &str)],
) -> serde_json::Value {
    let (code, verifier) = get_code(app, browser, rp, email, extra).await;
    exchange(app, rp, &code, &verifier).await
}

/// Exchanges a code; returns the JSON body (asserting 200).
pub async fn exchange(app: &TestApp, rp: &Rp, code: &str, verifier: &str) -> serde_json::Value {
    let res = app
        .token_request(
            rp,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "token exchange failed");
    res.json().await.unwrap()
}

/// The (unverified) claims of a JWT, for assertions.
pub fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

pub fn header(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let p = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

pub async fn userinfo_status(app: &TestApp, at: &str) -> u16 {
    reqwest::Client::new().get(app.url("/userinfo")).bearer_auth(at).send().await.unwrap().status().as_u16()
}
