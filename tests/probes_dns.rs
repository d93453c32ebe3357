//! The `dns` probe asking one server directly, end to end through `runbook probe dns`: a real
//! `dnsmasq` on loopback (A, AAAA, CNAME, NXDOMAIN, an answer too big for UDP), a port where
//! nothing listens, and small hostile servers in this process (wrong ids, broken answers).
//!
//! `dnsmasq` comes from the Debian package `dnsmasq-base`; without it these tests fail.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use insta_cmd::get_cargo_bin;
use serde_json::{Value, json};

/// Rows of `big.example.test`: their A records (16 bytes each) overflow a 512-byte datagram.
const BIG: u8 = 40;

/// A `dnsmasq` answering only from its command line, killed on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn start() -> Self {
        // A free port can be taken between the probe and dnsmasq's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start() {
                Ok(d) => return d,
                Err(e) => last = e,
            }
        }
        panic!("dnsmasq did not start: {last}");
    }

    fn try_start() -> Result<Self, String> {
        let port = free_port();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("dnsmasq.log");
        let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut args = vec![
            "--no-daemon".to_owned(), // also: no fork for TCP, no change of user
            "--conf-file=/dev/null".to_owned(),
            "--no-resolv".to_owned(),
            "--no-hosts".to_owned(),
            "--pid-file=".to_owned(),
            format!("--port={port}"),
            "--listen-address=127.0.0.1".to_owned(),
            "--bind-interfaces".to_owned(),
            // Answer for the whole zone locally: unknown names there are NXDOMAIN.
            "--local=/example.test/".to_owned(),
            "--host-record=up.example.test,10.1.2.3,fd00::1".to_owned(),
            "--host-record=v4only.example.test,10.1.2.4".to_owned(),
            "--cname=alias.example.test,up.example.test".to_owned(),
        ];
        args.extend((1..=BIG).map(|i| format!("--host-record=big.example.test,10.9.0.{i}")));
        let spawn = |bin: &str| {
            Command::new(bin)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr.try_clone().expect("log file handle"))
                .spawn()
        };
        // `/usr/sbin` is not on every user's PATH.
        let child = spawn("dnsmasq")
            .or_else(|_| spawn("/usr/sbin/dnsmasq"))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `dnsmasq` ({e}): install it with `apt-get install -y dnsmasq-base`"
                )
            });
        let mut d = Dnsmasq {
            child,
            port,
            log,
            _dir: dir,
        };
        // Ready once its TCP listener accepts (it binds UDP first).
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(status)) = d.child.try_wait() {
                return Err(format!("exited with {status}: {}", d.log()));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(d);
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!("not listening on {port} after 10s: {}", d.log()))
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for both UDP and TCP at the time of asking.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// What `runbook probe dns` printed, and how long it took.
struct Probed {
    code: i32,
    doc: Value,
    took: Duration,
}

impl Probed {
    fn result(&self) -> &Value {
        &self.doc["result"]
    }
}

fn probe(name: &str, server: &str, timeout: &str) -> Probed {
    let started = Instant::now();
    let out = Command::new(get_cargo_bin("runbook"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUNBOOK_DIR")
        .env_remove("RUNBOOK_DB")
        .env("NO_COLOR", "1")
        .args(["probe", "dns", "--timeout", timeout, "--with"])
        .arg(format!("name={name}"))
        .arg("--with")
        .arg(format!("server={server}"))
        .output()
        .expect("runbook runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Probed {
        code: out.status.code().unwrap_or(-1),
        doc,
        took,
    }
}

#[track_caller]
fn observed(p: &Probed) -> &serde_json::Map<String, Value> {
    assert_eq!(p.doc["outcome"], json!("observed"), "{:#}", p.doc);
    assert_eq!(p.code, 0, "{:#}", p.doc);
    p.result().as_object().expect("result is an object")
}

// ---------------------------------------------------------------- dnsmasq

#[test]
fn a_and_aaaa_come_back_exactly() {
    let dns = Dnsmasq::start();
    let p = probe("up.example.test", &dns.server(), "5s");
    let m = observed(&p);
    assert_eq!(m["addresses"], json!(["10.1.2.3", "fd00::1"]), "{m:?}");
    assert_eq!(m["count"], json!(2));
    assert_eq!(m["value"], json!(2));
    assert_eq!(m["rcode"], json!("NOERROR"));
    assert_eq!(m["server"], json!(dns.server()));
    assert!(m.get("reason").is_none(), "{m:?}");
    assert!(m.get("unreachable").is_none(), "{m:?}");
}

#[test]
fn a_cname_leads_to_its_addresses_and_a_trailing_dot_is_fine() {
    let dns = Dnsmasq::start();
    let m = observed(&probe("alias.example.test.", &dns.server(), "5s")).clone();
    assert_eq!(m["addresses"], json!(["10.1.2.3", "fd00::1"]), "{m:?}");
    // No AAAA record: NOERROR with one address, not an error.
    let m = observed(&probe("v4only.example.test", &dns.server(), "5s")).clone();
    assert_eq!(m["addresses"], json!(["10.1.2.4"]), "{m:?}");
    assert_eq!(m["rcode"], json!("NOERROR"));
}

#[test]
fn an_unknown_name_is_nxdomain_with_count_zero() {
    let dns = Dnsmasq::start();
    let p = probe("nope.example.test", &dns.server(), "5s");
    let m = observed(&p);
    assert_eq!(m["rcode"], json!("NXDOMAIN"), "{m:?}");
    assert_eq!(m["count"], json!(0));
    assert_eq!(m["value"], json!(0));
    assert_eq!(m["addresses"], json!([]));
    let reason = m["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("nope.example.test") && reason.contains("NXDOMAIN"),
        "{reason}"
    );
    // An observation the check's `expect` judges, not a failed target.
    assert!(m.get("unreachable").is_none(), "{m:?}");
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let dns = Dnsmasq::start();
    let p = probe("big.example.test", &dns.server(), "5s");
    let m = observed(&p);
    let want: Vec<String> = {
        let mut ips: Vec<std::net::IpAddr> = (1..=BIG)
            .map(|i| std::net::IpAddr::from([10, 9, 0, i]))
            .collect();
        ips.sort_unstable();
        ips.iter().map(ToString::to_string).collect()
    };
    assert_eq!(m["count"], json!(BIG), "{m:?}\n{}", dns.log());
    assert_eq!(m["addresses"], json!(want));
}

// ---------------------------------------------------------------- unreachable servers

#[test]
fn a_port_where_nothing_listens_fails_with_a_reason() {
    let port = {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        s.local_addr().unwrap().port()
    };
    let server = format!("127.0.0.1:{port}");
    let p = probe("up.example.test", &server, "3s");
    let m = observed(&p);
    assert_eq!(m["unreachable"], json!(true), "{m:?}");
    assert_eq!(m["server"], json!(server));
    let reason = m["reason"].as_str().expect("a reason");
    assert!(reason.contains(&server), "{reason}");
    assert!(p.took < Duration::from_secs(8), "took {:?}", p.took);
}

/// A UDP server in a thread answering every query with `reply(query)`, until `for_how_long`.
fn fake_server(
    reply: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    for_how_long: Duration,
) -> (SocketAddr, thread::JoinHandle<usize>) {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let until = Instant::now() + for_how_long;
        let mut queries = 0;
        let mut buf = [0u8; 512];
        while Instant::now() < until {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            queries += 1;
            for answer in reply(&buf[..n]) {
                let _ = sock.send_to(&answer, from);
            }
        }
        queries
    });
    (addr, handle)
}

