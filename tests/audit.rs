//! The `SQLite` audit store end to end: real files in temp dirs, several stores and several
//! processes on one file, manual tampering, and a writer killed with SIGKILL.
//!
//! Child processes are this test binary re-run on the `helper_child` test with
//! `AUDIT_HELPER=<mode>` and `AUDIT_DB=<path>`; without the variable that test does nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use runbook::audit::{AuditStore, redact};
use runbook::exec::{Ledger, Outcome, RunInfo, StepKind, StepRecord, StepStatus};
use rusqlite::Connection;
use serde_json::{Value, json};

fn info(runbook: &str) -> RunInfo {
    RunInfo {
        runbook: runbook.to_owned(),
        runbook_sha256: "ab".repeat(32),
        trigger: "cli".to_owned(),
        params: json!({"service": "nginx", "token": "s3cret-token"}),
        host: "web1".to_owned(),
        user: "ops".to_owned(),
        mode: "real".to_owned(),
        origin: None,
    }
}

fn step(kind: StepKind, id: &str, status: StepStatus) -> StepRecord {
    StepRecord {
        kind,
        id: id.to_owned(),
        status,
        inputs: json!({"argv": ["systemctl", "restart", "nginx"]}),
        result: json!({"exit_code": 0, "stdout": "done with s3cret-token"}),
        decided_by: Some("exit_code = 0".to_owned()),
        guidance: None,
        started_at: "2025-01-01T00:00:00.000Z".to_owned(),
        duration_ms: 12,
    }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("audit.db")
}

