//! SAML 2.0 federation: Guichet is the service provider, the test IdP (`saml_idp.rs`) signs and
//! encrypts responses at test time with its own key. The whole chain through the `openidconnect`
//! RP (portal → Guichet → company IdP → Guichet → portal), then every rule of the response check,
//! each its own case: XSW1–8, comment injection in NameID, DTDs and entities, replay, another
//! IdP's key, wrong Destination/Audience/Recipient/InResponseTo, expired, unsolicited, SHA-1,
//! size; encrypted assertions; certificate rollover; metadata by URL and its refresh; signed
//! AuthnRequests; the SP metadata. The self-service pages are in `saml_pages.rs`.

use base64::Engine;
use guichet::domain::federation::ConnectionConfig;
use guichet::domain::org::{OrgDomain, OrgRole};
use guichet::federation::saml::{SamlOptions, SamlSource};
use guichet::orgs::Actor;

use crate::helpers::TestApp;
use crate::oidc_helpers::{auth_url, claims, exchange, registration, Rp, REDIRECT};
use crate::saml_idp::{parse_redirect, with_doctype, xsw, AuthnReq, Enc, ResponseOpts, TestIdp};

pub(crate) const P: Actor = Actor::Platform;
pub(crate) const IDP_ENTITY: &str = "https://idp.acme.test/saml";
pub(crate) const IDP_SSO: &str = "https://idp.acme.test/sso";

pub(crate) struct Saml {
    pub(crate) hub: TestApp,
    pub(crate) idp: TestIdp,
    pub(crate) conn: String,
    pub(crate) sp: String,
    pub(crate) acs: String,
    pub(crate) portal: Rp,
}

pub(crate) async fn acme(hub: &TestApp) {
    let acme = hub.state.orgs.create(P, "Acme Corp", Some("acme"), None).await.unwrap();
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
}

/// Guichet with the organization Acme (acme.test verified), a SAML connection to the test IdP
/// with `opts`, and a portal.
pub(crate) async fn saml(opts: SamlOptions) -> Saml {
    let hub = TestApp::spawn().await;
    acme(&hub).await;
    let idp = TestIdp::new(IDP_ENTITY, IDP_SSO);
    let c = hub
        .state
        .federation
        .create_saml(P, &["acme".into()], Some("Acme SAML"), SamlSource::Xml(idp.metadata_xml()), opts)
        .await
        .unwrap();
    let portal = hub.register(registration("Orders")).await;
    let conn = c.id.to_string();
    Saml {
        sp: hub.state.federation.sp_entity_id(c.id),
        acs: hub.state.federation.acs_url(c.id),
        hub,
        idp,
        conn,
        portal,
    }
}

impl Saml {
    /// Starts a sign-in in `b` (the connection's login URL): the AuthnRequest sent to the IdP.
    pub(crate) async fn start(&self, b: &reqwest::Client) -> AuthnReq {
        let res = b.get(self.hub.url(&format!("/sso/{}?return_to=/account", self.conn))).send().await.unwrap();
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let to = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with(IDP_SSO), "{to}");
        parse_redirect(&to)
    }

    /// A response to `req` for `email`, with the defaults of a good one.
    pub(crate) fn opts(&self, req: Option<&AuthnReq>, email: &str) -> ResponseOpts {
        let mut o = ResponseOpts::new(email, req.map(|r| r.id.as_str()), &self.acs, &self.sp);
        o.attributes = vec![("displayName".into(), vec!["Ann Acme".into()]), ("groups".into(), vec!["buyers".into()])];
        o
    }

    pub(crate) async fn post(
        &self,
        b: &reqwest::Client,
        saml_response: &str,
        relay: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("SAMLResponse", saml_response)];
        if let Some(r) = relay {
            form.push(("RelayState", r));
        }
        b.post(&self.acs).header("accept", "text/html").form(&form).send().await.unwrap()
    }

    /// A full sign-in answered with `edit(opts)`: the ACS's answer.
    pub(crate) async fn sign_in_with(
        &self,
        b: &reqwest::Client,
        edit: impl FnOnce(&mut ResponseOpts),
    ) -> reqwest::Response {
        let req = self.start(b).await;
        let mut o = self.opts(Some(&req), "ann@acme.test");
        edit(&mut o);
        self.post(b, &self.idp.response_b64(&o), req.relay_state.as_deref()).await
    }

    /// Same, with the response XML rewritten by `attack` after signing.
    pub(crate) async fn sign_in_xml(
        &self,
        b: &reqwest::Client,
        attack: impl FnOnce(String) -> String,
    ) -> reqwest::Response {
        let req = self.start(b).await;
        let o = self.opts(Some(&req), "ann@acme.test");
        let xml = attack(self.idp.response(&o));
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        self.post(b, &b64, req.relay_state.as_deref()).await
    }

    pub(crate) async fn signed_in(&self, b: &reqwest::Client) -> bool {
        let res = b.get(self.hub.url("/account")).header("accept", "text/html").send().await.unwrap();
        res.status() == 200
    }

    pub(crate) fn sp_cert(&self, c: &guichet::domain::federation::Connection) -> Vec<u8> {
        match &c.config {
            ConnectionConfig::Saml(s) => base64::engine::general_purpose::STANDARD.decode(&s.sp_cert).unwrap(),
            _ => unreachable!(),
        }
    }

    pub(crate) async fn connection(&self) -> guichet::domain::federation::Connection {
        self.hub.state.federation.connection(&self.conn).await.unwrap()
    }
}

