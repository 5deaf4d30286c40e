//! Black-box: a real Guichet in-process (fresh SQLite in a temp dir, port 0) and portals on
//! their own ports, spoken to by a browser-like client (one cookie jar, redirects followed by
//! hand so every hop is seen). Portal A is at 127.0.0.1 and portal B at `localhost`, so their
//! cookies stay apart (cookies do not tell ports apart).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use guichet::crypto::{PasswordHasher, SecretString};
use guichet::domain::clock::OffsetClock;
use guichet::domain::org::OrgRole;
use guichet::domain::{ApplicationType, ClientAuthMethod, Email, GrantType, NewUser, SigningAlg, User, UserStatus};
use guichet::oidc::clients::Registration;
use guichet::orgs::Actor;
use guichet::web::state::AppState;
use guichet::Settings;
use guichet_portal::{Config, DevKey};
use reqwest::redirect::Policy;

const P: Actor = Actor::Platform;
const EMAIL: &str = "ann@acme.example";
const PW: &str = "correct horse battery";

struct Guichet {
    base: String,
    state: AppState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// Guichet with a user, Ann, member of the organization Acme.
async fn guichet() -> (Guichet, User) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.database.url = format!("sqlite://{}", dir.path().join("guichet.db").display());
    s.keys.dir = dir.path().join("keys");
    s.mail.outbox_dir = dir.path().join("outbox");
    s.sms.outbox_dir = dir.path().join("outbox");
    s.password.argon2_memory_kib = 1024;
    s.password.argon2_iterations = 1;
    s.server.metrics_listen = "127.0.0.1:0".parse().unwrap();
    s.server.shutdown_grace_secs = 1;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    s.server.issuer = base.clone();
    let app = guichet::App::build(s.clone(), Some(listener), Arc::new(OffsetClock::new())).await.unwrap();
    let state = app.state.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let hash = PasswordHasher::new(&s.password).unwrap().hash(&SecretString::new(PW)).await.unwrap();
    let user = state
        .stores
        .users
        .create_user(NewUser {
            email: Email::parse(EMAIL).unwrap(),
            name: Some("Ann Example".into()),
            password_hash: Some(hash),
            status: UserStatus::Active,
            is_admin: false,
        })
        .await
        .unwrap();
    state.orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
    state.orgs.set_member(P, "acme", EMAIL, OrgRole::Member).await.unwrap();
    (Guichet { base, state, _shutdown: tx, _dir: dir }, user)
}

/// A portal's listener, bound before its client is registered (the redirect URI names the port).
struct Spot {
    listener: tokio::net::TcpListener,
    base: String,
    port: u16,
}

async fn spot(host: &str) -> Spot {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    Spot { listener, base: format!("http://{host}:{port}"), port }
}

/// Registers the portal at `spot` as a first-party client of Guichet declaring
/// `orders:read`, `galleries:read`, `billing:read`, and grants Ann a role holding `granted`.
async fn register(g: &Guichet, spot: &Spot, backchannel: bool, role: &str, granted: &[&str]) -> (String, String) {
    let r = Registration {
        name: format!("Portal {role}"),
        redirect_uris: vec![format!("{}/callback", spot.base)],
        post_logout_redirect_uris: vec![format!("{}/", spot.base)],
        auth_method: ClientAuthMethod::ClientSecretBasic,
        application_type: ApplicationType::Web,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        jwks_uri: None,
        jwks: None,
        first_party: true,
        backchannel_logout_uri: backchannel.then(|| format!("http://127.0.0.1:{}/backchannel-logout", spot.port)),
        id_token_signed_response_alg: SigningAlg::RS256,
        id_token_claims: true,
        introspection: false,
        require_mfa: false,
        org_id: None,
    };
    let (client, secret) = g.state.oidc.register_client(r).await.unwrap();
    let cid = client.client_id.to_string();
    let all = ["orders:read".to_owned(), "galleries:read".to_owned(), "billing:read".to_owned()];
    g.state.orgs.add_permissions(P, &cid, &all).await.unwrap();
    let granted: Vec<String> = granted.iter().map(|p| (*p).to_owned()).collect();
    g.state.orgs.create_role(P, &cid, role, &granted, None).await.unwrap();
    g.state.orgs.grant_role(P, "acme", EMAIL, role, Some(&cid)).await.unwrap();
    (cid, secret.unwrap())
}

/// Starts the portal on `spot`.
async fn start_portal(g: &Guichet, spot: Spot, client: (String, String), devkey: Option<DevKey>) -> String {
    let cfg = Config {
        issuer: g.base.clone(),
        client_id: client.0,
        client_secret: client.1,
        listen: spot.listener.local_addr().unwrap(),
        base_url: spot.base.clone(),
        devkey,
    };
    let app = guichet_portal::build(cfg).await.unwrap();
    tokio::spawn(async move { axum::serve(spot.listener, app).await.unwrap() });
    spot.base
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap()
}

