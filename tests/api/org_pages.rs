//! The organization admin pages (`/orgs`, `/orgs/<slug>/...`) as a browser uses them: members
//! and invitations, roles and grants, domains, settings (branding, deletion); and isolation:
//! another organization's pages, forms and ids are 404 and change nothing, a plain member gets
//! 403, an anonymous browser is sent to sign in, a platform admin runs any organization.

use guichet::domain::org::{Org, OrgRole, Role};
use guichet::domain::{Email, NewUser, User, UserStatus};
use guichet::orgs::Actor;

use crate::helpers::{form_value, link_in, TestApp};
use crate::oidc_helpers::{registration, PW};

const P: Actor = Actor::Platform;

/// The fields of a form (besides its CSRF token).
type Fields<'a> = Vec<(&'a str, &'a str)>;

/// A 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Two organizations: Acme (`acme`: alice owner, adam admin, mia member) and Beta (`beta`:
/// bob owner, bea member holding Beta's own role `b-viewer`, domain `beta.test` claimed), one
/// application with permissions, one operator role. DNS points at a socket that never answers.
struct World {
    app: TestApp,
    _dns: std::net::UdpSocket,
    acme: Org,
    beta: Org,
    alice: User,
    adam: User,
    mia: User,
    bob: User,
    bea: User,
    client: String,
    b_role: Role,
    op_role: Role,
}

async fn world() -> World {
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_addr = dns.local_addr().unwrap().to_string();
    let app = TestApp::spawn_with(|s| {
        s.dns.resolver = Some(dns_addr);
        s.dns.timeout_ms = 300;
    })
    .await;
    let alice = app.create_user("alice@example.com", PW).await;
    let adam = app.create_user("adam@example.com", PW).await;
    let mia = app.create_user("mia@example.com", PW).await;
    let bob = app.create_user("bob@example.com", PW).await;
    let bea = app.create_user("bea@example.com", PW).await;
    let orgs = &app.state.orgs;
    let acme = orgs.create(P, "Acme", Some("acme"), Some(alice.id)).await.unwrap();
    let beta = orgs.create(P, "Beta", Some("beta"), Some(bob.id)).await.unwrap();
    orgs.set_member(P, "acme", "adam@example.com", OrgRole::Admin).await.unwrap();
    orgs.set_member(P, "acme", "mia@example.com", OrgRole::Member).await.unwrap();
    orgs.set_member(P, "beta", "bea@example.com", OrgRole::Member).await.unwrap();
    let client = app.register(registration("Orders")).await.client.client_id.to_string();
    orgs.add_permissions(P, &client, &["orders:read".into(), "orders:write".into()]).await.unwrap();
    let op_role = orgs.create_role(P, &client, "op-reader", &["orders:read".into()], None).await.unwrap();
    let b_role = orgs.create_role(P, &client, "b-viewer", &["orders:read".into()], Some("beta")).await.unwrap();
    orgs.grant_role_id(P, "beta", bea.id, b_role.id).await.unwrap();
    orgs.add_domain(P, "beta", "beta.test").await.unwrap();
    World { app, _dns: dns, acme, beta, alice, adam, mia, bob, bea, client, b_role, op_role }
}

async fn get(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Status, `Location` (if any), body.
async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let res = b.post(url).form(form).send().await.unwrap();
    let status = res.status().as_u16();
    let loc = res.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, loc, res.text().await.unwrap())
}

async fn signed_in(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let b = app.browser();
    assert_eq!(app.login(&b, email, PW, None).await.status(), 303);
    let csrf = form_value(&get(&b, &app.url("/account")).await.1, "csrf_token").unwrap();
    (b, csrf)
}

