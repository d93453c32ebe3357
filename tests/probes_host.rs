//! Native probes against real resources on this machine: temp files and directories, a real
//! child process, sysinfo, TCP listeners, `localhost` DNS, a generated certificate, config
//! files, a JSON-lines file with known damage, and the `unavailable` paths where there is no
//! systemd.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runbook::host::RealHost;
use runbook::probes::{ProbeContext, ProbeKind, ProbeOutcome};
use serde_json::{Map, Value, json};

fn cx(host: &RealHost) -> ProbeContext<'_> {
    ProbeContext::new(host, Duration::from_secs(5), false)
}

async fn run(kind: ProbeKind, with: Value) -> ProbeOutcome {
    let host = RealHost::new();
    kind.run(&with, &cx(&host)).await
}

#[track_caller]
fn observed(outcome: ProbeOutcome) -> Map<String, Value> {
    match outcome {
        ProbeOutcome::Observed(m) => m,
        other => panic!("expected an observation, got {other:?}"),
    }
}

#[track_caller]
fn error(outcome: ProbeOutcome) -> String {
    match outcome {
        ProbeOutcome::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- file

#[tokio::test]
async fn file_stats_a_secret_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cr3t-value").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = observed(
        run(
            ProbeKind::File,
            json!({ "path": path.to_str().unwrap(), "secret": true }),
        )
        .await,
    );
    assert_eq!(m["exists"], json!(true));
    assert_eq!(m["value"], json!(true));
    assert_eq!(m["kind"], json!("file"));
    assert_eq!(m["mode"], json!("0600"));
    assert_eq!(m["size"], json!(12));
    assert_eq!(m["non_empty"], json!(true));
    let age = m["age_s"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&age), "age_s {age}");
    let uid = std::fs::metadata(&path).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    assert!(
        m["owner"].is_string(),
        "owner {:?} (uid {uid:?})",
        m["owner"]
    );
    let text = serde_json::to_string(&m).unwrap();
    assert!(!text.contains("s3cr3t"), "secret leaked: {text}");
}

#[tokio::test]
async fn file_counts_directory_entries_and_sees_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(dir.path().join(name), name).unwrap();
    }
    std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
    let m = observed(
        run(
            ProbeKind::File,
            json!({ "path": dir.path().to_str().unwrap() }),
        )
        .await,
    );
    assert_eq!(m["kind"], json!("dir"));
    assert_eq!(m["entries"], json!(4));
    let link = dir.path().join("link");
    let m = observed(run(ProbeKind::File, json!({ "path": link.to_str().unwrap() })).await);
    assert_eq!(m["kind"], json!("symlink"));
}

#[tokio::test]
async fn file_missing_is_an_observation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    let m = observed(run(ProbeKind::File, json!({ "path": path.to_str().unwrap() })).await);
    assert_eq!(m["exists"], json!(false));
    assert_eq!(m["value"], json!(false));
}

// ---------------------------------------------------------------- system / process

#[tokio::test]
async fn system_reports_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let m = observed(
        run(
            ProbeKind::System,
            json!({ "path": dir.path().to_str().unwrap() }),
        )
        .await,
    );
    let num = |k: &str| {
        m[k].as_f64()
            .unwrap_or_else(|| panic!("`{k}` is not a number: {:?}", m[k]))
    };
    assert!((0.0..=100.0).contains(&num("cpu_pct")));
    assert_eq!(m["value"], m["cpu_pct"]);
    assert!(num("mem_total_mb") > 0.0);
    assert!(num("mem_available_mb") > 0.0);
    assert!(num("mem_available_mb") <= num("mem_total_mb"));
    assert!((0.0..=100.0).contains(&num("mem_used_pct")));
    assert!((0.0..=100.0).contains(&num("swap_used_pct")));
    assert!(num("load1") >= 0.0);
    assert!((0.0..=100.0).contains(&num("disk_used_pct")));
    assert!(num("disk_free_mb") > 0.0);
}

#[tokio::test]
async fn system_without_cpu_answers_at_once() {
    let started = std::time::Instant::now();
    let m = observed(run(ProbeKind::System, json!({ "path": "/", "cpu": false })).await);
    assert!(
        started.elapsed() < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL,
        "{:?}",
        started.elapsed()
    );
    assert!(m["cpu_pct"].is_null());
    assert_eq!(m["value"], m["disk_used_pct"]);
    assert!(m["mem_total_mb"].as_f64().is_some_and(|v| v > 0.0));
}

