//! Fuzzing entry points: the cargo-fuzz targets in `fuzz/` call these, and
//! `tests/fuzz_regressions.rs` replays the committed seeds and every crash ever found through
//! them (docs/FUZZING.md).
//!
//! Each `pub fn <target>(data: &[u8])` drives Guichet's real parsing and validation code with
//! arbitrary input and must never panic, abort or hang: any of those is a bug. Each has a
//! `<target>_checked` twin that says what was decided, so the tests can prove that the seeds reach
//! the deep checks (a harness that refused everything early would fuzz nothing).
//!
//! The fixtures are fixed: the keys and certificates committed under `fuzz/keys/` (test keys,
//! trusted by nothing but these harnesses), the clock ([`NOW`]), the issuer, the SAML connection
//! and the registered clients. They are built once per process (a fuzz target is a plain
//! function: a `OnceLock` is the only place to keep them). The assertions in this module are the
//! harnesses' own invariants: a failed one is a finding, like any other panic.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::pkey::{PKey, Private};
use samael::crypto::CertificateDer;

use crate::config::Settings;
use crate::domain::federation::{AttributeMapping, FederatedIdentity, SamlUpstream};
use crate::domain::{
    ApplicationType, Client, ClientAuthMethod, ClientId, Clock, ConnectionId, GrantType, SigningAlg, UnixTime,
};
use crate::federation::saml::{self, xml};
use crate::net::{OutboundPolicy, Policy};
use crate::oidc::authorize::{AuthorizationRequest, AuthorizeError, AuthorizeParams};
use crate::oidc::client_auth::{PresentedCredentials, JWT_BEARER};
use crate::oidc::{jwt, KeySet, NoExtraClaims, OidcProvider};

/// The harnesses' clock (2027-01-15T08:00:00Z): the seeds' times are set around it.
pub const NOW: i64 = 1_800_000_000;
/// Guichet's issuer in the harnesses.
pub const ISSUER: &str = "https://login.fuzz.example";
/// The SAML connection of the harness: its id, SP entityID and ACS (as Guichet names them).
pub const SAML_CONNECTION: &str = "0190a0a0-0000-7000-8000-00000000f022";
pub const SAML_SP_ENTITY_ID: &str = "https://login.fuzz.example/saml/0190a0a0-0000-7000-8000-00000000f022/metadata";
pub const SAML_ACS_URL: &str = "https://login.fuzz.example/saml/0190a0a0-0000-7000-8000-00000000f022/acs";
/// The IdP of that connection.
pub const SAML_IDP_ENTITY_ID: &str = "https://idp.fuzz.example/saml";
/// The AuthnRequest the browser is answering (responses without `InResponseTo` are judged as
/// IdP-initiated).
pub const SAML_REQUEST_ID: &str = "_fuzz0000000000000000000000000000000000000001";
/// The registered clients: a confidential web client, a public native one, a `private_key_jwt`
/// one.
pub const WEB_CLIENT: &str = "fuzz-web";
pub const NATIVE_CLIENT: &str = "fuzz-native";
pub const JWT_CLIENT: &str = "fuzz-jwt";

const IDP_CERT_PEM: &str = include_str!("../fuzz/keys/idp.crt.pem");
const SP_KEY_PEM: &str = include_str!("../fuzz/keys/sp.key.pem");
const SP_CERT_PEM: &str = include_str!("../fuzz/keys/sp.crt.pem");
/// Guichet's signing keys (key files as `guichet keys` writes them).
const OIDC_KEYS: &[(&str, &str)] = &[
    ("sig-rs256-fuzz.json", include_str!("../fuzz/keys/oidc/rs256.json")),
    ("sig-es256-fuzz.json", include_str!("../fuzz/keys/oidc/es256.json")),
    ("sig-eddsa-fuzz.json", include_str!("../fuzz/keys/oidc/eddsa.json")),
];
/// The public JWK Set of the `private_key_jwt` client.
const CLIENT_JWKS: &str = include_str!("../fuzz/keys/client-jwks.public.json");

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime(NOW)
    }
}

/// A fixture that cannot be built leaves nothing to fuzz: stop loudly.
#[allow(clippy::panic)]
fn fixture_failed(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("fuzzing fixture {what}: {e}")
}

fn text(data: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(data).map_err(|_| "not UTF-8".to_owned())
}

// ------------------------------------------------------------------------------------ SAML

struct SamlFixture {
    certs: Vec<CertificateDer>,
    sp_key: PKey<Private>,
    upstream: SamlUpstream,
    connection: ConnectionId,
}

