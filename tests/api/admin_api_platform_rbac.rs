//! The platform's own catalogue through the admin API: a client's permissions
//! (`/api/v1/permissions`, `/api/v1/clients/{client_id}/permissions/{name}`) and the platform's
//! roles (`/api/v1/roles`, `/api/v1/roles/{role}`), managed by a platform admin's session (with
//! `X-CSRF-Token`) or personal key; a role made here is grantable in every organization and
//! shows in tokens. Anyone else (an organization's key, another user) finds nothing there (404);
//! a read-only key writing gets 403.

use guichet::crypto::SecretString;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin_api_rbac::problem;
use crate::api_calls::{basic, expect, Session};
use crate::helpers::TestApp;
use crate::oidc_helpers::{claims, registration, tokens_for, Rp, PW};

const P: Actor = Actor::Platform;
const ROOT: &str = "root@platform.test";

/// Acme with alice (member) and boss (admin); root (platform admin) with a write and a read
/// personal key; Acme's write key; alice's own write key; the client Orders (no permissions yet).
struct World {
    app: TestApp,
    rp: Rp,
    client: String,
    root_write: String,
    root_read: String,
    acme: String,
    alice_key: String,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let orgs = &app.state.orgs;
        orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
        let mut alice = None;
        for (email, role) in [("alice@acme.test", OrgRole::Member), ("boss@acme.test", OrgRole::Admin)] {
            let u = app.create_user(email, PW).await;
            orgs.set_member(P, "acme", email, role).await.unwrap();
            alice.get_or_insert(u.id);
        }
        let pw = SecretString::new(PW);
        let (root, _) = app.state.accounts.create_by_operator(ROOT, None, Some(&pw), true).await.unwrap();
        let ks = &app.state.devkeys;
        let (k, s) = ks.create_for_user(root.id, "ops", &["write".into()], None).await.unwrap();
        let root_write = basic(&k.id, &s);
        let (k, s) = ks.create_for_user(root.id, "dash", &["read".into()], None).await.unwrap();
        let root_read = basic(&k.id, &s);
        let (k, s) = ks.create_for_user(alice.unwrap(), "mine", &["write".into()], None).await.unwrap();
        let alice_key = basic(&k.id, &s);
        let (k, s) = ks.create(P, "acme", "ci", &["write".into()], None).await.unwrap();
        let acme = basic(&k.id, &s);
        let rp = app.register(registration("Orders")).await;
        let client = rp.client.client_id.to_string();
        World { app, rp, client, root_write, root_read, acme, alice_key }
    }

    /// A request with a credential (`Basic ...`), a JSON body if any, an If-Match if any.
    async fn call(
        &self,
        m: Method,
        path: &str,
        auth: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        crate::api_calls::call(&self.app, m, path, auth, body, if_match).await
    }

    /// A browser signed in as `email`, and its session's CSRF token.
    async fn signed_in(&self, email: &str) -> Session {
        Session::sign_in(&self.app, email, PW).await
    }
}

