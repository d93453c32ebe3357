//! `dns`: resolve a name, like `nslookup NAME` or `dig @SERVER NAME`.
//!
//! Without `server`, uses the system resolver (`/etc/hosts`, then DNS). With `server` (`ip`,
//! `ip:port` or `[v6]:port`; port 53 by default), asks that server directly for the `A` and
//! `AAAA` records over UDP, again over TCP when the answer is truncated; `rcode` is its answer
//! code (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, ...) and `server` the address asked.
//!
//! A name that does not resolve (`NXDOMAIN`, an error code, no address) is an observation
//! (`count: 0` with a `reason`); `value` is `count`. A server that refuses, stays silent for
//! the step's timeout or answers garbage fails the check with a `reason`.
//!
//! Result: `addresses`, `count`, `rcode`, `server`, `reason`.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::{format_duration, is_template};

/// Parameters of the `dns` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsParams {
    /// The name to resolve.
    pub name: String,
    /// A DNS server to ask directly instead of the system resolver: `ip`, `ip:port` or
    /// `[v6]:port` (port 53 by default).
    #[serde(default)]
    pub server: Option<String>,
}

impl DnsParams {
    /// A literal `name` must be a valid DNS name and a literal `server` an address; templates
    /// are checked once rendered.
    ///
    /// # Errors
    /// A message naming the parameter at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !is_template(&self.name) {
            encode_name(&self.name)?;
        }
        match &self.server {
            Some(server) if !is_template(server) => parse_server(server).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// Result fields of the `dns` probe.
pub const FIELDS: &[&str] = &["addresses", "count", "rcode", "server", "reason"];

/// Run the probe: through the system resolver (`getaddrinfo`, as `ping NAME` would), or by
/// asking `server` directly.
pub async fn probe(params: DnsParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let qname = match encode_name(&params.name) {
        Ok(q) => q,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let name = params.name.trim_end_matches('.').to_owned();
    if let Some(server) = &params.server {
        return match parse_server(server) {
            Ok(addr) => ask_server(&name, &qname, addr, cx.timeout).await,
            Err(e) => ProbeOutcome::Error(e),
        };
    }
    match tokio::time::timeout(cx.timeout, tokio::net::lookup_host((name.as_str(), 0))).await {
        Err(_) => ProbeOutcome::unreachable(format!(
            "no answer for `{name}` within {}",
            format_duration(cx.timeout)
        )),
        Ok(Err(e)) => ProbeOutcome::observed([
            ("value", json!(0)),
            ("count", json!(0)),
            ("addresses", json!([])),
            ("reason", json!(format!("`{name}` does not resolve: {e}"))),
        ]),
        Ok(Ok(addrs)) => {
            let ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            let list = address_list(ips);
            ProbeOutcome::observed([
                ("value", json!(list.len())),
                ("count", json!(list.len())),
                ("addresses", json!(list)),
            ])
        }
    }
}

/// Sorted, deduplicated, as text.
fn address_list(mut ips: Vec<IpAddr>) -> Vec<String> {
    ips.sort_unstable();
    ips.dedup();
    ips.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------- asking a server

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;
/// The longest name in text form, without the trailing dot (RFC 1035 §2.3.4, less the
/// length bytes and the root).
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;
/// UDP datagrams get lost silently: the queries still unanswered go out again this often,
/// until the step's timeout.
const RESEND_EVERY: Duration = Duration::from_secs(1);

/// Why asking the server gave no usable answer.
enum Failure {
    /// Refused, silent, or an answer that is not DNS: the check fails with this reason.
    Unreachable(String),
    /// The probe could not even ask (no socket): the check is `error`.
    Error(String),
}

/// Ask `server` for the `A` and `AAAA` records of `name`, both at once, within `timeout`.
async fn ask_server(
    name: &str,
    qname: &[u8],
    server: SocketAddr,
    timeout: Duration,
) -> ProbeOutcome {
    let deadline = Instant::now() + timeout;
    let answers = match exchange(qname, server, deadline, timeout).await {
        Ok(a) => a,
        Err(Failure::Error(e)) => return ProbeOutcome::Error(e),
        Err(Failure::Unreachable(reason)) => {
            let mut outcome = ProbeOutcome::unreachable(reason);
            if let ProbeOutcome::Observed(m) = &mut outcome {
                m.insert("server".into(), json!(server.to_string()));
            }
            return outcome;
        }
    };
    // The first code that is not NOERROR tells what went wrong, whichever query got it.
    let rcode = answers
        .iter()
        .map(|a| a.rcode)
        .find(|&r| r != 0)
        .unwrap_or(0);
    let list = address_list(answers.into_iter().flat_map(|a| a.addresses).collect());
    let reason = if rcode == RCODE_NXDOMAIN {
        Some(format!("`{name}` does not exist (NXDOMAIN from {server})"))
    } else if rcode != 0 {
        Some(format!(
            "{server} answered {} for `{name}`",
            rcode_name(rcode)
        ))
    } else if list.is_empty() {
        Some(format!("`{name}` has no A or AAAA record at {server}"))
    } else {
        None
    };
    let mut fields = vec![
        ("value", json!(list.len())),
        ("count", json!(list.len())),
        ("addresses", json!(list)),
        ("rcode", json!(rcode_name(rcode))),
        ("server", json!(server.to_string())),
    ];
    if let Some(reason) = reason {
        fields.push(("reason", Value::String(reason)));
    }
    ProbeOutcome::observed(fields)
}

/// Both queries over one UDP socket; a truncated answer is asked again over TCP.
async fn exchange(
    qname: &[u8],
    server: SocketAddr,
    deadline: Instant,
    timeout: Duration,
) -> Result<[Answer; 2], Failure> {
    let silent = || {
        Failure::Unreachable(format!(
            "no answer from {server} within {}",
            format_duration(timeout)
        ))
    };
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| Failure::Error(format!("cannot open a UDP socket: {e}")))?;
    // Connected, so the kernel reports a refused port (ICMP) as an error on `recv`.
    sock.connect(server)
        .await
        .map_err(|e| Failure::Unreachable(format!("cannot reach {server}: {e}")))?;
    let qtypes = [TYPE_A, TYPE_AAAA];
    let ids = query_ids();
    let queries = [
        build_query(ids[0], qname, qtypes[0]),
        build_query(ids[1], qname, qtypes[1]),
    ];
    let refused = |e: std::io::Error| Failure::Unreachable(format!("no answer from {server}: {e}"));
    let mut answers: [Option<Answer>; 2] = [None, None];
    let mut buf = vec![0u8; 65_535];
    'resend: loop {
        for (query, answer) in queries.iter().zip(&answers) {
            if answer.is_none() {
                sock.send(query).await.map_err(refused)?;
            }
        }
        let resend_at = (Instant::now() + RESEND_EVERY).min(deadline);
        while answers.iter().any(Option::is_none) {
            let (n, from) = match timeout_at(resend_at, sock.recv_from(&mut buf)).await {
                Err(_) if resend_at >= deadline => return Err(silent()),
                Err(_) => continue 'resend,
                Ok(received) => received.map_err(refused)?,
            };
            if from != server {
                continue;
            }
            let msg = &buf[..n];
            // A datagram too short for an id, or with an id we did not send, is someone
            // else's: ignore it and keep waiting.
            let Some(i) = message_id(msg)
                .and_then(|id| (0..2).find(|&i| ids[i] == id && answers[i].is_none()))
            else {
                continue;
            };
            match parse_response(msg, ids[i], qtypes[i]) {
                Ok(a) => answers[i] = Some(a),
                Err(Bad::Stray(_)) => {}
                Err(Bad::Malformed(e)) => {
                    return Err(Failure::Unreachable(format!(
                        "malformed answer from {server}: {e}"
                    )));
                }
            }
        }
        break;
    }
    let [Some(a), Some(aaaa)] = answers else {
        return Err(silent());
    };
    let mut done = [a, aaaa];
    for (i, answer) in done.iter_mut().enumerate() {
        if answer.truncated {
            let tcp = exchange_tcp(&queries[i], ids[i], qtypes[i], server);
            *answer = timeout_at(deadline, tcp).await.map_err(|_| silent())??;
        }
    }
    Ok(done)
}

/// One query over TCP, each message behind its 2-byte length (RFC 1035 §4.2.2). The caller
/// bounds it with the step's deadline.
async fn exchange_tcp(
    query: &[u8],
    id: u16,
    qtype: u16,
    server: SocketAddr,
) -> Result<Answer, Failure> {
    let failed = |what: &str, e: std::io::Error| {
        Failure::Unreachable(format!(
            "{server} truncated its UDP answer, and {what} over TCP failed: {e}"
        ))
    };
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| failed("connecting", e))?;
    let len = u16::try_from(query.len()).unwrap_or(u16::MAX);
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| failed("sending", e))?;
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| failed("reading", e))?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut msg)
        .await
        .map_err(|e| failed("reading", e))?;
    match parse_response(&msg, id, qtype) {
        Ok(a) if a.truncated => Err(Failure::Unreachable(format!(
            "malformed answer from {server}: truncated over TCP too"
        ))),
        Ok(a) => Ok(a),
        Err(Bad::Stray(e) | Bad::Malformed(e)) => Err(Failure::Unreachable(format!(
            "malformed answer from {server} over TCP: {e}"
        ))),
    }
}

