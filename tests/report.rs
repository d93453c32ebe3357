//! `runbook report` end to end: runs recorded by the real binary against a loopback HTTP
//! server (down until the runbook's remedy POSTs `/fix`, when that fixes it; escalation
//! webhooks land on `/hook`), a real audit DB, then the report of a run or an incident as
//! Markdown (snapshots, times, ids, ports and paths masked) and HTML (one self-contained file).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use insta_cmd::get_cargo_bin;
use serde_json::{Value, json};

/// The bearer token in the secret file: it must never appear in a report.
const TOKEN_CONTENT: &str = "hunter2-token-content";
/// The secret file's name: a secret param's value, never shown either.
const TOKEN_NAME: &str = "tok-SECRET-4242";

/// The longest any wait here lasts.
const WAIT: Duration = Duration::from_secs(30);

struct Server {
    addr: SocketAddr,
    fixes: Arc<AtomicUsize>,
    hooks: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

/// `/healthz` answers 503 (echoing the bearer token it was sent, so a probe that stored the
/// answer as it came would leak it) until `/fix` is posted, and then 200 only if `fixable`.
fn server(fixable: bool) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fixes = Arc::new(AtomicUsize::new(0));
    let hooks = Arc::new(AtomicUsize::new(0));
    let up = Arc::new(AtomicBool::new(false));
    let (f1, f2, h) = (Arc::clone(&up), Arc::clone(&fixes), Arc::clone(&hooks));
    let app = Router::new()
        .route(
            "/healthz",
            get(move |headers: HeaderMap| {
                let up = f1.load(Ordering::SeqCst);
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                async move {
                    if up {
                        (StatusCode::OK, "ok".to_owned())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("down; you sent {auth}"),
                        )
                    }
                }
            }),
        )
        .route(
            "/fix",
            post(move || {
                f2.fetch_add(1, Ordering::SeqCst);
                if fixable {
                    up.store(true, Ordering::SeqCst);
                }
                async { "fixed" }
            }),
        )
        .route(
            "/hook",
            post(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
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
        hooks,
        _rt: rt,
    }
}

const RUNBOOK: &str = r#"runbook: e2e
title: End to end
service: aurora-live-feed
severity: P1
triggers:
  alerts: [E2eDown]
params:
  base_url: { type: url, default: "http://127.0.0.1:1", from: alert.labels.base_url, hosts: [127.0.0.1] }
  token_file: { type: path, default: /nonexistent, secret: true }
checks:
  - id: healthz
    probe: http
    with: { url: "{{ params.base_url }}/healthz", token_file: "{{ params.token_file }}" }
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
    guidance: Restart it; if it keeps failing, read its log.
    remedy: [fix, tell]
    verify: [healthz]
  - id: no_token
    title: Token missing
    when: checks.token_present.failed
    guidance: Put the token file back.
    escalate: L1
actions:
  - id: fix
    http: { url: "{{ params.base_url }}/fix", method: POST }
    limit: { max: 5, per: 1h }
  - id: tell
    notify: { channel: stdout, message: "fixed {{ params.base_url }} using {{ params.token_file }}" }
escalation: { ladder: p3d }
"#;

/// A temp dir with `runbooks/` (the seed policy, its webhook channels pointed at the test
/// server's `/hook`, and the `e2e` runbook), a secret token file and the audit DB.
struct Case {
    dir: tempfile::TempDir,
    server: Server,
}

