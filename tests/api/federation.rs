//! Federation through an upstream OpenID Provider: a second Guichet instance acts as the
//! company's identity provider. The whole chain through the `openidconnect` RP: portal → Guichet
//! → company IdP → Guichet → portal, the ID token saying how the user signed in (`amr` `fed`,
//! `idp`) with the organization and role claims; home-realm discovery from the login page;
//! admission only for verified domains of the connection's organizations; state bound to the
//! browser and used once.

use guichet::domain::account::AccountOp;
use guichet::domain::org::{OrgDomain, OrgRole};
use guichet::orgs::Actor;

use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{auth_url, claims, exchange, registration, Rp, PW, REDIRECT};

const P: Actor = Actor::Platform;

struct Fed {
    idp: TestApp,
    hub: TestApp,
    portal: Rp,
    connection: String,
}

/// `idp`: the company's IdP (Guichet), with ann@acme.test and bob@elsewhere.test (verified
/// addresses). `hub`: Guichet with the organization Acme (acme.test verified), a connection to
/// the IdP, and a portal with permissions.
async fn fed() -> Fed {
    fed_with(false).await
}

/// `allow_loopback`: the hub's outbound policy lets organization admins' providers be on
/// loopback (the test IdP is).
async fn fed_with(allow_loopback: bool) -> Fed {
    // Another host name than the hub's: the browser keeps the two servers' cookies apart.
    let idp = TestApp::spawn_on_host("localhost").await;
    let hub = TestApp::spawn_with(|s| s.outbound.allow_loopback = allow_loopback).await;
    for email in ["ann@acme.test", "bob@elsewhere.test", "carl@acme.test"] {
        let u = idp.create_user(email, PW).await;
        idp.state.stores.accounts.apply(vec![AccountOp::SetEmailVerified { user: u.id }]).await.unwrap();
    }
    let mut reg = registration("Hub");
    reg.redirect_uris = vec![hub.url("/sso/oidc/callback")];
    reg.first_party = true;
    let upstream = idp.register(reg).await;
    let orgs = &hub.state.orgs;
    let acme = orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    let now = hub.state.clock.now();
    let d = OrgDomain {
        org: acme.id,
        domain: "acme.test".into(),
        challenge: "x".into(),
        verified_at: None,
        last_checked_at: None,
        last_error: None,
        created_at: now,
    };
    hub.state.stores.orgs.add_domain(&d, Vec::new()).await.unwrap();
    hub.state.stores.orgs.domain_checked(acme.id, "acme.test", true, None, now).await.unwrap();
    let c = hub
        .state
        .federation
        .create_oidc(
            P,
            Some("Acme IdP"),
            &idp.base,
            upstream.client.client_id.as_str(),
            upstream.secret.as_deref().unwrap(),
            &["acme".into()],
            false,
        )
        .await
        .unwrap();
    let portal = hub.register(registration("Orders")).await;
    let pid = portal.client.client_id.to_string();
    orgs.add_permissions(P, &pid, &["orders:read".into()]).await.unwrap();
    orgs.create_role(P, &pid, "buyer", &["orders:read".into()], None).await.unwrap();
    Fed { idp, hub, portal, connection: c.id.to_string() }
}

/// Follows redirects across both servers; signs in at the IdP's login form when it shows.
/// Returns the redirect to the portal, or the page where it stopped.
async fn chain(f: &Fed, b: &reqwest::Client, start: &str, email: &str) -> reqwest::Response {
    chain_counting(f, b, start, email).await.0
}

