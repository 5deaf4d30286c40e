//! SAML 2.0 connections: Guichet is the service provider towards an organization's IdP (Okta,
//! Entra ID, ADFS, Google Workspace, Keycloak...).
//!
//! Per connection: SP entityID `<issuer>/saml/<id>/metadata` (the SP metadata is served there,
//! with the connection's own signing and encryption certificate), ACS `<issuer>/saml/<id>/acs`
//! (HTTP-POST), login at `<issuer>/sso/<id>`: an AuthnRequest over HTTP-Redirect (signed when the
//! connection says so), with an opaque RelayState that names a request kept server-side, bound to
//! the browser and taken once. The response is checked by [`xml::validate`]; each assertion ID
//! is accepted once, across nodes (the ephemeral store); the identity is then admitted by the
//! same rules as upstream OIDC (verified domains of the connection's organizations only).

pub mod xml;

use std::io::Write;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::pkey::{PKey, Private};
use samael::crypto::CertificateDer;
use serde::{Deserialize, Serialize};

use super::oidc::Finished;
use super::{FederationError, FederationResult, FederationService};
use crate::crypto::tokens;
use crate::domain::federation::{Connection, ConnectionConfig, FederatedIdentity, SamlUpstream};
use crate::domain::{ConnectionId, OrgId};
use crate::orgs::Actor;
use crate::store::ephemeral_keys::EphemeralKey;

/// How long a browser has to come back from the IdP.
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// A `SAMLResponse` longer than this (base64) is refused before it is decoded.
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;
/// The largest ACS form read (a `SAMLResponse` at the limit, URL-encoded, and a RelayState).
pub const MAX_ACS_BODY_BYTES: usize = 1024 * 1024;
/// IdP metadata larger than this is refused (ADFS metadata runs to ~100 KB).
const MAX_METADATA_BYTES: usize = 1024 * 1024;
/// How often metadata given by URL is fetched again.
pub const METADATA_REFRESH: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const TRANSIENT_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// Where an IdP's settings come from.
#[derive(Debug, Clone)]
pub enum SamlSource {
    /// Its metadata document.
    Xml(String),
    /// The URL of its metadata (fetched now, then daily).
    Url(String),
    /// By hand: entityID, SSO URL (HTTP-Redirect) and signing certificate (PEM or base64 DER).
    Manual { entity_id: String, sso_url: String, certificate: String },
}

/// A connection's switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct SamlOptions {
    pub want_assertions_signed: bool,
    pub allow_idp_initiated: bool,
    pub allow_sha1: bool,
    pub sign_requests: bool,
}

/// What the IdP's metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub certs: Vec<String>,
}

fn invalid(why: impl Into<String>) -> FederationError {
    FederationError::Invalid(why.into())
}

/// A certificate given as PEM or base64 DER: its base64 DER, once it parses as X.509.
pub fn normalize_cert(text: &str) -> FederationResult<String> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(&body).map_err(|_| invalid("the certificate is not PEM or base64"))?;
    openssl::x509::X509::from_der(&der).map_err(|_| invalid("the certificate is not an X.509 certificate"))?;
    Ok(STANDARD.encode(der))
}

