//! Organizations and RBAC as relying parties see them: `org`, `roles` and `permissions` claims
//! (ID token, access token, userinfo) through the `openidconnect` crate, the organization chooser
//! and `organization=`, role changes reaching the next token, removed members losing access,
//! clients bound to one organization; verified domains against a DNS server on loopback; home-realm
//! discovery on the login page.

use guichet::domain::org::OrgRole;
use guichet::orgs::{Actor, OrgError, OrgSettingsUpdate};

use crate::dns_server::TestDns;
use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{auth_url, claims, exchange, redirect_params, registration, Rp, PW, REDIRECT};

const P: Actor = Actor::Platform;

/// Claims of organizations and roles, for the `openidconnect` crate.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct OrgClaims {
    org: Option<OrgClaim>,
    roles: Option<Vec<String>>,
    permissions: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
struct OrgClaim {
    id: String,
    slug: String,
    name: String,
}

impl openidconnect::AdditionalClaims for OrgClaims {}

struct World {
    app: TestApp,
    orders: Rp,
    gallery: Rp,
    acme: guichet::domain::org::Org,
}

/// A portal "Orders" with permissions, a gallery app with its own, an organization Acme with
/// a member (`ann@acme.example`) holding the role "buyer" of Orders and "viewer" of the gallery.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let orders = app.register(registration("Orders")).await;
    let gallery = app.register(registration("Gallery")).await;
    let orgs = &app.state.orgs;
    let oid = orders.client.client_id.to_string();
    let gid = gallery.client.client_id.to_string();
    orgs.add_permissions(P, &oid, &["orders:read".into(), "orders:write".into(), "billing:manage".into()])
        .await
        .unwrap();
    orgs.add_permissions(P, &gid, &["galleries:view".into()]).await.unwrap();
    let acme = orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    app.create_user("ann@acme.example", PW).await;
    orgs.set_member(P, "acme", "ann@acme.example", OrgRole::Member).await.unwrap();
    orgs.create_role(P, &oid, "buyer", &["orders:read".into(), "billing:manage".into()], None).await.unwrap();
    orgs.create_role(P, &gid, "viewer", &["galleries:view".into()], None).await.unwrap();
    orgs.grant_role(P, "acme", "ann@acme.example", "buyer", Some(&oid)).await.unwrap();
    orgs.grant_role(P, "acme", "ann@acme.example", "viewer", None).await.unwrap();
    World { app, orders, gallery, acme }
}

fn scope(extra: &str) -> Vec<(&'static str, String)> {
    vec![("scope", format!("openid email {extra}"))]
}

/// Signs in through the code flow (choosing `pick` on the chooser if it shows) and returns the
/// token response.
async fn sign_in(
    app: &TestApp,
    b: &reqwest::Client,
    rp: &Rp,
    email: &str,
    extra: &[(&str, &str)],
    pick: Option<&str>,
) -> serde_json::Value {
    let (url, verifier) = auth_url(app, rp, extra);
    let res = signed_in_redirect(app, b, &url, email, pick).await;
    let p = redirect_params(&res);
    let code = p.get("code").unwrap_or_else(|| panic!("no code: {p:?}"));
    exchange(app, rp, code, &verifier).await
}

