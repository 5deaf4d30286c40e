//! The outbound-URL policy (`guichet::net`) against the loopback test DNS server and a tiny
//! HTTP server on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guichet::dns::Resolver;
use guichet::net::{read_capped, OutboundError, OutboundPolicy, Refusal, MAX_RESPONSE_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::dns_server::TestDns;

fn policy(dns: &TestDns, allow_loopback: bool) -> OutboundPolicy {
    OutboundPolicy::new(Resolver::with_server(dns.addr, Duration::from_millis(1000)), allow_loopback).unwrap()
}

fn refusal<T: std::fmt::Debug>(result: Result<T, OutboundError>) -> Refusal {
    match result {
        Err(OutboundError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The refusal carried by an error of the bare client.
fn client_refusal(result: Result<reqwest::Response, reqwest::Error>) -> Refusal {
    refusal(result.map_err(OutboundError::from))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An HTTP/1.1 server written by hand: one request per connection, answered by `respond`
/// (given the request target), then the connection is closed. Requests are recorded once
/// their head (and body) is read: a connection dropped before that leaves no trace.
struct HttpServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

type Respond = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

impl HttpServer {
    async fn start(respond: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Respond = Arc::new(respond);
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                tokio::spawn(serve(stream, respond.clone(), recorded.clone()));
            }
        });
        Self { addr, requests, task }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, respond: Respond, recorded: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
    recorded.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
    let _ = stream.write_all(&respond(&target)).await;
    let _ = stream.shutdown().await;
}

fn response(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok(body: &[u8]) -> Vec<u8> {
    response("200 OK", &[&format!("Content-Length: {}", body.len())], body)
}

#[tokio::test]
async fn a_name_whose_answers_are_all_public_passes() {
    let dns = TestDns::start().await;
    dns.set_a("api.example.com", &[Ipv4Addr::new(1, 1, 1, 1)]);
    dns.set_aaaa("api.example.com", &["2606:4700:4700::1111".parse().unwrap()]);
    dns.set_a("v4.example.com", &[Ipv4Addr::new(8, 8, 8, 8)]);
    let p = policy(&dns, false);
    let (url, addrs) = p.check("https://api.example.com/hook?id=1").await.unwrap();
    assert_eq!(url.as_str(), "https://api.example.com/hook?id=1");
    assert_eq!(addrs, ["1.1.1.1:443".parse::<SocketAddr>().unwrap(), "[2606:4700:4700::1111]:443".parse().unwrap()]);
    let (_, addrs) = p.check("http://V4.Example.com:80").await.unwrap();
    assert_eq!(addrs, ["8.8.8.8:80".parse::<SocketAddr>().unwrap()]);
    // A and AAAA asked for each check: nothing is cached.
    assert_eq!(dns.queries_for("api.example.com"), 2);
    p.check("https://api.example.com/").await.unwrap();
    assert_eq!(dns.queries_for("api.example.com"), 4);
}

#[tokio::test]
async fn one_answer_that_is_not_public_refuses_the_name() {
    let dns = TestDns::start().await;
    let public = Ipv4Addr::new(1, 1, 1, 1);
    dns.set_a("mixed.example.com", &[public]);
    dns.set_aaaa("mixed.example.com", &[Ipv6Addr::LOCALHOST]);
    dns.set_a("two.example.com", &[public, Ipv4Addr::new(10, 0, 0, 1)]);
    dns.set_a("metadata.example.com", &[Ipv4Addr::new(169, 254, 169, 254)]);
    dns.set_aaaa("mapped.example.com", &["::ffff:127.0.0.1".parse().unwrap()]);
    dns.set_aaaa("ula.example.com", &["fd00::1".parse().unwrap()]);
    for p in [policy(&dns, false), policy(&dns, true)] {
        let cases = [
            ("mixed.example.com", "::1"),
            ("two.example.com", "10.0.0.1"),
            ("metadata.example.com", "169.254.169.254"),
            ("mapped.example.com", "::ffff:7f00:1"),
            ("ula.example.com", "fd00::1"),
        ];
        for (host, bad) in cases {
            if p.policy() == guichet::net::Policy::PublicOrLoopback && bad == "::1" {
                continue; // loopback passes with the switch
            }
            let result = p.check(&format!("https://{host}/")).await;
            assert_eq!(refusal(result), Refusal::ResolvedTo { host: host.into(), ip: ip(bad) }, "{host}");
        }
    }
    // With the switch, loopback mixed with private is still refused.
    dns.set_a("both.example.com", &[Ipv4Addr::LOCALHOST, Ipv4Addr::new(192, 168, 1, 1)]);
    let result = policy(&dns, true).check("http://both.example.com/").await;
    assert_eq!(refusal(result), Refusal::ResolvedTo { host: "both.example.com".into(), ip: ip("192.168.1.1") });
    // The caller sees one message; the reason is for logs.
    let e = policy(&dns, false).check("https://two.example.com/").await.unwrap_err();
    assert_eq!(e.to_string(), "this URL is not allowed");
    assert_eq!(e.reason(), "two.example.com resolves to 10.0.0.1, which is not public");
}

#[tokio::test]
async fn a_cname_chain_is_judged_by_its_final_answers() {
    let dns = TestDns::start().await;
    dns.set_cname("alias.example.com", "hop.example.net");
    dns.set_cname("hop.example.net", "db.corp.example.net");
    dns.set_a("db.corp.example.net", &[Ipv4Addr::new(192, 168, 1, 10)]);
    dns.set_cname("cdn.example.com", "edge.example.net");
    dns.set_a("edge.example.net", &[Ipv4Addr::new(8, 8, 4, 4)]);
    let p = policy(&dns, false);
    let result = p.check("https://alias.example.com/").await;
    assert_eq!(refusal(result), Refusal::ResolvedTo { host: "alias.example.com".into(), ip: ip("192.168.1.10") });
    let (_, addrs) = p.check("https://cdn.example.com/").await.unwrap();
    assert_eq!(addrs, ["8.8.4.4:443".parse::<SocketAddr>().unwrap()]);
}

#[tokio::test]
async fn dns_failures_and_empty_answers_are_refusals() {
    let dns = TestDns::start().await;
    dns.fail("broken.example.com");
    dns.set_cname("to-broken.example.com", "broken.example.com");
    dns.set_txt("txt-only.example.com", &["v=spf1 -all"]);
    let p = policy(&dns, false);
    match refusal(p.check("https://broken.example.com/").await) {
        Refusal::Dns { host, error } => {
            assert_eq!(host, "broken.example.com");
            assert!(error.contains("SERVFAIL"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(refusal(p.check("https://to-broken.example.com/").await), Refusal::Dns { .. }));
    assert_eq!(
        refusal(p.check("https://nowhere.example.com/").await),
        Refusal::NoAddress("nowhere.example.com".into())
    );
    assert_eq!(
        refusal(p.check("https://txt-only.example.com/").await),
        Refusal::NoAddress("txt-only.example.com".into())
    );
    // A DNS server that never answers.
    let silent = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let p = OutboundPolicy::new(Resolver::with_server(silent.local_addr().unwrap(), Duration::from_millis(200)), false)
        .unwrap();
    assert!(matches!(refusal(p.check("https://example.com/").await), Refusal::Dns { .. }));
}

#[tokio::test]
async fn internal_names_are_refused_before_dns() {
    let dns = TestDns::start().await;
    let p = policy(&dns, false);
    for url in [
        "http://localhost/",
        "http://intranet/",
        "http://x.internal/",
        "http://x.test/",
        "http://foo.local/",
        "http://a.localhost/",
        "http://db.localdomain/",
        "http://1.0.0.127.in-addr.arpa/",
        "http://abc.onion/",
        "http://x.invalid/",
    ] {
        assert!(p.check(url).await.is_err(), "{url}");
        assert!(p.get(url).await.is_err(), "{url}");
    }
    assert_eq!(dns.queries(), 0);
}

#[tokio::test]
async fn with_the_loopback_switch_a_local_server_is_reached_and_without_it_not() {
    let dns = TestDns::start().await;
    dns.set_a("app.example.com", &[Ipv4Addr::LOCALHOST]);
    let server = HttpServer::start(|_| ok(b"hello")).await;
    let port = server.port();
    let url = format!("http://app.example.com:{port}/hello?x=1");

    let open = policy(&dns, true);
    let (_, addrs) = open.check(&url).await.unwrap();
    assert_eq!(addrs, [SocketAddr::from((Ipv4Addr::LOCALHOST, port))]);
    let resp = open.get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(read_capped(resp, MAX_RESPONSE_BYTES).await.unwrap(), &b"hello"[..]);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].starts_with("GET /hello?x=1 HTTP/1.1\r\n"), "{}", requests[0]);
    assert!(requests[0].to_ascii_lowercase().contains(&format!("host: app.example.com:{port}\r\n")));
    // The bare client, an IP literal and `localhost` get there too.
    assert_eq!(open.client().get(&url).send().await.unwrap().status(), 200);
    assert_eq!(open.get(&format!("http://127.0.0.1:{port}/")).await.unwrap().status(), 200);
    assert_eq!(open.get(&format!("http://localhost:{port}/")).await.unwrap().status(), 200);
    assert_eq!(server.requests().len(), 4);
    // A name with another port than the scheme's must resolve to loopback only.
    dns.set_a("public.example.com", &[Ipv4Addr::new(1, 1, 1, 1)]);
    assert_eq!(refusal(open.check("http://public.example.com:8080/").await), Refusal::Port(8080));

    // Without the switch: refused by the URL check, by the client's resolver, and by the
    // address check on the default port.
    let strict = policy(&dns, false);
    assert_eq!(refusal(strict.get(&url).await), Refusal::Port(port));
    let loopback = Refusal::ResolvedTo { host: "app.example.com".into(), ip: ip("127.0.0.1") };
    assert_eq!(client_refusal(strict.client().get(&url).send().await), loopback);
    assert_eq!(refusal(strict.check("http://app.example.com/").await), loopback);
    assert_eq!(refusal(strict.get("http://app.example.com/").await), loopback);
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn the_client_connects_only_to_the_addresses_it_checked() {
    let dns = TestDns::start().await;
    let server = HttpServer::start(|_| ok(b"secret")).await;
    let port = server.port();
    // Public when checked, loopback when connecting (DNS rebinding).
    dns.set_a("rebind.example.com", &[Ipv4Addr::new(1, 1, 1, 1)]);
    let strict = policy(&dns, false);
    strict.check("http://rebind.example.com/").await.unwrap();
    dns.set_a("rebind.example.com", &[Ipv4Addr::LOCALHOST]);
    let url = format!("http://rebind.example.com:{port}/");
    assert_eq!(
        client_refusal(strict.client().get(&url).send().await),
        Refusal::ResolvedTo { host: "rebind.example.com".into(), ip: ip("127.0.0.1") }
    );
    // With the switch: loopback when checked, private when connecting.
    let open = policy(&dns, true);
    open.check(&url).await.unwrap();
    dns.set_a("rebind.example.com", &[Ipv4Addr::new(10, 0, 0, 1)]);
    assert_eq!(
        refusal(open.get(&url).await),
        Refusal::ResolvedTo { host: "rebind.example.com".into(), ip: ip("10.0.0.1") }
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn ip_literals_are_refused_even_through_the_bare_client() {
    let dns = TestDns::start().await;
    let server = HttpServer::start(|_| ok(b"secret")).await;
    let port = server.port();
    let strict = policy(&dns, false);
    let url = format!("http://127.0.0.1:{port}/admin");
    // Reqwest does not ask the resolver about an IP literal: the connection guard refuses it.
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(client_refusal(strict.client().get(&url).send().await), Refusal::Peer(peer));
    assert_eq!(client_refusal(strict.client().post(&url).body("x").send().await), Refusal::Peer(peer));
    // The checking methods refuse before connecting.
    assert_eq!(refusal(strict.get(&url).await), Refusal::Port(port));
    assert_eq!(refusal(strict.send(strict.client().get(&url)).await), Refusal::Port(port));
    assert_eq!(refusal(strict.post_json(&url, &serde_json::json!({})).await), Refusal::Port(port));
    assert_eq!(refusal(strict.get("http://127.0.0.1/").await), Refusal::Address(ip("127.0.0.1")));
    assert_eq!(refusal(strict.get("http://[::1]/").await), Refusal::Address(ip("::1")));
    assert_eq!(refusal(strict.get("http://10.0.0.1/").await), Refusal::Address(ip("10.0.0.1")));
    assert_eq!(refusal(strict.get("http://2130706433/").await), Refusal::NonCanonicalIpv4("2130706433".into()));
    let metadata = strict.client().get("http://169.254.169.254/latest/meta-data/");
    assert_eq!(refusal(strict.send(metadata).await), Refusal::Address(ip("169.254.169.254")));
    // Nothing reached the server (the guard's connections closed before a request).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let dns = TestDns::start().await;
    let server = HttpServer::start(|target| match target {
        "/start" => response("302 Found", &["Location: /elsewhere", "Content-Length: 0"], b""),
        _ => ok(b"followed"),
    })
    .await;
    let open = policy(&dns, true);
    let resp = open.get(&format!("http://127.0.0.1:{}/start", server.port())).await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/elsewhere");
    let resp = open.client().get(format!("http://localhost:{}/start", server.port())).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(server.requests().len(), 2);
    assert!(server.requests().iter().all(|r| r.starts_with("GET /start ")));
}

#[tokio::test]
async fn bodies_are_read_up_to_64_kib() {
    let dns = TestDns::start().await;
    let server = HttpServer::start(|target| match target {
        "/exact" => ok(&vec![b'a'; MAX_RESPONSE_BYTES]),
        "/announced" => ok(&vec![b'a'; MAX_RESPONSE_BYTES + 1]),
        // No Content-Length: the body ends when the connection closes.
        _ => response("200 OK", &[], &vec![b'a'; 70_000]),
    })
    .await;
    let open = policy(&dns, true);
    let base = format!("http://127.0.0.1:{}", server.port());
    let body = read_capped(open.get(&format!("{base}/exact")).await.unwrap(), MAX_RESPONSE_BYTES).await.unwrap();
    assert_eq!(body.len(), MAX_RESPONSE_BYTES);
    for path in ["/announced", "/unannounced"] {
        let resp = open.get(&format!("{base}{path}")).await.unwrap();
        let e = read_capped(resp, MAX_RESPONSE_BYTES).await.unwrap_err();
        assert!(matches!(e, OutboundError::TooLarge(MAX_RESPONSE_BYTES)), "{path}: {e:?}");
    }
    let resp = open.get(&format!("{base}/unannounced")).await.unwrap();
    assert_eq!(read_capped(resp, 100_000).await.unwrap().len(), 70_000);
}

#[tokio::test]
async fn post_json_sends_the_body() {
    let dns = TestDns::start().await;
    dns.set_a("hooks.example.com", &[Ipv4Addr::LOCALHOST]);
    let server = HttpServer::start(|_| response("204 No Content", &[], b"")).await;
    let open = policy(&dns, true);
    let url = format!("http://hooks.example.com:{}/events", server.port());
    let resp = open.post_json(&url, &serde_json::json!({"event": "user.created"})).await.unwrap();
    assert_eq!(resp.status(), 204);
    // Headers of one's own go through `send`.
    let request = open.client().post(&url).header("x-signature", "s1").body("{}");
    assert_eq!(open.send(request).await.unwrap().status(), 204);
    let requests = server.requests();
    assert!(requests[0].starts_with("POST /events HTTP/1.1\r\n"));
    assert!(requests[0].to_ascii_lowercase().contains("content-type: application/json\r\n"));
    assert!(requests[0].ends_with("\r\n\r\n{\"event\":\"user.created\"}"), "{}", requests[0]);
    assert!(requests[1].contains("x-signature: s1\r\n"));
}
