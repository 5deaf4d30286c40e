//! Contract of the OpenID Provider's store traits (clients, consents, grants, codes, refresh
//! tokens, access-token revocations, sign-in sessions), run on the durable store of the run:
//! SQLite, or PostgreSQL when `DATABASE_URL` is set (CI runs both). Single-use statements are
//! exercised under concurrency: exactly one winner, and nothing stored by the losers.

use std::sync::Arc;

use guichet::domain::{AuthSessionRecord, Client, ClientId, Grant, GrantId, NewAuthCode, NewRefresh, User, UserStatus};
use guichet::store::{Consumed, StoreError, Stores};

use crate::helpers::TestApp;
use crate::oidc_helpers::{registration, PW};

struct Fixture {
    app: TestApp,
    client: Client,
    user: User,
}

/// A user as JSON: `User` has no `PartialEq`, and its JSON shows every field.
fn json(user: &Option<User>) -> serde_json::Value {
    serde_json::to_value(user).unwrap()
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let user = app.create_user("store@example.com", PW).await;
    let client = app.register(registration("Store client")).await.client;
    Fixture { app, client, user }
}

impl Fixture {
    fn stores(&self) -> &Stores {
        &self.app.state.stores
    }

    fn grant(&self, sid: &str, offline: bool) -> Grant {
        let now = self.app.state.clock.now();
        Grant {
            id: GrantId::new_random(),
            client_id: self.client.client_id.clone(),
            user_id: Some(self.user.id),
            sid: Some(sid.to_owned()),
            scope: "openid email".into(),
            offline,
            auth_time: now,
            acr: Some("1".into()),
            amr: vec!["pwd".into()],
            claims: Some(serde_json::json!({"userinfo": {"email": null}})),
            org_id: None,
            idp: None,
            created_at: now,
            expires_at: now.plus_secs(3600),
            revoked_at: None,
        }
    }

    fn refresh(&self, g: &Grant, hash: &str) -> NewRefresh {
        NewRefresh {
            token_hash: hash.into(),
            grant_id: g.id,
            scope: g.scope.clone(),
            expires_at: self.app.state.clock.now().plus_secs(600),
        }
    }
}

