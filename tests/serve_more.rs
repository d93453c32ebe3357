//! `runbook serve` beyond deliveries, end to end with the real binary on a loopback port:
//! the incidents API, cron schedules (a missed slot runs once at start), due pending reverts,
//! and approvals of a held-back action (API and CLI, with expiry). Every wait is bounded.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use insta_cmd::get_cargo_bin;
use serde_json::{Value, json};

use common::{Case, SSE_DOWN, Server, TOKEN};

/// A cheap scheduled check.
const MORNING: &str = r#"runbook: morning
title: Morning check (test)
severity: P3
triggers:
  schedule: "0 6 * * *"
checks:
  - id: root_exists
    probe: file
    with: { path: "/" }
    expect: "exists"
"#;

/// A remedy (the param `dir` is fixed: alert labels never reach a shell) that touches `dir/flag` and appends to `dir/marker`; with `revert_after`, a
/// rollback appending to `dir/reverted`.
fn remedy_runbook(
    name: &str,
    severity: &str,
    alert: &str,
    dir: &Path,
    revert_after: Option<&str>,
) -> String {
    let dir = dir.display();
    let revert = revert_after.map_or_else(String::new, |after| {
        format!("    rollback: [unmake_flag]\n    revert_after: {after}\n")
    });
    format!(
        r#"runbook: {name}
title: Flag (test)
severity: {severity}
triggers:
  alerts: [{alert}]
params:
  dir: {{ type: path, default: "{dir}" }}
checks:
  - id: flag
    probe: file
    with: {{ path: "{{{{ params.dir }}}}/flag" }}
    expect: "exists"
causes:
  - id: no_flag
    title: No flag
    when: checks.flag.failed
    remedy: [make_flag]
    verify: [flag]
actions:
  - id: make_flag
    shell: 'echo made >> "$DIR/marker"; touch "$DIR/flag"'
    env: {{ DIR: "{{{{ params.dir }}}}" }}
    limit: {{ max: 100, per: 1h }}
{revert}  - id: unmake_flag
    shell: 'echo reverted >> "$DIR/reverted"; rm -f "$DIR/flag"'
    env: {{ DIR: "{{{{ params.dir }}}}" }}
    limit: {{ max: 100, per: 1h }}
escalation: {{ ladder: p3d }}
"#
    )
}

/// Helpers only these tests use.
impl Case {
    fn runbook(&self, name: &str, text: &str) {
        std::fs::write(self.path("runbooks").join(format!("{name}.yaml")), text).unwrap();
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(get_cargo_bin("runbook"))
            .arg("--runbooks")
            .arg(self.path("runbooks"))
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .unwrap()
    }

    fn lines(&self, name: &str) -> usize {
        std::fs::read_to_string(self.path(name)).map_or(0, |s| s.lines().count())
    }
}

impl Server {
    /// `GET`, or `POST` with `body` as JSON, with a bearer token if given.
    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        if method == "GET" {
            self.get(path, token)
        } else {
            self.post(path, token, body.to_string().as_bytes())
        }
    }

    fn alert(&self, alertname: &str, fingerprint: &str, labels: &Value) {
        let mut l = labels.clone();
        l["alertname"] = json!(alertname);
        let body = json!({
            "version": "4",
            "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}/{fingerprint}"),
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "runbook",
            "groupLabels": { "alertname": alertname },
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": "firing",
                "labels": l,
                "annotations": {},
                "startsAt": "2026-11-23T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": fingerprint,
            }],
        });
        let (code, r) = self.request("POST", "/hooks/alertmanager", Some(TOKEN), &body);
        assert_eq!((code, r["started"].clone()), (200, json!(1)), "{r}");
    }
}