/// Follows the authorization through sign-in, the chooser (`pick`: a slug) and consent.
async fn signed_in_redirect(
    app: &TestApp,
    b: &reqwest::Client,
    url: &str,
    email: &str,
    pick: Option<&str>,
) -> reqwest::Response {
    let res = b.get(url).send().await.unwrap();
    let mut res = app.follow(b, res).await;
    for _ in 0..5 {
        if res.status() != 200 {
            return res;
        }
        let html = res.text().await.unwrap();
        if html.contains(r#"action="/login""#) {
            let csrf = form_value(&html, "csrf_token").unwrap();
            let rt = form_value(&html, "return_to").unwrap();
            let r = b
                .post(app.url("/login"))
                .form(&[("email", email), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            res = app.follow(b, r).await;
        } else if html.contains(r#"action="/authorize/org""#) {
            let slug = pick.unwrap_or_else(|| panic!("unexpected organization chooser: {html}"));
            let marker = format!("id=\"org-{slug}\"");
            let at = html.find(&marker).unwrap_or_else(|| panic!("no {marker} in {html}"));
            let button = &html[html[..at].rfind("<button").unwrap()..];
            let value = button.split("value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            let csrf = form_value(&html, "csrf_token").unwrap();
            let ia = form_value(&html, "interaction").unwrap();
            let r = b
                .post(app.url("/authorize/org"))
                .form(&[("csrf_token", csrf.as_str()), ("interaction", ia.as_str()), ("org", value.as_str())])
                .send()
                .await
                .unwrap();
            res = app.follow(b, r).await;
        } else if html.contains(r#"action="/authorize/consent""#) {
            res = app.decide(b, &html, "/authorize/consent", "allow").await;
        } else {
            panic!("unexpected page: {html}");
        }
    }
    res
}

fn refresh_form(rt: &str) -> [(&'static str, String); 2] {
    [("grant_type", "refresh_token".into()), ("refresh_token", rt.to_owned())]
}

async fn refresh(app: &TestApp, rp: &Rp, rt: &str) -> reqwest::Response {
    let f = refresh_form(rt);
    app.token_request(rp, &[(f[0].0, f[0].1.as_str()), (f[1].0, f[1].1.as_str())]).await
}

/// The `openidconnect` crate as the relying party: `org`, `roles`, `permissions` in the
/// verified ID token and at userinfo, and in the (RFC 9068) access token — only the requesting
/// client's roles.
#[tokio::test]
async fn org_roles_and_permissions_reach_an_openidconnect_rp() {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm, CoreProviderMetadata,
    };
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl, Nonce, OAuth2TokenResponse,
        PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
    };
    let w = world().await;
    let app = &w.app;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let supported: Vec<String> = metadata.scopes_supported().unwrap().iter().map(|s| s.as_str().to_owned()).collect();
    assert!(supported.contains(&"org".to_owned()) && supported.contains(&"roles".to_owned()));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(w.orders.client.client_id.to_string()),
        w.orders.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("org".into()))
        .add_scope(Scope::new("roles".into()))
        .set_pkce_challenge(challenge)
        .url();
    let b = app.browser();
    let res = signed_in_redirect(app, &b, url.as_str(), "ann@acme.example", None).await;
    let code = redirect_params(&res)["code"].clone();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    // The ID token, verified, with our additional claims.
    let raw = tokens.id_token().unwrap().to_string();
    let id: IdToken<OrgClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm> =
        raw.parse().unwrap();
    let c = id.claims(&client.id_token_verifier(), &nonce).unwrap();
    let want_org = OrgClaim { id: w.acme.id.to_string(), slug: "acme".into(), name: "Acme Corp".into() };
    assert_eq!(c.additional_claims().org.as_ref(), Some(&want_org));
    assert_eq!(c.additional_claims().roles.as_deref(), Some(&["buyer".to_owned()][..]));
    assert_eq!(
        c.additional_claims().permissions.as_deref(),
        Some(&["billing:manage".to_owned(), "orders:read".to_owned()][..]),
        "only the requesting client's permissions"
    );
    // Userinfo, through the crate.
    let info: UserInfoClaims<OrgClaims, CoreGenderClaim> =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.additional_claims().org.as_ref(), Some(&want_org));
    assert_eq!(info.additional_claims().permissions.as_ref().unwrap().len(), 2);
    // The access token (a JWT for the resource server).
    let at = claims(tokens.access_token().secret());
    assert_eq!(at["org"]["slug"], "acme");
    assert_eq!(at["roles"], serde_json::json!(["buyer"]));
    assert_eq!(at["permissions"], serde_json::json!(["billing:manage", "orders:read"]));
    // Introspection (RFC 7662) says the same to a resource server.
    let res = reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth(w.orders.client.client_id.as_str(), w.orders.secret.as_deref())
        .form(&[("token", tokens.access_token().secret().as_str())])
        .send()
        .await
        .unwrap();
    let intro: serde_json::Value = res.json().await.unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["org"]["slug"], "acme");
    assert_eq!(intro["permissions"], serde_json::json!(["billing:manage", "orders:read"]));

    // The person's data export lists the membership and its roles.
    let ann = app.state.accounts.user_by_email("ann@acme.example").await.unwrap().unwrap();
    let export = app.state.accounts.export(ann.id).await.unwrap();
    assert_eq!(export["memberships"][0]["org"]["slug"], "acme");
    assert_eq!(export["memberships"][0]["role"], "member");
    assert_eq!(export["memberships"][0]["roles"].as_array().unwrap().len(), 2);

    // The gallery sees its own role only; without the `roles` scope no roles at all.
    let t = sign_in(app, &b, &w.gallery, "ann@acme.example", &[("scope", "openid org roles")], None).await;
    let idc = claims(t["id_token"].as_str().unwrap());
    assert_eq!(idc["roles"], serde_json::json!(["viewer"]));
    assert_eq!(idc["permissions"], serde_json::json!(["galleries:view"]));
    let t = sign_in(app, &b, &w.gallery, "ann@acme.example", &[("scope", "openid org")], None).await;
    let idc = claims(t["id_token"].as_str().unwrap());
    assert_eq!(idc["org"]["slug"], "acme");
    assert!(idc.get("roles").is_none() && idc.get("permissions").is_none());
}

