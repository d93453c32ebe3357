//! `escalation.after_action_unresolved` end to end: "symptom persists this long after
//! remediation → next level". The real binary, a real `SQLite` audit file read back with
//! rusqlite, the seed policy.yaml (P1, ladder p3e: L1 at once, L2 after 30 min, L3 after 2 h)
//! with its webhooks pointed at a loopback axum server that records what it receives.
//!
//! The runbook's check fails until `{dir}/ok` exists; its remedy appends a line to
//! `{dir}/poked` (so a remedy that ran again would show) and its verification fails while the
//! ok file is missing: `run --yes` remediates and leaves the problem. The clock is `tick
//! --now`, or `serve --schedule-now`, relative to the incident's `opened_at`. Every wait is
//! bounded.

mod cli_case;
mod db_rows;
mod hooks;

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use insta_cmd::get_cargo_bin;
use serde_json::Value;

use cli_case::{CliCase, text};
use hooks::Hooks;

const RUNBOOK: &str = r#"runbook: fixable
title: Fixable (test)
severity: P1
params:
  dir: { type: path, default: /nonexistent }
checks:
  - id: ok_file
    probe: file
    with: { path: "{{ params.dir }}/ok" }
    expect: "exists"
causes:
  - id: missing
    title: The ok file is missing
    when: checks.ok_file.failed
    remedy: [poke]
    verify: [ok_file]
actions:
  - id: poke
    shell: 'echo poke >> "$DIR/poked"'
    env: { DIR: "{{ params.dir }}" }
    limit: { max: 100, per: 1h }
escalation: { ladder: p3e, after_action_unresolved: 10m }
"#;

const OPS: &str = "/hooks/runbook";
const SLACK: &str = "/services/T0/secret";

struct Case {
    base: CliCase,
    hooks: Hooks,
}

impl Deref for Case {
    type Target = CliCase;

    fn deref(&self) -> &CliCase {
        &self.base
    }
}

