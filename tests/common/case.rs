//! [`Case`]: the files one test serves from.

use std::path::{Path, PathBuf};

use super::Server;

/// The bearer token every [`Case`] accepts (its `token` file).
pub const TOKEN: &str = "test-token-7f3a";

/// A P3 runbook whose check fails for a missing marker: an alert leaves an incident open.
pub const SSE_DOWN: &str = r#"runbook: sse-down
title: SSE down (test)
severity: P3
triggers:
  alerts: [SseAvailabilitySLOViolation]
params:
  marker: { type: path, default: /nonexistent/marker, from: alert.labels.marker }
checks:
  - id: marker_present
    probe: file
    with: { path: "{{ params.marker }}" }
    expect: "exists"
causes:
  - id: missing
    title: Marker missing
    when: checks.marker_present.failed
    escalate: L1
escalation: { ladder: p3d }
"#;

/// A runbook dir (the repository's `policy.yaml` and the given runbooks), an audit file and
/// a token file, in a temp dir; servers started on it share them, so a restart sees the
/// same audit trail.
pub struct Case {
    /// Removed on drop.
    pub dir: tempfile::TempDir,
}

impl Case {
    /// A case with these `(name, text)` runbooks.
    pub fn new(runbooks: &[(&str, &str)]) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
            rb.join("policy.yaml"),
        )
        .unwrap();
        for (name, text) in runbooks {
            std::fs::write(rb.join(format!("{name}.yaml")), text).unwrap();
        }
        let case = Case { dir };
        case.secret_file("token", &format!("{TOKEN}\n"));
        case
    }

    /// A file in the case's dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The audit database.
    pub fn db(&self) -> PathBuf {
        self.path("audit.db")
    }

    /// Write `name` with mode 0600, as the server wants secret files; returns its path.
    pub fn secret_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        path
    }

    /// `runbook serve` on this case with the token file, a 1 h cooldown and `extra`.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let token = self.path("token");
        let mut args = vec!["--token-file", token.to_str().unwrap(), "--cooldown", "1h"];
        args.extend_from_slice(extra);
        Server::start(
            &self.path("runbooks"),
            &self.db(),
            &self.path("serve.log"),
            &args,
        )
    }

    /// The one integer `query` returns, read from the audit DB.
    pub fn sql(&self, query: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        conn.query_row(query, [], |r| r.get(0)).unwrap()
    }
}
