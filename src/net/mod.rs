//! The one outbound-URL policy: which URLs Guichet may call on behalf of someone else (webhooks,
//! identity providers configured by organization admins), and a client that keeps to it.
//!
//! The same code runs when a URL is saved ([`OutboundPolicy::check_syntax`] or
//! [`OutboundPolicy::check`]) and at every request ([`OutboundPolicy::send`] and its sugar
//! [`get`](OutboundPolicy::get) and [`post_json`](OutboundPolicy::post_json)):
//!
//! - **Syntax**, on the raw string, before `url::Url::parse` (which would repair it): at most
//!   [`MAX_URL_BYTES`]; strict RFC 3986 ASCII (no space, backslash, control character or other
//!   character outside the RFC's set; well-formed percent-escapes, none in the host); scheme
//!   `http` or `https`; an authority (`//`); no user-info (any `@` in the authority); no port
//!   but the scheme's default (`:80`, `:443` written out are fine); no fragment.
//! - **Hosts**: canonical dotted IPv4 (four decimal octets without leading zeros: `127.1`,
//!   `0x7f.0.0.1`, `2130706433`, `017.0.0.1` are refused), bracketed IPv6 without zone id, or a
//!   DNS name ([`DomainName`]: at least two labels). `localhost` and the zones in
//!   [`INTERNAL_ZONES`] are refused before any DNS question.
//! - **Addresses**: every address must be public ([`is_public_ip`]); for a name, A and AAAA are
//!   both asked and **every** answer must be public (no answer, or a DNS failure, is a
//!   refusal; a CNAME chain is judged by its final answers).
//! - **Pinning**: the client of a policy ([`OutboundPolicy::client`]) resolves names with our
//!   [`Resolver`] through the same checks and connects only to the addresses it checked, so a
//!   DNS answer that changes between the check and the connection (rebinding) gains nothing.
//!   Reqwest does not call the resolver for an IP-literal URL: [`OutboundPolicy::send`] checks
//!   the URL before the request, and the client also checks the peer address of every new
//!   connection before a byte of HTTP is sent (defence in depth).
//! - **Responses**: no redirect is followed, [`TIMEOUT`] for the whole exchange, bodies read
//!   with [`read_capped`] (at most [`MAX_RESPONSE_BYTES`]).
//!
//! Every refusal shows the caller the same message ("this URL is not allowed"): the precise
//! reason ([`OutboundError::reason`], [`Refusal`]) is for logs, and is logged at `info`.
//!
//! Two switches: [`Policy::PublicOrLoopback`] (tests: loopback addresses and `localhost` pass,
//! with any port; private and every other block stay refused) and [`Policy::Unrestricted`] for
//! URLs configured by the platform operator (an intranet IdP): only the scheme is checked, the
//! system resolver and proxies are used; redirects, timeout and body cap stay.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::client::legacy::connect::{Connection, HttpInfo};

use crate::dns::Resolver;
use crate::domain::dns_name::{DomainError, DomainName};

/// Longest URL accepted, bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Largest response body [`read_capped`] is meant to be given, bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Time allowed for a whole exchange (connection, request, response).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Zones refused before DNS (special-use or private by convention): the last label of a name.
pub const INTERNAL_ZONES: &[&str] =
    &["local", "localhost", "internal", "localdomain", "arpa", "onion", "test", "invalid"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which destinations are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Public addresses only, default ports only. The policy for anything an organization
    /// admin or a user configures.
    Public,
    /// [`Policy::Public`], plus loopback (127.0.0.0/8, `::1`, `localhost`) with any port. For
    /// tests only: private and every other special block stay refused.
    PublicOrLoopback,
    /// No destination check (URLs configured by the platform operator): `http`/`https` only.
    Unrestricted,
}

impl Policy {
    fn allow_loopback(self) -> bool {
        self == Self::PublicOrLoopback
    }

    fn allows_ip(self, ip: IpAddr) -> bool {
        match self {
            Self::Public => is_public_ip(ip),
            Self::PublicOrLoopback => is_public_ip(ip) || is_loopback(ip),
            Self::Unrestricted => true,
        }
    }

