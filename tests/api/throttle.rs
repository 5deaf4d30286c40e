//! Failed-login throttling: progressive delay per account+IP, per account, per IP; capped; a
//! browser that signed in before is not locked out by an attacker elsewhere.

use crate::helpers::TestApp;

const PW: &str = "correct horse battery";

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.login_throttle.per_account_ip = 3;
        s.login_throttle.per_account = 6;
        s.login_throttle.per_ip = 10;
        s.login_throttle.base_delay_secs = 30;
        s.login_throttle.max_delay_secs = 120;
        s.login_throttle.window_secs = 3600;
    })
    .await
}

fn retry_after(res: &reqwest::Response) -> i64 {
    res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn delays_grow_after_the_allowance_and_expire() {
    let app = app().await;
    app.create_user("victim@example.com", PW).await;
    let b = app.browser();
    let ip = Some("198.51.100.1");
    for _ in 0..4 {
        assert_eq!(app.login(&b, "victim@example.com", "guess", ip).await.status(), 401);
    }
    // Blocked now, even with the right password; the page says for how long.
    let res = app.login(&b, "victim@example.com", PW, ip).await;
    assert_eq!(res.status(), 429);
    let wait = retry_after(&res);
    assert!((25..=30).contains(&wait), "{wait}");
    assert!(res.text().await.unwrap().contains("Too many failed attempts"));
    // Attempts during the block are not counted: waiting it out is enough.
    app.clock.advance(31);
    assert_eq!(app.login(&b, "victim@example.com", "guess", ip).await.status(), 401);
    let res = app.login(&b, "victim@example.com", PW, ip).await;
    assert_eq!(res.status(), 429);
    let wait = retry_after(&res);
    assert!((55..=60).contains(&wait), "second block doubles: {wait}");
    // Never more than the cap.
    for _ in 0..4 {
        app.clock.advance(121);
        app.login(&b, "victim@example.com", "guess", ip).await;
    }
    let res = app.login(&b, "victim@example.com", PW, ip).await;
    assert!(retry_after(&res) <= 120);
    app.clock.advance(121);
    assert_eq!(app.login(&b, "victim@example.com", PW, ip).await.status(), 303, "never locked for good");
}

#[tokio::test]
async fn unknown_emails_are_throttled_exactly_like_known_ones() {
    let app = app().await;
    app.create_user("known@example.com", PW).await;
    let mut statuses = Vec::new();
    for email in ["known@example.com", "ghost@example.com"] {
        let b = app.browser();
        let mut seq = Vec::new();
        for _ in 0..5 {
            seq.push(app.login(&b, email, "guess", Some("203.0.113.5")).await.status().as_u16());
        }
        statuses.push(seq);
        app.clock.advance(3601);
    }
    assert_eq!(statuses[0], vec![401, 401, 401, 401, 429]);
    assert_eq!(statuses[0], statuses[1]);
}

#[tokio::test]
async fn an_attacker_elsewhere_does_not_lock_out_a_known_browser() {
    let app = app().await;
    app.create_user("ceo@example.com", PW).await;
    let victim = app.browser();
    assert_eq!(app.login(&victim, "ceo@example.com", PW, Some("192.0.2.10")).await.status(), 303);
    // Later the session is over; the browser keeps its device cookie.
    app.logout(&victim).await;

    // Spray from many addresses, each under its own per-IP allowance.
    for i in 0..8 {
        let a = app.browser();
        let ip = format!("203.0.113.{}", 20 + i / 2);
        app.login(&a, "ceo@example.com", "guess", Some(&ip)).await;
    }
    // The account is now under an account-wide delay for unknown browsers...
    let stranger = app.browser();
    assert_eq!(app.login(&stranger, "ceo@example.com", PW, Some("192.0.2.99")).await.status(), 429);
    // ...but the victim's browser, which signed in before, still gets in.
    assert_eq!(app.login(&victim, "ceo@example.com", PW, Some("192.0.2.10")).await.status(), 303);
}

#[tokio::test]
async fn one_address_failing_across_many_accounts_is_slowed_down() {
    let app = app().await;
    app.create_user("target@example.com", PW).await;
    let b = app.browser();
    for i in 0..11 {
        app.login(&b, &format!("user{i}@example.com"), "guess", Some("198.51.100.66")).await;
    }
    let res = app.login(&b, "target@example.com", PW, Some("198.51.100.66")).await;
    assert_eq!(res.status(), 429);
    // Other addresses are unaffected.
    let other = app.browser();
    assert_eq!(app.login(&other, "target@example.com", PW, Some("198.51.100.67")).await.status(), 303);
}

#[tokio::test]
async fn throttle_state_is_shared_by_every_node() {
    let a = app().await;
    let b = a.spawn_sibling().await;
    a.create_user("shared@example.com", PW).await;
    let ba = a.browser();
    for _ in 0..4 {
        a.login(&ba, "shared@example.com", "guess", Some("198.51.100.9")).await;
    }
    let bb = b.browser();
    assert_eq!(b.login(&bb, "shared@example.com", PW, Some("198.51.100.9")).await.status(), 429);
}
