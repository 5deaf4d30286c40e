//! The DNS stub resolver (`guichet::dns::Resolver`) against the loopback test server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use guichet::config::DnsSettings;
use guichet::dns::{DnsError, Resolver};
use guichet::domain::DomainName;

use crate::dns_server::TestDns;

const CHALLENGE: &str = "_guichet-challenge.o1.test";

fn resolver(dns: &TestDns) -> Resolver {
    let settings = DnsSettings { resolver: Some(dns.addr.to_string()), timeout_ms: 2000, ..Default::default() };
    Resolver::new(&settings).unwrap()
}

#[tokio::test]
async fn txt_record_is_found() {
    let dns = TestDns::start().await;
    let domain = DomainName::parse("O1.test").unwrap();
    assert_eq!(domain.challenge_name(), CHALLENGE);
    dns.set_txt(CHALLENGE, &["gc-4f2a9d", "v=spf1 -all"]);
    let r = resolver(&dns);
    assert_eq!(r.txt(&domain.challenge_name()).await.unwrap(), ["gc-4f2a9d", "v=spf1 -all"]);
    assert_eq!(dns.queries_for(CHALLENGE), 1);
    // Case does not matter, nor a trailing dot.
    assert_eq!(r.txt("_GUICHET-challenge.O1.TEST.").await.unwrap(), ["gc-4f2a9d", "v=spf1 -all"]);
    assert_eq!(dns.queries(), 2);
    // A value longer than one character-string (255 bytes) comes back whole.
    let long = "x".repeat(300);
    dns.set_txt(CHALLENGE, &[&long]);
    assert_eq!(r.txt(CHALLENGE).await.unwrap(), [long]);
}

#[tokio::test]
async fn the_table_changes_while_the_server_runs_and_nothing_is_cached() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    assert!(r.txt(CHALLENGE).await.unwrap().is_empty());
    dns.set_txt(CHALLENGE, &["first"]);
    assert_eq!(r.txt(CHALLENGE).await.unwrap(), ["first"]);
    dns.set_txt(CHALLENGE, &["second"]);
    assert_eq!(r.txt(CHALLENGE).await.unwrap(), ["second"]);
    dns.clear(CHALLENGE);
    assert!(r.txt(CHALLENGE).await.unwrap().is_empty());
    assert_eq!(dns.queries_for(CHALLENGE), 4);
}

#[tokio::test]
async fn missing_records_are_an_empty_answer() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    // NXDOMAIN.
    assert_eq!(r.txt("_guichet-challenge.nowhere.test").await.unwrap(), Vec::<String>::new());
    // The name exists, without TXT records (NOERROR, no answer).
    dns.set_a(CHALLENGE, &[Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(r.txt(CHALLENGE).await.unwrap(), Vec::<String>::new());
    assert_eq!(dns.queries(), 2);
}

#[tokio::test]
async fn records_at_other_names_do_not_count() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    dns.set_txt("o1.test", &["at the domain itself"]);
    dns.set_txt("_guichet-challenge.o2.test", &["for another domain"]);
    dns.set_txt("_guichet-challenge.sub.o1.test", &["for a subdomain"]);
    assert!(r.txt(CHALLENGE).await.unwrap().is_empty());
    assert_eq!(r.txt("_guichet-challenge.o2.test").await.unwrap(), ["for another domain"]);
}

#[tokio::test]
async fn servfail_is_an_error() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    dns.set_txt(CHALLENGE, &["value"]);
    dns.fail(CHALLENGE);
    let e = r.txt(CHALLENGE).await.unwrap_err();
    assert_eq!(e, DnsError::Rcode(2));
    assert_eq!(e.to_string(), "the DNS server answered SERVFAIL");
    // Through a CNAME too.
    dns.set_cname("alias.o1.test", CHALLENGE);
    assert_eq!(r.txt("alias.o1.test").await, Err(DnsError::Rcode(2)));
    assert!(matches!(r.txt("bad name.test").await, Err(DnsError::InvalidName(_))));
}