/// Wait (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn incidents_are_listed_and_acknowledged_through_the_api() {
    let case = Case::new(&[("sse-down", SSE_DOWN)]);
    let s = case.serve(&[]);
    s.alert(
        "SseAvailabilitySLOViolation",
        "aaaa000000000001",
        &json!({ "marker": "/nonexistent/m" }),
    );
    assert_eq!(s.runs("webhook", 1)[0]["outcome"], "problem_remains");

    assert_eq!(
        s.request("GET", "/api/incidents", None, &Value::Null).0,
        401
    );
    assert_eq!(
        s.request("GET", "/api/incidents", Some("wrong"), &Value::Null)
            .0,
        401
    );
    // The incident is written as the run is settled, just after it is listed.
    eventually("the incident", || {
        case.sql("SELECT COUNT(*) FROM incidents") == 1
    });
    let (code, list) = s.request("GET", "/api/incidents", Some(TOKEN), &Value::Null);
    assert_eq!(code, 200, "{list}");
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list}");
    assert_eq!(incidents[0]["runbook"], "sse-down");
    assert_eq!(incidents[0]["dedup_key"], "aaaa000000000001");
    assert_eq!(incidents[0]["status"], "open");
    let id = incidents[0]["id"].as_i64().unwrap();

    let ack = format!("/api/incidents/{id}/ack");
    assert_eq!(s.request("POST", &ack, None, &json!({})).0, 401);
    assert_eq!(
        s.request("POST", "/api/incidents/9999/ack", Some(TOKEN), &json!({}))
            .0,
        404
    );
    let (code, r) = s.request("POST", &ack, Some(TOKEN), &json!({ "by": "alice" }));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["incident"]["acked_by"], "alice", "{r}");
    assert_eq!(r["incident"]["status"], "acked", "{r}");

    let out = case.cli(&["incidents", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["incidents"][0]["status"], "acked", "{v}");
    assert_eq!(v["incidents"][0]["acked_by"], "alice", "{v}");

    // Resolved: acknowledging it is a conflict.
    let resolved = case.sql(&format!(
        "UPDATE incidents SET status = 'resolved' WHERE id = {id} RETURNING id"
    ));
    assert_eq!(resolved, id);
    assert_eq!(s.request("POST", &ack, Some(TOKEN), &json!({})).0, 409);
}

