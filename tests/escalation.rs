//! Escalation timers end to end: the real binary, a real `SQLite` audit file, the seed
//! policy.yaml (ladder p3e: L1 at once, L2 after 30 min, L3 after 2 h, L4 after 4 h; P1
//! response 15 min, resolution 4 h) with its webhooks pointed at a loopback axum server that
//! records what it receives. The clock is `--now`, relative to the incident's `opened_at`;
//! every `runbook` invocation is a new process, so every step also "restarts" the engine.

mod cli_case;
mod db_rows;
mod hooks;

use std::ops::Deref;
use std::process::Stdio;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use cli_case::{CliCase, text};
use hooks::{Hooks, Received};

/// Whether a received body is a page for level L2.
fn names_l2(body: &Value) -> bool {
    body["message"]
        .as_str()
        .or(body["text"].as_str())
        .is_some_and(|m| m.contains("at L2 ("))
}

/// Records a POST; `/fail` answers 500, `/hang` holds the first page for L2 for 60 s (longer
/// than the notifier waits: the sender is stuck between claim and settle), everything else
/// 200.
async fn record(State(rx): State<Received>, uri: Uri, body: axum::body::Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hang = uri.path() == "/hang"
        && names_l2(&v)
        && !rx
            .lock()
            .unwrap()
            .iter()
            .any(|(p, b)| p == "/hang" && names_l2(b));
    hooks::record(State(rx), uri.clone(), body).await;
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    if uri.path() == "/fail" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// P1, ladder p3e, one check that fails until `{dir}/ok` exists, no cause: a problem that
/// nothing here fixes.
const RUNBOOK: &str = r#"runbook: stuck
title: Stuck
severity: P1
params:
  dir: { type: path, default: /nonexistent }
checks:
  - id: ok_file
    probe: file
    with: { path: "{{ params.dir }}/ok" }
    expect: "exists"
escalation: { ladder: p3e, after_action_unresolved: 10m }
"#;

struct Case {
    base: CliCase,
    server: Hooks,
}

impl Deref for Case {
    type Target = CliCase;

    fn deref(&self) -> &CliCase {
        &self.base
    }
}

impl Case {
    /// The seed policy with `ops` posting to `ops_path` and `slack` to `/services/T0/secret`
    /// on the loopback server.
    fn new(ops_path: &str) -> Self {
        let server = Hooks::with(record);
        let base = format!("http://{}", server.addr);
        let case = CliCase::new("stuck.yaml", RUNBOOK, |policy| {
            let policy = policy
                .replace(
                    "http://127.0.0.1:9097/hooks/runbook",
                    &format!("{base}{ops_path}"),
                )
                .replace(
                    "http://127.0.0.1:9096/services/aurora-incidents",
                    &format!("{base}/services/T0/secret"),
                );
            assert!(policy.contains(&base), "the seed policy's channels moved");
            policy
        });
        std::fs::create_dir(case.dir.path().join("state")).unwrap();
        Case { base: case, server }
    }

    /// `run stuck`: fails until the ok file exists.
    fn run(&self) -> (i32, String) {
        let dir = format!("dir={}", self.dir.path().join("state").display());
        self.cli(&["run", "stuck", "--set", &dir])
    }

    fn make_healthy(&self) {
        std::fs::write(self.dir.path().join("state/ok"), "").unwrap();
    }

    /// `tick --now opened+offset`, as JSON; asserts exit 0.
    fn tick(&self, opened: DateTime<Utc>, offset: &str) -> Value {
        let now = at(opened, offset);
        let doc = self.json(&["tick", "--now", &now]);
        assert_eq!(doc["exit_code"], 0, "{doc}");
        doc
    }

    /// The level ids fired by a tick document.
    fn fired(doc: &Value) -> Vec<String> {
        doc["escalations"]["fired"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["level_id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn incidents(&self, now: Option<&str>) -> Vec<Value> {
        let mut args = vec!["incidents"];
        if let Some(n) = now {
            args.extend_from_slice(&["--now", n]);
        }
        self.json(&args)["incidents"].as_array().unwrap().clone()
    }

    /// The only open incident's `opened_at`.
    fn opened(&self) -> DateTime<Utc> {
        let list = self.incidents(None);
        assert_eq!(list.len(), 1, "{list:?}");
        time(list[0]["opened_at"].as_str().unwrap())
    }

    fn received(&self) -> Vec<(String, Value)> {
        self.server.received.lock().unwrap().clone()
    }

    /// Messages the server received that name level `id` (`at L2 (`).
    fn received_for(&self, path: &str, level: &str) -> usize {
        let needle = format!("at {level} (");
        self.received()
            .iter()
            .filter(|(p, body)| {
                p == path
                    && body["message"]
                        .as_str()
                        .or(body["text"].as_str())
                        .is_some_and(|m| m.contains(&needle))
            })
            .count()
    }

    /// Rows of a query, every value as text (`NULL` for null).
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        db_rows::rows(&self.db(), sql)
    }

    fn assert_audit_verifies(&self) {
        let (code, out) = self.cli(&["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("ok:"), "{out}");
    }
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `opened + offset` (`31m`, `2h1m`) in RFC 3339.
fn at(opened: DateTime<Utc>, offset: &str) -> String {
    let d = humantime::parse_duration(offset).unwrap();
    fmt(opened + chrono::Duration::from_std(d).unwrap())
}

const OPS: &str = "/hooks/runbook";
const SLACK: &str = "/services/T0/secret";

#[test]
fn a_failing_run_opens_an_incident_and_each_level_fires_at_its_time_once() {
    let case = Case::new(OPS);
    let (code, out) = case.run();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #1 opened (P1, ladder p3e)"), "{out}");
    assert!(
        out.contains("escalated to L1 (First Response): stdout ok, ops ok"),
        "{out}"
    );
    assert!(out.contains("✉ [P1] `stuck` unresolved"), "{out}");

    let opened = case.opened();
    let list = case.incidents(None);
    let inc = &list[0];
    assert_eq!(inc["severity"], "P1");
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["level"]["id"], "L1");
    assert_eq!(inc["next"]["id"], "L2");
    assert_eq!(inc["next"]["due_at"], at(opened, "30m"));
    // `after_action_unresolved` counts from a remediation, and this runbook has none to
    // perform: no recheck (tests/recheck.rs has the ones that do).
    assert_eq!(inc["recheck_due_at"], Value::Null);
    // L1 went to the JSON webhook (the stdout channel is the run's own output).
    assert_eq!(case.received_for(OPS, "L1"), 1);
    let (_, body) = &case.received()[0];
    assert_eq!(body["runbook"], "stuck");
    assert_eq!(
        case.rows("SELECT channel, target, status FROM notifications ORDER BY id"),
        vec![
            vec!["stdout".to_owned(), "stdout".to_owned(), "ok".to_owned()],
            vec![
                "ops".to_owned(),
                format!("webhook http://{}", case.server.addr),
                "ok".to_owned()
            ],
        ],
        "a webhook's path is never stored"
    );

    assert!(Case::fired(&case.tick(opened, "29m")).is_empty());
    assert_eq!(case.received().len(), 1);

    let doc = case.tick(opened, "31m");
    assert_eq!(Case::fired(&doc), ["L2"], "{doc}");
    assert_eq!(
        doc["escalations"]["fired"][0]["next_due_at"],
        at(opened, "2h")
    );
    assert_eq!(case.received_for(OPS, "L2"), 1);
    assert_eq!(case.received_for(SLACK, "L2"), 1);
    let slack: Vec<Value> = case
        .received()
        .into_iter()
        .filter(|(p, _)| p == SLACK)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        slack[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["text"],
        "Slack-compatible payload"
    );

    // The same time again: nothing.
    assert!(Case::fired(&case.tick(opened, "31m")).is_empty());
    assert!(Case::fired(&case.tick(opened, "1h59m")).is_empty());
    assert_eq!(Case::fired(&case.tick(opened, "2h1m")), ["L3"]);
    assert!(Case::fired(&case.tick(opened, "2h1m")).is_empty());
    assert_eq!(Case::fired(&case.tick(opened, "4h1m")), ["L4"]);
    assert!(Case::fired(&case.tick(opened, "4h1m")).is_empty());
    assert!(Case::fired(&case.tick(opened, "30h")).is_empty());

    for level in ["L2", "L3", "L4"] {
        assert_eq!(case.received_for(OPS, level), 1, "{level} to ops");
        assert_eq!(case.received_for(SLACK, level), 1, "{level} to slack");
    }
    assert_eq!(case.received().len(), 1 + 3 * 2);
    assert_eq!(
        case.rows("SELECT level, level_id, state FROM escalations ORDER BY level"),
        (1..=4)
            .map(|l| vec![l.to_string(), format!("L{l}"), "fired".to_owned()])
            .collect::<Vec<_>>()
    );
    let inc = &case.incidents(None)[0];
    assert_eq!(inc["level"]["id"], "L4");
    assert_eq!(inc["next"], Value::Null);
    case.assert_audit_verifies();
}

#[test]
fn concurrent_ticks_fire_a_level_exactly_once() {
    let case = Case::new(OPS);
    assert_eq!(case.run().0, 1);
    let opened = case.opened();
    let now = at(opened, "31m");
    let children: Vec<_> = (0..4)
        .map(|_| {
            case.cmd(&["tick", "--format", "json", "--now", &now])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut fired = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        fired.extend(Case::fired(&doc));
    }
    assert_eq!(fired, ["L2"], "exactly one tick fires L2");
    assert_eq!(case.received_for(OPS, "L2"), 1);
    assert_eq!(case.received_for(SLACK, "L2"), 1);
    assert_eq!(
        case.rows("SELECT COUNT(*) FROM escalations WHERE level = 2"),
        [["1"]]
    );
    case.assert_audit_verifies();
}

#[test]
fn after_a_restart_between_two_deadlines_the_next_level_fires_and_not_the_last_again() {
    let case = Case::new(OPS);
    assert_eq!(case.run().0, 1);
    let opened = case.opened();
    assert_eq!(Case::fired(&case.tick(opened, "31m")), ["L2"]);
    // The next process knows only what SQLite holds.
    let inc = &case.incidents(Some(&at(opened, "1h")))[0];
    assert_eq!(inc["level"]["id"], "L2");
    assert_eq!(inc["next"]["due_at"], at(opened, "2h"));
    let doc = case.tick(opened, "2h1m");
    assert_eq!(Case::fired(&doc), ["L3"], "{doc}");
    assert_eq!(
        doc["escalations"]["fired"][0]["skipped"],
        serde_json::json!([])
    );
    assert_eq!(
        case.received_for(OPS, "L2"),
        1,
        "L2 again after the restart"
    );
    assert_eq!(case.received_for(OPS, "L3"), 1);
}

#[test]
fn a_late_tick_fires_the_highest_due_level_once_and_records_the_others_skipped() {
    let case = Case::new(OPS);
    assert_eq!(case.run().0, 1);
    let opened = case.opened();
    let doc = case.tick(opened, "4h1m");
    assert_eq!(Case::fired(&doc), ["L4"], "{doc}");
    assert_eq!(
        doc["escalations"]["fired"][0]["skipped"],
        serde_json::json!(["L2", "L3"])
    );
    assert_eq!(
        case.received_for(OPS, "L2") + case.received_for(OPS, "L3"),
        0
    );
    assert_eq!(case.received_for(OPS, "L4"), 1);
    assert_eq!(
        case.rows("SELECT level_id, state FROM escalations ORDER BY level"),
        vec![
            vec!["L1", "fired"],
            vec!["L2", "skipped"],
            vec!["L3", "skipped"],
            vec!["L4", "fired"],
        ]
    );
    assert!(Case::fired(&case.tick(opened, "5h")).is_empty());
}

#[test]
fn ack_stops_the_ladder_and_a_healthy_run_resolves_the_incident() {
    let case = Case::new(OPS);
    assert_eq!(case.run().0, 1);
    let opened = case.opened();
    let (code, out) = case.cli(&["ack", "1", "--by", "alice", "--now", &at(opened, "5m")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("acknowledged by alice"), "{out}");
    let (code, out) = case.cli(&["ack", "1", "--by", "bob"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already by alice"), "{out}");
    assert_eq!(case.cli(&["ack", "99"]).0, 2);

    assert!(Case::fired(&case.tick(opened, "31m")).is_empty());
    assert!(Case::fired(&case.tick(opened, "5h")).is_empty());
    assert_eq!(case.received().len(), 1, "only L1, before the ack");
    let list = case.incidents(Some(&at(opened, "5h")));
    assert_eq!(list.len(), 1, "acked stays listed");
    assert_eq!(list[0]["status"], "acked");
    assert_eq!(list[0]["acked_by"], "alice");
    assert_eq!(list[0]["next"], Value::Null);
    assert_eq!(
        list[0]["response"]["breached"], false,
        "acked within 15 min"
    );
    assert_eq!(list[0]["resolution"]["breached"], true, "4 h passed");

    // Still failing: the same incident, not a new one.
    let (code, out) = case.run();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #1 still acked"), "{out}");
    case.make_healthy();
    let (code, out) = case.run();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("incident #1 resolved"), "{out}");
    assert!(case.incidents(None).is_empty());
    let (code, out) = case.cli(&["incidents"]);
    assert_eq!((code, out.trim()), (0, "no open incidents"));
    assert_eq!(case.rows("SELECT status FROM incidents"), [["resolved"]]);
    assert!(Case::fired(&case.tick(opened, "30h")).is_empty());

    // A new failure after the resolution is a new incident.
    std::fs::remove_file(case.dir.path().join("state/ok")).unwrap();
    let (code, out) = case.run();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #2 opened"), "{out}");
    case.assert_audit_verifies();
}

#[test]
fn a_webhook_answering_500_is_recorded_failed_and_the_level_still_fires_once() {
    let case = Case::new("/fail");
    let (code, out) = case.run();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ops FAILED (webhook notification answered 500)"),
        "{out}"
    );
    let opened = case.opened();
    let doc = case.tick(opened, "31m");
    assert_eq!(Case::fired(&doc), ["L2"]);
    let sent = &doc["escalations"]["fired"][0]["sent"];
    assert_eq!(sent[0]["channel"], "ops");
    assert_eq!(sent[0]["ok"], false);
    assert_eq!(
        sent[1]["channel"], "slack",
        "a failed channel does not block the next"
    );
    assert_eq!(sent[1]["ok"], true);
    assert!(
        Case::fired(&case.tick(opened, "31m")).is_empty(),
        "not re-fired"
    );
    assert_eq!(case.received_for("/fail", "L2"), 1);
    assert_eq!(case.received_for(SLACK, "L2"), 1);
    assert_eq!(
        case.rows(
            "SELECT e.level_id, n.channel, n.status, n.detail FROM notifications n \
             JOIN escalations e ON e.id = n.escalation_id ORDER BY n.id"
        ),
        vec![
            vec!["L1", "stdout", "ok", "notified on stdout"],
            vec!["L1", "ops", "failed", "webhook notification answered 500"],
            vec!["L2", "ops", "failed", "webhook notification answered 500"],
            vec!["L2", "slack", "ok", "slack notification answered 200"],
        ]
    );
    assert_eq!(
        case.rows("SELECT level_id, state FROM escalations ORDER BY level"),
        vec![vec!["L1", "fired"], vec!["L2", "fired"],]
    );
}

#[test]
fn deadlines_follow_the_policy_and_are_reported_breached_once_past() {
    let case = Case::new(OPS);
    assert_eq!(case.run().0, 1);
    let opened = case.opened();
    let at_ = |o: &str| case.incidents(Some(&at(opened, o))).remove(0);
    let inc = at_("1m");
    // P1 in the seed policy: response 15m, resolution 4h.
    assert_eq!(inc["response"]["due_at"], at(opened, "15m"));
    assert_eq!(inc["resolution"]["due_at"], at(opened, "4h"));
    assert_eq!(inc["response"]["breached"], false);
    assert_eq!(inc["resolution"]["breached"], false);
    let inc = at_("16m");
    assert_eq!(inc["response"]["breached"], true);
    assert_eq!(inc["resolution"]["breached"], false);
    let inc = at_("4h1m");
    assert_eq!(inc["response"]["breached"], true);
    assert_eq!(inc["resolution"]["breached"], true);
    // A late acknowledgement leaves the response breached.
    let (code, out) = case.cli(&["ack", "1", "--now", &at(opened, "20m")]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(at_("21m")["response"]["breached"], true);
    let (code, out) = case.cli(&["incidents", "--now", &at(opened, "4h1m")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("#1 stuck [P1] acked"), "{out}");
    assert!(out.contains("BREACHED"), "{out}");
}

#[test]
fn a_dry_run_changes_no_incident() {
    let case = Case::new(OPS);
    let (code, out) = case.run_dry();
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("incident"), "{out}");
    assert!(case.incidents(None).is_empty());
    assert!(case.received().is_empty());
}

impl Case {
    fn run_dry(&self) -> (i32, String) {
        let dir = format!("dir={}", self.dir.path().join("state").display());
        self.cli(&["run", "stuck", "--dry-run", "--set", &dir])
    }
}

#[test]
fn a_level_left_firing_by_a_killed_tick_is_sent_again_by_the_next_tick_once() {
    let case = Case::new("/hang");
    assert_eq!(case.run().0, 1);
    let opened = case.opened();
    // The tick sends L2 to `/hang` first, which holds it: killed there, between claim and
    // settle, it leaves L2 `firing`.
    let mut child = case
        .cmd(&["tick", "--now", &at(opened, "31m")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while case.received_for("/hang", "L2") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        case.received_for("/hang", "L2"),
        1,
        "the tick never sent L2"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = i64::from(child.id());
    assert_eq!(
        case.rows("SELECT level_id, state, claimed_pid FROM escalations WHERE level = 2"),
        [["L2", "firing", &killed.to_string()]]
    );
    assert_eq!(case.received_for(SLACK, "L2"), 0, "killed before Slack");

    // The next tick takes the claim over and sends L2 again, to every channel.
    let doc = case.tick(opened, "32m");
    assert_eq!(doc["escalations"]["lost_claims"], 1, "{doc}");
    assert_eq!(Case::fired(&doc), ["L2"], "{doc}");
    let fired = &doc["escalations"]["fired"][0];
    assert_eq!(fired["resent_after_crash"]["claimed_pid"], killed, "{doc}");
    assert!(
        fired["message"].as_str().unwrap().contains("sent again"),
        "{doc}"
    );
    assert_eq!(
        case.received_for("/hang", "L2"),
        2,
        "a duplicate, not a loss"
    );
    assert_eq!(case.received_for(SLACK, "L2"), 1);
    let rows = case.rows("SELECT state, result FROM escalations WHERE level = 2");
    assert_eq!(rows[0][0], "fired");
    let result: Value = serde_json::from_str(&rows[0][1]).unwrap();
    assert_eq!(result["resent_after_crash"]["claimed_pid"], killed);

    // Settled: the following ticks send nothing more until L3's time.
    let doc = case.tick(opened, "33m");
    assert_eq!(doc["escalations"]["lost_claims"], 0, "{doc}");
    assert!(Case::fired(&doc).is_empty(), "{doc}");
    assert_eq!(case.received_for("/hang", "L2"), 2);
    assert_eq!(Case::fired(&case.tick(opened, "2h1m")), ["L3"]);
    case.assert_audit_verifies();
}

#[test]
fn a_run_that_ended_without_its_incident_gets_it_from_the_next_tick() {
    let case = Case::new(OPS);
    // The state a run killed between its end and its incident leaves: here the policy is
    // away while it runs, so `run` records the run and opens no incident.
    let policy = case.path("runbooks/policy.yaml");
    let aside = case.path("policy.yaml.aside");
    std::fs::rename(&policy, &aside).unwrap();
    assert_eq!(case.run().0, 1);
    std::fs::rename(&aside, &policy).unwrap();
    assert!(case.incidents(None).is_empty());
    assert!(case.received().is_empty());
    let run = case.rows("SELECT id, finished_at FROM runs WHERE outcome = 'problem_remains'");
    assert_eq!(run.len(), 1, "{run:?}");
    let (run_id, finished) = (&run[0][0], &run[0][1]);

    let dry = case.json(&["tick", "--dry-run"]);
    assert_eq!(dry["unhandled_runs"][0]["result"], "dry_run", "{dry}");
    assert!(case.incidents(None).is_empty(), "a dry run records nothing");

    let doc = case.json(&["tick"]);
    assert_eq!(doc["exit_code"], 0, "{doc}");
    let recovered = doc["unhandled_runs"].as_array().unwrap();
    assert_eq!(recovered.len(), 1, "{doc}");
    assert_eq!(recovered[0]["run"]["run_id"], run_id.as_str());
    assert_eq!(recovered[0]["result"], "recorded");
    let esc = &recovered[0]["escalation"];
    assert_eq!(esc["change"]["change"], "opened", "{doc}");
    assert_eq!(esc["fired"][0]["level_id"], "L1", "{doc}");
    assert_eq!(case.received_for(OPS, "L1"), 1);
    let list = case.incidents(None);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["first_run_id"], run_id.as_str());
    assert_eq!(
        list[0]["opened_at"],
        finished.as_str(),
        "the ladder counts from the run's end"
    );

    // Recorded once: the next tick finds nothing, and the next run updates the incident.
    let doc = case.json(&["tick"]);
    assert!(
        doc["unhandled_runs"].as_array().unwrap().is_empty(),
        "{doc}"
    );
    assert_eq!(case.received_for(OPS, "L1"), 1);
    let (code, out) = case.run();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #1 still open"), "{out}");
    assert_eq!(case.received_for(OPS, "L1"), 1);
    case.assert_audit_verifies();
}
