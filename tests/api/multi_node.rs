//! Several Guichet processes sharing the same stores behave as one service.

use crate::helpers::TestApp;

#[tokio::test]
async fn a_session_started_on_one_node_is_valid_on_another() {
    let a = TestApp::spawn().await;
    let b = a.spawn_sibling().await;
    a.create_user("roaming@example.com", "correct horse battery").await;
    let browser = a.browser();
    assert_eq!(a.login(&browser, "roaming@example.com", "correct horse battery", None).await.status(), 303);
    // The same cookie jar talks to node b (cookies are per host, and both are 127.0.0.1).
    let res = browser.get(b.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("roaming@example.com"));
    // Sign out on b: a no longer knows the session either.
    let page = browser.get(b.url("/logout")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::form_value(&page, "csrf_token").unwrap();
    assert_eq!(browser.post(b.url("/logout")).form(&[("csrf_token", csrf)]).send().await.unwrap().status(), 303);
    assert_eq!(browser.get(a.url("/account")).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn users_created_on_one_node_sign_in_on_another() {
    let a = TestApp::spawn().await;
    let b = a.spawn_sibling().await;
    a.create_user("both@example.com", "correct horse battery").await;
    let browser = b.browser();
    assert_eq!(b.login(&browser, "both@example.com", "correct horse battery", None).await.status(), 303);
}

/// Clients are cached in memory (`oidc.client_cache_secs`): a secret rotated on one node works no
/// more there at once, and on the other nodes within the cache time; a deleted client likewise.
#[tokio::test]
async fn client_changes_reach_every_node_within_the_cache_time() {
    use guichet::domain::GrantType;
    let a = TestApp::spawn().await;
    let b = a.spawn_sibling().await;
    let mut reg = crate::oidc_helpers::registration("Batch");
    reg.grant_types = vec![GrantType::ClientCredentials];
    reg.redirect_uris = vec![];
    let rp = a.register(reg).await;
    let cc = |app: &TestApp, secret: String| {
        let url = app.url("/token");
        let id = rp.client.client_id.to_string();
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let old = rp.secret.clone().unwrap();
    assert_eq!(cc(&b, old.clone()).await, 200, "node b has the client cached now");
    let new = a.state.oidc.rotate_client_secret(&rp.client.client_id).await.unwrap();
    assert_eq!(cc(&a, old.clone()).await, 401, "at once on the node that rotated");
    assert_eq!(cc(&a, new.clone()).await, 200);
    let ttl = i64::try_from(a.settings.oidc.client_cache_secs).unwrap();
    a.clock.advance(ttl);
    assert_eq!(cc(&b, old.clone()).await, 401, "within client_cache_secs on the others");
    assert_eq!(cc(&b, new.clone()).await, 200);
    a.state.oidc.delete_client(&rp.client.client_id).await.unwrap();
    assert_eq!(cc(&a, new.clone()).await, 401, "deleted: at once here");
    a.clock.advance(ttl);
    assert_eq!(cc(&b, new).await, 401, "and on the others within the cache time");
}