#[tokio::test]
async fn a_platform_admins_session_manages_permissions_and_roles_grantable_everywhere() {
    let w = World::new().await;
    let s = w.signed_in(ROOT).await;
    let client = &w.client;
    let perm = |name: &str| format!("/api/v1/clients/{client}/permissions/{name}");

    // Permissions: declared (idempotent), listed; a change without the CSRF token is refused.
    let res = s.b.put(w.app.url(&perm("orders:read"))).send().await.unwrap();
    problem(res, 403).await;
    for _ in 0..2 {
        let (cat, _) = expect(s.call(Method::PUT, &perm("orders:read"), None, None).await, 200).await;
        assert_eq!(cat, json!({"client_id": client, "client_name": "Orders", "permissions": ["orders:read"]}));
    }
    let (cat, _) = expect(s.call(Method::PUT, &perm("orders:write"), None, None).await, 200).await;
    assert_eq!(cat["permissions"], json!(["orders:read", "orders:write"]));
    let (all, _) = expect(s.call(Method::GET, "/api/v1/permissions", None, None).await, 200).await;
    let entry = all.as_array().unwrap().iter().find(|c| c["client_id"] == client.as_str()).unwrap();
    assert_eq!(entry["permissions"], json!(["orders:read", "orders:write"]));
    let (one, _) =
        expect(s.call(Method::GET, &format!("/api/v1/permissions?client_id={client}"), None, None).await, 200).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["client_name"], "Orders");
    // Bad input: 400; an unknown client in the path: 404.
    problem(s.call(Method::GET, "/api/v1/permissions?client_id=nope", None, None).await, 400).await;
    problem(s.call(Method::GET, "/api/v1/permissions?client_id=", None, None).await, 400).await;
    problem(s.call(Method::PUT, &perm("bad%20name!"), None, None).await, 400).await;
    problem(s.call(Method::PUT, "/api/v1/clients/nope/permissions/a:b", None, None).await, 404).await;
    problem(s.call(Method::DELETE, "/api/v1/clients/nope/permissions/a:b", None, None).await, 404).await;

    // Roles: created (201 + ETag), listed, read.
    let body = json!({"client_id": client, "name": "viewer", "permissions": ["orders:read"]});
    let (role, etag) = expect(s.call(Method::POST, "/api/v1/roles", Some(body.clone()), None).await, 201).await;
    let id = role["id"].as_str().unwrap().to_owned();
    let etag = etag.unwrap();
    assert_eq!((role["name"].as_str(), role["own"].as_bool()), (Some("viewer"), Some(false)));
    assert_eq!(role["permissions"], json!(["orders:read"]));
    problem(s.call(Method::POST, "/api/v1/roles", Some(body), None).await, 409).await;
    for bad in [
        json!({"client_id": client, "name": "x", "permissions": ["orders:fly"]}),
        json!({"client_id": "nope", "name": "x"}),
        json!({"client_id": client, "name": "no spaces here"}),
        json!({"client_id": client, "name": "x", "colour": "red"}),
        json!({"client_id": client}),
    ] {
        problem(s.call(Method::POST, "/api/v1/roles", Some(bad), None).await, 400).await;
    }
    let (list, _) = expect(s.call(Method::GET, "/api/v1/roles", None, None).await, 200).await;
    assert_eq!(list.as_array().unwrap().iter().map(|r| r["id"].clone()).collect::<Vec<_>>(), [json!(id)]);
    let (got, tag) = expect(s.call(Method::GET, &format!("/api/v1/roles/{id}"), None, None).await, 200).await;
    assert_eq!((got, tag.as_deref()), (role.clone(), Some(etag.as_str())));
    // An organization's own role is not one of the platform's.
    let own = w.app.state.orgs.create_role(P, client, "clerk", &[], Some("acme")).await.unwrap();
    let (list, _) = expect(s.call(Method::GET, "/api/v1/roles", None, None).await, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    problem(s.call(Method::GET, &format!("/api/v1/roles/{}", own.id), None, None).await, 404).await;
    problem(s.call(Method::GET, "/api/v1/roles/not-an-id", None, None).await, 404).await;

    // Changed with If-Match; the stale ETag then gets 412; the same permissions again: no change.
    let path = format!("/api/v1/roles/{id}");
    let put = json!({"permissions": ["orders:write", "orders:read"]});
    let (role2, etag2) = expect(s.call(Method::PUT, &path, Some(put.clone()), Some(&etag)).await, 200).await;
    assert_eq!(role2["permissions"], json!(["orders:read", "orders:write"]));
    let etag2 = etag2.unwrap();
    assert_ne!(etag2, etag);
    problem(s.call(Method::PUT, &path, Some(put.clone()), Some(&etag)).await, 412).await;
    let (_, again) = expect(s.call(Method::PUT, &path, Some(put), Some(&etag2)).await, 200).await;
    assert_eq!(again.as_deref(), Some(etag2.as_str()), "idempotent");
    problem(s.call(Method::PUT, &path, Some(json!({"name": "other", "permissions": []})), None).await, 400).await;
    problem(s.call(Method::PUT, &path, Some(json!({"permissions": ["orders:fly"]})), None).await, 400).await;
    problem(s.call(Method::PUT, &path, Some(json!({"perms": []})), None).await, 400).await;

    // Grantable in an organization (by the platform admin, through the organization's API).
    let grant = format!("/api/v1/orgs/acme/members/alice@acme.test/roles/{id}");
    let (m, _) = expect(s.call(Method::PUT, &grant, None, None).await, 200).await;
    assert_eq!(m["roles"], json!([format!("{client}/viewer")]));
    // ... and in its admin's catalogue of the organization's roles, read-only there.
    let boss = w.signed_in("boss@acme.test").await;
    let (roles, _) = expect(boss.call(Method::GET, "/api/v1/orgs/acme/roles", None, None).await, 200).await;
    assert!(roles.as_array().unwrap().iter().any(|r| r["id"] == id.as_str() && r["own"] == false));
    // The holder's next token carries it.
    let t = tokens_for(
        &w.app,
        &w.app.browser(),
        &w.rp,
        "alice@acme.test",
        &[("scope", "openid org roles"), ("organization", "acme")],
    )
    .await;
    let at = claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["roles"], json!(["viewer"]));
    assert_eq!(at["permissions"], json!(["orders:read", "orders:write"]));

    // A permission taken away (idempotent 204) leaves the roles holding it.
    for _ in 0..2 {
        expect(s.call(Method::DELETE, &perm("orders:write"), None, None).await, 204).await;
    }
    expect(s.call(Method::DELETE, &perm("never:declared"), None, None).await, 204).await;
    let (got, _) = expect(s.call(Method::GET, &path, None, None).await, 200).await;
    assert_eq!(got["permissions"], json!(["orders:read"]));

    // Deleted (idempotent 204): gone, and its grants with it.
    for _ in 0..2 {
        expect(s.call(Method::DELETE, &path, None, None).await, 204).await;
    }
    expect(s.call(Method::DELETE, "/api/v1/roles/not-an-id", None, None).await, 204).await;
    problem(s.call(Method::GET, &path, None, None).await, 404).await;
    problem(s.call(Method::PUT, &path, Some(json!({"permissions": []})), None).await, 404).await;
    let (members, _) = expect(s.call(Method::GET, "/api/v1/orgs/acme/members", None, None).await, 200).await;
    let alice = members["items"].as_array().unwrap().iter().find(|m| m["email"] == "alice@acme.test").unwrap();
    assert_eq!(alice["roles"], json!([]));
}