    /// The peer of a new connection: an allowed address, and a port other than 80 and 443
    /// only on loopback (the URL check allows other ports nowhere else).
    fn allows_peer(self, peer: SocketAddr) -> bool {
        match self {
            Self::Unrestricted => true,
            _ if is_loopback(peer.ip()) => self.allow_loopback(),
            _ => self.allows_ip(peer.ip()) && matches!(peer.port(), 80 | 443),
        }
    }
}

/// Why a URL was refused. For logs only: callers see [`OutboundError::Refused`]'s generic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("URL longer than {MAX_URL_BYTES} bytes ({0})")]
    TooLong(usize),
    #[error("URL not in ASCII")]
    NotAscii,
    #[error("character {0:?} not allowed in a URL")]
    Character(char),
    #[error("malformed percent-encoding")]
    BadPercentEncoding,
    #[error("URL with a fragment")]
    Fragment,
    #[error("scheme {0:?} (http or https only)")]
    Scheme(String),
    #[error("no authority (//host) after the scheme")]
    NoAuthority,
    #[error("user info in the authority")]
    UserInfo,
    #[error("empty host")]
    EmptyHost,
    #[error("percent-encoding in the host")]
    PercentInHost,
    #[error("zone id in an IPv6 host")]
    ZoneId,
    #[error("host {0:?} is not a valid IPv6 address")]
    BadIpv6(String),
    #[error("host {0:?} is not a canonical dotted IPv4 address")]
    NonCanonicalIpv4(String),
    #[error("malformed port {0:?}")]
    BadPort(String),
    #[error("port {0} is not the default port of the scheme")]
    Port(u16),
    #[error("host {0:?} is not a public DNS name: {1}")]
    Name(String, DomainError),
    #[error("host {0:?} is an internal name")]
    InternalName(String),
    #[error("URL does not parse the same way: {0}")]
    Unparsable(String),
    #[error("address {0} is not public")]
    Address(IpAddr),
    #[error("{host} resolves to {ip}, which is not public")]
    ResolvedTo { host: String, ip: IpAddr },
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("DNS look-up of {host} failed: {error}")]
    Dns { host: String, error: String },
    #[error("connection to {0}, which is not allowed")]
    Peer(SocketAddr),
    #[error("connection without a known peer address")]
    UnknownPeer,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL (or where it leads) is not allowed. Same message whatever the reason.
    #[error("this URL is not allowed")]
    Refused(Refusal),
    /// The response body is larger than the cap given to [`read_capped`].
    #[error("the response is too large (more than {0} bytes)")]
    TooLarge(usize),
    #[error("the request failed")]
    Request(#[source] reqwest::Error),
}

impl OutboundError {
    /// The precise reason, for logs (never for the caller: it may tell what is behind a name).
    pub fn reason(&self) -> String {
        match self {
            Self::Refused(r) => r.to_string(),
            Self::TooLarge(_) => self.to_string(),
            Self::Request(e) => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                text
            }
        }
    }

    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// A reqwest error is a refusal when the policy's resolver or connection guard refused
/// (somewhere in its chain of sources); otherwise a failed request.
impl From<reqwest::Error> for OutboundError {
    fn from(e: reqwest::Error) -> Self {
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(OutboundError::Refused(r)) = s.downcast_ref::<OutboundError>() {
                return Self::Refused(r.clone());
            }
            source = s.source();
        }
        Self::Request(e)
    }
}

fn refused(reason: Refusal) -> OutboundError {
    tracing::info!(%reason, "outbound URL refused");
    OutboundError::Refused(reason)
}

/// Whether `ip` may be called: outside every IANA special-purpose block.
///
/// IPv4 refused: 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24,
/// 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 and
/// 240/4 (255.255.255.255 included).
///
/// IPv6: only global unicast 2000::/3 may pass, minus 2001::/23 (IETF protocol assignments:
/// Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28 and 2001:20::/28, ...),
/// 2001:db8::/32 and 3fff::/20 (documentation) and 2002::/16 (6to4). Everything else lies
/// outside 2000::/3 and is refused with it: ::, ::1, IPv4-compatible ::/96, IPv4-mapped
/// ::ffff:0:0/96, IPv4-translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48,
/// discard-only 100::/64, unique-local fc00::/7, site-local fec0::/10, link-local fe80::/10,
/// multicast ff00::/8. So no IPv6 form embedding an IPv4 address passes.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_SPECIAL.iter().any(|&(net, len)| in_v4(v4, net, len)),
        IpAddr::V6(v6) => in_v6(v6, V6_GLOBAL_UNICAST, 3) && !V6_SPECIAL.iter().any(|&(net, len)| in_v6(v6, net, len)),
    }
}