#[tokio::test]
async fn system_on_a_missing_path_is_an_error() {
    let e = error(
        run(
            ProbeKind::System,
            json!({ "path": "/no/such/dir/anywhere" }),
        )
        .await,
    );
    assert!(e.contains("cannot stat filesystem"), "{e}");
}

#[tokio::test]
async fn process_finds_a_real_child_by_cmdline_and_name() {
    // An unusual duration makes the command line unique to this test.
    let mut child = std::process::Command::new("sleep")
        .arg("987.6543")
        .spawn()
        .unwrap();
    let pid = child.id();
    let m = observed(run(ProbeKind::Process, json!({ "cmdline": "sleep 987.6543" })).await);
    let by_name = observed(run(ProbeKind::Process, json!({ "name": "sleep" })).await);
    let none = observed(
        run(
            ProbeKind::Process,
            json!({ "name": "no-such-process-name-xyz" }),
        )
        .await,
    );
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(m["running"], json!(true));
    assert_eq!(m["count"], json!(1));
    assert_eq!(m["value"], json!(1));
    assert_eq!(m["pids"], json!([pid]));
    assert!(m["rss_mb"].as_f64().unwrap() > 0.0);
    assert!(m["cpu_pct"].as_f64().unwrap() >= 0.0);
    let pids = by_name["pids"].as_array().unwrap();
    assert!(pids.contains(&json!(pid)), "{pids:?}");
    assert_eq!(none["running"], json!(false));
    assert_eq!(none["count"], json!(0));
}

#[tokio::test]
async fn process_needs_exactly_one_selector() {
    let e = error(run(ProbeKind::Process, json!({})).await);
    assert!(e.contains("exactly one"), "{e}");
}

// ---------------------------------------------------------------- command

#[tokio::test]
async fn command_parses_json_and_lines() {
    let m = observed(
        run(
            ProbeKind::Command,
            json!({ "run": ["sh", "-c", "echo '{\"a\": 1}'"], "parse": "json" }),
        )
        .await,
    );
    assert_eq!(m["exit_code"], json!(0));
    assert_eq!(m["json"], json!({ "a": 1 }));
    assert_eq!(m["value"], json!({ "a": 1 }));
    assert_eq!(m["truncated"], json!(false));

    let m = observed(
        run(
            ProbeKind::Command,
            json!({ "run": ["printf", "x\\ny\\n"], "parse": "lines" }),
        )
        .await,
    );
    assert_eq!(m["lines"], json!(["x", "y"]));

    let m = observed(
        run(
            ProbeKind::Command,
            json!({ "run": ["sh", "-c", "echo $RB_X; echo oops >&2; exit 3"], "env": { "RB_X": "hi" } }),
        )
        .await,
    );
    assert_eq!(m["exit_code"], json!(3));
    assert_eq!(m["value"], json!("hi"));
    assert_eq!(m["stderr"], json!("oops\n"));
}

#[tokio::test]
async fn command_missing_program_is_an_error() {
    let e = error(
        run(
            ProbeKind::Command,
            json!({ "run": ["/no/such/program-xyz"] }),
        )
        .await,
    );
    assert!(e.starts_with("cannot start"), "{e}");
}