fn check_sso_url(u: &str) -> FederationResult<String> {
    let u = u.trim();
    let parsed = url::Url::parse(u).map_err(|_| invalid("the SSO URL is not a URL"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.fragment().is_some() || u.len() > 2048 {
        return Err(invalid("the SSO URL must be an http(s) URL without fragment"));
    }
    Ok(u.to_owned())
}

/// Reads an IdP's metadata: its entityID, the HTTP-Redirect SingleSignOnService and the signing
/// certificates (those marked `signing`, else those without a use). Refuses DTDs.
pub fn parse_metadata(text: &str) -> FederationResult<IdpMetadata> {
    let mut r = quick_xml::Reader::from_str(text);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::DocType(_)) => return Err(invalid("metadata with a DTD is refused")),
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err(invalid("the metadata is not well-formed XML")),
        }
    }
    if text.contains("EntitiesDescriptor") {
        return Err(invalid("give the IdP's own EntityDescriptor, not a federation's EntitiesDescriptor"));
    }
    let ed: samael::metadata::EntityDescriptor =
        text.parse().map_err(|_| invalid("the metadata is not a SAML EntityDescriptor"))?;
    let entity_id = ed.entity_id.clone().filter(|e| !e.trim().is_empty()).ok_or_else(|| invalid("no entityID"))?;
    let idps = ed.idp_sso_descriptors.unwrap_or_default();
    let idp = idps.first().ok_or_else(|| invalid("the metadata has no IDPSSODescriptor"))?;
    let sso = idp
        .single_sign_on_services
        .iter()
        .find(|s| s.binding == REDIRECT_BINDING)
        .ok_or_else(|| invalid("the IdP has no HTTP-Redirect SingleSignOnService"))?;
    let mut certs = Vec::new();
    for want in [Some("signing"), None] {
        for kd in &idp.key_descriptors {
            let usage = kd.key_use.as_deref().filter(|u| !u.is_empty());
            if usage == want {
                for c in kd.key_info.x509_data.iter().flat_map(|x| x.certificates.iter()) {
                    let c = normalize_cert(c)?;
                    if !certs.contains(&c) {
                        certs.push(c);
                    }
                }
            }
        }
        if !certs.is_empty() {
            break;
        }
    }
    if certs.is_empty() {
        return Err(invalid("the metadata has no signing certificate"));
    }
    Ok(IdpMetadata { entity_id: entity_id.trim().to_owned(), sso_url: check_sso_url(&sso.location)?, certs })
}

/// A new SP key (RSA 2048) and its self-signed certificate (10 years): (PKCS#8 PEM, DER).
fn sp_keypair(cn: &str) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::x509::{X509NameBuilder, X509};
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    b.set_not_before(Asn1Time::days_from_now(0)?.as_ref())?;
    b.set_not_after(Asn1Time::days_from_now(3650)?.as_ref())?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((key.private_key_to_pem_pkcs8()?, b.build().to_der()?))
}

/// A SAML request sent to the IdP, kept server-side until the response comes back.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    connection: ConnectionId,
    browser_digest: String,
    request_id: String,
    return_to: String,
    #[serde(default)]
    test_for: Option<OrgId>,
}

fn saml_cfg(c: &Connection) -> FederationResult<&SamlUpstream> {
    match &c.config {
        ConnectionConfig::Saml(s) => Ok(s),
        ConnectionConfig::Oidc(_) => Err(FederationError::NotFound),
    }
}