/// The query echoed back as a response (QR set, no answers) with `id` and `extra` bytes.
fn echo(query: &[u8], id: [u8; 2], ancount: u8, extra: &[u8]) -> Vec<u8> {
    let mut m = query.to_vec();
    m[..2].copy_from_slice(&id);
    m[2] |= 0x80;
    m[7] = ancount;
    m.extend_from_slice(extra);
    m
}

#[test]
fn wrong_ids_are_ignored_until_the_timeout() {
    let (addr, server) = fake_server(
        |q| {
            let wrong = [q[0] ^ 0x55, q[1]];
            // A stray answer with an address in it, a runt, and an empty datagram.
            let a = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 6, 6, 6, 6];
            vec![echo(q, wrong, 1, &a), vec![q[0]], Vec::new()]
        },
        Duration::from_secs(4),
    );
    let p = probe("up.example.test", &addr.to_string(), "1s");
    let m = observed(&p);
    assert_eq!(m["unreachable"], json!(true), "{m:?}");
    let reason = m["reason"].as_str().unwrap();
    assert!(
        reason.contains("no answer") && reason.contains("1s"),
        "{reason}"
    );
    assert!(m.get("addresses").is_none(), "{m:?}");
    assert!(p.took >= Duration::from_millis(900), "took {:?}", p.took);
    assert!(p.took < Duration::from_secs(4), "took {:?}", p.took);
    // A and AAAA both went out, and were sent again while unanswered.
    assert!(server.join().unwrap() >= 2);
}

#[test]
fn a_malformed_answer_fails_with_a_reason() {
    let (addr, server) = fake_server(
        |q| {
            // The right id, one A record whose rdlen runs past the end.
            let a = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 6, 6];
            vec![echo(q, [q[0], q[1]], 1, &a)]
        },
        Duration::from_secs(2),
    );
    let p = probe("up.example.test", &addr.to_string(), "5s");
    let m = observed(&p);
    assert_eq!(m["unreachable"], json!(true), "{m:?}");
    let reason = m["reason"].as_str().unwrap();
    assert!(reason.starts_with("malformed answer from"), "{reason}");
    assert!(p.took < Duration::from_secs(3), "took {:?}", p.took);
    assert!(server.join().unwrap() >= 1);
}

// ---------------------------------------------------------------- parameters

#[test]
fn bad_names_and_servers_are_errors() {
    let label = "x".repeat(64);
    let p = probe(&format!("{label}.example.test"), "127.0.0.1:9", "1s");
    assert_eq!(p.doc["outcome"], json!("error"), "{:#}", p.doc);
    let e = p.result()["error"].as_str().unwrap();
    assert!(e.contains("at most 63"), "{e}");

    let p = probe("up.example.test", "dns.example.test", "1s");
    assert_eq!(p.doc["outcome"], json!("error"), "{:#}", p.doc);
    let e = p.result()["error"].as_str().unwrap();
    assert!(e.contains("`server` must be an IP address"), "{e}");
    assert_ne!(p.code, 0);
}

#[test]
fn help_documents_server() {
    let out = Command::new(get_cargo_bin("runbook"))
        .args(["probe", "--help", "dns"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("`server`") && text.contains("`rcode`"),
        "{text}"
    );
}
