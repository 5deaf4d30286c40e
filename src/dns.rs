//! A small DNS stub resolver: asks one recursive server, never caches (a domain verification
//! must see the record as published now).
//!
//! hickory-proto does the wire format; the exchange is ours: a random 16-bit id, RD set, one
//! question; over UDP from a fresh socket on a random port, two tries within the deadline, then
//! over TCP when the answer is truncated. A datagram that is not the answer to our question
//! (other id, not a response, other name, type or class) is ignored, and we keep waiting until
//! the deadline. CNAMEs are followed inside the answer section only (the recursive server
//! gives the whole chain), at most [`MAX_CNAME_CHAIN`] of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use crate::config::DnsSettings;

/// CNAMEs followed from the name asked to the name whose records count.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Largest answer read (UDP datagram or TCP message), bytes.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Tries over UDP within the deadline (the first gets half of it).
const UDP_ATTEMPTS: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("not a DNS name: {0:?}")]
    InvalidName(String),
    #[error("the DNS server answered {}", rcode_name(*.0))]
    Rcode(u16),
    #[error("no answer from the DNS server in time")]
    Timeout,
    #[error("malformed DNS answer: {0}")]
    Malformed(String),
    #[error("more than {MAX_CNAME_CHAIN} CNAMEs (or a loop)")]
    CnameChainTooLong,
    #[error("cannot talk to the DNS server: {0}")]
    Io(String),
}

fn rcode_name(rcode: u16) -> String {
    match rcode {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE {n}"),
    }
}

fn io_error(e: std::io::Error) -> DnsError {
    DnsError::Io(e.to_string())
}

/// Where questions go and how long an answer may take. Copy: pass it around freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolver {
    server: SocketAddr,
    timeout: Duration,
}

impl Resolver {
    /// `dns.resolver`, else the first `nameserver` of /etc/resolv.conf, else 127.0.0.1:53.
    pub fn new(settings: &DnsSettings) -> anyhow::Result<Self> {
        let server = match settings.resolver_addr()? {
            Some(addr) => addr,
            None => std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .and_then(|text| first_nameserver(&text))
                .map(|ip| SocketAddr::new(ip, 53))
                .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 53))),
        };
        Ok(Self::with_server(server, Duration::from_millis(settings.timeout_ms)))
    }

    /// A resolver asking `server`; every look-up ends within `timeout` (at least 1 ms).
    pub fn with_server(server: SocketAddr, timeout: Duration) -> Self {
        Self { server, timeout: timeout.max(Duration::from_millis(1)) }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The TXT strings at `name`, one per record (its character-strings joined, lossy UTF-8).
    /// A name that does not exist or has no TXT record gives an empty list.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let qname = parse_name(name)?;
        let msg = self.query(&qname, RecordType::TXT).await?;
        Ok(records_at(&msg, &qname, RecordType::TXT)?
            .into_iter()
            .filter_map(|rdata| match rdata {
                RData::TXT(txt) => Some(String::from_utf8_lossy(&txt.txt_data().concat()).into_owned()),
                _ => None,
            })
            .collect())
    }

    /// The IPv4 and IPv6 addresses of `name` (A and AAAA, asked at once). An error for either
    /// is an error for both: a caller checking addresses must see them all.
    pub async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let qname = parse_name(name)?;
        let (a, aaaa) = tokio::join!(self.query(&qname, RecordType::A), self.query(&qname, RecordType::AAAA));
        let mut ips = Vec::new();
        for (msg, rtype) in [(a?, RecordType::A), (aaaa?, RecordType::AAAA)] {
            ips.extend(records_at(&msg, &qname, rtype)?.into_iter().filter_map(|rdata| match rdata {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            }));
        }
        Ok(ips)
    }

    /// One question, answered: over UDP (two tries), over TCP when truncated.
    async fn query(&self, qname: &Name, rtype: RecordType) -> Result<Message, DnsError> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut last = DnsError::Timeout;
        for attempt in 1..=UDP_ATTEMPTS {
            let attempt_deadline =
                if attempt == UDP_ATTEMPTS { deadline } else { start + self.timeout * attempt / UDP_ATTEMPTS };
            match self.udp_exchange(qname, rtype, attempt_deadline).await {
                Ok(Reply::Truncated) => return self.tcp_exchange(qname, rtype, deadline).await,
                Ok(Reply::Full(msg)) => return Ok(msg),
                Err(e @ (DnsError::Timeout | DnsError::Io(_))) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn udp_exchange(&self, qname: &Name, rtype: RecordType, deadline: Instant) -> Result<Reply, DnsError> {
        let (id, bytes) = encode_query(qname, rtype)?;
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await.map_err(io_error)?;
        // Connected: the kernel drops datagrams from any other address.
        socket.connect(self.server).await.map_err(io_error)?;
        socket.send(&bytes).await.map_err(io_error)?;
        let mut buf = vec![0u8; MAX_MESSAGE_BYTES];
        loop {
            let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => return Err(DnsError::Timeout),
                Ok(Err(e)) => return Err(io_error(e)),
                Ok(Ok(n)) => n,
            };
            if let Some(reply) = match_reply(buf.get(..n).unwrap_or_default(), id, qname, rtype)? {
                return Ok(reply);
            }
        }
    }

    async fn tcp_exchange(&self, qname: &Name, rtype: RecordType, deadline: Instant) -> Result<Message, DnsError> {
        let exchange = async {
            let (id, bytes) = encode_query(qname, rtype)?;
            let len = u16::try_from(bytes.len()).map_err(|_| DnsError::InvalidName(qname.to_ascii()))?;
            let mut stream = TcpStream::connect(self.server).await.map_err(io_error)?;
            let mut framed = Vec::with_capacity(bytes.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&bytes);
            stream.write_all(&framed).await.map_err(io_error)?;
            let len = usize::from(stream.read_u16().await.map_err(io_error)?);
            let mut buf = vec![0u8; len.min(MAX_MESSAGE_BYTES)];
            stream.read_exact(&mut buf).await.map_err(io_error)?;
            match match_reply(&buf, id, qname, rtype)? {
                Some(Reply::Full(msg)) => Ok(msg),
                Some(Reply::Truncated) => Err(DnsError::Malformed("truncated answer over TCP".into())),
                None => Err(DnsError::Malformed("the TCP answer is not for our question".into())),
            }
        };
        timeout_at(deadline, exchange).await.unwrap_or(Err(DnsError::Timeout))
    }
}