fn saml_fixture() -> &'static SamlFixture {
    static F: OnceLock<SamlFixture> = OnceLock::new();
    F.get_or_init(|| {
        let der = |pem: &str| {
            openssl::x509::X509::from_pem(pem.as_bytes())
                .and_then(|c| c.to_der())
                .unwrap_or_else(|e| fixture_failed("certificate", e))
        };
        let sp_key = PKey::private_key_from_pem(SP_KEY_PEM.as_bytes()).unwrap_or_else(|e| fixture_failed("SP key", e));
        let upstream = SamlUpstream {
            idp_entity_id: SAML_IDP_ENTITY_ID.to_owned(),
            sso_url: "https://idp.fuzz.example/sso".to_owned(),
            certs: vec![STANDARD.encode(der(IDP_CERT_PEM))],
            metadata_url: None,
            metadata_refreshed_at: None,
            metadata_error: None,
            want_assertions_signed: false,
            allow_idp_initiated: true,
            allow_sha1: false,
            sign_requests: false,
            sp_key_sealed: String::new(),
            sp_cert: STANDARD.encode(der(SP_CERT_PEM)),
            mapping: AttributeMapping::default(),
            restricted: false,
            group_roles: Vec::new(),
        };
        let connection = SAML_CONNECTION.parse().unwrap_or_else(|e| fixture_failed("connection id", e));
        SamlFixture { certs: vec![CertificateDer::from(der(IDP_CERT_PEM))], sp_key, upstream, connection }
    })
}

/// The SAML ACS: the posted `SAMLResponse` decoded, then [`xml::validate`] (structural screen,
/// decryption, XML signatures with the connection's certificate, every binding of the Web
/// Browser SSO profile) and the attribute mapping. `data` is taken both as the decoded XML
/// (where mutations bite) and as the posted base64 value. Stops where the replay cache (a store)
/// would be asked: the result is that of the XML reading.
pub fn saml_response_checked(data: &[u8]) -> Result<FederatedIdentity, String> {
    let raw = text(data)?;
    match saml::decode_response(raw) {
        Ok(xml) => {
            let posted = saml_xml(&xml);
            let _ = saml_xml(raw);
            posted
        }
        Err(_) => saml_xml(raw),
    }
}

pub fn saml_response(data: &[u8]) {
    let _ = saml_response_checked(data);
}

fn saml_xml(xml: &str) -> Result<FederatedIdentity, String> {
    if xml.len() > saml::MAX_RESPONSE_BYTES {
        return Err("too large".into());
    }
    let f = saml_fixture();
    let expect = xml::Expect {
        idp_entity_id: SAML_IDP_ENTITY_ID,
        sp_entity_id: SAML_SP_ENTITY_ID,
        acs_url: SAML_ACS_URL,
        request_id: xml.contains("InResponseTo").then_some(SAML_REQUEST_ID),
        now: NOW,
        want_assertions_signed: false,
        allow_sha1: false,
        certs: &f.certs,
        sp_key: &f.sp_key,
    };
    let v = xml::validate(xml, &expect).map_err(|r| format!("{r:?}"))?;
    assert!(v.response_signed || v.assertion_signed, "accepted an unsigned response");
    assert!(!v.assertion_id.is_empty() && !v.name_id.trim().is_empty(), "accepted without IDs");
    assert!(v.valid_until > NOW, "accepted an expired assertion");
    saml::identity_of(f.connection, &f.upstream, &v).map_err(|e| e.to_string())
}

// ------------------------------------------------------------------------------ OIDC fixture

struct OidcFixture {
    rt: tokio::runtime::Runtime,
    provider: OidcProvider,
    clients: Vec<Client>,
    client_jwks: serde_json::Value,
}

fn client(id: &str, method: ClientAuthMethod, app: ApplicationType, uris: &[&str]) -> Client {
    Client {
        client_id: ClientId::new(id),
        name: id.to_owned(),
        secret_digest: None,
        token_endpoint_auth_method: method,
        application_type: app,
        redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        jwks_uri: None,
        jwks: None,
        first_party: false,
        backchannel_logout_uri: None,
        id_token_signed_response_alg: SigningAlg::RS256,
        id_token_claims: false,
        introspection: false,
        require_mfa: false,
        org_id: None,
        created_at: UnixTime(NOW - 86_400),
    }
}

/// A private directory (0700) for key files (0600), as the key loader requires.
fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("guichet-fuzz-{}-{}", std::process::id(), nanos.unwrap_or(0)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?.write_all(body)
}

