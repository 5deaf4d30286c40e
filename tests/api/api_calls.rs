//! Speaking to the admin API as a test: with a credential (`Basic ...`), or with a signed-in
//! browser's session (changes carry its CSRF token), a JSON body and an If-Match if any.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{form_value, TestApp};

/// `Basic base64(key:secret)`.
pub fn basic(key: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:{secret}")))
}

/// A request with a credential, a JSON body if any, an If-Match if any.
pub async fn call(
    app: &TestApp,
    m: Method,
    path: &str,
    auth: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut r = reqwest::Client::new().request(m, app.url(path)).header("authorization", auth);
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(t) = if_match {
        r = r.header("if-match", t);
    }
    r.send().await.unwrap()
}

/// A signed-in browser speaking to the API with its session.
pub struct Session {
    pub b: reqwest::Client,
    pub csrf: String,
    base: String,
}

impl Session {
    /// Signs `email` in with `password` and reads the session's CSRF token.
    pub async fn sign_in(app: &TestApp, email: &str, password: &str) -> Session {
        let b = app.browser();
        assert_eq!(app.login(&b, email, password, None).await.status(), 303);
        let html = b.get(app.url("/account/keys")).send().await.unwrap().text().await.unwrap();
        let csrf = form_value(&html, "csrf_token").unwrap();
        Session { b, csrf, base: app.url("") }
    }

    pub async fn call(&self, m: Method, path: &str, body: Option<Value>, if_match: Option<&str>) -> reqwest::Response {
        let mut r = self.b.request(m.clone(), format!("{}{path}", self.base.trim_end_matches('/')));
        if !m.is_safe() {
            r = r.header("x-csrf-token", &self.csrf);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        if let Some(t) = if_match {
            r = r.header("if-match", t);
        }
        r.send().await.unwrap()
    }
}

/// The JSON body (Null when none) and ETag of a response; asserts the status.
pub async fn expect(res: reqwest::Response, status: u16) -> (Value, Option<String>) {
    let got = res.status().as_u16();
    let url = res.url().to_string();
    let etag = res.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{url}: {text}");
    (serde_json::from_str(&text).unwrap_or(Value::Null), etag)
}