/// GETs `url` and follows redirects (any host); returns the first other response.
async fn browse(b: &reqwest::Client, url: &str) -> reqwest::Response {
    let mut res = b.get(url).send().await.unwrap();
    for _ in 0..20 {
        if !res.status().is_redirection() {
            return res;
        }
        res = follow_once(b, res).await;
    }
    panic!("too many redirects from {url}");
}

async fn follow_once(b: &reqwest::Client, res: reqwest::Response) -> reqwest::Response {
    let loc = res.headers()["location"].to_str().unwrap();
    let next = res.url().join(loc).unwrap();
    b.get(next).send().await.unwrap()
}

async fn follow_all(b: &reqwest::Client, mut res: reqwest::Response) -> reqwest::Response {
    for _ in 0..20 {
        if !res.status().is_redirection() {
            return res;
        }
        res = follow_once(b, res).await;
    }
    panic!("too many redirects");
}

/// The `value` of the input named `name` (Guichet's templates quote attributes).
fn form_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end]
        .replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Opens a gated page of a signed-out portal: Guichet's sign-in form shows; fills it in and
/// comes back to the page.
async fn sign_in_with_form(g: &Guichet, b: &reqwest::Client, portal: &str, path: &str) -> reqwest::Response {
    let form = browse(b, &format!("{portal}{path}")).await;
    assert_eq!(form.status(), 200);
    assert!(form.url().as_str().starts_with(&format!("{}/login", g.base)), "Guichet's sign-in at {}", form.url());
    let html = form.text().await.unwrap();
    let csrf = form_value(&html, "csrf_token");
    let rt = form_value(&html, "return_to");
    let res = b
        .post(format!("{}/login", g.base))
        .form(&[("email", EMAIL), ("password", PW), ("csrf_token", &csrf), ("return_to", &rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    follow_all(b, res).await
}

/// The status of a page without following redirects (303 to /login: signed out).
async fn status_of(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).send().await.unwrap();
    let loc = res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (res.status().as_u16(), loc)
}

/// Waits (up to `secs`) for the portal page to send the browser to sign in.
async fn wait_signed_out(b: &reqwest::Client, url: &str, secs: u64) {
    for _ in 0..secs * 10 {
        let (status, loc) = status_of(b, url).await;
        if status == 303 && loc.starts_with("/login") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url}: still signed in after {secs} s");
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// Sign-in on portal A through the form, on portal B without one (Guichet's session), pages
/// gated by the access token's permissions, and a sign-out at Guichet ending both portals'
/// sessions through back-channel logout.
#[tokio::test]
async fn single_sign_on_permissions_and_backchannel_logout_across_two_portals() {
    let (g, _ann) = guichet().await;
    let (sa, sb) = (spot("127.0.0.1").await, spot("localhost").await);
    // A: orders and galleries, not billing. B: orders only.
    let ca = register(&g, &sa, true, "buyer-a", &["orders:read", "galleries:read"]).await;
    let cb = register(&g, &sb, true, "buyer-b", &["orders:read"]).await;
    let a = start_portal(&g, sa, ca, None).await;
    let b_portal = start_portal(&g, sb, cb, None).await;
    let b = browser();

    // Signed out: a gated page sends the browser to sign in.
    let (status, loc) = status_of(&b, &format!("{a}/orders")).await;
    assert_eq!((status, loc.as_str()), (303, "/login?return_to=/orders"));

    let page = sign_in_with_form(&g, &b, &a, "/orders").await;
    assert_eq!(page.url().as_str(), format!("{a}/orders"));
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "cache-control"), "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("orders:read") && html.contains("Ann Example") && html.contains("Acme Corp"), "{html}");
    let gal = b.get(format!("{a}/galleries")).send().await.unwrap();
    assert_eq!(gal.status(), 200);
    let bill = b.get(format!("{a}/billing")).send().await.unwrap();
    assert_eq!(bill.status(), 403, "billing:read was not granted");
    assert_eq!(header(&bill, "cache-control"), "no-store");
    assert!(bill.text().await.unwrap().contains("billing:read"));

    // Portal B: no form, Guichet's session sends the browser straight back.
    let page = browse(&b, &format!("{b_portal}/orders")).await;
    assert_eq!(page.url().as_str(), format!("{b_portal}/orders"), "signed in on B without a form");
    assert_eq!(page.status(), 200);
    assert_eq!(b.get(format!("{b_portal}/galleries")).send().await.unwrap().status(), 403);

    // Sign-out at Guichet: both portals hear of it (back-channel logout) and forget the session.
    let confirm = b.get(format!("{}/logout", g.base)).send().await.unwrap().text().await.unwrap();
    let csrf = form_value(&confirm, "csrf_token");
    let res = b.post(format!("{}/logout", g.base)).form(&[("csrf_token", csrf)]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    wait_signed_out(&b, &format!("{a}/orders"), 10).await;
    wait_signed_out(&b, &format!("{b_portal}/orders"), 10).await;
    // And a sign-in needs the form again.
    let again = browse(&b, &format!("{a}/orders")).await;
    assert!(again.url().as_str().starts_with(&format!("{}/login", g.base)));
}

/// A session revoked in Guichet leaves a portal through the live event stream (the client has
/// no back-channel logout URI: nothing else tells it); then RP-initiated logout from the portal.
#[tokio::test]
async fn a_session_revoked_in_guichet_leaves_the_portal_through_the_event_stream() {
    let (g, ann) = guichet().await;
    let s = spot("127.0.0.1").await;
    let c = register(&g, &s, false, "buyer", &["orders:read"]).await;
    let (k, secret) = g.state.devkeys.create(P, "acme", "portal", &["read".into()], None).await.unwrap();
    let portal = start_portal(&g, s, c, Some(DevKey { key: k.id.to_string(), secret })).await;
    let b = browser();
    assert_eq!(sign_in_with_form(&g, &b, &portal, "/orders").await.status(), 200);

    let sessions = g.state.accounts.sessions(ann.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    g.state.accounts.revoke_session(ann.id, &sessions[0].sid).await.unwrap();
    wait_signed_out(&b, &format!("{portal}/orders"), 5).await;

    // RP-initiated logout: the portal session ends, then Guichet's (id_token_hint), and the
    // browser comes back to the portal's home page.
    assert_eq!(sign_in_with_form(&g, &b, &portal, "/orders").await.status(), 200);
    let res = b.post(format!("{portal}/logout")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(header(&res, "location").starts_with(&format!("{}/end_session?", g.base)));
    let home = follow_all(&b, res).await;
    assert_eq!(home.url().as_str(), format!("{portal}/"));
    assert_eq!(home.status(), 200);
    wait_signed_out(&b, &format!("{portal}/orders"), 1).await;
    let again = browse(&b, &format!("{portal}/orders")).await;
    assert!(again.url().as_str().starts_with(&format!("{}/login", g.base)), "Guichet's session ended too");
}

/// The installable shell: manifest, service worker caching public files only, headers; and
/// the back-channel endpoint refusing what Guichet did not sign.
#[tokio::test]
async fn the_pwa_shell_is_public_and_authenticated_pages_are_never_cached() {
    let (g, _) = guichet().await;
    let s = spot("127.0.0.1").await;
    let c = register(&g, &s, true, "buyer", &["orders:read"]).await;
    let portal = start_portal(&g, s, c, None).await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();

    let res = http.get(format!("{portal}/manifest.webmanifest")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "application/manifest+json");
    let m: serde_json::Value = res.json().await.unwrap();
    assert_eq!(m["start_url"], "/");
    assert_eq!(m["display"], "standalone");
    assert!(m["name"].as_str().is_some_and(|n| !n.is_empty()));
    let icon = m["icons"][0]["src"].as_str().unwrap();
    let res = http.get(format!("{portal}{icon}")).send().await.unwrap();
    assert_eq!(header(&res, "content-type"), "image/svg+xml");
    assert!(res.text().await.unwrap().starts_with("<svg"));

    let res = http.get(format!("{portal}/sw.js")).send().await.unwrap();
    assert!(header(&res, "content-type").starts_with("text/javascript"));
    let sw = res.text().await.unwrap();
    let shell_line = sw.lines().find(|l| l.starts_with("const SHELL = ")).unwrap();
    for public in ["\"/\"", "\"/app.css\"", "\"/manifest.webmanifest\""] {
        assert!(shell_line.contains(public), "{public} is in the cached shell");
    }
    for private in ["/orders", "/galleries", "/billing", "/callback", "/login", "/logout"] {
        assert!(!shell_line.contains(private), "{private} must never be cached");
    }
    assert!(sw.contains("!SHELL.includes(url.pathname)"), "anything else is left to the network");
    assert_eq!(sw.matches("c.put(").count(), 1, "one place stores, behind the shell check");

    let home = http.get(format!("{portal}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert_eq!(header(&home, "cache-control"), "no-cache");
    let html = home.text().await.unwrap();
    assert!(html.contains(r#"<link rel="manifest" href="/manifest.webmanifest">"#));
    for path in ["/orders", "/galleries", "/billing"] {
        let res = http.get(format!("{portal}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(header(&res, "cache-control"), "no-store");
    }

    // Back-channel logout: only a logout token signed by Guichet is accepted.
    let res =
        http.post(format!("{portal}/backchannel-logout")).form(&[("logout_token", "x.y.z")]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(header(&res, "cache-control"), "no-store");
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoibG9nb3V0K2p3dCJ9.{}.",
        base64_url(&format!(
            r#"{{"iss":"{}","aud":"x","iat":1,"jti":"j","sid":"s","events":{{"{}":{{}}}}}}"#,
            g.base, "http://schemas.openid.net/event/backchannel-logout"
        ))
    );
    let res =
        http.post(format!("{portal}/backchannel-logout")).form(&[("logout_token", unsigned)]).send().await.unwrap();
    assert_eq!(res.status(), 400, "alg none is refused");
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