/// Run this binary as a helper child; returns its stdout.
fn helper(mode: &str, db: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["helper_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("AUDIT_HELPER", mode)
        .env("AUDIT_DB", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

fn helper_output(mode: &str, db: &Path) -> String {
    let out = helper(mode, db).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value printed by a helper as `RESULT=<v>`.
fn result_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT=").map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no RESULT in helper output:\n{stdout}"))
        .to_owned()
}

#[test]
fn helper_child() {
    let Ok(mode) = std::env::var("AUDIT_HELPER") else {
        return;
    };
    let path = PathBuf::from(std::env::var("AUDIT_DB").unwrap());
    let store = AuditStore::open(&path).unwrap();
    match mode.as_str() {
        // Start a run, announce an action, and die without finishing.
        "abandon" => {
            let run = store.begin_run(&info("svc")).unwrap();
            store.intent(&run, "restart", &json!({})).unwrap();
            println!("RESULT={run}");
            std::process::exit(0);
        }
        // Take the lock and die holding it.
        "lock" => {
            let run = store.begin_run(&info("svc")).unwrap();
            println!("RESULT={}", store.lock("svc", &run).unwrap());
            std::process::exit(0);
        }
        // Try a limit many times; print how many were granted.
        "limit" => {
            let mut granted = 0;
            for _ in 0..40 {
                if store
                    .take_limit("svc/restart", 5, Duration::from_secs(3600))
                    .unwrap()
                {
                    granted += 1;
                }
            }
            println!("RESULT={granted}");
        }
        // Write runs forever, until killed.
        "writer" => loop {
            let run = store.begin_run(&info("svc")).unwrap();
            store
                .record(
                    &run,
                    None,
                    &step(StepKind::Check, "healthz", StepStatus::Failed),
                )
                .unwrap();
            let intent = store.intent(&run, "restart", &json!({"n": 1})).unwrap();
            store
                .record(
                    &run,
                    Some(intent),
                    &step(StepKind::Action, "restart", StepStatus::Ok),
                )
                .unwrap();
            store.finish_run(&run, Outcome::Remediated, 0).unwrap();
        },
        other => panic!("unknown helper mode {other}"),
    }
}

#[test]
fn migrations_set_user_version_on_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    drop(AuditStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 9);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    for table in [
        "runs",
        "steps",
        "audit_chain",
        "alerts",
        "incidents",
        "notifications",
        "action_limits",
        "run_locks",
        "tail_positions",
        "pending_reverts",
        "escalations",
    ] {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    // Reopening is idempotent.
    drop(AuditStore::open(&path).unwrap());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(AuditStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = AuditStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn round_trip_begin_intent_record_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    store.add_secrets(["s3cret-token".to_owned()]);
    let run = store.begin_run(&info("svc")).unwrap();
    store
        .record(
            &run,
            None,
            &step(StepKind::Check, "healthz", StepStatus::Failed),
        )
        .unwrap();
    let intent = store
        .intent(&run, "restart", &json!({"unit": "nginx"}))
        .unwrap();
    store
        .record(
            &run,
            Some(intent),
            &step(StepKind::Action, "restart", StepStatus::Ok),
        )
        .unwrap();
    store.finish_run(&run, Outcome::Remediated, 0).unwrap();

    let (summary, steps) = store.show(&run).unwrap().unwrap();
    assert_eq!(summary.outcome.as_deref(), Some("remediated"));
    assert_eq!(summary.exit_code, Some(0));
    assert_eq!(summary.params["token"], "***");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].kind, "check");
    assert_eq!(steps[0].status.as_deref(), Some("failed"));
    assert_eq!(steps[1].id, intent);
    assert_eq!(steps[1].state, "done");
    assert_eq!(steps[1].status.as_deref(), Some("ok"));
    assert_eq!(steps[1].result.as_ref().unwrap()["stdout"], "done with ***");
    // A prefix finds the run; history lists it.
    assert_eq!(store.show(&run[..12]).unwrap().unwrap().0.id, run);
    let hist = store.history(Some("svc"), 10).unwrap();
    assert_eq!(hist.len(), 1);
    assert!(store.history(Some("other"), 10).unwrap().is_empty());
    // Completing the same intent twice is refused.
    assert!(
        store
            .record(
                &run,
                Some(intent),
                &step(StepKind::Action, "restart", StepStatus::Ok)
            )
            .is_err()
    );

    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.rows, 3);
    // 1 run insert + 1 step insert + intent insert + intent update + run update.
    assert_eq!(report.entries, 5);

    let mut out = Vec::new();
    store.export(&mut out).unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["type"], "run");
    assert_eq!(lines[0]["hash"], report.head);
    assert_eq!(lines[1]["type"], "step");
    assert_eq!(lines[1]["inputs"]["argv"][0], "systemctl");
    assert!(!lines.iter().any(|l| l.to_string().contains("s3cret-token")));
    // Nothing secret anywhere in the file.
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let leaked: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE params LIKE '%s3cret%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaked, 0);
}

#[test]
fn intent_row_is_durable_before_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let run = store.begin_run(&info("svc")).unwrap();
    let intent = store
        .intent(&run, "restart", &json!({"unit": "nginx"}))
        .unwrap();
    // Another connection sees the committed intent while the action would be running.
    let other = Connection::open(&path).unwrap();
    let (state, step_id): (String, String) = other
        .query_row(
            "SELECT state, step_id FROM steps WHERE id = ?1",
            [intent],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), step_id.as_str()), ("intent", "restart"));
}

#[test]
fn take_limit_holds_across_stores_in_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(db(&dir));
    drop(AuditStore::open(&path).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let path = Arc::clone(&path);
            std::thread::spawn(move || {
                let store = AuditStore::open(&path).unwrap();
                (0..25)
                    .filter(|_| {
                        store
                            .take_limit("svc/restart", 7, Duration::from_secs(3600))
                            .unwrap()
                    })
                    .count()
            })
        })
        .collect();
    let granted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(granted, 7);
    // Another key has its own budget; an expired window frees the budget.
    let store = AuditStore::open(&path).unwrap();
    assert!(
        store
            .take_limit("other", 1, Duration::from_secs(3600))
            .unwrap()
    );
    assert!(
        store
            .take_limit("short", 1, Duration::from_millis(50))
            .unwrap()
    );
    assert!(
        !store
            .take_limit("short", 1, Duration::from_millis(50))
            .unwrap()
    );
    std::thread::sleep(Duration::from_millis(80));
    assert!(
        store
            .take_limit("short", 1, Duration::from_millis(50))
            .unwrap()
    );
}