fn oidc_fixture() -> &'static OidcFixture {
    static F: OnceLock<OidcFixture> = OnceLock::new();
    F.get_or_init(|| build_oidc().unwrap_or_else(|e| fixture_failed("OIDC provider", format!("{e:#}"))))
}

/// Guichet's provider over an in-memory SQLite store (migrated), with the committed signing
/// keys, the fixed clock and the three clients registered.
fn build_oidc() -> anyhow::Result<OidcFixture> {
    let dir = private_dir()?;
    let loaded = (|| -> anyhow::Result<_> {
        for (name, body) in OIDC_KEYS {
            write_private(&dir.join(name), body.as_bytes())?;
        }
        let clock: Arc<dyn Clock> = Arc::new(FixedClock);
        let keys = KeySet::load_or_init(&dir, clock.clone(), 86_400)?;
        let secret = crate::crypto::keys::server_secret(&dir)?;
        Ok((clock, keys, secret))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (clock, keys, secret) = loaded?;
    let mut settings = Settings::default();
    settings.server.issuer = ISSUER.to_owned();
    settings.database.url = "sqlite::memory:".to_owned();
    settings.redis.url = None;
    // The fixed clock never moves: a client read once stays cached.
    settings.oidc.client_cache_secs = 3600;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let opened = rt.block_on(crate::app::open_stores(&settings, clock.clone()))?;
    let provider = OidcProvider::new(&settings, opened.stores, Arc::new(keys), clock, secret, Arc::new(NoExtraClaims))?;
    let client_jwks: serde_json::Value = serde_json::from_str(CLIENT_JWKS)?;
    let mut jwt_client =
        client(JWT_CLIENT, ClientAuthMethod::PrivateKeyJwt, ApplicationType::Web, &["https://jwt.fuzz.example/cb"]);
    jwt_client.jwks = Some(client_jwks.clone());
    let clients = vec![
        client(
            WEB_CLIENT,
            ClientAuthMethod::ClientSecretBasic,
            ApplicationType::Web,
            &["https://app.fuzz.example/cb", "http://localhost:3000/callback"],
        ),
        client(
            NATIVE_CLIENT,
            ClientAuthMethod::None,
            ApplicationType::Native,
            &["http://127.0.0.1/callback", "http://[::1]/callback", "com.example.app:/oauth2redirect"],
        ),
        jwt_client,
    ];
    for c in &clients {
        rt.block_on(provider.stores.clients.create_client(c))?;
    }
    Ok(OidcFixture { rt, provider, clients, client_jwks })
}

// -------------------------------------------------------------------------------------- JWS

/// Who accepted a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAccepted {
    /// Verified as one of our ID tokens (`id_token_hint` at the authorization and end-session
    /// endpoints).
    IdToken,
    /// As one of our access tokens (`typ` `at+jwt`, userinfo).
    AccessToken,
    /// As one of our logout tokens (`typ` `logout+jwt`).
    LogoutToken,
    /// As the `client_assertion` of the `private_key_jwt` client at the token endpoint
    /// (signature with its JWK Set, `iss`/`sub`/`aud`/`exp`/`nbf`/`jti`, jti replay cache).
    ClientAssertion,
}

/// JWS/JWT as Guichet reads them from untrusted input: our own tokens coming back (signature
/// with our keys, `alg` bound to the key, `typ`), and client assertions (the whole client
/// authentication at the token endpoint). Returns who accepted the token.
pub fn jws_checked(data: &[u8]) -> Result<Vec<JwsAccepted>, String> {
    let token = text(data)?;
    let f = oidc_fixture();
    let keys = &f.provider.keys;
    let mut accepted = Vec::new();
    let mut ours_refused = None;
    for (typ, who) in [
        (None, JwsAccepted::IdToken),
        (Some("at+jwt"), JwsAccepted::AccessToken),
        (Some("logout+jwt"), JwsAccepted::LogoutToken),
    ] {
        match jwt::verify_ours(keys, token, typ) {
            Ok(claims) => {
                for name in ["exp", "iat", "nbf", "auth_time"] {
                    let _ = jwt::numeric_date(&claims, name);
                }
                accepted.push(who);
            }
            Err(e) => ours_refused = ours_refused.or(Some(e)),
        }
    }
    if let Ok(claims) = jwt::peek_claims(token) {
        let _ = jwt::numeric_date(&claims, "exp");
    }
    let direct = jwt::verify_with_jwks(&f.client_jwks, token);
    let creds = PresentedCredentials {
        client_assertion_type: Some(JWT_BEARER.to_owned()),
        client_assertion: Some(token.to_owned()),
        ..Default::default()
    };
    match f.rt.block_on(f.provider.authenticate_client(&creds)) {
        Ok(c) => {
            assert_eq!(c.client_id.as_str(), JWT_CLIENT, "a client assertion authenticated another client");
            assert!(direct.is_ok(), "a client assertion accepted with a signature the JWK Set refuses");
            accepted.push(JwsAccepted::ClientAssertion);
        }
        Err(e) if accepted.is_empty() => {
            return Err(format!(
                "ours: {}; client assertion: {e}",
                ours_refused.map(|e| e.to_string()).unwrap_or_default()
            ))
        }
        Err(_) => {}
    }
    Ok(accepted)
}

pub fn jws(data: &[u8]) {
    let _ = jws_checked(data);
}

// ----------------------------------------------------------------------------- callback URLs

/// Which of Guichet's URL checks accepted a URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallbackVerdict {
    /// Webhook URLs and organizations' URLs, syntax and literal-address part (no DNS):
    /// [`Policy::Public`], [`Policy::PublicOrLoopback`] (tests), [`Policy::Unrestricted`]
    /// (the operator's own URLs).
    pub public: bool,
    pub public_or_loopback: bool,
    pub unrestricted: bool,
    /// A redirect URI at registration, for a web and for a native client.
    pub redirect_web: bool,
    pub redirect_native: bool,
    /// A client registration with this URL as redirect URI, post-logout redirect URI and
    /// back-channel logout URI (web client).
    pub registration: bool,
    /// At the authorization endpoint, against the registered URI (the input's first line
    /// when it has two): web and native clients.
    pub matches_web: bool,
    pub matches_native: bool,
}

