//! Unit tests of the outbound-URL policy.

use super::*;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn special_ipv4_blocks_are_refused_at_both_ends() {
    let blocks = [
        ("0.0.0.0", "0.255.255.255"),
        ("10.0.0.0", "10.255.255.255"),
        ("100.64.0.0", "100.127.255.255"),
        ("127.0.0.0", "127.255.255.255"),
        ("169.254.0.0", "169.254.255.255"),
        ("172.16.0.0", "172.31.255.255"),
        ("192.0.0.0", "192.0.0.255"),
        ("192.0.2.0", "192.0.2.255"),
        ("192.88.99.0", "192.88.99.255"),
        ("192.168.0.0", "192.168.255.255"),
        ("198.18.0.0", "198.19.255.255"),
        ("198.51.100.0", "198.51.100.255"),
        ("203.0.113.0", "203.0.113.255"),
        ("224.0.0.0", "239.255.255.255"),
        ("240.0.0.0", "255.255.255.254"),
        ("255.255.255.255", "255.255.255.255"),
    ];
    for (first, last) in blocks {
        assert!(!is_public_ip(v4(first)), "{first}");
        assert!(!is_public_ip(v4(last)), "{last}");
    }
    for a in ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200"] {
        assert!(!is_public_ip(v4(a)), "{a}");
    }
    // Just outside.
    let public = [
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.255",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        "1.1.1.1",
        "8.8.8.8",
    ];
    for a in public {
        assert!(is_public_ip(v4(a)), "{a}");
    }
}

#[test]
fn special_ipv6_blocks_are_refused_at_both_ends() {
    let blocks = [
        ("::", "::"),                                                                           // unspecified
        ("::1", "::1"),                                                                         // loopback
        ("::", "::ffff:ffff"),                                                                  // IPv4-compatible
        ("::ffff:0:0", "::ffff:ffff:ffff"),                                                     // IPv4-mapped
        ("::ffff:0:0:0", "::ffff:0:ffff:ffff"),                                                 // IPv4-translated
        ("64:ff9b::", "64:ff9b::ffff:ffff"),                                                    // NAT64
        ("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"),                                  // local NAT64
        ("100::", "100::ffff:ffff:ffff:ffff"),                                                  // discard-only
        ("2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"),                                     // Teredo
        ("2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"),                                      // benchmarking
        ("2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"),                                 // ORCHID
        ("2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"),                                 // ORCHIDv2
        ("2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"), // IETF protocol assignments
        ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), // documentation
        ("3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"), // documentation
        ("2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), // 6to4
        ("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), // unique-local
        ("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), // site-local
        ("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), // link-local
        ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), // multicast
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), // below 2000::/3
        ("4000::", "4000::"),                                 // above 2000::/3
    ];
    for (first, last) in blocks {
        assert!(!is_public_ip(v6(first)), "{first}");
        assert!(!is_public_ip(v6(last)), "{last}");
    }
    for a in
        ["::ffff:127.0.0.1", "::ffff:8.8.8.8", "::8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "::ffff:0:808:808"]
    {
        assert!(!is_public_ip(v6(a)), "{a} embeds IPv4");
    }
    let public = [
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2000::",
        "2001:200::",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2003::",
        "3ffe::",
        "3fff:1000::",
        "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    for a in public {
        assert!(is_public_ip(v6(a)), "{a}");
    }
}

#[test]
fn loopback_switch_lets_loopback_only() {
    let p = Policy::PublicOrLoopback;
    for a in ["127.0.0.1", "127.1.2.3", "::1", "8.8.8.8", "2606:4700:4700::1111"] {
        assert!(p.allows_ip(ip(a)), "{a}");
    }
    for a in ["10.0.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::", "::ffff:127.0.0.1", "fe80::1", "fc00::1"] {
        assert!(!p.allows_ip(ip(a)), "{a}");
        assert!(!Policy::Public.allows_ip(ip(a)), "{a}");
    }
    assert!(!Policy::Public.allows_ip(ip("127.0.0.1")));
    assert!(!Policy::Public.allows_ip(ip("::1")));
    let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert!(p.allows_peer(peer("127.0.0.1:8080")));
    assert!(p.allows_peer(peer("8.8.8.8:443")));
    assert!(!p.allows_peer(peer("8.8.8.8:8080")));
    assert!(!Policy::Public.allows_peer(peer("127.0.0.1:80")));
    assert!(!Policy::Public.allows_peer(peer("10.0.0.1:80")));
    assert!(Policy::Public.allows_peer(peer("1.1.1.1:80")));
}

fn policy(allow_loopback: bool) -> OutboundPolicy {
    let unused = Resolver::with_server(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)), Duration::from_millis(10));
    OutboundPolicy::new(unused, allow_loopback).unwrap()
}

fn refusal(p: &OutboundPolicy, raw: &str) -> Refusal {
    match p.check_syntax(raw) {
        Err(OutboundError::Refused(r)) => r,
        other => panic!("{raw:?}: {other:?}"),
    }
}

