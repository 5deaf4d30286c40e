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
    let res = browser.get(b.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("roaming@example.com"));
    // Sign out on b: a no longer knows the session either.
    let page = browser.get(b.url("/logout")).send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::form_value(&page, "csrf_token").unwrap();
    assert_eq!(browser.post(b.url("/logout")).form(&[("csrf_token", csrf)]).send().await.unwrap().status(), 303);
    assert_eq!(browser.get(a.url("/")).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn users_created_on_one_node_sign_in_on_another() {
    let a = TestApp::spawn().await;
    let b = a.spawn_sibling().await;
    a.create_user("both@example.com", "correct horse battery").await;
    let browser = b.browser();
    assert_eq!(b.login(&browser, "both@example.com", "correct horse battery", None).await.status(), 303);
}