/// A refused response: the status, a page with an error id and no XML echoed, nobody signed in.
async fn refused(s: &Saml, b: &reqwest::Client, res: reqwest::Response, status: u16) {
    let got = res.status().as_u16();
    let html = res.text().await.unwrap();
    assert_eq!(got, status, "{html}");
    assert!(!html.contains("saml:Assertion") && !html.contains("&lt;saml"), "no XML echoed: {html}");
    assert!(
        html.contains("id=\"error-id\"") || html.contains("\"error_id\""),
        "an error id for the administrator: {html}"
    );
    assert!(!s.signed_in(b).await, "nobody is signed in");
}

/// The whole chain through the `openidconnect` RP: the portal's ID token says how the user
/// signed in (`amr` `fed`, `idp`) and carries the organization; the account was made (JIT) as a
/// member of Acme; the IdP groups map to roles.
#[tokio::test]
async fn portal_to_guichet_to_the_saml_idp_and_back() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse,
    };
    let s = saml(SamlOptions::default()).await;
    let pid = s.portal.client.client_id.to_string();
    s.hub.state.orgs.add_permissions(P, &pid, &["orders:read".into()]).await.unwrap();
    s.hub.state.orgs.create_role(P, &pid, "buyer", &["orders:read".into()], None).await.unwrap();
    s.hub.state.federation.map_group(P, &s.conn, "buyers", Some(("buyer", Some(&pid)))).await.unwrap();

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(s.hub.base.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(pid.clone()),
        s.portal.secret.clone().map(ClientSecret::new),
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
    let b = s.hub.browser();
    let res = b.get(url.as_str()).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("/sso/{}?", s.conn)), "organization= goes straight to the IdP: {to}");
    let res = b.get(s.hub.url(&to)).send().await.unwrap();
    let req = parse_redirect(res.headers()["location"].to_str().unwrap());
    assert_eq!(req.acs_url.as_deref(), Some(s.acs.as_str()));
    assert_eq!(req.issuer.as_deref(), Some(s.sp.as_str()));
    assert_eq!(req.destination.as_deref(), Some(IDP_SSO));
    assert!(!req.signed);
    let res = s.post(&b, &s.idp.response_b64(&s.opts(Some(&req), "ann@acme.test")), req.relay_state.as_deref()).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // Back to the authorization request, then to the portal.
    let mut res = res;
    for _ in 0..5 {
        let loc = res.headers()["location"].to_str().unwrap().to_owned();
        if loc.starts_with(REDIRECT) {
            break;
        }
        res = b.get(if loc.starts_with('/') { s.hub.url(&loc) } else { loc }).send().await.unwrap();
        assert_eq!(res.status(), 303);
    }
    let loc = res.headers()["location"].to_str().unwrap();
    let code = url::Url::parse(loc).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let raw = tokens.id_token().unwrap().to_string();
    let idc = tokens.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(idc.email().map(|e| e.as_str()), Some("ann@acme.test"));
    let c = claims(&raw);
    assert_eq!(c["amr"], serde_json::json!(["fed"]));
    assert_eq!(c["idp"], s.conn);
    assert_eq!(c["org"]["slug"], "acme");
    assert_eq!(c["roles"], serde_json::json!(["buyer"]), "the IdP group maps to the role");
    let ann = s.hub.state.accounts.user_by_email("ann@acme.test").await.unwrap().unwrap();
    assert_eq!(ann.name.as_deref(), Some("Ann Acme"));
    let acme = s.hub.state.orgs.find("acme").await.unwrap().unwrap();
    assert_eq!(s.hub.state.stores.orgs.membership(acme.id, ann.id).await.unwrap(), Some(OrgRole::Member));
    // The account page lists the SAML identity.
    let html = b.get(s.hub.url("/account")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"linked-identities\"") && html.contains("Acme SAML"), "{html}");
    // No password yet: the form offers to set one, without asking for a current one.
    assert!(html.contains("id=\"no-password\"") && !html.contains("id=\"current_password\""), "{html}");
    assert!(html.contains("Set a password"));
    // A second sign-in finds the linked account; the portal's refresh still works.
    let b2 = s.hub.browser();
    assert_eq!(s.sign_in_with(&b2, |_| {}).await.status(), 303);
    assert_eq!(s.hub.state.accounts.list(100, 0).await.unwrap().len(), 1);
    let (url, verifier) = auth_url(&s.hub, &s.portal, &[("scope", "openid org"), ("organization", "acme")]);
    let res = b2.get(url).send().await.unwrap();
    let code = crate::oidc_helpers::redirect_params(&res)["code"].clone();
    assert!(exchange(&s.hub, &s.portal, &code, &verifier).await["id_token"].is_string());
}