enum Reply {
    Full(Message),
    Truncated,
}

/// A name as asked: ASCII (A-labels), made absolute.
fn parse_name(name: &str) -> Result<Name, DnsError> {
    let invalid = || DnsError::InvalidName(name.to_owned());
    if name.is_empty() || !name.is_ascii() || name.contains(|c: char| c.is_ascii_whitespace() || c == '\\') {
        return Err(invalid());
    }
    let mut qname = Name::from_ascii(name).map_err(|_| invalid())?;
    qname.set_fqdn(true);
    if qname.is_root() {
        return Err(invalid());
    }
    Ok(qname)
}

fn encode_query(qname: &Name, rtype: RecordType) -> Result<(u16, Vec<u8>), DnsError> {
    let id: u16 = rand::random();
    let mut msg = Message::new();
    msg.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    msg.add_query(Query::query(qname.clone(), rtype));
    let bytes = msg.to_vec().map_err(|_| DnsError::InvalidName(qname.to_ascii()))?;
    Ok((id, bytes))
}

/// `Ok(None)`: not an answer to our question (ignored). The header and question are read
/// first, so a truncated answer is recognised even when the rest does not parse.
fn match_reply(bytes: &[u8], id: u16, qname: &Name, rtype: RecordType) -> Result<Option<Reply>, DnsError> {
    let mut decoder = BinDecoder::new(bytes);
    let Ok(header) = Header::read(&mut decoder) else {
        return Ok(None);
    };
    if header.id() != id
        || header.message_type() != MessageType::Response
        || header.op_code() != OpCode::Query
        || header.query_count() != 1
    {
        return Ok(None);
    }
    let Ok(query) = Query::read(&mut decoder) else {
        return Ok(None);
    };
    // Name equality is case-insensitive.
    if query.name() != qname || query.query_type() != rtype || query.query_class() != DNSClass::IN {
        return Ok(None);
    }
    if header.truncated() {
        return Ok(Some(Reply::Truncated));
    }
    Message::from_vec(bytes).map(|m| Some(Reply::Full(m))).map_err(|e| DnsError::Malformed(e.to_string()))
}