const V4_SPECIAL: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, limited broadcast
];

const V6_GLOBAL_UNICAST: Ipv6Addr = Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0);

const V6_SPECIAL: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments (Teredo, ORCHID, ...)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
];

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// A host that passed the syntax checks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    /// `localhost`, with [`Policy::PublicOrLoopback`] only: 127.0.0.1 and ::1, without DNS.
    Localhost,
    Name(DomainName),
    /// A name under [`Policy::Unrestricted`] (left to the system resolver).
    Unchecked,
}

/// A URL that passed the syntax checks.
struct Parsed {
    url: url::Url,
    host: Host,
    /// The port is the scheme's (written out or not).
    default_port: bool,
}

/// The checks, without the client: `Copy`, shared by the policy, its resolver and its guard.
#[derive(Debug, Clone, Copy)]
struct Checker {
    resolver: Resolver,
    policy: Policy,
}

impl Checker {
    fn parse(&self, raw: &str) -> Result<Parsed, Refusal> {
        if self.policy == Policy::Unrestricted {
            let url = url::Url::parse(raw).map_err(|e| Refusal::Unparsable(e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Refusal::Scheme(url.scheme().to_owned()));
            }
            let host = match url.host() {
                Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
                Some(url::Host::Ipv6(ip)) => Host::Ip(ip.into()),
                _ => Host::Unchecked,
            };
            return Ok(Parsed { url, host, default_port: true });
        }
        let raw_parts = split_raw(raw)?;
        let default_port = match raw_parts.port {
            None => true,
            Some(p) if p == default_port_of(raw_parts.https) => true,
            Some(p) => {
                let port = canonical_port(p).ok_or_else(|| Refusal::BadPort(p.to_owned()))?;
                if !self.policy.allow_loopback() {
                    return Err(Refusal::Port(port));
                }
                false
            }
        };
        let host = self.classify_host(raw_parts.host, raw_parts.bracketed)?;
        if !default_port {
            // Loopback only: known now for a literal or `localhost`, after DNS for a name.
            if let Host::Ip(ip) = host {
                if !is_loopback(ip) {
                    return Err(Refusal::Port(raw_parts.port.and_then(canonical_port).unwrap_or(0)));
                }
            }
        }
        let url = url::Url::parse(raw).map_err(|e| Refusal::Unparsable(e.to_string()))?;
        // The parser must agree with what was checked.
        let same_host = match (url.host(), &host) {
            (Some(url::Host::Ipv4(a)), Host::Ip(b)) => IpAddr::V4(a) == *b,
            (Some(url::Host::Ipv6(a)), Host::Ip(b)) => IpAddr::V6(a) == *b,
            (Some(url::Host::Domain(d)), Host::Localhost) => d.strip_suffix('.').unwrap_or(d) == "localhost",
            (Some(url::Host::Domain(d)), Host::Name(n)) => d.strip_suffix('.').unwrap_or(d) == n.as_str(),
            _ => false,
        };
        let same_port = url.port().is_none() == default_port;
        if !same_host
            || !same_port
            || !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
        {
            return Err(Refusal::Unparsable(url.to_string()));
        }
        if let Host::Ip(ip) = host {
            if !self.policy.allows_ip(ip) {
                return Err(Refusal::Address(ip));
            }
        }
        Ok(Parsed { url, host, default_port })
    }

