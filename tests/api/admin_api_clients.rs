//! The admin API's OAuth clients (`/api/v1/orgs/{org}/clients`) and SSO connections
//! (`/api/v1/orgs/{org}/connections`): the client secret shown once, working at the token
//! endpoint, refused after a rotation; the registration rules as 400 problems; ETag/If-Match;
//! idempotent DELETE; connections made, edited, mapped and deleted with the page's audit entries
//! and `connection.changed` events; a shared connection read-only for a key; another
//! organization's key 404 on everything, a read-only key 403, an expired key 401.

use guichet::federation::saml::SamlSource;
use guichet::orgs::Actor;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin_api_rbac::{problem, Keys};
use crate::oidc_helpers::registration;
use crate::saml_idp::TestIdp;

const P: Actor = Actor::Platform;

/// The token endpoint's status for client_credentials with this secret.
async fn token_status(k: &Keys, client_id: &str, secret: &str) -> u16 {
    k.http
        .post(k.app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_client_is_registered_its_secret_shown_once_and_rotated() {
    let k = Keys::new().await;
    let (created, etag) =
        k.json(Method::POST, "/api/v1/orgs/acme/clients", Some(json!({"name": "Billing batch"})), 201).await;
    let client = &created["client"];
    assert_eq!(client["grant_types"], json!(["client_credentials"]));
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(client["first_party"], false);
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orgs/acme/clients/{id}");
    // Bound to the organization.
    let acme = k.app.state.orgs.find("acme").await.unwrap().unwrap();
    let stored =
        k.app.state.stores.clients.client(&guichet::domain::ClientId::new(id.as_str())).await.unwrap().unwrap();
    assert_eq!(stored.org_id, Some(acme.id));
    // Shown once: never in a read.
    let (got, tag) = k.json(Method::GET, &path, None, 200).await;
    assert_eq!(tag, etag);
    assert!(got.get("client_secret").is_none() && !got.to_string().contains(&secret));
    let (list, _) = k.json(Method::GET, "/api/v1/orgs/acme/clients", None, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&secret));
    // It works at the token endpoint.
    assert_eq!(token_status(&k, &id, &secret).await, 200);
    // Rotation: the new one works, the old one is refused at once.
    let (rotated, _) = k.json(Method::POST, &format!("{path}/secret"), None, 200).await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(token_status(&k, &id, &secret).await, 401);
    assert_eq!(token_status(&k, &id, new_secret).await, 200);
    // A public client has no secret: null at creation, 400 to rotate.
    let (public, _) = k
        .json(
            Method::POST,
            "/api/v1/orgs/acme/clients",
            Some(json!({"name": "SPA", "redirect_uris": ["https://spa.acme.test/cb"], "token_endpoint_auth_method": "none"})),
            201,
        )
        .await;
    assert_eq!(public["client_secret"], Value::Null);
    assert_eq!(public["client"]["grant_types"], json!(["authorization_code", "refresh_token"]));
    let pid = public["client"]["client_id"].as_str().unwrap();
    problem(k.call(Method::POST, &format!("/api/v1/orgs/acme/clients/{pid}/secret"), &k.write, None, None).await, 400)
        .await;
    // DELETE: 204 twice; the client is gone from the token endpoint too.
    assert_eq!(k.call(Method::DELETE, &path, &k.write, None, None).await.status(), 204);
    assert_eq!(k.call(Method::DELETE, &path, &k.write, None, None).await.status(), 204);
    problem(k.call(Method::GET, &path, &k.write, None, None).await, 404).await;
    assert_eq!(token_status(&k, &id, new_secret).await, 401);
    let log = k.app.state.orgs.audit_log(P, "acme", None, None, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    for a in ["org.client_created", "org.client_secret_rotated", "org.client_deleted"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn clients_follow_the_registration_rules_and_update_with_if_match() {
    let k = Keys::new().await;
    let w = &k.write;
    let post = |b: Value| k.call(Method::POST, "/api/v1/orgs/acme/clients", w, Some(b), None);
    for (body, says) in [
        (json!({"name": "W", "redirect_uris": ["http://app.acme.test/cb"]}), "https"),
        (json!({"name": "W", "redirect_uris": ["https://app.acme.test/cb#x"]}), "fragment"),
        (json!({"name": "W", "redirect_uris": ["https://u:p@app.acme.test/cb"]}), "credentials"),
        (json!({"name": "W", "redirect_uris": ["/relative"]}), "absolute"),
        (json!({"name": ""}), "name"),
        (json!({"name": "W", "grant_types": ["authorization_code"]}), "redirect_uris"),
        (json!({"name": "W", "grant_types": []}), "grant type"),
        (json!({"name": "W", "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}), "public"),
        (json!({"name": "W", "token_endpoint_auth_method": "private_key_jwt"}), "jwks"),
        (json!({"name": "W", "backchannel_logout_uri": "http://127.0.0.1:9/logout"}), "backchannel_logout_uri"),
        (
            json!({"name": "W", "jwks_uri": "https://10.0.0.1/jwks", "token_endpoint_auth_method": "private_key_jwt"}),
            "jwks_uri",
        ),
        (json!({"name": "W", "first_party": true}), "unknown field"),
        (json!({"name": "W", "grant_types": ["password"]}), "unknown variant"),
        (json!({"name": 5}), "body"),
        (json!({"name": "W\u{0}"}), "NUL"),
        (json!({"name": "W", "redirect_uris": ["https://app.acme.test/\u{0}"]}), "NUL"),
    ] {
        let v = problem(post(body.clone()).await, 400).await;
        assert!(v["detail"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let res = k.http.post(k.app.url("/api/v1/orgs/acme/clients")).header("authorization", w).body("[").send().await;
    problem(res.unwrap(), 400).await;
    // A web client; then PUT.
    let (created, etag) = k
        .json(
            Method::POST,
            "/api/v1/orgs/acme/clients",
            Some(
                json!({"name": "Portal", "redirect_uris": ["https://portal.acme.test/cb", "http://localhost:3000/cb"]}),
            ),
            201,
        )
        .await;
    let id = created["client"]["client_id"].as_str().unwrap();
    let path = format!("/api/v1/orgs/acme/clients/{id}");
    let body = json!({
        "name": "Portal 2",
        "redirect_uris": ["https://portal.acme.test/callback"],
        "post_logout_redirect_uris": ["https://portal.acme.test/bye"],
        "require_mfa": true,
        "id_token_signed_response_alg": "ES256",
    });
    let res = k.call(Method::PUT, &path, w, Some(body.clone()), etag.as_deref()).await;
    assert_eq!(res.status(), 200);
    let tag2 = res.headers()["etag"].to_str().unwrap().to_owned();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["name"], "Portal 2");
    assert_eq!(v["redirect_uris"], json!(["https://portal.acme.test/callback"]));
    assert_eq!(v["require_mfa"], true);
    assert_eq!(v["id_token_signed_response_alg"], "ES256");
    // Idempotent; a stale ETag 412; the rules hold on PUT too; the method cannot change.
    let res = k.call(Method::PUT, &path, w, Some(body.clone()), Some(&tag2)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), tag2);
    problem(k.call(Method::PUT, &path, w, Some(body), etag.as_deref()).await, 412).await;
    problem(
        k.call(
            Method::PUT,
            &path,
            w,
            Some(json!({"name": "P", "redirect_uris": ["http://portal.acme.test/cb"]})),
            None,
        )
        .await,
        400,
    )
    .await;
    let v = problem(
        k.call(
            Method::PUT,
            &path,
            w,
            Some(
                json!({"name": "P", "redirect_uris": ["https://p.acme.test/cb"], "token_endpoint_auth_method": "none"}),
            ),
            None,
        )
        .await,
        400,
    )
    .await;
    assert!(v["detail"].as_str().unwrap().contains("token_endpoint_auth_method"), "{v}");
    let stored = k.app.state.stores.clients.client(&guichet::domain::ClientId::new(id)).await.unwrap().unwrap();
    assert_eq!(stored.name, "Portal 2");
    let log = k.app.state.orgs.audit_log(P, "acme", Some("org.client_updated"), None, 10).await.unwrap();
    assert_eq!(log.len(), 1, "one change, one entry");
    problem(k.call(Method::PUT, "/api/v1/orgs/acme/clients/nope", w, Some(json!({"name": "x"})), None).await, 404)
        .await;
    // Odd ids are nothing there (never a store error, on any database).
    for odd in ["%00", "a%0Ab", &"x".repeat(300)] {
        problem(k.call(Method::GET, &format!("/api/v1/orgs/acme/clients/{odd}"), w, None, None).await, 404).await;
    }
}

/// Another organization's clients, and the operator's, are 404 for a key; read-only keys do not
/// write; expired keys are 401.
#[tokio::test]
async fn client_keys_stay_in_their_organization_and_scope() {
    let k = Keys::new().await;
    let g = &k.globex;
    let res = k.call(Method::POST, "/api/v1/orgs/globex/clients", g, Some(json!({"name": "G"})), None).await;
    assert_eq!(res.status(), 201);
    let gc: Value = res.json().await.unwrap();
    let gid = gc["client"]["client_id"].as_str().unwrap().to_owned();
    let operator = k.app.register(registration("Operator's")).await.client.client_id.to_string();
    let w = &k.write;
    for id in [&gid, &operator] {
        for (m, path, body) in [
            (Method::GET, format!("/api/v1/orgs/acme/clients/{id}"), None),
            (Method::PUT, format!("/api/v1/orgs/acme/clients/{id}"), Some(json!({"name": "x"}))),
            (Method::POST, format!("/api/v1/orgs/acme/clients/{id}/secret"), None),
        ] {
            problem(k.call(m, &path, w, body, None).await, 404).await;
        }
        // Nothing of Acme's there: DELETE is 204 and the client lives on.
        assert_eq!(
            k.call(Method::DELETE, &format!("/api/v1/orgs/acme/clients/{id}"), w, None, None).await.status(),
            204
        );
        assert!(k
            .app
            .state
            .stores
            .clients
            .client(&guichet::domain::ClientId::new(id.as_str()))
            .await
            .unwrap()
            .is_some());
    }
    for (m, path, body) in [
        (Method::GET, "/api/v1/orgs/globex/clients".to_owned(), None),
        (Method::POST, "/api/v1/orgs/globex/clients".into(), Some(json!({"name": "x"}))),
        (Method::GET, format!("/api/v1/orgs/globex/clients/{gid}"), None),
        (Method::PUT, format!("/api/v1/orgs/globex/clients/{gid}"), Some(json!({"name": "x"}))),
        (Method::DELETE, format!("/api/v1/orgs/globex/clients/{gid}"), None),
        (Method::POST, format!("/api/v1/orgs/globex/clients/{gid}/secret"), None),
    ] {
        problem(k.call(m, &path, w, body, None).await, 404).await;
    }
    let (list, _) = k.json(Method::GET, "/api/v1/orgs/acme/clients", None, 200).await;
    assert_eq!(list, json!([]), "neither Globex's nor the operator's clients");
    // Read-only.
    let (mine, _) = k.json(Method::POST, "/api/v1/orgs/acme/clients", Some(json!({"name": "Mine"})), 201).await;
    let id = mine["client"]["client_id"].as_str().unwrap();
    let r = &k.read;
    assert_eq!(k.call(Method::GET, "/api/v1/orgs/acme/clients", r, None, None).await.status(), 200);
    assert_eq!(k.call(Method::GET, &format!("/api/v1/orgs/acme/clients/{id}"), r, None, None).await.status(), 200);
    for (m, path, body) in [
        (Method::POST, "/api/v1/orgs/acme/clients".to_owned(), Some(json!({"name": "x"}))),
        (Method::PUT, format!("/api/v1/orgs/acme/clients/{id}"), Some(json!({"name": "x"}))),
        (Method::DELETE, format!("/api/v1/orgs/acme/clients/{id}"), None),
        (Method::POST, format!("/api/v1/orgs/acme/clients/{id}/secret"), None),
    ] {
        problem(k.call(m, &path, r, body, None).await, 403).await;
    }
    // Expired.
    let (short, secret) = k.app.state.devkeys.create(P, "acme", "temp", &["write".into()], Some(1)).await.unwrap();
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{}:{secret}", short.id))
    );
    assert_eq!(k.call(Method::GET, "/api/v1/orgs/acme/clients", &auth, None, None).await.status(), 200);
    k.app.clock.advance(2 * 86_400);
    problem(k.call(Method::GET, "/api/v1/orgs/acme/clients", &auth, None, None).await, 401).await;
    problem(k.call(Method::POST, &format!("/api/v1/orgs/acme/clients/{id}/secret"), &auth, None, None).await, 401)
        .await;
}

// ---------------------------------------------------------------- connections

async fn events(k: &Keys, org: &str) -> Vec<String> {
    let o = k.app.state.orgs.find(org).await.unwrap().unwrap();
    k.app.state.webhooks.events_after(o.id, 0, 1000).await.unwrap().into_iter().map(|(_, t, _)| t).collect()
}

#[tokio::test]
async fn connections_are_made_edited_mapped_and_deleted_like_on_the_page() {
    let k = Keys::new().await;
    let w = &k.write;
    let idp = TestIdp::new("https://idp.acme.test/saml", "https://idp.acme.test/sso");
    // From metadata.
    let (c, etag) = k
        .json(
            Method::POST,
            "/api/v1/orgs/acme/connections",
            Some(json!({"type": "saml", "name": "Acme Okta", "metadata_xml": idp.metadata_xml()})),
            201,
        )
        .await;
    assert_eq!(c["type"], "saml");
    assert_eq!(c["issuer"], "https://idp.acme.test/saml");
    assert_eq!(c["shared"], false);
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["sp_entity_id"], k.app.state.federation.sp_entity_id(id.parse().unwrap()));
    let stored = k.app.state.federation.connection(&id).await.unwrap();
    assert!(stored.config.restricted(), "made with an organization's key: restricted");
    // By hand.
    let (manual, _) = k
        .json(
            Method::POST,
            "/api/v1/orgs/acme/connections",
            Some(
                json!({"type": "saml", "entity_id": "https://idp2.acme.test", "sso_url": "https://idp2.acme.test/sso",
                        "certificate": idp.cert_pem(), "want_assertions_signed": true}),
            ),
            201,
        )
        .await;
    assert_eq!(manual["want_assertions_signed"], true);
    // Refused: a metadata URL or an issuer the outbound policy forbids, bad metadata, a mix.
    let post = |b: Value| k.call(Method::POST, "/api/v1/orgs/acme/connections", w, Some(b), None);
    for body in [
        json!({"type": "saml", "metadata_url": "http://10.0.0.1/metadata"}),
        json!({"type": "saml", "metadata_url": "http://127.0.0.1:9/metadata"}),
        json!({"type": "oidc", "issuer": "http://127.0.0.1:9", "client_id": "a", "client_secret": "b"}),
        json!({"type": "oidc", "issuer": "https://169.254.169.254", "client_id": "a", "client_secret": "b"}),
        json!({"type": "oidc", "issuer": "not a url", "client_id": "a", "client_secret": "b"}),
        json!({"type": "oidc", "issuer": "https://idp.acme.test"}),
        json!({"type": "saml", "metadata_xml": "<nope/>"}),
        json!({"type": "saml", "metadata_xml": "<x/>", "metadata_url": "https://idp.acme.test/m"}),
        json!({"type": "saml"}),
        json!({"type": "saml", "entity_id": "https://e", "sso_url": "https://e/sso", "certificate": "garbage"}),
        json!({"type": "ldap"}),
        json!({"type": "saml", "metadata_xml": idp.metadata_xml(), "client_id": "x"}),
        json!({"type": "saml", "metadata_xml": idp.metadata_xml(), "extra": 1}),
    ] {
        problem(post(body).await, 400).await;
    }
    // Read one; edit with If-Match.
    let path = format!("/api/v1/orgs/acme/connections/{id}");
    let (_, tag) = k.json(Method::GET, &path, None, 200).await;
    assert_eq!(tag, etag);
    let patch =
        json!({"name": "Acme SSO", "email_claim": "mail", "groups_claim": "memberOf", "want_assertions_signed": true});
    let res = k.call(Method::PATCH, &path, w, Some(patch.clone()), tag.as_deref()).await;
    assert_eq!(res.status(), 200);
    let tag2 = res.headers()["etag"].to_str().unwrap().to_owned();
    let v: Value = res.json().await.unwrap();
    assert_eq!((v["name"].as_str(), v["email_claim"].as_str()), (Some("Acme SSO"), Some("mail")));
    assert_eq!(v["want_assertions_signed"], true);
    let res = k.call(Method::PATCH, &path, w, Some(patch.clone()), Some(&tag2)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), tag2, "the same change changes nothing");
    problem(k.call(Method::PATCH, &path, w, Some(patch), tag.as_deref()).await, 412).await;
    problem(k.call(Method::PATCH, &path, w, Some(json!({"name": "x".repeat(101)})), None).await, 400).await;
    problem(k.call(Method::PATCH, &path, w, Some(json!({"colour": "red"})), None).await, 400).await;
    // Group → role mappings.
    let rp = k.app.register(registration("Orders")).await;
    let cid = rp.client.client_id.to_string();
    k.app.state.orgs.add_permissions(P, &cid, &["orders:read".into()]).await.unwrap();
    let role = k.app.state.orgs.create_role(P, &cid, "buyer", &["orders:read".into()], Some("acme")).await.unwrap();
    let map = format!("{path}/groups/Sales%20Team/roles/{}", role.id);
    let (v, _) = k.json(Method::PUT, &map, None, 200).await;
    assert_eq!(v["group_roles"], json!([{"group": "Sales Team", "role": role.id.to_string()}]));
    let (again, _) = k.json(Method::PUT, &map, None, 200).await;
    assert_eq!(again["group_roles"], v["group_roles"]);
    problem(k.call(Method::PUT, &format!("{path}/groups/x/roles/nope"), w, None, None).await, 404).await;
    let globex_role =
        k.app.state.orgs.create_role(P, &cid, "gbuyer", &["orders:read".into()], Some("globex")).await.unwrap();
    problem(k.call(Method::PUT, &format!("{path}/groups/x/roles/{}", globex_role.id), w, None, None).await, 404).await;
    assert_eq!(k.call(Method::DELETE, &format!("{path}/groups/Sales%20Team"), w, None, None).await.status(), 204);
    assert_eq!(k.call(Method::DELETE, &format!("{path}/groups/Sales%20Team"), w, None, None).await.status(), 204);
    let (v, _) = k.json(Method::GET, &path, None, 200).await;
    assert_eq!(v["group_roles"], json!([]));
    // The list; DELETE 204 twice.
    let (list, _) = k.json(Method::GET, "/api/v1/orgs/acme/connections", None, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(k.call(Method::DELETE, &path, w, None, None).await.status(), 204);
    assert_eq!(k.call(Method::DELETE, &path, w, None, None).await.status(), 204);
    problem(k.call(Method::GET, &path, w, None, None).await, 404).await;
    // The page's audit entries and events.
    let log = k.app.state.orgs.audit_log(P, "acme", None, None, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    for a in ["org.connection_created", "org.connection_updated", "org.connection_deleted"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    // created ×2, updated (edit, map, unmap), deleted.
    let ev = events(&k, "acme").await;
    assert_eq!(ev.iter().filter(|t| *t == "connection.changed").count(), 6, "{ev:?}");
}

#[tokio::test]
async fn connections_of_others_are_404_shared_ones_read_only_and_scopes_hold() {
    let k = Keys::new().await;
    let idp = TestIdp::new("https://idp.acme.test/saml", "https://idp.acme.test/sso");
    let own = k
        .app
        .state
        .federation
        .create_saml(P, &["acme".into()], Some("Acme"), SamlSource::Xml(idp.metadata_xml()), Default::default())
        .await
        .unwrap();
    let shared = k
        .app
        .state
        .federation
        .create_saml(
            P,
            &["acme".into(), "globex".into()],
            Some("Both"),
            SamlSource::Xml(idp.metadata_xml()),
            Default::default(),
        )
        .await
        .unwrap();
    let role = {
        let rp = k.app.register(registration("Orders")).await;
        let cid = rp.client.client_id.to_string();
        k.app.state.orgs.add_permissions(P, &cid, &["o:r".into()]).await.unwrap();
        k.app.state.orgs.create_role(P, &cid, "r", &["o:r".into()], Some("acme")).await.unwrap()
    };
    let w = &k.write;
    // Shared: readable, not changeable with a key.
    let sp = format!("/api/v1/orgs/acme/connections/{}", shared.id);
    let (v, _) = k.json(Method::GET, &sp, None, 200).await;
    assert_eq!((v["shared"].as_bool(), v["org_count"].as_u64()), (Some(true), Some(2)));
    for (m, path, body) in [
        (Method::PATCH, sp.clone(), Some(json!({"name": "Mine now"}))),
        (Method::DELETE, sp.clone(), None),
        (Method::PUT, format!("{sp}/groups/g/roles/{}", role.id), None),
        (Method::DELETE, format!("{sp}/groups/g"), None),
    ] {
        problem(k.call(m, &path, w, body, None).await, 403).await;
    }
    assert_eq!(k.app.state.federation.connection(&shared.id.to_string()).await.unwrap().name, "Both");
    // Globex's key against Acme's connection, and Acme's key against Globex: 404.
    let g = &k.globex;
    let op = format!("/api/v1/orgs/acme/connections/{}", own.id);
    let via_globex = format!("/api/v1/orgs/globex/connections/{}", own.id);
    for (m, path, auth, body) in [
        (Method::GET, "/api/v1/orgs/acme/connections".to_owned(), g, None),
        (
            Method::POST,
            "/api/v1/orgs/acme/connections".into(),
            g,
            Some(json!({"type": "saml", "metadata_xml": idp.metadata_xml()})),
        ),
        (Method::GET, op.clone(), g, None),
        (Method::PATCH, op.clone(), g, Some(json!({"name": "x"}))),
        (Method::DELETE, op.clone(), g, None),
        (Method::PUT, format!("{op}/groups/g/roles/{}", role.id), g, None),
        (Method::DELETE, format!("{op}/groups/g"), g, None),
        // Acme's connection through Globex's path, with Globex's key: not Globex's.
        (Method::GET, via_globex.clone(), g, None),
        (Method::PATCH, via_globex.clone(), g, Some(json!({"name": "x"}))),
        (Method::PUT, format!("{via_globex}/groups/g/roles/{}", role.id), g, None),
        (Method::GET, "/api/v1/orgs/globex/connections".into(), w, None),
        (Method::GET, format!("/api/v1/orgs/globex/connections/{}", shared.id), w, None),
    ] {
        problem(k.call(m, &path, auth, body, None).await, 404).await;
    }
    assert_eq!(k.call(Method::DELETE, &via_globex, g, None, None).await.status(), 204);
    assert!(k.app.state.federation.connection(&own.id.to_string()).await.is_ok(), "still there");
    // Read-only key.
    let r = &k.read;
    assert_eq!(k.call(Method::GET, &op, r, None, None).await.status(), 200);
    for (m, path, body) in [
        (
            Method::POST,
            "/api/v1/orgs/acme/connections".to_owned(),
            Some(json!({"type": "saml", "metadata_xml": idp.metadata_xml()})),
        ),
        (Method::PATCH, op.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, op.clone(), None),
        (Method::PUT, format!("{op}/groups/g/roles/{}", role.id), None),
        (Method::DELETE, format!("{op}/groups/g"), None),
    ] {
        problem(k.call(m, &path, r, body, None).await, 403).await;
    }
    // Expired key.
    let (short, secret) = k.app.state.devkeys.create(P, "acme", "temp", &["write".into()], Some(1)).await.unwrap();
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{}:{secret}", short.id))
    );
    k.app.clock.advance(2 * 86_400);
    problem(k.call(Method::GET, &op, &auth, None, None).await, 401).await;
    problem(k.call(Method::DELETE, &op, &auth, None, None).await, 401).await;
}
