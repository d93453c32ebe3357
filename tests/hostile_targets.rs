//! Hostile probe targets end to end (issue 9, fault injection): real loopback servers that
//! never answer, reset the connection, answer one byte at a time, offer 10 GiB, or keep an
//! event stream or a metrics page going forever, and a FIFO that never gets data. A runbook
//! whose checks hit each of them, then one healthy check after them all, runs through the
//! real binary; every hostile check must end `failed` or `error` with a reason that names the
//! timeout, the cap or the reset, the healthy check must still run and pass, and the process
//! must stay within a memory bound while gigabytes are on offer. Every wait is bounded; the
//! servers stop writing when the probe hangs up, and never hold what they send.

mod cli_case;
mod measured;
mod record;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use cli_case::CliCase;
use measured::{Ran, run_within};

/// The pause between two bytes of a trickled answer.
const TRICKLE: Duration = Duration::from_millis(200);
/// What the huge targets offer: 10 GiB, generated as it is sent.
const HUGE: u64 = 10 << 30;
/// Connections one target accepts before it stops listening (each test makes a few).
const MAX_CONNECTIONS: usize = 8;
/// The most a request head may be; a target reads no more of it.
const MAX_HEAD: usize = 64 * 1024;
/// The `prometheus` probe reads a page or an answer up to this size (16 MiB).
const PROBE_PAGE_CAP: usize = 16 << 20;
/// Peak resident memory the `runbook` process may reach, in KiB, while 10 GiB are offered.
const MAX_RSS_KIB: u64 = 256 * 1024;
/// The longest one `runbook` process may take before it is killed and the test fails.
const PROCESS_WAIT: Duration = Duration::from_secs(180);

/// What a hostile target does with each connection.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers.
    Silent,
    /// Reads the request, then resets the connection (`SO_LINGER` 0 and close: an RST).
    ResetBeforeAnswer,
    /// Sends the head and part of a longer body, then resets.
    ResetMidBody,
    /// A valid answer whose head comes one byte every [`TRICKLE`].
    SlowHead,
    /// A valid head at once, then the body one byte every [`TRICKLE`].
    SlowBody,
    /// A status line, then one header line that never ends (10 GiB).
    EndlessHeader,
    /// A JSON body of 10 GiB with its `Content-Length`.
    HugeLength,
    /// A JSON body of 10 GiB, chunked, no length.
    HugeChunked,
    /// An event stream's head, then nothing.
    SseSilent,
    /// An event stream that sends events as fast as they are read, for ever (10 GiB).
    SseEndlessEvents,
    /// An event stream whose one `data:` line never ends (10 GiB without a newline).
    SseEndlessLine,
    /// A `/metrics` page of valid samples that goes on for 10 GiB.
    MetricsEndless,
    /// A Prometheus `/api/v1/query` answer whose result vector goes on for 10 GiB.
    QueryHuge,
    /// A `/api/v1/query` answer just under the probe's 16 MiB cap: some 400 000 series.
    QueryUnderCap,
    /// A `/metrics` page just under the cap: some 500 000 series of another metric, then
    /// `hostile_total 7`.
    MetricsUnderCap,
    /// A `/metrics` page just under the cap: some 500 000 samples of `hostile_total`.
    MetricsUnderCapSame,
    /// A TLS record header announcing a 16 KiB handshake message, then one byte every
    /// [`TRICKLE`]: a handshake that looks alive and never ends.
    TlsTrickle,
    /// `200 {"status":"ok"}`.
    Healthy,
}

/// Hostile targets on one runtime; dropping it stops them all.
struct Targets {
    rt: tokio::runtime::Runtime,
}

impl Targets {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Targets { rt }
    }

    /// A loopback listener doing `behaviour` with each of its first connections.
    fn spawn(&self, behaviour: Behaviour) -> SocketAddr {
        let listener = self.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        self.rt.spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    // The probe hanging up ends a target early: that is what it is for.
                    let _ = serve(stream, behaviour).await;
                });
            }
        });
        addr
    }

    /// A listener whose accept queue is full (backlog 0, one connection never accepted): a
    /// further connect gets no answer to its SYN, like a port behind a silent firewall. The
    /// returned streams keep the queue full.
    fn full_backlog(
        &self,
    ) -> (
        SocketAddr,
        Vec<std::net::TcpStream>,
        tokio::net::TcpListener,
    ) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = {
            let _guard = self.rt.enter();
            socket.listen(0).unwrap()
        };
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let mut refused_one = false;
        for _ in 0..8 {
            if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                held.push(s);
            } else {
                refused_one = true;
                break;
            }
        }
        assert!(
            refused_one,
            "the kernel kept accepting connections on a full backlog"
        );
        (addr, held, listener)
    }
}