/// A change of roles shows in the next token; a removed member's refresh token stops working
/// and their access token is refused.
#[tokio::test]
async fn role_changes_reach_the_next_token_and_removed_members_lose_access() {
    let w = world().await;
    let app = &w.app;
    let orgs = &app.state.orgs;
    let b = app.browser();
    let t =
        sign_in(app, &b, &w.orders, "ann@acme.example", &[("scope", "openid org roles offline_access")], None).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(t["access_token"].as_str().unwrap())["permissions"],
        serde_json::json!(["billing:manage", "orders:read"])
    );

    // An org-own role with orders:write, granted: the next token carries it.
    let oid = w.orders.client.client_id.to_string();
    orgs.create_role(P, &oid, "writer", &["orders:write".into()], Some("acme")).await.unwrap();
    orgs.grant_role(P, "acme", "ann@acme.example", "writer", None).await.unwrap();
    let res = refresh(app, &w.orders, &rt).await;
    assert_eq!(res.status(), 200);
    let t: serde_json::Value = res.json().await.unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let at = claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["roles"], serde_json::json!(["buyer", "writer"]));
    assert_eq!(at["permissions"], serde_json::json!(["billing:manage", "orders:read", "orders:write"]));
    assert_eq!(claims(t["id_token"].as_str().unwrap())["roles"], serde_json::json!(["buyer", "writer"]));

    // Revoked: gone from the next token.
    assert!(orgs.revoke_role(P, "acme", "ann@acme.example", "buyer", None).await.unwrap());
    let res = refresh(app, &w.orders, &rt).await;
    let t: serde_json::Value = res.json().await.unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let at_raw = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&at_raw)["permissions"], serde_json::json!(["orders:write"]));
    assert_eq!(crate::oidc_helpers::userinfo_status(app, &at_raw).await, 200);

    // Removed from the organization: refresh refused, access token refused at userinfo.
    orgs.remove_member(P, "acme", "ann@acme.example").await.unwrap();
    let res = refresh(app, &w.orders, &rt).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(crate::oidc_helpers::userinfo_status(app, &at_raw).await, 401);
    // The account remains and signs in; it acts for no organization any more.
    let t = sign_in(app, &app.browser(), &w.orders, "ann@acme.example", &[("scope", "openid org roles")], None).await;
    let idc = claims(t["id_token"].as_str().unwrap());
    assert!(idc.get("org").is_none() && idc.get("roles").is_none());
}