impl CallbackVerdict {
    pub fn any(&self) -> bool {
        self.public
            || self.public_or_loopback
            || self.unrestricted
            || self.redirect_web
            || self.redirect_native
            || self.registration
    }
}

fn policies() -> &'static [OutboundPolicy; 3] {
    static P: OnceLock<[OutboundPolicy; 3]> = OnceLock::new();
    P.get_or_init(|| {
        // Never asked: check_syntax does no DNS.
        let resolver = crate::dns::Resolver::with_server(
            std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
            std::time::Duration::from_millis(1),
        );
        let p = |policy| {
            OutboundPolicy::with_policy(resolver, policy).unwrap_or_else(|e| fixture_failed("outbound policy", e))
        };
        [p(Policy::Public), p(Policy::PublicOrLoopback), p(Policy::Unrestricted)]
    })
}

/// Callback URLs: webhook URLs (the outbound-URL policy, without DNS), client redirect URIs at
/// registration and at the authorization endpoint, back-channel logout URIs. The input is one
/// URL, or two lines: a registered redirect URI, then the URI a request presents.
pub fn callback_url_checked(data: &[u8]) -> Result<CallbackVerdict, String> {
    let raw = text(data)?;
    let (registered, candidate) = raw.split_once('\n').unwrap_or((raw, raw));
    let [public, loopback, unrestricted] = policies();
    let hook = candidate.trim();
    let p = public.check_syntax(hook);
    let l = loopback.check_syntax(hook);
    let u = unrestricted.check_syntax(hook);
    if let Ok(url) = &p {
        assert!(l.is_ok() && u.is_ok(), "a URL the strict policy accepts is refused by a looser one: {hook:?}");
        assert!(matches!(url.scheme(), "http" | "https"), "{hook:?}");
        assert!(url.username().is_empty() && url.password().is_none() && url.fragment().is_none(), "{hook:?}");
        assert!(url.port().is_none(), "a non-default port passed the public policy: {hook:?}");
        let host = url.host_str().unwrap_or_default();
        assert!(host != "localhost" && !host.ends_with(".localhost"), "{hook:?}");
        if let Some(url::Host::Ipv4(ip)) = url.host() {
            assert!(crate::net::is_public_ip(ip.into()), "{hook:?}");
        }
        if let Some(url::Host::Ipv6(ip)) = url.host() {
            assert!(crate::net::is_public_ip(ip.into()), "{hook:?}");
        }
    }
    if l.is_ok() {
        assert!(u.is_ok(), "a URL the loopback policy accepts is refused unrestricted: {hook:?}");
    }
    let registration = |app, uri: &str| crate::oidc::clients::Registration {
        name: "fuzz".into(),
        redirect_uris: vec![uri.to_owned()],
        post_logout_redirect_uris: vec![uri.to_owned()],
        auth_method: ClientAuthMethod::ClientSecretBasic,
        application_type: app,
        grant_types: vec![GrantType::AuthorizationCode],
        jwks_uri: None,
        jwks: None,
        first_party: false,
        backchannel_logout_uri: Some(uri.to_owned()),
        id_token_signed_response_alg: SigningAlg::RS256,
        id_token_claims: false,
        introspection: false,
        require_mfa: false,
        org_id: None,
    };
    let mut v = CallbackVerdict {
        public: p.is_ok(),
        public_or_loopback: l.is_ok(),
        unrestricted: u.is_ok(),
        redirect_web: crate::domain::client::validate_redirect_uri(candidate, ApplicationType::Web).is_ok(),
        redirect_native: crate::domain::client::validate_redirect_uri(candidate, ApplicationType::Native).is_ok(),
        registration: crate::oidc::clients::validate(&registration(ApplicationType::Web, candidate)).is_ok(),
        ..Default::default()
    };
    // A request's redirect_uri is compared with URIs that passed registration.
    for (app, slot) in [(ApplicationType::Web, &mut v.matches_web), (ApplicationType::Native, &mut v.matches_native)] {
        if crate::domain::client::validate_redirect_uri(registered, app).is_err() {
            continue;
        }
        let method =
            if app == ApplicationType::Native { ClientAuthMethod::None } else { ClientAuthMethod::ClientSecretBasic };
        let c = client("fuzz", method, app, &[registered]);
        *slot = c.redirect_uri_registered(candidate);
        if candidate == registered && !candidate.contains('#') && !candidate.chars().any(|c| c.is_control() || c == ' ')
        {
            assert!(*slot, "a registered redirect URI does not match itself: {candidate:?}");
        }
        if *slot && candidate != registered {
            assert!(app == ApplicationType::Native, "a web client matched another URI: {candidate:?}");
            assert!(candidate.starts_with("http://") && registered.starts_with("http://"), "{candidate:?}");
            assert!(!candidate.contains('@') && !candidate.contains('#'), "{candidate:?}");
        }
    }
    Ok(v)
}

