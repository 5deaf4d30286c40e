//! Second factors, black-box: TOTP enrolment and sign-in with codes computed independently
//! (the `totp-rs` crate on the base32 key the page shows; the unit tests hold the RFC 6238
//! vectors), replay, drift, throttling, recovery codes, removal, levels in tokens, step-up and
//! the policies.

use crate::helpers::{form_value, TestApp};
use crate::oidc_helpers::{auth_url, claims, exchange, redirect_params, registration, PW};

/// The code of an authenticator app holding `secret` (base32), at Unix time `t`.
fn code_at(secret: &str, t: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).unwrap().generate(u64::try_from(t).unwrap())
}

/// Waits while the clock is in the last 3 seconds of a TOTP step, so that a code computed now is
/// checked by the server in the same step (the clock runs on real time).
async fn away_from_a_step_boundary(app: &TestApp) {
    while now(app).rem_euclid(30) >= 27 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn now(app: &TestApp) -> i64 {
    use guichet::domain::Clock;
    app.clock.now().0
}

async fn page(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(b: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(url).form(form).send().await.unwrap()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
    &html[i..i + html[i..].find(end).unwrap()]
}

/// Signs in with the password, enrols TOTP; returns (browser, secret, recovery codes).
async fn enrolled(app: &TestApp, email: &str) -> (reqwest::Client, String, Vec<String>) {
    app.create_user(email, PW).await;
    let b = app.browser();
    assert_eq!(app.login(&b, email, PW, None).await.status(), 303);
    let (status, html) = page(&b, &app.url("/account/security/totp")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<svg"), "the QR code is inline SVG");
    let secret = between(&html, "id=\"totp-secret\">", "<").to_owned();
    assert_eq!(secret.len(), 32, "160-bit key: {secret}");
    let uri = crate::helpers::unescape(between(&html, "id=\"totp-uri\" href=\"", "\""));
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret}")), "{uri}");
    let csrf = form_value(&html, "csrf_token").unwrap();
    let res = post(&b, &app.url("/account/security/totp"), &[("csrf_token", &csrf), ("code", "000000")]).await;
    assert_eq!(res.status(), 400, "a wrong code does not turn it on");
    let code = code_at(&secret, now(app));
    let res = post(&b, &app.url("/account/security/totp"), &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let codes: Vec<String> = between(&html, "id=\"recovery-codes\">", "</ol>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    (b, secret, codes)
}

/// Password, then the second step with `code`: the final response.
async fn sign_in_with(app: &TestApp, email: &str, code: &str) -> (reqwest::Client, reqwest::Response) {
    let b = app.browser();
    let res = app.login(&b, email, PW, None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login/second-factor");
    assert_eq!(page(&b, &app.url("/account")).await.0, 303, "not signed in before the second step");
    let (status, html) = page(&b, &app.url("/login/second-factor")).await;
    assert_eq!(status, 200);
    let csrf = form_value(&html, "csrf_token").unwrap();
    let res = post(&b, &app.url("/login/second-factor"), &[("csrf_token", &csrf), ("code", code)]).await;
    (b, res)
}

#[tokio::test]
async fn totp_sign_in_replay_drift_and_recovery_codes() {
    let app = TestApp::spawn().await;
    let (_, secret, codes) = enrolled(&app, "tess@example.com").await;
    // The enrolment's step is spent: the same code does not sign in.
    let (_, res) = sign_in_with(&app, "tess@example.com", &code_at(&secret, now(&app))).await;
    assert_eq!(res.status(), 401);
    app.clock.advance(30);
    let code = code_at(&secret, now(&app));
    let (b, res) = sign_in_with(&app, "tess@example.com", &code).await;
    assert_eq!(res.status(), 303);
    assert_eq!(page(&b, &app.url("/account")).await.0, 200);
    // Replay of that step elsewhere: refused.
    let (_, res) = sign_in_with(&app, "tess@example.com", &code).await;
    assert_eq!(res.status(), 401);
    // Drift: the next step's code (a phone clock 30 s ahead) works; two steps ahead does not.
    app.clock.advance(60);
    away_from_a_step_boundary(&app).await;
    let (_, res) = sign_in_with(&app, "tess@example.com", &code_at(&secret, now(&app) + 60)).await;
    assert_eq!(res.status(), 401);
    let (_, res) = sign_in_with(&app, "tess@example.com", &code_at(&secret, now(&app) + 30)).await;
    assert_eq!(res.status(), 303);
    // A recovery code works once (any case, with or without the dash).
    let (b, res) = sign_in_with(&app, "tess@example.com", &codes[0].to_uppercase().replace('-', "")).await;
    assert_eq!(res.status(), 303);
    let (_, res) = sign_in_with(&app, "tess@example.com", &codes[0]).await;
    assert_eq!(res.status(), 401);
    let (_, html) = page(&b, &app.url("/account/security")).await;
    assert!(between(&html, "id=\"recovery-left\">", "<").contains('9'), "the number left is shown");
    // The account page says which factors the user has.
    assert!(page(&b, &app.url("/account")).await.1.contains("id=\"factor-summary\">(totp)"));
    // The history shows the second step.
    assert!(page(&b, &app.url("/account/sessions")).await.1.contains("pwd+otp+mfa"));
}

#[tokio::test]
async fn wrong_codes_are_limited_per_account() {
    let app = TestApp::spawn().await;
    let (_, secret, _) = enrolled(&app, "tom@example.com").await;
    // To the start of the next five-minute window (and past the enrolment's step).
    app.clock.advance(300 - now(&app).rem_euclid(300) + 1);
    for i in 0..5 {
        let (_, res) = sign_in_with(&app, "tom@example.com", "123456").await;
        assert_eq!(res.status(), 401, "wrong code {i}");
    }
    let (_, res) = sign_in_with(&app, "tom@example.com", &code_at(&secret, now(&app))).await;
    assert_eq!(res.status(), 429, "even the right code waits");
    assert!(res.headers().contains_key("retry-after"));
    app.clock.advance(301);
    let (_, res) = sign_in_with(&app, "tom@example.com", &code_at(&secret, now(&app))).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn removing_a_factor_needs_a_code_and_a_recent_sign_in() {
    let app = TestApp::spawn().await;
    let (b, _, codes) = enrolled(&app, "rex@example.com").await;
    let (_, html) = page(&b, &app.url("/account/security")).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    let factor = form_value(&html, "factor").unwrap();
    let url = app.url("/account/security/factor/remove");
    let res = post(&b, &url, &[("csrf_token", &csrf), ("factor", &factor), ("code", "000000")]).await;
    assert_eq!(res.status(), 400);
    app.clock.advance(6 * 60);
    let res = post(&b, &url, &[("csrf_token", &csrf), ("factor", &factor), ("code", &codes[1])]).await;
    assert_eq!(res.status(), 303, "sign in again first");
    assert!(res.headers()["location"].to_str().unwrap().contains("prompt=login"));
    app.clock.advance(-6 * 60);
    let res = post(&b, &url, &[("csrf_token", &csrf), ("factor", &factor), ("code", &codes[1])]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"no-factor\""));
    // The password alone signs in again.
    assert_eq!(app.login(&app.browser(), "rex@example.com", PW, None).await.headers()["location"], "/");
}

#[tokio::test]
async fn regenerating_recovery_codes_kills_the_old_ones() {
    let app = TestApp::spawn().await;
    let (b, _, old) = enrolled(&app, "rio@example.com").await;
    let csrf = form_value(&page(&b, &app.url("/account/security")).await.1, "csrf_token").unwrap();
    // A sensitive action: an old sign-in must sign in again first.
    app.clock.advance(6 * 60);
    let res = post(&b, &app.url("/account/security/recovery-codes"), &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().contains("prompt=login"));
    app.clock.advance(-6 * 60);
    let res = post(&b, &app.url("/account/security/recovery-codes"), &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let new: Vec<String> = between(&html, "id=\"recovery-codes\">", "</ol>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(new.len(), 10);
    let (_, res) = sign_in_with(&app, "rio@example.com", &old[0]).await;
    assert_eq!(res.status(), 401);
    let (_, res) = sign_in_with(&app, "rio@example.com", &new[0]).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn tokens_say_the_level_and_acr_values_steps_up() {
    let app = TestApp::spawn().await;
    let rp = app.register(registration("Billing")).await;
    // Signed in with the password only, then a factor is enrolled.
    let (b, secret, _) = enrolled(&app, "amy@example.com").await;
    let (url, v) = auth_url(&app, &rp, &[]);
    let res = app.authorize_as(&b, &url, "amy@example.com").await;
    let t = exchange(&app, &rp, &redirect_params(&res)["code"], &v).await;
    let c = claims(t["id_token"].as_str().unwrap());
    assert_eq!(c["acr"], "urn:guichet:acr:pwd");
    // The app asks for two factors: prompt=none cannot, a normal request steps up.
    let (url, _) = auth_url(&app, &rp, &[("acr_values", "urn:guichet:acr:mfa"), ("prompt", "none")]);
    let res = b.get(&url).send().await.unwrap();
    assert_eq!(redirect_params(&res)["error"], "login_required");
    let (url, v) = auth_url(&app, &rp, &[("acr_values", "urn:guichet:acr:mfa")]);
    let res = b.get(&url).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/login/second-factor?"), "{to}");
    let (_, html) = page(&b, &app.url(&to)).await;
    let csrf = form_value(&html, "csrf_token").unwrap();
    app.clock.advance(30);
    let code = code_at(&secret, now(&app));
    let res = post(&b, &app.url("/login/second-factor"), &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let res = app.follow(&b, res).await;
    let t = exchange(&app, &rp, &redirect_params(&res)["code"], &v).await;
    let c = claims(t["id_token"].as_str().unwrap());
    assert_eq!(c["acr"], "urn:guichet:acr:mfa");
    assert_eq!(c["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // Discovery lists the levels.
    let d: serde_json::Value =
        reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(
        d["acr_values_supported"],
        serde_json::json!(["urn:guichet:acr:pwd", "urn:guichet:acr:mfa", "urn:guichet:acr:phr"])
    );
}

#[tokio::test]
async fn a_client_requiring_mfa_sends_users_without_a_factor_to_enrol() {
    let app = TestApp::spawn().await;
    app.create_user("neo@example.com", PW).await;
    let mut reg = registration("Payslips");
    reg.require_mfa = true;
    let rp = app.register(reg).await;
    let b = app.browser();
    assert_eq!(app.login(&b, "neo@example.com", PW, None).await.status(), 303);
    let (url, _) = auth_url(&app, &rp, &[]);
    let res = b.get(&url).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/account/security/totp?return_to="), "enrol before the app: {to}");
    let (_, html) = page(&b, &app.url(&to)).await;
    assert!(html.contains("id=\"totp-form\""));
}

#[tokio::test]
async fn a_required_policy_makes_everyone_enrol_at_sign_in() {
    let app = TestApp::spawn_with(|s| s.mfa.policy = guichet::config::MfaPolicy::Required).await;
    app.create_user("ann@example.com", PW).await;
    let b = app.browser();
    let res = app.login(&b, "ann@example.com", PW, None).await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/account/security/totp?return_to="));
}

#[tokio::test]
async fn an_operator_reset_removes_every_factor_and_tells_the_user() {
    let app = TestApp::spawn().await;
    let (_, _, codes) = enrolled(&app, "lost.phone@example.com").await;
    let user = app.state.accounts.user_by_email("lost.phone@example.com").await.unwrap().unwrap();
    assert_eq!(app.state.mfa.factor_kinds(user.id).await.unwrap(), vec!["totp"]);
    app.state.accounts.reset_factors(user.id, "operator").await.unwrap();
    assert!(app.state.mfa.factor_kinds(user.id).await.unwrap().is_empty());
    assert_eq!(app.state.mfa.recovery_codes_left(user.id).await.unwrap(), 0, "{} codes gone", codes.len());
    assert!(app.mails(1).await.iter().any(|m| m.contains("two-step verification was reset")));
    let audit = app.state.stores.journal.audit_events(5).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "mfa.reset" && e.actor.as_deref() == Some("operator")));
    assert_eq!(app.login(&app.browser(), "lost.phone@example.com", PW, None).await.headers()["location"], "/");
}

#[tokio::test]
async fn webauthn_needs_a_domain_and_refuses_what_it_did_not_ask_for() {
    // An issuer on an IP address: no relying party, no passkey buttons, options refused.
    let app = TestApp::spawn().await;
    let b = app.browser();
    let (_, html) = page(&b, &app.url("/login")).await;
    assert!(!html.contains("id=\"passkey-login\""));
    let csrf = form_value(&html, "csrf_token").unwrap();
    assert_eq!(post(&b, &app.url("/login/passkey/options"), &[("csrf_token", &csrf)]).await.status(), 400);

    // RP ID localhost: the ceremonies run.
    let app = TestApp::spawn_with(|s| {
        s.webauthn.rp_id = "localhost".into();
        s.webauthn.origins = vec!["http://localhost:8080".into()];
    })
    .await;
    app.create_user("kay@example.com", PW).await;
    let b = app.browser();
    let (_, html) = page(&b, &app.url("/login")).await;
    assert!(html.contains("id=\"passkey-login\"") && html.contains("autocomplete=\"username webauthn\""));
    let csrf = form_value(&html, "csrf_token").unwrap();
    assert_eq!(post(&b, &app.url("/login/passkey/options"), &[("csrf_token", "forged")]).await.status(), 403);
    let o: serde_json::Value =
        post(&b, &app.url("/login/passkey/options"), &[("csrf_token", &csrf)]).await.json().await.unwrap();
    assert_eq!(o["publicKey"]["rpId"], "localhost");
    assert_eq!(o["publicKey"]["userVerification"], "required", "passwordless needs user verification");
    assert!(o["publicKey"]["challenge"].as_str().unwrap().len() >= 43);
    // A made-up answer, and an answer in a session that began no ceremony: refused.
    let garbage = [("csrf_token", csrf.as_str()), ("credential", "{\"id\":\"x\"}")];
    assert_eq!(post(&b, &app.url("/login/passkey"), &garbage).await.status(), 401);
    let other = app.browser();
    let csrf2 = form_value(&page(&other, &app.url("/login")).await.1, "csrf_token").unwrap();
    let fake = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": null}
    })
    .to_string();
    let res = post(&other, &app.url("/login/passkey"), &[("csrf_token", &csrf2), ("credential", &fake)]).await;
    assert_eq!(res.status(), 401);
    // Registration options (signed in): a discoverable credential with user verification.
    assert_eq!(app.login(&b, "kay@example.com", PW, None).await.status(), 303);
    let csrf = form_value(&page(&b, &app.url("/account/security")).await.1, "csrf_token").unwrap();
    let o: serde_json::Value =
        post(&b, &app.url("/account/security/passkey/options"), &[("csrf_token", &csrf)]).await.json().await.unwrap();
    let sel = &o["publicKey"]["authenticatorSelection"];
    assert_eq!((sel["residentKey"].as_str(), sel["userVerification"].as_str()), (Some("required"), Some("required")));
    assert!(page(&b, &app.url("/account/security")).await.1.contains("id=\"add-passkey\""));
}

/// A software authenticator (webauthn-authenticator-rs) against the real endpoints.
mod soft_authenticator {
    use super::*;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

    const ORIGIN: &str = "http://localhost:8080";

    async fn app() -> TestApp {
        TestApp::spawn_with(|s| {
            s.webauthn.rp_id = "localhost".into();
            s.webauthn.origins = vec![ORIGIN.into()];
        })
        .await
    }

    async fn options(b: &reqwest::Client, url: &str, csrf: &str) -> serde_json::Value {
        let res = post(b, url, &[("csrf_token", csrf)]).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Registers the authenticator for a signed-in browser (the soft token keeps no resident
    /// keys: the request for one is dropped on its side).
    async fn register(app: &TestApp, b: &reqwest::Client, auth: &mut WebauthnAuthenticator<SoftPasskey>) -> String {
        let csrf = form_value(&page(b, &app.url("/account/security")).await.1, "csrf_token").unwrap();
        let mut o = options(b, &app.url("/account/security/passkey/options"), &csrf).await;
        o["publicKey"]["authenticatorSelection"]["requireResidentKey"] = false.into();
        o["publicKey"]["authenticatorSelection"]["residentKey"] = "discouraged".into();
        let ccr: CreationChallengeResponse = serde_json::from_value(o).unwrap();
        let cred = auth.do_registration(Url::parse(ORIGIN).unwrap(), ccr).unwrap();
        let form = [
            ("csrf_token", csrf.as_str()),
            ("name", "Soft key"),
            ("credential", &serde_json::to_string(&cred).unwrap()),
        ];
        let res = post(b, &app.url("/account/security/passkey"), &form).await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    /// Password, then the options of the WebAuthn second step: (browser, csrf, options).
    async fn second_step(app: &TestApp, email: &str) -> (reqwest::Client, String, RequestChallengeResponse) {
        let b = app.browser();
        assert_eq!(app.login(&b, email, PW, None).await.headers()["location"], "/login/second-factor");
        let html = page(&b, &app.url("/login/second-factor")).await.1;
        assert!(html.contains("id=\"use-security-key\""));
        let csrf = form_value(&html, "csrf_token").unwrap();
        let o = options(&b, &app.url("/login/second-factor/webauthn/options"), &csrf).await;
        (b, csrf, serde_json::from_value(o).unwrap())
    }

    async fn answer(app: &TestApp, b: &reqwest::Client, csrf: &str, cred: &str) -> reqwest::Response {
        post(b, &app.url("/login/second-factor/webauthn"), &[("csrf_token", csrf), ("credential", cred)]).await
    }

    #[tokio::test]
    async fn registration_second_factor_and_refusals() {
        let app = app().await;
        app.create_user("soft@example.com", PW).await;
        let b = app.browser();
        assert_eq!(app.login(&b, "soft@example.com", PW, None).await.status(), 303);
        let mut auth = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let html = register(&app, &b, &mut auth).await;
        assert!(html.contains("id=\"recovery-codes\""), "first factor: recovery codes");
        assert!(page(&b, &app.url("/account/security")).await.1.contains("Soft key"));

        // Second factor, with user verification: signed in, phishing-resistant level.
        let (b2, csrf, rcr) = second_step(&app, "soft@example.com").await;
        let cred = serde_json::to_string(&auth.do_authentication(Url::parse(ORIGIN).unwrap(), rcr).unwrap()).unwrap();
        let res = answer(&app, &b2, &csrf, &cred).await;
        assert_eq!(res.status(), 303);
        assert!(page(&b2, &app.url("/account/sessions")).await.1.contains("pwd+hwk+user+mfa"));
        // Replayed: the ceremony is spent.
        let (b3, csrf3, _) = second_step(&app, "soft@example.com").await;
        assert_eq!(answer(&app, &b3, &csrf3, &cred).await.status(), 401, "an old answer to another challenge");

        // An origin that is not allowed (same RP ID, so the authenticator answers): refused.
        let (b4, csrf4, rcr) = second_step(&app, "soft@example.com").await;
        let c = auth.do_authentication(Url::parse("http://localhost:9999").unwrap(), rcr).unwrap();
        let res = answer(&app, &b4, &csrf4, &serde_json::to_string(&c).unwrap()).await;
        assert_eq!(res.status(), 401, "another origin");

        // A ceremony begun by another session does not finish here.
        let (_, _, rcr) = second_step(&app, "soft@example.com").await;
        let (b6, csrf6, _) = second_step(&app, "soft@example.com").await;
        let stolen = serde_json::to_string(&auth.do_authentication(Url::parse(ORIGIN).unwrap(), rcr).unwrap()).unwrap();
        // b6 began its own ceremony: the answer to the other one's challenge is refused...
        assert_eq!(answer(&app, &b6, &csrf6, &stolen).await.status(), 401);
        // ...and a browser that began none has nothing to finish.
        let (b7, csrf7, _) = {
            let b = app.browser();
            assert_eq!(app.login(&b, "soft@example.com", PW, None).await.status(), 303);
            let csrf = form_value(&page(&b, &app.url("/login/second-factor")).await.1, "csrf_token").unwrap();
            (b, csrf, ())
        };
        assert_eq!(answer(&app, &b7, &csrf7, &stolen).await.status(), 401);

        // A ceremony begun on one node finishes on another (the state is in the shared store).
        let sibling = app.spawn_sibling().await;
        let (b8, csrf8, rcr) = second_step(&app, "soft@example.com").await;
        let cred = serde_json::to_string(&auth.do_authentication(Url::parse(ORIGIN).unwrap(), rcr).unwrap()).unwrap();
        let res =
            post(&b8, &sibling.url("/login/second-factor/webauthn"), &[("csrf_token", &csrf8), ("credential", &cred)])
                .await;
        assert_eq!(res.status(), 303, "finished on the other node");

        // Removing the key needs a recent sign-in only (no code): it goes, and the password
        // alone signs in again (the last factor takes the recovery codes with it).
        let html = page(&b8, &app.url("/account/security")).await.1;
        let csrf = form_value(&html, "csrf_token").unwrap();
        let factor = form_value(&html, "factor").unwrap();
        let res =
            post(&b8, &app.url("/account/security/factor/remove"), &[("csrf_token", &csrf), ("factor", &factor)]).await;
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("id=\"no-factor\""));
        assert_eq!(app.login(&app.browser(), "soft@example.com", PW, None).await.headers()["location"], "/");
    }
}

/// The `openidconnect` crate as the relying party: it asks for two factors with `acr_values`,
/// the one-factor session steps up, and the verified ID token says so.
#[tokio::test]
async fn an_openidconnect_rp_asks_for_two_factors() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
        PkceCodeChallenge, RedirectUrl, TokenResponse,
    };
    let app = TestApp::spawn().await;
    let rp = app.register(registration("Payslips")).await;
    let (b, secret, _) = enrolled(&app, "ola@example.com").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.client.client_id.to_string()),
        rp.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(crate::oidc_helpers::REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_auth_context_value(AuthenticationContextClass::new("urn:guichet:acr:mfa".into()))
        .set_pkce_challenge(challenge)
        .url();
    let res = b.get(url.as_str()).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/login/second-factor?"), "steps up: {to}");
    let csrf = form_value(&page(&b, &app.url(&to)).await.1, "csrf_token").unwrap();
    app.clock.advance(30);
    let code = code_at(&secret, now(&app));
    let res = post(&b, &app.url("/login/second-factor"), &[("csrf_token", &csrf), ("code", &code)]).await;
    let res = app.follow(&b, res).await;
    let params = redirect_params(&res);
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let claims = tokens.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("urn:guichet:acr:mfa"));
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|a| a.as_str().to_owned()).collect();
    assert_eq!(amr, vec!["pwd", "otp", "mfa"]);
}
