//! The fuzz targets' committed inputs, replayed on stable in the normal test run
//! (docs/FUZZING.md): every file of `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/` goes
//! through the same `guichet::fuzzing` function the cargo-fuzz target calls, and must not panic.
//! Seeds named `ok-*` must be accepted and `bad-*` refused: the proof that each target reaches
//! Guichet's deep checks (a valid signed SAML response passes signature and assertion checks, a
//! signed client assertion authenticates its client...) rather than refusing everything early.
//!
//! `cargo test --test fuzz_regressions -- --ignored regenerate_seeds` writes the generated seeds
//! again (signed SAML responses, signed tokens), and the fixed keys first when they are missing.
//! `FUZZ_SEEDS_VERBOSE=1` prints what each seed got.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use guichet::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (dot-files skipped).
fn files(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Every seed and regression of `target` through `checked`; `ok-*` seeds accepted, `bad-*`
/// refused, at least one of each.
fn replay<T: Debug, E: Debug>(target: &str, checked: impl Fn(&[u8]) -> Result<T, E>) {
    let seeds = files("seeds", target);
    assert!(seeds.iter().any(|(n, _)| n.starts_with("ok-")), "{target}: no ok-* seed");
    assert!(seeds.iter().any(|(n, _)| n.starts_with("bad-")), "{target}: no bad-* seed");
    for (name, data) in &seeds {
        let got = checked(data);
        if std::env::var_os("FUZZ_SEEDS_VERBOSE").is_some() {
            eprintln!("{target}/{name}: {got:?}");
        }
        if name.starts_with("ok-") {
            assert!(got.is_ok(), "{target}/{name} should be accepted: {got:?}");
        } else if name.starts_with("bad-") {
            assert!(got.is_err(), "{target}/{name} should be refused: {got:?}");
        }
    }
    for (_, data) in files("regressions", target) {
        let _ = checked(&data);
    }
}

#[test]
fn saml_response() {
    replay("saml_response", fuzzing::saml_response_checked);
    // What the valid seed carries comes out of the mapping.
    let ok = std::fs::read(fuzz_dir().join("seeds/saml_response/ok-signed-response-and-assertion.xml")).unwrap();
    let id = fuzzing::saml_response_checked(&ok).unwrap();
    assert_eq!(id.subject, "ann@acme.example");
    assert_eq!(id.email.as_deref(), Some("ann@acme.example"));
    assert_eq!(id.groups, ["admins", "staff"]);
}

#[test]
fn jws() {
    use fuzzing::JwsAccepted::*;
    replay("jws", fuzzing::jws_checked);
    let accepted =
        |name: &str| fuzzing::jws_checked(&std::fs::read(fuzz_dir().join("seeds/jws").join(name)).unwrap()).unwrap();
    assert_eq!(accepted("ok-id-token-es256.jwt"), [IdToken]);
    assert_eq!(accepted("ok-access-token.jwt"), [AccessToken]);
    assert_eq!(accepted("ok-logout-token.jwt"), [LogoutToken]);
    // Single use: the seed was accepted once by replay() above.
    let again =
        fuzzing::jws_checked(&std::fs::read(fuzz_dir().join("seeds/jws/ok-client-assertion-rs256.jwt")).unwrap());
    assert!(again.unwrap_err().contains("jti already used"));
}

#[test]
fn callback_url() {
    replay("callback_url", |d| {
        fuzzing::callback_url_checked(d)
            .and_then(|v| if v.any() { Ok(v) } else { Err(v) }.map_err(|v| format!("{v:?}")))
    });
    let v = fuzzing::callback_url_checked(b"http://127.0.0.1/callback\nhttp://127.0.0.1:51004/callback").unwrap();
    assert!(v.matches_native && !v.matches_web && !v.public);
    let v = fuzzing::callback_url_checked(b"https://hooks.acme.example/guichet").unwrap();
    assert!(v.public && v.redirect_web && v.registration && v.matches_web);
}

#[test]
fn authorize_request() {
    replay("authorize_request", fuzzing::authorize_request_checked);
    let hinted = std::fs::read(fuzz_dir().join("seeds/authorize_request/ok-id-token-hint.txt")).unwrap();
    let req = fuzzing::authorize_request_checked(&hinted).unwrap();
    assert_eq!(req.hint_sub.as_deref(), Some("0190a0a0-0000-7000-8000-000000000a11"));
}

#[test]
fn config() {
    replay("config", fuzzing::config_checked);
}

// ------------------------------------------------------------------------ seed generation

mod generate {
    use std::sync::Arc;

    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use guichet::domain::{Clock, SigningAlg, UnixTime};
    use guichet::fuzzing::*;
    use josekit::jwk::Jwk;
    use josekit::jws::JwsSigner;
    use openssl::pkey::PKey;
    use samael::crypto::{Crypto, CryptoProvider};
    use serde_json::json;

    use super::fuzz_dir;

    #[derive(Debug)]
    struct At(i64);
    impl Clock for At {
        fn now(&self) -> UnixTime {
            UnixTime(self.0)
        }
    }

    const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
    const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
    const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
    const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
    const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

    fn read(rel: &str) -> String {
        std::fs::read_to_string(fuzz_dir().join(rel)).unwrap()
    }

    fn write(rel: &str, body: impl AsRef<[u8]>) {
        let p = fuzz_dir().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn time(offset: i64) -> String {
        UnixTime(NOW + offset).rfc3339()
    }

    /// The fixed keys, made once: Guichet's signing keys (key files) and the JWT client's keys.
    fn keys_if_missing() {
        if read("keys/oidc/rs256.json").trim().is_empty() {
            let dir = tempfile::tempdir().unwrap();
            let keys = std::path::Path::new(dir.path()).join("k");
            guichet::oidc::KeySet::load_or_init(&keys, Arc::new(At(NOW - 30 * 86_400)), 86_400).unwrap();
            for e in std::fs::read_dir(&keys).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let alg = name.split('-').nth(1).unwrap().to_owned();
                write(&format!("keys/oidc/{alg}.json"), std::fs::read(keys.join(&name)).unwrap());
            }
        }
        if read("keys/client-jwks.public.json").trim().is_empty() {
            use josekit::jwk::alg::ed::EdCurve;
            use josekit::jws::{EdDSA, ES256, RS256};
            let mut private = Vec::new();
            let mut public = Vec::new();
            for (kid, mut jwk) in [
                ("client-rs256", RS256.generate_key_pair(2048).unwrap().to_jwk_key_pair()),
                ("client-es256", ES256.generate_key_pair().unwrap().to_jwk_key_pair()),
                ("client-eddsa", EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap().to_jwk_key_pair()),
            ] {
                jwk.set_key_id(kid);
                jwk.set_key_use("sig");
                let mut public_jwk = jwk.to_public_key().unwrap();
                public_jwk.set_key_id(kid);
                public_jwk.set_algorithm(jwk.algorithm().unwrap());
                private.push(serde_json::Value::Object(jwk.as_ref().clone()));
                public.push(serde_json::Value::Object(public_jwk.as_ref().clone()));
            }
            write("keys/client-jwks.json", serde_json::to_string_pretty(&json!({ "keys": private })).unwrap());
            write("keys/client-jwks.public.json", serde_json::to_string_pretty(&json!({ "keys": public })).unwrap());
        }
    }

    // ---- SAML

    fn cert_b64(pem_rel: &str) -> String {
        let der = openssl::x509::X509::from_pem(read(pem_rel).as_bytes()).unwrap().to_der().unwrap();
        STANDARD.encode(der)
    }

    fn signature(id: &str) -> String {
        format!(
            r##"<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC}"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="{DS}enveloped-signature"/><ds:Transform Algorithm="{EXC}"/></ds:Transforms><ds:DigestMethod Algorithm="{XENC}sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##,
            cert_b64("keys/idp.crt.pem")
        )
    }

    fn sign(xml: &str) -> String {
        let key = PKey::private_key_from_pem(read("keys/idp.key.pem").as_bytes()).unwrap();
        let signed = Crypto::sign_xml(xml, &key.private_key_to_der().unwrap()).unwrap();
        match signed.strip_prefix("<?xml") {
            Some(rest) => rest.split_once("?>").unwrap().1.trim_start().to_owned(),
            None => signed,
        }
    }

    #[derive(Clone)]
    struct Shape {
        sign_response: bool,
        sign_assertion: bool,
        in_response_to: bool,
        audience: &'static str,
        expires_in: i64,
        status: &'static str,
        /// AES content cipher URI of an encrypted assertion.
        encrypt: Option<&'static str>,
    }

    const VALID: Shape = Shape {
        sign_response: true,
        sign_assertion: true,
        in_response_to: true,
        audience: SAML_SP_ENTITY_ID,
        expires_in: 300,
        status: "urn:oasis:names:tc:SAML:2.0:status:Success",
        encrypt: None,
    };

    fn response(n: u32, s: &Shape) -> String {
        let (rid, aid) = (format!("_fuzz-response-{n:04}"), format!("_fuzz-assertion-{n:04}"));
        let irt = if s.in_response_to { format!(r#" InResponseTo="{SAML_REQUEST_ID}""#) } else { String::new() };
        let (t0, nb, na) = (time(0), time(-60), time(s.expires_in));
        let sig = if s.sign_assertion { signature(&aid) } else { String::new() };
        let mut assertion = format!(
            r#"<saml:Assertion xmlns:saml="{SAML}" ID="{aid}" Version="2.0" IssueInstant="{t0}"><saml:Issuer>{SAML_IDP_ENTITY_ID}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">ann@acme.example</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{na}" Recipient="{SAML_ACS_URL}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{na}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{t0}" SessionIndex="{aid}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>ann@acme.example</saml:AttributeValue></saml:Attribute><saml:Attribute Name="displayName"><saml:AttributeValue>Ann Example</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups"><saml:AttributeValue>admins</saml:AttributeValue><saml:AttributeValue>staff</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
            aud = s.audience,
        );
        if s.sign_assertion {
            assertion = sign(&assertion);
        }
        if let Some(alg) = s.encrypt {
            assertion = format!("<saml:EncryptedAssertion>{}</saml:EncryptedAssertion>", encrypt(&assertion, alg));
        }
        if s.status != VALID.status {
            assertion = String::new();
        }
        let sig = if s.sign_response { signature(&rid) } else { String::new() };
        let xml = format!(
            r#"<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{rid}" Version="2.0" IssueInstant="{t0}" Destination="{SAML_ACS_URL}"{irt}><saml:Issuer>{SAML_IDP_ENTITY_ID}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertion}</samlp:Response>"#,
            status = s.status,
        );
        if s.sign_response {
            sign(&xml)
        } else {
            xml
        }
    }

    /// XML Encryption of `plain` for the SP certificate: RSA-OAEP (SHA-1, MGF1-SHA-1) key
    /// transport, AES-GCM (IV, ciphertext, tag) or AES-CBC (IV, ciphertext, ISO 10126 padding).
    fn encrypt(plain: &str, alg: &str) -> String {
        use openssl::symm::{encrypt_aead, Cipher, Crypter, Mode};
        let (cipher, gcm) = match alg.rsplit('#').next().unwrap() {
            "aes128-gcm" => (Cipher::aes_128_gcm(), true),
            "aes256-cbc" => (Cipher::aes_256_cbc(), false),
            other => panic!("{other}"),
        };
        let mut key = vec![0; cipher.key_len()];
        openssl::rand::rand_bytes(&mut key).unwrap();
        let data = if gcm {
            let mut iv = vec![0; 12];
            openssl::rand::rand_bytes(&mut iv).unwrap();
            let mut tag = [0; 16];
            let ct = encrypt_aead(cipher, &key, Some(&iv), &[], plain.as_bytes(), &mut tag).unwrap();
            [iv, ct, tag.to_vec()].concat()
        } else {
            let mut iv = vec![0; 16];
            openssl::rand::rand_bytes(&mut iv).unwrap();
            let mut padded = plain.as_bytes().to_vec();
            let pad = 16 - padded.len() % 16;
            padded.extend(std::iter::repeat_n(0u8, pad - 1));
            padded.push(pad as u8);
            let mut c = Crypter::new(cipher, Mode::Encrypt, &key, Some(&iv)).unwrap();
            c.pad(false);
            let mut ct = vec![0; padded.len() + 16];
            let n = c.update(&padded, &mut ct).unwrap();
            let m = c.finalize(&mut ct[n..]).unwrap();
            ct.truncate(n + m);
            [iv, ct].concat()
        };
        let rsa = openssl::x509::X509::from_pem(read("keys/sp.crt.pem").as_bytes())
            .unwrap()
            .public_key()
            .unwrap()
            .rsa()
            .unwrap();
        let mut wrapped = vec![0; rsa.size() as usize];
        let n = rsa.public_encrypt(&key, &mut wrapped, openssl::rsa::Padding::PKCS1_OAEP).unwrap();
        wrapped.truncate(n);
        format!(
            r#"<xenc:EncryptedData xmlns:xenc="{XENC}" Type="{XENC}Element"><xenc:EncryptionMethod Algorithm="{alg}"/><ds:KeyInfo xmlns:ds="{DS}"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{XENC}rsa-oaep-mgf1p"><ds:DigestMethod Algorithm="{DS}sha1"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
            STANDARD.encode(wrapped),
            STANDARD.encode(data)
        )
    }

    fn saml_seeds() {
        let seed = |name: &str, xml: String| write(&format!("seeds/saml_response/{name}"), xml);
        let both = response(1, &VALID);
        seed("ok-signed-response-and-assertion.xml", both.clone());
        seed("ok-signed-assertion.xml", response(2, &Shape { sign_response: false, ..VALID }));
        seed("ok-signed-response.xml", response(3, &Shape { sign_assertion: false, ..VALID }));
        seed("ok-idp-initiated.xml", response(4, &Shape { in_response_to: false, ..VALID }));
        seed(
            "ok-encrypted-cbc-in-signed-response.xml",
            response(
                5,
                &Shape { sign_assertion: false, encrypt: Some("http://www.w3.org/2001/04/xmlenc#aes256-cbc"), ..VALID },
            ),
        );
        seed(
            "ok-encrypted-gcm-signed-assertion.xml",
            response(
                6,
                &Shape { sign_response: false, encrypt: Some("http://www.w3.org/2009/xmlenc11#aes128-gcm"), ..VALID },
            ),
        );
        // The HTTP-POST form value: base64 in 76-character lines.
        let b64 = STANDARD.encode(&both);
        let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
        seed("ok-posted-base64.txt", lines.join("\r\n"));
        seed("bad-unsigned.xml", response(7, &Shape { sign_response: false, sign_assertion: false, ..VALID }));
        // Encryption is not authentication: refused once decrypted.
        seed(
            "bad-encrypted-cbc-unsigned.xml",
            response(
                12,
                &Shape {
                    sign_response: false,
                    sign_assertion: false,
                    encrypt: Some("http://www.w3.org/2001/04/xmlenc#aes256-cbc"),
                    ..VALID
                },
            ),
        );
        seed("bad-wrong-audience.xml", response(8, &Shape { audience: "https://sp.other.example", ..VALID }));
        seed("bad-expired.xml", response(9, &Shape { expires_in: -3600, ..VALID }));
        seed(
            "bad-status-requester.xml",
            response(10, &Shape { status: "urn:oasis:names:tc:SAML:2.0:status:Requester", ..VALID }),
        );
        seed("bad-tampered-name-id.xml", both.replace(">ann@acme.example<", ">eve@acme.example<"));
        // XML Signature Wrapping: an unsigned evil assertion beside the signed one.
        let evil = response(11, &Shape { sign_response: false, sign_assertion: false, ..VALID });
        let evil_assertion = &evil[evil.find("<saml:Assertion").unwrap()..evil.find("</samlp:Response>").unwrap()];
        let evil_assertion = evil_assertion.replace("_fuzz-assertion-0011", "_evil").replace("ann@", "eve@");
        seed(
            "bad-xsw-second-assertion.xml",
            both.replace("</samlp:Response>", &format!("{evil_assertion}</samlp:Response>")),
        );
        seed(
            "bad-comment-in-name-id.xml",
            both.replace(">ann@acme.example<", ">ann@acme.example<!---->.evil.example<"),
        );
        seed("bad-doctype.xml", format!("<!DOCTYPE r [<!ENTITY e \"x\">]>{both}"));
    }

    // ---- JWS

    fn keyset() -> guichet::oidc::KeySet {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("k");
        std::fs::create_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
        for alg in ["rs256", "es256", "eddsa"] {
            let p = keys.join(format!("sig-{alg}-fuzz.json"));
            std::fs::write(&p, read(&format!("keys/oidc/{alg}.json"))).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let set = guichet::oidc::KeySet::load_or_init(&keys, Arc::new(At(NOW)), 86_400).unwrap();
        std::mem::forget(dir); // removed with the process' temp files; the set is loaded
        set
    }

    fn ours(keys: &guichet::oidc::KeySet, alg: SigningAlg, typ: &str, claims: serde_json::Value) -> String {
        guichet::oidc::jwt::encode(&keys.signing_key(alg).unwrap(), typ, &claims).unwrap()
    }

    /// A client assertion signed with the JWT client's key `kid`.
    fn client_signed(kid: &str, header: serde_json::Value, claims: serde_json::Value) -> String {
        use josekit::jws::{EdDSA, ES256, RS256};
        let jwks: serde_json::Value = serde_json::from_str(&read("keys/client-jwks.json")).unwrap();
        let map = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap();
        let jwk = Jwk::from_map(map.as_object().unwrap().clone()).unwrap();
        let signer: Box<dyn JwsSigner> = match kid {
            "client-rs256" => Box::new(RS256.signer_from_jwk(&jwk).unwrap()),
            "client-es256" => Box::new(ES256.signer_from_jwk(&jwk).unwrap()),
            _ => Box::new(EdDSA.signer_from_jwk(&jwk).unwrap()),
        };
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn assertion_claims(jti: &str, exp: i64) -> serde_json::Value {
        json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": ISSUER, "exp": NOW + exp, "iat": NOW, "jti": jti})
    }

    fn jws_seeds(keys: &guichet::oidc::KeySet) -> String {
        let seed = |name: &str, t: String| write(&format!("seeds/jws/{name}"), t);
        let sub = "0190a0a0-0000-7000-8000-000000000a11";
        let id = |alg| {
            ours(
                keys,
                alg,
                "JWT",
                json!({"iss": ISSUER, "sub": sub, "aud": WEB_CLIENT, "exp": NOW + 300, "iat": NOW, "auth_time": NOW - 10, "nonce": "n-0S6_WzA2Mj", "sid": "s1"}),
            )
        };
        let id_rs = id(SigningAlg::RS256);
        seed("ok-id-token-rs256.jwt", id_rs.clone());
        seed("ok-id-token-es256.jwt", id(SigningAlg::ES256));
        seed("ok-id-token-eddsa.jwt", id(SigningAlg::EdDSA));
        seed(
            "ok-access-token.jwt",
            ours(
                keys,
                SigningAlg::ES256,
                "at+jwt",
                json!({"iss": ISSUER, "sub": sub, "aud": ISSUER, "client_id": WEB_CLIENT, "scope": "openid profile", "exp": NOW + 300, "iat": NOW, "jti": "at-1"}),
            ),
        );
        seed(
            "ok-logout-token.jwt",
            ours(
                keys,
                SigningAlg::RS256,
                "logout+jwt",
                json!({"iss": ISSUER, "sub": sub, "aud": WEB_CLIENT, "iat": NOW, "jti": "lt-1", "sid": "s1", "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
            ),
        );
        for (i, kid, alg) in [(1, "client-rs256", "RS256"), (2, "client-es256", "ES256"), (3, "client-eddsa", "EdDSA")]
        {
            let t = client_signed(kid, json!({"alg": alg, "kid": kid}), assertion_claims(&format!("jti-{i}"), 300));
            seed(&format!("ok-client-assertion-{}.jwt", alg.to_ascii_lowercase()), t);
        }
        seed(
            "ok-client-assertion-token-endpoint-aud.jwt",
            client_signed(
                "client-es256",
                json!({"alg": "ES256"}),
                json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": [format!("{ISSUER}/token")], "exp": NOW + 60, "jti": "jti-4"}),
            ),
        );
        let (h, rest) = id_rs.split_once('.').unwrap();
        let (p, _) = rest.split_once('.').unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        seed("bad-alg-none.jwt", format!("{none_header}.{p}."));
        // HS256 "signed" with the RSA public key as the HMAC secret (algorithm confusion).
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        let hs_header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": header["kid"], "typ": "JWT"}).to_string());
        let jwks = keys.jwks();
        let public = jwks["keys"].as_array().unwrap().iter().find(|k| k["kty"] == "RSA").unwrap().to_string();
        let hs = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(public.as_bytes()).unwrap();
            mac.update(format!("{hs_header}.{p}").as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        };
        seed("bad-alg-confusion-hs256.jwt", format!("{hs_header}.{p}.{hs}"));
        let evil_payload = URL_SAFE_NO_PAD.encode(
            json!({"iss": ISSUER, "sub": "0190a0a0-0000-7000-8000-00000000e711", "aud": WEB_CLIENT}).to_string(),
        );
        let sig = id_rs.rsplit('.').next().unwrap();
        seed("bad-tampered-payload.jwt", format!("{h}.{evil_payload}.{sig}"));
        let unknown = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "not-a-key", "typ": "JWT"}).to_string());
        seed("bad-unknown-kid.jwt", format!("{unknown}.{p}.{sig}"));
        seed(
            "bad-client-assertion-expired.jwt",
            client_signed(
                "client-rs256",
                json!({"alg": "RS256", "kid": "client-rs256"}),
                assertion_claims("jti-5", -10),
            ),
        );
        seed(
            "bad-client-assertion-too-long.jwt",
            client_signed(
                "client-rs256",
                json!({"alg": "RS256", "kid": "client-rs256"}),
                assertion_claims("jti-6", 3600),
            ),
        );
        seed(
            "bad-client-assertion-other-audience.jwt",
            client_signed(
                "client-eddsa",
                json!({"alg": "EdDSA", "kid": "client-eddsa"}),
                json!({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": [ISSUER, "https://rp.other.example"], "exp": NOW + 60, "jti": "jti-7"}),
            ),
        );
        seed(
            "bad-client-assertion-wrong-alg-for-key.jwt",
            client_signed(
                "client-es256",
                json!({"alg": "RS256", "kid": "client-es256"}),
                assertion_claims("jti-8", 300),
            ),
        );
        seed("bad-not-a-jwt.txt", "eyJhbGciOiJSUzI1NiJ9..".to_owned());
        id_rs
    }

    fn authorize_seeds(id_token: &str) {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", WEB_CLIENT)
            .append_pair("redirect_uri", "https://app.fuzz.example/cb")
            .append_pair("scope", "openid profile")
            .append_pair("state", "af0ifjsldkj")
            .append_pair("prompt", "none")
            .append_pair("id_token_hint", id_token)
            .finish();
        write("seeds/authorize_request/ok-id-token-hint.txt", q);
    }

    #[test]
    #[ignore = "rewrites fuzz/seeds (run by hand, see the file's doc)"]
    fn regenerate_seeds() {
        keys_if_missing();
        saml_seeds();
        let keys = keyset();
        let id_token = jws_seeds(&keys);
        authorize_seeds(&id_token);
    }
}