/// Read a request head (to the blank line), at most [`MAX_HEAD`] bytes. A TLS client's
/// hello (a handshake record, `0x16`) has no blank line: what came is taken as the request,
/// so a target answers a TLS client in the wrong protocol too.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while head.len() < MAX_HEAD
        && head.first() != Some(&0x16)
        && !head.windows(4).any(|w| w == b"\r\n\r\n")
    {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

/// Write `bytes` one at a time, [`TRICKLE`] apart.
async fn trickle(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    for b in bytes {
        stream.write_all(&[*b]).await?;
        stream.flush().await?;
        tokio::time::sleep(TRICKLE).await;
    }
    Ok(())
}

/// Write `total` bytes made of `unit` repeated, in blocks; stops when the peer hangs up.
/// With `chunked`, each block is an HTTP/1.1 chunk and the last chunk ends the body.
async fn flood(
    stream: &mut TcpStream,
    unit: &[u8],
    total: u64,
    chunked: bool,
) -> std::io::Result<()> {
    let mut block = Vec::with_capacity(64 * 1024 + unit.len());
    while block.len() < 64 * 1024 {
        block.extend_from_slice(unit);
    }
    let mut sent = 0u64;
    while sent < total {
        let n = usize::try_from((total - sent).min(block.len() as u64)).unwrap();
        if chunked {
            stream.write_all(format!("{n:x}\r\n").as_bytes()).await?;
            stream.write_all(&block[..n]).await?;
            stream.write_all(b"\r\n").await?;
        } else {
            stream.write_all(&block[..n]).await?;
        }
        sent += n as u64;
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// An answer with a `Content-Length` just under [`PROBE_PAGE_CAP`]: `open`, `item` as many
/// times as fit, `close`.
async fn under_cap(
    stream: &mut TcpStream,
    content_type: &str,
    open: &[u8],
    item: &[u8],
    close: &[u8],
) -> std::io::Result<()> {
    let items = (PROBE_PAGE_CAP - 1024 - open.len() - close.len()) / item.len();
    let length = open.len() + items * item.len() + close.len();
    stream
        .write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    stream.write_all(open).await?;
    flood(stream, item, (items * item.len()) as u64, false).await?;
    stream.write_all(close).await
}

/// Close with an RST instead of a FIN.
fn reset(stream: TcpStream) -> std::io::Result<()> {
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

/// Wait for the peer to hang up, reading (and dropping) at most 1 MiB.
async fn hold(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut read = 0;
    while read < 1 << 20 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        read += n;
    }
    Ok(())
}

/// Do `behaviour` with one connection.
#[expect(clippy::too_many_lines, reason = "one arm per behaviour")]
async fn serve(mut stream: TcpStream, behaviour: Behaviour) -> std::io::Result<()> {
    const OK_JSON: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";
    const SSE_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    if matches!(behaviour, Behaviour::TlsTrickle) {
        // A TLS client speaks first (its hello); read some of it, then trickle.
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await?;
        let mut record = vec![0x16, 0x03, 0x03, 0x40, 0x00, 0x02, 0x00, 0x3f, 0xfc];
        record.resize(64, 0x03);
        return trickle(&mut stream, &record).await;
    }
    read_head(&mut stream).await?;
    match behaviour {
        Behaviour::Silent => hold(&mut stream).await,
        Behaviour::SseSilent => {
            stream.write_all(SSE_HEAD).await?;
            hold(&mut stream).await
        }
        Behaviour::ResetBeforeAnswer => reset(stream),
        Behaviour::ResetMidBody => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"status\":")
                .await?;
            stream.flush().await?;
            tokio::time::sleep(TRICKLE).await;
            reset(stream)
        }
        Behaviour::SlowHead => trickle(&mut stream, OK_JSON).await,
        Behaviour::EndlessHeader => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ").await?;
            flood(&mut stream, b"aaaaaaaaaaaaaaaa", HUGE, false).await
        }
        Behaviour::SlowBody => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
                .await?;
            let mut body = b"{\"status\":\"ok\",\"pad\":\"".to_vec();
            body.resize(998, b'x');
            body.extend_from_slice(b"\"}");
            trickle(&mut stream, &body).await
        }
        Behaviour::HugeLength => {
            stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await?;
            stream.write_all(b"[").await?;
            flood(&mut stream, b"{\"status\":\"ok\"},", HUGE - 1, false).await
        }
        Behaviour::HugeChunked => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
                .await?;
            flood(&mut stream, b"{\"status\":\"ok\"},", HUGE, true).await
        }
        Behaviour::SseEndlessEvents => {
            stream.write_all(SSE_HEAD).await?;
            flood(&mut stream, b"data: {\"n\":1}\n\n", HUGE, false).await
        }
        Behaviour::SseEndlessLine => {
            stream.write_all(SSE_HEAD).await?;
            stream.write_all(b"data: ").await?;
            flood(&mut stream, b"xxxxxxxxxxxxxxxx", HUGE, false).await
        }
        Behaviour::MetricsEndless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            flood(
                &mut stream,
                b"# TYPE hostile_total counter\nhostile_total{path=\"/a\"} 1\n",
                HUGE,
                true,
            )
            .await
        }
        Behaviour::QueryHuge => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let open = br#"{"status":"success","data":{"resultType":"vector","result":["#;
            stream
                .write_all(format!("{:x}\r\n", open.len()).as_bytes())
                .await?;
            stream.write_all(open).await?;
            stream.write_all(b"\r\n").await?;
            flood(
                &mut stream,
                br#"{"metric":{"job":"x"},"value":[1,"1"]},"#,
                HUGE,
                true,
            )
            .await
        }
        Behaviour::QueryUnderCap => {
            let (open, item, close): (&[u8], &[u8], &[u8]) = (
                br#"{"status":"success","data":{"resultType":"vector","result":["#,
                br#"{"metric":{"job":"x"},"value":[1,"1"]},"#,
                br#"{"metric":{},"value":[1,"1"]}]}}"#,
            );
            under_cap(&mut stream, "application/json", open, item, close).await
        }
        Behaviour::MetricsUnderCap => {
            under_cap(
                &mut stream,
                "text/plain; version=0.0.4",
                b"# TYPE other_total counter\n",
                b"other_total{path=\"/a\"} 1\n",
                b"hostile_total 7\n",
            )
            .await
        }
        Behaviour::MetricsUnderCapSame => {
            under_cap(
                &mut stream,
                "text/plain; version=0.0.4",
                b"# TYPE hostile_total counter\n",
                b"hostile_total{path=\"/a\"} 1\n",
                b"",
            )
            .await
        }
        Behaviour::Healthy => stream.write_all(OK_JSON).await,
        // Answered above, before any request head.
        Behaviour::TlsTrickle => Ok(()),
    }
}