#[tokio::test]
async fn command_timeout_is_an_observation_with_a_reason() {
    let host = RealHost::new();
    let cx = ProbeContext::new(&host, Duration::from_millis(300), false);
    let started = std::time::Instant::now();
    let m = observed(
        ProbeKind::Command
            .run(&json!({ "run": ["sleep", "30"] }), &cx)
            .await,
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(m["reason"].as_str().unwrap().contains("timed out"), "{m:?}");
    assert_eq!(m["exit_code"], Value::Null);
}

// ---------------------------------------------------------------- systemd / journal / time

fn has_systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

#[tokio::test]
async fn systemd_is_unavailable_without_systemd() {
    if has_systemd() {
        eprintln!("skipped: this machine runs systemd");
        return;
    }
    let e = error(run(ProbeKind::Systemd, json!({ "unit": "ssh.service" })).await);
    assert!(e.starts_with("unavailable: no systemd"), "{e}");
}

#[tokio::test]
async fn journal_is_unavailable_without_systemd() {
    if has_systemd() {
        eprintln!("skipped: this machine runs systemd");
        return;
    }
    let e = error(
        run(
            ProbeKind::Journal,
            json!({ "unit": "ssh", "pattern": "error", "since": "10m" }),
        )
        .await,
    );
    assert!(e.starts_with("unavailable: no systemd"), "{e}");
}

#[tokio::test]
async fn time_sync_is_unavailable_or_a_boolean() {
    let chrony = std::process::Command::new("chronyc")
        .arg("--version")
        .output()
        .is_ok();
    let outcome = run(ProbeKind::TimeSync, json!({})).await;
    if !has_systemd() && !chrony {
        let e = error(outcome);
        assert!(e.starts_with("unavailable: "), "{e}");
        assert!(e.contains("chronyc"), "{e}");
    } else {
        match outcome {
            ProbeOutcome::Observed(m) => assert!(m["synced"].is_boolean(), "{m:?}"),
            ProbeOutcome::Error(e) => assert!(e.starts_with("unavailable: "), "{e}"),
            ProbeOutcome::Unknown(u) => panic!("unexpected unknown: {u}"),
        }
    }
}

// ---------------------------------------------------------------- tls_cert

/// A self-signed certificate valid for 30 days, or `None` (and a message) without openssl.
fn self_signed(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=runbook-test/O=Runbook"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match out {
        Ok(o) if o.status.success() => Some((cert, key)),
        Ok(o) => panic!("openssl failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            eprintln!("skipped: openssl is not available ({e})");
            None
        }
    }
}

#[tokio::test]
async fn tls_cert_reads_a_pem_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, _key)) = self_signed(dir.path()) else {
        return;
    };
    let m = observed(
        run(
            ProbeKind::TlsCert,
            json!({ "file": cert.to_str().unwrap() }),
        )
        .await,
    );
    let days = m["days_left"].as_f64().unwrap();
    assert!((29.9..=30.0).contains(&days), "days_left {days}");
    assert_eq!(m["value"], m["days_left"]);
    assert!(
        m["subject"].as_str().unwrap().contains("CN=runbook-test"),
        "{m:?}"
    );
    assert_eq!(m["subject"], m["issuer"]);
    let not_after = m["not_after"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(not_after).unwrap();
    let not_before =
        chrono::DateTime::parse_from_rfc3339(m["not_before"].as_str().unwrap()).unwrap();
    assert_eq!((parsed - not_before).num_days(), 30);
}

#[tokio::test]
async fn tls_cert_rejects_a_non_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.pem");
    std::fs::write(&path, "hello\n").unwrap();
    let e = error(
        run(
            ProbeKind::TlsCert,
            json!({ "file": path.to_str().unwrap() }),
        )
        .await,
    );
    assert!(e.contains("no `CERTIFICATE` block"), "{e}");
}

#[tokio::test]
async fn tls_cert_reads_a_live_endpoint() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed(dir.path()) else {
        return;
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    let m = observed(
        run(
            ProbeKind::TlsCert,
            json!({ "host": "localhost", "port": port }),
        )
        .await,
    );
    server.abort();
    let days = m["days_left"].as_f64().unwrap();
    assert!((29.9..=30.0).contains(&days), "{m:?}");
    assert!(m["subject"].as_str().unwrap().contains("CN=runbook-test"));

    // A closed port is an observation, not an error.
    let closed = closed_port().await;
    let m = observed(
        run(
            ProbeKind::TlsCert,
            json!({ "host": "127.0.0.1", "port": closed }),
        )
        .await,
    );
    assert_eq!(m["unreachable"], json!(true));
    assert!(
        m["reason"].as_str().unwrap().contains("cannot connect"),
        "{m:?}"
    );
}

// ---------------------------------------------------------------- config