/// A `runbook serve` child, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Case {
    fn new() -> Case {
        let hooks = Hooks::with(hooks::record);
        let base = format!("http://{}", hooks.addr);
        let case = CliCase::new("fixable.yaml", RUNBOOK, |policy| {
            let policy = policy
                .replace(
                    "http://127.0.0.1:9097/hooks/runbook",
                    &format!("{base}{OPS}"),
                )
                .replace(
                    "http://127.0.0.1:9096/services/aurora-incidents",
                    &format!("{base}{SLACK}"),
                );
            assert!(policy.contains(&base), "the seed policy's channels moved");
            policy
        });
        std::fs::create_dir(case.path("state")).unwrap();
        Case { base: case, hooks }
    }

    /// `run fixable` on the state dir, with `--yes` or without (no terminal: the remedy then
    /// waits for approval).
    fn run(&self, yes: bool) -> (i32, String) {
        let dir = format!("dir={}", self.path("state").display());
        let mut args = vec!["run", "fixable", "--set", &dir];
        if yes {
            args.push("--yes");
        }
        self.cli(&args)
    }

    /// The symptom goes away.
    fn make_healthy(&self) {
        std::fs::write(self.path("state/ok"), "").unwrap();
    }

    /// How many times the remedy ran.
    fn pokes(&self) -> usize {
        std::fs::read_to_string(self.path("state/poked")).map_or(0, |s| s.lines().count())
    }

    /// `tick --now opened+offset` (and `extra`), as JSON; asserts exit 0.
    fn tick(&self, opened: DateTime<Utc>, offset: &str, extra: &[&str]) -> Value {
        let now = at(opened, offset);
        let mut args = vec!["tick", "--now", &now];
        args.extend_from_slice(extra);
        let doc = self.json(&args);
        assert_eq!(doc["exit_code"], 0, "{doc}");
        doc
    }

    fn incidents(&self) -> Vec<Value> {
        self.json(&["incidents"])["incidents"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The only listed incident.
    fn incident(&self) -> Value {
        let mut list = self.incidents();
        assert_eq!(list.len(), 1, "{list:?}");
        list.remove(0)
    }

    /// Messages received on `path` that name level `id` (`at L2 (`).
    fn received_for(&self, path: &str, level: &str) -> Vec<String> {
        let needle = format!("at {level} (");
        self.hooks
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .filter_map(|(_, body)| {
                body["message"]
                    .as_str()
                    .or(body["text"].as_str())
                    .map(str::to_owned)
            })
            .filter(|m| m.contains(&needle))
            .collect()
    }

    /// Rows of a query, every value as text (`NULL` for null).
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        db_rows::rows(&self.db(), sql)
    }

    /// Ids of the runs with trigger `recheck`, oldest first.
    fn recheck_runs(&self) -> Vec<String> {
        self.rows("SELECT id FROM runs WHERE trigger = 'recheck' ORDER BY started_at, rowid")
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect()
    }

    fn assert_audit_verifies(&self) {
        let (code, out) = self.cli(&["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("ok:"), "{out}");
    }

    /// `serve` on a loopback port with the scheduler's clock at `now`; its log in `serve.log`.
    fn serve(&self, now: &str) -> Serve {
        let log = std::fs::File::create(self.path("serve.log")).unwrap();
        let mut child = Command::new(get_cargo_bin("runbook"))
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_DB")
            .arg("--runbooks")
            .arg(self.path("runbooks"))
            .arg("--db")
            .arg(self.db())
            .args(["serve", "--listen", "127.0.0.1:0", "--schedule-now", now])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let serve = Serve(child);
        assert!(first.starts_with("listening on "), "first line: {first:?}");
        serve
    }

    fn serve_log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `opened + offset` (`11m`, `2h1m`) in RFC 3339 with milliseconds.
fn at(opened: DateTime<Utc>, offset: &str) -> String {
    let d = humantime::parse_duration(offset).unwrap();
    (opened + chrono::Duration::from_std(d).unwrap()).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `run --yes`: remediated, the problem left; the incident opened with its recheck due.
fn remediate_and_open(case: &Case) -> DateTime<Utc> {
    let (code, out) = case.run(true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #1 opened (P1, ladder p3e)"), "{out}");
    assert_eq!(case.pokes(), 1, "the remedy did not run: {out}");
    let inc = case.incident();
    let opened = time(inc["opened_at"].as_str().unwrap());
    assert_eq!(inc["level"]["id"], "L1");
    assert_eq!(inc["recheck_due_at"], at(opened, "10m"), "{inc}");
    opened
}

#[test]
fn a_symptom_that_persists_after_the_remediation_fires_the_next_level_once() {
    let case = Case::new();
    let opened = remediate_and_open(&case);
    assert_eq!(case.incident()["next"]["due_at"], at(opened, "30m"));
    assert_eq!(case.received_for(OPS, "L1").len(), 1);

    // Not due yet: nothing runs, nothing fires, the recheck stays due.
    let doc = case.tick(opened, "9m59s", &[]);
    assert_eq!(doc["rechecks"], Value::Array(Vec::new()), "{doc}");
    assert_eq!(doc["escalations"]["fired"], Value::Array(Vec::new()));
    assert!(case.recheck_runs().is_empty());
    assert_eq!(case.incident()["recheck_due_at"], at(opened, "10m"));

    // Due, the symptom still there: the checks re-run read-only and L2 fires now, 19 min
    // before its time on the ladder.
    let doc = case.tick(opened, "11m", &[]);
    let recheck = &doc["rechecks"][0];
    assert_eq!(recheck["result"], "escalated", "{doc}");
    assert_eq!(doc["rechecks"].as_array().unwrap().len(), 1);
    let runs = case.recheck_runs();
    assert_eq!(runs.len(), 1, "{doc}");
    let run = &runs[0];
    assert_eq!(recheck["run_id"], run.as_str());
    assert_eq!(recheck["outcome"], "problem_remains");
    assert!(
        recheck["findings"]
            .as_array()
            .unwrap()
            .contains(&Value::from("cause `missing` matched")),
        "{recheck}"
    );
    assert_eq!(recheck["fired"]["level_id"], "L2");
    assert_eq!(recheck["fired"]["recheck_run_id"], run.as_str());
    assert_eq!(recheck["fired"]["next_due_at"], at(opened, "2h"));
    assert_eq!(
        doc["escalations"]["fired"],
        Value::Array(Vec::new()),
        "the same tick fired a timed level as well"
    );
    assert_eq!(
        case.rows(&format!(
            "SELECT trigger, mode, outcome FROM runs WHERE id = '{run}'"
        )),
        [["recheck", "dry_run", "problem_remains"]]
    );
    assert_eq!(
        case.rows(&format!(
            "SELECT status FROM steps WHERE run_id = '{run}' AND step_id = 'poke'"
        )),
        [["dry_run"]],
        "the recheck must not remediate"
    );
    assert_eq!(case.pokes(), 1, "the remedy ran again");
    let l2 = case.received_for(OPS, "L2");
    assert_eq!(l2.len(), 1, "L2 to ops");
    assert!(l2[0].contains(&format!("recheck run {run}")), "{}", l2[0]);
    assert_eq!(case.received_for(SLACK, "L2").len(), 1, "L2 to slack");
    let inc = case.incident();
    assert_eq!(inc["level"]["id"], "L2");
    assert_eq!(inc["recheck_due_at"], Value::Null);
    assert_eq!(inc["next"]["id"], "L3");
    assert_eq!(inc["last_run_id"], run.as_str());
    assert_eq!(
        case.rows(
            "SELECT level_id, state, due_at, json_extract(result, '$.recheck_run_id') \
             FROM escalations ORDER BY level"
        ),
        vec![
            vec![
                "L1".to_owned(),
                "fired".into(),
                fmt_ms(opened),
                "NULL".into()
            ],
            vec![
                "L2".to_owned(),
                "fired".into(),
                at(opened, "10m"),
                run.clone()
            ],
        ]
    );

    // Once: the same time again, and L2's own time, fire nothing.
    let doc = case.tick(opened, "11m", &[]);
    assert_eq!(doc["rechecks"], Value::Array(Vec::new()), "{doc}");
    assert_eq!(doc["escalations"]["fired"], Value::Array(Vec::new()));
    let doc = case.tick(opened, "31m", &[]);
    assert_eq!(
        doc["escalations"]["fired"],
        Value::Array(Vec::new()),
        "{doc}"
    );
    assert_eq!(case.recheck_runs().len(), 1);
    assert_eq!(case.received_for(OPS, "L2").len(), 1);
    // The ladder goes on by its times.
    let doc = case.tick(opened, "2h1m", &[]);
    assert_eq!(doc["escalations"]["fired"][0]["level_id"], "L3", "{doc}");
    case.assert_audit_verifies();
}

#[test]
fn a_dry_tick_lists_a_due_recheck_and_runs_nothing() {
    let case = Case::new();
    let opened = remediate_and_open(&case);
    let doc = case.tick(opened, "11m", &["--dry-run"]);
    assert_eq!(doc["rechecks"][0]["result"], "dry_run", "{doc}");
    assert_eq!(doc["rechecks"][0]["incident_id"], 1);
    assert!(case.recheck_runs().is_empty(), "a dry tick ran the recheck");
    assert_eq!(case.incident()["recheck_due_at"], at(opened, "10m"));
    let (code, out) = case.cli(&["tick", "--dry-run", "--now", &at(opened, "11m")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("recheck of incident #1 `fixable`") && out.contains("would re-run the checks"),
        "{out}"
    );
    assert!(case.received_for(OPS, "L2").is_empty());
    assert_eq!(case.pokes(), 1);
}

fn fmt_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[test]
fn a_symptom_gone_by_the_recheck_resolves_the_incident() {
    let case = Case::new();
    let opened = remediate_and_open(&case);
    case.make_healthy();
    let (code, out) = case.cli(&["tick", "--now", &at(opened, "11m")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("): resolved — the checks pass again"), "{out}");
    let runs = case.recheck_runs();
    assert_eq!(runs.len(), 1, "{out}");
    let run = &runs[0];
    assert_eq!(
        case.rows(&format!(
            "SELECT trigger, mode, outcome FROM runs WHERE id = '{run}'"
        )),
        [["recheck", "dry_run", "healthy"]]
    );
    assert!(case.incidents().is_empty(), "still listed");
    assert_eq!(
        case.rows("SELECT status, last_run_id, recheck_due_at FROM incidents"),
        [["resolved", run.as_str(), "NULL"]]
    );
    let doc = case.tick(opened, "31m", &[]);
    assert_eq!(
        doc["escalations"]["fired"],
        Value::Array(Vec::new()),
        "{doc}"
    );
    assert!(case.received_for(OPS, "L2").is_empty());
    assert_eq!(case.pokes(), 1);
    case.assert_audit_verifies();
}

#[test]
fn only_a_run_that_remediated_sets_the_recheck_and_one_that_did_not_leaves_it() {
    let case = Case::new();
    // No --yes, no terminal: the remedy waits for approval; nothing was changed.
    let (code, out) = case.run(false);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #1 opened"), "{out}");
    assert_eq!(case.pokes(), 0, "{out}");
    let inc = case.incident();
    let opened = time(inc["opened_at"].as_str().unwrap());
    assert_eq!(inc["recheck_due_at"], Value::Null, "{inc}");
    let doc = case.tick(opened, "11m", &[]);
    assert_eq!(doc["rechecks"], Value::Array(Vec::new()), "{doc}");
    assert!(case.recheck_runs().is_empty());

    // A remediation starts the clock from its own end.
    let before = Utc::now();
    let (code, out) = case.run(true);
    let after = Utc::now();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incident #1 still open"), "{out}");
    let due = case.incident()["recheck_due_at"].as_str().map_or_else(
        || panic!("no recheck after a remediation: {out}"),
        str::to_owned,
    );
    let ten = chrono::Duration::minutes(10);
    assert!(
        (before + ten - chrono::Duration::milliseconds(1)..=after + ten).contains(&time(&due)),
        "{due} is not 10 min after the remediating run"
    );

    // A later run that changed nothing leaves it where it was.
    let (code, out) = case.run(false);
    assert_eq!(code, 1, "{out}");
    assert_eq!(case.pokes(), 1);
    assert_eq!(case.incident()["recheck_due_at"], due.as_str());
    case.assert_audit_verifies();
}

#[test]
fn an_acknowledged_incident_is_rechecked_but_does_not_climb() {
    let case = Case::new();
    let opened = remediate_and_open(&case);
    let (code, out) = case.cli(&["ack", "1", "--by", "alice", "--now", &at(opened, "5m")]);
    assert_eq!(code, 0, "{out}");
    let doc = case.tick(opened, "11m", &[]);
    let recheck = &doc["rechecks"][0];
    assert_eq!(recheck["result"], "persists", "{doc}");
    assert!(
        recheck["reason"]
            .as_str()
            .is_some_and(|r| r.contains("acknowledged")),
        "{recheck}"
    );
    assert_eq!(recheck["fired"], Value::Null);
    let runs = case.recheck_runs();
    assert_eq!(runs.len(), 1);
    assert!(
        case.received_for(OPS, "L2").is_empty(),
        "an acked incident climbed"
    );
    let inc = case.incident();
    assert_eq!(inc["status"], "acked");
    assert_eq!(inc["level"]["id"], "L1");
    assert_eq!(inc["recheck_due_at"], Value::Null);
    assert_eq!(inc["last_run_id"], runs[0].as_str());
    assert_eq!(case.rows("SELECT COUNT(*) FROM escalations"), [["1"]]);
    case.assert_audit_verifies();
}

#[test]
fn concurrent_ticks_run_a_recheck_and_fire_its_level_exactly_once() {
    let case = Case::new();
    let opened = remediate_and_open(&case);
    let now = at(opened, "11m");
    let children: Vec<_> = (0..4)
        .map(|_| {
            case.cmd(&["tick", "--format", "json", "--now", &now])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut results = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        for r in doc["rechecks"].as_array().unwrap() {
            results.push(r["result"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        results.iter().filter(|r| *r == "escalated").count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().all(|r| r == "escalated" || r == "skipped"),
        "{results:?}"
    );
    assert_eq!(case.recheck_runs().len(), 1);
    assert_eq!(case.received_for(OPS, "L2").len(), 1);
    assert_eq!(case.received_for(SLACK, "L2").len(), 1);
    assert_eq!(
        case.rows("SELECT COUNT(*) FROM escalations WHERE level = 2"),
        [["1"]]
    );
    case.assert_audit_verifies();
}

#[test]
fn serve_performs_a_due_recheck_once() {
    let case = Case::new();
    let opened = remediate_and_open(&case);
    // Before it is due (and after, below) the server's scheduler clock decides.
    let early = case.serve(&at(opened, "5m"));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(case.recheck_runs().is_empty(), "{}", case.serve_log());
    assert_eq!(case.incident()["recheck_due_at"], at(opened, "10m"));
    drop(early);

    let _serve = case.serve(&at(opened, "11m"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while case.received_for(SLACK, "L2").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        case.received_for(SLACK, "L2").len(),
        1,
        "{}",
        case.serve_log()
    );
    // Two more polls of the background thread: nothing again.
    std::thread::sleep(Duration::from_millis(2500));
    let runs = case.recheck_runs();
    assert_eq!(runs.len(), 1, "{}", case.serve_log());
    assert_eq!(case.received_for(OPS, "L2").len(), 1);
    assert_eq!(case.received_for(SLACK, "L2").len(), 1);
    let log = case.serve_log();
    assert_eq!(
        log.matches("recheck of incident #1 `fixable`: escalated")
            .count(),
        1,
        "{log}"
    );
    let inc = case.incident();
    assert_eq!(inc["level"]["id"], "L2");
    assert_eq!(inc["recheck_due_at"], Value::Null);
    assert_eq!(inc["last_run_id"], runs[0].as_str());
    assert_eq!(case.pokes(), 1);
}
