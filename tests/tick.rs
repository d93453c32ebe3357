//! `revert_after` and `runbook tick` end to end: the real binary, a runbook in a temp dir whose
//! remedy makes a temporary change (touches a flag file) and whose rollback appends a line to a
//! log and removes the flag, a real `SQLite` audit file read back with rusqlite.

mod cli_case;

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use insta_cmd::get_cargo_bin;
use rusqlite::Connection;
use serde_json::Value;

use cli_case::{CliCase, text};

/// Long after any `revert_after` of these tests.
const LATER: &str = "2099-01-01T00:00:00Z";

/// `verify` is `flag` (passes once the remedy ran) or `never` (always fails).
fn runbook(revert_after: &str, verify: &str) -> String {
    format!(
        r#"runbook: tmpchange
title: Temporary change
severity: P1
params:
  dir: {{ type: path, default: /nonexistent }}
  log: {{ type: path, default: /nonexistent/log }}
  token: {{ type: string, default: "tok-from-definition", secret: true }}
checks:
  - id: flag
    probe: file
    with: {{ path: "{{{{ params.dir }}}}/flag" }}
    expect: "exists"
  - id: never
    probe: file
    with: {{ path: "{{{{ params.dir }}}}/never" }}
    expect: "exists"
causes:
  - id: no_flag
    title: No flag
    when: checks.flag.failed
    remedy: [make_flag]
    verify: [{verify}]
actions:
  - id: make_flag
    run: [touch, "{{{{ params.dir }}}}/flag"]
    rollback: [unmake_flag]
    revert_after: {revert_after}
    limit: {{ max: 100, per: 1h }}
  - id: unmake_flag
    shell: 'echo "reverted $DIR $TOKEN" >> "$LOG"; rm -f "$DIR/flag"'
    env: {{ DIR: "{{{{ params.dir }}}}", LOG: "{{{{ params.log }}}}", TOKEN: "{{{{ params.token }}}}" }}
    limit: {{ max: 100, per: 1h }}
escalation: {{ ladder: p3d }}
"#
    )
}

struct Case {
    base: CliCase,
}

impl Deref for Case {
    type Target = CliCase;

    fn deref(&self) -> &CliCase {
        &self.base
    }
}

impl Case {
    fn new(revert_after: &str, verify: &str) -> Self {
        let case = CliCase::new(
            "tmpchange.yaml",
            &runbook(revert_after, verify),
            std::convert::identity,
        );
        Case { base: case }
    }

    fn log(&self) -> PathBuf {
        self.path("reverts.log")
    }

    /// `run tmpchange --yes` making the change in `sub` (created), with a secret set.
    fn run_change(&self, sub: &str) -> (i32, String) {
        let d = self.path(sub);
        std::fs::create_dir_all(&d).unwrap();
        let (dir, log) = (
            format!("dir={}", d.display()),
            format!("log={}", self.log().display()),
        );
        self.cli(&[
            "run",
            "tmpchange",
            "--yes",
            "--set",
            &dir,
            "--set",
            &log,
            "--set",
            "token=SECRET-7788",
        ])
    }

    /// `tick --format json` with `extra`; the exit code and the document.
    fn tick_json(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["tick", "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.cmd(&args).output().unwrap();
        let doc = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("tick output is not JSON ({e}): {}", text(&out)));
        (out.status.code().unwrap_or(-1), doc)
    }