/// Two distinct query ids an off-path sender cannot guess. `RandomState` is seeded from the
/// OS's randomness; mixing in the time keeps successive probes apart.
fn query_ids() -> [u16; 2] {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let bits = h.finish();
    let a = bits as u16;
    let b = (bits >> 16) as u16;
    [a, if a == b { b ^ 1 } else { b }]
}

/// `ip`, `ip:port` or `[v6]:port`; port 53 unless given.
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let addr = if let Ok(ip) = bare.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else {
        text.parse::<SocketAddr>().map_err(|_| {
            format!("`server` must be an IP address, `ip:port` or `[v6]:port`, not `{text}`")
        })?
    };
    if addr.port() == 0 {
        return Err(format!("`server` `{text}`: port 0 cannot be asked"));
    }
    Ok(addr)
}

/// `name` in wire form: length-prefixed labels, then the root.
fn encode_name(name: &str) -> Result<Vec<u8>, String> {
    let text = name.strip_suffix('.').unwrap_or(name);
    if text.is_empty() {
        return Err("`name` is empty".into());
    }
    if !text.is_ascii() {
        return Err(format!(
            "`name` `{name}` is not ASCII; write an international name in its `xn--` form"
        ));
    }
    if text.len() > MAX_NAME {
        return Err(format!(
            "`name` is {} bytes long; a DNS name has at most {MAX_NAME}",
            text.len()
        ));
    }
    let mut wire = Vec::with_capacity(text.len() + 2);
    for label in text.split('.') {
        if label.is_empty() {
            return Err(format!("`name` `{name}` has an empty label"));
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "`name`: label `{label}` is {} bytes long; a DNS label has at most {MAX_LABEL}",
                label.len()
            ));
        }
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    Ok(wire)
}