#[tokio::test]
async fn client_and_consent_store_contract() {
    let f = fixture().await;
    let s = f.stores();
    let c = s.clients.client(&f.client.client_id).await.unwrap().unwrap();
    assert_eq!(c.redirect_uris, f.client.redirect_uris);
    assert_eq!(c.grant_types, f.client.grant_types);
    assert!(!c.introspection);
    assert!(s.clients.client(&ClientId::new("nope")).await.unwrap().is_none());
    assert!(matches!(s.clients.create_client(&c).await, Err(StoreError::Conflict { .. })), "same id twice");
    assert_eq!(s.clients.list_clients().await.unwrap().len(), 1);
    s.clients.set_client_secret_digest(&c.client_id, "d2").await.unwrap();
    assert_eq!(s.clients.client(&c.client_id).await.unwrap().unwrap().secret_digest.as_deref(), Some("d2"));
    assert!(matches!(s.clients.set_client_secret_digest(&ClientId::new("nope"), "d").await, Err(StoreError::NotFound)));

    assert!(s.consents.consent(f.user.id, &c.client_id).await.unwrap().is_none());
    s.consents.save_consent(f.user.id, &c.client_id, "openid").await.unwrap();
    s.consents.save_consent(f.user.id, &c.client_id, "openid email").await.unwrap();
    assert_eq!(s.consents.consent(f.user.id, &c.client_id).await.unwrap().as_deref(), Some("openid email"));
    let of = s.consents.consents_of(f.user.id).await.unwrap();
    assert_eq!(of.len(), 1);
    assert_eq!(of[0].1, "openid email");
    s.consents.delete_consent(f.user.id, &c.client_id).await.unwrap();
    assert!(s.consents.consent(f.user.id, &c.client_id).await.unwrap().is_none());

    // Deleting a client takes its grants with it.
    let g = f.grant("sid-del", false);
    s.grants.create_grant(&g).await.unwrap();
    s.clients.delete_client(&c.client_id).await.unwrap();
    assert!(s.grants.grant(g.id).await.unwrap().is_none());
    assert!(matches!(s.clients.delete_client(&c.client_id).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn grant_store_contract() {
    let f = fixture().await;
    let s = f.stores();
    let now = f.app.state.clock.now();
    let g = f.grant("sid-1", false);
    let offline = f.grant("sid-1", true);
    let other = f.grant("sid-2", false);
    for x in [&g, &offline, &other] {
        s.grants.create_grant(x).await.unwrap();
    }
    let back = s.grants.grant(g.id).await.unwrap().unwrap();
    assert_eq!(back.amr, g.amr);
    assert_eq!(back.claims, g.claims);
    assert!(back.is_active(now));
    // A session's grants: non-offline ones only, unless asked.
    let revoked = s.grants.revoke_session_grants("sid-1", false, now).await.unwrap();
    assert_eq!(revoked.iter().map(|x| x.id).collect::<Vec<_>>(), vec![g.id]);
    assert!(s.grants.grant(offline.id).await.unwrap().unwrap().is_active(now));
    assert_eq!(s.grants.session_grants("sid-1").await.unwrap().len(), 2);
    let revoked = s.grants.revoke_session_grants("sid-1", true, now).await.unwrap();
    assert_eq!(revoked.iter().map(|x| x.id).collect::<Vec<_>>(), vec![offline.id], "already revoked ones stay out");
    s.grants.revoke_user_client_grants(f.user.id, &f.client.client_id, now).await.unwrap();
    assert!(!s.grants.grant(other.id).await.unwrap().unwrap().is_active(now));
    s.grants.revoke_grant(other.id, now.plus_secs(5)).await.unwrap();
    assert_eq!(s.grants.grant(other.id).await.unwrap().unwrap().revoked_at, Some(now), "first revocation kept");
}

#[tokio::test]
async fn codes_are_redeemed_once_with_their_refresh_token() {
    let f = fixture().await;
    let s = f.stores();
    let now = f.app.state.clock.now();
    let g = f.grant("sid-c", false);
    s.grants.create_grant(&g).await.unwrap();
    let code = NewAuthCode {
        code_hash: "code-1".into(),
        grant_id: g.id,
        redirect_uri: "https://rp.example.com/cb".into(),
        nonce: Some("n".into()),
        code_challenge: None,
        expires_at: now.plus_secs(60),
    };
    s.grants.insert_code(&code).await.unwrap();
    let (peek, consumed) = s.grants.code("code-1").await.unwrap().unwrap();
    assert!(!consumed);
    assert_eq!(peek.nonce.as_deref(), Some("n"));
    assert!(s.grants.code("nope").await.unwrap().is_none());
    // 16 concurrent redemptions: one wins and stores its refresh token; the others store nothing.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let grants = s.grants.clone();
        let r = f.refresh(&g, &format!("rt-{i}"));
        tasks.push(tokio::spawn(async move { (i, grants.redeem_code("code-1", now, Some(&r)).await.unwrap()) }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, outcome) = t.await.unwrap();
        match outcome {
            Consumed::Fresh(c) => {
                assert_eq!(c.grant_id, g.id);
                winners.push(i);
            }
            Consumed::Replayed(id) => assert_eq!(id, g.id),
            Consumed::NotFound => panic!("a known code is never NotFound"),
        }
    }
    assert_eq!(winners.len(), 1);
    for i in 0..16 {
        let stored = s.grants.refresh(&format!("rt-{i}")).await.unwrap().is_some();
        assert_eq!(stored, winners.contains(&i), "only the winner's refresh token exists (rt-{i})");
    }
    assert!(s.grants.code("code-1").await.unwrap().unwrap().1, "consumed");
    assert!(matches!(s.grants.redeem_code("nope", now, None).await.unwrap(), Consumed::NotFound));
    // An expired code is not redeemable.
    let late = NewAuthCode { code_hash: "code-2".into(), expires_at: now.plus_secs(1), ..code };
    s.grants.insert_code(&late).await.unwrap();
    assert!(matches!(s.grants.redeem_code("code-2", now.plus_secs(5), None).await.unwrap(), Consumed::NotFound));
}

#[tokio::test]
async fn refresh_tokens_rotate_once_with_their_successor() {
    let f = fixture().await;
    let s = f.stores();
    let now = f.app.state.clock.now();
    let g = f.grant("sid-r", false);
    s.grants.create_grant(&g).await.unwrap();
    s.grants.insert_refresh(&f.refresh(&g, "rt-0")).await.unwrap();
    assert!(s.grants.refresh("rt-0").await.unwrap().unwrap().used_at.is_none());
    // The token, its grant and the grant's user in one read: the same records as the reads apart.
    let (rec, grant, user) = s.grants.refresh_grant("rt-0").await.unwrap().unwrap();
    assert_eq!(Some(rec), s.grants.refresh("rt-0").await.unwrap());
    assert_eq!(Some(grant), s.grants.grant(g.id).await.unwrap());
    assert_eq!(json(&user), json(&s.users.user_by_id(f.user.id).await.unwrap()));
    assert_eq!(user.map(|u| u.id), Some(f.user.id));
    assert!(s.grants.refresh_grant("nope").await.unwrap().is_none());
    // A suspended user is read as such (the token endpoint refuses them); a grant without a
    // user reads none.
    s.users.set_status(f.user.id, UserStatus::Suspended).await.unwrap();
    let (_, _, user) = s.grants.refresh_grant("rt-0").await.unwrap().unwrap();
    assert_eq!(user.map(|u| u.status), Some(UserStatus::Suspended));
    s.users.set_status(f.user.id, UserStatus::Active).await.unwrap();
    let lone = Grant { user_id: None, ..f.grant("sid-lone", false) };
    s.grants.create_grant(&lone).await.unwrap();
    s.grants.insert_refresh(&f.refresh(&lone, "rt-lone")).await.unwrap();
    let (_, grant, user) = s.grants.refresh_grant("rt-lone").await.unwrap().unwrap();
    assert_eq!((grant.id, user.is_none()), (lone.id, true));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let grants = s.grants.clone();
        let next = f.refresh(&g, &format!("rt-next-{i}"));
        tasks.push(tokio::spawn(async move { (i, grants.rotate_refresh("rt-0", now, &next).await.unwrap()) }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, outcome) = t.await.unwrap();
        match outcome {
            Consumed::Fresh(()) => winners.push(i),
            Consumed::Replayed(id) => assert_eq!(id, g.id),
            Consumed::NotFound => panic!("a known token is never NotFound"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation");
    for i in 0..16 {
        let stored = s.grants.refresh(&format!("rt-next-{i}")).await.unwrap();
        assert_eq!(stored.is_some(), winners.contains(&i), "only the winner's successor exists");
        if let Some(next) = stored {
            assert_eq!((next.grant_id, next.created_at, next.used_at), (g.id, now, None));
        }
    }
    assert_eq!(s.grants.refresh("rt-0").await.unwrap().unwrap().used_at, Some(now));
    // A retried rotation: the unused replacement is retired and another stored, atomically.
    let winner = format!("rt-next-{}", winners[0]);
    let retry = f.refresh(&g, "rt-retry");
    assert!(matches!(s.grants.retry_rotation("rt-0", now, &retry).await.unwrap(), Consumed::Fresh(_)));
    assert!(s.grants.refresh(&winner).await.unwrap().unwrap().used_at.is_some(), "replacement retired");
    assert!(s.grants.refresh("rt-retry").await.unwrap().unwrap().used_at.is_none());
    // Once the replacement was used, a retry is a reuse and stores nothing.
    let after = f.refresh(&g, "rt-after-retry");
    assert!(matches!(s.grants.rotate_refresh("rt-retry", now, &after).await.unwrap(), Consumed::Fresh(_)));
    let late = f.refresh(&g, "rt-late");
    assert!(matches!(s.grants.retry_rotation("rt-0", now, &late).await.unwrap(), Consumed::Replayed(_)));
    assert!(s.grants.refresh("rt-late").await.unwrap().is_none());
    // Expired: not rotated, nothing stored.
    s.grants.insert_refresh(&NewRefresh { expires_at: now.plus_secs(1), ..f.refresh(&g, "rt-old") }).await.unwrap();
    let next = f.refresh(&g, "rt-after-old");
    assert!(matches!(s.grants.rotate_refresh("rt-old", now.plus_secs(5), &next).await.unwrap(), Consumed::NotFound));
    assert!(s.grants.refresh("rt-after-old").await.unwrap().is_none());
    assert!(s.grants.refresh("rt-old").await.unwrap().unwrap().used_at.is_none(), "an expired token is not spent");
    assert!(matches!(s.grants.rotate_refresh("unknown", now, &next).await.unwrap(), Consumed::NotFound));
}

#[tokio::test]
async fn access_token_revocations_are_durable_until_expiry() {
    let f = fixture().await;
    let s = f.stores();
    let now = f.app.state.clock.now();
    assert!(!s.grants.access_token_revoked("jti-1").await.unwrap());
    s.grants.revoke_access_token("jti-1", now.plus_secs(60)).await.unwrap();
    s.grants.revoke_access_token("jti-1", now.plus_secs(60)).await.unwrap();
    assert!(s.grants.access_token_revoked("jti-1").await.unwrap());
    s.grants.revoke_access_token("jti-2", now.plus_secs(7200)).await.unwrap();
    // Checked together with the token's grant, in one query.
    let g = f.grant("sid-at", false);
    s.grants.create_grant(&g).await.unwrap();
    let (revoked, grant) = s.grants.access_token_grant("jti-1", g.id).await.unwrap();
    assert!(revoked);
    assert_eq!(grant.map(|x| x.id), Some(g.id));
    let (revoked, grant) = s.grants.access_token_grant("jti-other", g.id).await.unwrap();
    assert!(!revoked && grant.is_some());
    assert!(s.grants.access_token_grant("jti-1", GrantId::new_random()).await.unwrap().1.is_none());
    // With the grant's user, in the same query (userinfo).
    let (revoked, found) = s.grants.access_token_grant_user("jti-1", g.id).await.unwrap();
    let (grant, user) = found.unwrap();
    assert!(revoked);
    assert_eq!(Some(grant), s.grants.grant(g.id).await.unwrap());
    assert_eq!(json(&user), json(&s.users.user_by_id(f.user.id).await.unwrap()));
    let (revoked, found) = s.grants.access_token_grant_user("jti-other", g.id).await.unwrap();
    assert!(!revoked && found.is_some_and(|(_, u)| u.is_some()));
    assert!(s.grants.access_token_grant_user("jti-1", GrantId::new_random()).await.unwrap().1.is_none());
    s.grants.purge_grants(now.plus_secs(120)).await.unwrap();
    assert!(!s.grants.access_token_revoked("jti-1").await.unwrap(), "gone once the token expired");
    assert!(s.grants.access_token_revoked("jti-2").await.unwrap());
}

#[tokio::test]
async fn auth_session_store_contract() {
    let f = fixture().await;
    let s = &f.stores().auth_sessions;
    let now = f.app.state.clock.now();
    let rec = AuthSessionRecord {
        sid: "sid-a".into(),
        user_id: f.user.id,
        auth_time: now,
        last_seen: now,
        idle_expires_at: now.plus_secs(100),
        expires_at: now.plus_secs(1000),
        ended_at: None,
        amr: vec!["pwd".into()],
        acr: Some("1".into()),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    };
    s.open_session(&rec).await.unwrap();
    s.open_session(&AuthSessionRecord { sid: "sid-b".into(), auth_time: now.plus_secs(1), ..rec.clone() })
        .await
        .unwrap();
    assert_eq!(s.auth_session("sid-a").await.unwrap().unwrap(), rec);
    assert!(s.auth_session("nope").await.unwrap().is_none());
    let mine = s.sessions_of(f.user.id).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.sid.as_str()).collect::<Vec<_>>(), vec!["sid-b", "sid-a"], "newest first");
    s.touch_session("sid-a", now.plus_secs(50), now.plus_secs(150)).await.unwrap();
    assert_eq!(s.auth_session("sid-a").await.unwrap().unwrap().idle_expires_at, now.plus_secs(150));
    s.reauthenticated(
        "sid-a",
        now.plus_secs(60),
        now.plus_secs(160),
        now.plus_secs(1060),
        &["pwd".into(), "otp".into(), "mfa".into()],
        Some("urn:guichet:acr:mfa"),
    )
    .await
    .unwrap();
    let a = s.auth_session("sid-a").await.unwrap().unwrap();
    assert_eq!((a.auth_time, a.expires_at), (now.plus_secs(60), now.plus_secs(1060)));
    assert_eq!((a.amr.len(), a.acr.as_deref()), (3, Some("urn:guichet:acr:mfa")), "a step-up is recorded");
    // Lapsed: past idle or absolute deadline, and not ended.
    assert!(s.lapsed_sessions(now.plus_secs(120), 10).await.unwrap().contains(&"sid-b".to_owned()));
    assert!(!s.lapsed_sessions(now.plus_secs(120), 10).await.unwrap().contains(&"sid-a".to_owned()));
    // Ending: once.
    let ends = Arc::new(s.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let st = ends.clone();
        tasks.push(tokio::spawn(async move { st.end_auth_session("sid-b", now.plus_secs(130)).await.unwrap() }));
    }
    let mut ended = 0;
    for t in tasks {
        if t.await.unwrap() {
            ended += 1;
        }
    }
    assert_eq!(ended, 1, "a session ends once");
    assert_eq!(s.auth_session("sid-b").await.unwrap().unwrap().ended_at, Some(now.plus_secs(130)));
    assert!(!s.lapsed_sessions(now.plus_secs(5000), 10).await.unwrap().contains(&"sid-b".to_owned()));
}

/// Statements outside transactions and transactions share the pool without starving each
/// other, even in a pool of two connections (on SQLite, a stack of one connection kept out of
/// sqlx's pool for statements), and statements cancelled in flight leave their connection
/// usable. A starved task would fail with a pool timeout (5 s).
#[tokio::test]
async fn statements_transactions_and_cancellations_share_a_small_pool() {
    let app = TestApp::spawn_with(|s| s.database.max_connections = 2).await;
    let user = app.create_user("pool@example.com", PW).await;
    let client = app.register(registration("Pool client")).await.client;
    let f = Fixture { app, client, user };
    let s = f.stores();
    let now = f.app.state.clock.now();
    let g = f.grant("sid-pool", false);
    s.grants.create_grant(&g).await.unwrap();
    s.grants.insert_refresh(&f.refresh(&g, "pool-0")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let grants = s.grants.clone();
        let next = f.refresh(&g, &format!("pool-{}", i + 1));
        let gid = g.id;
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                // rotations of one token: transactions, one wins
                0 | 1 => matches!(grants.rotate_refresh("pool-0", now, &next).await.unwrap(), Consumed::Fresh(_)),
                // reads
                2 => {
                    assert!(grants.grant(gid).await.unwrap().is_some());
                    assert!(grants.refresh_grant("pool-0").await.unwrap().is_some());
                    false
                }
                // a read cancelled at once, whatever point it reached
                _ => {
                    let _ = tokio::time::timeout(std::time::Duration::from_micros(1), grants.grant(gid)).await;
                    false
                }
            }
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    // Every connection still answers, with the right rows.
    for _ in 0..8 {
        assert_eq!(s.grants.grant(g.id).await.unwrap().map(|x| x.id), Some(g.id));
        assert!(s.grants.refresh("nope").await.unwrap().is_none());
    }
}