#[tokio::test]
async fn a_platform_admins_personal_key_manages_the_catalogue_and_a_read_only_key_only_reads() {
    let w = World::new().await;
    let (k, client) = (&w.root_write, &w.client);
    let perm = format!("/api/v1/clients/{client}/permissions/billing:manage");
    let (cat, _) = expect(w.call(Method::PUT, &perm, k, None, None).await, 200).await;
    assert_eq!(cat["permissions"], json!(["billing:manage"]));
    let body = json!({"client_id": client, "name": "billing", "permissions": ["billing:manage"]});
    let (role, etag) = expect(w.call(Method::POST, "/api/v1/roles", k, Some(body), None).await, 201).await;
    let path = format!("/api/v1/roles/{}", role["id"].as_str().unwrap());
    let (role, etag) =
        expect(w.call(Method::PUT, &path, k, Some(json!({"permissions": []})), etag.as_deref()).await, 200).await;
    assert_eq!(role["permissions"], json!([]));

    // The read-only key reads; every change is 403 (and changes nothing).
    let r = &w.root_read;
    let (list, _) = expect(w.call(Method::GET, "/api/v1/roles", r, None, None).await, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    expect(w.call(Method::GET, &path, r, None, None).await, 200).await;
    expect(w.call(Method::GET, "/api/v1/permissions", r, None, None).await, 200).await;
    let body = json!({"client_id": client, "name": "other"});
    problem(w.call(Method::POST, "/api/v1/roles", r, Some(body), None).await, 403).await;
    problem(w.call(Method::PUT, &path, r, Some(json!({"permissions": ["billing:manage"]})), None).await, 403).await;
    problem(w.call(Method::DELETE, &path, r, None, None).await, 403).await;
    problem(w.call(Method::PUT, &format!("{perm}x"), r, None, None).await, 403).await;
    problem(w.call(Method::DELETE, &perm, r, None, None).await, 403).await;
    let (got, tag) = expect(w.call(Method::GET, &path, k, None, None).await, 200).await;
    assert_eq!((got, tag), (role, etag), "unchanged");

    // The write key deletes.
    expect(w.call(Method::DELETE, &path, k, None, None).await, 204).await;
    expect(w.call(Method::DELETE, &perm, k, None, None).await, 204).await;
    let (cat, _) =
        expect(w.call(Method::GET, &format!("/api/v1/permissions?client_id={client}"), k, None, None).await, 200).await;
    assert_eq!(cat[0]["permissions"], json!([]));
}

/// Every endpoint of the platform's catalogue: (method, path, body).
fn every_endpoint(client: &str, role: &str) -> Vec<(Method, String, Option<Value>)> {
    let body = json!({"client_id": client, "name": "sneaky", "permissions": []});
    vec![
        (Method::GET, "/api/v1/permissions".into(), None),
        (Method::GET, format!("/api/v1/permissions?client_id={client}"), None),
        (Method::PUT, format!("/api/v1/clients/{client}/permissions/orders:admin"), None),
        (Method::DELETE, format!("/api/v1/clients/{client}/permissions/orders:read"), None),
        (Method::GET, "/api/v1/roles".into(), None),
        (Method::POST, "/api/v1/roles".into(), Some(body)),
        (Method::GET, format!("/api/v1/roles/{role}"), None),
        (Method::PUT, format!("/api/v1/roles/{role}"), Some(json!({"permissions": []}))),
        (Method::DELETE, format!("/api/v1/roles/{role}"), None),
    ]
}

#[tokio::test]
async fn an_organizations_key_and_other_users_find_nothing_there() {
    let w = World::new().await;
    let orgs = &w.app.state.orgs;
    orgs.add_permissions(P, &w.client, &["orders:read".into()]).await.unwrap();
    let role = orgs.create_role(P, &w.client, "viewer", &["orders:read".into()], None).await.unwrap().id.to_string();
    let boss = w.signed_in("boss@acme.test").await;
    let alice = w.signed_in("alice@acme.test").await;
    for (m, path, body) in every_endpoint(&w.client, &role) {
        for auth in [&w.acme, &w.alice_key] {
            problem(w.call(m.clone(), &path, auth, body.clone(), None).await, 404).await;
        }
        for s in [&boss, &alice] {
            problem(s.call(m.clone(), &path, body.clone(), None).await, 404).await;
        }
    }
    // Nothing changed.
    assert_eq!(orgs.permissions(&w.client).await.unwrap(), ["orders:read"]);
    let all = orgs.roles(P, None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].permissions, ["orders:read"]);
    // No credential at all: 401.
    problem(reqwest::Client::new().get(w.app.url("/api/v1/roles")).send().await.unwrap(), 401).await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_platforms_catalogue() {
    let w = World::new().await;
    let doc: Value = reqwest::get(w.app.url("/api/v1/openapi.json")).await.unwrap().json().await.unwrap();
    for path in [
        "/api/v1/permissions",
        "/api/v1/clients/{client_id}/permissions/{name}",
        "/api/v1/roles",
        "/api/v1/roles/{role}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["paths"]["/api/v1/roles/{role}"]["put"].is_object());
    assert!(doc["paths"]["/api/v1/clients/{client_id}/permissions/{name}"]["delete"].is_object());
}