#[tokio::test]
async fn cname_chains_are_followed() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    dns.set_cname(CHALLENGE, "o1.verify.test");
    dns.set_cname("o1.verify.test", "records.provider.test");
    dns.set_txt("records.provider.test", &["gc-chain"]);
    assert_eq!(r.txt(CHALLENGE).await.unwrap(), ["gc-chain"]);
    // A chain to nowhere is an empty answer.
    dns.clear("records.provider.test");
    assert!(r.txt(CHALLENGE).await.unwrap().is_empty());
    // A loop is an error, not a hang.
    dns.set_cname("loop-a.test", "loop-b.test");
    dns.set_cname("loop-b.test", "loop-a.test");
    assert_eq!(r.txt("loop-a.test").await, Err(DnsError::CnameChainTooLong));
}

#[tokio::test]
async fn a_large_answer_comes_over_tcp() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    let values: Vec<String> = (0..20).map(|i| format!("token-{i:02}-{}", "v".repeat(90))).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    dns.set_txt(CHALLENGE, &refs);
    let mut got = r.txt(CHALLENGE).await.unwrap();
    got.sort();
    assert_eq!(got, values);
    assert_eq!((dns.queries(), dns.tcp_queries()), (2, 1), "one truncated UDP answer, then TCP");
}

#[tokio::test]
async fn forged_answers_are_ignored() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    dns.spoof(true);
    dns.set_txt(CHALLENGE, &["genuine"]);
    assert_eq!(r.txt(CHALLENGE).await.unwrap(), ["genuine"]);
    assert!(r.txt("_guichet-challenge.o2.test").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_deadline() {
    // A socket that reads nothing and answers nothing.
    let silent = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let settings =
        DnsSettings { resolver: Some(silent.local_addr().unwrap().to_string()), timeout_ms: 400, ..Default::default() };
    let r = Resolver::new(&settings).unwrap();
    let started = Instant::now();
    assert_eq!(r.txt(CHALLENGE).await, Err(DnsError::Timeout));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(350) && took < Duration::from_millis(1500), "{took:?}");
    // The question was asked twice.
    let mut buf = [0u8; 512];
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(1), silent.recv_from(&mut buf)).await.unwrap().unwrap();
    }
    let started = Instant::now();
    assert_eq!(r.lookup_ip("o1.test").await, Err(DnsError::Timeout));
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn lookup_ip_gives_a_and_aaaa() {
    let dns = TestDns::start().await;
    let r = resolver(&dns);
    dns.set_a("hooks.o1.test", &[Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)]);
    dns.set_aaaa("hooks.o1.test", &[Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)]);
    let mut ips = r.lookup_ip("hooks.o1.test").await.unwrap();
    ips.sort();
    let want: Vec<IpAddr> = vec![
        Ipv4Addr::new(192, 0, 2, 10).into(),
        Ipv4Addr::new(192, 0, 2, 11).into(),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
    ];
    assert_eq!(ips, want);
    assert_eq!(dns.queries_for("hooks.o1.test"), 2, "one A and one AAAA question");
    // Through a CNAME; only the target's addresses count.
    dns.set_cname("www.o1.test", "hooks.o1.test");
    let mut ips = r.lookup_ip("www.o1.test").await.unwrap();
    ips.sort();
    assert_eq!(ips, want);
    // IPv4 only; unknown names.
    dns.set_a("v4.o1.test", &[Ipv4Addr::LOCALHOST]);
    assert_eq!(r.lookup_ip("v4.o1.test").await.unwrap(), [IpAddr::from(Ipv4Addr::LOCALHOST)]);
    assert!(r.lookup_ip("nowhere.o1.test").await.unwrap().is_empty());
    dns.fail("broken.o1.test");
    assert_eq!(r.lookup_ip("broken.o1.test").await, Err(DnsError::Rcode(2)));
}
