//! The admin API's roles, permissions and grants of roles (`/api/v1/orgs/{org}/roles`,
//! `.../permissions`, `.../members/{email}/roles/{role}`): every endpoint, idempotent PUT and
//! DELETE, ETag/If-Match, the operator's roles read-only, another organization's key 404 on
//! everything, a read-only key 403 on changes, an expired key 401, bad input 400.

use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;
use reqwest::Method;
use serde_json::{json, Value};

use crate::api_calls::basic;
use crate::helpers::TestApp;
use crate::oidc_helpers::registration;

const P: Actor = Actor::Platform;
pub const PW: &str = "correct horse battery";

/// A server with the organizations Acme and Globex and keys: `write` and `read` of Acme,
/// `globex` (write) of Globex.
pub struct Keys {
    pub app: TestApp,
    pub write: String,
    pub read: String,
    pub globex: String,
    pub http: reqwest::Client,
}

impl Keys {
    pub async fn new() -> Self {
        Self::with(TestApp::spawn().await).await
    }

    pub async fn with(app: TestApp) -> Self {
        let orgs = &app.state.orgs;
        orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
        orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
        let ks = &app.state.devkeys;
        let (w, ws) = ks.create(P, "acme", "ci", &["write".into()], None).await.unwrap();
        let (r, rs) = ks.create(P, "acme", "dash", &["read".into()], None).await.unwrap();
        let (g, gs) = ks.create(P, "globex", "ci", &["write".into()], None).await.unwrap();
        Keys {
            write: basic(&w.id, &ws),
            read: basic(&r.id, &rs),
            globex: basic(&g.id, &gs),
            http: reqwest::Client::new(),
            app,
        }
    }

    /// A request with `auth`, a JSON body if any, an If-Match if any.
    pub async fn call(
        &self,
        m: Method,
        path: &str,
        auth: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        crate::api_calls::call(&self.app, m, path, auth, body, if_match).await
    }

    pub async fn json(&self, m: Method, path: &str, body: Option<Value>, status: u16) -> (Value, Option<String>) {
        let res = self.call(m.clone(), path, &self.write, body, None).await;
        let etag = res.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "{m} {path}: {text}");
        (serde_json::from_str(&text).unwrap_or(Value::Null), etag)
    }
}

pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    assert_eq!(ct.as_deref(), Some("application/problem+json"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], status);
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    v
}

/// A client with permissions (the operator's), and an operator's role.
async fn catalogue(k: &Keys) -> (String, String) {
    let rp = k.app.register(registration("Orders")).await;
    let id = rp.client.client_id.to_string();
    let orgs = &k.app.state.orgs;
    orgs.add_permissions(P, &id, &["orders:read".into(), "orders:write".into(), "orders:delete".into()]).await.unwrap();
    let op = orgs.create_role(P, &id, "viewer", &["orders:read".into()], None).await.unwrap();
    (id, op.id.to_string())
}