#[test]
fn take_limit_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(AuditStore::open(&path).unwrap());
    let children: Vec<_> = (0..3)
        .map(|_| helper("limit", &path).spawn().unwrap())
        .collect();
    let granted: u32 = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            result_of(&String::from_utf8_lossy(&out.stdout))
                .parse::<u32>()
                .unwrap()
        })
        .sum();
    assert_eq!(granted, 5);
}

#[test]
fn manual_update_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let mut step_ids = Vec::new();
    for _ in 0..3 {
        let run = store.begin_run(&info("svc")).unwrap();
        store
            .record(
                &run,
                None,
                &step(StepKind::Check, "healthz", StepStatus::Ok),
            )
            .unwrap();
        let i = store.intent(&run, "restart", &json!({})).unwrap();
        store
            .record(
                &run,
                Some(i),
                &step(StepKind::Action, "restart", StepStatus::Ok),
            )
            .unwrap();
        step_ids.push(i);
        store.finish_run(&run, Outcome::Remediated, 0).unwrap();
    }
    assert!(store.verify().unwrap().is_ok());
    let target = step_ids[1];
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE steps SET result = '{\"exit_code\":1}' WHERE id = ?1",
            [target],
        )
        .unwrap();
    let report = store.verify().unwrap();
    let altered = report.altered.expect("altered row found");
    assert_eq!(
        (altered.table.as_str(), altered.id.clone()),
        ("steps", target.to_string())
    );
}

#[test]
fn manual_delete_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let run = store.begin_run(&info("svc")).unwrap();
    store
        .record(&run, None, &step(StepKind::Check, "a", StepStatus::Ok))
        .unwrap();
    store
        .record(&run, None, &step(StepKind::Check, "b", StepStatus::Ok))
        .unwrap();
    store.finish_run(&run, Outcome::Healthy, 0).unwrap();
    let conn = Connection::open(&path).unwrap();
    let first: i64 = conn
        .query_row("SELECT MIN(id) FROM steps", [], |r| r.get(0))
        .unwrap();
    conn.execute("DELETE FROM steps WHERE id = ?1", [first])
        .unwrap();
    let altered = store.verify().unwrap().altered.unwrap();
    assert_eq!(altered.table, "steps");
    assert_eq!(altered.id, first.to_string());
    assert_eq!(altered.reason, "deleted");

    // Deleting a chain entry breaks the link at the next entry.
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = db(&dir2);
    let store2 = AuditStore::open(&path2).unwrap();
    let run2 = store2.begin_run(&info("svc")).unwrap();
    store2
        .record(&run2, None, &step(StepKind::Check, "a", StepStatus::Ok))
        .unwrap();
    store2.finish_run(&run2, Outcome::Healthy, 0).unwrap();
    Connection::open(&path2)
        .unwrap()
        .execute("DELETE FROM audit_chain WHERE seq = 2", [])
        .unwrap();
    let altered = store2.verify().unwrap().altered.unwrap();
    assert_eq!(
        (altered.table.as_str(), altered.id.as_str()),
        ("audit_chain", "3")
    );

    // A row inserted behind the store's back is not in the chain.
    let dir3 = tempfile::tempdir().unwrap();
    let path3 = db(&dir3);
    let store3 = AuditStore::open(&path3).unwrap();
    let run3 = store3.begin_run(&info("svc")).unwrap();
    Connection::open(&path3)
        .unwrap()
        .execute(
            "INSERT INTO steps (run_id, seq, kind, step_id, state, inputs, started_at) \
             VALUES (?1, 9, 'check', 'x', 'done', '{}', 'now')",
            [&run3],
        )
        .unwrap();
    let altered = store3.verify().unwrap().altered.unwrap();
    assert_eq!(altered.table, "steps");
    assert!(altered.reason.contains("not in the chain"));
}

