//! `runbook run` end to end: a real loopback HTTP server, a runbook in a temp dir, the real
//! binary, a real `SQLite` audit file. The server is "down" until the runbook's remedy POSTs
//! `/fix`, so the outcome depends on which gates let the remedy through.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use insta_cmd::get_cargo_bin;
use runbook::exec::Ledger;

struct Server {
    addr: SocketAddr,
    fixes: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn server() -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fixes = Arc::new(AtomicUsize::new(0));
    let (f1, f2) = (Arc::clone(&fixes), Arc::clone(&fixes));
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let up = f1.load(Ordering::SeqCst) > 0;
                async move {
                    if up {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "down")
                    }
                }
            }),
        )
        .route(
            "/fix",
            post(move || {
                f2.fetch_add(1, Ordering::SeqCst);
                async { "fixed" }
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        fixes,
        _rt: rt,
    }
}

const RUNBOOK: &str = r#"runbook: e2e
title: End to end
severity: P1
params:
  base_url: { type: url, default: "http://127.0.0.1:1" }
  token_file: { type: path, default: /nonexistent, secret: true }
checks:
  - id: healthz
    probe: http
    with: { url: "{{ params.base_url }}/healthz" }
    timeout: 2s
    expect: "status == 200"
  - id: token_present
    probe: file
    with: { path: "{{ params.token_file }}", secret: true }
    expect: "exists"
causes:
  - id: down
    title: Service down
    when: checks.healthz.failed
    remedy: [fix, tell]
    verify: [healthz]
actions:
  - id: fix
    http: { url: "{{ params.base_url }}/fix", method: POST }
    limit: { max: 5, per: 1h }
  - id: tell
    notify: { channel: stdout, message: "fixed {{ params.base_url }} using {{ params.token_file }}" }
escalation: { ladder: p3d }
"#;

struct Case {
    dir: tempfile::TempDir,
    server: Server,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
            rb.join("policy.yaml"),
        )
        .unwrap();
        std::fs::write(rb.join("e2e.yaml"), RUNBOOK).unwrap();
        let token = dir.path().join("tok-SECRET-4242");
        std::fs::write(&token, "hunter2-token-content").unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        Case {
            dir,
            server: server(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    fn run(&self, extra: &[&str]) -> (i32, String) {
        let token = self.dir.path().join("tok-SECRET-4242");
        let out = Command::new(get_cargo_bin("runbook"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .args(["--runbooks", "runbooks", "--db"])
            .arg(self.db())
            .args(["run", "e2e", "--set"])
            .arg(format!("base_url=http://{}", self.server.addr))
            .arg("--set")
            .arg(format!("token_file={}", token.display()))
            .args(extra)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

#[test]
fn without_yes_the_remedy_waits_for_approval() {
    let case = Case::new();
    let (code, out) = case.run(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("needs approval"), "{out}");
    assert_eq!(
        case.server.fixes.load(Ordering::SeqCst),
        0,
        "the remedy ran without --yes"
    );
}

#[test]
fn dry_run_executes_no_action_even_with_yes() {
    let case = Case::new();
    let (code, out) = case.run(&["--dry-run", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(
        case.server.fixes.load(Ordering::SeqCst),
        0,
        "a dry run called /fix"
    );
}

#[test]
fn with_yes_the_cause_is_fixed_and_verified() {
    let case = Case::new();
    let (code, out) = case.run(&["--yes", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(case.server.fixes.load(Ordering::SeqCst), 1);
    let doc: serde_json::Value = serde_json::from_str(&out[..=out.rfind('}').unwrap()]).unwrap();
    assert_eq!(doc["outcome"], "remediated");
    let steps = doc["steps"].as_array().unwrap();
    let find = |kind: &str, id: &str| {
        steps
            .iter()
            .find(|s| s["kind"] == kind && s["id"] == id)
            .unwrap_or_else(|| panic!("no {kind} {id}: {out}"))
    };
    assert_eq!(find("check", "healthz")["status"], "failed");
    assert_eq!(find("cause", "down")["status"], "matched");
    assert_eq!(find("action", "fix")["status"], "ok");
    assert_eq!(find("verify", "healthz")["status"], "ok");
    assert_eq!(find("check", "token_present")["status"], "ok");
}

#[test]
fn secrets_never_reach_output_or_the_audit_db() {
    let case = Case::new();
    let (_, human) = case.run(&["--yes"]);
    let (_, json) = case.run(&["--format", "json"]);
    for out in [&human, &json] {
        assert!(
            !out.contains("SECRET-4242"),
            "secret param value in output:\n{out}"
        );
        assert!(
            !out.contains("hunter2"),
            "secret file content in output:\n{out}"
        );
        assert!(out.contains("***"), "{out}");
    }
    for ext in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{ext}", case.db().display()));
        if let Ok(bytes) = std::fs::read(&path) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(!hay.contains("SECRET-4242"), "secret in {}", path.display());
            assert!(
                !hay.contains("hunter2"),
                "secret file content in {}",
                path.display()
            );
        }
    }
}

#[test]
fn an_unwritable_audit_trail_is_an_engine_fault_and_nothing_runs() {
    let case = Case::new();
    let out = Command::new(get_cargo_bin("runbook"))
        .current_dir(case.dir.path())
        .args([
            "--runbooks",
            "runbooks",
            "--db",
            "/proc/runbook-cannot-write/audit.db",
            "run",
            "e2e",
            "--yes",
            "--set",
        ])
        .arg(format!("base_url=http://{}", case.server.addr))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(case.server.fixes.load(Ordering::SeqCst), 0);
}

#[test]
fn the_audit_trail_shows_every_step_and_verifies() {
    let case = Case::new();
    let (code, out) = case.run(&["--yes"]);
    assert_eq!(code, 0, "{out}");
    let cli = |args: &[&str]| {
        let out = Command::new(get_cargo_bin("runbook"))
            .arg("--db")
            .arg(case.db())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, history) = cli(&["history", "--format", "json"]);
    assert_eq!(code, Some(0));
    let runs: serde_json::Value = serde_json::from_str(&history).unwrap();
    let run_id = runs[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{history}"))
        .to_owned();
    let (code, shown) = cli(&["show", &run_id, "--format", "json"]);
    assert_eq!(code, Some(0), "{shown}");
    let doc: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let steps: Vec<(String, String, String)> = doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{shown}"))
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (f("kind"), f("step_id"), f("status"))
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("check", "healthz", "failed"),
        ("check", "token_present", "ok"),
        ("cause", "down", "matched"),
        ("action", "fix", "ok"),
        ("action", "tell", "ok"),
        ("verify", "healthz", "ok"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(steps, expected, "{shown}");
    assert_eq!(doc["run"]["outcome"], "remediated", "{shown}");
    let (code, verified) = cli(&["audit", "verify"]);
    assert_eq!(code, Some(0), "{verified}");
    assert!(verified.starts_with("ok:"), "{verified}");
}

#[test]
fn a_second_concurrent_run_of_the_same_runbook_is_refused() {
    let case = Case::new();
    // Hold the lock as a live process would: the store takes it for this test's own pid.
    let store = runbook::audit::AuditStore::open(&case.db()).unwrap();
    let info = runbook::exec::RunInfo {
        runbook: "e2e".into(),
        runbook_sha256: String::new(),
        trigger: "test".into(),
        params: serde_json::Value::Null,
        host: "test".into(),
        user: "test".into(),
        mode: "real".into(),
        origin: None,
    };
    let holder = store.begin_run(&info).unwrap();
    assert!(store.lock("e2e", &holder).unwrap());
    let started = std::time::Instant::now();
    let (code, out) = case.run(&["--yes"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("in progress"), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(case.server.fixes.load(Ordering::SeqCst), 0);
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one corpus, one runbook, one assertion each"
)]
fn templated_values_arrive_as_single_argv_elements_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("runbooks");
    std::fs::create_dir(&rb).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
        rb.join("policy.yaml"),
    )
    .unwrap();
    let script = dir.path().join("argv.py");
    std::fs::write(
        &script,
        "import json, sys\nopen(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\n",
    )
    .unwrap();
    std::fs::write(
        rb.join("argv.yaml"),
        r#"runbook: argv
title: Argv
severity: P1
params:
  out: { type: path, default: /nonexistent }
  script: { type: path, default: /nonexistent }
  value: { type: string, default: "" }
checks:
  - id: always_fails
    probe: file
    with: { path: /nonexistent/runbook-test }
    expect: "exists"
causes:
  - id: c
    title: C
    when: checks.always_fails.failed
    remedy: [echo_argv]
    verify: [always_fails]
actions:
  - id: echo_argv
    run: [python3, "{{ params.script }}", "{{ params.out }}", "{{ params.value }}", "--", "{{ params.value }}x"]
    limit: { max: 100, per: 1h }
escalation: { ladder: p3d }
"#,
    )
    .unwrap();
    let touched = dir.path().join("pwned");
    let hostile = [
        format!("; touch {}", touched.display()),
        format!("$(touch {})", touched.display()),
        format!("`touch {}`", touched.display()),
        "'\"quotes\"'".to_owned(),
        "--help".to_owned(),
        "-rf /".to_owned(),
        "\u{202e}rtl text \u{5d0}\u{5d1}".to_owned(),
        "*".to_owned(),
        "a".repeat(64 * 1024),
    ];
    for (i, value) in hostile.iter().enumerate() {
        let out_file = dir.path().join(format!("argv{i}.json"));
        let out = Command::new(get_cargo_bin("runbook"))
            .current_dir(dir.path())
            .args(["--runbooks", "runbooks", "--db"])
            .arg(dir.path().join("audit.db"))
            .args(["run", "argv", "--yes", "--set"])
            .arg(format!("script={}", script.display()))
            .arg("--set")
            .arg(format!("out={}", out_file.display()))
            .arg("--set")
            .arg(format!("value={value}"))
            .output()
            .unwrap();
        let got: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap_or_else(|_| {
                panic!(
                    "action did not run for {value:.40}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            }))
            .unwrap();
        assert_eq!(
            got,
            vec![value.clone(), "--".to_owned(), format!("{value}x")]
        );
        assert!(
            !touched.exists(),
            "a value was interpreted by a shell: {value}"
        );
    }
    // Newlines and NUL never reach a process.
    let out = Command::new(get_cargo_bin("runbook"))
        .current_dir(dir.path())
        .args(["--runbooks", "runbooks", "--db"])
        .arg(dir.path().join("audit.db"))
        .args(["run", "argv", "--yes", "--set"])
        .arg(format!("script={}", script.display()))
        .arg("--set")
        .arg(format!("out={}", dir.path().join("nl.json").display()))
        .arg("--set")
        .arg("value=two\nlines")
        .output()
        .unwrap();
    assert!(
        !dir.path().join("nl.json").exists(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The audit rows of a run, as `runbook audit export` writes them, with what changes from run
/// to run (ids, times, hashes, pids, the server's port, the temp dir) replaced by a marker.
/// The checks of the first wave run concurrently, so their rows are sorted by id.
fn audit_rows(case: &Case) -> serde_json::Value {
    let out = Command::new(get_cargo_bin("runbook"))
        .arg("--db")
        .arg(case.db())
        .args(["audit", "export"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let addr = case.server.addr.to_string();
    let tmp = case.dir.path().display().to_string();
    let mut rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| {
            let l = l.replace(&addr, "127.0.0.1:[port]").replace(&tmp, "[tmp]");
            let mut v: serde_json::Value = serde_json::from_str(&l).unwrap();
            redact_volatile(&mut v);
            v
        })
        .collect();
    let first_wave = rows
        .iter()
        .skip(1)
        .take_while(|r| r["kind"] == "check")
        .count();
    rows[1..=first_wave].sort_by_key(|r| r["step_id"].as_str().unwrap_or_default().to_owned());
    serde_json::Value::Array(rows)
}

fn redact_volatile(v: &mut serde_json::Value) {
    const VOLATILE: &[&str] = &[
        "id",
        "run_id",
        "seq",
        "chain_seq",
        "hash",
        "prev_hash",
        "started_at",
        "finished_at",
        "duration_ms",
        "pid",
        "pid_start",
        "host",
        "user",
        "date",
        "age_s",
        "mtime",
        "owner",
        "group",
        "uid",
        "gid",
        "runbook_sha256",
    ];
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if VOLATILE.contains(&k.as_str()) && !x.is_null() {
                    *x = serde_json::Value::from("[redacted]");
                } else {
                    redact_volatile(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_volatile),
        _ => {}
    }
}

#[test]
fn audit_rows_of_a_remediated_run() {
    let case = Case::new();
    let (code, out) = case.run(&["--yes"]);
    assert_eq!(code, 0, "{out}");
    insta::assert_json_snapshot!(audit_rows(&case));
}

#[test]
fn audit_rows_of_a_run_waiting_for_approval() {
    let case = Case::new();
    let (code, out) = case.run(&[]);
    assert_eq!(code, 1, "{out}");
    insta::assert_json_snapshot!(audit_rows(&case));
}

#[test]
fn on_a_terminal_the_run_shows_live_progress_and_the_same_step_lines() {
    let case = Case::new();
    let token = case.dir.path().join("tok-SECRET-4242");
    let cmd = format!(
        "{} --runbooks runbooks --db {} run e2e --set base_url=http://{} --set token_file={}",
        get_cargo_bin("runbook").display(),
        case.db().display(),
        case.server.addr,
        token.display()
    );
    // `script` gives the run a pseudo-terminal as stdin, stdout and stderr.
    let out = Command::new("script")
        .current_dir(case.dir.path())
        .env("NO_COLOR", "1")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("`script` (util-linux) runs the test on a pseudo-terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The status line is drawn and erased (ANSI erase-line), ...
    assert!(text.contains("\u{1b}[2K"), "no live status line:\n{text:?}");
    // ... and the finished steps are the same lines as in plain mode.
    for line in [
        "check    healthz",
        "check    token_present",
        "cause    down",
        "outcome: problem remains (exit 1)",
    ] {
        assert!(text.contains(line), "missing `{line}`:\n{text}");
    }
    // NO_COLOR: no colour codes.
    assert!(
        !text.contains("\u{1b}[3"),
        "colour despite NO_COLOR:\n{text:?}"
    );
    // Without a terminal: no status line at all.
    let (_, plain) = case.run(&[]);
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
}

/// Step rows are held back only while the run computes: the rows of a wave of checks are in
/// the audit file before the run waits on the next wave's probe.
#[test]
fn the_rows_of_a_wave_are_written_before_the_next_wave_waits_on_its_probe() {
    use std::io::{Read, Write};
    // A loopback server that answers after 3 s: the second wave's probe waits on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            std::thread::sleep(std::time::Duration::from_secs(3));
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("runbooks");
    std::fs::create_dir(&rb).unwrap();
    std::fs::write(
        rb.join("waves.yaml"),
        format!(
            r#"runbook: waves
title: Two waves
severity: P3
checks:
  - id: first
    probe: file
    with: {{ path: "{}" }}
    expect: "exists"
  - id: second
    probe: http
    after: [first]
    with: {{ url: "http://{addr}/slow" }}
    timeout: 10s
    expect: "status == 200"
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let db = dir.path().join("audit.db");
    let mut child = Command::new(get_cargo_bin("runbook"))
        .current_dir(dir.path())
        .args(["--runbooks", "runbooks", "--db"])
        .arg(&db)
        .args(["run", "waves"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = None;
    for _ in 0..250 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if let Ok(conn) = rusqlite::Connection::open(&db) {
            let rows: Vec<(String, Option<String>)> = conn
                .prepare(
                    "SELECT s.step_id, r.finished_at FROM steps s JOIN runs r ON r.id = s.run_id \
                     ORDER BY s.seq",
                )
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default();
            if !rows.is_empty() {
                seen = Some(rows);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = child.wait().unwrap();
    assert_eq!(
        seen,
        Some(vec![("first".to_owned(), None)]),
        "while the second wave waited, the first wave's row was written and the run not ended"
    );
    assert_eq!(status.code(), Some(0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT step_id FROM steps ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, ["first", "second"]);
}