#[tokio::test]
async fn roles_are_created_read_changed_and_deleted_idempotently() {
    let k = Keys::new().await;
    let (client, operator_role) = catalogue(&k).await;
    // The catalogue: the client and its permissions.
    let (perms, _) = k.json(Method::GET, "/api/v1/orgs/acme/permissions", None, 200).await;
    let entry = perms.as_array().unwrap().iter().find(|c| c["client_id"] == client.as_str()).unwrap();
    assert_eq!(entry["client_name"], "Orders");
    assert_eq!(entry["permissions"].as_array().unwrap().len(), 3);
    // Create.
    let (role, etag) = k
        .json(
            Method::POST,
            "/api/v1/orgs/acme/roles",
            Some(json!({"client_id": client, "name": "clerk", "permissions": ["orders:read"]})),
            201,
        )
        .await;
    assert_eq!(role["own"], true);
    assert_eq!(role["permissions"], json!(["orders:read"]));
    let id = role["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orgs/acme/roles/{id}");
    // The same name again: 409; unknown permission, unknown client, bad name, bad body: 400.
    let w = &k.write;
    let post = |b: Value| k.call(Method::POST, "/api/v1/orgs/acme/roles", w, Some(b), None);
    problem(post(json!({"client_id": client, "name": "clerk"})).await, 409).await;
    problem(post(json!({"client_id": client, "name": "x", "permissions": ["orders:fly"]})).await, 400).await;
    problem(post(json!({"client_id": "nope", "name": "x"})).await, 400).await;
    problem(post(json!({"client_id": client, "name": "bad name!"})).await, 400).await;
    problem(post(json!({"client_id": client, "name": "x", "extra": 1})).await, 400).await;
    problem(post(json!({"name": "x"})).await, 400).await;
    let res = k.http.post(k.app.url("/api/v1/orgs/acme/roles")).header("authorization", w).body("{").send().await;
    problem(res.unwrap(), 400).await;
    // List and read: the operator's role is there too, read-only.
    let (list, _) = k.json(Method::GET, "/api/v1/orgs/acme/roles", None, 200).await;
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&operator_role.as_str()));
    let (got, tag) = k.json(Method::GET, &path, None, 200).await;
    assert_eq!(got["name"], "clerk");
    assert_eq!(tag, etag, "the ETag of creation is the ETag of the role");
    // PUT: idempotent; If-Match; a stale tag 412; another name 400.
    let body = json!({"permissions": ["orders:read", "orders:write"]});
    let res = k.call(Method::PUT, &path, w, Some(body.clone()), etag.as_deref()).await;
    assert_eq!(res.status(), 200);
    let tag2 = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(Some(&tag2), etag.as_ref());
    let res = k.call(Method::PUT, &path, w, Some(body.clone()), Some(&tag2)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), tag2, "the same PUT changes nothing");
    problem(k.call(Method::PUT, &path, w, Some(body.clone()), etag.as_deref()).await, 412).await;
    problem(k.call(Method::PUT, &path, w, Some(json!({"name": "boss", "permissions": []})), None).await, 400).await;
    problem(k.call(Method::PUT, &path, w, Some(json!({"permissions": ["nope:nope"]})), None).await, 400).await;
    problem(k.call(Method::PUT, &path, w, Some(json!({"permissions": 3})), None).await, 400).await;
    let res =
        k.call(Method::PUT, &path, w, Some(json!({"name": "clerk", "permissions": ["orders:delete"]})), None).await;
    assert_eq!(res.status(), 200);
    let acme = k.app.state.orgs.find("acme").await.unwrap().unwrap();
    let stored = k.app.state.stores.orgs.role(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.permissions, vec!["orders:delete".to_owned()]);
    // The operator's role: readable, not changeable here.
    let op_path = format!("/api/v1/orgs/acme/roles/{operator_role}");
    k.json(Method::GET, &op_path, None, 200).await;
    problem(k.call(Method::PUT, &op_path, w, Some(json!({"permissions": []})), None).await, 403).await;
    problem(k.call(Method::DELETE, &op_path, w, None, None).await, 403).await;
    // Unknown ids.
    problem(k.call(Method::GET, "/api/v1/orgs/acme/roles/nope", w, None, None).await, 404).await;
    problem(
        k.call(Method::PUT, "/api/v1/orgs/acme/roles/00000000-0000-0000-0000-000000000000", w, Some(body), None).await,
        404,
    )
    .await;
    // DELETE: a stale If-Match is 412 and deletes nothing; the current one deletes; 204 again
    // without If-Match, 412 with one (nothing matches a role that is gone).
    problem(k.call(Method::DELETE, &path, w, None, Some(&tag2)).await, 412).await;
    let current = k.call(Method::GET, &path, w, None, None).await.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(k.call(Method::DELETE, &path, w, None, Some(&current)).await.status(), 204);
    assert_eq!(k.call(Method::DELETE, &path, w, None, None).await.status(), 204);
    problem(k.call(Method::DELETE, &path, w, None, Some("*")).await, 412).await;
    problem(k.call(Method::GET, &path, w, None, None).await, 404).await;
    // Audited: created, updated, deleted.
    let log = k.app.state.orgs.audit_log(P, "acme", None, None, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    for a in ["org.role_created", "org.role_updated", "org.role_deleted"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let _ = acme;
}

#[tokio::test]
async fn roles_are_granted_to_members_and_taken_away_idempotently() {
    let k = Keys::new().await;
    let (client, operator_role) = catalogue(&k).await;
    k.app.create_user("ann@acme.test", PW).await;
    k.app.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Member).await.unwrap();
    k.app.create_user("out@acme.test", PW).await;
    let (role, _) =
        k.json(Method::POST, "/api/v1/orgs/acme/roles", Some(json!({"client_id": client, "name": "clerk"})), 201).await;
    let rid = role["id"].as_str().unwrap().to_owned();
    let grant = format!("/api/v1/orgs/acme/members/ann@acme.test/roles/{rid}");
    let (m, _) = k.json(Method::PUT, &grant, None, 200).await;
    assert_eq!(m["roles"], json!([format!("{client}/clerk")]));
    let (again, _) = k.json(Method::PUT, &grant, None, 200).await;
    assert_eq!(again["roles"], m["roles"], "idempotent");
    // By user id too; the operator's role may be granted.
    let ann = k.app.state.accounts.user_by_email("ann@acme.test").await.unwrap().unwrap();
    let (m, _) =
        k.json(Method::PUT, &format!("/api/v1/orgs/acme/members/{}/roles/{operator_role}", ann.id), None, 200).await;
    assert_eq!(m["roles"].as_array().unwrap().len(), 2);
    // Not a member, unknown role: 404.
    let w = &k.write;
    problem(
        k.call(Method::PUT, &format!("/api/v1/orgs/acme/members/out@acme.test/roles/{rid}"), w, None, None).await,
        404,
    )
    .await;
    problem(k.call(Method::PUT, "/api/v1/orgs/acme/members/ann@acme.test/roles/nope", w, None, None).await, 404).await;
    // Revoke: 204 twice.
    assert_eq!(k.call(Method::DELETE, &grant, w, None, None).await.status(), 204);
    assert_eq!(k.call(Method::DELETE, &grant, w, None, None).await.status(), 204);
    let acme = k.app.state.orgs.find("acme").await.unwrap().unwrap();
    let member = k.app.state.stores.orgs.member(acme.id, ann.id).await.unwrap().unwrap();
    assert_eq!(member.roles.len(), 1);
    let log = k.app.state.orgs.audit_log(P, "acme", None, None, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    assert!(actions.contains(&"org.role_granted") && actions.contains(&"org.role_revoked"), "{actions:?}");
}

/// Org A's key against every org B resource: 404; a read-only key: reads, never writes (403);
/// an expired key: 401.
#[tokio::test]
async fn keys_stay_in_their_organization_and_their_scope() {
    let k = Keys::new().await;
    let (client, _) = catalogue(&k).await;
    k.app.create_user("gil@globex.test", PW).await;
    k.app.state.orgs.set_member(P, "globex", "gil@globex.test", OrgRole::Member).await.unwrap();
    k.app.create_user("ann@acme.test", PW).await;
    k.app.state.orgs.set_member(P, "acme", "ann@acme.test", OrgRole::Member).await.unwrap();
    let g = &k.globex;
    let body = json!({"client_id": client, "name": "gclerk"});
    let res = k.call(Method::POST, "/api/v1/orgs/globex/roles", g, Some(body), None).await;
    assert_eq!(res.status(), 201);
    let grole: Value = res.json().await.unwrap();
    let gid = grole["id"].as_str().unwrap();
    // Acme's key against Globex: 404 everywhere, even for what exists.
    let w = &k.write;
    for (m, path, body) in [
        (Method::GET, "/api/v1/orgs/globex/roles".to_owned(), None),
        (Method::POST, "/api/v1/orgs/globex/roles".into(), Some(json!({"client_id": client, "name": "x"}))),
        (Method::GET, format!("/api/v1/orgs/globex/roles/{gid}"), None),
        (Method::PUT, format!("/api/v1/orgs/globex/roles/{gid}"), Some(json!({"permissions": []}))),
        (Method::DELETE, format!("/api/v1/orgs/globex/roles/{gid}"), None),
        (Method::GET, "/api/v1/orgs/globex/permissions".into(), None),
        (Method::PUT, format!("/api/v1/orgs/globex/members/gil@globex.test/roles/{gid}"), None),
        (Method::DELETE, format!("/api/v1/orgs/globex/members/gil@globex.test/roles/{gid}"), None),
        // Globex's role through Acme's path: not Acme's.
        (Method::GET, format!("/api/v1/orgs/acme/roles/{gid}"), None),
        (Method::PUT, format!("/api/v1/orgs/acme/roles/{gid}"), Some(json!({"permissions": []}))),
        (Method::PUT, format!("/api/v1/orgs/acme/members/ann@acme.test/roles/{gid}"), None),
        (Method::PUT, format!("/api/v1/orgs/acme/members/gil@globex.test/roles/{gid}"), None),
    ] {
        problem(k.call(m, &path, w, body, None).await, 404).await;
    }
    // Acme's DELETE of Globex's role through Acme's path: nothing there (204), and it survives.
    assert_eq!(k.call(Method::DELETE, &format!("/api/v1/orgs/acme/roles/{gid}"), w, None, None).await.status(), 204);
    assert!(k.app.state.stores.orgs.role(gid.parse().unwrap()).await.unwrap().is_some());
    // A client bound to Globex is not Acme's to make roles for.
    let mut reg = registration("Globex app");
    reg.first_party = false;
    reg.org_id = Some(k.app.state.orgs.find("globex").await.unwrap().unwrap().id);
    let grp = k.app.register(reg).await;
    let gcl = grp.client.client_id.to_string();
    k.app.state.orgs.add_permissions(P, &gcl, &["g:read".into()]).await.unwrap();
    let (perms, _) = k.json(Method::GET, "/api/v1/orgs/acme/permissions", None, 200).await;
    assert!(!perms.as_array().unwrap().iter().any(|c| c["client_id"] == gcl.as_str()));
    problem(
        k.call(Method::POST, "/api/v1/orgs/acme/roles", w, Some(json!({"client_id": gcl, "name": "x"})), None).await,
        400,
    )
    .await;
    // Read-only key: reads pass, writes 403.
    let r = &k.read;
    assert_eq!(k.call(Method::GET, "/api/v1/orgs/acme/roles", r, None, None).await.status(), 200);
    assert_eq!(k.call(Method::GET, "/api/v1/orgs/acme/permissions", r, None, None).await.status(), 200);
    let (role, _) =
        k.json(Method::POST, "/api/v1/orgs/acme/roles", Some(json!({"client_id": client, "name": "clerk"})), 201).await;
    let rid = role["id"].as_str().unwrap();
    for (m, path, body) in [
        (Method::POST, "/api/v1/orgs/acme/roles".to_owned(), Some(json!({"client_id": client, "name": "y"}))),
        (Method::PUT, format!("/api/v1/orgs/acme/roles/{rid}"), Some(json!({"permissions": []}))),
        (Method::DELETE, format!("/api/v1/orgs/acme/roles/{rid}"), None),
        (Method::PUT, format!("/api/v1/orgs/acme/members/ann@acme.test/roles/{rid}"), None),
        (Method::DELETE, format!("/api/v1/orgs/acme/members/ann@acme.test/roles/{rid}"), None),
    ] {
        problem(k.call(m, &path, r, body, None).await, 403).await;
    }
    // An expired key: 401.
    let (short, secret) = k.app.state.devkeys.create(P, "acme", "temp", &["write".into()], Some(1)).await.unwrap();
    let auth = basic(&short.id, &secret);
    assert_eq!(k.call(Method::GET, "/api/v1/orgs/acme/roles", &auth, None, None).await.status(), 200);
    k.app.clock.advance(2 * 86_400);
    for (m, path) in [
        (Method::GET, "/api/v1/orgs/acme/roles".to_owned()),
        (Method::GET, "/api/v1/orgs/acme/permissions".into()),
        (Method::DELETE, format!("/api/v1/orgs/acme/roles/{rid}")),
        (Method::PUT, format!("/api/v1/orgs/acme/members/ann@acme.test/roles/{rid}")),
    ] {
        problem(k.call(m, &path, &auth, None, None).await, 401).await;
    }
}

#[tokio::test]
async fn the_openapi_document_has_the_roles_clients_and_connections() {
    let k = Keys::new().await;
    let doc: Value = reqwest::get(k.app.url("/api/v1/openapi.json")).await.unwrap().json().await.unwrap();
    for (path, methods) in [
        ("/api/v1/orgs/{org}/roles", &["get", "post"][..]),
        ("/api/v1/orgs/{org}/roles/{role}", &["get", "put", "delete"]),
        ("/api/v1/orgs/{org}/permissions", &["get"]),
        ("/api/v1/orgs/{org}/members/{email}/roles/{role}", &["put", "delete"]),
        ("/api/v1/orgs/{org}/clients", &["get", "post"]),
        ("/api/v1/orgs/{org}/clients/{client_id}", &["get", "put", "delete"]),
        ("/api/v1/orgs/{org}/clients/{client_id}/secret", &["post"]),
        ("/api/v1/orgs/{org}/connections", &["get", "post"]),
        ("/api/v1/orgs/{org}/connections/{id}", &["get", "patch", "delete"]),
        ("/api/v1/orgs/{org}/connections/{id}/groups/{group}", &["delete"]),
        ("/api/v1/orgs/{org}/connections/{id}/groups/{group}/roles/{role}", &["put"]),
    ] {
        for m in methods {
            assert!(doc["paths"][path][m].is_object(), "{m} {path} documented");
        }
    }
    for s in ["RoleView", "ClientView", "ClientCreated", "ConnectionView", "ConnectionCreate"] {
        assert!(doc["components"]["schemas"][s].is_object(), "{s}");
    }
}