#[test]
fn redact_removes_secrets_from_nested_json() {
    let mut v = json!({
        "a": {"b": ["x", "Bearer tok-123", {"c": "tok-123tok-123"}]},
        "tok-123": 5,
        "n": null
    });
    redact(&mut v, &["tok-123".to_owned()]);
    assert!(!v.to_string().contains("tok-123"));
    assert_eq!(v["a"]["b"][1], "Bearer ***");
    assert_eq!(v["a"]["b"][2]["c"], "******");
    assert_eq!(v["***"], 5);
}

#[test]
fn unfinished_run_of_a_dead_process_is_interrupted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let run = result_of(&helper_output("abandon", &path));
    // A live process's unfinished run is left alone.
    let store = AuditStore::open(&path).unwrap();
    let mine = store.begin_run(&info("svc")).unwrap();
    let (summary, steps) = store.show(&run).unwrap().unwrap();
    assert_eq!(summary.outcome.as_deref(), Some("interrupted"));
    assert!(summary.finished_at.is_some());
    assert_eq!(steps[0].state, "intent");
    drop(store);
    let store = AuditStore::open(&path).unwrap();
    assert_eq!(store.show(&mine).unwrap().unwrap().0.outcome, None);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn lock_refused_while_held_and_taken_over_from_a_dead_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = AuditStore::open(&path).unwrap();
    let b = AuditStore::open(&path).unwrap();
    assert!(a.lock("svc", "run-a").unwrap());
    assert!(!b.lock("svc", "run-b").unwrap());
    assert!(b.lock("other", "run-b").unwrap());
    a.unlock("svc", "run-a").unwrap();
    assert!(b.lock("svc", "run-b").unwrap());
    b.unlock("svc", "run-b").unwrap();

    assert_eq!(result_of(&helper_output("lock", &path)), "true");
    // The holder exited without unlocking: its lock is stale.
    assert!(a.lock("svc", "run-c").unwrap());
    assert!(!b.lock("svc", "run-d").unwrap());
}

#[test]
fn sigkill_during_writes_leaves_a_consistent_verifiable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(AuditStore::open(&path).unwrap());
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for _ in 0..12 {
        let mut child = helper("writer", &path).spawn().unwrap();
        // xorshift: a different moment each round.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        std::thread::sleep(Duration::from_millis(60 + u64::from(seed % 200)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
    }
    let store = AuditStore::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    let runs: i64 = conn
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert!(runs > 0, "the writer wrote nothing before it was killed");
    let unfinished: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE finished_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0, "every killed run is marked interrupted");
    let interrupted: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE outcome = 'interrupted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(interrupted > 0, "no kill landed inside a run");
}