/// Response signed, assertion signed, both: accepted. Neither: refused. With
/// `want_assertions_signed`, a signed response around an unsigned assertion is refused.
#[tokio::test]
async fn what_must_be_signed() {
    let s = saml(SamlOptions::default()).await;
    for (resp, assertion) in [(true, true), (true, false), (false, true)] {
        let b = s.hub.browser();
        let res = s
            .sign_in_with(&b, |o| {
                o.sign_response = resp;
                o.sign_assertion = assertion;
            })
            .await;
        assert_eq!(res.status(), 303, "response {resp} assertion {assertion}: {}", res.text().await.unwrap());
        assert!(s.signed_in(&b).await);
    }
    let b = s.hub.browser();
    let res = s
        .sign_in_with(&b, |o| {
            o.sign_response = false;
            o.sign_assertion = false;
        })
        .await;
    refused(&s, &b, res, 403).await;

    let strict = saml(SamlOptions { want_assertions_signed: true, ..Default::default() }).await;
    let b = strict.hub.browser();
    let res = strict.sign_in_with(&b, |o| o.sign_assertion = false).await;
    refused(&strict, &b, res, 403).await;
    let b = strict.hub.browser();
    assert_eq!(strict.sign_in_with(&b, |o| o.sign_response = false).await.status(), 303);
}

/// Encrypted assertions to the connection's SP certificate: AES-GCM and AES-CBC, RSA-OAEP;
/// the assertion signed inside, or the response signed around it.
#[tokio::test]
async fn encrypted_assertions_are_decrypted() {
    let s = saml(SamlOptions::default()).await;
    let cert = s.sp_cert(&s.connection().await);
    for enc in [Enc::Aes128Gcm, Enc::Aes256Gcm, Enc::Aes128Cbc, Enc::Aes256Cbc] {
        for (resp, assertion) in [(true, true), (false, true), (true, false)] {
            let b = s.hub.browser();
            let res = s
                .sign_in_with(&b, |o| {
                    o.encrypt_for = Some(cert.clone());
                    o.encryption = enc;
                    o.sign_response = resp;
                    o.sign_assertion = assertion;
                })
                .await;
            assert_eq!(res.status(), 303, "{enc:?} {resp} {assertion}: {}", res.text().await.unwrap());
            assert!(s.signed_in(&b).await);
        }
    }
    // Encrypted for another SP's key: refused.
    let other = TestIdp::new("https://other.test", "https://other.test/sso");
    let b = s.hub.browser();
    let res = s.sign_in_with(&b, |o| o.encrypt_for = Some(other.cert_der.clone())).await;
    refused(&s, &b, res, 403).await;
    // Neither signed (encryption is not authentication).
    let b = s.hub.browser();
    let res = s
        .sign_in_with(&b, |o| {
            o.encrypt_for = Some(cert.clone());
            o.sign_response = false;
            o.sign_assertion = false;
        })
        .await;
    refused(&s, &b, res, 403).await;
}