/// A member of several organizations picks one (a page listing them), unless the request names
/// one (`organization=` by slug or id, or `org_hint`); the choice is part of the grant.
#[tokio::test]
async fn members_of_several_organizations_choose_or_name_one() {
    let w = world().await;
    let app = &w.app;
    let orgs = &app.state.orgs;
    let globex = orgs.create(P, "Globex", Some("globex"), None).await.unwrap();
    orgs.set_member(P, "globex", "ann@acme.example", OrgRole::Admin).await.unwrap();
    let b = app.browser();
    let t = sign_in(app, &b, &w.orders, "ann@acme.example", &[("scope", "openid org roles")], Some("globex")).await;
    let idc = claims(t["id_token"].as_str().unwrap());
    assert_eq!(idc["org"]["id"], globex.id.to_string());
    assert_eq!(idc["roles"], serde_json::json!([]), "no role in Globex");
    // Named: no chooser (the helper panics on an unexpected chooser).
    for (param, value, slug) in [
        ("organization", "acme".to_owned(), "acme"),
        ("organization", globex.id.to_string(), "globex"),
        ("org_hint", "acme".to_owned(), "acme"),
    ] {
        let mut extra = scope("org");
        extra.push((param, value.clone()));
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = sign_in(app, &b, &w.orders, "ann@acme.example", &extra, None).await;
        assert_eq!(claims(t["id_token"].as_str().unwrap())["org"]["slug"], slug, "{param}={value}");
    }
    // Not a member of it (or no such organization): access_denied, the same answer.
    for other in ["initech", "6f1c1b2e-8a7d-4c55-9a52-0d2a6c3c2b11"] {
        orgs.create(P, "Initech", Some("initech"), None).await.ok();
        let (url, _) = auth_url(app, &w.orders, &[("scope", "openid org"), ("organization", other)]);
        let res = signed_in_redirect(app, &b, &url, "ann@acme.example", None).await;
        assert!(res.status().is_redirection(), "{other}: {}", res.text().await.unwrap());
        let p = redirect_params(&res);
        assert_eq!(p["error"], "access_denied", "{other}");
        assert_eq!(p["state"], "st4te");
    }
    // prompt=none cannot show the chooser.
    let (url, _) = auth_url(app, &w.orders, &[("scope", "openid org"), ("prompt", "none")]);
    let res = b.get(&url).send().await.unwrap();
    assert_eq!(redirect_params(&res)["error"], "interaction_required");
    // Without org/roles in the scope nobody is asked.
    let t = sign_in(app, &b, &w.orders, "ann@acme.example", &[("scope", "openid email")], None).await;
    assert!(claims(t["id_token"].as_str().unwrap()).get("org").is_none());
    // The chooser is bound to the browser and checks membership: a forged org id is not taken.
    let (url, _) = auth_url(app, &w.orders, &[("scope", "openid org")]);
    let res = app.follow(&b, b.get(&url).send().await.unwrap()).await;
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"org-acme\"") && html.contains("id=\"org-globex\""));
    let csrf = form_value(&html, "csrf_token").unwrap();
    let ia = form_value(&html, "interaction").unwrap();
    let initech = orgs.find("initech").await.unwrap().unwrap();
    let r = b
        .post(app.url("/authorize/org"))
        .form(&[("csrf_token", csrf.as_str()), ("interaction", ia.as_str()), ("org", &initech.id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "shown the chooser again");
    assert!(r.text().await.unwrap().contains("id=\"org-acme\""));
    // Another browser cannot use this interaction.
    let other = app.browser();
    let r = other
        .post(app.url("/authorize/org"))
        .form(&[("csrf_token", csrf.as_str()), ("interaction", ia.as_str()), ("org", &globex.id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A client bound to an organization admits its members only, and acts for it.
#[tokio::test]
async fn a_client_bound_to_an_organization_admits_its_members_only() {
    let w = world().await;
    let app = &w.app;
    let mut reg = registration("Acme payslips");
    reg.org_id = Some(w.acme.id);
    let payslips = app.register(reg).await;
    let t = sign_in(app, &app.browser(), &payslips, "ann@acme.example", &[("scope", "openid org")], None).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["org"]["slug"], "acme");
    app.create_user("bob@else.example", PW).await;
    let (url, _) = auth_url(app, &payslips, &[]);
    let res = signed_in_redirect(app, &app.browser(), &url, "bob@else.example", None).await;
    assert_eq!(redirect_params(&res)["error"], "access_denied");
    // An organization with bound clients cannot be deleted.
    let e = app.state.orgs.delete(P, "acme", "acme").await.unwrap_err();
    assert!(matches!(e, OrgError::HasClients), "{e:?}");
}

async fn app_with_dns() -> (TestApp, TestDns) {
    let dns = TestDns::start().await;
    let addr = dns.addr.to_string();
    let app = TestApp::spawn_with(move |s| {
        s.dns.resolver = Some(addr);
        s.dns.timeout_ms = 1000;
    })
    .await;
    (app, dns)
}

/// Domains are proven by the TXT record alone: correct, missing, wrong value, already owned.
#[tokio::test]
async fn domains_are_verified_by_a_txt_record_on_a_loopback_dns_server() {
    let (app, dns) = app_with_dns().await;
    let orgs = &app.state.orgs;
    orgs.create(P, "Org one", Some("o1"), None).await.unwrap();
    orgs.create(P, "Org two", Some("o2"), None).await.unwrap();
    let (_, d) = orgs.add_domain(P, "o1", "O1.Test.").await.unwrap();
    assert_eq!(d.domain, "o1.test");
    assert_eq!(d.record_name(), "_guichet-challenge.o1.test");
    assert!(!d.verified());
    // Missing record.
    let d1 = orgs.verify_domain(P, "o1", "o1.test").await.unwrap();
    assert!(!d1.verified());
    assert!(d1.last_error.as_deref().unwrap().contains("no TXT record"), "{:?}", d1.last_error);
    assert!(dns.queries_for("_guichet-challenge.o1.test") >= 1);
    // Wrong value.
    dns.set_txt("_guichet-challenge.o1.test", &["guichet-verification=wrong", "v=spf1 -all"]);
    let d1 = orgs.verify_domain(P, "o1", "o1.test").await.unwrap();
    assert!(!d1.verified());
    assert!(d1.last_error.as_deref().unwrap().contains("expected value"));
    // DNS failure: not verified, and said so.
    dns.fail("_guichet-challenge.o1.test");
    assert!(!orgs.verify_domain(P, "o1", "o1.test").await.unwrap().verified());
    // Correct (among other TXT values).
    dns.clear("_guichet-challenge.o1.test");
    dns.set_txt("_guichet-challenge.o1.test", &["v=spf1 -all", &d.challenge]);
    let d1 = orgs.verify_domain(P, "o1", "o1.test").await.unwrap();
    assert!(d1.verified(), "{:?}", d1.last_error);
    // Routes users now.
    assert_eq!(
        orgs.realm_of("someone@o1.test").await.unwrap(),
        guichet::orgs::Realm::Org { org: orgs.find("o1").await.unwrap().unwrap() }
    );
    // Already owned: another organization can neither claim nor verify it.
    let e = orgs.add_domain(P, "o2", "o1.test").await.unwrap_err();
    assert!(matches!(e, OrgError::DomainTaken(_)), "{e:?}");
    // A claim made before the first verification cannot be verified afterwards, even with the record.
    orgs.create(P, "Org three", Some("o3"), None).await.unwrap();
    let (_, a) = orgs.add_domain(P, "o2", "shared.test").await.unwrap();
    let (_, b) = orgs.add_domain(P, "o3", "shared.test").await.unwrap();
    dns.set_txt("_guichet-challenge.shared.test", &[&a.challenge, &b.challenge]);
    assert!(orgs.verify_domain(P, "o2", "shared.test").await.unwrap().verified());
    let e = orgs.verify_domain(P, "o3", "shared.test").await.unwrap_err();
    assert!(matches!(e, OrgError::DomainTaken(_)), "{e:?}");
    assert_eq!(
        orgs.realm_of("x@shared.test").await.unwrap(),
        guichet::orgs::Realm::Org { org: orgs.find("o2").await.unwrap().unwrap() }
    );
    // Claiming the same domain twice, or a name that is not a domain.
    assert!(matches!(orgs.add_domain(P, "o1", "o1.test").await.unwrap_err(), OrgError::DomainClaimed(_)));
    for bad in ["localhost", "-x.test", "a..b", "1.2.3.4", "exa mple.com"] {
        assert!(matches!(orgs.add_domain(P, "o1", bad).await.unwrap_err(), OrgError::DomainInvalid(_)), "{bad}");
    }
    // A claim whose record appears later is verified by its job: see
    // a_claimed_domain_is_verified_by_its_job_when_the_record_appears.
}

async fn login_post(
    app: &TestApp,
    b: &reqwest::Client,
    email: &str,
    password: &str,
    return_to: Option<&str>,
) -> reqwest::Response {
    let csrf = app.open_login(b).await;
    let mut form = vec![("csrf_token", csrf.as_str()), ("email", email), ("password", password)];
    if let Some(r) = return_to {
        form.push(("return_to", r));
    }
    b.post(app.url("/login")).form(&form).send().await.unwrap()
}

/// The login page works identifier-first; an organization requiring SSO refuses password
/// sign-in for its verified domains and says where to sign in; unknown addresses get the same
/// answer as known ones.
#[tokio::test]
async fn home_realm_discovery_on_the_login_page() {
    let (app, dns) = app_with_dns().await;
    let orgs = &app.state.orgs;
    orgs.create(P, "Umbrella", Some("umbrella"), None).await.unwrap();
    let (_, d) = orgs.add_domain(P, "umbrella", "umbrella.test").await.unwrap();
    app.create_user("alice@umbrella.test", PW).await;
    app.create_user("known@example.com", PW).await;
    let b = app.browser();
    // Identifier first: the email alone → the password step, same status and form for a known
    // and an unknown address.
    let mut pages = Vec::new();
    for email in ["known@example.com", "nobody@example.com"] {
        let res = login_post(&app, &b, email, "", None).await;
        assert_eq!(res.status(), 200, "{email}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("value=\"{email}\"")));
        assert!(html.contains("name=\"password\"") && html.contains("autocomplete=\"current-password\" autofocus"));
        pages.push(html.replace(email, "EMAIL"));
    }
    let strip = |h: &str| h.lines().filter(|l| !l.contains("csrf_token")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&pages[0]), strip(&pages[1]), "no difference between known and unknown addresses");
    // Password sign-in still works in one step.
    assert_eq!(login_post(&app, &app.browser(), "alice@umbrella.test", PW, None).await.status(), 303);
    // Require SSO: only for verified domains.
    orgs.update_settings(P, "umbrella", OrgSettingsUpdate { require_sso: Some(true), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        login_post(&app, &app.browser(), "alice@umbrella.test", PW, None).await.status(),
        303,
        "domain not verified yet"
    );
    dns.set_txt(&d.record_name(), &[&d.challenge]);
    assert!(orgs.verify_domain(P, "umbrella", "umbrella.test").await.unwrap().verified());
    for (email, password) in [
        ("alice@umbrella.test", PW),
        ("ALICE@umbrella.test", "wrong"),
        ("nobody@umbrella.test", ""),
        ("alice@umbrella.test", ""),
    ] {
        let res = login_post(&app, &app.browser(), email, password, None).await;
        assert_eq!(res.status(), 403, "{email}");
        let html = res.text().await.unwrap();
        assert!(html.contains("Umbrella requires its members to sign in with the organization"), "{html}");
        assert!(html.contains("id=\"org-brand\""), "branded");
    }
    // Nor by an emailed sign-in link: the organization's identity provider decides.
    let b = app.browser();
    let csrf = app.open_login(&b).await;
    let res = b
        .post(app.url("/login/link"))
        .form(&[("csrf_token", csrf.as_str()), ("email", "alice@umbrella.test")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link = crate::helpers::link_in(&app.mails(1).await[0], &app.url("/login/link?token=")).unwrap();
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("requires its members to sign in"));
    assert_eq!(b.get(app.url("/account")).send().await.unwrap().status(), 303, "not signed in");
    // login_hint does the same on GET /login.
    let res = app.browser().get(app.url("/login?login_hint=alice%40umbrella.test")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("requires its members to sign in"));
    // Other addresses are untouched.
    assert_eq!(login_post(&app, &app.browser(), "known@example.com", PW, None).await.status(), 303);
    let res = app.browser().get(app.url("/login?login_hint=known%40example.com")).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(!html.contains("requires its members") && html.contains("value=\"known@example.com\""));
}

/// Branding: the accent colour and logo are served by Guichet and worn by the pages of the
/// organization's clients; a colour too light for white text is refused.
#[tokio::test]
async fn branding_is_served_by_guichet_and_checked() {
    let w = world().await;
    let app = &w.app;
    let orgs = &app.state.orgs;
    let e = orgs
        .update_settings(P, "acme", OrgSettingsUpdate { accent_color: Some("#ffee00".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(e, OrgError::Invalid(guichet::domain::org::OrgRuleError::Contrast)));
    let o = orgs
        .update_settings(P, "acme", OrgSettingsUpdate { accent_color: Some("#7A1F5C".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(o.accent_color.as_deref(), Some("#7a1f5c"));
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
    assert!(orgs
        .set_logo(P, "acme", Some(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"))
        .await
        .is_err());
    assert!(orgs.set_logo(P, "acme", Some(&vec![0x89; 200 * 1024])).await.is_err());
    let o = orgs.set_logo(P, "acme", Some(png)).await.unwrap();
    let http = reqwest::Client::new();
    let res = http.get(app.url(&format!("/orgs/acme/logo?v={}", o.logo_digest.clone().unwrap()))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(&res.bytes().await.unwrap()[..], &png[..]);
    let css = http.get(app.url("/orgs/acme/brand.css")).send().await.unwrap();
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert_eq!(css.text().await.unwrap().trim(), ":root { --accent: #7a1f5c; }");
    assert_eq!(http.get(app.url("/orgs/nope/logo")).send().await.unwrap().status(), 404);
    // A client bound to Acme: its sign-in page wears Acme's branding.
    let mut reg = registration("Acme portal");
    reg.org_id = Some(w.acme.id);
    let portal = app.register(reg).await;
    let (url, _) = auth_url(app, &portal, &[]);
    let b = app.browser();
    let res = app.follow(&b, b.get(&url).send().await.unwrap()).await;
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"org-brand\"") && html.contains("Acme Corp"), "{html}");
    assert!(html.contains("/orgs/acme/brand.css?v=") && html.contains("/orgs/acme/logo?v="), "{html}");
    // The account page of Acme's people wears it too.
    let b = app.browser();
    app.login(&b, "ann@acme.example", PW, None).await;
    let html = b.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"org-brand\"") && html.contains("/orgs/acme/brand.css?v="), "{html}");
}

/// An organization's MFA policy: its members need a second factor to sign in to applications
/// (enrolment first when they have none).
#[tokio::test]
async fn an_organization_can_require_a_second_factor() {
    let w = world().await;
    let app = &w.app;
    app.state
        .orgs
        .update_settings(P, "acme", OrgSettingsUpdate { mfa_required: Some(true), ..Default::default() })
        .await
        .unwrap();
    let b = app.browser();
    let (url, _) = auth_url(app, &w.orders, &[("scope", "openid org")]);
    let res = b.get(&url).send().await.unwrap();
    let res = app.follow(&b, res).await;
    let html = res.text().await.unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let rt = form_value(&html, "return_to").unwrap();
    let r = b
        .post(app.url("/login"))
        .form(&[("email", "ann@acme.example"), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = b.get(app.url(r.headers()["location"].to_str().unwrap())).send().await.unwrap();
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/account/security/totp?"), "enrol first: {to}");
    // Silent requests cannot enrol.
    let (url, _) = auth_url(app, &w.orders, &[("scope", "openid org"), ("prompt", "none")]);
    let res = b.get(&url).send().await.unwrap();
    assert_eq!(redirect_params(&res)["error"], "login_required");
    // A person outside the organization is not concerned.
    app.create_user("bob@else.example", PW).await;
    let t = sign_in(app, &app.browser(), &w.orders, "bob@else.example", &[], None).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["acr"], "urn:guichet:acr:pwd");
}

/// A claim is checked again by its outbox job until its record appears: nobody has to press
/// "Verify", and the audit log says the platform verified it.
#[tokio::test]
async fn a_claimed_domain_is_verified_by_its_job_when_the_record_appears() {
    let dns = TestDns::start().await;
    let addr = dns.addr.to_string();
    let app = TestApp::spawn_with(move |s| {
        s.dns.resolver = Some(addr);
        s.dns.timeout_ms = 1000;
        s.dns.recheck_interval_secs = 1;
    })
    .await;
    let orgs = &app.state.orgs;
    orgs.create(P, "Patient Corp", Some("patient"), None).await.unwrap();
    let (_, d) = orgs.add_domain(P, "patient", "patient.test").await.unwrap();
    // Checked (and not found) a few times, then published.
    for _ in 0..50 {
        if dns.queries_for("_guichet-challenge.patient.test") >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(dns.queries_for("_guichet-challenge.patient.test") >= 2, "the job checks again");
    assert!(!orgs.domains(P, "patient").await.unwrap().1[0].verified());
    dns.set_txt("_guichet-challenge.patient.test", &[&d.challenge]);
    let mut verified = false;
    for _ in 0..50 {
        if orgs.domains(P, "patient").await.unwrap().1[0].verified() {
            verified = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(verified, "verified by the job");
    // Its audit entry follows the check's write.
    let mut audited = false;
    for _ in 0..50 {
        let audit = app.state.stores.journal.audit_events(50).await.unwrap();
        if audit.iter().any(|e| e.action == "org.domain_verified" && e.actor.as_deref() == Some("platform")) {
            audited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(audited, "the audit log says the platform verified it");
    // Done: the job is not run again.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let n = dns.queries_for("_guichet-challenge.patient.test");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(dns.queries_for("_guichet-challenge.patient.test"), n);
}