/// Run `cmd` to its end within [`PROCESS_WAIT`] (else kill its group and fail), measuring its
/// peak RSS: by `/usr/bin/time -f %M` when present (the kernel's `ru_maxrss`), else by polling
/// `VmHWM` (a high-water mark, so a late poll still sees an earlier peak).
fn run_bounded(cmd: &Command) -> Ran {
    run_within(cmd, PROCESS_WAIT)
}

/// One hostile check: its probe and `with`, its timeout, and the words its reason must hold
/// (any of them).
struct Hostile {
    id: &'static str,
    probe: &'static str,
    with: String,
    timeout_s: u64,
    expect: &'static str,
    reason: &'static [&'static str],
}

/// The runbook text: the hostile checks, then `healthy` after all of them.
fn runbook(checks: &[Hostile], healthy: SocketAddr) -> String {
    use std::fmt::Write as _;
    let mut text =
        String::from("runbook: hostile\ntitle: Hostile targets\nseverity: P3\nchecks:\n");
    for c in checks {
        writeln!(
            text,
            "  - id: {}\n    probe: {}\n    with: {{ {} }}\n    timeout: {}s\n    expect: \"{}\"",
            c.id, c.probe, c.with, c.timeout_s, c.expect
        )
        .unwrap();
    }
    let after: Vec<&str> = checks.iter().map(|c| c.id).collect();
    writeln!(
        text,
        "  - id: healthy\n    probe: http\n    with: {{ url: \"http://{healthy}/healthz\", jq: .status }}\n    \
         timeout: 5s\n    after: [{}]\n    expect: \"value == 'ok'\"\nescalation: {{ ladder: p3d }}",
        after.join(", ")
    )
    .unwrap();
    text
}

/// `text` (from [`runbook`]) with one more check that must pass, before `healthy` and among
/// the checks it waits for.
fn with_benign(text: &str, id: &str, probe: &str, with: &str, expect: &str) -> String {
    text.replacen(
        "  - id: healthy\n",
        &format!(
            "  - id: {id}\n    probe: {probe}\n    with: {{ {with} }}\n    timeout: 3s\n    \
             expect: \"{expect}\"\n  - id: healthy\n"
        ),
        1,
    )
    .replacen("after: [", &format!("after: [{id}, "), 1)
}

