//! No audit, no action (design §4–5) when the audit database's filesystem fails: full before
//! the run, full in the middle of it, and read-only. The database lives on a small tmpfs
//! mounted in a private mount namespace (each test re-runs itself under `unshare -r -m`, like
//! `tests/sim_e2e.rs`); the runbook's remedy touches a marker *outside* that tmpfs, so an
//! action that ran without its intent row would show. Every loop is bounded; no network.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use insta_cmd::get_cargo_bin;
mod record;

const IN_NAMESPACE: &str = "RUNBOOK_AUDIT_DISK_IN_NAMESPACE";

/// The check fails until `{dir}/ok` exists; the remedy touches `{dir}/marker`. The first check
/// runs `{fill}` (a shell command line; `true` by default) so a run can fill the disk itself;
/// so can the remedy's first action, `fill_disk`, before `touch` (2 MiB into `{ballast}`).
const RUNBOOK: &str = r#"runbook: diskfault
title: Disk fault (test)
severity: P3
params:
  dir: { type: path, default: /nonexistent }
  fill: { type: string, default: "true" }
  ballast: { type: path, default: /dev/null }
checks:
  - id: fill
    probe: command
    with: { run: ["sh", "-c", "{{ params.fill }}"] }
    timeout: 20s
    expect: "exit_code == 0"
  - id: ok_file
    probe: file
    with: { path: "{{ params.dir }}/ok" }
    expect: "exists"
causes:
  - id: missing
    title: The ok file is missing
    when: checks.ok_file.failed
    remedy: [fill_disk, touch]
    verify: [ok_file]
actions:
  - id: fill_disk
    shell: 'head -c 2097152 /dev/zero > "$BALLAST"; true'
    env: { BALLAST: "{{ params.ballast }}" }
    timeout: 20s
    limit: { max: 100, per: 1h }
  - id: touch
    run: ["touch", "{{ params.dir }}/marker"]
    limit: { max: 100, per: 1h }
"#;

