//! One contract for every store implementation. The durable store is SQLite, or PostgreSQL when
//! `DATABASE_URL` is set; the ephemeral contract runs on the SQL implementation always and on
//! Redis too when `REDIS_URL` is set. CI runs both configurations.

use std::sync::Arc;
use std::time::Duration;

use guichet::config::DatabaseKind;
use guichet::domain::clock::OffsetClock;
use guichet::domain::{Email, NewUser, UserId, UserStatus};
use guichet::store::redis_ephemeral::RedisEphemeral;
use guichet::store::sql::{PgStore, SqliteStore};
use guichet::store::{EphemeralStore, StoreError, UserStore};

use crate::helpers::{fresh_store_settings, TestApp};

struct Eph {
    store: Arc<dyn EphemeralStore>,
    clock: OffsetClock,
    real_time: bool,
    _dir: tempfile::TempDir,
}

impl Eph {
    /// Lets `secs` pass for this store: our clock for SQL, the real clock for Redis.
    async fn pass(&self, secs: u64) {
        self.clock.advance(i64::try_from(secs).unwrap());
        if self.real_time {
            tokio::time::sleep(Duration::from_millis(secs * 1000 + 100)).await;
        }
    }
}

async fn sql_ephemeral() -> Eph {
    let dir = tempfile::tempdir().unwrap();
    let s = fresh_store_settings(dir.path()).await;
    let clock = OffsetClock::new();
    let store: Arc<dyn EphemeralStore> = match s.database.kind().unwrap() {
        DatabaseKind::Sqlite => {
            let st = SqliteStore::connect(&s.database.url, 4, Arc::new(clock.clone())).await.unwrap();
            st.migrate().await.unwrap();
            Arc::new(st)
        }
        DatabaseKind::Postgres => {
            let st = PgStore::connect(&s.database.url, 4, Arc::new(clock.clone())).await.unwrap();
            st.migrate().await.unwrap();
            Arc::new(st)
        }
    };
    Eph { store, clock, real_time: false, _dir: dir }
}

async fn redis_ephemeral() -> Option<Eph> {
    let url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty())?;
    let prefix = format!("guichet-test-{}:", uuid::Uuid::new_v4().simple());
    // REDIS_URL set but Redis unreachable is a failure, never a silent pass.
    let store = RedisEphemeral::connect(&url, &prefix).await.expect("REDIS_URL is set: Redis must be reachable");
    Some(Eph { store: Arc::new(store), clock: OffsetClock::new(), real_time: true, _dir: tempfile::tempdir().unwrap() })
}

async fn ephemeral_contract(e: Eph) {
    let s = &e.store;
    let ttl = Duration::from_secs(1);
    let long = Duration::from_secs(600);
    s.ping().await.unwrap();
    // put / get / replace / delete
    assert_eq!(s.get("k").await.unwrap(), None);
    s.put("k", b"one", long).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
    s.put("k", b"two", long).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    s.delete("k").await.unwrap();
    assert_eq!(s.get("k").await.unwrap(), None);
    s.delete("never-there").await.unwrap();
    // binary values survive
    let bin: Vec<u8> = (0..=255).collect();
    s.put("bin", &bin, long).await.unwrap();
    assert_eq!(s.get("bin").await.unwrap(), Some(bin));

    // take: exactly once, even under contention
    s.put("code", b"secret", long).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.take("code").await.unwrap() }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "a one-time value is taken exactly once");
    assert_eq!(s.take("code").await.unwrap(), None);

    // put_if_absent: first presenter wins, even concurrently
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.put_if_absent("jti", &[i], long).await.unwrap() }));
    }
    let mut firsts = 0;
    for t in tasks {
        if t.await.unwrap() {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);

    // incr: atomic, fixed window
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.incr("ctr", long).await.unwrap() }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<i64>>());
    // decr: gives one back, never below zero, never creates a counter
    s.decr("ctr").await.unwrap();
    assert_eq!(s.incr("ctr", long).await.unwrap(), 20);
    s.decr("no-ctr").await.unwrap();
    assert_eq!(s.incr("no-ctr", long).await.unwrap(), 1, "decr of a missing counter creates nothing");
    s.decr("no-ctr").await.unwrap();
    s.decr("no-ctr").await.unwrap();
    assert_eq!(s.incr("no-ctr", long).await.unwrap(), 1, "not below zero");

    // expiry
    s.put("short", b"x", ttl).await.unwrap();
    assert!(s.put_if_absent("short-jti", b"x", ttl).await.unwrap());
    assert_eq!(s.incr("short-ctr", ttl).await.unwrap(), 1);
    assert_eq!(s.incr("short-ctr", ttl).await.unwrap(), 2);
    s.put("short-take", b"x", ttl).await.unwrap();
    e.pass(2).await;
    assert_eq!(s.get("short").await.unwrap(), None, "expired values are gone");
    assert_eq!(s.take("short-take").await.unwrap(), None, "expired values cannot be taken");
    assert!(s.put_if_absent("short-jti", b"x", ttl).await.unwrap(), "an expired marker can be set again");
    assert_eq!(s.incr("short-ctr", ttl).await.unwrap(), 1, "a new window starts at 1");
    assert_eq!(s.get("k-long-lived").await.unwrap(), None);
}

