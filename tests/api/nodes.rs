//! Two real `guichet serve` processes on the same stores behave as one service for the
//! ceremonies whose state lives between two requests: a WebAuthn ceremony begun on one process
//! finishes on the other, and a SAML AuthnRequest sent by one is answered at the other's ACS.
//! (With `REDIS_URL` the short-lived state is in Redis; without, in a table of the database.)
//! The same checks between in-process siblings are in `mfa.rs` and `saml.rs`; the OIDC flows
//! across real processes are `conformance/faults`, scenario s.

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use guichet::federation::saml::SamlOptions;

use crate::helpers::{form_value, TestApp};
use crate::process::{env_of, Served};
use crate::saml::saml;

const PW: &str = "correct horse battery";
/// What the browser sees: the load balancer in front of both processes.
const ORIGIN: &str = "http://localhost:8080";

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn csrf_of(b: &reqwest::Client, url: &str) -> String {
    let res = b.get(url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    form_value(&res.text().await.unwrap(), "csrf_token").unwrap()
}

async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(url).header("accept", "text/html").form(form).send().await.unwrap()
}

/// The password step at `node`: where it sends the browser next.
async fn password(node: &Served, b: &reqwest::Client, email: &str) -> String {
    let csrf = csrf_of(b, &node.url("/login")).await;
    let res = post(b, &node.url("/login"), &[("email", email), ("password", PW), ("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    res.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_webauthn_ceremony_begun_on_one_process_finishes_on_the_other() {
    let mut setup = TestApp::spawn().await;
    setup.create_user("roam@example.com", PW).await;
    let mut env = env_of(&setup.settings);
    setup.stop().await;
    // The issuer is the address both processes are reached at (rp id localhost, its origin).
    env.push(("GUICHET_SERVER__ISSUER".into(), ORIGIN.into()));
    let work = tempfile::tempdir().unwrap();
    let a = Served::start(&env, work.path()).await;
    let b = Served::start(&env, work.path()).await;

    // Registration: options from A, the authenticator's answer posted to B.
    let browser1 = browser();
    assert_eq!(password(&a, &browser1, "roam@example.com").await, "/");
    let csrf = csrf_of(&browser1, &a.url("/account/security")).await;
    let res = post(&browser1, &a.url("/account/security/passkey/options"), &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let mut o: serde_json::Value = res.json().await.unwrap();
    assert_eq!(o["publicKey"]["rp"]["id"], "localhost");
    // The soft token keeps no resident keys: it is used as a second factor.
    o["publicKey"]["authenticatorSelection"]["requireResidentKey"] = false.into();
    o["publicKey"]["authenticatorSelection"]["residentKey"] = "discouraged".into();
    let ccr: CreationChallengeResponse = serde_json::from_value(o).unwrap();
    let mut auth = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let cred = auth.do_registration(Url::parse(ORIGIN).unwrap(), ccr).unwrap();
    let cred = serde_json::to_string(&cred).unwrap();
    let form = [("csrf_token", csrf.as_str()), ("name", "Roaming key"), ("credential", &cred)];
    let res = post(&browser1, &b.url("/account/security/passkey"), &form).await;
    assert_eq!(res.status(), 200, "registered at B");
    assert!(res.text().await.unwrap().contains("id=\"recovery-codes\""));
    // The same answer again, at A: the ceremony is spent on every process.
    let res = post(&browser1, &a.url("/account/security/passkey"), &form).await;
    assert!(res.status().is_client_error(), "{}", res.status());

    // Sign-in: the password at B, the options of the second step from B, the answer at A.
    let browser2 = browser();
    assert_eq!(password(&b, &browser2, "roam@example.com").await, "/login/second-factor");
    let csrf = csrf_of(&browser2, &b.url("/login/second-factor")).await;
    let res = post(&browser2, &b.url("/login/second-factor/webauthn/options"), &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let rcr: RequestChallengeResponse = res.json().await.unwrap();
    let answer = serde_json::to_string(&auth.do_authentication(Url::parse(ORIGIN).unwrap(), rcr).unwrap()).unwrap();
    let form = [("csrf_token", csrf.as_str()), ("credential", answer.as_str())];
    let res = post(&browser2, &a.url("/login/second-factor/webauthn"), &form).await;
    assert_eq!(res.status(), 303, "finished at A");
    // One session, honoured by both, with the second factor in it.
    for node in [&a, &b] {
        let res = browser2.get(node.url("/account/sessions")).header("accept", "text/html").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("pwd+hwk+user+mfa"));
    }
    // Replayed at B: refused (the challenge was consumed at A).
    let browser3 = browser();
    assert_eq!(password(&b, &browser3, "roam@example.com").await, "/login/second-factor");
    let csrf = csrf_of(&browser3, &b.url("/login/second-factor")).await;
    let form = [("csrf_token", csrf.as_str()), ("credential", answer.as_str())];
    assert_eq!(post(&browser3, &b.url("/login/second-factor/webauthn"), &form).await.status(), 401);
}

#[tokio::test]
async fn a_saml_request_sent_by_one_process_is_answered_at_the_others_acs() {
    let s = saml(SamlOptions { allow_idp_initiated: true, ..Default::default() }).await;
    let mut env = env_of(&s.hub.settings);
    // The processes answer for the in-process node's issuer (the IdP's responses name its ACS).
    env.push(("GUICHET_SERVER__ISSUER".into(), s.hub.settings.server.issuer.clone()));
    let acs_path = url::Url::parse(&s.acs).unwrap().path().to_owned();
    let mut hub = s.hub;
    hub.stop().await;
    let work = tempfile::tempdir().unwrap();
    let a = Served::start(&env, work.path()).await;
    let b = Served::start(&env, work.path()).await;

    // A sends the AuthnRequest (its id is kept in the shared store)...
    let br = browser();
    let res = br.get(a.url(&format!("/sso/{}?return_to=/account", s.conn))).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let req = crate::saml_idp::parse_redirect(res.headers()["location"].to_str().unwrap());
    // ... the IdP answers it, and the browser posts the answer to B's ACS.
    let mut o = crate::saml_idp::ResponseOpts::new("ann@acme.test", Some(&req.id), &s.acs, &s.sp);
    o.attributes = vec![("displayName".into(), vec!["Ann Acme".into()])];
    let response = s.idp.response_b64(&o);
    let mut form = vec![("SAMLResponse", response.as_str())];
    if let Some(r) = req.relay_state.as_deref() {
        form.push(("RelayState", r));
    }
    let res = br.post(b.url(&acs_path)).header("accept", "text/html").form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    assert_eq!(res.headers()["location"], "/account");
    // Signed in at both.
    for node in [&a, &b] {
        let res = br.get(node.url("/account")).header("accept", "text/html").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("ann@acme.test"));
    }
    // The same response again at A, from the same browser: refused (request spent, assertion seen).
    let res = br.post(a.url(&acs_path)).header("accept", "text/html").form(&form).send().await.unwrap();
    assert!(matches!(res.status().as_u16(), 400 | 403), "replayed: {}", res.status());
    // Unsolicited (the connection allows IdP-initiated sign-in): accepted once by B, and its
    // assertion id is then known to A (the replay cache is shared).
    let response = s.idp.response_b64(&crate::saml_idp::ResponseOpts::new("ann@acme.test", None, &s.acs, &s.sp));
    let form = [("SAMLResponse", response.as_str()), ("guichet_repost", "1")];
    assert_eq!(browser().post(b.url(&acs_path)).form(&form).send().await.unwrap().status(), 303);
    assert_eq!(browser().post(a.url(&acs_path)).form(&form).send().await.unwrap().status(), 403);
}