/// Re-run the test `name` inside a user + mount namespace, where it may mount a tmpfs.
fn in_namespace(name: &str) {
    let status = Command::new("unshare")
        .args(["-r", "-m", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .status()
        .expect("unshare (util-linux) runs");
    assert!(
        status.success(),
        "the test inside the namespace failed: {status}"
    );
}

fn inside() -> bool {
    std::env::var_os(IN_NAMESPACE).is_some()
}

/// A temp dir with `runbooks/` (seed policy.yaml and [`RUNBOOK`]) and `fs/`, a 1 MiB tmpfs
/// holding the audit database `fs/audit.db`.
struct Case {
    dir: tempfile::TempDir,
}

/// What one invocation of the binary did.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
            rb.join("policy.yaml"),
        )
        .unwrap();
        std::fs::write(rb.join("diskfault.yaml"), RUNBOOK).unwrap();
        let fs = dir.path().join("fs");
        std::fs::create_dir(&fs).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&fs)
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs in the namespace");
        Case { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn fs(&self) -> PathBuf {
        self.path("fs")
    }

    fn db(&self) -> PathBuf {
        self.fs().join("audit.db")
    }

    fn marker(&self) -> PathBuf {
        self.path("marker")
    }

    fn cli(&self, args: &[&str]) -> Out {
        let out = Command::new(get_cargo_bin("runbook"))
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_DB")
            .stdin(Stdio::null())
            .args(["--runbooks", "runbooks", "--db"])
            .arg(self.db())
            .args(args)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `run diskfault --yes` with `dir` set to the case dir, and `extra` sets.
    fn run(&self, extra: &[&str]) -> Out {
        let dir = format!("dir={}", self.dir.path().display());
        let mut args = vec!["run", "diskfault", "--yes", "--set", &dir];
        for s in extra {
            args.extend(["--set", s]);
        }
        self.cli(&args)
    }

    /// A healthy run: the database exists, with one finished run in it; no marker.
    fn healthy_run(&self) {
        std::fs::write(self.path("ok"), "").unwrap();
        let out = self.run(&[]);
        assert_eq!(out.code, 0, "{}", out.why());
        assert!(self.db().exists());
        assert!(!self.marker().exists());
        std::fs::remove_file(self.path("ok")).unwrap();
    }

    /// Fill the tmpfs: write zeros into `fs/ballast` until ENOSPC (bounded by its size).
    fn fill(&self) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.fs().join("ballast"))
            .unwrap();
        let chunk = [0u8; 4096];
        // 1 MiB / 4 KiB pages, with room to spare: the loop ends at ENOSPC long before.
        for _ in 0..1024 {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // The last, partial page too.
        for _ in 0..4096 {
            match f.write(&chunk[..1]) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let err = f.write(&chunk[..1]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    }

    /// `show` of the newest run.
    fn show_newest(&self) -> Out {
        let h = self.cli(&["history", "--format", "json", "--limit", "1"]);
        assert_eq!(h.code, 0, "{}", h.why());
        let runs: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
        let id = runs[0]["id"].as_str().unwrap().to_owned();
        self.cli(&["show", &id])
    }

    /// The run refused to act: exit 3, the audit trail named, no marker.
    fn assert_refused(&self, out: &Out, what: &str) {
        let why = out.why();
        assert_eq!(out.code, 3, "{what}: exit 3 (fault)\n{why}");
        assert!(
            out.stderr.contains("audit trail"),
            "{what}: stderr names the audit trail\n{why}"
        );
        assert!(
            out.stderr.contains("no audit, no action") && out.stderr.contains("audit.db"),
            "{what}: stderr says why nothing ran and which file\n{why}"
        );
        assert!(
            !self.marker().exists(),
            "{what}: the action ran without its intent row\n{why}"
        );
    }
}

impl Out {
    fn why(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

#[test]
fn a_full_disk_before_the_first_run_refuses_to_act() {
    if !inside() {
        return in_namespace("a_full_disk_before_the_first_run_refuses_to_act");
    }
    let c = Case::new();
    c.fill();
    let out = c.run(&[]);
    eprintln!("full disk, no database yet:\n{}", out.why());
    c.assert_refused(&out, "full disk, no database yet");
    assert!(out.stderr.contains("no audit, no action"), "{}", out.why());
    assert!(
        out.stderr.contains("database or disk is full"),
        "{}",
        out.why()
    );
    record::row(
        file!(),
        "a_full_disk_before_the_first_run_refuses_to_act",
        "`run --yes` with the audit DB on a full 1 MiB tmpfs, no DB yet",
        "1 run, in its own user and mount namespace",
        "exit 3, no audit no action, the DB named; the remedy never ran",
    );
}

#[test]
fn a_full_disk_under_an_existing_database_refuses_to_act() {
    if !inside() {
        return in_namespace("a_full_disk_under_an_existing_database_refuses_to_act");
    }
    let c = Case::new();
    c.healthy_run();
    c.fill();
    let out = c.run(&[]);
    eprintln!("full disk, database exists:\n{}", out.why());
    c.assert_refused(&out, "full disk, database exists");
    record::row(
        file!(),
        "a_full_disk_under_an_existing_database_refuses_to_act",
        "`run --yes` with an existing audit DB on a full tmpfs",
        "1 run, in its own user and mount namespace",
        "exit 3; the remedy never ran",
    );
}

#[test]
fn a_disk_that_fills_during_the_run_stops_it_before_the_action() {
    if !inside() {
        return in_namespace("a_disk_that_fills_during_the_run_stops_it_before_the_action");
    }
    let c = Case::new();
    c.healthy_run();
    // The first check fills the tmpfs (head stops at ENOSPC; 2 MiB bounds it anyway).
    let fill = format!(
        "fill=head -c 2097152 /dev/zero > {}/ballast; true",
        c.fs().display()
    );
    let out = c.run(&[&fill]);
    eprintln!("disk filled mid-run:\n{}", out.why());
    assert!(
        std::fs::metadata(c.fs().join("ballast")).unwrap().len() > 0,
        "the check wrote the ballast"
    );
    c.assert_refused(&out, "disk filled mid-run");
    // Space again: the next open marks the stopped run interrupted; the chain still holds.
    std::fs::remove_file(c.fs().join("ballast")).unwrap();
    let show = c.show_newest();
    assert!(
        show.stdout.contains("outcome interrupted"),
        "{}",
        show.why()
    );
    assert!(!show.stdout.contains("touch"), "{}", show.why());
    let verify = c.cli(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.why());
    record::row(
        file!(),
        "a_disk_that_fills_during_the_run_stops_it_before_the_action",
        "a check fills the audit tmpfs during the run",
        "1 run, in its own user and mount namespace",
        "exit 3 before the action; next open marks the run interrupted; `audit verify` ok",
    );
}

#[test]
fn a_read_only_database_refuses_to_act() {
    if !inside() {
        return in_namespace("a_read_only_database_refuses_to_act");
    }
    let c = Case::new();
    c.healthy_run();
    let st = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(c.fs())
        .status()
        .unwrap();
    assert!(st.success(), "remount the tmpfs read-only");
    let out = c.run(&[]);
    eprintln!("read-only:\n{}", out.why());
    c.assert_refused(&out, "read-only");
    assert!(out.stderr.contains("readonly database"), "{}", out.why());
    // The read-only verbs still read it: the WAL and its index are there from the healthy run.
    let h = c.cli(&["history", "--format", "json"]);
    assert_eq!(h.code, 0, "history on a read-only database\n{}", h.why());
    let runs: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the healthy run\n{}", h.why());
    let id = runs[0]["id"].as_str().unwrap();
    for verb in [&["show", id][..], &["report", id], &["audit", "verify"]] {
        let out = c.cli(verb);
        assert_eq!(
            out.code,
            0,
            "{verb:?} on a read-only database\n{}",
            out.why()
        );
    }
    record::row(
        file!(),
        "a_read_only_database_refuses_to_act",
        "`run --yes` with the audit tmpfs remounted read-only",
        "1 run, in its own user and mount namespace",
        "exit 3; `history`, `show`, `report`, `audit verify` still read it",
    );
}

#[test]
fn a_disk_filled_by_the_previous_action_stops_the_run_before_the_next() {
    if !inside() {
        return in_namespace("a_disk_filled_by_the_previous_action_stops_the_run_before_the_next");
    }
    let c = Case::new();
    c.healthy_run();
    // The checks and the first action's intent are recorded; then that action fills the disk.
    let fill = format!("ballast={}/ballast", c.fs().display());
    let out = c.run(&[&fill]);
    eprintln!("disk filled by an action:\n{}", out.why());
    c.assert_refused(&out, "disk filled by an action");
    // The first action's intent is on record, without a result; `touch` has no row at all.
    std::fs::remove_file(c.fs().join("ballast")).unwrap();
    let show = c.show_newest();
    let why = show.why();
    assert!(show.stdout.contains("outcome interrupted"), "{why}");
    assert!(
        show.stdout
            .lines()
            .any(|l| l.contains("fill_disk") && l.contains("intent, no result")),
        "{why}"
    );
    assert!(!show.stdout.contains("touch"), "{why}");
    let verify = c.cli(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.why());
    record::row(
        file!(),
        "a_disk_filled_by_the_previous_action_stops_the_run_before_the_next",
        "the remedy's first action fills the audit tmpfs",
        "1 run, in its own user and mount namespace",
        "exit 3; the second action never ran and has no intent row",
    );
}
