//! The CLI harness of the end-to-end tests that drive the `runbook` binary one process per
//! step (`tests/recheck.rs`, `tests/escalation.rs`, `tests/tick.rs`): a [`CliCase`] is a temp
//! dir with `runbooks/` (the seed policy.yaml and one runbook) and an audit DB path, and
//! [`CliCase::cmd`] runs the real binary on it.
//!
//! It is a module of its own, apart from `tests/common` (the serve tests' harness), so that
//! neither carries code the other's crates leave unused. Each test crate compiles this module
//! on its own, so everything here is used by all three; what one file alone needs stays in
//! that file, in an `impl` block of its own `Case` (which derefs to [`CliCase`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use insta_cmd::get_cargo_bin;
use serde_json::Value;

/// A temp dir with `runbooks/` in it; the audit DB is `audit.db` there.
pub struct CliCase {
    pub dir: tempfile::TempDir,
}

impl CliCase {
    /// A new temp dir whose `runbooks/` holds the seed policy.yaml, passed through `policy`,
    /// and `runbook` as `file`.
    pub fn new(file: &str, runbook: &str, policy: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        let seed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
        )
        .unwrap();
        std::fs::write(rb.join("policy.yaml"), policy(seed)).unwrap();
        std::fs::write(rb.join(file), runbook).unwrap();
        CliCase { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("audit.db")
    }

    /// The binary with the case's runbooks and database; stdin is not a terminal.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(get_cargo_bin("runbook"));
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_DB")
            .stdin(Stdio::null())
            .args(["--runbooks", "runbooks", "--db"])
            .arg(self.db())
            .args(args);
        cmd
    }

    /// The exit code (-1 if killed) and stdout followed by stderr.
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        let out = self.cmd(args).output().unwrap();
        (out.status.code().unwrap_or(-1), text(&out))
    }

    /// `args` with `--format json` appended; the stdout document.
    // Not used by tests/tick.rs, whose `tick_json` also needs the exit code.
    #[allow(dead_code)]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        let out = self.cmd(&all).output().unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
    }
}

/// stdout followed by stderr, lossily decoded.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
