//! Test-side SAML 2.0 identity provider: what an organization's IdP sends to Guichet (the SP).
//!
//! `TestIdp` builds `samlp:Response`s, signs them with xmlsec (through samael's
//! `Crypto::sign_xml`) and encrypts assertions for the SP; `parse_redirect` reads the SP's
//! HTTP-Redirect AuthnRequest; `xsw` produces the eight XML Signature Wrapping attacks of
//! Somorovsky et al., "On Breaking SAML" (USENIX Security 2012), as SAML Raider names them.
//!
//! Signing follows real IdPs: the Assertion is signed as a standalone document, then (optionally)
//! comment-injected and encrypted, embedded in the Response, and the Response is signed last.
//! Each `ds:Signature` template sits right after its element's `Issuer`, so `sign_xml` (which
//! signs the first template in document order) picks the enclosing element's. Exclusive c14n
//! everywhere. The XML is written compactly (no indentation) so string surgery stays simple.

use std::io::Read;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{SecondsFormat, TimeDelta, Utc};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rand::rand_bytes;
use openssl::rsa::{Padding, Rsa};
use openssl::symm::{encrypt_aead, Cipher, Crypter, Mode};
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{Crypto, CryptoProvider};

const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// IDs given to the attacker's copies by `xsw` (SAML Raider's names).
pub const EVIL_RESPONSE_ID: &str = "_evil_response_ID";
pub const EVIL_ASSERTION_ID: &str = "_evil_assertion_ID";

/// An upstream IdP: entity id, SSO URL and an RSA-2048 key with a self-signed certificate.
pub struct TestIdp {
    pub entity_id: String,
    pub sso_url: String,
    pub cert_der: Vec<u8>,
    key: PKey<Private>,
}

/// Content encryption of an `EncryptedAssertion`; the key is always RSA-OAEP (mgf1p, SHA-1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enc {
    #[default]
    Aes128Gcm,
    Aes256Gcm,
    Aes128Cbc,
    Aes256Cbc,
}

/// What to put in a Response; `ResponseOpts::new` gives a valid one, tests then break one field.
#[derive(Clone, Debug)]
pub struct ResponseOpts {
    /// On the Response and on SubjectConfirmationData.
    pub in_response_to: Option<String>,
    /// Response@Destination (the ACS URL).
    pub destination: Option<String>,
    /// SubjectConfirmationData@Recipient (the ACS URL).
    pub recipient: String,
    /// AudienceRestriction/Audience (the SP entity id); `None`: no AudienceRestriction.
    pub audience: Option<String>,
    /// Issuer of the Response and the Assertion; `None`: the IdP's entity id.
    pub issuer: Option<String>,
    pub name_id: String,
    pub name_id_format: String,
    pub attributes: Vec<(String, Vec<String>)>,
    /// Conditions@NotBefore = now + this.
    pub not_before_secs: i64,
    /// Conditions and SubjectConfirmationData NotOnOrAfter = now + this.
    pub not_on_or_after_secs: i64,
    /// IssueInstant (Response, Assertion) and AuthnInstant = now + this.
    pub issue_instant_secs: i64,
    /// `None`: "_" + 32 random hex digits.
    pub assertion_id: Option<String>,
    pub status: String,
    pub confirmation_method: String,
    pub sign_response: bool,
    pub sign_assertion: bool,
    /// rsa-sha1 + sha1 digests instead of rsa-sha256 + sha256.
    pub sha1: bool,
    /// SP certificate (DER): send the (signed) assertion as an EncryptedAssertion for it.
    pub encrypt_for: Option<Vec<u8>>,
    pub encryption: Enc,
    /// Inserted as `<!--comment-->` into the NameID text after signing (see `comment_at`).
    pub name_id_comment: Option<String>,
}

impl ResponseOpts {
    /// A valid, doubly signed, unencrypted response for `name_id` (email format).
    pub fn new(name_id: &str, in_response_to: Option<&str>, acs_url: &str, sp_entity_id: &str) -> Self {
        ResponseOpts {
            in_response_to: in_response_to.map(str::to_owned),
            destination: Some(acs_url.to_owned()),
            recipient: acs_url.to_owned(),
            audience: Some(sp_entity_id.to_owned()),
            issuer: None,
            name_id: name_id.to_owned(),
            name_id_format: EMAIL.to_owned(),
            attributes: Vec::new(),
            not_before_secs: -60,
            not_on_or_after_secs: 300,
            issue_instant_secs: 0,
            assertion_id: None,
            status: SUCCESS.to_owned(),
            confirmation_method: BEARER.to_owned(),
            sign_response: true,
            sign_assertion: true,
            sha1: false,
            encrypt_for: None,
            encryption: Enc::default(),
            name_id_comment: None,
        }
    }
}

