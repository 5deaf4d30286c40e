//! OAuth 2.0 / OIDC client registrations (RFC 6749 §2, OIDC Dynamic Registration §2 metadata).

use std::fmt;
use std::str::FromStr;

use url::Url;

use super::UnixTime;

/// `client_id`: opaque, random, URL-safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),* }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)*
                    other => Err(format!(
                        "unsupported {} {other:?} (one of: {})",
                        stringify!($name),
                        [$($wire),*].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

wire_enum!(
    /// RFC 6749 §2.3 / OIDC Core §9 client authentication at the token endpoint.
    ClientAuthMethod {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        PrivateKeyJwt = "private_key_jwt",
        None = "none",
    }
);

wire_enum!(
    /// Grant types a client may use (RFC 6749 §4, §6).
    GrantType {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
    }
);

wire_enum!(
    /// OIDC Registration `application_type`: native clients get the RFC 8252 loopback rule.
    ApplicationType {
        Web = "web",
        Native = "native",
    }
);

wire_enum!(
    /// JWS algorithms Guichet signs with (RFC 7518 §3, RFC 8037).
    SigningAlg {
        RS256 = "RS256",
        ES256 = "ES256",
        EdDSA = "EdDSA",
    }
);

#[derive(Debug, Clone, serde::Serialize)]
pub struct Client {
    pub client_id: ClientId,
    pub name: String,
    #[serde(skip)]
    pub secret_digest: Option<String>,
    pub token_endpoint_auth_method: ClientAuthMethod,
    pub application_type: ApplicationType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    pub first_party: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    pub id_token_signed_response_alg: SigningAlg,
    /// Put scope claims (profile, email, ...) in the ID token too, not only at userinfo.
    pub id_token_claims: bool,
    /// A resource server that may introspect access tokens issued to other clients
    /// (RFC 7662 §4); otherwise a client may only introspect its own tokens.
    pub introspection: bool,
    /// Sign-ins for this client need a second factor, whatever the global policy.
    pub require_mfa: bool,
    /// Bound to one organization: only its members may sign in to it, acting for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<super::OrgId>,
    pub created_at: UnixTime,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == ClientAuthMethod::None
    }

    pub fn allows(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }

    /// Exact string match (RFC 9700 §2.1), except that a native client's loopback redirect
    /// URI matches on any port (RFC 8252 §7.3). Nothing is normalised: only the port may vary,
    /// the rest is compared as a string; userinfo and fragments never match.
    pub fn redirect_uri_registered(&self, candidate: &str) -> bool {
        if candidate.contains('#') || candidate.chars().any(|c| c.is_control() || c == ' ') {
            return false;
        }
        if self.redirect_uris.iter().any(|r| r == candidate) {
            return true;
        }
        if self.application_type != ApplicationType::Native {
            return false;
        }
        let Some(c) = split_loopback(candidate) else { return false };
        self.redirect_uris.iter().filter_map(|r| split_loopback(r)).any(|r| r.host == c.host && r.rest == c.rest)
    }

    pub fn post_logout_redirect_uri_registered(&self, candidate: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == candidate)
    }
}

/// A loopback redirect URI taken apart as written: `http://` + an IP literal host + optional
/// `:port` + the rest (path and query), with no normalisation (RFC 8252 §7.3, §8.3).
struct LoopbackUri<'a> {
    host: &'a str,
    rest: &'a str,
}

fn split_loopback(raw: &str) -> Option<LoopbackUri<'_>> {
    let after = raw.strip_prefix("http://")?;
    let host_end =
        if after.starts_with('[') { after.find(']')? + 1 } else { after.find([':', '/', '?']).unwrap_or(after.len()) };
    let host = &after[..host_end];
    let loopback = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()),
        // Dotted-quad only: `127.1`, `2130706433` or `0x7f000001` do not parse.
        None => host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    };
    if !loopback {
        return None;
    }
    let mut rest = &after[host_end..];
    if let Some(p) = rest.strip_prefix(':') {
        let digits = p.find(['/', '?']).unwrap_or(p.len());
        if digits == 0 || digits > 5 || !p[..digits].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest = &p[digits..];
    }
    if !rest.starts_with('/') || rest.contains('@') {
        return None;
    }
    Some(LoopbackUri { host, rest })
}