/// The seed policy with its webhooks on a loopback port where nothing listens: the incident
/// the failing run opens notifies nobody outside.
fn quiet_policy(policy: &str) -> String {
    let policy = policy
        .replace("http://127.0.0.1:9097/", "http://127.0.0.1:1/")
        .replace("http://127.0.0.1:9096/", "http://127.0.0.1:1/");
    assert!(
        !policy.contains(":9097/") && !policy.contains(":9096/"),
        "the seed policy's channels moved"
    );
    policy
}

fn fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// A hostile check.
fn hostile(
    id: &'static str,
    probe: &'static str,
    with: String,
    timeout_s: u64,
    expect: &'static str,
    reason: &'static [&'static str],
) -> Hostile {
    Hostile {
        id,
        probe,
        with,
        timeout_s,
        expect,
        reason,
    }
}

/// A reason that names the timeout: the probe's own words (`no answer from ... within 1s`)
/// or the executor's (`timed out after 1s`), whichever deadline fires first, as both are the
/// step's timeout.
const TIMEOUT: &[&str] = &["timed out after", "within"];
/// A reason that names a reset (or the early close hyper reports for one).
const RESET: &[&str] = &["reset", "closed"];

/// The hostile targets, the FIFO and the healthy target; the checks that hit them, and the
/// ones that must end `ok` however endless their target.
struct Setup {
    targets: Targets,
    case: CliCase,
    checks: Vec<Hostile>,
    benign: Vec<(&'static str, &'static str, String, &'static str)>,
    healthy: SocketAddr,
    _backlog: (Vec<std::net::TcpStream>, TcpListener),
}

#[expect(
    clippy::too_many_lines,
    reason = "one table: each target and the check that hits it"
)]
fn setup() -> Setup {
    let targets = Targets::new();
    let t = |b| targets.spawn(b);
    let url = |a: SocketAddr, path: &str| format!("url: \"http://{a}{path}\"");
    let tls = |a: SocketAddr| format!("host: 127.0.0.1, port: {}", a.port());
    let (silent, reset_early, slow_head, slow_body) = (
        t(Behaviour::Silent),
        t(Behaviour::ResetBeforeAnswer),
        t(Behaviour::SlowHead),
        t(Behaviour::SlowBody),
    );
    let (huge_chunked, healthy) = (t(Behaviour::HugeChunked), t(Behaviour::Healthy));
    let (backlog, held, listener) = targets.full_backlog();
    let case = CliCase::new("hostile.yaml", "", |p| quiet_policy(&p));
    let never = case.path("never.fifo");
    fifo(&never);
    let never = never.display().to_string();
    let http_jq = |b| format!("{}, jq: '.[0].status'", url(t(b), "/"));
    let checks = vec![
        hostile(
            "http_silent",
            "http",
            url(silent, "/"),
            1,
            "status == 200",
            TIMEOUT,
        ),
        hostile(
            "http_reset_early",
            "http",
            url(reset_early, "/"),
            3,
            "status == 200",
            RESET,
        ),
        hostile(
            "http_reset_mid_body",
            "http",
            url(t(Behaviour::ResetMidBody), "/"),
            3,
            "status == 200",
            RESET,
        ),
        hostile(
            "http_slow_head",
            "http",
            url(slow_head, "/"),
            2,
            "status == 200",
            TIMEOUT,
        ),
        hostile(
            "http_endless_header",
            "http",
            url(t(Behaviour::EndlessHeader), "/"),
            3,
            "status == 200",
            &["head is too large"],
        ),
        hostile(
            "http_slow_body",
            "http",
            url(slow_body, "/"),
            2,
            "status == 200",
            TIMEOUT,
        ),
        hostile(
            "http_10gib_length",
            "http",
            http_jq(Behaviour::HugeLength),
            60,
            "value == 'ok'",
            &["4 MiB cap"],
        ),
        hostile(
            "http_10gib_chunked",
            "http",
            format!("{}, jq: '.[0].status'", url(huge_chunked, "/")),
            60,
            "value == 'ok'",
            &["4 MiB cap"],
        ),
        hostile(
            "http_token_fifo",
            "http",
            format!("{}, token_file: \"{never}\"", url(healthy, "/healthz")),
            2,
            "status == 200",
            &["not a regular file"],
        ),
        hostile(
            "sse_silent",
            "sse",
            format!(
                "{}, first_event_within: 1s",
                url(t(Behaviour::SseSilent), "/sse")
            ),
            3,
            "events > 0",
            &["no event within 1s"],
        ),
        hostile(
            "sse_slow_head",
            "sse",
            url(slow_head, "/sse"),
            2,
            "events > 0",
            TIMEOUT,
        ),
        hostile(
            "sse_endless_line",
            "sse",
            format!(
                "{}, first_event_within: 1s",
                url(t(Behaviour::SseEndlessLine), "/sse")
            ),
            3,
            "events > 0",
            &["no event within 1s"],
        ),
        hostile(
            "prometheus_silent",
            "prometheus",
            format!("{}, metric: hostile_total", url(silent, "/metrics")),
            1,
            "value > 0",
            TIMEOUT,
        ),
        hostile(
            "prometheus_slow_body",
            "prometheus",
            format!("{}, metric: hostile_total", url(slow_body, "/metrics")),
            2,
            "value > 0",
            TIMEOUT,
        ),
        hostile(
            "prometheus_10gib_page",
            "prometheus",
            format!(
                "{}, metric: hostile_total",
                url(t(Behaviour::MetricsEndless), "/metrics")
            ),
            60,
            "value > 0",
            &["16 MiB cap"],
        ),
        hostile(
            "prometheus_10gib_query",
            "prometheus",
            format!("server: \"http://{}\", query: up", t(Behaviour::QueryHuge)),
            60,
            "value > 0",
            &["16 MiB cap"],
        ),
        hostile("tcp_no_syn_ack", "tcp", tls(backlog), 1, "open", TIMEOUT),
        hostile(
            "tls_silent",
            "tls_cert",
            tls(silent),
            1,
            "days_left > 0",
            TIMEOUT,
        ),
        hostile(
            "tls_reset",
            "tls_cert",
            tls(reset_early),
            3,
            "days_left > 0",
            RESET,
        ),
        hostile(
            "tls_trickle",
            "tls_cert",
            tls(t(Behaviour::TlsTrickle)),
            2,
            "days_left > 0",
            TIMEOUT,
        ),
        hostile(
            "tls_10gib_http",
            "tls_cert",
            tls(huge_chunked),
            3,
            "days_left > 0",
            &["handshake"],
        ),
        hostile(
            "tls_file_fifo",
            "tls_cert",
            format!("file: \"{never}\""),
            2,
            "days_left > 0",
            &["not a regular file"],
        ),
        hostile(
            "tls_file_dev_zero",
            "tls_cert",
            "file: /dev/zero".into(),
            2,
            "days_left > 0",
            &["not a regular file"],
        ),
    ];
    // Not hostile in the end: an endless stream is read for its window only, a FIFO is
    // neither globbed as a file nor opened by `file`; each must end and say so.
    let benign = vec![
        (
            "sse_endless_events",
            "sse",
            format!(
                "{}, window: 1s",
                url(t(Behaviour::SseEndlessEvents), "/sse")
            ),
            "events > 0",
        ),
        (
            "jsonl_fifo",
            "jsonl",
            format!("path: \"{never}\""),
            "files == 0",
        ),
        (
            "file_fifo",
            "file",
            format!("path: \"{never}\""),
            "kind == 'other'",
        ),
    ];
    Setup {
        targets,
        case,
        checks,
        benign,
        healthy,
        _backlog: (held, listener),
    }
}