/// A multipart body with the CSRF token and one file `logo`: (content type, body).
fn multipart(csrf: &str, filename: &str, media: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "guichet-test-7d1f0c";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"{filename}\"\r\nContent-Type: {media}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    app: &TestApp,
    b: &reqwest::Client,
    slug: &str,
    csrf: &str,
    name: &str,
    media: &str,
    bytes: &[u8],
) -> (u16, String) {
    let (ct, body) = multipart(csrf, name, media, bytes);
    let res =
        b.post(app.url(&format!("/orgs/{slug}/logo"))).header("content-type", ct).body(body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn role_of(app: &TestApp, org: &Org, u: &User) -> Option<OrgRole> {
    app.state.orgs.role_of(Actor::User(u.id), org.id).await.unwrap()
}

/// The roles a member holds in an organization, by name.
async fn held(app: &TestApp, org: &str, u: &User) -> Vec<String> {
    let (_, members) = app.state.orgs.members(P, org).await.unwrap();
    let m = members.into_iter().find(|m| m.user_id == u.id).unwrap();
    let mut names: Vec<String> = m.roles.into_iter().map(|r| r.name).collect();
    names.sort();
    names
}

async fn own_role(app: &TestApp, org: &str, name: &str) -> Option<Role> {
    app.state.orgs.roles(P, Some(org)).await.unwrap().into_iter().find(|r| r.org.is_some() && r.name == name)
}

#[tokio::test]
async fn an_admin_invites_changes_roles_and_removes_members() {
    let w = world().await;
    let app = &w.app;
    let (b, csrf) = signed_in(app, "adam@example.com").await;
    let url = |p: &str| app.url(p);

    // The list, the overview (in the organization's colours) and the account page link here.
    let (status, html) = get(&b, &url("/orgs")).await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/orgs/acme\"") && !html.contains("/orgs/beta"), "{html}");
    let (status, html) = get(&b, &url("/orgs/acme")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"org-brand\"") && html.contains("href=\"/orgs/acme/members\""));
    let account = get(&b, &url("/account")).await.1;
    assert!(account.contains("id=\"orgs-link\"") && account.contains("href=\"/orgs/acme\""));

    let (status, html) = get(&b, &url("/orgs/acme/members")).await;
    assert_eq!(status, 200);
    for m in [&w.alice, &w.adam, &w.mia] {
        assert!(html.contains(&format!("id=\"member-role-{}\"", m.id)) && html.contains(m.email.as_str()));
    }
    assert!(html.contains("id=\"invite-form\""));

    // An invitation: a mail goes out; accepting it as a new person makes them a member.
    let invite = [("csrf_token", csrf.as_str()), ("email", "newbie@example.com"), ("role", "member")];
    let (status, loc, _) = post(&b, &url("/orgs/acme/members/invite"), &invite).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/members?notice=invited"));
    assert!(get(&b, &url(&loc)).await.1.contains("id=\"notice\""));
    let mails = app.mails(1).await;
    let mail = mails.iter().find(|m| m.contains("To: newbie@example.com")).unwrap();
    let link = link_in(mail, &url("/invite?token=")).unwrap();
    let nb = app.browser();
    let page = get(&nb, &link).await.1;
    let token = form_value(&page, "token").unwrap();
    let ncsrf = form_value(&page, "csrf_token").unwrap();
    let (status, _, _) = post(&nb, &url("/invite"), &[("csrf_token", &ncsrf), ("token", &token)]).await;
    assert_eq!(status, 303);
    let newbie = app.state.accounts.user_by_email("newbie@example.com").await.unwrap().unwrap();
    assert_eq!(role_of(app, &w.acme, &newbie).await, Some(OrgRole::Member));
    // An existing account gets the invitation too.
    let (status, _, _) = post(
        &b,
        &url("/orgs/acme/members/invite"),
        &[("csrf_token", &csrf), ("email", "bob@example.com"), ("role", "admin")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(app.mails(2).await.iter().any(|m| m.contains("To: bob@example.com")));
    // Refused: a bad address (400), ownership handed out by an admin (403), a forged form (403).
    let (status, _, html) =
        post(&b, &url("/orgs/acme/members/invite"), &[("csrf_token", &csrf), ("email", "nope"), ("role", "member")])
            .await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"error\""));
    let (status, _, html) = post(
        &b,
        &url("/orgs/acme/members/invite"),
        &[("csrf_token", &csrf), ("email", "o@example.com"), ("role", "owner")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(html.contains("Only an owner may grant or take away the owner role."), "{html}");
    let forged = [("csrf_token", "forged"), ("email", "x@example.com"), ("role", "member")];
    assert_eq!(post(&b, &url("/orgs/acme/members/invite"), &forged).await.0, 403);

    // The org role of a member; the owner cannot be demoted by an admin.
    let mia = w.mia.id.to_string();
    let (status, loc, _) =
        post(&b, &url("/orgs/acme/members/role"), &[("csrf_token", &csrf), ("user_id", &mia), ("role", "admin")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/members?notice=role_changed"));
    assert_eq!(role_of(app, &w.acme, &w.mia).await, Some(OrgRole::Admin));
    let alice = w.alice.id.to_string();
    let (status, _, _) =
        post(&b, &url("/orgs/acme/members/role"), &[("csrf_token", &csrf), ("user_id", &alice), ("role", "member")])
            .await;
    assert_eq!(status, 403);
    assert_eq!(role_of(app, &w.acme, &w.alice).await, Some(OrgRole::Owner));
    let (status, _, _) =
        post(&b, &url("/orgs/acme/members/role"), &[("csrf_token", &csrf), ("user_id", &mia), ("role", "king")]).await;
    assert_eq!(status, 400);

    // Removal: the membership ends, the account remains.
    let (status, loc, _) =
        post(&b, &url("/orgs/acme/members/remove"), &[("csrf_token", &csrf), ("user_id", &mia)]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/members?notice=removed"));
    assert_eq!(role_of(app, &w.acme, &w.mia).await, None);
    assert!(app.state.accounts.find(w.mia.id).await.unwrap().is_some());
    assert!(!get(&b, &url("/orgs/acme/members")).await.1.contains(&format!("member-role-{mia}")));
}

#[tokio::test]
async fn roles_are_made_edited_granted_revoked_and_deleted() {
    let w = world().await;
    let app = &w.app;
    let (b, csrf) = signed_in(app, "adam@example.com").await;
    let url = |p: &str| app.url(p);

    let (status, html) = get(&b, &url("/orgs/acme/roles")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"role-form\""));
    // The operator's role is listed, read-only; Beta's own role is not.
    assert!(html.contains(&format!("id=\"role-{}\"", w.op_role.id)));
    assert!(
        !html.contains(&format!("role-perms-{}", w.op_role.id))
            && !html.contains(&format!("role-delete-{}", w.op_role.id))
    );
    assert!(!html.contains(&w.b_role.id.to_string()) && !html.contains("b-viewer"));

    // A role with two permissions (the repeated field).
    let form = [
        ("csrf_token", csrf.as_str()),
        ("client_id", w.client.as_str()),
        ("name", "viewer"),
        ("permission", "orders:read"),
        ("permission", "orders:write"),
    ];
    let (status, loc, _) = post(&b, &url("/orgs/acme/roles"), &form).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/roles?notice=role_created"));
    let viewer = own_role(app, "acme", "viewer").await.unwrap();
    assert_eq!(viewer.permissions, ["orders:read", "orders:write"]);
    assert_eq!(viewer.org, Some(w.acme.id));
    // Refused: an undeclared permission, a name taken.
    let bad = [("csrf_token", csrf.as_str()), ("client_id", &w.client), ("name", "x"), ("permission", "orders:delete")];
    let (status, _, html) = post(&b, &url("/orgs/acme/roles"), &bad).await;
    assert_eq!(status, 400);
    assert!(html.contains("This application does not declare that permission."));
    assert!(own_role(app, "acme", "x").await.is_none());
    assert_eq!(post(&b, &url("/orgs/acme/roles"), &form).await.0, 409);

    // Its permissions edited.
    let html = get(&b, &url("/orgs/acme/roles")).await.1;
    assert!(html.contains(&format!("id=\"role-perms-{}\"", viewer.id)));
    let perms_url = url(&format!("/orgs/acme/roles/{}/permissions", viewer.id));
    let (status, _, _) = post(&b, &perms_url, &[("csrf_token", &csrf), ("permission", "orders:read")]).await;
    assert_eq!(status, 303);
    assert_eq!(own_role(app, "acme", "viewer").await.unwrap().permissions, ["orders:read"]);

    // Granted to a member (the own role and the operator's), shown, revoked.
    let (mia, vid, opid) = (w.mia.id.to_string(), viewer.id.to_string(), w.op_role.id.to_string());
    for rid in [&vid, &opid] {
        let (status, loc, _) =
            post(&b, &url("/orgs/acme/roles/grant"), &[("csrf_token", &csrf), ("user_id", &mia), ("role_id", rid)])
                .await;
        assert_eq!((status, loc.as_str()), (303, "/orgs/acme/members?notice=granted"));
    }
    assert_eq!(held(app, "acme", &w.mia).await, ["op-reader", "viewer"]);
    let html = get(&b, &url("/orgs/acme/members")).await.1;
    assert!(html.contains(&format!("id=\"revoke-{mia}-{vid}\"")));
    let revoke = [("csrf_token", csrf.as_str()), ("user_id", &mia), ("role_id", &vid)];
    let (status, loc, _) = post(&b, &url("/orgs/acme/roles/revoke"), &revoke).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/members?notice=revoked"));
    assert_eq!(held(app, "acme", &w.mia).await, ["op-reader"]);
    assert_eq!(post(&b, &url("/orgs/acme/roles/revoke"), &revoke).await.0, 404, "not held any more");

    // Deleted; the operator's role cannot be, from here.
    let (status, loc, _) = post(&b, &url(&format!("/orgs/acme/roles/{vid}/delete")), &[("csrf_token", &csrf)]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/roles?notice=role_deleted"));
    assert!(own_role(app, "acme", "viewer").await.is_none());
    assert_eq!(post(&b, &url(&format!("/orgs/acme/roles/{opid}/delete")), &[("csrf_token", &csrf)]).await.0, 404);
    assert!(app.state.orgs.roles(P, None).await.unwrap().iter().any(|r| r.id == w.op_role.id));
}

#[tokio::test]
async fn a_claimed_domain_shows_its_record_and_stays_pending_without_dns() {
    let w = world().await;
    let app = &w.app;
    let (b, csrf) = signed_in(app, "adam@example.com").await;
    let url = |p: &str| app.url(p);

    let (status, loc, _) =
        post(&b, &url("/orgs/acme/domains"), &[("csrf_token", &csrf), ("domain", "Acme.test")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/domains?notice=domain_added"));
    let (_, claims) = app.state.orgs.domains(P, "acme").await.unwrap();
    assert_eq!(claims.len(), 1);
    let claim = &claims[0];
    assert_eq!(claim.domain, "acme.test");
    let html = get(&b, &url(&loc)).await.1;
    assert!(html.contains("<code class=\"txt-name\">_guichet-challenge.acme.test</code>"), "{html}");
    assert!(html.contains(&format!("<code class=\"txt-value\">{}</code>", claim.challenge)));
    assert!(html.contains("id=\"verify-acme.test\"") && html.contains("id=\"remove-acme.test\""));

    // Checking now: nobody answers, so it stays pending with the reason shown.
    let (status, loc, _) =
        post(&b, &url("/orgs/acme/domains/verify"), &[("csrf_token", &csrf), ("domain", "acme.test")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/domains?notice=domain_pending"));
    let (_, claims) = app.state.orgs.domains(P, "acme").await.unwrap();
    assert!(!claims[0].verified() && claims[0].last_error.is_some());
    let html = get(&b, &url(&loc)).await.1;
    assert!(html.contains("class=\"error last-error\"") && html.contains("data-verified=\"false\""));

    // Refused: not a domain name (400), claimed twice (409), another organization's verified one
    // is covered by the service's tests.
    let (status, _, html) =
        post(&b, &url("/orgs/acme/domains"), &[("csrf_token", &csrf), ("domain", "not a domain")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("This is not a valid domain name."));
    assert_eq!(post(&b, &url("/orgs/acme/domains"), &[("csrf_token", &csrf), ("domain", "acme.test")]).await.0, 409);

    let (status, loc, _) =
        post(&b, &url("/orgs/acme/domains/remove"), &[("csrf_token", &csrf), ("domain", "acme.test")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/domains?notice=domain_removed"));
    assert!(app.state.orgs.domains(P, "acme").await.unwrap().1.is_empty());
    assert_eq!(
        post(&b, &url("/orgs/acme/domains/remove"), &[("csrf_token", &csrf), ("domain", "acme.test")]).await.0,
        404
    );
}

#[tokio::test]
async fn settings_branding_and_deletion() {
    let w = world().await;
    let app = &w.app;
    let (b, csrf) = signed_in(app, "alice@example.com").await;
    let url = |p: &str| app.url(p);
    let org = || async { app.state.orgs.find("acme").await.unwrap() };

    let html = get(&b, &url("/orgs/acme/settings")).await.1;
    assert!(
        html.contains("id=\"settings-form\"")
            && html.contains("id=\"logo-form\"")
            && html.contains("id=\"delete-form\"")
    );
    let form = [("csrf_token", csrf.as_str()), ("name", "Acme Corp"), ("mfa_required", "on"), ("accent_color", "")];
    let (status, loc, _) = post(&b, &url("/orgs/acme/settings"), &form).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/settings?notice=settings_saved"));
    let o = org().await.unwrap();
    assert_eq!((o.name.as_str(), o.mfa_required, o.require_sso), ("Acme Corp", true, false));
    assert!(get(&b, &url(&loc)).await.1.contains("Acme Corp"));

    // An accent colour too light for white text is refused, with the reason; a dark one is kept.
    let light = [("csrf_token", csrf.as_str()), ("name", "Acme Corp"), ("accent_color", "#ffff00")];
    let (status, _, html) = post(&b, &url("/orgs/acme/settings"), &light).await;
    assert_eq!(status, 400);
    assert!(html.contains("This accent colour is too light"), "{html}");
    let o = org().await.unwrap();
    assert_eq!((o.accent_color.as_deref(), o.mfa_required), (None, true), "nothing changed");
    let dark = [("csrf_token", csrf.as_str()), ("name", "Acme Corp"), ("accent_color", "#1A4D8F")];
    assert_eq!(post(&b, &url("/orgs/acme/settings"), &dark).await.0, 303);
    assert_eq!(org().await.unwrap().accent_color.as_deref(), Some("#1a4d8f"));
    assert!(get(&b, &url("/orgs/acme")).await.1.contains("/orgs/acme/brand.css"), "the pages wear the colour");
    // An empty name is refused.
    let (status, _, _) = post(&b, &url("/orgs/acme/settings"), &[("csrf_token", &csrf), ("name", " ")]).await;
    assert_eq!(status, 400);

    // The logo: a PNG is kept (and served), an SVG refused, then removed.
    let (status, _) = upload(app, &b, "acme", &csrf, "logo.png", "image/png", PNG).await;
    assert_eq!(status, 303);
    let digest = org().await.unwrap().logo_digest.unwrap();
    let html = get(&b, &url("/orgs/acme/settings")).await.1;
    assert!(html.contains("id=\"org-logo\"") && html.contains("id=\"logo-remove\""));
    let served = b.get(url(&format!("/orgs/acme/logo?v={digest}"))).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), PNG);
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let (status, html) = upload(app, &b, "acme", &csrf, "logo.svg", "image/png", svg).await;
    assert_eq!(status, 400);
    assert!(html.contains("The logo must be a PNG, JPEG, GIF or WebP image"));
    assert_eq!(org().await.unwrap().logo_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(upload(app, &b, "acme", "forged", "logo.png", "image/png", PNG).await.0, 403);
    let (status, loc, _) = post(&b, &url("/orgs/acme/logo/remove"), &[("csrf_token", &csrf)]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs/acme/settings?notice=logo_removed"));
    assert_eq!(org().await.unwrap().logo_digest, None);

    // Deletion: owners only, the slug typed again.
    let (ab, acsrf) = signed_in(app, "adam@example.com").await;
    assert!(!get(&ab, &url("/orgs/acme/settings")).await.1.contains("id=\"delete-form\""));
    assert_eq!(post(&ab, &url("/orgs/acme/delete"), &[("csrf_token", &acsrf), ("confirm", "acme")]).await.0, 403);
    let (status, _, html) =
        post(&b, &url("/orgs/acme/delete"), &[("csrf_token", &csrf), ("confirm", "acme-corp")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("slug exactly to confirm."));
    assert!(org().await.is_some());
    let (status, loc, _) = post(&b, &url("/orgs/acme/delete"), &[("csrf_token", &csrf), ("confirm", "acme")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs?notice=deleted"));
    assert!(org().await.is_none());
    let html = get(&b, &url(&loc)).await.1;
    assert!(html.contains("id=\"notice\"") && !html.contains("href=\"/orgs/acme\""));
    assert_eq!(get(&b, &url("/orgs/acme")).await.0, 404);
}

/// Everything of Beta an observer can check through the service.
async fn beta_state(app: &TestApp) -> String {
    let o = &app.state.orgs;
    let org = o.find("beta").await.unwrap();
    let (_, members) = o.members(P, "beta").await.unwrap();
    let roles = o.roles(P, Some("beta")).await.unwrap();
    let (_, domains) = o.domains(P, "beta").await.unwrap();
    format!("{org:?}\n{members:?}\n{roles:?}\n{domains:?}")
}

#[tokio::test]
async fn organizations_are_isolated_from_each_other() {
    let w = world().await;
    let app = &w.app;
    let url = |p: &str| app.url(p);
    let before = beta_state(app).await;
    let (b, csrf) = signed_in(app, "adam@example.com").await;
    let (bea, b_role, bob) = (w.bea.id.to_string(), w.b_role.id.to_string(), w.bob.id.to_string());
    let (op_role, mia) = (w.op_role.id.to_string(), w.mia.id.to_string());

    // Beta's pages do not exist for Acme's admin.
    for p in ["/orgs/beta", "/orgs/beta/members", "/orgs/beta/roles", "/orgs/beta/domains", "/orgs/beta/settings"] {
        assert_eq!(get(&b, &url(p)).await.0, 404, "{p}");
    }
    let html = get(&b, &url("/orgs/beta/members")).await.1;
    assert!(!html.contains("bea@example.com"));
    // Nor its forms, even with its real ids.
    let c = csrf.as_str();
    let forms: Vec<(String, Fields)> = vec![
        ("/orgs/beta/members/invite".into(), vec![("email", "spy@example.com"), ("role", "member")]),
        ("/orgs/beta/members/role".into(), vec![("user_id", &bea), ("role", "admin")]),
        ("/orgs/beta/members/remove".into(), vec![("user_id", &bea)]),
        ("/orgs/beta/roles".into(), vec![("client_id", &w.client), ("name", "spy"), ("permission", "orders:read")]),
        ("/orgs/beta/roles/grant".into(), vec![("user_id", &bob), ("role_id", &b_role)]),
        ("/orgs/beta/roles/revoke".into(), vec![("user_id", &bea), ("role_id", &b_role)]),
        (format!("/orgs/beta/roles/{b_role}/permissions"), vec![("permission", "orders:write")]),
        (format!("/orgs/beta/roles/{b_role}/delete"), vec![]),
        ("/orgs/beta/domains".into(), vec![("domain", "spy.test")]),
        ("/orgs/beta/domains/verify".into(), vec![("domain", "beta.test")]),
        ("/orgs/beta/domains/remove".into(), vec![("domain", "beta.test")]),
        ("/orgs/beta/settings".into(), vec![("name", "Pwned"), ("accent_color", "#000000")]),
        ("/orgs/beta/logo/remove".into(), vec![]),
        ("/orgs/beta/delete".into(), vec![("confirm", "beta")]),
    ];
    for (path, fields) in &forms {
        let mut form = vec![("csrf_token", c)];
        form.extend(fields.iter().copied());
        assert_eq!(post(&b, &url(path), &form).await.0, 404, "{path}");
    }
    assert_eq!(upload(app, &b, "beta", c, "logo.png", "image/png", PNG).await.0, 404);
    // Beta's ids posted to Acme's forms: refused, nothing changes.
    let crossed: Vec<(String, Fields, u16)> = vec![
        ("/orgs/acme/members/role".into(), vec![("user_id", &bea), ("role", "admin")], 404),
        ("/orgs/acme/members/remove".into(), vec![("user_id", &bea)], 404),
        ("/orgs/acme/roles/grant".into(), vec![("user_id", &bea), ("role_id", &op_role)], 400),
        ("/orgs/acme/roles/grant".into(), vec![("user_id", &mia), ("role_id", &b_role)], 400),
        ("/orgs/acme/roles/revoke".into(), vec![("user_id", &bea), ("role_id", &b_role)], 404),
        (format!("/orgs/acme/roles/{b_role}/permissions"), vec![("permission", "orders:write")], 404),
        (format!("/orgs/acme/roles/{b_role}/delete"), vec![], 404),
        ("/orgs/acme/domains/verify".into(), vec![("domain", "beta.test")], 404),
        ("/orgs/acme/domains/remove".into(), vec![("domain", "beta.test")], 404),
    ];
    for (path, fields, want) in &crossed {
        let mut form = vec![("csrf_token", c)];
        form.extend(fields.iter().copied());
        assert_eq!(post(&b, &url(path), &form).await.0, *want, "{path} {fields:?}");
    }
    assert_eq!(beta_state(app).await, before, "Beta is unchanged");
    assert!(held(app, "acme", &w.mia).await.is_empty());
    assert_eq!(role_of(app, &w.beta, &w.bea).await, Some(OrgRole::Member));
    assert_eq!(role_of(app, &w.acme, &w.bea).await, None);

    // A plain member of Acme: 403 on its admin pages and forms; the list shows it without link.
    let (mb, mcsrf) = signed_in(app, "mia@example.com").await;
    for p in ["/orgs/acme", "/orgs/acme/members", "/orgs/acme/roles", "/orgs/acme/domains", "/orgs/acme/settings"] {
        assert_eq!(get(&mb, &url(p)).await.0, 403, "{p}");
    }
    let invite = [("csrf_token", mcsrf.as_str()), ("email", "x@example.com"), ("role", "member")];
    assert_eq!(post(&mb, &url("/orgs/acme/members/invite"), &invite).await.0, 403);
    let settings = [("csrf_token", mcsrf.as_str()), ("name", "Mine")];
    assert_eq!(post(&mb, &url("/orgs/acme/settings"), &settings).await.0, 403);
    assert_eq!(app.state.orgs.find("acme").await.unwrap().unwrap().name, "Acme");
    let (status, html) = get(&mb, &url("/orgs")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Acme") && !html.contains("href=\"/orgs/acme\""));
    let account = get(&mb, &url("/account")).await.1;
    assert!(
        account.contains("id=\"orgs-link\"") && account.contains("Acme") && !account.contains("href=\"/orgs/acme\"")
    );

    // Anonymous: to the sign-in page, and back.
    let anon = app.browser();
    let res = anon.get(url("/orgs/acme/members")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?return_to=%2Forgs%2Facme%2Fmembers");
    assert_eq!(anon.get(url("/orgs")).send().await.unwrap().status(), 303);
    let (status, loc, _) = post(&anon, &url("/orgs/acme/settings"), &[("csrf_token", "x"), ("name", "Anon")]).await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/login?"));
    assert_eq!(app.state.orgs.find("acme").await.unwrap().unwrap().name, "Acme");
}

#[tokio::test]
async fn a_platform_admin_runs_any_organization() {
    let w = world().await;
    let app = &w.app;
    let url = |p: &str| app.url(p);
    app.state
        .stores
        .users
        .create_user(NewUser {
            email: Email::parse("root@example.com").unwrap(),
            name: None,
            password_hash: Some(
                guichet::crypto::PasswordHasher::new(&app.settings.password)
                    .unwrap()
                    .hash(&guichet::crypto::SecretString::new(PW))
                    .await
                    .unwrap(),
            ),
            status: UserStatus::Active,
            is_admin: true,
        })
        .await
        .unwrap();
    let (b, csrf) = signed_in(app, "root@example.com").await;
    let (status, html) = get(&b, &url("/orgs")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("href=\"/orgs/acme\"")
            && html.contains("href=\"/orgs/beta\"")
            && html.contains("id=\"platform\"")
    );
    assert!(get(&b, &url("/account")).await.1.contains("id=\"orgs-link\""));
    let (status, html) = get(&b, &url("/orgs/beta/members")).await;
    assert_eq!(status, 200);
    assert!(html.contains("bea@example.com"));
    let form =
        [("csrf_token", csrf.as_str()), ("name", "Beta Inc"), ("require_sso", "on"), ("accent_color", "#000000")];
    assert_eq!(post(&b, &url("/orgs/beta/settings"), &form).await.0, 303);
    let o = app.state.orgs.find("beta").await.unwrap().unwrap();
    assert_eq!((o.name.as_str(), o.require_sso, o.accent_color.as_deref()), ("Beta Inc", true, Some("#000000")));
    let bea = w.bea.id.to_string();
    let (status, _, _) =
        post(&b, &url("/orgs/beta/members/role"), &[("csrf_token", &csrf), ("user_id", &bea), ("role", "owner")]).await;
    assert_eq!(status, 303);
    assert_eq!(role_of(app, &w.beta, &w.bea).await, Some(OrgRole::Owner));
    let (status, loc, _) = post(&b, &url("/orgs/beta/delete"), &[("csrf_token", &csrf), ("confirm", "beta")]).await;
    assert_eq!((status, loc.as_str()), (303, "/orgs?notice=deleted"));
    assert!(app.state.orgs.find("beta").await.unwrap().is_none());
}