fn xml_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl FederationService {
    /// The SP entityID of a SAML connection (its SP metadata is served there).
    pub fn sp_entity_id(&self, id: ConnectionId) -> String {
        format!("{}/saml/{id}/metadata", self.issuer)
    }

    /// The Assertion Consumer Service of a SAML connection (HTTP-POST).
    pub fn acs_url(&self, id: ConnectionId) -> String {
        format!("{}/saml/{id}/acs", self.issuer)
    }

    /// Creates a SAML connection for `orgs` (platform only).
    pub async fn create_saml(
        &self,
        actor: Actor,
        orgs: &[String],
        name: Option<&str>,
        source: SamlSource,
        opts: SamlOptions,
    ) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let org_ids = self.org_ids(orgs).await?;
        let c = self.new_saml(name, source, opts, org_ids, false).await?;
        self.audit_all("org.connection_created", &c, actor).await;
        Ok(c)
    }

    /// An organization admin connects their organization's SAML IdP (self-service). A metadata
    /// URL goes through the outbound-URL policy. Audited.
    pub async fn create_saml_for_org(
        &self,
        actor: Actor,
        org_ref: &str,
        name: Option<&str>,
        source: SamlSource,
        opts: SamlOptions,
    ) -> FederationResult<Connection> {
        let restricted = actor != Actor::Platform;
        self.create_saml_in_org(actor, restricted, org_ref, name, source, opts).await
    }

    /// [`Self::create_saml_for_org`], `restricted` chosen by the caller (an organization's
    /// developer key: restricted, like the organization's admins).
    pub async fn create_saml_in_org(
        &self,
        actor: Actor,
        restricted: bool,
        org_ref: &str,
        name: Option<&str>,
        source: SamlSource,
        opts: SamlOptions,
    ) -> FederationResult<Connection> {
        let org = self.orgs.authorize(actor, org_ref, crate::domain::org::OrgRole::Admin).await?;
        let c = self.new_saml(name, source, opts, vec![org.id], restricted).await?;
        self.audit(
            "org.connection_created",
            org.id,
            actor,
            serde_json::json!({"connection": c.id, "name": c.name, "type": "saml"}),
        )
        .await;
        Ok(c)
    }

    /// Fetches metadata from `url` (through the outbound policy when `restricted`).
    async fn fetch_metadata(&self, url: &str, restricted: bool) -> FederationResult<IdpMetadata> {
        let parsed = url::Url::parse(url.trim()).map_err(|_| invalid("the metadata URL is not a URL"))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(invalid("the metadata URL must be http(s)"));
        }
        let resp = if restricted {
            self.outbound.get(url.trim()).await.map_err(|e| {
                tracing::info!(reason = %e.reason(), "metadata URL refused");
                invalid("metadata URL not allowed")
            })?
        } else {
            self.http
                .get(parsed)
                .send()
                .await
                .map_err(|e| FederationError::Upstream(format!("metadata fetch failed: {e}")))?
        };
        if !resp.status().is_success() {
            return Err(FederationError::Upstream(format!("metadata fetch answered {}", resp.status())));
        }
        let body = crate::net::read_capped(resp, MAX_METADATA_BYTES)
            .await
            .map_err(|e| FederationError::Upstream(format!("metadata fetch failed: {}", e.reason())))?;
        let text = std::str::from_utf8(&body).map_err(|_| invalid("the metadata is not UTF-8"))?;
        parse_metadata(text)
    }

    async fn new_saml(
        &self,
        name: Option<&str>,
        source: SamlSource,
        opts: SamlOptions,
        org_ids: Vec<OrgId>,
        restricted: bool,
    ) -> FederationResult<Connection> {
        let mut metadata_url = None;
        let meta = match source {
            SamlSource::Xml(x) => parse_metadata(&x)?,
            SamlSource::Url(u) => {
                let m = self.fetch_metadata(&u, restricted).await?;
                metadata_url = Some(u.trim().to_owned());
                m
            }
            SamlSource::Manual { entity_id, sso_url, certificate } => {
                let entity_id = entity_id.trim();
                if entity_id.is_empty() || entity_id.len() > 1024 {
                    return Err(invalid("the IdP entityID is required"));
                }
                IdpMetadata {
                    entity_id: entity_id.to_owned(),
                    sso_url: check_sso_url(&sso_url)?,
                    certs: vec![normalize_cert(&certificate)?],
                }
            }
        };
        let id = ConnectionId::new_random();
        let (key_pem, cert_der) =
            sp_keypair("Guichet SAML SP").map_err(|e| FederationError::Internal(e.context("SP key")))?;
        let sealed = self
            .sealer
            .seal(&key_pem, &format!("connection:{id}:sp-key"))
            .map_err(|e| FederationError::Internal(anyhow::anyhow!("{e}")))?;
        let now = self.clock.now();
        let default_name = url::Url::parse(&meta.entity_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| meta.entity_id.chars().take(60).collect());
        let c = Connection {
            id,
            name: name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).unwrap_or(default_name),
            config: ConnectionConfig::Saml(SamlUpstream {
                idp_entity_id: meta.entity_id,
                sso_url: meta.sso_url,
                certs: meta.certs,
                metadata_refreshed_at: metadata_url.as_ref().map(|_| now),
                metadata_url,
                metadata_error: None,
                want_assertions_signed: opts.want_assertions_signed,
                allow_idp_initiated: opts.allow_idp_initiated,
                allow_sha1: opts.allow_sha1,
                sign_requests: opts.sign_requests,
                sp_key_sealed: sealed,
                sp_cert: STANDARD.encode(cert_der),
                mapping: Default::default(),
                restricted,
                group_roles: Vec::new(),
            }),
            orgs: org_ids,
            created_at: now,
            updated_at: now,
        };
        self.stores.federation.create_connection(&c).await?;
        tracing::info!(connection = %c.id, "SAML connection created");
        Ok(c)
    }

    fn sp_key(&self, id: ConnectionId, cfg: &SamlUpstream) -> FederationResult<PKey<Private>> {
        let pem = self
            .sealer
            .open(&cfg.sp_key_sealed, &format!("connection:{id}:sp-key"))
            .map_err(|e| FederationError::Internal(anyhow::anyhow!("cannot open the SP key: {e}")))?;
        PKey::private_key_from_pem(&pem).map_err(|e| FederationError::Internal(e.into()))
    }

    /// The SP metadata of a SAML connection: entityID, ACS (HTTP-POST), the connection's
    /// certificate for signing and for encryption, the NameID formats it reads.
    pub async fn sp_metadata(&self, id: &str) -> FederationResult<String> {
        let c = self.connection(id).await?;
        let cfg = saml_cfg(&c)?;
        let e = xml::escape;
        let key_info = format!(
            "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
            cfg.sp_cert
        );
        let methods = [
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        ]
        .iter()
        .map(|m| format!("<md:EncryptionMethod Algorithm=\"{m}\"/>"))
        .collect::<String>();
        Ok(format!(
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ",
                "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{entity}\">",
                "<md:SPSSODescriptor AuthnRequestsSigned=\"{signed}\" WantAssertionsSigned=\"{want}\" ",
                "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">",
                "<md:KeyDescriptor use=\"signing\">{ki}</md:KeyDescriptor>",
                "<md:KeyDescriptor use=\"encryption\">{ki}{methods}</md:KeyDescriptor>",
                "<md:NameIDFormat>{email}</md:NameIDFormat>",
                "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>",
                "<md:AssertionConsumerService Binding=\"{post}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>",
                "</md:SPSSODescriptor></md:EntityDescriptor>\n"
            ),
            entity = e(&self.sp_entity_id(c.id)),
            signed = cfg.sign_requests,
            want = cfg.want_assertions_signed,
            ki = key_info,
            methods = methods,
            email = EMAIL_FORMAT,
            post = POST_BINDING,
            acs = e(&self.acs_url(c.id)),
        ))
    }

    /// The IdP URL carrying the AuthnRequest (HTTP-Redirect binding: DEFLATE, base64, then the
    /// RSA-SHA256 signature over the query string when the connection signs its requests).
    fn authn_request_url(
        &self,
        c: &Connection,
        cfg: &SamlUpstream,
        request_id: &str,
        relay_state: &str,
        login_hint: Option<&str>,
        force: bool,
    ) -> FederationResult<String> {
        let now = self.clock.now().0;
        let e = xml::escape;
        // The address typed at Guichet (home-realm discovery), as the requested subject: IdPs
        // (Entra ID, Okta, AD FS) prefill their sign-in with it (Core §3.4.1).
        let subject = match login_hint.map(str::trim).filter(|h| h.contains('@') && h.len() <= 320) {
            Some(h) => {
                format!("<saml:Subject><saml:NameID Format=\"{EMAIL_FORMAT}\">{}</saml:NameID></saml:Subject>", e(h))
            }
            None => String::new(),
        };
        let request = format!(
            concat!(
                "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ",
                "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" ",
                "IssueInstant=\"{instant}\" Destination=\"{dest}\" AssertionConsumerServiceURL=\"{acs}\" ",
                "ProtocolBinding=\"{post}\"{force}>",
                "<saml:Issuer>{issuer}</saml:Issuer>{subject}",
                "<samlp:NameIDPolicy AllowCreate=\"true\"/>",
                "</samlp:AuthnRequest>"
            ),
            id = request_id,
            instant = xml_time(now),
            dest = e(&cfg.sso_url),
            acs = e(&self.acs_url(c.id)),
            post = POST_BINDING,
            force = if force { " ForceAuthn=\"true\"" } else { "" },
            issuer = e(&self.sp_entity_id(c.id)),
            subject = subject,
        );
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(request.as_bytes()).map_err(|e| FederationError::Internal(e.into()))?;
        let deflated = z.finish().map_err(|e| FederationError::Internal(e.into()))?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("SAMLRequest", &STANDARD.encode(deflated));
        query.append_pair("RelayState", relay_state);
        if cfg.sign_requests {
            query.append_pair("SigAlg", RSA_SHA256);
            // Bindings §3.4.4.1: the signature is over the query string as sent.
            let signed_part = query.finish();
            let key = self.sp_key(c.id, cfg)?;
            let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
                .map_err(|e| FederationError::Internal(e.into()))?;
            signer.update(signed_part.as_bytes()).map_err(|e| FederationError::Internal(e.into()))?;
            let sig = signer.sign_to_vec().map_err(|e| FederationError::Internal(e.into()))?;
            query = url::form_urlencoded::Serializer::new(signed_part);
            query.append_pair("Signature", &STANDARD.encode(sig));
        }
        let sep = if cfg.sso_url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}{}", cfg.sso_url, query.finish()))
    }

    /// Sends the browser to the IdP: an AuthnRequest over HTTP-Redirect (signed with RSA-SHA256
    /// when the connection says so), RelayState naming the request kept here.
    pub(super) async fn begin_saml(
        &self,
        c: &Connection,
        browser: &str,
        return_to: &str,
        login_hint: Option<&str>,
        test_for: Option<OrgId>,
        force: bool,
    ) -> FederationResult<String> {
        let cfg = saml_cfg(c)?;
        let request_id = format!("_{}", hex::encode(rand::random::<[u8; 20]>()));
        let relay_state = tokens::random_token();
        let url = self.authn_request_url(c, cfg, &request_id, &relay_state, login_hint, force)?;
        let pending = Pending {
            connection: c.id,
            browser_digest: tokens::digest(browser),
            request_id,
            return_to: return_to.to_owned(),
            test_for,
        };
        let raw = serde_json::to_vec(&pending).map_err(|e| FederationError::Internal(e.into()))?;
        let key = EphemeralKey::SamlRequest { relay_digest: tokens::digest(&relay_state) }.to_string();
        self.stores.ephemeral.put(&key, &raw, PENDING_TTL).await?;
        tracing::info!(connection = %c.id, "SAML AuthnRequest sent to the identity provider");
        Ok(url)
    }

    /// The IdP posted a response to the ACS of connection `id`. `browser`: the browser's name
    /// (None when it came without our session cookie). Checks everything, then admits the
    /// identity.
    pub async fn finish_saml(
        &self,
        id: &str,
        browser: Option<&str>,
        saml_response: &str,
        relay_state: Option<&str>,
    ) -> FederationResult<Finished> {
        let c = self.connection(id).await?;
        let cfg = saml_cfg(&c)?;
        if saml_response.len() > MAX_RESPONSE_BYTES {
            return Err(FederationError::Rejected("SAMLResponse too large".into()));
            // same words as the web layer's TOO_LARGE
        }
        // The request this answers: named by RelayState, made by this browser, taken once.
        let mut pending = None;
        if let Some(rs) = relay_state.filter(|r| !r.is_empty() && r.len() <= 128) {
            let key = EphemeralKey::SamlRequest { relay_digest: tokens::digest(rs) }.to_string();
            if let Some(raw) = self.stores.ephemeral.take(&key).await? {
                let p: Pending = serde_json::from_slice(&raw).map_err(|_| FederationError::StateInvalid)?;
                let same_browser = browser.is_some_and(|b| {
                    tokens::constant_time_eq(p.browser_digest.as_bytes(), tokens::digest(b).as_bytes())
                });
                if !same_browser || p.connection != c.id {
                    return Err(FederationError::StateInvalid);
                }
                pending = Some(p);
            }
        }
        if pending.is_none() && !cfg.allow_idp_initiated {
            return Err(FederationError::StateInvalid);
        }
        let text = decode_response(saml_response)?;
        let certs: Vec<CertificateDer> =
            cfg.certs.iter().filter_map(|c| STANDARD.decode(c).ok()).map(CertificateDer::from).collect();
        if certs.is_empty() {
            return Err(FederationError::Rejected("the connection has no IdP certificate".into()));
        }
        let key = self.sp_key(c.id, cfg)?;
        let (sp_entity, acs) = (self.sp_entity_id(c.id), self.acs_url(c.id));
        let request_id = pending.as_ref().map(|p| p.request_id.clone());
        let (idp_entity, want, sha1, now) =
            (cfg.idp_entity_id.clone(), cfg.want_assertions_signed, cfg.allow_sha1, self.clock.now().0);
        // XML signature checks are CPU work in C: off the async threads.
        let verified = tokio::task::spawn_blocking(move || {
            xml::validate(
                &text,
                &xml::Expect {
                    idp_entity_id: &idp_entity,
                    sp_entity_id: &sp_entity,
                    acs_url: &acs,
                    request_id: request_id.as_deref(),
                    now,
                    want_assertions_signed: want,
                    allow_sha1: sha1,
                    certs: &certs,
                    sp_key: &key,
                },
            )
        })
        .await
        .map_err(|e| FederationError::Internal(e.into()))?
        .map_err(|r| match r {
            xml::Refusal::Status(code) => FederationError::Upstream(format!("SAML status {code}")),
            xml::Refusal::Invalid(why) => FederationError::Rejected(why),
        })?;
        // Each assertion once, on every node, for as long as it could be presented.
        let ttl = (verified.valid_until - now).clamp(60, 24 * 3600);
        let replay = EphemeralKey::SamlAssertion {
            connection: c.id.to_string(),
            id_digest: tokens::digest(&verified.assertion_id),
        };
        let fresh = self
            .stores
            .ephemeral
            .put_if_absent(&replay.to_string(), b"1", std::time::Duration::from_secs(ttl.unsigned_abs()))
            .await?;
        if !fresh {
            return Err(FederationError::Rejected("assertion replayed".into()));
        }
        let identity = identity_of(c.id, cfg, &verified)?;
        tracing::info!(connection = %c.id, signed_response = verified.response_signed, signed_assertion = verified.assertion_signed, "SAML response accepted");
        if let Some(org) = pending.as_ref().and_then(|p| p.test_for) {
            return Ok(Finished::Tested(Box::new(self.test_report(&c, identity, org).await?)));
        }
        let return_to = pending.map(|p| p.return_to).unwrap_or_else(|| "/account".to_owned());
        let auth = self.admit(&c, identity).await?;
        Ok(Finished::SignedIn(Box::new(auth), return_to))
    }

    /// Fetches again the metadata of every SAML connection that has a metadata URL. A failure
    /// keeps the last good metadata, records why on the connection and alerts (log + audit).
    pub async fn refresh_saml_metadata(&self) {
        let Ok(all) = self.stores.federation.connections().await else {
            return;
        };
        for mut c in all {
            let ConnectionConfig::Saml(cfg) = &c.config else { continue };
            let Some(url) = cfg.metadata_url.clone() else { continue };
            let result = self.fetch_metadata(&url, cfg.restricted).await;
            let now = self.clock.now();
            let ConnectionConfig::Saml(cfg) = &mut c.config else { continue };
            match result {
                Ok(m) => {
                    cfg.idp_entity_id = m.entity_id;
                    cfg.sso_url = m.sso_url;
                    cfg.certs = m.certs;
                    cfg.metadata_refreshed_at = Some(now);
                    cfg.metadata_error = None;
                }
                Err(e) => {
                    tracing::warn!(connection = %c.id, error = %e, "IdP metadata refresh failed; the last good metadata stays");
                    cfg.metadata_error = Some(e.to_string().chars().take(300).collect());
                    for org in c.orgs.clone() {
                        self.audit(
                            "org.connection_metadata_failed",
                            org,
                            Actor::Platform,
                            serde_json::json!({"connection": c.id, "error": e.to_string()}),
                        )
                        .await;
                    }
                }
            }
            c.updated_at = now;
            if let Err(e) = self.stores.federation.update_connection(&c).await {
                tracing::warn!(connection = %c.id, error = %e, "cannot save refreshed metadata");
            }
        }
    }

    /// Sets a SAML connection's switches (platform only).
    pub async fn set_saml_options(&self, actor: Actor, id: &str, opts: SamlOptions) -> FederationResult<Connection> {
        if actor != Actor::Platform {
            return Err(FederationError::Forbidden);
        }
        let mut c = self.connection(id).await?;
        let ConnectionConfig::Saml(cfg) = &mut c.config else {
            return Err(invalid("not a SAML connection"));
        };
        cfg.want_assertions_signed = opts.want_assertions_signed;
        cfg.allow_idp_initiated = opts.allow_idp_initiated;
        cfg.allow_sha1 = opts.allow_sha1;
        cfg.sign_requests = opts.sign_requests;
        c.updated_at = self.clock.now();
        self.stores.federation.update_connection(&c).await?;
        self.audit_all("org.connection_updated", &c, actor).await;
        Ok(c)
    }
}