pub fn callback_url(data: &[u8]) {
    let _ = callback_url_checked(data);
}

// ------------------------------------------------------------------------- authorize request

/// The authorization endpoint: the query string read as the handler reads it (each parameter
/// once), then [`OidcProvider::validate_authorize`] (client, redirect URI, response type and
/// mode, scope, PKCE, prompt, max_age, claims, `id_token_hint`) against the registered clients.
/// What follows (session, consent, code) needs a browser session and is not fuzzed here.
pub fn authorize_request_checked(data: &[u8]) -> Result<AuthorizationRequest, String> {
    let params: AuthorizeParams = crate::web::pages::unique_params(data).map_err(|e| e.to_string())?;
    let f = oidc_fixture();
    let registered = |uri: &str| {
        f.clients
            .iter()
            .any(|c| Some(c.client_id.as_str()) == params.client_id.as_deref() && c.redirect_uri_registered(uri))
    };
    match f.rt.block_on(f.provider.validate_authorize(&params)) {
        Ok((client, req)) => {
            assert!(registered(&req.redirect_uri), "accepted an unregistered redirect_uri");
            assert!(!client.is_public() || req.code_challenge.is_some(), "a public client without PKCE");
            let _ = req.consent_scope();
            Ok(req)
        }
        Err(AuthorizeError::Redirect(r)) => {
            // Never an open redirector: errors go back only to a registered redirect URI.
            assert!(registered(&r.redirect_uri), "an error redirected to an unregistered URI: {:?}", r.redirect_uri);
            Err(format!("redirected: {:?}", r.params))
        }
        Err(AuthorizeError::Page(m)) => Err(m),
        Err(AuthorizeError::Unavailable(e)) => Err(e.to_string()),
    }
}

pub fn authorize_request(data: &[u8]) {
    let _ = authorize_request_checked(data);
}

// ------------------------------------------------------------------------------------ config

/// The config loader: `data` as the config file (written to a scratch file: the loader reads a
/// path), no environment. What loads has passed validation: checked again here.
pub fn config_checked(data: &[u8]) -> Result<Settings, String> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    let path =
        PATH.get_or_init(|| std::env::temp_dir().join(format!("guichet-fuzz-config-{}.toml", std::process::id())));
    std::fs::write(path, data).map_err(|e| format!("scratch file: {e}"))?;
    let loaded = Settings::load(Some(path), &[]);
    let _ = std::fs::remove_file(path);
    let s = loaded.map_err(|e| e.to_string())?;
    assert!(s.validate().is_ok() && s.database.kind().is_ok() && s.issuer_url().is_ok());
    Ok(s)
}

pub fn config(data: &[u8]) {
    let _ = config_checked(data);
}