/// A standard query with recursion desired.
fn build_query(id: u16, qname: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + qname.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        other => format!("RCODE{other}"),
    }
}

// ---------------------------------------------------------------- parsing an answer

/// What a server said to one query.
#[derive(Debug, PartialEq)]
struct Answer {
    rcode: u8,
    /// TC: the answer did not fit; ask again over TCP. The sections are not read then.
    truncated: bool,
    addresses: Vec<IpAddr>,
}

/// Why a message is not an answer.
#[derive(Debug, PartialEq)]
enum Bad {
    /// Not an answer to this query (wrong id, a query, another question): ignore it.
    Stray(String),
    /// The answer to this query, but broken.
    Malformed(String),
}

fn message_id(msg: &[u8]) -> Option<u16> {
    msg.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Read the answer to query `id` for `qtype`. The bytes are untrusted: every read is
/// bounds-checked, and compression pointers are skipped, never followed, so each step moves
/// forward and a hostile message cannot make this loop.
fn parse_response(msg: &[u8], id: u16, qtype: u16) -> Result<Answer, Bad> {
    let mut r = Reader { msg, pos: 0 };
    let header = |e: String| Bad::Stray(format!("no DNS header: {e}"));
    let got_id = r.u16().map_err(header)?;
    let flags = r.u16().map_err(header)?;
    let qdcount = r.u16().map_err(header)?;
    let ancount = r.u16().map_err(header)?;
    r.take(4).map_err(header)?; // NSCOUNT, ARCOUNT: those sections are not read
    if got_id != id {
        return Err(Bad::Stray(format!("id {got_id}, not {id}")));
    }
    if flags & 0x8000 == 0 {
        return Err(Bad::Stray("a query, not a response".into()));
    }
    let opcode = (flags >> 11) & 0xf;
    if opcode != 0 {
        return Err(Bad::Malformed(format!("opcode {opcode} in the answer")));
    }
    let rcode = (flags & 0xf) as u8;
    if flags & 0x0200 != 0 {
        return Ok(Answer {
            rcode,
            truncated: true,
            addresses: Vec::new(),
        });
    }
    let malformed = Bad::Malformed;
    match qdcount {
        // Some servers leave the question out of an error answer.
        0 => {}
        1 => {
            r.skip_name().map_err(malformed)?;
            let (t, class) = (r.u16().map_err(malformed)?, r.u16().map_err(malformed)?);
            if t != qtype || class != CLASS_IN {
                return Err(Bad::Stray(format!("answers type {t} class {class}")));
            }
        }
        n => return Err(Bad::Malformed(format!("{n} questions in the answer"))),
    }
    let mut addresses = Vec::new();
    for _ in 0..ancount {
        r.skip_name().map_err(malformed)?;
        let rtype = r.u16().map_err(malformed)?;
        let class = r.u16().map_err(malformed)?;
        r.take(4).map_err(malformed)?; // TTL
        let rdlen = r.u16().map_err(malformed)?;
        let rdata = r.take(usize::from(rdlen)).map_err(malformed)?;
        match (rtype, class) {
            (TYPE_A, CLASS_IN) => {
                let octets: [u8; 4] = rdata
                    .try_into()
                    .map_err(|_| Bad::Malformed(format!("an A record of {rdlen} bytes")))?;
                addresses.push(IpAddr::from(octets));
            }
            (TYPE_AAAA, CLASS_IN) => {
                let octets: [u8; 16] = rdata
                    .try_into()
                    .map_err(|_| Bad::Malformed(format!("an AAAA record of {rdlen} bytes")))?;
                addresses.push(IpAddr::from(octets));
            }
            // CNAME and the rest: the addresses they lead to follow in the same section.
            _ => {}
        }
    }
    Ok(Answer {
        rcode,
        truncated: false,
        addresses,
    })
}

/// A cursor over untrusted bytes: reads past the end are errors.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.msg.len())
            .ok_or_else(|| {
                format!(
                    "{n} bytes wanted at offset {} of a {}-byte message",
                    self.pos,
                    self.msg.len()
                )
            })?;
        let bytes = &self.msg[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Step over a name: labels up to the root, or up to a compression pointer (its target is
    /// never visited, so a pointer loop costs nothing).
    fn skip_name(&mut self) -> Result<(), String> {
        let start = self.pos;
        loop {
            let len = self.u8()?;
            match len >> 6 {
                0b00 if len == 0 => return Ok(()),
                0b00 => {
                    self.take(usize::from(len))?;
                    // Every turn consumes bytes, so the message length bounds this loop; the
                    // RFC's limit makes a long run of labels an error early.
                    if self.pos - start > 255 {
                        return Err(format!("a name longer than 255 bytes at offset {start}"));
                    }
                }
                0b11 => {
                    self.u8()?;
                    return Ok(());
                }
                _ => return Err(format!("unknown label type {len:#04x} at offset {start}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: u16 = 0xbeef;

    fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
        let mut m = Vec::new();
        for v in [id, flags, qd, an, 0, 0] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        m
    }

    /// A well-formed answer for `up.example.test` A: a CNAME, then an A through pointers.
    fn good_answer() -> Vec<u8> {
        let mut m = header(ID, 0x8180, 1, 2);
        m.extend_from_slice(&encode_name("alias.example.test").unwrap()); // offset 12
        m.extend_from_slice(&[0, 1, 0, 1]);
        // alias (pointer to the question) CNAME up.<pointer to example.test>
        m.extend_from_slice(&[
            0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 5, 2, b'u', b'p', 0xc0, 18,
        ]);
        // up (pointer into the CNAME rdata) A 10.1.2.3
        let up = 12 + 20 + 4 + 12;
        m.extend_from_slice(&[0xc0, up, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
        m
    }

    #[test]
    fn reads_a_compressed_answer() {
        let a = parse_response(&good_answer(), ID, TYPE_A).unwrap();
        assert_eq!(a.rcode, 0);
        assert!(!a.truncated);
        assert_eq!(a.addresses, vec![IpAddr::from([10, 1, 2, 3])]);
    }

    #[test]
    fn query_is_what_a_server_expects() {
        let q = build_query(0x1234, &encode_name("a.bc.").unwrap(), TYPE_AAAA);
        assert_eq!(
            q,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 28,
                0, 1
            ]
        );
    }

    #[test]
    fn truncated_header_is_stray() {
        for len in 0..12 {
            let msg = &good_answer()[..len];
            assert!(
                matches!(parse_response(msg, ID, TYPE_A), Err(Bad::Stray(_))),
                "{len}"
            );
        }
        assert_eq!(message_id(&[0xbe]), None);
    }

    #[test]
    fn wrong_id_and_queries_are_stray() {
        let msg = good_answer();
        assert!(matches!(
            parse_response(&msg, ID ^ 1, TYPE_A),
            Err(Bad::Stray(e)) if e.contains("id")
        ));
        let mut query = msg.clone();
        query[2] &= 0x7f; // QR cleared
        assert!(matches!(
            parse_response(&query, ID, TYPE_A),
            Err(Bad::Stray(_))
        ));
        assert!(matches!(
            parse_response(&msg, ID, TYPE_AAAA),
            Err(Bad::Stray(e)) if e.contains("type 1")
        ));
    }

    #[test]
    fn cut_anywhere_after_the_header_is_malformed() {
        let msg = good_answer();
        for len in 12..msg.len() {
            assert!(
                matches!(
                    parse_response(&msg[..len], ID, TYPE_A),
                    Err(Bad::Malformed(_))
                ),
                "cut at {len}"
            );
        }
    }

    #[test]
    fn pointer_to_itself_does_not_hang() {
        // The question is fine; the answer's owner name is a pointer to its own offset.
        let mut m = header(ID, 0x8180, 1, 1);
        m.extend_from_slice(&encode_name("x.test").unwrap());
        m.extend_from_slice(&[0, 1, 0, 1]);
        let at = m.len() as u8;
        m.extend_from_slice(&[0xc0, at, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 192, 0, 2, 1]);
        // Skipped, not followed: the record still reads.
        let a = parse_response(&m, ID, TYPE_A).unwrap();
        assert_eq!(a.addresses, vec![IpAddr::from([192, 0, 2, 1])]);
        // A pointer as the question's name, pointing at itself, is the same.
        let mut q = header(ID, 0x8180, 1, 0);
        q.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(parse_response(&q, ID, TYPE_A).is_ok());
    }

    #[test]
    fn rdlen_past_the_end_is_malformed() {
        let mut m = good_answer();
        let len = m.len();
        m[len - 6] = 0xff; // the A record's rdlen: 0xff04
        assert!(matches!(
            parse_response(&m, ID, TYPE_A),
            Err(Bad::Malformed(e)) if e.contains("bytes wanted")
        ));
        // An A record whose rdata is not 4 bytes.
        let mut m = good_answer();
        m[len - 5] = 3;
        m.pop();
        assert!(matches!(
            parse_response(&m, ID, TYPE_A),
            Err(Bad::Malformed(e)) if e.contains("3 bytes")
        ));
    }

    #[test]
    fn huge_counts_end_at_the_message_end() {
        let mut m = header(ID, 0x8180, 0, u16::MAX);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert!(matches!(
            parse_response(&m, ID, TYPE_A),
            Err(Bad::Malformed(_))
        ));
        let m = header(ID, 0x8180, u16::MAX, 0);
        assert!(matches!(
            parse_response(&m, ID, TYPE_A),
            Err(Bad::Malformed(e)) if e.contains("questions")
        ));
    }

    #[test]
    fn long_label_runs_and_reserved_label_types_are_malformed() {
        let mut m = header(ID, 0x8180, 1, 0);
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(matches!(
            parse_response(&m, ID, TYPE_A),
            Err(Bad::Malformed(e)) if e.contains("longer than 255")
        ));
        let mut m = header(ID, 0x8180, 1, 0);
        m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert!(matches!(
            parse_response(&m, ID, TYPE_A),
            Err(Bad::Malformed(e)) if e.contains("label type")
        ));
    }

    #[test]
    fn truncated_flag_and_rcode_are_read() {
        let m = header(ID, 0x8380, 1, 9); // TC set; the sections are cut, and not read
        let a = parse_response(&m, ID, TYPE_A).unwrap();
        assert!(a.truncated);
        let m = header(ID, 0x8183, 0, 0);
        let a = parse_response(&m, ID, TYPE_A).unwrap();
        assert_eq!(rcode_name(a.rcode), "NXDOMAIN");
        assert_eq!(rcode_name(15), "RCODE15");
    }

    /// Every single-byte change and every cut of a real answer, and random bytes behind a
    /// valid header: the parser returns, never panics.
    #[test]
    fn hostile_bytes_never_panic() {
        let good = good_answer();
        for i in 0..good.len() {
            for b in [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc1, 0xff] {
                let mut m = good.clone();
                m[i] = b;
                let _ = parse_response(&m, ID, TYPE_A);
                let _ = parse_response(&m[..i], ID, TYPE_A);
            }
        }
        // xorshift: deterministic, so a failure reproduces.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let mut m = header(ID, 0x8180, (next() % 3) as u16, (next() % 8) as u16);
            m.extend((0..len).map(|_| next() as u8));
            let _ = parse_response(&m, ID, TYPE_A);
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(encode_name("a.b.").unwrap(), [1, b'a', 1, b'b', 0]);
        let label = "x".repeat(64);
        let e = encode_name(&format!("{label}.test")).unwrap_err();
        assert!(e.contains("at most 63"), "{e}");
        let long = vec!["y".repeat(63); 4].join(".");
        let e = encode_name(&long).unwrap_err();
        assert!(
            e.contains("255 bytes long") || e.contains("at most 253"),
            "{e}"
        );
        assert!(encode_name(&long[..253]).is_ok());
        assert!(encode_name("a..b").unwrap_err().contains("empty label"));
        assert!(encode_name("").unwrap_err().contains("empty"));
        assert!(encode_name("bücher.test").unwrap_err().contains("xn--"));
    }

    #[test]
    fn servers_are_addresses() {
        let p = |s: &str| parse_server(s).map(|a| a.to_string());
        assert_eq!(p("10.0.0.1").unwrap(), "10.0.0.1:53");
        assert_eq!(p("10.0.0.1:5353").unwrap(), "10.0.0.1:5353");
        assert_eq!(p("::1").unwrap(), "[::1]:53");
        assert_eq!(p("[::1]").unwrap(), "[::1]:53");
        assert_eq!(p("[fd00::1]:5300").unwrap(), "[fd00::1]:5300");
        for bad in [
            "dns.google",
            "10.0.0.1:99999",
            "10.0.0.1:",
            "",
            "10.0.0.1:0",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let params = |server: &str| DnsParams {
            name: "example.test".into(),
            server: Some(server.into()),
        };
        assert!(params("{{ params.dns }}").validate().is_ok());
        assert!(params("1.1.1.1").validate().is_ok());
        assert!(params("one.one").validate().is_err());
    }
}