#[tokio::test]
async fn config_reads_yaml_json_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("governance.yaml");
    std::fs::write(&yaml, "limits:\n  max_orders: 25\n  venues: [a, b]\n").unwrap();
    let json_file = dir.path().join("c.json");
    std::fs::write(&json_file, r#"{"breaker": {"state": "open"}}"#).unwrap();
    let env = dir.path().join("aurora.env");
    std::fs::write(
        &env,
        "# comment\nexport MODE=\"live trading\"\nLEVEL='3'\nPLAIN=x=y\n\n",
    )
    .unwrap();

    let m = observed(
        run(
            ProbeKind::Config,
            json!({ "path": yaml.to_str().unwrap(), "jq": ".limits.max_orders" }),
        )
        .await,
    );
    assert_eq!(m["value"], json!(25));
    assert_eq!(m["format"], json!("yaml"));
    assert_eq!(m["exists"], json!(true));
    let m = observed(
        run(
            ProbeKind::Config,
            json!({ "path": yaml.to_str().unwrap(), "jq": ".limits.venues | length" }),
        )
        .await,
    );
    assert_eq!(m["value"], json!(2));
    let m = observed(
        run(
            ProbeKind::Config,
            json!({ "path": json_file.to_str().unwrap(), "jq": ".breaker.state" }),
        )
        .await,
    );
    assert_eq!(m["value"], json!("open"));
    let m = observed(run(ProbeKind::Config, json!({ "path": env.to_str().unwrap() })).await);
    assert_eq!(m["format"], json!("env"));
    assert_eq!(
        m["value"],
        json!({ "MODE": "live trading", "LEVEL": "3", "PLAIN": "x=y" })
    );
    // An explicit format wins over the name.
    let m = observed(
        run(
            ProbeKind::Config,
            json!({ "path": json_file.to_str().unwrap(), "format": "yaml", "jq": ".breaker.state" }),
        )
        .await,
    );
    assert_eq!(m["value"], json!("open"));
}

#[tokio::test]
async fn config_missing_file_is_an_observation_and_bad_syntax_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let m = observed(
        run(
            ProbeKind::Config,
            json!({ "path": missing.to_str().unwrap() }),
        )
        .await,
    );
    assert_eq!(m["exists"], json!(false));
    assert_eq!(m["value"], Value::Null);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let e = error(run(ProbeKind::Config, json!({ "path": bad.to_str().unwrap() })).await);
    assert!(e.contains("is not valid json"), "{e}");
}

// ---------------------------------------------------------------- dns / tcp

#[tokio::test]
async fn dns_resolves_localhost() {
    let m = observed(run(ProbeKind::Dns, json!({ "name": "localhost" })).await);
    let addrs = m["addresses"].as_array().unwrap();
    assert!(
        addrs.contains(&json!("127.0.0.1")) || addrs.contains(&json!("::1")),
        "{addrs:?}"
    );
    assert_eq!(m["count"], json!(addrs.len()));
    assert_eq!(m["value"], m["count"]);
}

#[tokio::test]
async fn dns_unknown_name_is_an_observation() {
    // `.invalid` never resolves (RFC 2606).
    let m = observed(run(ProbeKind::Dns, json!({ "name": "no-such-host.invalid" })).await);
    assert!(m["reason"].is_string(), "{m:?}");
    assert!(m.get("addresses").is_none_or(|a| a == &json!([])), "{m:?}");
}

/// A port nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn tcp_open_and_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = observed(run(ProbeKind::Tcp, json!({ "host": "127.0.0.1", "port": port })).await);
    assert_eq!(m["open"], json!(true));
    assert_eq!(m["value"], json!(true));
    assert!(m["connect_ms"].as_f64().unwrap() >= 0.0);
    drop(listener);

    let closed = closed_port().await;
    // A rendered template gives the port as text.
    let m = observed(
        run(
            ProbeKind::Tcp,
            json!({ "host": "127.0.0.1", "port": closed.to_string() }),
        )
        .await,
    );
    assert_eq!(m["open"], json!(false));
    let reason = m["reason"].as_str().unwrap();
    assert!(reason.contains("refused"), "{reason}");
}

// ---------------------------------------------------------------- jsonl