/// The check steps of a `run --format json` document, by id.
/// At most 2000 characters of a JSON document, for a failure message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(2000) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The finished check steps of a `run` or `show` document, by check id (`id` in the one,
/// `step_id` in the other).
/// `runbook run hostile --format json` on `case` within `limit`: it must end `problem_remains`
/// (exit 1), its hostile checks having failed; the process, its JSON and its steps by id.
fn run_hostile(case: &CliCase, limit: Duration) -> (Ran, Value, BTreeMap<String, Value>) {
    let ran = run_within(&case.cmd(&["run", "hostile", "--format", "json"]), limit);
    eprintln!(
        "run: {:?} in {:?}, peak RSS {} KiB",
        ran.status.code(),
        ran.elapsed,
        ran.peak_kib
    );
    let doc: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", ran.stdout, ran.stderr));
    assert_eq!(
        ran.status.code(),
        Some(1),
        "{}\n{}",
        short(&doc),
        ran.stderr
    );
    assert_eq!(doc["outcome"], "problem_remains", "{}", short(&doc));
    let steps = steps_by_id(&doc);
    (ran, doc, steps)
}

fn steps_by_id(doc: &Value) -> BTreeMap<String, Value> {
    doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {}", short(doc)))
        .iter()
        .filter(|s| s["kind"] == "check" && s["state"].as_str().is_none_or(|st| st == "done"))
        .map(|s| {
            let id = s["step_id"].as_str().or(s["id"].as_str()).unwrap();
            (id.to_owned(), s.clone())
        })
        .collect()
}