    /// A host as written in a URL (or given to reqwest's resolver), without its brackets.
    fn classify_host(&self, host: &str, bracketed: bool) -> Result<Host, Refusal> {
        if host.is_empty() {
            return Err(Refusal::EmptyHost);
        }
        if bracketed {
            if host.contains('%') {
                return Err(Refusal::ZoneId);
            }
            return host
                .parse::<Ipv6Addr>()
                .map(|ip| Host::Ip(ip.into()))
                .map_err(|_| Refusal::BadIpv6(host.to_owned()));
        }
        if host.contains('%') {
            return Err(Refusal::PercentInHost);
        }
        if let Some(ip) = canonical_ipv4(host) {
            return Ok(Host::Ip(ip.into()));
        }
        if looks_numeric(host) {
            return Err(Refusal::NonCanonicalIpv4(host.to_owned()));
        }
        let lower = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if lower == "localhost" {
            return if self.policy.allow_loopback() { Ok(Host::Localhost) } else { Err(Refusal::InternalName(lower)) };
        }
        let name = DomainName::parse(host).map_err(|e| Refusal::Name(host.to_owned(), e))?;
        if name.as_str().rsplit('.').next().is_some_and(|tld| INTERNAL_ZONES.contains(&tld)) {
            return Err(Refusal::InternalName(name.into_string()));
        }
        Ok(Host::Name(name))
    }

    /// The addresses of a checked host, every one allowed (at least one).
    async fn addresses(&self, host: &Host) -> Result<Vec<IpAddr>, Refusal> {
        let (label, ips) = match host {
            Host::Unchecked => return Err(Refusal::NoAddress("(unchecked host)".to_owned())),
            Host::Ip(ip) => (ip.to_string(), vec![*ip]),
            Host::Localhost => ("localhost".to_owned(), vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]),
            Host::Name(name) => {
                let ips = self
                    .resolver
                    .lookup_ip(name.as_str())
                    .await
                    .map_err(|e| Refusal::Dns { host: name.to_string(), error: e.to_string() })?;
                (name.to_string(), ips)
            }
        };
        if ips.is_empty() {
            return Err(Refusal::NoAddress(label));
        }
        if let Some(&ip) = ips.iter().find(|&&ip| !self.policy.allows_ip(ip)) {
            return Err(match host {
                Host::Ip(_) => Refusal::Address(ip),
                _ => Refusal::ResolvedTo { host: label, ip },
            });
        }
        Ok(ips)
    }
}

/// The pieces of a raw URL that passed the character checks.
struct RawParts<'a> {
    https: bool,
    host: &'a str,
    bracketed: bool,
    port: Option<&'a str>,
}

fn default_port_of(https: bool) -> &'static str {
    if https {
        "443"
    } else {
        "80"
    }
}

/// Checks on the raw string, before any parser repairs it.
fn split_raw(raw: &str) -> Result<RawParts<'_>, Refusal> {
    if raw.len() > MAX_URL_BYTES {
        return Err(Refusal::TooLong(raw.len()));
    }
    if !raw.is_ascii() {
        return Err(Refusal::NotAscii);
    }
    let bytes = raw.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'#' => return Err(Refusal::Fragment),
            b'%' => {
                let escape = bytes.get(i + 1..i + 3);
                if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(Refusal::BadPercentEncoding);
                }
            }
            b if b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=".contains(&b) => {}
            other => return Err(Refusal::Character(char::from(other))),
        }
    }
    let Some((scheme, rest)) = raw.split_once(':') else {
        return Err(Refusal::Scheme(String::new()));
    };
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(Refusal::Scheme(scheme.chars().take(16).collect()));
    };
    let rest = rest.strip_prefix("//").ok_or(Refusal::NoAuthority)?;
    let (authority, path_and_query) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if let Some(c) = path_and_query.chars().find(|c| matches!(c, '[' | ']')) {
        return Err(Refusal::Character(c));
    }
    if authority.contains('@') {
        return Err(Refusal::UserInfo);
    }
    let (host, bracketed, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or_else(|| Refusal::BadIpv6(authority.to_owned()))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| Refusal::BadPort(after.to_owned()))?),
        };
        (host, true, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, false, Some(port)),
            None => (authority, false, None),
        }
    };
    if !bracketed {
        if let Some(c) = host.chars().find(|c| matches!(c, '[' | ']')) {
            return Err(Refusal::Character(c));
        }
    }
    if host.is_empty() {
        return Err(Refusal::EmptyHost);
    }
    Ok(RawParts { https, host, bracketed, port })
}

/// A port written canonically: 1 to 65535, decimal, no leading zero.
fn canonical_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.starts_with('0') || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&n| n != 0)
}