#[test]
fn a_slot_missed_while_down_runs_once_at_start_and_not_again_after_a_restart() {
    let case = Case::new(&[("morning", MORNING)]);
    // The last slot run was yesterday 06:00; today's 06:00 was missed.
    let store = runbook::audit::AuditStore::open(&case.db()).unwrap();
    let yesterday = chrono::DateTime::parse_from_rfc3339("2026-11-22T06:00:00Z")
        .unwrap()
        .to_utc();
    assert!(store.claim_slot("morning", yesterday, yesterday).unwrap());
    drop(store);
    let now = ["--schedule-now", "2026-11-23T07:30:00Z"];

    let s = case.serve(&now);
    let runs = s.runs("schedule", 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["runbook"], "morning");
    assert_eq!(runs[0]["outcome"], "healthy");
    // A few polls later: still one.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(s.runs("schedule", 0).len(), 1);
    let slot = || -> String {
        let conn = rusqlite::Connection::open(case.db()).unwrap();
        conn.query_row(
            "SELECT slot FROM schedule_slots WHERE runbook = 'morning'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(slot(), "2026-11-23T06:00:00.000Z");
    drop(s);

    // Restarted in the same hour: that slot ran already.
    let s = case.serve(&now);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(s.runs("schedule", 0).len(), 1);
    assert_eq!(slot(), "2026-11-23T06:00:00.000Z");
}

#[test]
fn with_no_slot_recorded_the_last_one_runs_at_start_and_the_next_when_its_time_comes() {
    let case = Case::new(&[("morning", MORNING)]);
    let s = case.serve(&["--schedule-now", "2026-11-23T05:59:58Z"]);
    // Yesterday's 06:00 at start, today's 06:00 two seconds later.
    let runs = s.runs("schedule", 2);
    assert_eq!(runs.len(), 2, "{runs:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.runs("schedule", 0).len(), 2);
    let conn = rusqlite::Connection::open(case.db()).unwrap();
    let slot: String = conn
        .query_row("SELECT slot FROM schedule_slots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(slot, "2026-11-23T06:00:00.000Z");
}

#[test]
fn a_due_revert_is_performed_by_the_server_once() {
    let case = Case::new(&[]);
    case.runbook(
        "tmpchange",
        &remedy_runbook("tmpchange", "P1", "TmpChange", case.dir.path(), Some("1s")),
    );
    let s = case.serve(&[]);
    let dir = case.dir.path().to_str().unwrap().to_owned();
    s.alert("TmpChange", "dddd000000000001", &json!({ "dir": dir }));
    let runs = s.runs("webhook", 1);
    assert_eq!(runs[0]["outcome"], "remediated", "{runs:?}");
    assert_eq!(case.lines("marker"), 1);
    // P1 allows auto-remediation: the server undoes the change when it is due.
    eventually("the rollback", || case.lines("reverted") >= 1);
    let reverts = s.runs("serve", 1);
    assert_eq!(reverts.len(), 1, "{reverts:?}");
    assert_eq!(reverts[0]["outcome"], "remediated");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(case.lines("reverted"), 1);
    assert!(!case.path("flag").exists());
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM pending_reverts WHERE state = 'done'"),
        1
    );
}

#[test]
fn an_action_held_for_approval_runs_once_approved_and_not_when_expired() {
    let case = Case::new(&[]);
    case.runbook(
        "needsok",
        &remedy_runbook("needsok", "P2", "NeedsOk", case.dir.path(), Some("1s")),
    );
    let s = case.serve(&[]);
    let dir = case.dir.path().to_str().unwrap().to_owned();
    s.alert("NeedsOk", "eeee000000000001", &json!({ "dir": dir }));
    let runs = s.runs("webhook", 1);
    assert_eq!(runs[0]["outcome"], "problem_remains", "{runs:?}");
    let run = runs[0]["id"].as_str().unwrap().to_owned();
    let (_, shown) = s.request(
        "GET",
        &format!("/api/runs/{run}"),
        Some(TOKEN),
        &Value::Null,
    );
    assert!(
        shown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|st| st["step_id"] == "make_flag" && st["status"] == "needs_approval"),
        "{shown}"
    );
    assert_eq!(case.lines("marker"), 0);

    let approve = format!("/api/runs/{run}/approve");
    let ok = json!({ "action": "make_flag", "by": "bob" });
    assert_eq!(s.request("POST", &approve, None, &ok).0, 401);
    assert_eq!(
        s.request("POST", "/api/runs/nope/approve", Some(TOKEN), &ok)
            .0,
        404
    );
    let (code, r) = s.request(
        "POST",
        &approve,
        Some(TOKEN),
        &json!({ "action": "unmake_flag" }),
    );
    assert_eq!(code, 409, "{r}");
    // Expired before it could be taken: 410, nothing runs.
    let (code, r) = s.request(
        "POST",
        &approve,
        Some(TOKEN),
        &json!({ "action": "make_flag", "ttl": "0s" }),
    );
    assert_eq!(code, 410, "{r}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(s.runs("approval", 0).is_empty());
    assert_eq!(case.lines("marker"), 0);

    // Approved: a new run for the same alert performs the action, once.
    let (code, r) = s.request("POST", &approve, Some(TOKEN), &ok);
    assert_eq!(code, 202, "{r}");
    assert_eq!(r["approval"]["approved_by"], "bob");
    let reruns = s.runs("approval", 1);
    assert_eq!(reruns.len(), 1);
    assert_eq!(reruns[0]["outcome"], "remediated", "{reruns:?}");
    assert_eq!(reruns[0]["params"]["dir"], json!(dir));
    assert_eq!(case.lines("marker"), 1);
    // Its revert is due in 1 s, but P2 does not allow auto-remediation: it stays pending.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(case.lines("reverted"), 0);
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM pending_reverts WHERE state = 'pending'"),
        1
    );

    // The CLI: an approval that expires before the server takes it runs nothing...
    std::fs::remove_file(case.path("flag")).unwrap();
    let out = case.cli(&["approve", &run, "make_flag", "--ttl", "1ms"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    eventually("the expired approval", || {
        case.sql("SELECT COUNT(*) FROM approvals WHERE state = 'expired'") == 2
    });
    assert_eq!(s.runs("approval", 0).len(), 1);
    assert_eq!(case.lines("marker"), 1);
    // ... one that is valid is taken by the server and performed.
    let out = case.cli(&["approve", &run, "make_flag", "--by", "carol"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(s.runs("approval", 2).len(), 2);
    assert_eq!(case.lines("marker"), 2);
    // An action that did not wait for approval is refused.
    let out = case.cli(&["approve", &run, "unmake_flag"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A P3 runbook (auto-remediation allowed) whose remedy takes 300 ms and logs its start and
/// end; its check never passes, so every alert runs the remedy.
fn slow_remedy_runbook(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"runbook: turns
title: Slow remedy (test)
severity: P3
triggers:
  alerts: [TurnsAlert]
params:
  dir: {{ type: path, default: "{dir}" }}
checks:
  - id: never
    probe: file
    with: {{ path: "{{{{ params.dir }}}}/never" }}
    expect: "exists"
causes:
  - id: absent
    title: Never there
    when: checks.never.failed
    remedy: [slow]
    verify: [never]
actions:
  - id: slow
    shell: 'echo start >> "$DIR/log"; sleep 0.3; echo end >> "$DIR/log"'
    env: {{ DIR: "{{{{ params.dir }}}}" }}
    limit: {{ max: 100, per: 1h }}
escalation: {{ ladder: p3d }}
"#
    )
}

#[test]
fn runs_that_may_change_the_host_take_turns_per_runbook_and_none_fails_for_the_lock() {
    let case = Case::new(&[("sse-down", SSE_DOWN)]);
    case.runbook("turns", &slow_remedy_runbook(case.dir.path()));
    // Two workers: the jobs waiting for their turn must not hold one.
    let server = case.serve(&["--workers", "2"]);
    for fp in ["f1", "f2", "f3"] {
        server.alert("TurnsAlert", fp, &json!({}));
    }
    server.alert("SseAvailabilitySLOViolation", "s1", &json!({}));
    let runs = server.runs("webhook", 4);
    assert_eq!(runs.len(), 4, "{runs:?}");
    for r in &runs {
        assert_ne!(r["outcome"], "fault", "{r}");
    }
    // The diagnosis sent last ran while the first remedy was still going.
    let first_turn_end = runs
        .iter()
        .filter(|r| r["runbook"] == "turns")
        .filter_map(|r| r["finished_at"].as_str())
        .min()
        .unwrap()
        .to_owned();
    let sse = runs.iter().find(|r| r["runbook"] == "sse-down").unwrap();
    assert!(
        sse["started_at"].as_str().unwrap() < first_turn_end.as_str(),
        "{sse} started after the first remedy ended ({first_turn_end})"
    );
    // Three remedies, never two at once.
    let log = std::fs::read_to_string(case.path("log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["start", "end", "start", "end", "start", "end"],
        "{log}"
    );
}

#[test]
fn the_runbook_lock_holds_back_a_run_that_may_change_the_host_and_not_a_diagnosis() {
    use runbook::exec::Ledger as _;
    let case = Case::new(&[]);
    case.runbook("turns", &slow_remedy_runbook(case.dir.path()));
    // Another live process (this test) holds the lock of `turns`.
    let store = runbook::audit::AuditStore::open(&case.db()).unwrap();
    assert!(store.lock("turns", "held-by-the-test").unwrap());

    let started = Instant::now();
    let out = case.cli(&["run", "turns", "--yes", "--lock-wait", "300ms"]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("another run of `turns` is in progress"),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(case.lines("log"), 0, "the remedy did not run");

    // Without consent to change anything, the run diagnoses at once: the remedy is skipped.
    let out = case.cli(&["run", "turns"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("needs approval"), "{text}");
    assert_eq!(case.lines("log"), 0);

    // Released: the same run goes through.
    store.unlock("turns", "held-by-the-test").unwrap();
    let out = case.cli(&["run", "turns", "--yes", "--lock-wait", "300ms"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(case.lines("log"), 2, "start and end");
}

/// The resolved notification arrives while the alert's run is still looking: the incident
/// that run opens when it ends is resolved, not left open.
#[test]
fn an_alert_resolved_while_its_run_is_going_leaves_no_incident_open() {
    const SLOW: &str = r#"runbook: slow-down
title: Slow check (test)
severity: P3
triggers:
  alerts: [SseAvailabilitySLOViolation]
checks:
  - id: slow
    probe: command
    with: { run: ["sh", "-c", "sleep 2; exit 1"] }
    timeout: 10s
    expect: "exit_code == 0"
causes:
  - id: broken
    title: Broken
    when: checks.slow.failed
    escalate: L1
escalation: { ladder: p3d }
"#;
    let case = Case::new(&[("slow-down", SLOW)]);
    let s = case.serve(&[]);
    let fp = "bbbb000000000001";
    s.alert("SseAvailabilitySLOViolation", fp, &json!({}));
    // The run is looking (2 s): the alert resolves.
    std::thread::sleep(Duration::from_millis(300));
    let body = json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"SseAvailabilitySLOViolation\"}}/{fp}"),
        "truncatedAlerts": 0,
        "status": "resolved",
        "receiver": "runbook",
        "groupLabels": { "alertname": "SseAvailabilitySLOViolation" },
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "resolved",
            "labels": { "alertname": "SseAvailabilitySLOViolation" },
            "annotations": {},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": "2026-11-23T10:05:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fp,
        }],
    });
    let (code, r) = s.request("POST", "/hooks/alertmanager", Some(TOKEN), &body);
    assert_eq!(code, 200, "{r}");
    assert_eq!(s.runs("webhook", 1)[0]["outcome"], "problem_remains");
    // The run opened its incident (and paged L1) when it ended; it is resolved as it is settled.
    eventually("the incident opened and resolved", || {
        case.sql(&format!(
            "SELECT COUNT(*) FROM incidents WHERE dedup_key = '{fp}' AND status = 'resolved'"
        )) == 1
    });
    assert_eq!(
        case.sql("SELECT COUNT(*) FROM incidents WHERE status != 'resolved'"),
        0
    );
}