/// Each check that did not end as it must, in words.
fn wrong_outcomes(s: &Setup, steps: &BTreeMap<String, Value>) -> Vec<String> {
    let mut wrong = Vec::new();
    for c in &s.checks {
        let step = &steps[c.id];
        let status = step["status"].as_str().unwrap_or("?");
        let reason = step["result"]["reason"].as_str().unwrap_or("");
        eprintln!(
            "{:24} {status:7} {:>6} ms  {reason}",
            c.id, step["duration_ms"]
        );
        if !matches!(status, "failed" | "error") || !c.reason.iter().any(|r| reason.contains(r)) {
            wrong.push(format!(
                "{}: {status}: {reason:?} (want one of {:?})",
                c.id, c.reason
            ));
        }
    }
    for (id, ..) in &s.benign {
        let step = &steps[*id];
        let status = step["status"].as_str().unwrap_or("?");
        eprintln!("{id:24} {status:7} {:>6} ms", step["duration_ms"]);
        if step["status"] != "ok" {
            wrong.push(format!("{id}: {}", step["result"]));
        }
    }
    wrong
}

#[test]
fn every_hostile_target_ends_in_a_timeout_a_cap_or_a_reset_and_the_run_goes_on() {
    let s = setup();
    let mut text = runbook(&s.checks, s.healthy);
    for (id, probe, with, expect) in &s.benign {
        text = with_benign(&text, id, probe, with, expect);
    }
    std::fs::write(s.case.path("runbooks/hostile.yaml"), &text).unwrap();
    let (code, out) = s.case.cli(&["validate"]);
    assert_eq!(code, 0, "{out}\n{text}");

    let (ran, doc, steps) = run_hostile(&s.case, PROCESS_WAIT);
    let wrong = wrong_outcomes(&s, &steps);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        steps["sse_endless_events"]["result"]["events"].as_u64() > Some(1),
        "{}",
        steps["sse_endless_events"]
    );
    // The run goes on: the healthy check, ordered after every hostile one, ran and passed.
    assert_eq!(steps["healthy"]["status"], "ok", "{}", steps["healthy"]);
    let last_start = steps
        .iter()
        .filter(|(id, _)| id.as_str() != "healthy")
        .map(|(_, st)| st["started_at"].as_str().unwrap().to_owned())
        .max()
        .unwrap();
    assert!(
        steps["healthy"]["started_at"].as_str().unwrap() >= last_start.as_str(),
        "{}",
        steps["healthy"]
    );
    // Bounded by the probes' own timeouts (all of them one after another, and slack for a
    // slow machine), however long the targets would have gone on.
    let sum = s.checks.iter().map(|c| c.timeout_s).sum::<u64>() + 3 * 3 + 5;
    assert!(
        ran.elapsed < Duration::from_secs(sum + 30),
        "took {:?}, the timeouts sum to {sum} s",
        ran.elapsed
    );
    assert!(
        ran.peak_kib > 0 && ran.peak_kib < MAX_RSS_KIB,
        "peak RSS {} KiB while 10 GiB were offered",
        ran.peak_kib
    );

    // The audit trail recorded the same outcomes.
    let shown = s.case.json(&["show", doc["run_id"].as_str().unwrap()]);
    let rows = steps_by_id(&shown);
    for c in &s.checks {
        assert_eq!(
            rows[c.id]["status"], steps[c.id]["status"],
            "{}",
            rows[c.id]
        );
        assert_eq!(
            rows[c.id]["result"]["reason"], steps[c.id]["result"]["reason"],
            "{}",
            rows[c.id]
        );
    }
    let (code, out) = s.case.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    drop(s.targets);
    record::row(
        file!(),
        "every_hostile_target_ends_in_a_timeout_a_cap_or_a_reset_and_the_run_goes_on",
        "probe targets on loopback that stay silent, reset, trickle a byte every 200 ms, offer 10 GiB (length and chunked), stream endless SSE, fill the accept backlog; http, sse, prometheus, tcp, tls_cert checks in one run",
        &format!(
            "{} hostile checks, {} benign, then a healthy one",
            s.checks.len(),
            s.benign.len()
        ),
        "each hostile check failed or errored with the timeout, cap or reset in its reason; the healthy check after them passed; run time within the sum of the timeouts; peak RSS under 256 MiB",
    );
}