/// Four decimal octets, 0 to 255, no leading zero, nothing else.
fn canonical_ipv4(host: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = host.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// What a URL parser (WHATWG) would read as an IPv4 address in some form: digits and dots
/// only, or a last label that is a number (decimal, or hexadecimal after `0x`).
fn looks_numeric(host: &str) -> bool {
    let is_number = |label: &str| {
        let hex = label.strip_prefix("0x").or_else(|| label.strip_prefix("0X"));
        match hex {
            Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    host.bytes().all(|b| b.is_ascii_digit() || b == b'.') || trimmed.rsplit('.').next().is_some_and(is_number)
}

/// A client builder with the process's one TLS configuration: the system's CA certificates
/// are read and parsed once, not once per client (each copy holds ~0.4 MB), and every client
/// verifies certificates and refuses anything older than TLS 1.2.
pub fn client_builder() -> anyhow::Result<reqwest::ClientBuilder> {
    static TLS: std::sync::OnceLock<native_tls::TlsConnector> = std::sync::OnceLock::new();
    let tls = match TLS.get() {
        Some(tls) => tls.clone(),
        None => {
            let made =
                native_tls::TlsConnector::builder().min_protocol_version(Some(native_tls::Protocol::Tlsv12)).build()?;
            TLS.get_or_init(|| made).clone()
        }
    };
    Ok(reqwest::Client::builder().use_preconfigured_tls(tls))
}

/// The policy and a client that keeps to it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    checker: Checker,
    client: reqwest::Client,
}

impl OutboundPolicy {
    /// [`Policy::Public`], or [`Policy::PublicOrLoopback`] when `allow_loopback` (tests).
    pub fn new(resolver: Resolver, allow_loopback: bool) -> anyhow::Result<Self> {
        Self::with_policy(resolver, if allow_loopback { Policy::PublicOrLoopback } else { Policy::Public })
    }

    /// [`Policy::Unrestricted`]: for URLs the platform operator configured.
    pub fn unrestricted() -> anyhow::Result<Self> {
        // Never asked: names go to the system resolver under this policy.
        let resolver = Resolver::with_server(SocketAddr::from((Ipv4Addr::LOCALHOST, 53)), Duration::from_secs(1));
        Self::with_policy(resolver, Policy::Unrestricted)
    }

    pub fn with_policy(resolver: Resolver, policy: Policy) -> anyhow::Result<Self> {
        let checker = Checker { resolver, policy };
        let builder = client_builder()?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(concat!("Guichet/", env!("CARGO_PKG_VERSION")));
        let builder = match policy {
            Policy::Unrestricted => builder,
            // No proxy: a proxy would resolve and connect in our place.
            Policy::Public | Policy::PublicOrLoopback => {
                builder.no_proxy().dns_resolver(Arc::new(PinnedResolver(checker))).connector_layer(GuardLayer(policy))
            }
        };
        Ok(Self { checker, client: builder.build()? })
    }

    pub fn policy(&self) -> Policy {
        self.checker.policy
    }

    /// Syntax checks and, for an IP-literal host, the address check; no DNS. For save-time
    /// validation where DNS is not wanted (a name's addresses are checked at each request).
    ///
    /// With [`Policy::PublicOrLoopback`], a name with another port than the scheme's passes
    /// here: it must then resolve to loopback addresses only, which [`check`](Self::check)
    /// and the client verify.
    pub fn check_syntax(&self, raw: &str) -> Result<url::Url, OutboundError> {
        self.checker.parse(raw).map(|p| p.url).map_err(refused)
    }

    /// The full check: syntax, then the addresses of the host (A and AAAA for a name), every
    /// one allowed. Returns the URL and the checked addresses with the URL's port. Under
    /// [`Policy::Unrestricted`], the system resolver's addresses, unchecked.
    pub async fn check(&self, raw: &str) -> Result<(url::Url, Vec<SocketAddr>), OutboundError> {
        let parsed = self.checker.parse(raw).map_err(refused)?;
        let port = parsed.url.port_or_known_default().unwrap_or(80);
        if self.checker.policy == Policy::Unrestricted {
            let addrs = match parsed.host {
                Host::Ip(ip) => vec![SocketAddr::new(ip, port)],
                _ => {
                    let host = parsed.url.host_str().unwrap_or_default().to_owned();
                    let looked_up = tokio::net::lookup_host((host.as_str(), port)).await;
                    match looked_up {
                        Ok(addrs) => addrs.collect(),
                        Err(e) => return Err(refused(Refusal::Dns { host: host.clone(), error: e.to_string() })),
                    }
                }
            };
            return Ok((parsed.url, addrs));
        }
        let ips = self.checker.addresses(&parsed.host).await.map_err(refused)?;
        if !parsed.default_port && !ips.iter().all(|&ip| is_loopback(ip)) {
            return Err(refused(Refusal::Port(port)));
        }
        Ok((parsed.url, ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()))
    }

    /// The client: no redirect, [`TIMEOUT`], no proxy, names resolved through the policy
    /// (only checked addresses are returned, so only they are connected to), and the peer of
    /// every new connection checked before the request is written.
    ///
    /// Prefer [`send`](Self::send), [`get`](Self::get) or [`post_json`](Self::post_json):
    /// they check the URL first, so a refusal is an [`OutboundError::Refused`] and no
    /// connection is opened. Used directly, the client still refuses an IP-literal URL whose
    /// address is not allowed, but only once the TCP connection (and, for `https`, the TLS
    /// handshake) is made, since reqwest does not ask the resolver about IP literals; and it
    /// does not apply the syntax rules (user-info, port, ...). Map its errors with
    /// `OutboundError::from` to see refusals.
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// Checks the request's URL, then sends it through the policy's client. The way to send
    /// anything with headers or a body of one's own:
    /// `policy.send(policy.client().post(url).header(..).body(..))`.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, OutboundError> {
        let request = request.build().map_err(OutboundError::Request)?;
        self.checker.parse(request.url().as_str()).map_err(refused)?;
        self.client.execute(request).await.map_err(OutboundError::from)
    }

    /// `GET raw`, after the checks of [`check_syntax`](Self::check_syntax); the addresses are
    /// checked when the client resolves the name.
    pub async fn get(&self, raw: &str) -> Result<reqwest::Response, OutboundError> {
        let url = self.check_syntax(raw)?;
        self.send(self.client.get(url)).await
    }

    /// `POST raw` with `body` as JSON, checked as [`get`](Self::get) is.
    pub async fn post_json<T: serde::Serialize + ?Sized>(
        &self,
        raw: &str,
        body: &T,
    ) -> Result<reqwest::Response, OutboundError> {
        let url = self.check_syntax(raw)?;
        self.send(self.client.post(url).json(body)).await
    }
}

/// Reads the body of `resp`, failing with [`OutboundError::TooLarge`] as soon as it is
/// longer than `max` bytes (announced or read).
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Bytes, OutboundError> {
    if resp.content_length().is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(OutboundError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(OutboundError::from)? {
        if body.len() + chunk.len() > max {
            return Err(OutboundError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Reqwest's resolver for the policy's client: the host checks, then our DNS resolver, then
/// every address checked; only those are returned (port 0: reqwest puts the URL's).
#[derive(Debug)]
struct PinnedResolver(Checker);

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let checker = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let checked = match checker.classify_host(&host, false) {
                Ok(h) => checker.addresses(&h).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(ips) => {
                    let addrs: reqwest::dns::Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                Err(reason) => Err(Box::new(refused(reason)) as BoxError),
            }
        })
    }
}

/// Checks the peer address of each new connection of the client (IP-literal URLs do not go
/// through the resolver).
#[derive(Debug, Clone, Copy)]
struct GuardLayer(Policy);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, policy: self.0 }
    }
}

#[derive(Debug, Clone)]
struct Guard<S> {
    inner: S,
    policy: Policy,
}

impl<S, R> tower::Service<R> for Guard<S>
where
    S: tower::Service<R, Error = BoxError>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.inner.call(req);
        let policy = self.policy;
        Box::pin(async move {
            let conn = connecting.await?;
            let mut extensions = axum::http::Extensions::new();
            conn.connected().get_extras(&mut extensions);
            match extensions.get::<HttpInfo>().map(HttpInfo::remote_addr) {
                Some(peer) if policy.allows_peer(peer) => Ok(conn),
                Some(peer) => Err(Box::new(refused(Refusal::Peer(peer))) as BoxError),
                None => Err(Box::new(refused(Refusal::UnknownPeer)) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests;
