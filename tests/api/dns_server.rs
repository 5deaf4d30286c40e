//! A DNS server on loopback for tests: UDP and TCP on one port of 127.0.0.1, answering TXT, A
//! and AAAA questions from a table the test changes while it runs (`set_txt`, `set_cname`,
//! `fail`, ...). Unknown names get NXDOMAIN; a name that exists without records of the type
//! asked gets NOERROR and no answer; CNAME chains are given whole in the answer section. An
//! answer over 512 bytes is truncated over UDP (TC set, no records), so clients go to TCP.
//! Point `[dns] resolver` (or `guichet::dns::Resolver`) at `addr`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Largest answer sent over UDP without truncation (RFC 1035; no EDNS here).
const UDP_LIMIT: usize = 512;
const TTL: u32 = 60;

#[derive(Default, Clone)]
struct Entry {
    txt: Vec<String>,
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    cname: Option<String>,
    fail: bool,
}

#[derive(Default)]
struct Shared {
    zone: Mutex<HashMap<String, Entry>>,
    queries: AtomicUsize,
    tcp_queries: AtomicUsize,
    log: Mutex<Vec<(String, RecordType)>>,
    spoof: AtomicBool,
}

pub struct TestDns {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// Table key: lowercase, no trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl TestDns {
    pub async fn start() -> Self {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let udp_task = tokio::spawn(serve_udp(udp, shared.clone()));
        let tcp_task = tokio::spawn(serve_tcp(tcp, shared.clone()));
        Self { addr, shared, tasks: vec![udp_task, tcp_task] }
    }

    fn edit(&self, name: &str, f: impl FnOnce(&mut Entry)) {
        f(self.shared.zone.lock().unwrap().entry(key(name)).or_default());
    }

    /// One TXT record per value (values over 255 bytes are split into character-strings).
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        self.edit(name, |e| e.txt = values.iter().map(|v| v.to_string()).collect());
    }

    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        self.edit(name, |e| e.a = ips.to_vec());
    }

    pub fn set_aaaa(&self, name: &str, ips: &[Ipv6Addr]) {
        self.edit(name, |e| e.aaaa = ips.to_vec());
    }

    /// `name` becomes an alias of `target` (its other records are not served any more).
    pub fn set_cname(&self, name: &str, target: &str) {
        self.edit(name, |e| e.cname = Some(key(target)));
    }

    /// Forgets `name`: NXDOMAIN from now on.
    pub fn clear(&self, name: &str) {
        self.shared.zone.lock().unwrap().remove(&key(name));
    }

    /// Questions about `name` (or reaching it through a CNAME) get SERVFAIL.
    pub fn fail(&self, name: &str) {
        self.edit(name, |e| e.fail = true);
    }

    /// Before each real answer over UDP, send forgeries: another id, a question echoed back
    /// (not a response), another name, another type; each carries a TXT record "spoofed".
    pub fn spoof(&self, on: bool) {
        self.shared.spoof.store(on, Ordering::SeqCst);
    }

    /// Questions received so far (UDP and TCP).
    pub fn queries(&self) -> usize {
        self.shared.queries.load(Ordering::SeqCst)
    }

    /// Questions received over TCP so far.
    pub fn tcp_queries(&self) -> usize {
        self.shared.tcp_queries.load(Ordering::SeqCst)
    }

    /// Questions received about `name` (any type, any case).
    pub fn queries_for(&self, name: &str) -> usize {
        let k = key(name);
        self.shared.log.lock().unwrap().iter().filter(|(n, _)| *n == k).count()
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// UDP on a free port of 127.0.0.1, then TCP on the same port (another free port if taken).
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
        let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
        if shared.spoof.load(Ordering::SeqCst) {
            for forged in forgeries(&query) {
                let _ = socket.send_to(&forged, peer).await;
            }
        }
        let mut reply = answer(&query, &shared, false);
        if reply.len() > UDP_LIMIT {
            reply = truncated(&query);
        }
        let _ = socket.send_to(&reply, peer).await;
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(serve_tcp_conn(stream, shared.clone()));
    }
}