#[test]
fn an_ad_hoc_http_probe_of_ten_gib_stops_at_the_cap_in_bounded_memory() {
    let targets = Targets::new();
    for behaviour in [Behaviour::HugeLength, Behaviour::HugeChunked] {
        let addr = targets.spawn(behaviour);
        let case = CliCase::new("none.yaml", "", std::convert::identity);
        let url = format!("url=http://{addr}/");
        let ran = run_bounded(&case.cmd(&["probe", "http", "--with", &url, "--timeout", "60s"]));
        eprintln!(
            "{behaviour:?}: {:?} in {:?}, peak RSS {} KiB",
            ran.status.code(),
            ran.elapsed,
            ran.peak_kib
        );
        let doc: Value = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", ran.stdout, ran.stderr));
        let r = &doc["result"];
        let doc = short(&doc);
        assert_eq!(ran.status.code(), Some(0), "{doc}");
        assert_eq!(r["status"], 200, "{doc}");
        assert_eq!(r["body_truncated"], true, "{doc}");
        assert_eq!(r["body"].as_str().unwrap().len(), 64 * 1024, "{doc}");
        assert_eq!(r["json"], Value::Null, "a capped body is not parsed: {doc}");
        assert!(
            r["reason"].as_str().unwrap_or("").contains("4 MiB cap"),
            "{doc}"
        );
        assert!(
            ran.peak_kib > 0 && ran.peak_kib < MAX_RSS_KIB,
            "peak RSS {} KiB while 10 GiB were offered",
            ran.peak_kib
        );
    }
    record::row(
        file!(),
        "an_ad_hoc_http_probe_of_ten_gib_stops_at_the_cap_in_bounded_memory",
        "`runbook probe http` on a 10 GiB answer",
        &format!("{} GiB offered", HUGE >> 30),
        "64 KiB kept and marked truncated, not parsed; peak RSS under 256 MiB",
    );
}

#[test]
fn a_prometheus_answer_just_under_the_cap_is_read_in_bounded_memory() {
    let targets = Targets::new();
    let case = CliCase::new("none.yaml", "", std::convert::identity);
    let query = format!("server=http://{}", targets.spawn(Behaviour::QueryUnderCap));
    let page = format!(
        "url=http://{}/metrics",
        targets.spawn(Behaviour::MetricsUnderCap)
    );
    let same = format!(
        "url=http://{}/metrics",
        targets.spawn(Behaviour::MetricsUnderCapSame)
    );
    // (with, value, samples listed, reason)
    let cases = [
        (
            [query.as_str(), "query=up"],
            Value::from(1.0),
            100,
            Value::Null,
        ),
        (
            [page.as_str(), "metric=hostile_total"],
            Value::from(7.0),
            1,
            Value::Null,
        ),
        (
            [same.as_str(), "metric=hostile_total"],
            Value::Null,
            0,
            Value::from("over the cap of 100000 samples of `hostile_total`: not summed"),
        ),
    ];
    let n_cases = cases.len();
    for (with, value, listed, reason) in cases {
        let ran = run_bounded(&case.cmd(&[
            "probe",
            "prometheus",
            "--with",
            with[0],
            "--with",
            with[1],
            "--timeout",
            "60s",
        ]));
        eprintln!(
            "{with:?}: {:?} in {:?}, peak RSS {} KiB",
            ran.status.code(),
            ran.elapsed,
            ran.peak_kib
        );
        let doc: Value = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", ran.stderr));
        let r = &doc["result"];
        let doc = short(&doc);
        assert_eq!(ran.status.code(), Some(0), "{doc}");
        assert_eq!(r["value"], value, "{doc}");
        assert_eq!(r["reason"], reason, "{doc}");
        assert_eq!(
            r["samples"].as_array().map_or(0, Vec::len),
            listed,
            "the first 100 series at most: {doc}"
        );
        assert!(
            ran.peak_kib > 0 && ran.peak_kib < MAX_RSS_KIB,
            "peak RSS {} KiB for a page of 16 MiB",
            ran.peak_kib
        );
    }
    record::row(
        file!(),
        "a_prometheus_answer_just_under_the_cap_is_read_in_bounded_memory",
        "Prometheus query answers and /metrics pages just under the 16 MiB cap",
        &format!("{} answers of up to {} MiB", n_cases, PROBE_PAGE_CAP >> 20),
        "the value right, the listed samples bounded, one metric's samples capped with a reason; peak RSS under 256 MiB",
    );
}

/// A reason that names a FIFO.
const FIFO: &[&str] = &["not a regular file (a fifo)"];
/// A reason that names a device.
const DEVICE: &[&str] = &["not a regular file (a device)"];

