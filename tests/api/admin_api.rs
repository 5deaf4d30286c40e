//! The admin API (`/api/v1`) with developer keys: the OpenAPI document; HTTP Basic and HMAC
//! signatures (window, replay, body hash); a key confined to its organization (every other
//! organization 404); read-only keys; expired keys; a reset killing the old secret at once;
//! problem+json errors; cursor pagination; idempotent PUT/DELETE with ETag/If-Match.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use guichet::domain::devkey;
use guichet::domain::org::OrgRole;
use guichet::orgs::Actor;

use crate::helpers::TestApp;

const P: Actor = Actor::Platform;

struct Api {
    app: TestApp,
    key: String,
    secret: String,
    http: reqwest::Client,
}

impl Api {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let orgs = &app.state.orgs;
        orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
        orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
        let (k, secret) = app.state.devkeys.create(P, "acme", "ci", &["write".into()], None).await.unwrap();
        Api { key: k.id, secret, http: reqwest::Client::new(), app }
    }

    fn basic(&self, key: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{key}:{secret}")))
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(path))
            .header("authorization", self.basic(&self.key, &self.secret))
            .send()
            .await
            .unwrap()
    }

    async fn put(&self, path: &str, body: serde_json::Value, if_match: Option<&str>) -> reqwest::Response {
        let mut r =
            self.http.put(self.app.url(path)).header("authorization", self.basic(&self.key, &self.secret)).json(&body);
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        r.send().await.unwrap()
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(self.app.url(path))
            .header("authorization", self.basic(&self.key, &self.secret))
            .send()
            .await
            .unwrap()
    }

    /// A signed request (the signature computed here from the documented recipe).
    fn signed(&self, method: &str, path: &str, ts: i64, body: &[u8]) -> String {
        let digest = guichet::crypto::tokens::digest(&self.secret);
        let sig = devkey::request_signature(&digest, method, path, ts, body);
        format!("Guichet-HMAC-SHA256 key={}, ts={ts}, sig={sig}", self.key)
    }
}