#[tokio::test]
async fn sql_ephemeral_store_contract() {
    ephemeral_contract(sql_ephemeral().await).await;
}

#[tokio::test]
async fn redis_ephemeral_store_contract() {
    match redis_ephemeral().await {
        Some(e) => ephemeral_contract(e).await,
        None => eprintln!("REDIS_URL not set: the Redis contract runs in the PostgreSQL+Redis CI pass"),
    }
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        name: Some("Test".into()),
        password_hash: Some("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        status: UserStatus::Active,
        is_admin: false,
    }
}

#[tokio::test]
async fn user_store_contract() {
    let app = TestApp::spawn().await;
    let users: Arc<dyn UserStore> = app.state.stores.users.clone();
    let alice = users.create_user(new_user(" Alice@Example.com ")).await.unwrap();
    assert_eq!(alice.email.as_str(), "Alice@Example.com");
    assert_eq!(alice.status, UserStatus::Active);

    // Uniqueness is case-insensitive and NFC-aware; nothing half-written on conflict.
    for dup in ["alice@example.com", "ALICE@EXAMPLE.COM"] {
        assert!(matches!(
            users.create_user(new_user(dup)).await,
            Err(StoreError::Conflict { constraint: "users_email" })
        ));
    }
    users.create_user(new_user("h\u{e9}l\u{e8}ne@example.fr")).await.unwrap();
    assert!(matches!(
        users.create_user(new_user("HE\u{301}LE\u{300}NE@example.fr")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(users.list_users(100, 0).await.unwrap().len(), 2);

    let creds = users.credentials_by_email("alice@example.com").await.unwrap().unwrap();
    assert_eq!(creds.user.id, alice.id);
    assert!(creds.password_hash.is_some());
    assert!(users.credentials_by_email("nobody@example.com").await.unwrap().is_none());
    assert_eq!(users.user_by_id(alice.id).await.unwrap().unwrap().email, alice.email);
    assert!(users.user_by_id(UserId::new_random()).await.unwrap().is_none());

    users.set_status(alice.id, UserStatus::Suspended).await.unwrap();
    assert_eq!(users.user_by_id(alice.id).await.unwrap().unwrap().status, UserStatus::Suspended);
    users.set_password_hash(alice.id, "$argon2id$new").await.unwrap();
    assert_eq!(
        users.credentials_by_email("alice@example.com").await.unwrap().unwrap().password_hash.as_deref(),
        Some("$argon2id$new")
    );
    assert!(matches!(users.set_status(UserId::new_random(), UserStatus::Active).await, Err(StoreError::NotFound)));

    // Paging is stable.
    let page1 = users.list_users(1, 0).await.unwrap();
    let page2 = users.list_users(1, 1).await.unwrap();
    assert_eq!(page1.len(), 1);
    assert_eq!(page2.len(), 1);
    assert_ne!(page1[0].id, page2[0].id);

    // Racing sign-ups for one address: exactly one account.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let users = users.clone();
        let email = if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" };
        tasks.push(tokio::spawn(async move { users.create_user(new_user(email)).await.is_ok() }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.unwrap() {
            created += 1;
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn migrations_are_idempotent_and_concurrent_safe() {
    let dir = tempfile::tempdir().unwrap();
    let s = fresh_store_settings(dir.path()).await;
    let clock = Arc::new(OffsetClock::new());
    let (a, b) =
        tokio::join!(guichet::app::open_stores(&s, clock.clone()), guichet::app::open_stores(&s, clock.clone()));
    let applied: Vec<i64> = a.unwrap().applied_migrations.into_iter().chain(b.unwrap().applied_migrations).collect();
    let every: Vec<i64> = guichet::store::migrations::SQLITE.iter().map(|m| m.version).collect();
    assert_eq!(applied, every, "each step applied exactly once across concurrent starters");
    let again = guichet::app::open_stores(&s, clock).await.unwrap();
    assert!(again.applied_migrations.is_empty());
}
