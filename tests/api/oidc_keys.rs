//! Signing-key rotation: published before it signs; retired keys stay until their tokens expire.

use guichet::domain::SigningAlg;

use crate::helpers::TestApp;
use crate::oidc_helpers::{exchange, get_code, registration, userinfo_status, PW};

async fn kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(app.url("/jwks")).await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn rotation_publishes_first_signs_later_and_retires_cleanly() {
    let app = TestApp::spawn().await;
    app.create_user("kim@example.com", PW).await;
    let rp = app.register(registration("Orders")).await;
    let b = app.browser();
    let (code, v) = get_code(&app, &b, &rp, "kim@example.com", &[]).await;
    let before = exchange(&app, &rp, &code, &v).await;
    let old_kid = crate::oidc_helpers::header(before["id_token"].as_str().unwrap())["kid"].as_str().unwrap().to_owned();

    let new = app.state.oidc.keys.rotate(SigningAlg::RS256, 3600).unwrap();
    assert_eq!(new.state, "next");
    let published = kids(&app).await;
    assert!(published.contains(&new.kid) && published.contains(&old_kid), "both published");
    // Still signing with the old key until the new one activates.
    let (code, v) = get_code(&app, &b, &rp, "kim@example.com", &[]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    assert_eq!(crate::oidc_helpers::header(t["id_token"].as_str().unwrap())["kid"], old_kid.as_str());

    app.clock.advance(3601);
    let (code, v) = get_code(&app, &b, &rp, "kim@example.com", &[]).await;
    let t = exchange(&app, &rp, &code, &v).await;
    assert_eq!(crate::oidc_helpers::header(t["id_token"].as_str().unwrap())["kid"], new.kid.as_str());
    assert_eq!(userinfo_status(&app, t["access_token"].as_str().unwrap()).await, 200);
    // The retired key is still published: tokens it signed may still be alive.
    assert!(kids(&app).await.contains(&old_kid));
    let states: Vec<(String, &str)> = app.state.oidc.keys.list().into_iter().map(|k| (k.kid, k.state)).collect();
    assert!(
        states.contains(&(old_kid.clone(), "retired")) && states.contains(&(new.kid.clone(), "active")),
        "{states:?}"
    );
    // After the longest token lifetime the old key leaves the JWKS.
    app.clock.advance(3601);
    assert!(!kids(&app).await.contains(&old_kid));
}

#[tokio::test]
async fn another_node_sees_a_rotation_after_reloading() {
    let a = TestApp::spawn_with(|s| s.keys.reload_secs = 1).await;
    let b = a.spawn_sibling().await;
    let new = a.state.oidc.keys.rotate(SigningAlg::ES256, 600).unwrap();
    for _ in 0..50 {
        if kids(&b).await.contains(&new.kid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("node b never published the rotated key");
}