/// `chain`, also counting the times the IdP showed its login form.
async fn chain_counting(f: &Fed, b: &reqwest::Client, start: &str, email: &str) -> (reqwest::Response, usize) {
    let mut logins = 0;
    let mut res = b.get(start).header("accept", "text/html").send().await.unwrap();
    for _ in 0..20 {
        if res.status().is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap().to_owned();
            if loc.starts_with(REDIRECT) {
                return (res, logins);
            }
            let next = if loc.starts_with('/') { format!("{}{}", url_base(res.url()), loc) } else { loc };
            res = b.get(next).header("accept", "text/html").send().await.unwrap();
            continue;
        }
        if res.status() != 200 || !res.url().as_str().starts_with(&f.idp.base) {
            return (res, logins);
        }
        let html = res.text().await.unwrap();
        if !html.contains(r#"action="/login""#) {
            panic!("unexpected page at the IdP: {html}");
        }
        logins += 1;
        let csrf = form_value(&html, "csrf_token").unwrap();
        let rt = form_value(&html, "return_to").unwrap();
        res = b
            .post(f.idp.url("/login"))
            .form(&[("email", email), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
            .send()
            .await
            .unwrap();
    }
    panic!("too many redirects");
}

fn url_base(u: &reqwest::Url) -> String {
    format!("{}://{}", u.scheme(), u.host_str().unwrap()) + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
}

fn code_of(res: &reqwest::Response) -> String {
    assert!(res.status().is_redirection(), "expected the redirect to the portal, got {}", res.status());
    let loc = res.headers()["location"].to_str().unwrap();
    let u = url::Url::parse(loc).unwrap();
    u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap_or_else(|| panic!("no code: {loc}"))
}

/// The whole chain through the `openidconnect` RP: the ID token is verified by the crate and
/// says `amr` `fed`, `idp`, and carries the organization and its roles.
#[tokio::test]
async fn portal_to_guichet_to_the_company_idp_and_back() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse,
    };
    let f = fed().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(f.hub.base.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(f.portal.client.client_id.to_string()),
        f.portal.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("org".into()))
        .add_scope(Scope::new("roles".into()))
        .add_scope(Scope::new("email".into()))
        .add_extra_param("organization", "acme")
        .set_pkce_challenge(challenge)
        .url();
    let b = f.hub.browser();
    let first = b.get(url.as_str()).send().await.unwrap();
    let to = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("/sso/{}?", f.connection)), "organization= goes straight to the IdP: {to}");
    let res = chain(&f, &b, url.as_str(), "ann@acme.test").await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code_of(&res)))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let raw = tokens.id_token().unwrap().to_string();
    let idc = tokens.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(idc.email().map(|e| e.as_str()), Some("ann@acme.test"));
    let amr: Vec<String> = idc.auth_method_refs().unwrap().iter().map(|a| a.as_str().to_owned()).collect();
    assert_eq!(amr, vec!["fed"]);
    let c = claims(&raw);
    assert_eq!(c["idp"], f.connection);
    assert_eq!(c["org"]["slug"], "acme");
    assert_eq!(c["roles"], serde_json::json!([]));
    // The account was created (JIT) as a member of Acme, linked to the IdP's subject.
    let ann = f.hub.state.accounts.user_by_email("ann@acme.test").await.unwrap().unwrap();
    assert!(ann.email_verified);
    let acme = f.hub.state.orgs.find("acme").await.unwrap().unwrap();
    assert_eq!(f.hub.state.stores.orgs.membership(acme.id, ann.id).await.unwrap(), Some(OrgRole::Member));
    assert_eq!(f.hub.state.stores.federation.identities_of(ann.id).await.unwrap().len(), 1);
    // A role granted in Guichet shows at the next sign-in (the session at Guichet is reused).
    f.hub.state.orgs.grant_role(P, "acme", "ann@acme.test", "buyer", None).await.unwrap();
    let (url, verifier) = auth_url(&f.hub, &f.portal, &[("scope", "openid org roles"), ("organization", "acme")]);
    let res = chain(&f, &b, &url, "ann@acme.test").await;
    let t = exchange(&f.hub, &f.portal, &code_of(&res), &verifier).await;
    let c = claims(t["id_token"].as_str().unwrap());
    assert_eq!(c["roles"], serde_json::json!(["buyer"]));
    assert_eq!(c["amr"], serde_json::json!(["fed"]), "still the federated sign-in");
    // The account page shows the linked identity provider.
    let html = b.get(f.hub.url("/account")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"linked-identities\"") && html.contains("Acme IdP"), "{html}");
    // The second sign-in through the IdP finds the linked account (no second account).
    let b2 = f.hub.browser();
    let (url, _) = auth_url(&f.hub, &f.portal, &[("scope", "openid org"), ("organization", "acme")]);
    code_of(&chain(&f, &b2, &url, "ann@acme.test").await);
    assert_eq!(f.hub.state.accounts.list(100, 0).await.unwrap().len(), 1);
}