#[test]
fn approvals_are_chained_and_those_of_an_older_file_are_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let run = store.begin_run(&info("svc")).unwrap();
    let now = chrono::Utc::now();
    let a = store
        .add_approval(&run, "restart", "alice", Duration::from_secs(600), now)
        .unwrap();
    assert_eq!(
        store.use_approval(a.id, now).unwrap(),
        runbook::audit::ApprovalUse::Taken
    );
    store.approval_rerun(a.id, &run).unwrap();
    assert!(store.verify().unwrap().is_ok());

    // Who approved is evidence: changing it behind the store's back is found.
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE approvals SET approved_by = 'mallory'", [])
        .unwrap();
    let report = store.verify().unwrap();
    assert!(!report.is_ok(), "{report:?}");
    assert!(format!("{report:?}").contains("approvals"), "{report:?}");
    conn.execute("UPDATE approvals SET approved_by = 'alice'", [])
        .unwrap();
    assert!(store.verify().unwrap().is_ok());
    drop(store);

    // A file from before version 8: an approval row with no chain entry, adopted on open.
    conn.execute_batch(
        "DELETE FROM audit_chain WHERE tbl = 'approvals';
         PRAGMA user_version = 7;",
    )
    .unwrap();
    drop(conn);
    let store = AuditStore::open(&path).unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_server_run_records_its_key_alert_and_delivery_in_its_first_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO alerts (received_at, source, group_key, dedup_key, runbook, payload) \
         VALUES ('2025-01-01T00:00:00.000Z', 'alertmanager', 'g', 'd', 'rb', '{}')",
        [],
    )
    .unwrap();
    let delivery = conn.last_insert_rowid();
    let alert = json!({"labels": {"alertname": "X"}, "fingerprint": "f1"});
    let run = store
        .begin_run(&RunInfo {
            origin: Some(runbook::exec::Origin {
                key: "f1".into(),
                alert: Some(alert.clone()),
                delivery: Some(delivery),
            }),
            ..info("rb")
        })
        .unwrap();
    // While the run is still going: the delivery names it (a restart will not run it again)
    // and its context is there for an approval.
    let marked: Option<String> = conn
        .query_row("SELECT run_id FROM alerts WHERE id = ?1", [delivery], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(marked.as_deref(), Some(run.as_str()));
    let (key, recorded) = store.run_context(&run).unwrap().expect("a context row");
    assert_eq!(key, "f1");
    assert_eq!(recorded, Some(alert));
    // A delivery that has its run already keeps it.
    let other = store
        .begin_run(&RunInfo {
            origin: Some(runbook::exec::Origin {
                key: "f1".into(),
                alert: None,
                delivery: Some(delivery),
            }),
            ..info("rb")
        })
        .unwrap();
    let still: String = conn
        .query_row("SELECT run_id FROM alerts WHERE id = ?1", [delivery], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(still, run);
    assert_eq!(store.run_context(&other).unwrap().unwrap().1, None);
    // A run with no origin has no context.
    let cli = store.begin_run(&info("rb")).unwrap();
    assert!(store.run_context(&cli).unwrap().is_none());
}

/// A server run with an origin: its `run_context` row holds `alert`.
fn server_run(store: &AuditStore, alert: &Value) -> String {
    store
        .begin_run(&RunInfo {
            origin: Some(runbook::exec::Origin {
                key: "f1".into(),
                alert: Some(alert.clone()),
                delivery: None,
            }),
            ..info("rb")
        })
        .unwrap()
}

fn slot(hour: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc
        .with_ymd_and_hms(2025, 1, 1, hour, 0, 0)
        .single()
        .unwrap()
}

/// The ops of the chain entries of `table`, in order.
fn chain_ops(conn: &Connection, table: &str) -> Vec<String> {
    conn.prepare("SELECT op FROM audit_chain WHERE tbl = ?1 ORDER BY seq")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_changed_run_context_alert_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let alert = json!({"labels": {"alertname": "DiskFull"}, "fingerprint": "f1"});
    let run = server_run(&store, &alert);
    store.finish_run(&run, Outcome::Remediated, 0).unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(chain_ops(&conn, "run_context"), ["insert"]);
    assert!(store.verify().unwrap().is_ok());

    // An approval re-runs with this alert: pointing it at another one is found.
    conn.execute(
        "UPDATE run_context SET alert = '{\"fingerprint\":\"f2\"}' WHERE run_id = ?1",
        [&run],
    )
    .unwrap();
    let altered = store.verify().unwrap().altered.expect("altered row found");
    assert_eq!(
        (altered.table.as_str(), altered.id.as_str()),
        ("run_context", run.as_str())
    );
    assert_eq!(altered.reason, "content does not match its hash");

    conn.execute("DELETE FROM run_context WHERE run_id = ?1", [&run])
        .unwrap();
    let altered = store.verify().unwrap().altered.expect("deleted row found");
    assert_eq!(
        (
            altered.table.as_str(),
            altered.id.as_str(),
            altered.reason.as_str()
        ),
        ("run_context", run.as_str(), "deleted")
    );
}

#[test]
fn a_changed_or_deleted_schedule_slot_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    assert!(store.claim_slot("morning", slot(7), slot(7)).unwrap());
    assert!(store.claim_slot("morning", slot(8), slot(8)).unwrap());
    // A slot not after the last one is refused and chains nothing.
    assert!(!store.claim_slot("morning", slot(7), slot(8)).unwrap());
    assert!(store.claim_slot("nightly", slot(2), slot(2)).unwrap());
    let conn = Connection::open(&path).unwrap();
    assert_eq!(
        chain_ops(&conn, "schedule_slots"),
        ["insert", "update", "insert"]
    );
    assert!(store.verify().unwrap().is_ok());

    // Setting the claimed slot back would run the 08:00 slot again.
    let claimed: String = conn
        .query_row(
            "SELECT slot FROM schedule_slots WHERE runbook = 'morning'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE schedule_slots SET slot = '2025-01-01T07:00:00.000Z' WHERE runbook = 'morning'",
        [],
    )
    .unwrap();
    let altered = store.verify().unwrap().altered.expect("altered row found");
    assert_eq!(
        (altered.table.as_str(), altered.id.as_str()),
        ("schedule_slots", "morning")
    );
    assert_eq!(altered.reason, "content does not match its hash");
    conn.execute(
        "UPDATE schedule_slots SET slot = ?1 WHERE runbook = 'morning'",
        [&claimed],
    )
    .unwrap();
    assert!(store.verify().unwrap().is_ok());

    // Deleting the row would run the next slot even if it was claimed.
    conn.execute("DELETE FROM schedule_slots WHERE runbook = 'nightly'", [])
        .unwrap();
    let altered = store.verify().unwrap().altered.expect("deleted row found");
    assert_eq!(
        (
            altered.table.as_str(),
            altered.id.as_str(),
            altered.reason.as_str()
        ),
        ("schedule_slots", "nightly", "deleted")
    );
}