/// In `case`: a FIFO that never gets a writer, a file over the `config` probe's 4 MiB cap and
/// a good config file. The checks that read the first two and `/dev/zero` (each must end
/// `error` with its reason), and the runbook text with a check of the good file (it must
/// pass) and then the healthy check.
fn unending_files(case: &CliCase, healthy: SocketAddr) -> (Vec<Hostile>, String) {
    // Named like config files, so the name alone gives nothing away.
    let never = case.path("never.yaml");
    fifo(&never);
    let never = never.display().to_string();
    let big = case.path("big.yaml");
    // Sparse: 4 MiB and one byte of zeros, read up to the cap and one byte, never whole.
    std::fs::File::create(&big)
        .unwrap()
        .set_len((4 << 20) + 1)
        .unwrap();
    let big = big.display().to_string();
    let good = case.path("good.yaml");
    std::fs::write(&good, "limits:\n  max_orders: 25\n").unwrap();
    let token = |file: &str| format!("url: \"http://{healthy}/healthz\", token_file: \"{file}\"");
    let table: [(
        &'static str,
        &'static str,
        String,
        &'static str,
        &'static [&'static str],
    ); 7] = [
        (
            "config_fifo",
            "config",
            format!("path: \"{never}\""),
            "exists",
            FIFO,
        ),
        (
            "config_dev_zero",
            "config",
            "path: /dev/zero".into(),
            "exists",
            DEVICE,
        ),
        (
            "config_over_cap",
            "config",
            format!("path: \"{big}\""),
            "exists",
            &["over the 4 MiB cap"],
        ),
        (
            "http_token_fifo",
            "http",
            token(&never),
            "status == 200",
            FIFO,
        ),
        (
            "http_token_dev_zero",
            "http",
            token("/dev/zero"),
            "status == 200",
            DEVICE,
        ),
        (
            "tls_file_fifo",
            "tls_cert",
            format!("file: \"{never}\""),
            "days_left > 0",
            FIFO,
        ),
        (
            "tls_file_dev_zero",
            "tls_cert",
            "file: /dev/zero".into(),
            "days_left > 0",
            DEVICE,
        ),
    ];
    let checks: Vec<Hostile> = table
        .into_iter()
        .map(|(id, probe, with, expect, reason)| hostile(id, probe, with, 5, expect, reason))
        .collect();
    let text = with_benign(
        &runbook(&checks, healthy),
        "config_good",
        "config",
        &format!("path: \"{}\", jq: .limits.max_orders", good.display()),
        "value == 25",
    );
    (checks, text)
}

/// The files a runbook names and a probe reads whole (`config`'s `path`, `http`'s
/// `token_file`, `tls_cert`'s `file`): a FIFO that never gets a writer, `/dev/zero`, a file
/// over the cap. Each check ends `error` at once with a reason naming what the file is (or
/// the cap), not at its timeout; a good config file next to them is still read; the healthy
/// check after them all runs and passes; and the process exits. A blocking read of the FIFO
/// used to hang the process for good (its thread outlived the step), and `/dev/zero` grew
/// memory without bound.
#[test]
fn files_that_never_end_are_refused_at_once_and_the_process_exits() {
    let targets = Targets::new();
    let healthy = targets.spawn(Behaviour::Healthy);
    let case = CliCase::new("hostile.yaml", "", |p| quiet_policy(&p));
    let (checks, text) = unending_files(&case, healthy);
    std::fs::write(case.path("runbooks/hostile.yaml"), &text).unwrap();
    let (code, out) = case.cli(&["validate"]);
    assert_eq!(code, 0, "{out}\n{text}");

    // Every check is refused at once, so the run takes seconds. A read stuck on the FIFO kept
    // the process alive after its last step; this limit ends (and fails) such a run early.
    let (ran, _, steps) = run_hostile(&case, Duration::from_secs(60));
    let mut wrong = Vec::new();
    for c in &checks {
        let step = &steps[c.id];
        let reason = step["result"]["reason"].as_str().unwrap_or("");
        let ms = step["duration_ms"].as_u64().unwrap_or(u64::MAX);
        eprintln!("{:24} {:7} {ms:>6} ms  {reason}", c.id, step["status"]);
        // Well before the 5 s timeout: refused, not timed out.
        if step["status"] != "error" || !reason.contains(c.reason[0]) || ms >= 3000 {
            wrong.push(format!(
                "{}: {} in {ms} ms: {reason:?}",
                c.id, step["status"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let good = &steps["config_good"];
    assert_eq!(good["status"], "ok", "{good}");
    assert_eq!(good["result"]["value"], 25, "{good}");
    assert_eq!(steps["healthy"]["status"], "ok", "{}", steps["healthy"]);
    assert!(
        ran.elapsed < Duration::from_secs(30),
        "took {:?} for checks refused at once",
        ran.elapsed
    );
    assert!(
        ran.peak_kib > 0 && ran.peak_kib < MAX_RSS_KIB,
        "peak RSS {} KiB next to /dev/zero",
        ran.peak_kib
    );
    drop(targets);
    record::row(
        file!(),
        "files_that_never_end_are_refused_at_once_and_the_process_exits",
        "`config`, `http` token_file and `tls_cert` file on a FIFO that never gets data, on /dev/zero, on a file over the cap",
        &format!("{} checks, then a healthy one", checks.len()),
        "each an error at once naming the file kind or the cap; the run went on; the process exited",
    );
}