/// Home-realm discovery: the email alone on the login page goes to the organization's IdP;
/// `login_hint` too; a password sign-in of an organization that requires SSO goes there as well.
#[tokio::test]
async fn the_login_page_sends_the_organizations_people_to_their_idp() {
    let f = fed().await;
    let b = f.hub.browser();
    let (url, verifier) = auth_url(&f.hub, &f.portal, &[("scope", "openid org")]);
    let res = f.hub.follow(&b, b.get(&url).send().await.unwrap()).await;
    let html = res.text().await.unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let rt = form_value(&html, "return_to").unwrap();
    let res = b
        .post(f.hub.url("/login"))
        .form(&[("email", "carl@acme.test"), ("password", ""), ("csrf_token", &csrf), ("return_to", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("/sso/{}?", f.connection)), "{to}");
    let res = chain(&f, &b, &f.hub.url(&to), "carl@acme.test").await;
    let t = exchange(&f.hub, &f.portal, &code_of(&res), &verifier).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["idp"], f.connection);
    // login_hint on GET /login.
    let res = f.hub.browser().get(f.hub.url("/login?login_hint=carl%40acme.test")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with(&format!("/sso/{}?", f.connection)));
    // Other addresses keep the password step.
    let res = f.hub.browser().get(f.hub.url("/login?login_hint=zoe%40example.com")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Only addresses of the organization's verified domains are admitted; the state is bound to
/// the browser and used once; the IdP's error is a page, not a sign-in.
#[tokio::test]
async fn federated_sign_in_fails_closed() {
    let f = fed().await;
    // An address outside Acme's verified domains, vouched for by Acme's IdP: refused.
    let b = f.hub.browser();
    let res =
        chain(&f, &b, &f.hub.url(&format!("/sso/{}?return_to=/account", f.connection)), "bob@elsewhere.test").await;
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("not one of the organization"), "{html}");
    assert!(f.hub.state.accounts.user_by_email("bob@elsewhere.test").await.unwrap().is_none(), "no account");
    assert_eq!(b.get(f.hub.url("/account")).send().await.unwrap().status(), 303, "not signed in");
    // An existing local account of another domain is not linked either.
    // The state: another browser cannot finish, and a replay finds nothing.
    let b = f.hub.browser();
    let res = b.get(f.hub.url(&format!("/sso/{}?return_to=/account", f.connection))).send().await.unwrap();
    let to_idp = res.headers()["location"].to_str().unwrap().to_owned();
    let state = url::Url::parse(&to_idp).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    // Sign in at the IdP in the same browser; stop at the callback.
    let mut res = b.get(&to_idp).send().await.unwrap();
    let callback = loop {
        if res.status().is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap().to_owned();
            if loc.starts_with(&f.hub.base) {
                break loc;
            }
            let next = if loc.starts_with('/') { f.idp.url(&loc) } else { loc };
            res = b.get(next).send().await.unwrap();
        } else {
            let html = res.text().await.unwrap();
            let csrf = form_value(&html, "csrf_token").unwrap();
            let rt = form_value(&html, "return_to").unwrap();
            res = b
                .post(f.idp.url("/login"))
                .form(&[("email", "ann@acme.test"), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
                .send()
                .await
                .unwrap();
        }
    };
    assert!(callback.contains(&state));
    let thief = f.hub.browser();
    thief.get(f.hub.url("/login")).send().await.unwrap();
    assert_eq!(thief.get(&callback).send().await.unwrap().status(), 400, "another browser");
    assert_eq!(b.get(&callback).send().await.unwrap().status(), 400, "the state was spent by the failed attempt");
    // The IdP answering an error.
    let res = b.get(f.hub.url(&format!("/sso/{}?return_to=/account", f.connection))).send().await.unwrap();
    let to_idp = res.headers()["location"].to_str().unwrap().to_owned();
    let state = url::Url::parse(&to_idp).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let res = b.get(f.hub.url(&format!("/sso/oidc/callback?state={state}&error=access_denied"))).send().await.unwrap();
    assert_eq!(res.status(), 502);
    // Unknown connection.
    assert_eq!(b.get(f.hub.url("/sso/6f1c1b2e-8a7d-4c55-9a52-0d2a6c3c2b11")).send().await.unwrap().status(), 404);
    assert_eq!(b.get(f.hub.url("/sso/nope")).send().await.unwrap().status(), 404);
}

async fn post_form(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(url).header("accept", "text/html").form(form).send().await.unwrap()
}

async fn csrf_at(b: &reqwest::Client, url: &str) -> (u16, String, String) {
    let res = b.get(url).header("accept", "text/html").send().await.unwrap();
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    (status, form_value(&html, "csrf_token").unwrap_or_default(), html)
}

/// Self-service: an organization admin connects the organization's provider from
/// `/orgs/<slug>/sso`, its people sign in through it, and the admin deletes it after typing its
/// name. Another organization's admin sees none of it.
#[tokio::test]
async fn an_org_admin_connects_the_organizations_idp_from_the_sso_page() {
    let f = fed_with(true).await;
    let hub = &f.hub;
    hub.create_user("boss@acme.test", PW).await;
    hub.state.orgs.set_member(P, "acme", "boss@acme.test", OrgRole::Admin).await.unwrap();
    let mut reg = registration("Hub (self-service)");
    reg.redirect_uris = vec![hub.url("/sso/oidc/callback")];
    reg.first_party = true;
    let upstream = f.idp.register(reg).await;
    let b = hub.browser();
    assert_eq!(hub.login(&b, "boss@acme.test", PW, None).await.status(), 303);
    let (status, csrf, html) = csrf_at(&b, &hub.url("/orgs/acme/sso")).await;
    assert_eq!(status, 200);
    assert!(
        crate::helpers::unescape(&html).contains(&hub.url("/sso/oidc/callback")),
        "the redirect URI to register is shown"
    );
    assert!(html.contains("Acme IdP"), "the operator's connection is listed");
    let res = post_form(
        &b,
        &hub.url("/orgs/acme/sso"),
        &[
            ("csrf_token", &csrf),
            ("name", "Acme Keycloak"),
            ("issuer", &f.idp.base),
            ("client_id", upstream.client.client_id.as_str()),
            ("client_secret", upstream.secret.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let conns = hub.state.federation.connections_for_org(P, "acme").await.unwrap();
    let mine = conns.iter().find(|c| c.name == "Acme Keycloak").unwrap();
    let guichet::domain::federation::ConnectionConfig::Oidc(cfg) = &mine.config else { unreachable!() };
    assert!(cfg.restricted, "made by an org admin: every request goes through the outbound policy");
    // Its sign-in link works for the organization's people.
    let someone = hub.browser();
    let res = chain(&f, &someone, &hub.url(&format!("/sso/{}?return_to=/account", mine.id)), "ann@acme.test").await;
    assert_eq!(res.status(), 200, "signed in and on the account page");
    // Test connection: a real sign-in at the provider, its result shown, nobody signed in.
    let res = chain(&f, &b, &hub.url(&format!("/orgs/acme/sso/{}/test", mine.id)), "ann@acme.test").await;
    assert_eq!(res.status(), 200);
    let html = crate::helpers::unescape(&res.text().await.unwrap());
    assert!(html.contains("id=\"test-admitted\"") && html.contains("ann@acme.test"), "{html}");
    assert!(html.contains("nobody was signed in"));
    let account = b.get(hub.url("/account")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(account.contains("boss@acme.test") && !account.contains("ann@acme.test"), "the admin is still the admin");
    let tester = hub.browser();
    hub.login(&tester, "boss@acme.test", PW, None).await;
    let res = chain(&f, &tester, &hub.url(&format!("/orgs/acme/sso/{}/test", mine.id)), "bob@elsewhere.test").await;
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"test-refused\""), "{html}");
    assert!(hub.state.accounts.user_by_email("bob@elsewhere.test").await.unwrap().is_none());
    // The audit log has it.
    let audit = hub.state.stores.journal.audit_events(50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "org.connection_created"));
    // Another organization's admin: 404 for the page and the forms.
    hub.state.orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    hub.create_user("gina@globex.test", PW).await;
    hub.state.orgs.set_member(P, "globex", "gina@globex.test", OrgRole::Admin).await.unwrap();
    let g = hub.browser();
    hub.login(&g, "gina@globex.test", PW, None).await;
    let (status, gcsrf, _) = csrf_at(&g, &hub.url("/orgs/acme/sso")).await;
    assert_eq!(status, 404);
    let (_, gcsrf2, _) = csrf_at(&g, &hub.url("/orgs/globex/sso")).await;
    let res =
        g.get(hub.url(&format!("/orgs/acme/sso/{}/test", mine.id))).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 404, "another organization's connection cannot be tested");
    let id = mine.id.to_string();
    for (url, form) in [
        (
            hub.url("/orgs/acme/sso/delete"),
            vec![("csrf_token", gcsrf.as_str()), ("id", id.as_str()), ("confirm", "Acme Keycloak")],
        ),
        (
            hub.url("/orgs/globex/sso/delete"),
            vec![("csrf_token", gcsrf2.as_str()), ("id", id.as_str()), ("confirm", "Acme Keycloak")],
        ),
    ] {
        let res = post_form(&g, &url, &form).await;
        assert!(matches!(res.status().as_u16(), 403 | 404), "{url}: {}", res.status());
    }
    assert!(hub.state.federation.connection(&id).await.is_ok(), "still there");
    // The admin deletes it: the name typed wrong, then right.
    let (_, csrf, _) = csrf_at(&b, &hub.url("/orgs/acme/sso")).await;
    let res =
        post_form(&b, &hub.url("/orgs/acme/sso/delete"), &[("csrf_token", &csrf), ("id", &id), ("confirm", "acme")])
            .await;
    assert_eq!(res.status(), 400);
    let res = post_form(
        &b,
        &hub.url("/orgs/acme/sso/delete"),
        &[("csrf_token", &csrf), ("id", &id), ("confirm", "Acme Keycloak")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(hub.state.federation.connection(&id).await.is_err());
}

/// An organization admin cannot make Guichet fetch internal addresses: loopback, private,
/// link-local (cloud metadata) and `localhost` issuers are refused with the same message, and
/// nothing is saved.
#[tokio::test]
async fn an_org_admins_provider_must_be_on_a_public_address() {
    let f = fed().await;
    let hub = &f.hub;
    hub.create_user("boss@acme.test", PW).await;
    hub.state.orgs.set_member(P, "acme", "boss@acme.test", OrgRole::Admin).await.unwrap();
    let b = hub.browser();
    hub.login(&b, "boss@acme.test", PW, None).await;
    let before = hub.state.federation.connections().await.unwrap().len();
    for issuer in [
        f.idp.base.clone(),
        format!("http://127.0.0.1:{}", f.idp.addr.port()),
        "http://169.254.169.254".into(),
        "http://10.0.0.1".into(),
        "https://localhost".into(),
        "http://[::1]:8080".into(),
    ] {
        let (_, csrf, _) = csrf_at(&b, &hub.url("/orgs/acme/sso")).await;
        let res = post_form(
            &b,
            &hub.url("/orgs/acme/sso"),
            &[("csrf_token", &csrf), ("name", "x"), ("issuer", &issuer), ("client_id", "c"), ("client_secret", "s")],
        )
        .await;
        assert_eq!(res.status(), 400, "{issuer}");
        assert!(res.text().await.unwrap().contains("Check the issuer URL"), "{issuer}: the same message");
    }
    assert_eq!(hub.state.federation.connections().await.unwrap().len(), before);
}

/// Groups the IdP sends map to roles: the role follows the group at each sign-in. The company
/// IdP here is Guichet too, sending its own `roles` claim (scope `roles`) as the groups.
#[tokio::test]
async fn idp_groups_map_to_roles_at_each_sign_in() {
    let f = fed().await;
    let (idp, hub) = (&f.idp, &f.hub);
    // At the IdP: ann holds "sales" for the hub's client.
    let hub_client =
        idp.state.stores.clients.list_clients().await.unwrap().into_iter().find(|c| c.name == "Hub").unwrap();
    let hc = hub_client.client_id.to_string();
    idp.state.orgs.create(P, "Acme (IdP side)", Some("acme-idp"), None).await.unwrap();
    idp.state.orgs.set_member(P, "acme-idp", "ann@acme.test", OrgRole::Member).await.unwrap();
    idp.state.orgs.add_permissions(P, &hc, &["app:use".into()]).await.unwrap();
    idp.state.orgs.create_role(P, &hc, "sales", &["app:use".into()], None).await.unwrap();
    idp.state.orgs.grant_role(P, "acme-idp", "ann@acme.test", "sales", None).await.unwrap();
    // At Guichet: ask for roles, read them as groups, map "sales" to the portal's "buyer".
    let fedr = &hub.state.federation;
    fedr.set_claims(P, &f.connection, Some(vec!["email".into(), "roles".into()]), Some("roles".into())).await.unwrap();
    let c = fedr.map_group(P, &f.connection, "sales", Some(("buyer", None))).await.unwrap();
    let guichet::domain::federation::ConnectionConfig::Oidc(cfg) = &c.config else { unreachable!() };
    assert_eq!(cfg.group_roles.len(), 1);
    let sign_in = || async {
        let b = hub.browser();
        let (url, verifier) = auth_url(hub, &f.portal, &[("scope", "openid org roles"), ("organization", "acme")]);
        let res = chain(&f, &b, &url, "ann@acme.test").await;
        let t = exchange(hub, &f.portal, &code_of(&res), &verifier).await;
        claims(t["id_token"].as_str().unwrap())
    };
    assert_eq!(sign_in().await["roles"], serde_json::json!(["buyer"]), "granted from the group");
    // The IdP takes the group away: the next sign-in takes the role away.
    idp.state.orgs.revoke_role(P, "acme-idp", "ann@acme.test", "sales", None).await.unwrap();
    assert_eq!(sign_in().await["roles"], serde_json::json!([]), "taken away with the group");
    // A role granted in Guichet by hand, not mapped, is left alone.
    let pid = f.portal.client.client_id.to_string();
    hub.state.orgs.create_role(P, &pid, "viewer", &["orders:read".into()], Some("acme")).await.unwrap();
    hub.state.orgs.grant_role(P, "acme", "ann@acme.test", "viewer", None).await.unwrap();
    assert_eq!(sign_in().await["roles"], serde_json::json!(["viewer"]));
}

/// The provider's metadata and keys are cached; an ID token signed by a key the provider rotated
/// in since then makes Guichet fetch them again (the sign-in still works).
#[tokio::test]
async fn a_key_rotation_at_the_provider_is_followed() {
    let f = fed().await;
    let sign_in = || async {
        let b = f.hub.browser();
        let (url, verifier) = auth_url(&f.hub, &f.portal, &[("scope", "openid org"), ("organization", "acme")]);
        let res = chain(&f, &b, &url, "ann@acme.test").await;
        exchange(&f.hub, &f.portal, &code_of(&res), &verifier).await
    };
    sign_in().await;
    let old = f.idp.state.oidc.keys.signing_key(guichet::domain::SigningAlg::RS256).unwrap().kid().to_owned();
    f.idp.state.oidc.keys.rotate(guichet::domain::SigningAlg::RS256, 0).unwrap();
    let new = f.idp.state.oidc.keys.signing_key(guichet::domain::SigningAlg::RS256).unwrap().kid().to_owned();
    assert_ne!(old, new);
    let t = sign_in().await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["idp"], f.connection);
}

/// A portal asking for a fresh sign-in (`prompt=login`) gets one at the organization's IdP too:
/// the IdP's own session is not enough.
#[tokio::test]
async fn prompt_login_reaches_the_company_idp() {
    let f = fed().await;
    let b = f.hub.browser();
    let (url, _) = auth_url(&f.hub, &f.portal, &[("scope", "openid org"), ("organization", "acme")]);
    let (res, logins) = chain_counting(&f, &b, &url, "ann@acme.test").await;
    code_of(&res);
    assert_eq!(logins, 1);
    f.hub.clock.advance(5);
    f.idp.clock.advance(5);
    let (url, verifier) =
        auth_url(&f.hub, &f.portal, &[("scope", "openid org"), ("organization", "acme"), ("prompt", "login")]);
    let (res, logins) = chain_counting(&f, &b, &url, "ann@acme.test").await;
    assert_eq!(logins, 1, "the IdP asked again");
    let t = exchange(&f.hub, &f.portal, &code_of(&res), &verifier).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["amr"], serde_json::json!(["fed"]));
}