async fn serve_tcp_conn(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let Ok(len) = stream.read_u16().await else { return };
        let mut buf = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let Ok(query) = Message::from_vec(&buf) else { return };
        let reply = answer(&query, &shared, true);
        let mut framed = u16::try_from(reply.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

fn response_to(query: &Message) -> Message {
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    m.add_queries(query.queries().to_vec());
    m
}

fn name(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap();
    n.set_fqdn(true);
    n
}

/// The encoded answer to `query` from the table.
fn answer(query: &Message, shared: &Shared, tcp: bool) -> Vec<u8> {
    shared.queries.fetch_add(1, Ordering::SeqCst);
    if tcp {
        shared.tcp_queries.fetch_add(1, Ordering::SeqCst);
    }
    let mut reply = response_to(query);
    let Some(q) = query.queries().first() else {
        reply.set_response_code(ResponseCode::FormErr);
        return reply.to_vec().unwrap();
    };
    let asked = key(&q.name().to_ascii());
    shared.log.lock().unwrap().push((asked.clone(), q.query_type()));
    let zone = shared.zone.lock().unwrap();
    // The owner name of answers keeps the case of the question, as real servers do.
    let mut owner = q.name().clone();
    let mut current = asked;
    let mut rcode = ResponseCode::NoError;
    for _ in 0..32 {
        let Some(entry) = zone.get(&current) else {
            rcode = ResponseCode::NXDomain;
            break;
        };
        if entry.fail {
            reply.answers_mut().clear();
            rcode = ResponseCode::ServFail;
            break;
        }
        if let Some(target) = &entry.cname {
            let target_name = name(target);
            reply.add_answer(Record::from_rdata(owner.clone(), TTL, RData::CNAME(CNAME(target_name.clone()))));
            owner = target_name;
            current = target.clone();
            continue;
        }
        let rdatas: Vec<RData> = match q.query_type() {
            RecordType::TXT => entry.txt.iter().map(|v| RData::TXT(txt_rdata(v))).collect(),
            RecordType::A => entry.a.iter().map(|ip| RData::A(A(*ip))).collect(),
            RecordType::AAAA => entry.aaaa.iter().map(|ip| RData::AAAA(AAAA(*ip))).collect(),
            _ => Vec::new(),
        };
        for rdata in rdatas {
            reply.add_answer(Record::from_rdata(owner.clone(), TTL, rdata));
        }
        break;
    }
    reply.set_response_code(rcode);
    reply.to_vec().unwrap()
}

/// A value as character-strings of at most 255 bytes.
fn txt_rdata(value: &str) -> TXT {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return TXT::from_bytes(vec![&[]]);
    }
    TXT::from_bytes(bytes.chunks(255).collect())
}

fn truncated(query: &Message) -> Vec<u8> {
    let mut m = response_to(query);
    m.set_truncated(true);
    m.to_vec().unwrap()
}

fn forgeries(query: &Message) -> Vec<Vec<u8>> {
    let Some(q) = query.queries().first() else { return Vec::new() };
    let spoofed = |m: &mut Message, owner: &Name| {
        m.add_answer(Record::from_rdata(owner.clone(), TTL, RData::TXT(TXT::new(vec!["spoofed".into()]))));
    };
    let mut out = Vec::new();
    // Another id.
    let mut m = response_to(query);
    m.set_id(query.id().wrapping_add(1));
    spoofed(&mut m, q.name());
    out.push(m.to_vec().unwrap());
    // Not a response.
    let mut m = response_to(query);
    m.set_message_type(MessageType::Query);
    spoofed(&mut m, q.name());
    out.push(m.to_vec().unwrap());
    // Another name.
    let other = name("spoofed.invalid");
    let mut m = response_to(query);
    m.queries_mut()[0].set_name(other.clone());
    spoofed(&mut m, &other);
    out.push(m.to_vec().unwrap());
    // Another type.
    let mut m = response_to(query);
    let other_type = if q.query_type() == RecordType::MX { RecordType::NS } else { RecordType::MX };
    m.queries_mut()[0].set_query_type(other_type);
    spoofed(&mut m, q.name());
    out.push(m.to_vec().unwrap());
    out
}