async fn problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], status);
    assert!(v["title"].is_string() && v["detail"].is_string() && v["type"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let api = Api::new().await;
    let res = reqwest::get(api.app.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for path in [
        "/api/v1/orgs/{org}",
        "/api/v1/orgs/{org}/members",
        "/api/v1/orgs/{org}/members/{email}",
        "/api/v1/orgs/{org}/webhooks",
        "/api/v1/orgs/{org}/webhooks/{id}",
        "/api/v1/orgs/{org}/webhooks/{id}/deliveries",
        "/api/v1/orgs/{org}/domains",
        "/api/v1/orgs/{org}/domains/{domain}",
        "/api/v1/orgs/{org}/domains/{domain}/verify",
        "/api/v1/orgs/{org}/connections",
        "/api/v1/orgs/{org}/audit",
        "/api/v1/orgs/{org}/audit/export",
        "/api/v1/events/stream",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["basic"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // Every documented operation answers (not 404/405) when called with the key.
    assert_eq!(api.get("/api/v1/orgs/acme/webhooks").await.status(), 200);
}

#[tokio::test]
async fn keys_authenticate_and_are_confined_to_their_organization() {
    let api = Api::new().await;
    // No credentials, wrong secret, unknown key, another scheme: 401 with a challenge.
    let res = api.http.get(api.app.url("/api/v1/orgs/acme")).send().await.unwrap();
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("Basic"));
    problem(res, 401).await;
    for auth in [api.basic(&api.key, "gs_wrong"), api.basic("gk_nope", &api.secret), "Bearer x".into()] {
        let res = api.http.get(api.app.url("/api/v1/orgs/acme")).header("authorization", auth).send().await.unwrap();
        problem(res, 401).await;
    }
    // Its organization, by slug or id.
    let res = api.get("/api/v1/orgs/acme").await;
    assert_eq!(res.status(), 200);
    let org: serde_json::Value = res.json().await.unwrap();
    assert_eq!(org["slug"], "acme");
    assert_eq!(api.get(&format!("/api/v1/orgs/{}", org["id"].as_str().unwrap())).await.status(), 200);
    // Another organization, existing or not: the same 404, for every endpoint.
    let globex = api.app.state.orgs.find("globex").await.unwrap().unwrap();
    for path in [
        "/api/v1/orgs/globex".to_owned(),
        format!("/api/v1/orgs/{}", globex.id),
        "/api/v1/orgs/nope".into(),
        "/api/v1/orgs/globex/members".into(),
        "/api/v1/orgs/globex/webhooks".into(),
    ] {
        problem(api.get(&path).await, 404).await;
    }
    problem(
        api.put("/api/v1/orgs/globex/members/x@globex.test", serde_json::json!({"role": "admin"}), None).await,
        404,
    )
    .await;
    // The last use is recorded.
    let k = api.app.state.devkeys.list(P, "acme").await.unwrap();
    assert!(k[0].last_used_at.is_some());
}

#[tokio::test]
async fn signed_requests_are_checked_once_within_the_window() {
    let api = Api::new().await;
    let now = api.app.state.clock.now().0;
    let path = "/api/v1/orgs/acme/members?limit=10";
    let h = api.signed("GET", path, now, b"");
    let send = |h: String, p: &str| {
        let r = api.http.get(api.app.url(p)).header("authorization", h);
        async move { r.send().await.unwrap() }
    };
    assert_eq!(send(h.clone(), path).await.status(), 200);
    problem(send(h, path).await, 401).await; // replayed
                                             // Well outside the window: `now` was read before these requests, and the server's clock may
                                             // have moved on a second or two (now + window + 1 was accepted once, a second later).
    let outside = devkey::SIGNATURE_WINDOW_SECS + 30;
    problem(send(api.signed("GET", path, now - outside, b""), path).await, 401).await; // stale
    problem(send(api.signed("GET", path, now + outside, b""), path).await, 401).await; // from the future
    problem(send(api.signed("GET", "/api/v1/orgs/acme/members?limit=11", now, b""), path).await, 401).await; // another path
                                                                                                             // The body is covered.
    api.app.create_user("ann@acme.test", "correct horse battery").await;
    let put = "/api/v1/orgs/acme/members/ann@acme.test";
    let body = br#"{"role":"member"}"#;
    let h = api.signed("PUT", put, now, br#"{"role":"admin"}"#);
    let res = api
        .http
        .put(api.app.url(put))
        .header("authorization", h)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let h = api.signed("PUT", put, now, body);
    let res = api
        .http
        .put(api.app.url(put))
        .header("authorization", h)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn read_only_expired_and_reset_keys() {
    let api = Api::new().await;
    let ks = &api.app.state.devkeys;
    api.app.create_user("ann@acme.test", "correct horse battery").await;
    let (ro, ro_secret) = ks.create(P, "acme", "dashboard", &["read".into()], None).await.unwrap();
    let auth = api.basic(&ro.id, &ro_secret);
    let res =
        api.http.get(api.app.url("/api/v1/orgs/acme/members")).header("authorization", &auth).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = api
        .http
        .put(api.app.url("/api/v1/orgs/acme/members/ann@acme.test"))
        .header("authorization", &auth)
        .json(&serde_json::json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    // Expiry.
    let (short, short_secret) = ks.create(P, "acme", "temp", &["read".into()], Some(1)).await.unwrap();
    let auth = api.basic(&short.id, &short_secret);
    assert_eq!(
        api.http.get(api.app.url("/api/v1/orgs/acme")).header("authorization", &auth).send().await.unwrap().status(),
        200
    );
    api.app.clock.advance(2 * 86_400);
    problem(api.http.get(api.app.url("/api/v1/orgs/acme")).header("authorization", &auth).send().await.unwrap(), 401)
        .await;
    // Reset: the old secret fails at once, the new one works.
    let (_, new_secret) = ks.reset(P, "acme", &api.key).await.unwrap();
    problem(api.get("/api/v1/orgs/acme").await, 401).await;
    let res = api
        .http
        .get(api.app.url("/api/v1/orgs/acme"))
        .header("authorization", api.basic(&api.key, &new_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Another organization's admin cannot see or touch Acme's keys.
    let gina = api.app.create_user("gina@globex.test", "correct horse battery").await;
    api.app.state.orgs.set_member(P, "globex", "gina@globex.test", OrgRole::Admin).await.unwrap();
    assert!(ks.list(Actor::User(gina.id), "acme").await.is_err());
    assert!(ks.reset(Actor::User(gina.id), "globex", &api.key).await.is_err());
    assert!(ks.delete(Actor::User(gina.id), "globex", &api.key).await.is_err());
}

#[tokio::test]
async fn members_paginate_and_update_idempotently() {
    let api = Api::new().await;
    for i in 0..5 {
        let email = format!("m{i}@acme.test");
        api.app.create_user(&email, "correct horse battery").await;
        api.app.state.orgs.set_member(P, "acme", &email, OrgRole::Member).await.unwrap();
    }
    // Pages of 2: 2, 2, 1, no repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for expected in [2, 2, 1] {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orgs/acme/members?limit=2&cursor={c}"),
            None => "/api/v1/orgs/acme/members?limit=2".into(),
        };
        let page: serde_json::Value = api.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), expected);
        seen.extend(items.iter().map(|m| m["email"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert!(cursor.is_none());
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    problem(api.get("/api/v1/orgs/acme/members?limit=0").await, 400).await;
    problem(api.get("/api/v1/orgs/acme/members?cursor=%%%").await, 400).await;
    // PUT: idempotent, with an ETag; If-Match protects against a concurrent change.
    let path = "/api/v1/orgs/acme/members/m0@acme.test";
    let res = api.put(path, serde_json::json!({"role": "admin"}), None).await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let again = api.put(path, serde_json::json!({"role": "admin"}), Some(&etag)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    problem(api.put(path, serde_json::json!({"role": "member"}), Some("\"stale\"")).await, 412).await;
    problem(api.put(path, serde_json::json!({"role": "owner"}), None).await, 403).await;
    problem(api.put(path, serde_json::json!({"role": "boss"}), None).await, 400).await;
    problem(api.put(path, serde_json::json!({"role": "admin", "extra": 1}), None).await, 400).await;
    problem(
        api.put("/api/v1/orgs/acme/members/nobody@acme.test", serde_json::json!({"role": "admin"}), None).await,
        404,
    )
    .await;
    // DELETE: 204, twice.
    assert_eq!(api.delete(path).await.status(), 204);
    assert_eq!(api.delete(path).await.status(), 204);
    let acme = api.app.state.orgs.find("acme").await.unwrap().unwrap();
    let m0 = api.app.state.accounts.user_by_email("m0@acme.test").await.unwrap().unwrap();
    assert_eq!(api.app.state.stores.orgs.membership(acme.id, m0.id).await.unwrap(), None);
    // Webhooks through the API: a refused URL is a 400 problem with the one message.
    let v = problem(
        api.http
            .post(api.app.url("/api/v1/orgs/acme/webhooks"))
            .header("authorization", api.basic(&api.key, &api.secret))
            .json(&serde_json::json!({"url": "http://10.0.0.1/hook", "events": ["login.succeeded"]}))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(v["detail"], guichet::webhooks::URL_REFUSED);
    assert_eq!(api.delete("/api/v1/orgs/acme/webhooks/00000000-0000-0000-0000-000000000000").await.status(), 204);
}

/// The audit log: newest first, pages, a filter by action, the JSON lines export; and the API's
/// own 404/405 and malformed queries are problems too; If-Match follows RFC 9110 (`*` needs an
/// existing member; any tag of a list may match).
#[tokio::test]
async fn the_audit_log_and_the_edges_of_the_api() {
    let api = Api::new().await;
    for i in 0..3 {
        let email = format!("a{i}@acme.test");
        api.app.create_user(&email, "correct horse battery").await;
        api.app.state.orgs.set_member(P, "acme", &email, OrgRole::Member).await.unwrap();
    }
    let page: serde_json::Value =
        api.get("/api/v1/orgs/acme/audit?limit=2&action=org.member_added").await.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|e| e["action"] == "org.member_added"));
    assert!(items[0]["id"].as_i64() > items[1]["id"].as_i64(), "newest first");
    let next = page["next_cursor"].as_str().unwrap();
    let page2: serde_json::Value = api
        .get(&format!("/api/v1/orgs/acme/audit?limit=2&action=org.member_added&cursor={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2.get("next_cursor").is_none());
    let res = api.get("/api/v1/orgs/acme/audit/export").await;
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 4, "{text}"); // three members added, the key created
    assert!(lines.iter().any(|l| l["action"] == "org.devkey_created"));
    problem(api.get("/api/v1/orgs/acme/audit?limit=500").await, 400).await;
    problem(api.get("/api/v1/orgs/globex/audit").await, 404).await;
    // The API's own edges.
    problem(api.get("/api/v1/orgs/").await, 404).await;
    problem(api.get("/api/v1/nothing/here").await, 404).await;
    let res = api
        .http
        .put(api.app.url("/api/v1/orgs/acme"))
        .header("authorization", api.basic(&api.key, &api.secret))
        .send()
        .await
        .unwrap();
    problem(res, 405).await;
    problem(api.get("/api/v1/orgs/acme/members?limit=-1").await, 400).await;
    problem(api.get("/api/v1/orgs/acme/members?limit=abc").await, 400).await;
    // If-Match.
    api.app.create_user("new@acme.test", "correct horse battery").await;
    problem(
        api.put("/api/v1/orgs/acme/members/new@acme.test", serde_json::json!({"role": "member"}), Some("*")).await,
        412,
    )
    .await;
    let res = api.put("/api/v1/orgs/acme/members/a0@acme.test", serde_json::json!({"role": "member"}), Some("*")).await;
    assert_eq!(res.status(), 200);
    let tag = res.headers()["etag"].to_str().unwrap().to_owned();
    let list = format!("\"zzz\", {tag}");
    let res =
        api.put("/api/v1/orgs/acme/members/a0@acme.test", serde_json::json!({"role": "admin"}), Some(&list)).await;
    assert_eq!(res.status(), 200);
}

/// Domains through the API: claimed (idempotently), verified against a DNS server on loopback,
/// refused to another organization once verified (409), removed (204, twice); the connections
/// serving the organization, with what to give the IdP.
#[tokio::test]
async fn domains_and_connections() {
    let dns = crate::dns_server::TestDns::start().await;
    let addr = dns.addr.to_string();
    let app = TestApp::spawn_with(|s| s.dns.resolver = Some(addr)).await;
    let orgs = &app.state.orgs;
    orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    let (k, secret) = app.state.devkeys.create(P, "acme", "ops", &["write".into()], None).await.unwrap();
    let (gk, gsecret) = app.state.devkeys.create(P, "globex", "ops", &["write".into()], None).await.unwrap();
    let http = reqwest::Client::new();
    let auth = format!("Basic {}", STANDARD.encode(format!("{}:{secret}", k.id)));
    let gauth = format!("Basic {}", STANDARD.encode(format!("{}:{gsecret}", gk.id)));
    let call =
        |m: reqwest::Method, path: &str, a: &str| http.request(m, app.url(path)).header("authorization", a).send();
    let res = call(reqwest::Method::PUT, "/api/v1/orgs/acme/domains/acme.test", &auth).await.unwrap();
    assert_eq!(res.status(), 200);
    let d: serde_json::Value = res.json().await.unwrap();
    assert_eq!((d["domain"].as_str(), d["verified"].as_bool()), (Some("acme.test"), Some(false)));
    assert_eq!(d["record_name"], "_guichet-challenge.acme.test");
    let again: serde_json::Value =
        call(reqwest::Method::PUT, "/api/v1/orgs/acme/domains/ACME.test", &auth).await.unwrap().json().await.unwrap();
    assert_eq!(again["record_value"], d["record_value"], "idempotent: the same challenge");
    // Not published yet: checked, not verified, with the reason.
    let v: serde_json::Value = call(reqwest::Method::POST, "/api/v1/orgs/acme/domains/acme.test/verify", &auth)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["verified"], false);
    assert!(v["last_error"].is_string());
    dns.set_txt("_guichet-challenge.acme.test", &[d["record_value"].as_str().unwrap()]);
    let v: serde_json::Value = call(reqwest::Method::POST, "/api/v1/orgs/acme/domains/acme.test/verify", &auth)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["verified"], true);
    // Globex cannot claim it now; nor see Acme's list.
    problem(call(reqwest::Method::PUT, "/api/v1/orgs/globex/domains/acme.test", &gauth).await.unwrap(), 409).await;
    problem(call(reqwest::Method::GET, "/api/v1/orgs/acme/domains", &gauth).await.unwrap(), 404).await;
    problem(call(reqwest::Method::PUT, "/api/v1/orgs/acme/domains/not a domain", &auth).await.unwrap(), 400).await;
    let list: serde_json::Value =
        call(reqwest::Method::GET, "/api/v1/orgs/acme/domains", &auth).await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Connections: a SAML one shows the SP values.
    let idp = crate::saml_idp::TestIdp::new("https://idp.acme.test/saml", "https://idp.acme.test/sso");
    let c = app
        .state
        .federation
        .create_saml(
            P,
            &["acme".into()],
            Some("Acme Okta"),
            guichet::federation::saml::SamlSource::Xml(idp.metadata_xml()),
            Default::default(),
        )
        .await
        .unwrap();
    let conns: serde_json::Value =
        call(reqwest::Method::GET, "/api/v1/orgs/acme/connections", &auth).await.unwrap().json().await.unwrap();
    assert_eq!(conns[0]["type"], "saml");
    assert_eq!(conns[0]["sp_entity_id"], app.state.federation.sp_entity_id(c.id));
    assert_eq!(conns[0]["redirect_uri"], serde_json::Value::Null);
    let none: serde_json::Value =
        call(reqwest::Method::GET, "/api/v1/orgs/globex/connections", &gauth).await.unwrap().json().await.unwrap();
    assert_eq!(none, serde_json::json!([]));
    // Removal: 204, twice.
    assert_eq!(
        call(reqwest::Method::DELETE, "/api/v1/orgs/acme/domains/acme.test", &auth).await.unwrap().status(),
        204
    );
    assert_eq!(
        call(reqwest::Method::DELETE, "/api/v1/orgs/acme/domains/acme.test", &auth).await.unwrap().status(),
        204
    );
}
