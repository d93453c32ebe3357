//! `runbook replay` end to end: a real run against a loopback HTTP server is recorded in a
//! temp audit database, then replayed with the runbook unchanged and edited. The replay sends
//! nothing to the server and writes nothing to the database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

/// A service that is down until `/fix` is posted; every request is counted.
struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn server() -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let fixed = Arc::new(AtomicUsize::new(0));
    let (r1, r2, r3) = (
        Arc::clone(&requests),
        Arc::clone(&requests),
        Arc::clone(&requests),
    );
    let (f1, f2) = (Arc::clone(&fixed), Arc::clone(&fixed));
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                r1.fetch_add(1, Ordering::SeqCst);
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
            "/health",
            get(move || {
                r2.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(serde_json::json!({"clients": 5, "events": 40})) }
            }),
        )
        .route(
            "/fix",
            post(move || {
                r3.fetch_add(1, Ordering::SeqCst);
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
        requests,
        _rt: rt,
    }
}

const RUNBOOK: &str = r#"runbook: web
title: Web (replay test)
severity: P3
params:
  base_url: { type: url, default: "http://127.0.0.1:1" }
  token: { type: string, default: "", secret: true }
checks:
  - id: healthz
    probe: http
    with: { url: "{{ params.base_url }}/healthz" }
    timeout: 2s
    expect: "status == 200"
  - id: clients
    probe: http
    with:
      url: "{{ params.base_url }}/health"
      jq: ".clients"
      headers: { x-token: "{{ params.token }}" }
    timeout: 2s
    expect: "value > 2"
  - id: events
    probe: http
    with: { url: "{{ params.base_url }}/health", jq: ".events" }
    timeout: 2s
    sample: { times: 2, every: 100ms }
    expect: "delta >= 0"
causes:
  - id: down
    title: Down
    when: "checks.healthz.failed"
    remedy: [fix]
    verify: [healthz]
  - id: few_clients
    title: Few clients
    when: "checks.clients.failed"
    escalate: L2
actions:
  - id: fix
    http: { url: "{{ params.base_url }}/fix", method: POST }
    limit: { max: 5, per: 1h }
escalation: { ladder: p3d }
"#;

struct Case {
    dir: tempfile::TempDir,
    server: Server,
    run_id: String,
    /// The recorded run's outcome.
    outcome: String,
}

/// The secret the recorded runs are given (`--set token=...`).
const SECRET: &str = "hunter2-s3cret";

impl Case {
    /// Record a run: the service is down, `fix` (with --yes) brings it up, verified.
    fn new() -> Case {
        let case = Case::recorded(None, &["--yes"], 0);
        assert_eq!(case.outcome, "remediated");
        case
    }

    /// Record a run of `web` with `extra` arguments against the server, or `base` instead
    /// when given; the run exits with `code`.
    fn recorded(base: Option<&str>, extra: &[&str], code: i32) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
            rb.join("policy.yaml"),
        )
        .unwrap();
        std::fs::write(rb.join("web.yaml"), RUNBOOK).unwrap();
        let mut case = Case {
            dir,
            server: server(),
            run_id: String::new(),
            outcome: String::new(),
        };
        let base = format!(
            "base_url={}",
            base.map_or_else(|| format!("http://{}", case.server.addr), str::to_owned)
        );
        let token = format!("token={SECRET}");
        let mut args = vec!["run", "web", "--set", &base, "--set", &token];
        args.extend(extra);
        let o = case.runbook(&args);
        assert_eq!(o.status.code(), Some(code), "{}", show(&o));
        let o = case.runbook(&["history", "--format", "json"]);
        let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        runs[0]["id"].as_str().unwrap().clone_into(&mut case.run_id);
        runs[0]["outcome"]
            .as_str()
            .unwrap()
            .clone_into(&mut case.outcome);
        case
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    fn runbook(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_runbook"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_DIR")
            .arg("--runbooks")
            .arg("runbooks")
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .unwrap()
    }

    /// The runbook with `from` replaced by `to`, written to `edited/web.yaml`.
    fn edited(&self, edits: &[(&str, &str)]) -> PathBuf {
        let dir = self.dir.path().join("edited");
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = RUNBOOK.to_owned();
        for (from, to) in edits {
            assert!(text.contains(from), "`{from}` is in the runbook");
            text = text.replacen(from, to, 1);
        }
        let path = dir.join("web.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Rows of every table of the audit database.
    fn row_counts(&self) -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables
            .into_iter()
            .map(|t| {
                let n = conn
                    .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
                    .unwrap();
                (t, n)
            })
            .collect()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The rows of a JSON replay that differ, as `what: recorded -> replayed`.
fn differing(o: &Output) -> Vec<String> {
    let doc: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(o)));
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["same"] == false)
        .map(|r| {
            format!(
                "{}: {} -> {}",
                r["what"].as_str().unwrap(),
                r["left"].as_str().unwrap(),
                r["right"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_unchanged_runbook_replays_with_no_difference_and_touches_nothing() {
    let case = Case::new();
    let before = case.row_counts();
    let requests = case.server.requests.load(Ordering::SeqCst);
    let o = case.runbook(&["replay", &case.run_id]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stdout(&o).contains("no difference"), "{}", show(&o));
    assert!(stdout(&o).contains("outcome remediated"), "{}", show(&o));
    let o = case.runbook(&["--format", "json", "replay", &case.run_id[..12]]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(differing(&o).is_empty(), "{}", show(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["differs"], false);
    // The decisions replayed are the recorded ones, remedy and verification included.
    assert_eq!(doc["replayed"]["actions"][0]["id"], "fix");
    assert_eq!(doc["replayed"]["actions"][0]["status"], "ok");
    assert_eq!(doc["replayed"]["verifications"][0]["status"], "ok");
    assert_eq!(doc["replayed"]["checks"][0]["status"], "failed");
    assert_eq!(doc["replayed"], doc["recorded"]);
    // Replay wrote nothing and asked the server nothing.
    assert_eq!(case.row_counts(), before);
    assert_eq!(case.server.requests.load(Ordering::SeqCst), requests);
    let o = case.runbook(&["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

#[test]
fn a_changed_threshold_is_named_with_what_it_changes() {
    let case = Case::new();
    let before = case.row_counts();
    let requests = case.server.requests.load(Ordering::SeqCst);
    let file = case.edited(&[("value > 2", "value > 10")]);
    let o = case.runbook(&["replay", &case.run_id, "--runbook", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = stdout(&o);
    let line = |what: &str| {
        out.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` row:\n{out}"))
            .to_owned()
    };
    let clients = line("check clients");
    assert!(clients.contains('✗'), "{clients}");
    assert!(clients.find(" ok") < clients.find("failed"), "{clients}");
    let few = line("cause few_clients");
    assert!(few.find("ruled_out") < few.find("matched"), "{few}");
    assert!(line("outcome").contains("problem_remains"), "{out}");
    assert!(
        !out.contains("check healthz"),
        "an unchanged decision is listed:\n{out}"
    );
    assert!(out.contains("decision(s) differ"), "{out}");
    let o = case.runbook(&[
        "--format",
        "json",
        "replay",
        &case.run_id,
        "--runbook",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(
        differing(&o),
        [
            "check clients: ok -> failed",
            "cause few_clients: ruled_out -> matched",
            "escalation few_clients: (none) -> L2",
            "escalation level: none -> L2",
            "outcome: remediated -> problem_remains",
        ]
    );
    // The same edit made in the runbook dir itself is what a plain replay decides with.
    std::fs::copy(&file, case.dir.path().join("runbooks/web.yaml")).unwrap();
    let o = case.runbook(&["replay", &case.run_id]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(case.row_counts(), before);
    assert_eq!(case.server.requests.load(Ordering::SeqCst), requests);
}

#[test]
fn a_new_check_is_unknown_and_a_new_remedy_would_run() {
    let case = Case::new();
    let file = case.edited(&[
        (
            "causes:\n",
            "  - id: disk\n    probe: file\n    with: { path: /nonexistent }\n    expect: exists\ncauses:\n",
        ),
        (
            "    escalate: L2\n",
            "    remedy: [scale]\n    verify: [clients]\n",
        ),
        ("value > 2", "value > 10"),
        (
            "escalation: {",
            "  - id: scale\n    http: { url: \"{{ params.base_url }}/scale\", method: POST }\n    limit: { max: 5, per: 1h }\nescalation: {",
        ),
    ]);
    let o = case.runbook(&[
        "--format",
        "json",
        "replay",
        &case.run_id,
        "--runbook",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let rows = differing(&o);
    for expected in [
        "check disk: (none) -> unknown",
        "action scale: (none) -> would_run",
        "outcome: remediated -> problem_remains",
    ] {
        assert!(
            rows.iter().any(|r| r == expected),
            "{expected} not in {rows:?}"
        );
    }
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes: Vec<&str> = doc["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("check `disk` is not in run")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("`scale` would run")),
        "{notes:?}"
    );
}

#[test]
fn bad_input_and_an_unreadable_database_have_their_exit_codes() {
    let case = Case::new();
    let o = case.runbook(&["replay", "no-such-run"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no run `no-such-run`"),
        "{}",
        show(&o)
    );
    let broken = case.dir.path().join("broken.yaml");
    std::fs::write(&broken, "runbook: web\ntitle: [\n").unwrap();
    let o = case.runbook(&[
        "replay",
        &case.run_id,
        "--runbook",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let other = case.dir.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .current_dir(case.dir.path())
        .args(["--runbooks", "runbooks", "--db"])
        .arg(other.join("missing.db"))
        .args(["replay", &case.run_id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        !other.join("missing.db").exists(),
        "replay created a database"
    );
    let garbage = other.join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .current_dir(case.dir.path())
        .args(["--runbooks", "runbooks", "--db"])
        .arg(&garbage)
        .args(["replay", &case.run_id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
}

impl Case {
    /// `replay RUN FLAG` (`--emit-scenario[=NAME]`): must exit 0; the scenario is written to
    /// `runbooks/tests/web.yaml` and returned.
    fn emit(&self, flag: &str) -> String {
        let o = self.runbook(&["replay", &self.run_id, flag]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let yaml = stdout(&o);
        let tests = self.dir.path().join("runbooks/tests");
        std::fs::create_dir_all(&tests).unwrap();
        std::fs::write(tests.join("web.yaml"), &yaml).unwrap();
        yaml
    }

    /// `runbook test` on the runbook dir's scenarios.
    fn test(&self) -> Output {
        self.runbook(&["test", "runbooks"])
    }
}

/// The text of `yaml` from the line `from` to the line `to`.
fn section<'a>(yaml: &'a str, from: &str, to: &str) -> &'a str {
    let start = yaml
        .find(&format!("\n{from}\n"))
        .unwrap_or_else(|| panic!("no `{from}` in\n{yaml}"));
    let len = yaml[start + 1..]
        .find(&format!("\n{to}"))
        .unwrap_or_else(|| panic!("no `{to}` after `{from}` in\n{yaml}"));
    &yaml[start + 1..start + 1 + len]
}

/// The first line of `yaml` that starts (after indentation) with `key:`.
fn line_of<'a>(yaml: &'a str, key: &str) -> &'a str {
    yaml.lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no `{key}:` in\n{yaml}"))
}

#[test]
fn a_recorded_run_becomes_a_scenario_of_what_it_saw_and_decided() {
    let case = Case::new();
    let yaml = case.emit("--emit-scenario");
    assert!(
        yaml.starts_with(&format!(
            "# Made by `runbook replay {} --emit-scenario`",
            case.run_id
        )),
        "{yaml}"
    );
    assert!(
        yaml.contains("\nrunbook: web\nscenarios:\n  - name: "),
        "{yaml}"
    );
    // The name holds `: `, so it is quoted.
    assert!(
        yaml.contains(&format!("  - name: \"run {}: remediated\"\n", case.run_id)),
        "{yaml}"
    );
    // The probe's own fields; nothing the engine computes, no null.
    let checks = section(&yaml, "    checks:", "    after:");
    let healthz = section(checks, "      healthz:", "      clients:");
    assert!(healthz.contains("status: 503"), "{healthz}");
    assert!(healthz.contains("body: down"), "{healthz}");
    for computed in [
        "ok:",
        "state:",
        "duration_ms",
        "delta",
        "rate_per_s",
        "null",
        "reason",
    ] {
        assert!(!checks.contains(computed), "{computed} in {checks}");
    }
    assert!(
        line_of(checks, "values").ends_with("values: [40, 40]"),
        "{checks}"
    );
    assert!(line_of(checks, "value").ends_with("value: 5"), "{checks}");
    assert!(yaml.contains("\n    actions: { fix: ok }\n"), "{yaml}");
    assert!(yaml.contains("\n    yes: true\n"), "{yaml}");
    assert!(
        line_of(&yaml, "outcome").ends_with("outcome: remediated"),
        "{yaml}"
    );
    assert!(
        line_of(&yaml, "matched").ends_with("matched: [down]"),
        "{yaml}"
    );
    assert!(
        line_of(&yaml, "ruled_out").ends_with("ruled_out: [few_clients]"),
        "{yaml}"
    );
    assert!(line_of(&yaml, "verify").contains("healthz: [ok]"), "{yaml}");
    assert!(
        line_of(&yaml, "escalation").ends_with("escalation: none"),
        "{yaml}"
    );
    // After the remedy, healthz answered 200: the verification's own result.
    let after = section(&yaml, "    after:", "    actions:");
    assert!(after.contains("status: 200"), "{after}");
    assert!(!after.contains("status: 503"), "{after}");
    // The secret is neither in the file nor set; a comment says it is left out.
    assert!(!yaml.contains(SECRET), "{yaml}");
    assert!(
        !yaml.lines().any(|l| l.trim_start().starts_with("token:")),
        "{yaml}"
    );
    assert!(
        yaml.lines()
            .any(|l| l.trim_start().starts_with("# secret param(s) left out")
                && l.contains("`token`")),
        "{yaml}"
    );
    // The base URL differs from the default: it is set.
    assert!(
        yaml.contains(&format!(
            "\n    set: {{ base_url: \"http://{}\" }}\n",
            case.server.addr
        )),
        "{yaml}"
    );
}

#[test]
fn a_recorded_run_becomes_a_scenario_that_passes_and_fails_when_a_decision_changes() {
    let case = Case::new();
    let before = case.row_counts();
    let requests = case.server.requests.load(Ordering::SeqCst);
    let yaml = case.emit("--emit-scenario");
    let o = case.test();
    assert_eq!(o.status.code(), Some(0), "{}\n{yaml}", show(&o));
    assert!(
        stdout(&o).contains("1 scenario(s) in 1 file(s): 1 passed, 0 failed"),
        "{}",
        show(&o)
    );
    // Emitting read nothing but the database, and wrote nothing.
    assert_eq!(case.row_counts(), before);
    assert_eq!(case.server.requests.load(Ordering::SeqCst), requests);

    // The edit the replay test makes: the scenario now fails, naming what changed.
    let edited = case.edited(&[("value > 2", "value > 10")]);
    std::fs::copy(&edited, case.dir.path().join("runbooks/web.yaml")).unwrap();
    let o = case.test();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = stdout(&o);
    assert!(out.contains("FAIL    run "), "{out}");
    let differ: Vec<&str> = out
        .lines()
        .filter(|l| l.contains('✗'))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    for what in ["outcome", "causes", "check", "escalation"] {
        assert!(
            differ.contains(&what),
            "`{what}` not among {differ:?}:\n{out}"
        );
    }
    let clients = out
        .lines()
        .find(|l| l.contains("check clients"))
        .unwrap_or_else(|| panic!("no `check clients` row:\n{out}"));
    assert!(
        clients.contains('✗') && clients.contains("failed"),
        "{clients}"
    );
    // Emitting against the edited runbook says the scenario no longer passes.
    let o = case.runbook(&["replay", &case.run_id, "--emit-scenario"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not pass"),
        "{}",
        show(&o)
    );
}

#[test]
fn a_named_scenario_of_an_unreachable_service_and_a_failed_remedy_round_trips() {
    // A loopback port nobody listens on: every check is unreachable, the remedy fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let case = Case::recorded(Some(&format!("http://{closed}")), &["--yes"], 1);
    assert_eq!(case.outcome, "problem_remains");
    let name = "web: 503s #1 \"down\"";
    let yaml = case.emit(&format!("--emit-scenario={name}"));
    assert!(
        yaml.contains("  - name: \"web: 503s #1 \\\"down\\\"\"\n"),
        "{yaml}"
    );
    for check in ["healthz", "clients", "events"] {
        let line = line_of(&yaml, check);
        assert!(
            line.contains(&format!("{check}: {{ unreachable: ")),
            "{line}"
        );
    }
    assert!(yaml.contains("\n    actions: { fix: { failed: "), "{yaml}");
    assert!(
        line_of(&yaml, "matched").ends_with("matched: [down, few_clients]"),
        "{yaml}"
    );
    assert!(
        line_of(&yaml, "escalation").ends_with("escalation: L2"),
        "{yaml}"
    );
    let o = case.test();
    assert_eq!(o.status.code(), Some(0), "{}\n{yaml}", show(&o));
    assert!(
        stdout(&o).contains(&format!("ok      {name}")),
        "{}",
        show(&o)
    );
    assert!(stdout(&o).contains("1 passed, 0 failed"), "{}", show(&o));
}

#[test]
fn a_run_without_consent_round_trips_with_its_remedy_waiting() {
    let case = Case::recorded(None, &[], 1);
    assert_eq!(case.outcome, "problem_remains");
    let yaml = case.emit("--emit-scenario");
    assert!(
        !yaml.lines().any(|l| l.trim_start().starts_with("yes:")),
        "{yaml}"
    );
    let expect = &yaml[yaml.find("\n    expect:\n").expect("an `expect:`")..];
    assert!(
        line_of(expect, "actions").ends_with("actions: { fix: needs_approval }"),
        "{yaml}"
    );
    assert!(line_of(expect, "verify").ends_with("verify: {}"), "{yaml}");
    let o = case.test();
    assert_eq!(o.status.code(), Some(0), "{}\n{yaml}", show(&o));
    // The same scenario with consent given is a different run: the remedy runs.
    std::fs::write(
        case.dir.path().join("runbooks/tests/web.yaml"),
        yaml.replace("    expect:\n", "    yes: true\n    expect:\n"),
    )
    .unwrap();
    let o = case.test();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stdout(&o).contains("action fix"), "{}", show(&o));
}

#[test]
fn emitting_a_scenario_of_no_run_or_as_json_is_refused() {
    let case = Case::new();
    let o = case.runbook(&["replay", "no-such-run", "--emit-scenario"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    let o = case.runbook(&[
        "--format",
        "json",
        "replay",
        &case.run_id,
        "--emit-scenario",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    // A dry run decides nothing a scenario could expect.
    let base = format!("base_url=http://{}", case.server.addr);
    let o = case.runbook(&["run", "web", "--dry-run", "--set", &base]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = case.runbook(&["history", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let dry = runs[0]["id"].as_str().unwrap();
    assert_ne!(dry, case.run_id);
    let o = case.runbook(&["replay", dry, "--emit-scenario"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("was a dry run"),
        "{}",
        show(&o)
    );
}