/// The records of type `rtype` that answer `qname`: those owned by the end of the CNAME chain
/// starting at `qname`. NXDOMAIN and NOERROR without such records give an empty list; any
/// other response code is an error.
fn records_at(msg: &Message, qname: &Name, rtype: RecordType) -> Result<Vec<RData>, DnsError> {
    match msg.response_code() {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(Vec::new()),
        other => return Err(DnsError::Rcode(u16::from(other))),
    }
    let answers = msg.answers();
    let mut owner = qname.clone();
    let mut hops = 0;
    while let Some(target) = answers.iter().find_map(|r| match r.data() {
        RData::CNAME(c) if r.name() == &owner && r.dns_class() == DNSClass::IN && rtype != RecordType::CNAME => {
            Some(c.0.clone())
        }
        _ => None,
    }) {
        hops += 1;
        if hops > MAX_CNAME_CHAIN {
            return Err(DnsError::CnameChainTooLong);
        }
        owner = target;
    }
    Ok(answers
        .iter()
        .filter(|r| r.name() == &owner && r.record_type() == rtype && r.dns_class() == DNSClass::IN)
        .map(|r| r.data().clone())
        .collect())
}

/// The first `nameserver` of a resolv.conf that is a plain IP address (a link-local IPv6
/// address with a zone, `fe80::1%eth0`, is skipped).
fn first_nameserver(text: &str) -> Option<IpAddr> {
    text.lines()
        .map(|line| line.split(['#', ';']).next().unwrap_or_default())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .find_map(|word| word.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
    use hickory_proto::rr::Record;

    fn name(s: &str) -> Name {
        parse_name(s).unwrap()
    }

    fn answer(rcode: ResponseCode, records: Vec<Record>) -> Message {
        let mut m = Message::new();
        m.set_id(1).set_message_type(MessageType::Response).set_response_code(rcode);
        m.add_answers(records);
        m
    }

    fn cname(from: &str, to: &str) -> Record {
        Record::from_rdata(name(from), 60, RData::CNAME(CNAME(name(to))))
    }

    fn txt(at: &str, strings: &[&str]) -> Record {
        Record::from_rdata(name(at), 60, RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())))
    }

    fn texts(msg: &Message, q: &str) -> Result<Vec<String>, DnsError> {
        Ok(records_at(msg, &name(q), RecordType::TXT)?
            .into_iter()
            .map(|r| match r {
                RData::TXT(t) => String::from_utf8_lossy(&t.txt_data().concat()).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect())
    }

    #[test]
    fn names() {
        assert_eq!(name("_guichet-challenge.O1.test").to_ascii(), "_guichet-challenge.O1.test.");
        assert_eq!(name("example.com."), name("EXAMPLE.com"));
        for bad in ["", ".", "bü.example", "a b.example", "a\\.b.example", &format!("{}.com", "a".repeat(64))] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn txt_records_of_the_name_only() {
        let m = answer(
            ResponseCode::NoError,
            vec![txt("a.test", &["one"]), txt("A.TEST", &["tw", "o"]), txt("b.test", &["other"])],
        );
        assert_eq!(texts(&m, "a.test").unwrap(), ["one", "two"]);
        assert_eq!(texts(&m, "c.test").unwrap(), Vec::<String>::new());
        assert_eq!(texts(&answer(ResponseCode::NXDomain, vec![]), "a.test").unwrap(), Vec::<String>::new());
        assert_eq!(texts(&answer(ResponseCode::ServFail, vec![]), "a.test"), Err(DnsError::Rcode(2)));
        assert_eq!(texts(&answer(ResponseCode::Refused, vec![]), "a.test"), Err(DnsError::Rcode(5)));
        assert_eq!(DnsError::Rcode(2).to_string(), "the DNS server answered SERVFAIL");
    }

    #[test]
    fn cname_chains_are_followed_in_the_answer() {
        let m = answer(
            ResponseCode::NoError,
            vec![
                txt("a.test", &["stale: a has a CNAME"]),
                cname("a.test", "b.test"),
                cname("b.test", "c.test"),
                txt("c.test", &["final"]),
                txt("unrelated.test", &["no"]),
            ],
        );
        assert_eq!(texts(&m, "a.test").unwrap(), ["final"]);
        assert_eq!(texts(&m, "b.test").unwrap(), ["final"]);
        // The chain ends at a name without records.
        let m = answer(ResponseCode::NoError, vec![cname("a.test", "b.test"), txt("a.test", &["x"])]);
        assert_eq!(texts(&m, "a.test").unwrap(), Vec::<String>::new());
        // Eight hops are fine, nine are not; a loop is a chain too long.
        let chain = |n: usize| {
            let mut rs: Vec<Record> =
                (0..n).map(|i| cname(&format!("n{i}.test"), &format!("n{}.test", i + 1))).collect();
            rs.push(txt(&format!("n{n}.test"), &["end"]));
            answer(ResponseCode::NoError, rs)
        };
        assert_eq!(texts(&chain(8), "n0.test").unwrap(), ["end"]);
        assert_eq!(texts(&chain(9), "n0.test"), Err(DnsError::CnameChainTooLong));
        let looped = answer(ResponseCode::NoError, vec![cname("a.test", "b.test"), cname("b.test", "a.test")]);
        assert_eq!(texts(&looped, "a.test"), Err(DnsError::CnameChainTooLong));
        // Addresses the same way.
        let m = answer(
            ResponseCode::NoError,
            vec![
                cname("www.test", "cdn.test"),
                Record::from_rdata(name("cdn.test"), 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))),
                Record::from_rdata(name("www.test"), 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 9)))),
                Record::from_rdata(name("cdn.test"), 60, RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))),
            ],
        );
        assert_eq!(
            records_at(&m, &name("www.test"), RecordType::A).unwrap(),
            [RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))]
        );
    }

    #[test]
    fn only_the_answer_to_our_question_is_taken() {
        let q = name("a.test");
        let reply = |id: u16, kind: MessageType, qn: &str, rtype: RecordType, truncated: bool| {
            let mut m = Message::new();
            m.set_id(id).set_message_type(kind).set_op_code(OpCode::Query).set_truncated(truncated);
            m.add_query(Query::query(name(qn), rtype));
            m.add_answer(txt(qn, &["v"]));
            m.to_vec().unwrap()
        };
        let take = |bytes: &[u8]| match match_reply(bytes, 7, &q, RecordType::TXT) {
            Ok(Some(Reply::Full(_))) => "full",
            Ok(Some(Reply::Truncated)) => "truncated",
            Ok(None) => "ignored",
            Err(_) => "error",
        };
        assert_eq!(take(&reply(7, MessageType::Response, "a.test", RecordType::TXT, false)), "full");
        assert_eq!(take(&reply(7, MessageType::Response, "A.Test", RecordType::TXT, false)), "full");
        assert_eq!(take(&reply(7, MessageType::Response, "a.test", RecordType::TXT, true)), "truncated");
        assert_eq!(take(&reply(8, MessageType::Response, "a.test", RecordType::TXT, false)), "ignored");
        assert_eq!(take(&reply(7, MessageType::Query, "a.test", RecordType::TXT, false)), "ignored");
        assert_eq!(take(&reply(7, MessageType::Response, "b.test", RecordType::TXT, false)), "ignored");
        assert_eq!(take(&reply(7, MessageType::Response, "a.test", RecordType::A, false)), "ignored");
        assert_eq!(take(&[0, 7, 0x80]), "ignored");
        assert_eq!(take(&[]), "ignored");
        // Our question, then garbage where the answer should be.
        let mut bytes = reply(7, MessageType::Response, "a.test", RecordType::TXT, false);
        bytes.truncate(bytes.len() - 3);
        assert_eq!(take(&bytes), "error");
    }

    #[test]
    fn resolv_conf() {
        let text = "# generated\nsearch example.com\nnameserver fe80::1%eth0\n  nameserver 10.0.0.2 # main\n\
                    nameserver 10.0.0.3\n";
        assert_eq!(first_nameserver(text), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!(first_nameserver("nameserver ::1\n"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(first_nameserver("; nameserver 10.0.0.9\noptions ndots:1\n"), None);
        let configured = DnsSettings { resolver: Some("127.0.0.1:5353".into()), timeout_ms: 250, ..Default::default() };
        let r = Resolver::new(&configured).unwrap();
        assert_eq!(r.server(), SocketAddr::from((Ipv4Addr::LOCALHOST, 5353)));
        assert_eq!(r.timeout(), Duration::from_millis(250));
        assert_eq!(Resolver::new(&DnsSettings::default()).unwrap().server().port(), 53);
        let bad = DnsSettings { resolver: Some("dns.example.com".into()), ..Default::default() };
        assert!(Resolver::new(&bad).is_err());
    }
}