#[tokio::test]
async fn jsonl_counts_damage_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("a.jsonl")).unwrap();
    // 1 valid, 2 valid with CRLF, 3 malformed, 4 empty, 5 oversized (> 64 bytes),
    // 6 invalid UTF-8, 7 valid, 8 valid without a final newline.
    f.write_all(b"{\"r\":\"risk\",\"ms\":10}\n").unwrap();
    f.write_all(b"{\"r\":\"risk\",\"ms\":20}\r\n").unwrap();
    f.write_all(b"{\"r\": oops\n").unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(format!("{{\"r\":\"{}\"}}\n", "x".repeat(200)).as_bytes())
        .unwrap();
    f.write_all(b"{\"r\":\"\xff\xfe\"}\n").unwrap();
    f.write_all(b"{\"r\":\"limit\",\"ms\":30}\n").unwrap();
    f.write_all(b"{\"r\":\"risk\",\"ms\":40}").unwrap();
    drop(f);
    std::fs::write(
        dir.path().join("b.jsonl"),
        "{\"r\":\"limit\",\"ms\":50}\n[1,\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not matched\n").unwrap();

    let pattern = dir.path().join("*.jsonl");
    let m = observed(
        run(
            ProbeKind::Jsonl,
            json!({
                "path": pattern.to_str().unwrap(),
                "max_line_bytes": 64,
                "last": 2,
                "top": ".r",
                "percentiles": ".ms",
            }),
        )
        .await,
    );
    assert_eq!(m["files"], json!(2));
    assert_eq!(m["lines"], json!(10));
    assert_eq!(m["malformed"], json!(3), "{m:?}");
    assert_eq!(m["oversized"], json!(1));
    assert_eq!(m["invalid_utf8"], json!(1));
    assert_eq!(m["value"], json!(4));
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    let first: Vec<(Value, Value)> = m["first_malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["file"].clone(), e["line"].clone()))
        .collect();
    assert_eq!(
        first,
        vec![
            (json!(a.to_str().unwrap()), json!(3)),
            (json!(a.to_str().unwrap()), json!(6)),
            (json!(b.to_str().unwrap()), json!(2)),
        ]
    );
    assert_eq!(
        m["top"],
        json!([{ "value": "risk", "count": 3 }, { "value": "limit", "count": 2 }])
    );
    assert_eq!(
        m["percentiles"],
        json!({ "count": 5, "p50": 30.0, "p90": 50.0, "p95": 50.0, "p99": 50.0 })
    );
    assert_eq!(m["last"], json!([{ "r": "limit", "ms": 50 }, "[1,"]));
    let a_len = std::fs::metadata(&a).unwrap().len();
    assert_eq!(m["file_positions"][a.to_str().unwrap()], json!(a_len));
}

#[tokio::test]
async fn jsonl_oversized_line_longer_than_the_read_buffer() {
    // A line far longer than the 64 KiB read buffer is skipped to its newline in pieces.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mut text = format!("{{\"blob\":\"{}\"}}\n", "y".repeat(300_000));
    text.push_str("{\"ok\":true}\n");
    std::fs::write(&path, text).unwrap();
    let m = observed(
        run(
            ProbeKind::Jsonl,
            json!({ "path": path.to_str().unwrap(), "max_line_bytes": 1000 }),
        )
        .await,
    );
    assert_eq!(m["lines"], json!(2));
    assert_eq!(m["oversized"], json!(1));
    assert_eq!(m["malformed"], json!(0));

    // With the default limit (1 MiB) the same line is fine.
    let m = observed(run(ProbeKind::Jsonl, json!({ "path": path.to_str().unwrap() })).await);
    assert_eq!(m["oversized"], json!(0));
    assert_eq!(m["value"], json!(0));
}

#[tokio::test]
async fn jsonl_no_matching_file_is_an_observation() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("*.jsonl");
    let m = observed(
        run(
            ProbeKind::Jsonl,
            json!({ "path": pattern.to_str().unwrap() }),
        )
        .await,
    );
    assert_eq!(m["files"], json!(0));
    assert_eq!(m["lines"], json!(0));
}

#[tokio::test]
async fn jsonl_since_skips_old_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let now = chrono::Utc::now();
    let old = (now - chrono::Duration::hours(3)).to_rfc3339();
    let new = (now - chrono::Duration::minutes(1)).to_rfc3339();
    std::fs::write(
        &path,
        format!("{{\"ts\":\"{old}\",\"ms\":1}}\n{{\"ts\":\"{new}\",\"ms\":2}}\n{{\"ms\":3}}\n"),
    )
    .unwrap();
    let m = observed(
        run(
            ProbeKind::Jsonl,
            json!({ "path": path.to_str().unwrap(), "since": "1h", "percentiles": ".ms" }),
        )
        .await,
    );
    assert_eq!(m["percentiles"]["count"], json!(2), "{m:?}");
    assert_eq!(m["percentiles"]["p50"], json!(2.0));
}

// ---------------------------------------------------------------- manual

#[tokio::test]
async fn manual_without_a_terminal_is_unknown() {
    let outcome = run(
        ProbeKind::Manual,
        json!({ "question": "is the dashboard sending the token?" }),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Unknown("no terminal to ask".into()));
}