#[test]
fn url_syntax_rules() {
    let p = policy(false);
    let ok = [
        ("https://b.example:443", "https://b.example/"),
        ("http://b.example:80/x?y=1&z=%2F", "http://b.example/x?y=1&z=%2F"),
        ("https://hooks.example.com/a/b", "https://hooks.example.com/a/b"),
        ("HTTPS://Hooks.Example.COM/Path", "https://hooks.example.com/Path"),
        ("https://example.com./", "https://example.com./"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
        ("http://1.1.1.1/", "http://1.1.1.1/"),
        ("http://[2606:4700:4700::1111]/", "http://[2606:4700:4700::1111]/"),
        ("https://b.example", "https://b.example/"),
    ];
    for (raw, want) in ok {
        assert_eq!(p.check_syntax(raw).map(|u| u.to_string()).map_err(|e| e.reason()), Ok(want.to_owned()), "{raw}");
    }
    let long_ok = format!("https://b.example/{}", "a".repeat(MAX_URL_BYTES - 18));
    assert_eq!(long_ok.len(), MAX_URL_BYTES);
    assert!(p.check_syntax(&long_ok).is_ok());
    let too_long = format!("{long_ok}a");
    assert_eq!(refusal(&p, &too_long), Refusal::TooLong(2049));

    let refused = [
        ("http://a@b.example", Refusal::UserInfo),
        ("http://a:pw@b.example/", Refusal::UserInfo),
        ("http://@b.example/", Refusal::UserInfo),
        ("http://b.example:8080", Refusal::Port(8080)),
        ("https://b.example:80/", Refusal::Port(80)),
        ("http://b.example:443/", Refusal::Port(443)),
        ("https://b.example:0443/", Refusal::BadPort("0443".into())),
        ("https://b.example:/", Refusal::BadPort(String::new())),
        ("https://b.example:99999/", Refusal::BadPort("99999".into())),
        ("ftp://b.example/", Refusal::Scheme("ftp".into())),
        ("file:///etc/passwd", Refusal::Scheme("file".into())),
        ("gopher://b.example/", Refusal::Scheme("gopher".into())),
        ("b.example/x", Refusal::Scheme(String::new())),
        ("http:b.example/", Refusal::NoAuthority),
        ("http:/b.example/", Refusal::NoAuthority),
        ("http:///b.example/", Refusal::EmptyHost),
        ("http://", Refusal::EmptyHost),
        ("http://127.1/", Refusal::NonCanonicalIpv4("127.1".into())),
        ("http://0x7f000001/", Refusal::NonCanonicalIpv4("0x7f000001".into())),
        ("http://0x7f.0.0.1/", Refusal::NonCanonicalIpv4("0x7f.0.0.1".into())),
        ("http://2130706433/", Refusal::NonCanonicalIpv4("2130706433".into())),
        ("http://017.0.0.1/", Refusal::NonCanonicalIpv4("017.0.0.1".into())),
        ("http://1.1.1.1./", Refusal::NonCanonicalIpv4("1.1.1.1.".into())),
        ("http://1.1.1.256/", Refusal::NonCanonicalIpv4("1.1.1.256".into())),
        ("http://b.example.0x10/", Refusal::NonCanonicalIpv4("b.example.0x10".into())),
        ("http://b.example.123/", Refusal::NonCanonicalIpv4("b.example.123".into())),
        ("http://127.0.0.1/", Refusal::Address(ip("127.0.0.1"))),
        ("http://10.0.0.1/", Refusal::Address(ip("10.0.0.1"))),
        ("http://169.254.169.254/latest/meta-data/", Refusal::Address(ip("169.254.169.254"))),
        ("http://0.0.0.0/", Refusal::Address(ip("0.0.0.0"))),
        ("http://[::1]/", Refusal::Address(ip("::1"))),
        ("http://[::ffff:127.0.0.1]/", Refusal::Address(ip("::ffff:7f00:1"))),
        ("http://[fe80::1%25eth0]/", Refusal::ZoneId),
        ("http://[fe80::1]/", Refusal::Address(ip("fe80::1"))),
        ("http://[v1.x]/", Refusal::BadIpv6("v1.x".into())),
        ("http://[::1/", Refusal::BadIpv6("[::1".into())),
        ("http://[2606:4700:4700::1111]x/", Refusal::BadPort("x".into())),
        ("http://exämple.com/", Refusal::NotAscii),
        ("http://example.com/a b", Refusal::Character(' ')),
        ("http://example.com\\@evil.com/", Refusal::Character('\\')),
        ("http://example.com/\t", Refusal::Character('\t')),
        ("http://example.com/\n", Refusal::Character('\n')),
        ("http://example.com/\u{7f}", Refusal::Character('\u{7f}')),
        ("http://example.com/\"", Refusal::Character('"')),
        ("http://example.com/<x>", Refusal::Character('<')),
        ("http://example.com/{x}", Refusal::Character('{')),
        ("http://example.com/a|b", Refusal::Character('|')),
        ("http://example.com/[x]", Refusal::Character('[')),
        ("http://exa[mple.com/", Refusal::Character('[')),
        ("http://example.com/%zz", Refusal::BadPercentEncoding),
        ("http://example.com/%4", Refusal::BadPercentEncoding),
        ("http://ex%61mple.com/", Refusal::PercentInHost),
        ("http://example.com/#frag", Refusal::Fragment),
        ("http://example.com#", Refusal::Fragment),
        ("http://localhost/", Refusal::InternalName("localhost".into())),
        ("http://LOCALHOST./", Refusal::InternalName("localhost".into())),
        ("http://x.localhost/", Refusal::InternalName("x.localhost".into())),
        ("http://x.internal/", Refusal::InternalName("x.internal".into())),
        ("http://x.test/", Refusal::InternalName("x.test".into())),
        ("http://foo.local/", Refusal::InternalName("foo.local".into())),
        ("http://foo.LOCAL./", Refusal::InternalName("foo.local".into())),
        ("http://db.localdomain/", Refusal::InternalName("db.localdomain".into())),
        ("http://1.0.0.127.in-addr.arpa/", Refusal::InternalName("1.0.0.127.in-addr.arpa".into())),
        ("http://router.home.arpa/", Refusal::InternalName("router.home.arpa".into())),
        ("http://abc.onion/", Refusal::InternalName("abc.onion".into())),
        ("http://x.invalid/", Refusal::InternalName("x.invalid".into())),
        ("http://intranet/", Refusal::Name("intranet".into(), DomainError::SingleLabel)),
        ("http://intranet./", Refusal::Name("intranet.".into(), DomainError::SingleLabel)),
        ("http://-a.example/", Refusal::Name("-a.example".into(), DomainError::BadLabel("-a".into()))),
        ("http://a_b.example/", Refusal::Name("a_b.example".into(), DomainError::BadLabel("a_b".into()))),
        ("http://a..example/", Refusal::Name("a..example".into(), DomainError::BadLabel(String::new()))),
    ];
    for (raw, want) in refused {
        assert_eq!(refusal(&p, raw), want, "{raw:?}");
    }
    // The caller sees one message whatever the reason; the reason is for logs.
    let e = p.check_syntax("http://127.0.0.1/").unwrap_err();
    assert_eq!(e.to_string(), "this URL is not allowed");
    assert_eq!(p.check_syntax("http://a@b.example/").unwrap_err().to_string(), "this URL is not allowed");
    assert_eq!(e.reason(), "address 127.0.0.1 is not public");
    assert_eq!(e.refusal(), Some(&Refusal::Address(ip("127.0.0.1"))));
}

#[test]
fn a_checked_url_checks_again() {
    // `send` checks the serialised URL of the request: what passed must pass again.
    let p = policy(false);
    for raw in [
        "https://b.example:443",
        "HTTP://B.example/a/../b?c",
        "https://example.com./x%20y",
        "http://[2606:4700:4700::1111]:80",
    ] {
        let url = p.check_syntax(raw).unwrap();
        assert_eq!(p.check_syntax(url.as_str()).unwrap(), url, "{raw}");
    }
}

#[test]
fn loopback_switch_in_urls() {
    let p = policy(true);
    for raw in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/",
        "http://[::1]:8080/",
        "http://localhost/",
        "http://localhost:8080/x",
        // A name with another port must resolve to loopback only (checked after DNS).
        "http://app.example.com:8080/",
    ] {
        assert!(p.check_syntax(raw).is_ok(), "{raw}");
    }
    for (raw, want) in [
        ("http://10.0.0.1/", Refusal::Address(ip("10.0.0.1"))),
        ("http://[::ffff:127.0.0.1]/", Refusal::Address(ip("::ffff:7f00:1"))),
        ("http://1.1.1.1:8080/", Refusal::Port(8080)),
        ("http://x.localhost/", Refusal::InternalName("x.localhost".into())),
        ("http://foo.local/", Refusal::InternalName("foo.local".into())),
        ("http://127.1/", Refusal::NonCanonicalIpv4("127.1".into())),
        ("http://a@localhost/", Refusal::UserInfo),
    ] {
        assert_eq!(refusal(&p, raw), want, "{raw:?}");
    }
}

#[test]
fn unrestricted_checks_the_scheme_only() {
    let p = OutboundPolicy::unrestricted().unwrap();
    assert_eq!(p.policy(), Policy::Unrestricted);
    for raw in ["http://intranet:8443/", "http://10.0.0.1/", "https://idp.internal/", "http://localhost/"] {
        assert!(p.check_syntax(raw).is_ok(), "{raw}");
    }
    assert_eq!(refusal(&p, "ftp://intranet/"), Refusal::Scheme("ftp".into()));
}

#[tokio::test]
async fn literal_addresses_need_no_dns() {
    let p = policy(true);
    let (url, addrs) = p.check("http://localhost:8080/x").await.unwrap();
    assert_eq!(url.as_str(), "http://localhost:8080/x");
    assert_eq!(addrs, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap(), "[::1]:8080".parse().unwrap()]);
    let (_, addrs) = policy(false).check("https://1.1.1.1").await.unwrap();
    assert_eq!(addrs, ["1.1.1.1:443".parse::<SocketAddr>().unwrap()]);
}
