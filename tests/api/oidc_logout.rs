//! RP-Initiated Logout 1.0 and Back-Channel Logout 1.0.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Router;

use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{exchange, get_code, registration, userinfo_status, PW};

/// A relying party's back-channel logout endpoint: records logout tokens; fails the first
/// `fail_first` deliveries with 500.
pub(crate) async fn logout_receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let attempts = Arc::new(Mutex::new(0usize));
    let g = got.clone();
    let app = Router::new().route(
        "/backchannel",
        post(move |body: String| {
            let g = g.clone();
            let attempts = attempts.clone();
            async move {
                let n = {
                    let mut a = attempts.lock().unwrap();
                    *a += 1;
                    *a
                };
                if n <= fail_first {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                let token = url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                g.lock().unwrap().push(token);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{}/backchannel", addr.port()), got)
}

pub(crate) async fn wait_for(got: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    for _ in 0..100 {
        {
            let g = got.lock().unwrap();
            if g.len() >= n {
                return g.clone();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no back-channel logout received");
}

#[tokio::test]
async fn rp_initiated_logout_with_hint_redirects_and_ends_everything() {
    let app = TestApp::spawn().await;
    app.create_user("lea@example.com", PW).await;
    let (bc_url, got) = logout_receiver(1).await;
    let mut reg = registration("Orders");
    reg.backchannel_logout_uri = Some(bc_url);
    let rp = app.register(reg).await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "lea@example.com", &[]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    let (code, v) = get_code(&app, &b, &rp, "lea@example.com", &[("scope", "openid offline_access")]).await;
    let offline = exchange(&app, &rp, &code, &v).await;
    let id_token = t["id_token"].as_str().unwrap();
    let sid = crate::oidc_helpers::claims(id_token)["sid"].clone();

    let res = b
        .get(app.url("/end_session"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://rp.example.com/bye"),
            ("state", "s1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://rp.example.com/bye?state=s1");
    // The Guichet session is gone.
    assert_eq!(b.get(app.url("/account")).send().await.unwrap().status(), 303);
    // The session's tokens are revoked (offline_access ones survive, by definition).
    assert_eq!(userinfo_status(&app, t["access_token"].as_str().unwrap()).await, 401);
    let res = app
        .token_request(&rp, &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())])
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .token_request(
            &rp,
            &[("grant_type", "refresh_token"), ("refresh_token", offline["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(res.status(), 200, "offline_access outlives the session");
    // The client got a logout token (after one failed delivery: retries).
    let tokens = wait_for(&got, 1).await;
    let lt = &tokens[0];
    let h = crate::oidc_helpers::header(lt);
    assert_eq!(h["typ"], "logout+jwt");
    let c = crate::oidc_helpers::claims(lt);
    assert_eq!(c["aud"], rp.client.client_id.as_str());
    assert_eq!(c["sid"], sid);
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(c.get("nonce").is_none() && c["jti"].is_string() && c["iss"] == app.base);
}

#[tokio::test]
async fn logout_without_hint_asks_for_confirmation() {
    let app = TestApp::spawn().await;
    app.create_user("max@example.com", PW).await;
    let rp = app.register(registration("Gallery")).await;
    let b = app.browser();
    get_code(&app, &b, &rp, "max@example.com", &[]).await;
    let res = b
        .get(app.url("/end_session"))
        .query(&[
            ("client_id", rp.client.client_id.as_str()),
            ("post_logout_redirect_uri", "https://rp.example.com/bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"action="/end_session/confirm""#));
    assert_eq!(b.get(app.url("/account")).send().await.unwrap().status(), 200, "not signed out by a link");
    let csrf = form_value(&html, "csrf_token").unwrap();
    let forged = b
        .post(app.url("/end_session/confirm"))
        .form(&[("csrf_token", "forged"), ("client_id", rp.client.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let res = b
        .post(app.url("/end_session/confirm"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("client_id", rp.client.client_id.as_str()),
            ("post_logout_redirect_uri", "https://rp.example.com/bye"),
            ("state", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://rp.example.com/bye");
    assert_eq!(b.get(app.url("/account")).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn logout_refuses_unregistered_redirects_and_bad_hints() {
    let app = TestApp::spawn().await;
    let rp = app.register(registration("Gallery")).await;
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for q in [
        vec![("client_id", rp.client.client_id.as_str()), ("post_logout_redirect_uri", "https://evil.example.com/")],
        vec![("post_logout_redirect_uri", "https://rp.example.com/bye")],
        vec![("id_token_hint", "not.a.token")],
        vec![("client_id", "unknown")],
    ] {
        let res = c.get(app.url("/end_session")).query(&q).send().await.unwrap();
        assert_eq!(res.status(), 400, "{q:?}");
        assert!(res.headers().get("location").is_none());
    }
    // No session, nothing to confirm: straight to the registered URI.
    let res = c
        .get(app.url("/end_session"))
        .query(&[
            ("client_id", rp.client.client_id.as_str()),
            ("post_logout_redirect_uri", "https://rp.example.com/bye"),
            ("state", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "https://rp.example.com/bye?state=x");
}

#[tokio::test]
async fn guichet_sign_out_also_notifies_clients() {
    let app = TestApp::spawn().await;
    app.create_user("noa@example.com", PW).await;
    let (bc_url, got) = logout_receiver(0).await;
    let mut reg = registration("Payslips");
    reg.backchannel_logout_uri = Some(bc_url);
    let rp = app.register(reg).await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "noa@example.com", &[]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    app.logout(&b).await;
    assert_eq!(wait_for(&got, 1).await.len(), 1);
    assert_eq!(userinfo_status(&app, t["access_token"].as_str().unwrap()).await, 401);
}