impl TestIdp {
    /// RSA-2048 key and a self-signed certificate (CN = the entity id's host, valid from a day
    /// ago for ten years), e.g. `new("https://idp.acme.test/saml", "https://idp.acme.test/sso")`.
    pub fn new(entity_id: &str, sso_url: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let host = url::Url::parse(entity_id).ok().and_then(|u| u.host_str().map(str::to_owned));
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", host.as_deref().unwrap_or("test-idp")).unwrap();
        let name = name.build();
        let serial = BigNum::from_u32(rand::random::<u32>() >> 1).unwrap();
        let now = Utc::now().timestamp();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap()).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::from_unix(now - 86_400).unwrap()).unwrap();
        cert.set_not_after(&Asn1Time::from_unix(now + 10 * 365 * 86_400).unwrap()).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        TestIdp {
            entity_id: entity_id.to_owned(),
            sso_url: sso_url.to_owned(),
            cert_der: cert.build().to_der().unwrap(),
            key,
        }
    }

    /// The certificate as PEM (for admin APIs, or `xmlsec1 --pubkey-cert-pem`).
    pub fn cert_pem(&self) -> String {
        let pem = X509::from_der(&self.cert_der).unwrap().to_pem().unwrap();
        String::from_utf8(pem).unwrap()
    }

    /// IdP metadata: signing certificate, emailAddress NameIDFormat, SSO over Redirect and POST.
    pub fn metadata_xml(&self) -> String {
        self.metadata_xml_with_certs(&[&self.cert_der])
    }

    /// Metadata listing several signing certificates (key rollover).
    pub fn metadata_xml_with_certs(&self, certs: &[&[u8]]) -> String {
        let keys: String = certs
            .iter()
            .map(|c| {
                format!(
                    r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                    B64.encode(c)
                )
            })
            .collect();
        let sso = esc(&self.sso_url);
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="{DS}" entityID="{}"><md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="{SAMLP}">{keys}<md:NameIDFormat>{EMAIL}</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{sso}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            esc(&self.entity_id)
        )
    }

    /// Signs the first `ds:Signature` template of `xml` (in document order) with this IdP's key;
    /// returns the document without its XML declaration.
    pub fn sign(&self, xml: &str) -> String {
        let signed = Crypto::sign_xml(xml, &self.key.private_key_to_der().unwrap()).unwrap();
        strip_decl(&signed).to_owned()
    }

    /// A `ds:Signature` template for the element with `ID="ref_id"`, carrying this certificate.
    pub fn signature_template(&self, ref_id: &str, sha1: bool) -> String {
        let (sig, digest) = if sha1 {
            (format!("{DS}rsa-sha1"), format!("{DS}sha1"))
        } else {
            ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256".to_owned(), format!("{XENC}sha256"))
        };
        format!(
            r##"<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{sig}"/><ds:Reference URI="#{ref_id}"><ds:Transforms><ds:Transform Algorithm="{DS}enveloped-signature"/><ds:Transform Algorithm="{EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##,
            B64.encode(&self.cert_der)
        )
    }

    /// The `samlp:Response` per `o`, signed as asked (no XML declaration).
    pub fn response(&self, o: &ResponseOpts) -> String {
        let at = |secs: i64| (Utc::now() + TimeDelta::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let (issued, not_before, not_after) =
            (at(o.issue_instant_secs), at(o.not_before_secs), at(o.not_on_or_after_secs));
        let issuer = esc(o.issuer.as_deref().unwrap_or(&self.entity_id));
        let in_response_to = o.in_response_to.as_deref().map(|v| format!(r#" InResponseTo="{}""#, esc(v)));
        let in_response_to = in_response_to.unwrap_or_default();

        let id = o.assertion_id.clone().unwrap_or_else(random_id);
        let audience = o.audience.as_deref().map(|a| {
            format!("<saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>", esc(a))
        });
        let attributes: String = o
            .attributes
            .iter()
            .map(|(name, values)| {
                let values: String = values
                    .iter()
                    .map(|v| format!("<saml:AttributeValue>{}</saml:AttributeValue>", esc(v)))
                    .collect();
                format!(
                    r#"<saml:Attribute Name="{}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">{values}</saml:Attribute>"#,
                    esc(name)
                )
            })
            .collect();
        let attributes = if attributes.is_empty() {
            attributes
        } else {
            format!("<saml:AttributeStatement>{attributes}</saml:AttributeStatement>")
        };
        let mut assertion = format!(
            r#"<saml:Assertion xmlns:saml="{SAML}" xmlns:ds="{DS}" ID="{id}" Version="2.0" IssueInstant="{issued}"><saml:Issuer>{issuer}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="{format}">{name_id}</saml:NameID><saml:SubjectConfirmation Method="{method}"><saml:SubjectConfirmationData{in_response_to} NotOnOrAfter="{not_after}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{not_before}" NotOnOrAfter="{not_after}">{audience}</saml:Conditions><saml:AuthnStatement AuthnInstant="{issued}" SessionIndex="{id}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>{attributes}</saml:Assertion>"#,
            sig = if o.sign_assertion { self.signature_template(&id, o.sha1) } else { String::new() },
            format = esc(&o.name_id_format),
            name_id = esc(&o.name_id),
            method = esc(&o.confirmation_method),
            recipient = esc(&o.recipient),
            audience = audience.unwrap_or_default(),
        );
        if o.sign_assertion {
            assertion = self.sign(&assertion);
        }
        if let Some(comment) = &o.name_id_comment {
            assertion = inject_comment(&assertion, &o.name_id, comment);
        }
        if let Some(sp_cert) = &o.encrypt_for {
            assertion = format!(
                "<saml:EncryptedAssertion>{}</saml:EncryptedAssertion>",
                encrypt(&assertion, sp_cert, o.encryption)
            );
        }

        let rid = random_id();
        let destination = o.destination.as_deref().map(|d| format!(r#" Destination="{}""#, esc(d)));
        let response = format!(
            r#"<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{rid}" Version="2.0" IssueInstant="{issued}"{destination}{in_response_to}><saml:Issuer>{issuer}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertion}</samlp:Response>"#,
            destination = destination.unwrap_or_default(),
            sig = if o.sign_response { self.signature_template(&rid, o.sha1) } else { String::new() },
            status = esc(&o.status),
        );
        if o.sign_response {
            self.sign(&response)
        } else {
            response
        }
    }

    /// base64 of `response()`: the SAMLResponse form field of the HTTP-POST binding.
    pub fn response_b64(&self, o: &ResponseOpts) -> String {
        B64.encode(self.response(o))
    }
}

/// `xenc:EncryptedData` (Type Element) of `plaintext` for the holder of `sp_cert_der`; the
/// content key travels in `ds:KeyInfo/xenc:EncryptedKey` (RSA-OAEP, SHA-1 and MGF1-SHA-1).
fn encrypt(plaintext: &str, sp_cert_der: &[u8], enc: Enc) -> String {
    let (cipher, uri) = match enc {
        Enc::Aes128Gcm => (Cipher::aes_128_gcm(), "http://www.w3.org/2009/xmlenc11#aes128-gcm"),
        Enc::Aes256Gcm => (Cipher::aes_256_gcm(), "http://www.w3.org/2009/xmlenc11#aes256-gcm"),
        Enc::Aes128Cbc => (Cipher::aes_128_cbc(), "http://www.w3.org/2001/04/xmlenc#aes128-cbc"),
        Enc::Aes256Cbc => (Cipher::aes_256_cbc(), "http://www.w3.org/2001/04/xmlenc#aes256-cbc"),
    };
    let key = random_bytes(cipher.key_len());
    let data = if matches!(enc, Enc::Aes128Gcm | Enc::Aes256Gcm) {
        // IV (12) || ciphertext || tag (16), XML Encryption 1.1 §5.2.4.
        let (iv, mut tag) = (random_bytes(12), [0u8; 16]);
        let ct = encrypt_aead(cipher, &key, Some(&iv), &[], plaintext.as_bytes(), &mut tag).unwrap();
        [iv, ct, tag.to_vec()].concat()
    } else {
        // IV (16) || ciphertext; padding per XML Encryption §5.2: arbitrary (here random)
        // bytes, the last one giving the padding length (ISO 10126, not necessarily PKCS#7).
        let iv = random_bytes(16);
        let mut pt = plaintext.as_bytes().to_vec();
        let pad = 16 - pt.len() % 16;
        pt.extend(random_bytes(pad - 1));
        pt.push(u8::try_from(pad).unwrap());
        let mut crypter = Crypter::new(cipher, Mode::Encrypt, &key, Some(&iv)).unwrap();
        crypter.pad(false);
        let mut ct = vec![0; pt.len() + 16];
        let n = crypter.update(&pt, &mut ct).unwrap();
        let n = n + crypter.finalize(&mut ct[n..]).unwrap();
        ct.truncate(n);
        [iv, ct].concat()
    };
    let rsa = X509::from_der(sp_cert_der).unwrap().public_key().unwrap().rsa().unwrap();
    let mut wrapped = vec![0; usize::try_from(rsa.size()).unwrap()];
    let n = rsa.public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP).unwrap();
    wrapped.truncate(n);
    format!(
        r#"<xenc:EncryptedData xmlns:xenc="{XENC}" Id="{id}" Type="{XENC}Element"><xenc:EncryptionMethod Algorithm="{uri}"/><ds:KeyInfo xmlns:ds="{DS}"><xenc:EncryptedKey Id="{kid}"><xenc:EncryptionMethod Algorithm="{XENC}rsa-oaep-mgf1p"><ds:DigestMethod Algorithm="{DS}sha1"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
        B64.encode(wrapped),
        B64.encode(data),
        id = random_id(),
        kid = random_id(),
    )
}

/// Where `name_id_comment` goes: before the second '.' after the '@' ("ann@acme.test.evil.test"
/// → "ann@acme.test<!--c-->.evil.test", the 2018 Duo shape: a parser keeping only the first
/// text node reads "ann@acme.test"), else right after the '@', else after the first character.
pub fn comment_at(name_id: &str) -> usize {
    match name_id.find('@') {
        Some(at) => name_id[at..].match_indices('.').nth(1).map_or(at + 1, |(i, _)| at + i),
        None => name_id.chars().next().map_or(0, char::len_utf8),
    }
}

fn inject_comment(assertion: &str, name_id: &str, comment: &str) -> String {
    assert!(!comment.contains("--"), "an XML comment cannot contain --");
    let (left, right) = name_id.split_at(comment_at(name_id));
    set_content(assertion, "saml:NameID", &format!("{}<!--{comment}-->{}", esc(left), esc(right)))
}

/// The SP's AuthnRequest as read from the HTTP-Redirect URL.
#[derive(Clone, Debug)]
pub struct AuthnReq {
    pub id: String,
    pub acs_url: Option<String>,
    pub destination: Option<String>,
    pub relay_state: Option<String>,
    /// SigAlg and Signature are both in the query (signature itself not checked here).
    pub signed: bool,
    pub issuer: Option<String>,
    pub xml: String,
}

/// Reads the IdP URL the SP redirected to: `SAMLRequest` = base64(raw DEFLATE(AuthnRequest)).
pub fn parse_redirect(url: &str) -> AuthnReq {
    let url = url::Url::parse(url).unwrap();
    let q = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    let raw = B64.decode(q("SAMLRequest").expect("no SAMLRequest")).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..]).read_to_string(&mut xml).unwrap();
    AuthnReq {
        id: root_attr(&xml, "ID").expect("AuthnRequest without ID"),
        acs_url: root_attr(&xml, "AssertionConsumerServiceURL"),
        destination: root_attr(&xml, "Destination"),
        relay_state: q("RelayState"),
        signed: q("SigAlg").is_some() && q("Signature").is_some(),
        issuer: element_text(&xml, "Issuer"),
        xml,
    }
}

/// Inserts `doctype` (e.g. `<!DOCTYPE r [<!ENTITY x "y">]>`) after the XML declaration, if any.
pub fn with_doctype(xml: &str, doctype: &str) -> String {
    let body = strip_decl(xml);
    let decl = &xml[..xml.len() - body.len()];
    format!("{decl}{doctype}{body}")
}

/// XSW1..XSW8 (SAML Raider's shapes) on a response from `TestIdp::response` (one plain
/// assertion). Each keeps the signed element intact (minus its enveloped Signature where the
/// attack moves it) and adds an unsigned copy naming `evil_name_id`, with ID `EVIL_ASSERTION_ID`
/// or `EVIL_RESPONSE_ID` so that no ID is duplicated (SAML Raider keeps the ID in 7 and 8):
/// 1. evil Response root; the Signature holds the original Response as its last child.
/// 2. evil Response root; the original Response sits just before the (detached) Signature.
/// 3. evil Assertion inserted before the signed one.
/// 4. evil Assertion replaces the signed one and contains it as its last child.
/// 5. evil Assertion carries the original Signature; the unsigned original comes after it.
/// 6. as 5, the original Assertion inside the evil assertion's Signature.
/// 7. evil Assertion inside `samlp:Extensions` (before Status); the signed one unchanged.
/// 8. as 6, the original Assertion wrapped in a `ds:Object` of that Signature.
///
/// 1–2 need a signed Response, 3–8 a signed Assertion. xmlsec still verifies the Signature in
/// 2, 3, 4, 5 and 7 (samael 0.0.22 then keeps only the original element); in 1 and 6 it refuses
/// a non-dsig child of Signature ("unexpected node"), and in 8 the enveloped-signature transform
/// strips the referenced element (it lies inside the Signature), so verification fails.
pub fn xsw(variant: u8, signed_response_xml: &str, evil_name_id: &str) -> String {
    let doc = strip_decl(signed_response_xml);
    let a = element(doc, "saml:Assertion").expect("XSW needs a plain saml:Assertion");
    let assertion = &doc[a.0..a.1];
    let a_sig = element(assertion, "ds:Signature");
    let bare = a_sig.map_or(assertion.to_owned(), |s| replace(assertion, s, ""));
    let evil = |keep_sig: bool| {
        let copy = if keep_sig { assertion } else { &bare };
        set_root_id(&set_content(copy, "saml:NameID", &esc(evil_name_id)), EVIL_ASSERTION_ID)
    };
    // `xml` with `inner` put just before the closing tag of its first `name` element.
    let append_to = |xml: &str, name: &str, inner: &str| {
        let end = element(xml, name).unwrap().1 - name.len() - 3;
        replace(xml, (end, end), inner)
    };
    if variant == 1 || variant == 2 {
        let r_sig = element(doc, "ds:Signature").filter(|s| s.0 < a.0);
        let r_sig = r_sig.expect("XSW1/2 wrap the Response signature: sign the Response");
        let sig = &doc[r_sig.0..r_sig.1];
        let original = replace(doc, r_sig, "");
        let oa = element(&original, "saml:Assertion").unwrap();
        let evil_resp = set_root_id(&replace(&original, oa, &evil(false)), EVIL_RESPONSE_ID);
        let wrapped = if variant == 1 { append_to(sig, "ds:Signature", &original) } else { format!("{original}{sig}") };
        let issuer_end = element(&evil_resp, "saml:Issuer").unwrap().1;
        return replace(&evil_resp, (issuer_end, issuer_end), &wrapped);
    }
    assert!(a_sig.is_some(), "XSW3..8 wrap the Assertion signature: sign the Assertion");
    let in_evil_sig = |inner: &str| append_to(&evil(true), "ds:Signature", inner);
    let new_assertions = match variant {
        3 => format!("{}{assertion}", evil(false)),
        4 => append_to(&evil(false), "saml:Assertion", assertion),
        5 => format!("{}{bare}", evil(true)),
        6 => in_evil_sig(&bare),
        7 => {
            let status = element(doc, "samlp:Status").unwrap().0;
            let ext = format!("<samlp:Extensions>{}</samlp:Extensions>", evil(false));
            return replace(doc, (status, status), &ext);
        }
        8 => in_evil_sig(&format!("<ds:Object>{bare}</ds:Object>")),
        _ => panic!("XSW variants are 1..=8"),
    };
    replace(doc, a, &new_assertions)
}

fn random_id() -> String {
    format!("_{}", hex::encode(random_bytes(16)))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    rand_bytes(&mut buf).unwrap();
    buf
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn unesc(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn strip_decl(xml: &str) -> &str {
    let xml = xml.trim();
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim_start(),
        None => xml,
    }
}

fn replace(xml: &str, (start, end): (usize, usize), with: &str) -> String {
    format!("{}{with}{}", &xml[..start], &xml[end..])
}

/// `xml` with the content of its first `name` element replaced by `content` (raw XML).
fn set_content(xml: &str, name: &str, content: &str) -> String {
    let (start, end) = element(xml, name).unwrap_or_else(|| panic!("no {name}"));
    let open_end = start + xml[start..].find('>').unwrap() + 1;
    replace(xml, (open_end, end - name.len() - 3), content)
}

/// Byte span of the first `<name ...>...</name>` (or `<name/>`) in `xml`; does not
/// handle an element nested in one of the same name, which this module's documents never have.
fn element(xml: &str, name: &str) -> Option<(usize, usize)> {
    let (open, close) = (format!("<{name}"), format!("</{name}>"));
    let mut at = 0;
    let start = loop {
        let i = at + xml[at..].find(&open)?;
        at = i + open.len();
        if xml[at..].starts_with([' ', '>', '/', '\n', '\t', '\r']) {
            break i;
        }
    };
    let tag_end = start + xml[start..].find('>')?;
    if xml[..tag_end].ends_with('/') {
        return Some((start, tag_end + 1));
    }
    let end = tag_end + xml[tag_end..].find(&close)? + close.len();
    Some((start, end))
}

/// Start tag of the document element.
fn root_tag(xml: &str) -> &str {
    let mut rest = xml;
    loop {
        let i = rest.find('<').unwrap();
        rest = &rest[i..];
        if !rest.starts_with("<?") && !rest.starts_with("<!") {
            return &rest[..rest.find('>').unwrap()];
        }
        rest = &rest[1..];
    }
}

fn root_attr(xml: &str, name: &str) -> Option<String> {
    let tag = root_tag(xml);
    tag.match_indices(&format!("{name}=")).find(|(i, _)| tag[..*i].ends_with(char::is_whitespace)).map(|(i, m)| {
        let rest = &tag[i + m.len()..];
        let quote = rest.chars().next().unwrap();
        unesc(rest[1..].split(quote).next().unwrap())
    })
}

fn set_root_id(xml: &str, id: &str) -> String {
    let tag = root_tag(xml);
    let old = root_attr(xml, "ID").unwrap();
    let new_tag = tag.replacen(&format!(r#"ID="{old}""#), &format!(r#"ID="{id}""#), 1);
    xml.replacen(tag, &new_tag, 1)
}

/// Text of the first element with local name `local`, whatever its prefix.
fn element_text(xml: &str, local: &str) -> Option<String> {
    xml.match_indices(local).find_map(|(i, _)| {
        let before = &xml[..i];
        let lt = before.rfind('<')?;
        let prefix = &before[lt + 1..];
        let prefix_ok = prefix.is_empty()
            || (prefix.ends_with(':')
                && prefix[..prefix.len() - 1].chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'));
        let after = &xml[i + local.len()..];
        if !prefix_ok || !after.starts_with([' ', '>']) {
            return None;
        }
        let text = &after[after.find('>')? + 1..];
        Some(unesc(&text[..text.find('<')?]))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use openssl::symm::decrypt_aead;
    use samael::crypto::{CertificateDer, CryptoError, ReduceMode};
    use samael::metadata::EntityDescriptor;
    use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};

    use super::*;

    const ACS: &str = "https://guichet.test/saml/acme/acs";
    const SP: &str = "https://guichet.test/saml/acme/metadata";
    const ANN: &str = "ann@acme.test";
    const EVE: &str = "eve@evil.test";

    fn idp() -> TestIdp {
        TestIdp::new("https://idp.acme.test/saml", "https://idp.acme.test/sso")
    }

    fn opts(sign_response: bool, sign_assertion: bool) -> ResponseOpts {
        let mut o = ResponseOpts::new(ANN, Some("_req1"), ACS, SP);
        (o.sign_response, o.sign_assertion) = (sign_response, sign_assertion);
        o
    }

    fn reduce(xml: &str, cert: &[u8]) -> Result<String, CryptoError> {
        let certs = [CertificateDer::from(cert.to_vec())];
        Crypto::reduce_xml_to_signed(xml, &certs, ReduceMode::ValidateAndMarkNoAncestors)
    }

    /// samael's own SP logic (signature, destination, audience, recipient, InResponseTo, times).
    fn samael_sp(idp: &TestIdp, sp_keys: &TestIdp) -> ServiceProvider {
        ServiceProviderBuilder::default()
            .entity_id(SP.to_owned())
            .acs_url(ACS.to_owned())
            .key(sp_keys.key.clone())
            .certificate(CertificateDer::from(sp_keys.cert_der.clone()))
            .idp_metadata(idp.metadata_xml().parse::<EntityDescriptor>().unwrap())
            .build()
            .unwrap()
    }

    fn name_id(sp: &ServiceProvider, xml: &str) -> Result<String, samael::service_provider::Error> {
        let assertion = sp.parse_xml_response(xml, Some(&["_req1"][..]))?;
        Ok(assertion.subject.unwrap().name_id.unwrap().value)
    }

    fn texts<'a>(xml: &'a str, open: &str) -> Vec<&'a str> {
        let tail = |(i, _): (usize, &str)| &xml[i + open.len()..];
        xml.match_indices(open).map(tail).map(|t| &t[..t.find('<').unwrap()]).collect()
    }

    /// Decrypts the EncryptedAssertion with plain openssl, as an independent check.
    fn decrypt(xml: &str, sp_key: &PKey<Private>) -> String {
        let values = texts(xml, "<xenc:CipherValue>");
        let method = root_attr(&xml[xml.find("<xenc:EncryptionMethod").unwrap()..], "Algorithm");
        let method = method.unwrap();
        let wrapped = B64.decode(values[0]).unwrap();
        let mut key = vec![0; 256];
        let n = sp_key.rsa().unwrap().private_decrypt(&wrapped, &mut key, Padding::PKCS1_OAEP);
        key.truncate(n.unwrap());
        let data = B64.decode(values[1]).unwrap();
        let plain = match (method.rsplit('#').next().unwrap(), key.len()) {
            ("aes128-gcm", 16) | ("aes256-gcm", 32) => {
                let cipher = if key.len() == 16 { Cipher::aes_128_gcm() } else { Cipher::aes_256_gcm() };
                let (iv, rest) = data.split_at(12);
                let (ct, tag) = rest.split_at(rest.len() - 16);
                decrypt_aead(cipher, &key, Some(iv), &[], ct, tag).unwrap()
            }
            ("aes128-cbc", 16) | ("aes256-cbc", 32) => {
                let cipher = if key.len() == 16 { Cipher::aes_128_cbc() } else { Cipher::aes_256_cbc() };
                let mut c = Crypter::new(cipher, Mode::Decrypt, &key, Some(&data[..16])).unwrap();
                c.pad(false);
                let mut out = vec![0; data.len()];
                let n = c.update(&data[16..], &mut out).unwrap();
                let n = n + c.finalize(&mut out[n..]).unwrap();
                out.truncate(n - usize::from(out[n - 1]));
                out
            }
            other => panic!("unexpected {other:?}"),
        };
        String::from_utf8(plain).unwrap()
    }

    #[test]
    fn signatures_verify_and_tampering_or_another_key_fails() {
        let (idp, other) = (idp(), TestIdp::new("https://other.test/saml", "https://other.test/sso"));
        for (sign_response, sign_assertion, sha1) in
            [(true, false, false), (false, true, false), (true, true, false), (true, true, true)]
        {
            let mut o = opts(sign_response, sign_assertion);
            o.sha1 = sha1;
            let xml = idp.response(&o);
            assert!(xml.starts_with("<samlp:Response"), "{xml}");
            assert!(reduce(&xml, &idp.cert_der).unwrap().contains(ANN));
            assert!(reduce(&xml.replace(ANN, "mallory@acme.test"), &idp.cert_der).is_err());
            assert!(reduce(&xml, &other.cert_der).is_err());
            let rsa_sha1 = xml.contains("xmldsig#rsa-sha1") && !xml.contains("rsa-sha256");
            assert_eq!(rsa_sha1, sha1);
        }
        assert!(reduce(&idp.response(&opts(false, false)), &idp.cert_der).is_err());
    }

    #[test]
    fn samael_service_provider_accepts_plain_and_encrypted_responses() {
        let (idp, sp_keys) = (idp(), TestIdp::new(SP, ACS));
        let sp = samael_sp(&idp, &sp_keys);
        let mut o = opts(true, true);
        o.attributes = vec![("groups".into(), vec!["admins".into(), "r&d".into()])];
        for (sr, sa) in [(true, false), (false, true), (true, true)] {
            (o.sign_response, o.sign_assertion) = (sr, sa);
            assert_eq!(name_id(&sp, &idp.response(&o)).unwrap(), ANN);
        }
        o.audience = Some("https://someone-else.test".into());
        assert!(name_id(&sp, &idp.response(&o)).is_err());
        // samael verifies the Response signature only, then decrypts; it knows aes128-gcm/-cbc only.
        let mut o = opts(true, true);
        o.encrypt_for = Some(sp_keys.cert_der.clone());
        let encs = [(Enc::Aes128Gcm, true), (Enc::Aes256Gcm, false), (Enc::Aes128Cbc, true), (Enc::Aes256Cbc, false)];
        for (enc, samael_ok) in encs {
            o.encryption = enc;
            assert_eq!(name_id(&sp, &idp.response(&o)).ok(), samael_ok.then(|| ANN.to_owned()));
        }
    }

    #[test]
    fn encrypted_assertion_round_trip() {
        let (idp, sp_keys) = (idp(), TestIdp::new(SP, ACS));
        for enc in [Enc::Aes128Gcm, Enc::Aes256Gcm, Enc::Aes128Cbc, Enc::Aes256Cbc] {
            let mut o = opts(true, true);
            (o.encrypt_for, o.encryption) = (Some(sp_keys.cert_der.clone()), enc);
            let xml = idp.response(&o);
            assert!(!xml.contains(ANN) && xml.contains("<saml:EncryptedAssertion>"));
            // The Response signature covers the encrypted form.
            assert!(reduce(&xml, &idp.cert_der).unwrap().contains("EncryptedData"));
            let assertion = decrypt(&xml, &sp_keys.key);
            assert!(assertion.starts_with("<saml:Assertion xmlns:saml="), "{enc:?}: {assertion}");
            assert!(assertion.ends_with("</saml:Assertion>"), "{enc:?}: {assertion}");
            assert!(reduce(&assertion, &idp.cert_der).unwrap().contains(ANN));
        }
    }

    #[test]
    fn comment_in_name_id_keeps_signatures_valid() {
        let (idp, sp_keys) = (idp(), TestIdp::new(SP, ACS));
        let cert = CertificateDer::from(idp.cert_der.clone());
        let mut o = ResponseOpts::new("ann@acme.test.evil.test", Some("_req1"), ACS, SP);
        o.name_id_comment = Some(String::new());
        for (sr, sa) in [(true, false), (false, true)] {
            (o.sign_response, o.sign_assertion) = (sr, sa);
            let xml = idp.response(&o);
            assert!(xml.contains(">ann@acme.test<!---->.evil.test</saml:NameID>"), "{xml}");
            Crypto::verify_signed_xml(&xml, &cert, Some("ID")).unwrap();
            // samael 0.0.22 cannot map the comment-free pre-digest back onto the document and
            // fails closed (XmlReferenceResolutionError), so its SP refuses such responses.
            assert!(reduce(&xml, &idp.cert_der).is_err());
            assert!(name_id(&samael_sp(&idp, &sp_keys), &xml).is_err());
        }
        assert_eq!(comment_at("ann@acme.test"), 4);
        assert_eq!(comment_at("bob"), 1);
    }

    #[test]
    fn xsw_variants_keep_the_signed_element_and_add_the_evil_one() {
        let (idp, sp_keys) = (idp(), TestIdp::new(SP, ACS));
        let sp = samael_sp(&idp, &sp_keys);
        let cert = CertificateDer::from(idp.cert_der.clone());
        for v in 1..=8u8 {
            let mut o = opts(v <= 2, v > 2);
            o.assertion_id = Some("_original_assertion".into());
            let signed = idp.response(&o);
            let signed_id = if v <= 2 { root_attr(&signed, "ID").unwrap() } else { "_original_assertion".into() };
            let attacked = xsw(v, &signed, EVE);
            assert!(attacked.contains(&format!(r#"ID="{signed_id}""#)), "XSW{v}: {attacked}");
            assert!(attacked.contains(texts(&signed, "<ds:SignatureValue>")[0]), "XSW{v}");
            assert!(attacked.contains(EVE) && attacked.contains(ANN), "XSW{v}");
            // The Signature verifies against the original reference, except where the original
            // sits inside the Signature (1, 6: xmlsec "unexpected node"; 8: the enveloped
            // transform drops the whole referenced subtree).
            let verifies = Crypto::verify_signed_xml(&attacked, &cert, Some("ID")).is_ok();
            assert_eq!(verifies, ![1, 6, 8].contains(&v), "XSW{v}");
            // samael keeps only the verified original: its SP sees Ann where the Signature
            // verifies and refuses the response elsewhere, never Eve.
            let reduced = reduce(&attacked, &idp.cert_der);
            assert_eq!(reduced.is_ok(), verifies, "XSW{v}");
            assert!(reduced.map_or(true, |r| !r.contains(EVE)), "XSW{v}");
            let seen = name_id(&sp, &attacked).ok();
            assert_eq!(seen, verifies.then(|| ANN.to_owned()), "XSW{v}");
        }
    }

    #[test]
    fn parse_redirect_reads_samael_authn_requests() {
        let (idp, sp_keys) = (idp(), TestIdp::new(SP, ACS));
        let request = samael_sp(&idp, &sp_keys).make_authentication_request(&idp.sso_url).unwrap();
        let url = request.redirect("state&1").unwrap().unwrap();
        let r = parse_redirect(url.as_str());
        assert_eq!((r.id.as_str(), r.signed), (request.id.as_str(), false));
        assert_eq!(r.acs_url.as_deref(), Some(ACS));
        assert_eq!(r.destination.as_deref(), Some(idp.sso_url.as_str()));
        assert_eq!(r.relay_state.as_deref(), Some("state&1"));
        assert_eq!(r.issuer.as_deref(), Some(SP));
        assert!(r.xml.contains("AuthnRequest"));
        let signed = request.signed_redirect("", &sp_keys.key).unwrap().unwrap();
        let r = parse_redirect(signed.as_str());
        assert!(r.signed && r.relay_state.is_none());
        // A hand-made one: no ACS URL, escaped attribute, unprefixed Issuer.
        let xml = r#"<?xml version="1.0"?><AuthnRequest xmlns="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Destination="https://idp.test/?a=1&amp;b=2"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">sp</Issuer></AuthnRequest>"#;
        let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflate.write_all(xml.as_bytes()).unwrap();
        let query = [("SAMLRequest", B64.encode(deflate.finish().unwrap()))];
        let r = parse_redirect(url::Url::parse_with_params("https://idp.test/sso", query).unwrap().as_str());
        assert_eq!((r.id.as_str(), r.acs_url), ("_x", None));
        assert_eq!(r.destination.as_deref(), Some("https://idp.test/?a=1&b=2"));
        assert_eq!(r.issuer.as_deref(), Some("sp"));
    }

    #[test]
    fn metadata_parses_with_samael_and_lists_every_certificate() {
        let (idp, next) = (idp(), idp());
        let md: EntityDescriptor = idp.metadata_xml().parse().unwrap();
        assert_eq!(md.entity_id.as_deref(), Some(idp.entity_id.as_str()));
        let two = idp.metadata_xml_with_certs(&[&idp.cert_der, &next.cert_der]);
        let md: EntityDescriptor = two.parse().unwrap();
        let descriptor = &md.idp_sso_descriptors.unwrap()[0];
        assert_eq!(descriptor.key_descriptors.len(), 2);
        assert_eq!(descriptor.single_sign_on_services.len(), 2);
        assert!(idp.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let doctype = r#"<!DOCTYPE r [<!ENTITY x "y">]>"#;
        let with = with_doctype(&idp.metadata_xml(), doctype);
        assert!(with.starts_with(&format!(r#"<?xml version="1.0" encoding="UTF-8"?>{doctype}<md:"#)));
        assert!(with_doctype("<a/>", doctype).starts_with("<!DOCTYPE"));
        // Signing an arbitrary document: first template wins.
        let doc = format!(r#"<r ID="_r">{}</r>"#, idp.signature_template("_r", false));
        reduce(&idp.sign(&doc), &idp.cert_der).unwrap();
        assert!(!idp.response_b64(&opts(true, true)).contains('<'));
    }
}