/// XML Signature Wrapping: every variant is refused, and nobody is signed in (neither the
/// evil subject nor the original one).
#[tokio::test]
async fn xml_signature_wrapping_fails() {
    let s = saml(SamlOptions::default()).await;
    for variant in 1..=8u8 {
        // XSW1–2 wrap the Response's signature, XSW3–8 the Assertion's.
        let signings: &[(bool, bool)] =
            if variant <= 2 { &[(true, false), (true, true)] } else { &[(false, true), (true, true)] };
        for &(resp, assertion) in signings {
            let b = s.hub.browser();
            let req = s.start(&b).await;
            let mut o = s.opts(Some(&req), "ann@acme.test");
            o.sign_response = resp;
            o.sign_assertion = assertion;
            let attacked = xsw(variant, &s.idp.response(&o), "mallory@acme.test");
            let b64 = base64::engine::general_purpose::STANDARD.encode(attacked);
            let res = s.post(&b, &b64, req.relay_state.as_deref()).await;
            assert_eq!(res.status(), 403, "XSW{variant} (response {resp}, assertion {assertion})");
            assert!(!s.signed_in(&b).await);
        }
    }
    assert!(s.hub.state.accounts.user_by_email("mallory@acme.test").await.unwrap().is_none());
}

/// A comment inside the NameID does not truncate it (`c14n` drops comments, so the signature
/// stays valid): such responses are refused; so are DTDs, entities (XXE, expansion) and
/// processing instructions, before any parser with DTD support sees them.
#[tokio::test]
async fn comments_dtds_and_entities_are_refused() {
    let s = saml(SamlOptions::default()).await;
    let b = s.hub.browser();
    let res = s.sign_in_with(&b, |o| {
        o.name_id = "mallory@evil.test.acme.test".into();
        o.name_id_comment = Some("x".into());
    });
    refused(&s, &b, res.await, 403).await;
    for doctype in [
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>",
        "<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\">",
    ] {
        let b = s.hub.browser();
        let res = s.sign_in_xml(&b, |x| with_doctype(&x, doctype)).await;
        refused(&s, &b, res, 403).await;
    }
    let b = s.hub.browser();
    let res = s.sign_in_xml(&b, |x| x.replacen("<saml:Issuer", "<?xml-stylesheet href=\"x\"?><saml:Issuer", 1)).await;
    refused(&s, &b, res, 403).await;
}