    /// (state, `revert_run_id`, result) of every pending revert row, in id order.
    fn reverts(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let conn = Connection::open(self.db()).unwrap();
        let mut stmt = conn
            .prepare("SELECT state, revert_run_id, result FROM pending_reverts ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn assert_audit_verifies(&self) {
        let (code, out) = self.cli(&["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("ok:"), "{out}");
    }
}

#[test]
fn a_temporary_change_is_reverted_by_tick_once_due_and_only_with_approval() {
    let case = Case::new("1h", "flag");
    // No database yet: nothing due, and a cron tick does not create one.
    let (code, out) = case.cli(&["tick"]);
    assert_eq!((code, out.trim()), (0, "nothing due"));
    assert!(!case.db().exists());

    let (code, out) = case.run_change("a");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("temporary change `make_flag`"), "{out}");
    assert!(case.path("a/flag").exists());
    let rows = case.reverts();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "pending");
    let conn = Connection::open(case.db()).unwrap();
    let (params, rollback, due_at, created_at): (String, String, String, String) = conn
        .query_row(
            "SELECT params, rollback, due_at, created_at FROM pending_reverts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    drop(conn);
    let params: Value = serde_json::from_str(&params).unwrap();
    assert_eq!(params["token"], "***", "a secret param rests in the ledger");
    assert_eq!(rollback, r#"["unmake_flag"]"#);
    let due = chrono::DateTime::parse_from_rfc3339(&due_at).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(&created_at).unwrap();
    let after = (due - created).num_seconds();
    assert!(
        (3590..=3600).contains(&after),
        "due {after} s after the run"
    );

    // Not due yet.
    let (code, doc) = case.tick_json(&["--yes"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["due"], 0, "{doc}");
    assert_eq!(case.cli(&["tick", "--yes"]).1.trim(), "nothing due");

    // A dry run says what it would do and runs nothing.
    let (code, out) = case.cli(&["tick", "--dry-run", "--yes", "--now", LATER]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would run `unmake_flag`"), "{out}");
    assert!(case.log_lines().is_empty(), "a dry run ran the rollback");
    assert!(case.path("a/flag").exists());
    assert_eq!(case.reverts()[0].0, "pending");

    // No --yes and no terminal: needs approval, stays pending.
    let (code, doc) = case.tick_json(&["--now", LATER]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["reverts"][0]["result"], "pending", "{doc}");
    assert_eq!(doc["reverts"][0]["steps"][0]["status"], "needs_approval");
    assert!(case.log_lines().is_empty(), "ran without approval");
    assert_eq!(case.reverts()[0].0, "pending");

    // With --yes: performed, as a run of its own triggered by `tick`.
    let (code, doc) = case.tick_json(&["--yes", "--now", LATER]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["reverts"][0]["result"], "done", "{doc}");
    assert_eq!(doc["reverts"][0]["steps"][0]["kind"], "rollback");
    assert!(!case.path("a/flag").exists(), "the change was not undone");
    // Secrets come from their definitions again, never from the ledger.
    let a = case.path("a");
    assert_eq!(
        case.log_lines(),
        vec![format!("reverted {} tok-from-definition", a.display())]
    );
    let rows = case.reverts();
    assert_eq!(rows[0].0, "done");
    let revert_run = rows[0].1.clone().expect("no revert run recorded");
    let conn = Connection::open(case.db()).unwrap();
    let (trigger, outcome): (String, String) = conn
        .query_row(
            "SELECT trigger, outcome FROM runs WHERE id = ?1",
            [&revert_run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((trigger.as_str(), outcome.as_str()), ("tick", "remediated"));
    let intents: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM steps WHERE run_id = ?1 AND kind = 'rollback' AND state = 'done'",
            [&revert_run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(intents, 1, "the rollback has no completed intent row");
    drop(conn);

    // Done is done.
    let (code, out) = case.cli(&["tick", "--yes", "--now", LATER]);
    assert_eq!((code, out.trim()), (0, "nothing due"));
    assert_eq!(case.log_lines().len(), 1);

    for ext in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{ext}", case.db().display())).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRET-7788"),
            "secret in the audit file{ext}"
        );
    }
    case.assert_audit_verifies();
}

#[test]
fn revert_after_counts_real_time() {
    let case = Case::new("1s", "flag");
    let (code, out) = case.run_change("a");
    assert_eq!(code, 0, "{out}");
    let ran = Instant::now();
    let mut done = None;
    for _ in 0..50 {
        let (code, doc) = case.tick_json(&["--yes"]);
        if doc["due"] != 0 {
            done = Some((code, doc, ran.elapsed()));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, doc, elapsed) = done.expect("the revert never came due");
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["reverts"][0]["result"], "done", "{doc}");
    assert!(
        elapsed >= Duration::from_millis(800),
        "performed {elapsed:?} after the run, before its 1 s"
    );
    assert_eq!(case.log_lines().len(), 1);
    assert_eq!(case.reverts()[0].0, "done");
    case.assert_audit_verifies();
}

#[test]
fn two_concurrent_ticks_perform_each_revert_exactly_once() {
    let case = Case::new("1h", "flag");
    let n = 4;
    for i in 0..n {
        let (code, out) = case.run_change(&format!("d{i}"));
        assert_eq!(code, 0, "{out}");
    }
    assert_eq!(case.reverts().len(), n);
    let children: Vec<_> = (0..2)
        .map(|_| {
            case.cmd(&["tick", "--yes", "--now", LATER])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let mut lines = case.log_lines();
    lines.sort();
    let mut expected: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "reverted {} tok-from-definition",
                case.path(&format!("d{i}")).display()
            )
        })
        .collect();
    expected.sort();
    assert_eq!(lines, expected, "each rollback must run exactly once");
    assert!(case.reverts().iter().all(|r| r.0 == "done"));
    case.assert_audit_verifies();
}

#[test]
fn a_failed_verification_that_rolled_back_leaves_no_pending_revert() {
    let case = Case::new("1h", "never");
    let (code, out) = case.run_change("a");
    assert_eq!(code, 1, "{out}");
    assert_eq!(case.log_lines().len(), 1, "the rollback did not run: {out}");
    let rows = case.reverts();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "cancelled", "{rows:?}");
    // No revert is due; the problem the failed run left is an incident, whose top level
    // (p3d: L3) is due by then.
    let (code, doc) = case.tick_json(&["--yes", "--now", LATER]);
    assert_eq!((code, &doc["due"]), (0, &Value::from(0)), "{doc}");
    assert_eq!(doc["escalations"]["fired"][0]["level_id"], "L3", "{doc}");
    assert_eq!(case.log_lines().len(), 1, "rolled back twice");
    case.assert_audit_verifies();
}

#[test]
fn a_revert_whose_runbook_or_action_is_gone_fails_with_a_reason() {
    // The rollback action removed from the runbook.
    let case = Case::new("1h", "flag");
    let (code, out) = case.run_change("a");
    assert_eq!(code, 0, "{out}");
    let without_rollback = runbook("1h", "flag")
        .replace("    rollback: [unmake_flag]\n    revert_after: 1h\n", "")
        .split("  - id: unmake_flag")
        .next()
        .unwrap()
        .to_owned()
        + "escalation: { ladder: p3d }\n";
    std::fs::write(case.path("runbooks/tmpchange.yaml"), without_rollback).unwrap();
    let (code, out) = case.cli(&["validate"]);
    assert_eq!(code, 0, "the edited runbook does not compile: {out}");
    let (code, doc) = case.tick_json(&["--yes", "--now", LATER]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["reverts"][0]["result"], "failed", "{doc}");
    let reason = doc["reverts"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no action `unmake_flag`"), "{reason}");
    let rows = case.reverts();
    assert_eq!(rows[0].0, "failed");
    assert!(
        rows[0]
            .2
            .as_deref()
            .is_some_and(|r| r.contains("unmake_flag")),
        "{rows:?}"
    );

    // The whole runbook gone (another one left, so the directory is right).
    let case = Case::new("1h", "flag");
    let (code, out) = case.run_change("a");
    assert_eq!(code, 0, "{out}");
    std::fs::remove_file(case.path("runbooks/tmpchange.yaml")).unwrap();
    std::fs::write(
        case.path("runbooks/other.yaml"),
        "runbook: other\ntitle: Other\nseverity: P3\nchecks:\n  - id: c\n    probe: file\n    with: { path: /nonexistent }\n",
    )
    .unwrap();
    let (code, out) = case.cli(&["tick", "--yes", "--now", LATER]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed"), "{out}");
    assert!(out.contains("no longer in"), "{out}");
    assert_eq!(case.reverts()[0].0, "failed");
    assert!(case.log_lines().is_empty());
    let (code, out) = case.cli(&["tick", "--yes", "--now", LATER]);
    assert_eq!((code, out.trim()), (0, "nothing due"));
    case.assert_audit_verifies();
}

#[test]
fn probe_help_kind_prints_the_probe_documentation() {
    let run = |args: &[&str]| {
        let out = Command::new(get_cargo_bin("runbook"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, help) = run(&["probe", "--help", "jsonl"]);
    assert_eq!(code, Some(0), "{help}");
    assert!(help.contains("`jsonl`"), "{help}");
    assert_eq!(run(&["probe", "jsonl", "--doc"]), (Some(0), help.clone()));
    assert_eq!(run(&["probe", "jsonl", "--help"]), (Some(0), help));
    let (code, usage) = run(&["probe", "--help"]);
    assert_eq!(code, Some(0), "{usage}");
    assert!(usage.contains("Usage: runbook probe"), "{usage}");
    assert!(usage.contains("Example"), "{usage}");
    let (code, _) = run(&["probe"]);
    assert_eq!(code, Some(2), "no kind is a usage error");
}