fn is_loopback_ip_host(u: &Url) -> bool {
    matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

fn is_loopback_host(u: &Url) -> bool {
    is_loopback_ip_host(u) || u.host_str() == Some("localhost")
}

/// Validates a redirect URI at registration: absolute, no fragment, no userinfo; web clients
/// https (http only on loopback hosts, for development); native clients a loopback http URI or
/// a private-use scheme containing a dot (RFC 8252 §7.1).
pub fn validate_redirect_uri(raw: &str, app: ApplicationType) -> Result<(), String> {
    let u = Url::parse(raw).map_err(|e| format!("redirect URI {raw:?} is not an absolute URI: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("redirect URI {raw:?} must not contain a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("redirect URI {raw:?} must not contain credentials"));
    }
    match (u.scheme(), app) {
        ("https", _) => Ok(()),
        ("http", _) if is_loopback_host(&u) => Ok(()),
        ("http", ApplicationType::Web) => {
            Err(format!("redirect URI {raw:?}: web clients must use https (http only for localhost)"))
        }
        ("http", ApplicationType::Native) => Err(format!("redirect URI {raw:?}: native clients use http only on loopback")),
        (scheme, ApplicationType::Native) if scheme.contains('.') => Ok(()),
        (scheme, _) => Err(format!(
            "redirect URI {raw:?}: scheme {scheme:?} not allowed (web: https; native: loopback http or reverse-domain scheme)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(app: ApplicationType, uris: &[&str]) -> Client {
        Client {
            client_id: ClientId::new("c"),
            name: "c".into(),
            secret_digest: None,
            token_endpoint_auth_method: ClientAuthMethod::None,
            application_type: app,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            jwks_uri: None,
            jwks: None,
            first_party: false,
            backchannel_logout_uri: None,
            id_token_signed_response_alg: SigningAlg::RS256,
            id_token_claims: true,
            introspection: false,
            require_mfa: false,
            org_id: None,
            created_at: UnixTime(0),
        }
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let c = client(ApplicationType::Web, &["https://app.example.com/cb"]);
        assert!(c.redirect_uri_registered("https://app.example.com/cb"));
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://APP.example.com/cb",
            "https://app.example.com/cb#f",
        ] {
            assert!(!c.redirect_uri_registered(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_port_is_free_for_native_clients_only() {
        let native = client(ApplicationType::Native, &["http://127.0.0.1/callback"]);
        assert!(native.redirect_uri_registered("http://127.0.0.1:51004/callback"));
        assert!(!native.redirect_uri_registered("http://127.0.0.1:51004/other"));
        assert!(!native.redirect_uri_registered("http://localhost:51004/callback"));
        let web = client(ApplicationType::Web, &["http://127.0.0.1/callback"]);
        assert!(!web.redirect_uri_registered("http://127.0.0.1:51004/callback"));
    }

    #[test]
    fn loopback_uris_are_compared_as_written() {
        let native = client(ApplicationType::Native, &["http://127.0.0.1/cb", "http://[::1]/cb"]);
        assert!(native.redirect_uri_registered("http://[::1]:4000/cb"));
        for bad in [
            "http://127.1:4000/cb",
            "http://2130706433:4000/cb",
            "http://0x7f000001:4000/cb",
            "http://127.0.0.1:4000/x/../cb",
            "HTTP://127.0.0.1:4000/cb",
            "http://127.0.0.1:4000/c\tb",
            "http://u@127.0.0.1:4000/cb",
            "http://127.0.0.1:4000/cb#f",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:999999/cb",
            "http://127.0.0.2:4000/cb",
        ] {
            assert!(!native.redirect_uri_registered(bad), "{bad}");
        }
    }

    #[test]
    fn registration_rules() {
        assert!(validate_redirect_uri("https://app.example.com/cb", ApplicationType::Web).is_ok());
        assert!(validate_redirect_uri("http://localhost:3000/cb", ApplicationType::Web).is_ok());
        assert!(validate_redirect_uri("http://app.example.com/cb", ApplicationType::Web).is_err());
        assert!(validate_redirect_uri("https://app.example.com/cb#x", ApplicationType::Web).is_err());
        assert!(validate_redirect_uri("com.example.app:/cb", ApplicationType::Native).is_ok());
        assert!(validate_redirect_uri("myapp:/cb", ApplicationType::Native).is_err());
        assert!(validate_redirect_uri("/relative", ApplicationType::Web).is_err());
        assert_eq!("EdDSA".parse::<SigningAlg>(), Ok(SigningAlg::EdDSA));
        assert!("none".parse::<SigningAlg>().is_err());
    }
}