impl Case {
    fn new(fixable: bool) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let server = server(fixable);
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        let policy = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
        )
        .unwrap();
        let hook = format!("http://{}/hook", server.addr);
        let policy = policy
            .replace("http://127.0.0.1:9097/hooks/runbook", &hook)
            .replace("http://127.0.0.1:9096/services/aurora-incidents", &hook);
        assert!(policy.contains(&hook), "the seed policy's channels moved");
        std::fs::write(rb.join("policy.yaml"), policy).unwrap();
        std::fs::write(rb.join("e2e.yaml"), RUNBOOK).unwrap();
        let token = dir.path().join(TOKEN_NAME);
        std::fs::write(&token, format!("{TOKEN_CONTENT}\n")).unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        Case { dir, server }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary on this case's runbooks and database; stdin is not a terminal.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(get_cargo_bin("runbook"));
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_DB")
            .stdin(Stdio::null())
            .args(["--runbooks", "runbooks", "--db"])
            .arg(self.path("audit.db"))
            .args(args);
        cmd
    }

    /// `runbook run e2e` against the server with the secret token file; the exit code.
    fn run(&self, extra: &[&str]) -> i32 {
        let base = format!("base_url=http://{}", self.server.addr);
        let token = format!("token_file={}", self.path(TOKEN_NAME).display());
        let mut args = vec!["run", "e2e", "--set", &base, "--set", &token];
        args.extend_from_slice(extra);
        let out = self.cmd(&args).output().unwrap();
        out.status.code().unwrap_or(-1)
    }

    /// `runbook report ARGS`: exit code, stdout, stderr.
    fn report(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["report"];
        all.extend_from_slice(args);
        let out: Output = self.cmd(&all).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A report that must succeed: its stdout.
    fn report_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.report(args);
        assert_eq!(code, 0, "report {args:?} failed:\n{err}");
        assert!(err.is_empty(), "report {args:?} wrote to stderr:\n{err}");
        out
    }

    /// Every run, oldest first, as `history --format json` lists them.
    fn runs(&self) -> Vec<Value> {
        let out = self.cmd(&["history", "--format", "json"]).output().unwrap();
        let mut runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        runs.reverse();
        runs
    }

    /// The only run's id.
    fn only_run(&self) -> String {
        let runs = self.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0]["id"].as_str().unwrap().to_owned()
    }

    /// `runbook show RUN --format json`.
    fn show(&self, run: &str) -> Value {
        let out = self
            .cmd(&["show", run, "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `text` with what differs between machines and runs replaced: the temp dir, run ids
    /// (numbered in order), user and host.
    fn masked(&self, text: &str) -> String {
        let mut text = text.replace(&self.dir.path().display().to_string(), "[DIR]");
        for (i, r) in self.runs().iter().enumerate() {
            let id = r["id"].as_str().unwrap();
            text = text.replace(id, &format!("[RUN{}]", i + 1));
            let who = format!(
                "{}@{}",
                r["user"].as_str().unwrap(),
                r["host"].as_str().unwrap()
            );
            text = text.replace(&who, "[USER]@[HOST]");
        }
        text
    }
}

/// A Markdown report's snapshot, with times, offsets, spans, ports and hashes masked.
macro_rules! assert_report_snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "[TIME]"),
                (r"[+-]\d+(:\d\d)?:\d\d\.\d{3}", "[REL]"),
                (r"\b\d+(\.\d+)? (ms|s)\b|\b\d+ min \d\d s\b|\b\d+ h \d\d min\b|\b\d+ d \d+ h\b", "[SPAN]"),
                (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
                (r"\b[0-9a-f]{64}\b", "[SHA256]"),
            ],
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

/// Nothing secret: neither the token file's content nor its name (a secret param's value).
fn assert_no_secret(text: &str) {
    assert!(!text.contains("hunter2"), "the token leaked:\n{text}");
    assert!(
        !text.contains("SECRET-4242"),
        "the secret path leaked:\n{text}"
    );
}

/// One HTML file that fetches nothing: no script, style sheet, import, image or frame, and
/// every URL in it loopback data of the run (the server probed, the hook notified).
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..80]);
    assert!(html.trim_end().ends_with("</html>"));
    let lower = html.to_lowercase();
    for external in [
        "<script", "<link", "@import", "url(", "<img", "<iframe", "src=",
    ] {
        assert!(!lower.contains(external), "`{external}` in the HTML");
    }
    let decoded = html.replace("&#x2f;", "/");
    for (i, _) in decoded.match_indices("://") {
        assert!(
            decoded[i..].starts_with("://127.0.0.1:"),
            "a non-loopback URL: {}",
            &decoded[i.saturating_sub(5)..(i + 40).min(decoded.len())]
        );
    }
}