#[test]
fn schedule_slots_and_run_context_of_an_older_file_are_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = AuditStore::open(&path).unwrap();
    let run = store.begin_run(&info("rb")).unwrap();
    store.finish_run(&run, Outcome::Healthy, 0).unwrap();

    // A file from before version 9: rows written with no chain entry.
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO run_context (run_id, key, alert) VALUES (?1, 'f1', '{\"fingerprint\":\"f1\"}')",
        [&run],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO schedule_slots (runbook, slot, claimed_at) VALUES
             ('morning', '2025-01-01T08:00:00.000Z', '2025-01-01T08:00:00.012Z'),
             ('nightly', '2025-01-01T02:00:00.000Z', '2025-01-01T02:00:00.034Z');",
    )
    .unwrap();
    let altered = store.verify().unwrap().altered.expect("unchained rows");
    assert_eq!(
        (altered.table.as_str(), altered.id.as_str()),
        ("schedule_slots", "morning")
    );
    assert!(altered.reason.contains("not in the chain"), "{altered:?}");
    drop(store);
    conn.pragma_update(None, "user_version", 8).unwrap();

    let store = AuditStore::open(&path).unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(chain_ops(&conn, "schedule_slots"), ["adopt", "adopt"]);
    assert_eq!(chain_ops(&conn, "run_context"), ["adopt"]);
    // Adopted rows are protected from then on.
    conn.execute("UPDATE run_context SET key = 'f2'", [])
        .unwrap();
    let altered = store.verify().unwrap().altered.expect("altered row found");
    assert_eq!(
        (altered.table.as_str(), altered.id.as_str()),
        ("run_context", run.as_str())
    );
}
