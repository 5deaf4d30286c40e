//! The live event stream (`/api/v1/events/stream`, Server-Sent Events): a key's organization's
//! events as they happen, resumable with `Last-Event-ID`, another organization's never;
//! `login.succeeded` / `login.failed` for its members, `session.revoked` when a member's session
//! ends (so a portal signs them out at once).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;

use crate::helpers::TestApp;

const P: Actor = Actor::Platform;

/// An open stream: reads `event:`/`id:`/`data:` blocks.
struct Stream {
    res: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(app: &TestApp, auth: &str, last_id: Option<&str>) -> Self {
        let mut r = reqwest::Client::new().get(app.url("/api/v1/events/stream")).header("authorization", auth);
        if let Some(id) = last_id {
            r = r.header("last-event-id", id);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        Stream { res, buf: String::new() }
    }

    /// The next event: (id, type, data).
    async fn next(&mut self) -> Option<(String, String, serde_json::Value)> {
        self.next_within(8).await
    }

    async fn next_within(&mut self, secs: u64) -> Option<(String, String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if kind.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((id, kind, serde_json::from_str(&data).unwrap()));
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await.ok()?.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The first event of type `kind`, from those already read (`seen`) or read now.
async fn until(stream: &mut Stream, seen: &mut Vec<(String, serde_json::Value)>, kind: &str) -> serde_json::Value {
    loop {
        if let Some(i) = seen.iter().position(|(k, _)| k == kind) {
            return seen.remove(i).1;
        }
        let (_, k, data) = stream.next().await.unwrap_or_else(|| panic!("no {kind} event; read {seen:?}"));
        seen.push((k, data));
    }
}

fn basic(key: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:{secret}")))
}

#[tokio::test]
async fn the_stream_carries_the_organizations_events_and_resumes() {
    let app = TestApp::spawn().await;
    let orgs = &app.state.orgs;
    orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    let (k, s) = app.state.devkeys.create(P, "acme", "portal", &["read".into()], None).await.unwrap();
    let (gk, gs) = app.state.devkeys.create(P, "globex", "portal", &["read".into()], None).await.unwrap();
    let auth = basic(&k.id, &s);
    let mut stream = Stream::open(&app, &auth, None).await;
    let mut globex = Stream::open(&app, &basic(&gk.id, &gs), None).await;
    app.create_user("ann@acme.test", "correct horse battery").await;
    orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Member).await.unwrap();
    let (id1, kind, data) = stream.next().await.expect("an event");
    assert_eq!(kind, "membership.changed");
    assert_eq!(data["type"], "membership.changed");
    assert!(data["id"].as_str().unwrap().starts_with("evt_"));
    // A second event while the client is away: it gets it when it comes back with Last-Event-ID.
    drop(stream);
    orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Admin).await.unwrap();
    let mut again = Stream::open(&app, &auth, Some(&id1)).await;
    let (id2, kind, data) = again.next().await.expect("the missed event");
    assert_eq!(kind, "membership.changed");
    assert_eq!(data["data"]["action"], "org.member_role_changed");
    assert!(id2.parse::<i64>().unwrap() > id1.parse::<i64>().unwrap());
    // A member signs in (login.succeeded), then out: session.revoked.
    let b = app.browser();
    assert_eq!(app.login(&b, "ann@acme.test", "correct horse battery", None).await.status(), 303);
    app.logout(&b).await;
    let ann = app.state.accounts.user_by_email("ann@acme.test").await.unwrap().unwrap();
    // Events are written when each change is done: their order across changes is not promised.
    let mut seen: Vec<(String, serde_json::Value)> = Vec::new();
    let revoked = until(&mut again, &mut seen, "session.revoked").await;
    until(&mut again, &mut seen, "login.succeeded").await;
    assert_eq!(revoked["data"]["user"], ann.id.to_string());
    // A wrong password: login.failed.
    let b = app.browser();
    assert_ne!(app.login(&b, "ann@acme.test", "wrong password!!", None).await.status(), 303);
    let failed = until(&mut again, &mut seen, "login.failed").await;
    assert_eq!(failed["data"]["method"], "pwd");
    // A second factor enrolled: mfa.enabled.
    let e = app.state.mfa.totp_enrolment(&ann).await.unwrap();
    let bytes = totp_rs::Secret::Encoded(e.secret_base32.clone()).to_bytes().unwrap();
    let t = u64::try_from(app.state.clock.now().0).unwrap();
    let code = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).unwrap().generate(t);
    app.state.mfa.confirm_totp(&ann, &code).await.unwrap();
    let enabled = until(&mut again, &mut seen, "mfa.enabled").await;
    assert_eq!(enabled["data"]["kind"], "totp");
    // Globex's stream saw none of it.
    assert!(globex.next_within(2).await.is_none(), "another organization's events are not sent");
    // Bad resume point: 400; no key: 401.
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/events/stream"))
        .header("authorization", &auth)
        .header("last-event-id", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(reqwest::get(app.url("/api/v1/events/stream")).await.unwrap().status(), 401);
}

/// An account created by a federated sign-in (JIT, as a member): `user.created` in its
/// organization's stream, then its `login.succeeded` (method `fed`).
#[tokio::test]
async fn a_jit_account_raises_user_created() {
    let s = crate::saml::saml(guichet::federation::saml::SamlOptions::default()).await;
    let (k, secret) = s.hub.state.devkeys.create(P, "acme", "portal", &["read".into()], None).await.unwrap();
    let mut stream = Stream::open(&s.hub, &basic(&k.id, &secret), None).await;
    let b = s.hub.browser();
    assert_eq!(s.sign_in_with(&b, |_| {}).await.status(), 303);
    // Both arrive; their order is not promised (each is written when its change is done).
    let mut seen = Vec::new();
    let created = until(&mut stream, &mut seen, "user.created").await;
    assert_eq!(created["data"]["email"], "ann@acme.test");
    assert_eq!(created["data"]["via"], "federation");
    assert_eq!(until(&mut stream, &mut seen, "login.succeeded").await["data"]["method"], "fed");
}

/// A stream open on one node hears events written on another at once: through Redis pub/sub
/// when Redis is configured (its streams poll only every 5 s), else by reading the shared log
/// every second.
#[tokio::test]
async fn events_written_on_one_node_reach_streams_on_another() {
    let a = TestApp::spawn().await;
    let b = a.spawn_sibling().await;
    let redis = std::env::var("REDIS_URL").is_ok_and(|u| !u.is_empty());
    assert_eq!(b.state.bus.fanout(), if redis { "redis" } else { "local" });
    a.state.orgs.create(P, "Roaming Corp", Some("roaming"), None).await.unwrap();
    let (k, s) = a.state.devkeys.create(P, "roaming", "portal", &["read".into()], None).await.unwrap();
    a.create_user("rea@roaming.test", "correct horse battery").await;
    let mut stream = Stream::open(&b, &basic(&k.id, &s), None).await;
    // Let the stream settle on its first (empty) read.
    assert!(stream.next_within(1).await.is_none());
    for role in [OrgRole::Member, OrgRole::Admin, OrgRole::Member] {
        let t = std::time::Instant::now();
        a.state.orgs.set_member(P, "roaming", "rea@roaming.test", role).await.unwrap();
        let (_, kind, _) = stream.next_within(5).await.expect("the event");
        assert_eq!(kind, "membership.changed");
        assert!(t.elapsed() < std::time::Duration::from_millis(2500), "took {:?}", t.elapsed());
    }
}