#[test]
fn a_remediated_run() {
    let case = Case::new(true);
    assert_eq!(case.run(&["--yes"]), 0);
    assert_eq!(case.server.fixes.load(Ordering::SeqCst), 1);
    let run = case.only_run();
    let md = case.report_ok(&[&run]);
    assert_no_secret(&md);
    // The sections of policy.yaml, in order.
    let at = |h: &str| md.find(h).unwrap_or_else(|| panic!("no {h}:\n{md}"));
    assert!(at("## Timeline") < at("## Impact"));
    assert!(at("## Impact") < at("## Root cause"));
    assert!(at("## Root cause") < at("## Actions"));
    assert!(at("## Actions") < at("## Lessons"));
    assert!(md.contains("| Time to resolve |"), "{md}");
    assert!(md.contains("| 4h | met |"), "{md}");
    // A unique prefix names the run as well as its id.
    let generated = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with("| Generated |"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(generated(&case.report_ok(&[&run[..20]])), generated(&md));
    assert_report_snapshot!("remediated_run", case.masked(&md));
}

#[test]
fn an_unresolved_escalated_run() {
    let case = Case::new(false);
    assert_eq!(case.run(&["--yes"]), 1);
    assert_eq!(case.server.fixes.load(Ordering::SeqCst), 1);
    // L1 of p3d notifies stdout and `ops`, the test server's webhook.
    assert_eq!(case.server.hooks.load(Ordering::SeqCst), 1);
    let run = case.only_run();
    let md = case.report_ok(&[&run]);
    assert_no_secret(&md);
    assert!(md.contains("| incident opened | `#1` | open |"), "{md}");
    assert!(md.contains("| escalation level | `L1` | fired |"), "{md}");
    assert!(md.contains("| notification sent | `ops` | ok |"), "{md}");
    assert!(md.contains("**the problem is not resolved**"), "{md}");
    assert_report_snapshot!("unresolved_escalated_run", case.masked(&md));
}

#[test]
fn a_run_whose_remedies_wait_for_approval() {
    let case = Case::new(true);
    assert_eq!(case.run(&[]), 1);
    assert_eq!(case.server.fixes.load(Ordering::SeqCst), 0);
    let run = case.only_run();
    let md = case.report_ok(&[&run]);
    assert_no_secret(&md);
    assert!(md.contains("**Skipped: waiting for approval**"), "{md}");
    assert!(md.contains("- `fix` (http): needs_approval"), "{md}");
    assert!(!md.contains("**Taken**"), "{md}");
    assert_report_snapshot!("approval_skipped_run", case.masked(&md));
}

#[test]
fn an_incident_report_spans_its_runs() {
    let case = Case::new(true);
    assert_eq!(case.run(&[]), 1, "the first run waits for approval");
    let ack = case.cmd(&["ack", "1", "--by", "ana"]).output().unwrap();
    assert!(ack.status.success(), "{ack:?}");
    assert_eq!(case.run(&["--yes"]), 0, "the second fixes it");
    // A later run of the same runbook belongs to no incident: it must stay out.
    assert_eq!(case.run(&[]), 0);
    let runs = case.runs();
    assert_eq!(runs.len(), 3);
    let md = case.report_ok(&["--incident", "1"]);
    assert_no_secret(&md);
    let (first, second, third) = (
        runs[0]["id"].as_str().unwrap(),
        runs[1]["id"].as_str().unwrap(),
        runs[2]["id"].as_str().unwrap(),
    );
    let started = |id: &str| {
        md.find(&format!("| run started | `{id}`"))
            .unwrap_or_else(|| panic!("run {id} is not in the timeline:\n{md}"))
    };
    assert!(started(first) < started(second), "{md}");
    assert!(
        !md.contains(third),
        "a run after the resolution is in:\n{md}"
    );
    let resolved = md.find("| incident resolved | `#1` |").expect("resolution");
    assert!(started(second) < resolved, "{md}");
    assert!(
        md.contains("| Incident | #1, resolved, reached L1 (Ops Team) |"),
        "{md}"
    );
    // The acknowledgement came before the second run's action: it was the response.
    let acked = md
        .find("| acknowledged | `#1` | acked | by ana |")
        .expect("the ack");
    assert!(acked < started(second), "{md}");
    assert!(md.contains("| Time to respond | "), "{md}");
    assert!(md.contains(" (acknowledged by ana) | 15m | met |"), "{md}");
    assert_report_snapshot!("incident_two_runs", case.masked(&md));

    // The first run's own report stops where the second run starts: no resolution in it.
    let one = case.report_ok(&[first]);
    assert!(one.contains("| incident opened | `#1` |"), "{one}");
    assert!(!one.contains("| incident resolved |"), "{one}");
    assert!(
        !one.contains(&format!("| run started | `{second}`")),
        "{one}"
    );
}

#[test]
fn the_html_report_is_one_self_contained_file() {
    let case = Case::new(true);
    assert_eq!(case.run(&["--yes"]), 0);
    let run = case.only_run();
    let file = case.path("report.html");
    let out = case.report_ok(&[&run, "--format", "html", "-o", file.to_str().unwrap()]);
    assert!(out.is_empty(), "-o writes nothing to stdout: {out}");
    let html = std::fs::read_to_string(&file).unwrap();
    assert_no_secret(&html);
    assert_self_contained(&html);
    // The step graph, inline, coloured by the run: the check failed, its verification passed.
    assert_eq!(html.matches("<svg").count(), 1, "one inline SVG");
    assert!(html.contains("data-key=\"check:healthz\""), "no graph node");
    assert!(
        html.contains("class=\"node check status-failed\" data-key=\"check:healthz\""),
        "the graph is not coloured by the run"
    );
    assert!(html.contains("class=\"node verify status-ok\" data-key=\"verify:healthz\""));
    // One <details> per recorded step, with the documented hooks.
    let steps = case.show(&run)["steps"].as_array().unwrap().clone();
    assert!(steps.len() >= 6, "{steps:?}");
    assert_eq!(html.matches("<details class=\"step\"").count(), steps.len());
    for s in &steps {
        let hooks = format!(
            "id=\"step-{run}-{}\" data-step-kind=\"{}\" data-step-id=\"{}\" data-status=\"{}\"",
            s["seq"],
            s["kind"].as_str().unwrap(),
            s["step_id"].as_str().unwrap(),
            s["status"].as_str().unwrap()
        );
        assert!(html.contains(&hooks), "no step row {hooks}");
    }
    // The inputs and results, pretty-printed and escaped.
    assert!(
        html.contains("<pre class=\"json inputs\">{\n  &quot;"),
        "not pretty JSON"
    );
    for id in [
        "timeline-table",
        "impact-table",
        "root-cause",
        "actions",
        "steps",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    assert!(!html.contains("id=\"runbook-changed\""));
}

#[test]
fn a_changed_runbook_is_called_out() {
    let case = Case::new(true);
    assert_eq!(case.run(&["--yes"]), 0);
    let run = case.only_run();
    let file = case.path("runbooks/e2e.yaml");
    std::fs::write(&file, format!("{RUNBOOK}# edited after the run\n")).unwrap();
    let md = case.report_ok(&[&run]);
    assert!(
        md.contains(&format!(
            "> **Note:** the runbook file changed since run {run}"
        )),
        "{md}"
    );
    let html = case.report_ok(&[&run, "--format", "html"]);
    assert!(html.contains("id=\"runbook-changed\""));
}

#[test]
fn templates_override_by_file_name_and_a_broken_one_exits_2() {
    let case = Case::new(true);
    assert_eq!(case.run(&["--yes"]), 0);
    let run = case.only_run();
    let dir = case.path("tpl");
    std::fs::create_dir(&dir).unwrap();
    let tpl = dir.to_str().unwrap();

    // A partial alone: the rest stays built in.
    std::fs::write(
        dir.join("lessons.md.j2"),
        "Our lessons for {{ runbook.name }}.\n",
    )
    .unwrap();
    let md = case.report_ok(&[&run, "--templates", tpl]);
    assert!(
        md.contains("## Lessons\n\n_What was learned._\n\nOur lessons for e2e.\n"),
        "{md}"
    );
    assert!(md.contains("## Timeline"), "{md}");
    assert!(!md.contains("Where we were lucky"), "{md}");

    // The main template.
    std::fs::write(
        dir.join("report.md.j2"),
        "{{ runbook.name }}: {{ runs|length }} run, {{ impact.resolution.verdict }}\n",
    )
    .unwrap();
    assert_eq!(
        case.report_ok(&[&run, "--templates", tpl]),
        "e2e: 1 run, met\n"
    );

    // A syntax error, and a misspelt field: exit 2 with the file and line.
    std::fs::write(dir.join("report.md.j2"), "ok\n{% if %}\n").unwrap();
    let (code, out, err) = case.report(&[&run, "--templates", tpl]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    let path = dir.join("report.md.j2");
    assert!(
        err.contains(&format!(
            "template `{}` line 2: syntax error",
            path.display()
        )),
        "{err}"
    );
    std::fs::write(dir.join("report.md.j2"), "{% include \"impact.md.j2\" %}\n").unwrap();
    std::fs::write(dir.join("impact.md.j2"), "a\nb\n{{ impact.nope }}\n").unwrap();
    let (code, _, err) = case.report(&[&run, "--templates", tpl]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "template `{}` line 3: undefined value",
            dir.join("impact.md.j2").display()
        )),
        "{err}"
    );
    // Not a directory.
    let (code, _, err) = case.report(&[&run, "--templates", "no-such-dir"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unknown_runs_and_incidents_exit_2_and_an_unreadable_db_3() {
    let case = Case::new(true);
    assert_eq!(case.run(&[]), 1);
    let (code, out, err) = case.report(&["20990101T000000Z-000000"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("no run `20990101T000000Z-000000`"), "{err}");
    let (code, _, err) = case.report(&["--incident", "42"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no incident #42"), "{err}");
    let (code, _, err) = case.report(&["--format", "json", &case.only_run()]);
    assert_eq!(code, 2, "{err}");

    // Reading changes nothing: the database is byte for byte the same after a report.
    let db = case.path("audit.db");
    let before = std::fs::read(&db).unwrap();
    case.report_ok(&[&case.only_run()]);
    assert_eq!(std::fs::read(&db).unwrap(), before);

    std::fs::write(
        case.path("garbage.db"),
        "this is not a database, it is text\n",
    )
    .unwrap();
    let out = Command::new(get_cargo_bin("runbook"))
        .current_dir(case.dir.path())
        .args([
            "--runbooks",
            "runbooks",
            "--db",
            "garbage.db",
            "report",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let (code, _, _) = case.report(&["--incident", "1", "-o", "/nonexistent-dir/r.md"]);
    assert_eq!(code, 3);
}

/// `runbook serve` on the case, authenticated by a token file; killed on drop.
struct Serve(Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Case {
    fn serve(&self) -> Serve {
        std::fs::write(self.path("serve-token"), "serve-token-1\n").unwrap();
        std::fs::set_permissions(
            self.path("serve-token"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut child = self
            .cmd(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token-file",
                "serve-token",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let first = rx.recv_timeout(WAIT).unwrap_or_default();
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Serve(child, base)
    }
}

#[test]
fn a_run_started_by_an_alert_shows_the_alert_and_the_time_to_detect() {
    let case = Case::new(true);
    // The token file is the runbook's own default here: an alert may not name it
    // (`secret-from-alert-path`).
    let rb = case.path("runbooks/e2e.yaml");
    let text = std::fs::read_to_string(&rb).unwrap();
    let own = format!("default: {}, secret: true", case.path(TOKEN_NAME).display());
    std::fs::write(
        &rb,
        text.replace("default: /nonexistent, secret: true", &own),
    )
    .unwrap();
    let serve = case.serve();
    let starts = chrono::Utc::now() - chrono::Duration::seconds(90);
    let body = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"E2eDown\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "runbook",
        "groupLabels": { "alertname": "E2eDown" },
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": "firing",
            "labels": {
                "alertname": "E2eDown",
                "base_url": format!("http://{}", case.server.addr),
            },
            "annotations": { "summary": "e2e is down" },
            "startsAt": starts.to_rfc3339(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "e2e0000000000001",
        }],
    });
    let resp = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap()
        .post(format!("{}/hooks/alertmanager", serve.1))
        .bearer_auth("serve-token-1")
        .json(&body)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let deadline = Instant::now() + WAIT;
    let run = loop {
        let runs = case.runs();
        if let Some(r) = runs.iter().find(|r| r["finished_at"].is_string()) {
            break r["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no finished run: {runs:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(serve);
    let md = case.report_ok(&[&run]);
    assert_no_secret(&md);
    assert!(md.contains("| alert firing | `E2eDown` | firing |"), "{md}");
    assert!(
        md.contains("| alert received | `E2eDown` | alertmanager |"),
        "{md}"
    );
    assert!(md.contains("(alert start → run start)"), "{md}");
    assert!(md.contains("when the alert started firing"), "{md}");
    // The alert started 90 s before the run: its row is before the start, the detection
    // took over a minute and under the response target.
    assert!(md.contains(" | -01:3"), "{md}");
    assert!(md.contains("| Time to detect | 1 min "), "{md}");
    assert!(md.contains("| Time to respond | 1 min "), "{md}");
    assert!(md.contains("| 15m | met |"), "{md}");
    assert!(md.contains("| Alert | E2eDown, firing since "), "{md}");
    assert!(md.contains("via alertmanager; labels alertname=E2eDown, base_url=http://127.0.0.1:"));
    let html = case.report_ok(&[&run, "--format", "html"]);
    assert_no_secret(&html);
    assert_self_contained(&html);
    assert!(html.contains("data-event-kind=\"alert_received\""));
    assert!(html.contains("<dd class=\"alert\">E2eDown <code>e2e0000000000001</code>"));
}