/// The XML of a posted `SAMLResponse` (HTTP-POST binding: base64, line breaks allowed).
pub fn decode_response(saml_response: &str) -> FederationResult<String> {
    let clean: String = saml_response.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD.decode(clean).map_err(|_| FederationError::Rejected("SAMLResponse is not base64".into()))?;
    String::from_utf8(bytes).map_err(|_| FederationError::Rejected("SAMLResponse is not UTF-8".into()))
}

/// The identity an assertion describes, through the connection's attribute mapping. The subject
/// is the NameID, unless it is transient (new at every sign-in): then the email address.
#[doc(hidden)] // public for the fuzzing harness (src/fuzzing.rs)
pub fn identity_of(id: ConnectionId, cfg: &SamlUpstream, v: &xml::Verified) -> FederationResult<FederatedIdentity> {
    let find = |names: &[String]| -> Option<Vec<String>> {
        names.iter().find_map(|n| {
            v.attributes
                .iter()
                .find(|(name, friendly, values)| (name == n || friendly.as_deref() == Some(n)) && !values.is_empty())
                .map(|(_, _, values)| values.clone())
        })
    };
    let first = |names: &[String]| find(names).and_then(|v| v.into_iter().find(|s| !s.is_empty()));
    let email = if v.name_id_format.as_deref() == Some(EMAIL_FORMAT) && v.name_id.contains('@') {
        Some(v.name_id.clone())
    } else {
        first(&cfg.mapping.email)
    };
    let name =
        first(&cfg.mapping.name).or_else(|| match (first(&cfg.mapping.given_name), first(&cfg.mapping.family_name)) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (g, f) => g.or(f),
        });
    let subject = if v.name_id_format.as_deref() == Some(TRANSIENT_FORMAT) {
        let e = email.as_deref().ok_or_else(|| FederationError::Rejected("a transient NameID and no email".into()))?;
        format!("email:{}", e.to_lowercase())
    } else {
        v.name_id.clone()
    };
    Ok(FederatedIdentity {
        connection: id,
        subject,
        email,
        // A company IdP asserts its own directory's addresses; admission still requires a domain
        // verified by the connection's organization.
        email_verified: true,
        name,
        groups: find(&cfg.mapping.groups).unwrap_or_default(),
    })
}

/// Refreshes the metadata given by URL a minute after start (so a node restarted more often
/// than daily still refreshes), then every `every`.
pub fn spawn_metadata_refresh(
    federation: Arc<FederationService>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        let mut tick = tokio::time::interval(every.max(std::time::Duration::from_secs(60)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            federation.refresh_saml_metadata().await;
        }
    })
}
