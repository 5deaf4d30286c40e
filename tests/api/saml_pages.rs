//! SAML self-service pages (`/orgs/<slug>/sso`): an organization admin connects the
//! organization's SAML IdP (metadata pasted, by URL, by hand), tests it, and edits it; other
//! organizations' admins see none of it. The test IdP is `saml_idp.rs`; the harness `saml.rs`.

use guichet::domain::federation::ConnectionConfig;
use guichet::domain::org::OrgRole;
use guichet::federation::saml::SamlOptions;

use crate::helpers::TestApp;
use crate::saml::{acme, saml, IDP_ENTITY, IDP_SSO, P};
use crate::saml_idp::{parse_redirect, ResponseOpts, TestIdp};

/// Self-service: an organization admin connects the organization's SAML IdP from
/// `/orgs/<slug>/sso` (metadata pasted; by hand), sees what to give the IdP, tests it (the
/// attributes received, nobody signed in), and another organization's admin sees none of it.
/// A metadata URL on a private address is refused.
#[tokio::test]
async fn an_org_admin_connects_a_saml_idp_from_the_sso_page() {
    use crate::helpers::{form_value, unescape};
    use crate::oidc_helpers::PW;
    let hub = TestApp::spawn().await;
    acme(&hub).await;
    hub.create_user("boss@acme.test", PW).await;
    hub.state.orgs.set_member(P, "acme", "boss@acme.test", OrgRole::Admin).await.unwrap();
    let b = hub.browser();
    assert_eq!(hub.login(&b, "boss@acme.test", PW, None).await.status(), 303);
    let page = || async {
        let html =
            b.get(hub.url("/orgs/acme/sso")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
        (form_value(&html, "csrf_token").unwrap(), unescape(&html))
    };
    let (csrf, html) = page().await;
    assert!(html.contains("id=\"saml-form\"") && html.contains("id=\"saml-guides\""), "{html}");
    let idp = TestIdp::new(IDP_ENTITY, IDP_SSO);
    let post = |form: Vec<(&'static str, String)>| {
        let b = b.clone();
        let url = hub.url("/orgs/acme/sso/saml");
        async move { b.post(url).header("accept", "text/html").form(&form).send().await.unwrap() }
    };
    // Nothing given: 400 with a message, nothing saved.
    let res = post(vec![("csrf_token", csrf.clone()), ("name", "Nothing".into())]).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("id=\"error\""));
    // A metadata URL on loopback: refused by the outbound policy (org admins' URLs).
    let res = post(vec![
        ("csrf_token", csrf.clone()),
        ("name", "Internal".into()),
        ("metadata_url", "http://127.0.0.1:9/metadata".into()),
    ])
    .await;
    assert_eq!(res.status(), 400);
    // Metadata pasted.
    let res = post(vec![
        ("csrf_token", csrf.clone()),
        ("name", "Acme Okta".into()),
        ("metadata_xml", idp.metadata_xml()),
        ("want_assertions_signed", "1".into()),
    ])
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // By hand.
    let res = post(vec![
        ("csrf_token", csrf.clone()),
        ("name", "Acme ADFS".into()),
        ("entity_id", "https://adfs.acme.test/adfs/services/trust".into()),
        ("sso_url", "https://adfs.acme.test/adfs/ls/".into()),
        ("certificate", idp.cert_pem()),
    ])
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let conns = hub.state.federation.connections_for_org(P, "acme").await.unwrap();
    assert_eq!(conns.len(), 2);
    let okta = conns.iter().find(|c| c.name == "Acme Okta").unwrap();
    let ConnectionConfig::Saml(cfg) = &okta.config else { unreachable!() };
    assert!(cfg.want_assertions_signed && cfg.restricted);
    let (_, html) = page().await;
    let sp = hub.state.federation.sp_entity_id(okta.id);
    let acs = hub.state.federation.acs_url(okta.id);
    assert!(html.contains(&sp) && html.contains(&acs), "the values to give the IdP are shown");
    let audit = hub.state.stores.journal.audit_events(50).await.unwrap();
    assert!(audit.iter().filter(|e| e.action == "org.connection_created").count() >= 2);

    // Test connection: the admin's browser goes to the IdP; the response shows the attributes.
    let res = b.get(hub.url(&format!("/orgs/acme/sso/{}/test", okta.id))).send().await.unwrap();
    let req = parse_redirect(res.headers()["location"].to_str().unwrap());
    let mut o = ResponseOpts::new("ann@acme.test", Some(&req.id), &acs, &sp);
    o.attributes = vec![("groups".into(), vec!["buyers".into()])];
    let res = b
        .post(&acs)
        .header("accept", "text/html")
        .form(&[("SAMLResponse", idp.response_b64(&o)), ("RelayState", req.relay_state.unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = unescape(&res.text().await.unwrap());
    assert!(
        html.contains("id=\"test-admitted\"") && html.contains("ann@acme.test") && html.contains("buyers"),
        "{html}"
    );
    assert!(hub.state.accounts.user_by_email("ann@acme.test").await.unwrap().is_none(), "nobody was signed in");

    // Another organization's admin: 404 for the test link, nothing of Acme's on their page.
    hub.state.orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    hub.create_user("gina@globex.test", PW).await;
    hub.state.orgs.set_member(P, "globex", "gina@globex.test", OrgRole::Admin).await.unwrap();
    let g = hub.browser();
    hub.login(&g, "gina@globex.test", PW, None).await;
    let res =
        g.get(hub.url(&format!("/orgs/acme/sso/{}/test", okta.id))).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let html =
        g.get(hub.url("/orgs/globex/sso")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("Acme Okta"));
}

/// Self-service editing: the name, the attributes read (the next sign-in reads the new one),
/// signed assertions required, a group granting a role, serving a second organization the admin
/// also runs; each change audited with before/after. An admin of another organization gets 404
/// for all of it; a connection shared with an organization the admin does not run is theirs to
/// read, not to change.
#[tokio::test]
async fn an_org_admin_edits_the_connection_from_the_sso_page() {
    use crate::helpers::{form_value, unescape};
    use crate::oidc_helpers::PW;
    let s = saml(SamlOptions::default()).await;
    let hub = &s.hub;
    let pid = s.portal.client.client_id.to_string();
    hub.state.orgs.add_permissions(P, &pid, &["orders:read".into()]).await.unwrap();
    let role = hub.state.orgs.create_role(P, &pid, "buyer", &["orders:read".into()], None).await.unwrap();
    hub.create_user("boss@acme.test", PW).await;
    hub.state.orgs.set_member(P, "acme", "boss@acme.test", OrgRole::Admin).await.unwrap();
    hub.state.orgs.create(P, "Acme Labs", Some("acme-labs"), None).await.unwrap();
    hub.state.orgs.set_member(P, "acme-labs", "boss@acme.test", OrgRole::Admin).await.unwrap();
    let b = hub.browser();
    hub.login(&b, "boss@acme.test", PW, None).await;
    let html =
        b.get(hub.url("/orgs/acme/sso")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    assert!(html.contains(&format!("id=\"connection-edit-{}\"", s.conn)), "{html}");
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let b = b.clone();
        let url = hub.url(&path);
        async move { b.post(url).header("accept", "text/html").form(&form).send().await.unwrap() }
    };
    let edit = format!("/orgs/acme/sso/{}/edit", s.conn);
    let res = post(
        edit.clone(),
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "Acme Okta (prod)".into()),
            ("email_claim", "upn".into()),
            ("name_claim", "cn".into()),
            ("groups_claim", "teams".into()),
            ("want_assertions_signed", "1".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let c = s.connection().await;
    assert_eq!(c.name, "Acme Okta (prod)");
    let ConnectionConfig::Saml(cfg) = &c.config else { unreachable!() };
    assert_eq!((cfg.mapping.email[0].as_str(), cfg.mapping.groups[0].as_str()), ("upn", "teams"));
    assert!(cfg.want_assertions_signed);
    // A group grants a role of the organization.
    let groups = format!("/orgs/acme/sso/{}/groups", s.conn);
    let res = post(
        groups.clone(),
        vec![
            ("csrf_token", csrf.clone()),
            ("group", "Buyers".into()),
            ("role", role.id.to_string()),
            ("op", "map".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    // The next sign-in reads the new attributes: `upn` for the email, `teams` for the groups.
    let someone = hub.browser();
    let res = s
        .sign_in_with(&someone, |o| {
            o.name_id = "u-1".into();
            o.name_id_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into();
            o.attributes = vec![("upn".into(), vec!["dan@acme.test".into()]), ("teams".into(), vec!["Buyers".into()])];
        })
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let dan = hub.state.accounts.user_by_email("dan@acme.test").await.unwrap().unwrap();
    let acme = hub.state.orgs.find("acme").await.unwrap().unwrap();
    let m = hub.state.stores.orgs.member(acme.id, dan.id).await.unwrap().unwrap();
    assert_eq!(m.roles.len(), 1, "the group granted the role");
    // A role of nowhere: 404, nothing changes.
    let res = post(
        groups.clone(),
        vec![
            ("csrf_token", csrf.clone()),
            ("group", "X".into()),
            ("role", "00000000-0000-0000-0000-000000000000".into()),
            ("op", "map".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 404);
    // Serve Acme Labs too (the admin runs it), then stop.
    let orgs = format!("/orgs/acme/sso/{}/orgs", s.conn);
    let res =
        post(orgs.clone(), vec![("csrf_token", csrf.clone()), ("org", "acme-labs".into()), ("op", "add".into())]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(s.connection().await.orgs.len(), 2);
    let html = unescape(
        &b.get(hub.url("/orgs/acme/sso")).header("accept", "text/html").send().await.unwrap().text().await.unwrap(),
    );
    assert!(html.contains(&format!("id=\"serve-{}-acme-labs\"", s.conn)), "{html}");
    let res =
        post(orgs.clone(), vec![("csrf_token", csrf.clone()), ("org", "acme-labs".into()), ("op", "remove".into())])
            .await;
    assert_eq!(res.status(), 303);
    assert_eq!(s.connection().await.orgs.len(), 1);
    let audit = hub.state.stores.journal.audit_events(50).await.unwrap();
    let updated: Vec<_> = audit.iter().filter(|e| e.action == "org.connection_updated").collect();
    assert!(updated.len() >= 4);
    assert!(updated
        .iter()
        .any(|e| e.detail.as_deref().is_some_and(|d| d.contains("Acme SAML") && d.contains("Acme Okta (prod)"))));

    // Another organization's admin: 404 everywhere.
    hub.state.orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    hub.create_user("gina@globex.test", PW).await;
    hub.state.orgs.set_member(P, "globex", "gina@globex.test", OrgRole::Admin).await.unwrap();
    let g = hub.browser();
    hub.login(&g, "gina@globex.test", PW, None).await;
    let gh =
        g.get(hub.url("/orgs/globex/sso")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let gcsrf = form_value(&gh, "csrf_token").unwrap();
    for path in [edit.clone(), groups.clone(), orgs.clone(), format!("/orgs/globex/sso/{}/edit", s.conn)] {
        let res = g
            .post(hub.url(&path))
            .header("accept", "text/html")
            .form(&[
                ("csrf_token", gcsrf.as_str()),
                ("name", "pwned"),
                ("group", "g"),
                ("role", &role.id.to_string()),
                ("org", "globex"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    // Shared with Globex by the operator: Acme's admin may no longer change it.
    hub.state.federation.associate(P, &s.conn, "globex", true).await.unwrap();
    let res = post(edit, vec![("csrf_token", csrf.clone()), ("name", "Mine".into())]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(s.connection().await.name, "Acme Okta (prod)");
}