/// The bindings: Destination, Audience, Recipient, InResponseTo, Issuer, times (3 minutes of
/// skew at most), bearer confirmation, status.
#[tokio::test]
async fn every_binding_is_checked() {
    let s = saml(SamlOptions::default()).await;
    type Edit = Box<dyn Fn(&mut ResponseOpts)>;
    let cases: Vec<(&str, Edit, u16)> = vec![
        ("wrong Destination", Box::new(|o| o.destination = Some("https://elsewhere.test/acs".into())), 403),
        ("wrong Audience", Box::new(|o| o.audience = Some("https://other-sp.test".into())), 403),
        ("no Audience", Box::new(|o| o.audience = None), 403),
        ("wrong Recipient", Box::new(|o| o.recipient = "https://elsewhere.test/acs".into()), 403),
        ("wrong InResponseTo", Box::new(|o| o.in_response_to = Some("_another".into())), 403),
        ("no InResponseTo", Box::new(|o| o.in_response_to = None), 403),
        ("wrong Issuer", Box::new(|o| o.issuer = Some("https://evil.test".into())), 403),
        ("expired", Box::new(|o| o.not_on_or_after_secs = -200), 403),
        ("not yet valid", Box::new(|o| o.not_before_secs = 400), 403),
        ("issued in the future", Box::new(|o| o.issue_instant_secs = 600), 403),
        (
            "not bearer",
            Box::new(|o| o.confirmation_method = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key".into()),
            403,
        ),
        ("SHA-1", Box::new(|o| o.sha1 = true), 403),
        ("IdP refused", Box::new(|o| o.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".into()), 502),
    ];
    for (what, edit, status) in cases {
        let b = s.hub.browser();
        let res = s.sign_in_with(&b, |o| edit(o)).await;
        assert_eq!(res.status().as_u16(), status, "{what}");
        assert!(!s.signed_in(&b).await, "{what}");
    }
    // Within the skew: accepted.
    let b = s.hub.browser();
    assert_eq!(s.sign_in_with(&b, |o| o.not_on_or_after_secs = -60).await.status(), 303);
}

/// Signed by another organization's IdP key, or by a key of its own not in the metadata:
/// refused. During a rollover the metadata holds both certificates: both are accepted.
#[tokio::test]
async fn only_the_connections_certificates_count() {
    let s = saml(SamlOptions::default()).await;
    let other = TestIdp::new(IDP_ENTITY, IDP_SSO); // same entity id, another key
    let b = s.hub.browser();
    let req = s.start(&b).await;
    let res = s.post(&b, &other.response_b64(&s.opts(Some(&req), "ann@acme.test")), req.relay_state.as_deref()).await;
    refused(&s, &b, res, 403).await;

    // Rollover: a connection whose metadata lists the old and the new certificate.
    let hub = &s.hub;
    let both = s.idp.metadata_xml_with_certs(&[&s.idp.cert_der, &other.cert_der]);
    let c = hub
        .state
        .federation
        .create_saml(P, &["acme".into()], Some("Rollover"), SamlSource::Xml(both), SamlOptions::default())
        .await
        .unwrap();
    let (sp, acs) = (hub.state.federation.sp_entity_id(c.id), hub.state.federation.acs_url(c.id));
    for signer in [&s.idp, &other] {
        let b = hub.browser();
        let res = b.get(hub.url(&format!("/sso/{}?return_to=/account", c.id))).send().await.unwrap();
        let req = parse_redirect(res.headers()["location"].to_str().unwrap());
        let o = ResponseOpts::new("ann@acme.test", Some(&req.id), &acs, &sp);
        let form = [("SAMLResponse", signer.response_b64(&o)), ("RelayState", req.relay_state.clone().unwrap())];
        let res = b.post(&acs).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    }
}

/// The RelayState names a request of this browser, once: replayed, forged, missing, or posted
/// from another browser, the response is refused (400). Unsolicited responses are refused
/// unless the connection allows IdP-initiated sign-in; then each assertion is accepted once.
#[tokio::test]
async fn requests_are_bound_to_the_browser_and_assertions_used_once() {
    let s = saml(SamlOptions::default()).await;
    let b = s.hub.browser();
    let req = s.start(&b).await;
    let resp = s.idp.response_b64(&s.opts(Some(&req), "ann@acme.test"));
    // Another browser posting this browser's response.
    let thief = s.hub.browser();
    s.start(&thief).await; // has a session (and a request) of its own
    refused(&s, &thief, s.post(&thief, &resp, req.relay_state.as_deref()).await, 400).await;
    // The request was taken by that attempt: the real browser now gets 400 too (no second try).
    refused(&s, &b, s.post(&b, &resp, req.relay_state.as_deref()).await, 400).await;
    // Forged and missing RelayState.
    let req = s.start(&b).await;
    let resp = s.idp.response_b64(&s.opts(Some(&req), "ann@acme.test"));
    refused(&s, &b, s.post(&b, &resp, Some("forged")).await, 400).await;
    refused(&s, &b, s.post(&b, &resp, None).await, 400).await;
    // A good one, then the same again.
    let req = s.start(&b).await;
    let resp = s.idp.response_b64(&s.opts(Some(&req), "ann@acme.test"));
    assert_eq!(s.post(&b, &resp, req.relay_state.as_deref()).await.status(), 303);
    let res = s.post(&b, &resp, req.relay_state.as_deref()).await;
    assert_eq!(res.status(), 400, "replayed");
    // Unsolicited: refused by default (a browser without our cookie is first asked to post
    // again from our origin; then refused).
    let b = s.hub.browser();
    let o = s.opts(None, "ann@acme.test");
    let resp = s.idp.response_b64(&o);
    assert_eq!(s.post(&b, &resp, None).await.status(), 200);
    let res = b.post(&s.acs).form(&[("SAMLResponse", resp.as_str()), ("guichet_repost", "1")]).send().await.unwrap();
    refused(&s, &b, res, 400).await;

    // IdP-initiated allowed: accepted once, with no session of ours beforehand.
    let s = saml(SamlOptions { allow_idp_initiated: true, ..Default::default() }).await;
    let o = s.opts(None, "ann@acme.test");
    let resp = s.idp.response_b64(&o);
    let b = s.hub.browser();
    let res = s.post(&b, &resp, Some("https://portal.test/")).await;
    assert!(res.status() == 303 || res.status() == 200, "{}", res.status());
    if res.status() == 200 {
        // No cookie of ours: the page posts the response again from our origin.
        let html = res.text().await.unwrap();
        assert!(html.contains("id=\"form_post\"") && html.contains("guichet_repost"), "{html}");
        let res = b
            .post(&s.acs)
            .form(&[("SAMLResponse", resp.as_str()), ("RelayState", "https://portal.test/"), ("guichet_repost", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/account", "an outside RelayState is not followed");
    }
    assert!(s.signed_in(&b).await);
    let b2 = s.hub.browser();
    let res = b2.post(&s.acs).form(&[("SAMLResponse", resp.as_str()), ("guichet_repost", "1")]).send().await.unwrap();
    assert_eq!(res.status(), 403, "the same assertion twice");
    // An answer to a request (InResponseTo) is not accepted as unsolicited.
    let o = s.opts(None, "ann@acme.test");
    let mut o2 = o.clone();
    o2.in_response_to = Some("_someone_elses".into());
    let res = b2
        .post(&s.acs)
        .form(&[("SAMLResponse", s.idp.response_b64(&o2).as_str()), ("guichet_repost", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// Over 512 KiB: 413 before anything is decoded. Not base64 or not XML: 403.
#[tokio::test]
async fn oversized_and_malformed_responses() {
    let s = saml(SamlOptions::default()).await;
    let b = s.hub.browser();
    // A large response under the limit (ADFS with many groups, encrypted) is fine.
    let groups: Vec<String> = (0..3000).map(|i| format!("CN=group-{i:05},OU=Groups,DC=acme,DC=test")).collect();
    let res = s.sign_in_with(&b, |o| o.attributes.push(("memberOf".into(), groups))).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let b = s.hub.browser();
    let req = s.start(&b).await;
    let big = "A".repeat(600 * 1024);
    refused(&s, &b, s.post(&b, &big, req.relay_state.as_deref()).await, 413).await;
    let req = s.start(&b).await;
    refused(&s, &b, s.post(&b, "%%%not base64", req.relay_state.as_deref()).await, 403).await;
    let req = s.start(&b).await;
    let junk = base64::engine::general_purpose::STANDARD.encode("<not-saml/>");
    refused(&s, &b, s.post(&b, &junk, req.relay_state.as_deref()).await, 403).await;
}

/// Admission: an email outside the organization's verified domains is refused, and no account
/// is created.
#[tokio::test]
async fn only_verified_domains_are_admitted() {
    let s = saml(SamlOptions::default()).await;
    let b = s.hub.browser();
    let res = s.sign_in_with(&b, |o| o.name_id = "eve@elsewhere.test".into()).await;
    refused(&s, &b, res, 403).await;
    assert!(s.hub.state.accounts.user_by_email("eve@elsewhere.test").await.unwrap().is_none());
    // Email from an attribute when the NameID is persistent; subject = the NameID.
    let b = s.hub.browser();
    let res = s
        .sign_in_with(&b, |o| {
            o.name_id = "u-12345".into();
            o.name_id_format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into();
            o.attributes.push(("mail".into(), vec!["carl@acme.test".into()]));
        })
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let carl = s.hub.state.accounts.user_by_email("carl@acme.test").await.unwrap().unwrap();
    let ids = s.hub.state.stores.federation.identities_of(carl.id).await.unwrap();
    assert_eq!(ids[0].subject, "u-12345");
}

/// The SP metadata at the entityID: ACS, signing and encryption certificates; a signed
/// AuthnRequest verifies with that certificate.
#[tokio::test]
async fn sp_metadata_and_signed_requests() {
    let s = saml(SamlOptions { sign_requests: true, ..Default::default() }).await;
    let res = reqwest::get(&s.sp).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/samlmetadata+xml");
    let xml = res.text().await.unwrap();
    assert!(xml.contains(&format!("entityID=\"{}\"", s.sp)), "{xml}");
    assert!(xml.contains(&format!("Location=\"{}\"", s.acs)));
    assert!(xml.contains("use=\"signing\"") && xml.contains("use=\"encryption\""));
    assert!(xml.contains("AuthnRequestsSigned=\"true\""));
    let cert_der = s.sp_cert(&s.connection().await);
    assert!(xml.contains(&base64::engine::general_purpose::STANDARD.encode(&cert_der)));

    let b = s.hub.browser();
    let res = b.get(s.hub.url(&format!("/sso/{}", s.conn))).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    let req = parse_redirect(&to);
    assert!(req.signed);
    // Bindings §3.4.4.1: the signature covers SAMLRequest, RelayState, SigAlg as sent.
    let query = to.split_once('?').unwrap().1;
    let (signed, sig) = query.split_once("&Signature=").unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(url::form_urlencoded::parse(format!("s={sig}").as_bytes()).next().unwrap().1.as_bytes())
        .unwrap();
    let cert = openssl::x509::X509::from_der(&cert_der).unwrap();
    let key = cert.public_key().unwrap();
    let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    v.update(signed.as_bytes()).unwrap();
    assert!(v.verify(&sig).unwrap(), "the AuthnRequest signature verifies with the SP certificate");
    // Unknown connection: 404.
    assert_eq!(reqwest::get(s.hub.url("/saml/nope/metadata")).await.unwrap().status(), 404);
}

/// Metadata by URL: read at creation, fetched again by the refresh; a failed refresh keeps the
/// last good metadata and records why.
#[tokio::test]
async fn metadata_by_url_is_refreshed_and_a_failure_keeps_the_last_good_one() {
    use std::sync::{Arc, Mutex};
    let hub = TestApp::spawn().await;
    acme(&hub).await;
    let idp = TestIdp::new(IDP_ENTITY, IDP_SSO);
    let served: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(Some(idp.metadata_xml())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = served.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/metadata",
            axum::routing::get(move || {
                let body = body.clone();
                async move {
                    match body.lock().unwrap().clone() {
                        Some(b) => (axum::http::StatusCode::OK, b),
                        None => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                    }
                }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let url = format!("http://{addr}/metadata");
    let c = hub
        .state
        .federation
        .create_saml(P, &["acme".into()], None, SamlSource::Url(url.clone()), SamlOptions::default())
        .await
        .unwrap();
    let certs = |c: &guichet::domain::federation::Connection| match &c.config {
        ConnectionConfig::Saml(s) => (s.certs.clone(), s.metadata_error.clone(), s.metadata_url.clone()),
        _ => unreachable!(),
    };
    assert_eq!(certs(&c).2.as_deref(), Some(url.as_str()));
    assert_eq!(c.name, "idp.acme.test");
    // The IdP rolls its certificate: the refresh picks it up.
    let next = TestIdp::new(IDP_ENTITY, IDP_SSO);
    *served.lock().unwrap() = Some(next.metadata_xml());
    hub.state.federation.refresh_saml_metadata().await;
    let c = hub.state.federation.connection(&c.id.to_string()).await.unwrap();
    let (after, err, _) = certs(&c);
    assert_eq!(after, vec![base64::engine::general_purpose::STANDARD.encode(&next.cert_der)]);
    assert!(err.is_none());
    // The metadata server fails: the last good metadata stays, the failure is recorded.
    *served.lock().unwrap() = None;
    hub.state.federation.refresh_saml_metadata().await;
    let c = hub.state.federation.connection(&c.id.to_string()).await.unwrap();
    let (kept, err, _) = certs(&c);
    assert_eq!(kept, after);
    assert!(err.is_some());
    // Bad metadata is refused at creation, with a clear reason.
    for bad in [
        "<x/>",
        "not xml at all <",
        "<!DOCTYPE x><md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>",
    ] {
        let e = hub
            .state
            .federation
            .create_saml(P, &["acme".into()], None, SamlSource::Xml(bad.into()), SamlOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, guichet::federation::FederationError::Invalid(_)), "{e}");
    }
}

/// Why each XSW variant is refused (the structural screen or the signature), checked on the
/// validator itself so that a refusal for an unrelated reason would show.
#[test]
fn xsw_refusals_name_their_reason() {
    use guichet::federation::saml::xml::{validate, Expect, Refusal};
    use samael::crypto::CertificateDer;
    let idp = TestIdp::new(IDP_ENTITY, IDP_SSO);
    let (sp, acs) = ("https://hub.test/saml/c/metadata", "https://hub.test/saml/c/acs");
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let certs = [CertificateDer::from(idp.cert_der.clone())];
    let now = chrono::Utc::now().timestamp();
    let x = Expect {
        idp_entity_id: IDP_ENTITY,
        sp_entity_id: sp,
        acs_url: acs,
        request_id: Some("_req"),
        now,
        want_assertions_signed: false,
        allow_sha1: false,
        certs: &certs,
        sp_key: &key,
    };
    let mut o = ResponseOpts::new("ann@acme.test", Some("_req"), acs, sp);
    let good = idp.response(&o);
    assert!(validate(&good, &x).is_ok());
    let mut reasons = Vec::new();
    for v in 1..=8u8 {
        let signings: &[(bool, bool)] =
            if v <= 2 { &[(true, false), (true, true)] } else { &[(false, true), (true, true)] };
        for &(resp, assertion) in signings {
            o.sign_response = resp;
            o.sign_assertion = assertion;
            let signed = idp.response(&o);
            match validate(&xsw(v, &signed, "mallory@acme.test"), &x) {
                Err(Refusal::Invalid(why)) => reasons.push(format!("XSW{v} ({resp}/{assertion}): {why}")),
                other => panic!("XSW{v} ({resp}/{assertion}) not refused: {other:?}"),
            }
        }
    }
    // Every refusal comes from a check that means something (not a parse accident).
    for r in &reasons {
        assert!(
            [
                "several assertions",
                "an assertion in an unexpected place",
                "a signature in an unexpected place",
                "duplicate IDs",
                "several signatures",
                "signature",
                "not a SAML Response",
                "several root elements",
                "does not cover"
            ]
            .iter()
            .any(|k| r.contains(k)),
            "{r}"
        );
    }
    println!("{}", reasons.join("\n"));
}

/// Two nodes of one service: a request sent by node A is answered at node B's ACS; an assertion
/// accepted by one node is refused by the other (the replay cache is shared: the `ephemeral`
/// table, or Redis when configured).
#[tokio::test]
async fn two_nodes_share_requests_and_the_replay_cache() {
    let s = saml(SamlOptions { allow_idp_initiated: true, ..Default::default() }).await;
    let node_b = s.hub.spawn_sibling().await;
    let b = s.hub.browser();
    let req = s.start(&b).await;
    let resp = s.idp.response_b64(&s.opts(Some(&req), "ann@acme.test"));
    let acs_b = node_b.url(&format!("/saml/{}/acs", s.conn));
    let res = b
        .post(&acs_b)
        .form(&[("SAMLResponse", resp.as_str()), ("RelayState", req.relay_state.as_deref().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // Unsolicited: accepted once by A, refused by B.
    let resp = s.idp.response_b64(&s.opts(None, "ann@acme.test"));
    let form = [("SAMLResponse", resp.as_str()), ("guichet_repost", "1")];
    assert_eq!(s.hub.browser().post(&s.acs).form(&form).send().await.unwrap().status(), 303);
    assert_eq!(node_b.browser().post(&acs_b).form(&form).send().await.unwrap().status(), 403);
}

/// Home-realm discovery to a SAML IdP: the address typed alone on the login page goes to the
/// organization's IdP, and the AuthnRequest names it as the requested subject (the IdP prefills
/// its sign-in); the sign-in then continues.
#[tokio::test]
async fn the_login_page_sends_the_organizations_people_to_their_saml_idp() {
    let s = saml(SamlOptions::default()).await;
    let b = s.hub.browser();
    let html = b.get(s.hub.url("/login")).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let csrf = crate::helpers::form_value(&html, "csrf_token").unwrap();
    let res = b
        .post(s.hub.url("/login"))
        .form(&[("email", "ann@acme.test"), ("password", ""), ("csrf_token", &csrf), ("return_to", "/account")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("/sso/{}?", s.conn)), "{to}");
    let res = b.get(s.hub.url(&to)).send().await.unwrap();
    let req = parse_redirect(res.headers()["location"].to_str().unwrap());
    assert!(
        req.xml.contains("<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">ann@acme.test</saml:NameID></saml:Subject>"),
        "{}",
        req.xml
    );
    let res = s.post(&b, &s.idp.response_b64(&s.opts(Some(&req), "ann@acme.test")), req.relay_state.as_deref()).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account");
    assert!(s.signed_in(&b).await);
    // A portal asking for a fresh sign-in (prompt=login, max_age): ForceAuthn at the IdP.
    let res = b.get(s.hub.url(&format!("/sso/{}?prompt=login", s.conn))).send().await.unwrap();
    let req = parse_redirect(res.headers()["location"].to_str().unwrap());
    assert!(req.xml.contains("ForceAuthn=\"true\""), "{}", req.xml);
}
