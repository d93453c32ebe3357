//! End-to-end tests of the CLI: each verb run as a process, output snapshotted.

use std::path::{Path, PathBuf};
use std::process::Command;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

/// A `runbook` command run from the crate root with its real `runbooks/` directory.
struct CliTest {
    dir: PathBuf,
}

impl CliTest {
    fn new() -> Self {
        CliTest {
            dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(get_cargo_bin("runbook"));
        cmd.current_dir(&self.dir)
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_DB")
            .env("NO_COLOR", "1")
            .args(args);
        cmd
    }

    fn in_dir(dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(get_cargo_bin("runbook"));
        cmd.current_dir(dir)
            .env_remove("RUNBOOK_DIR")
            .env("NO_COLOR", "1")
            .args(args);
        cmd
    }
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.add_filter(r"runbook(\.exe)? \d+\.\d+\.\d+", "runbook [VERSION]");
    s
}

#[test]
fn list_shows_every_runbook() {
    settings().bind(|| assert_cmd_snapshot!(CliTest::new().cmd(&["list"])));
}

#[test]
fn list_as_json() {
    settings().bind(|| assert_cmd_snapshot!(CliTest::new().cmd(&["list", "--format", "json"])));
}

#[test]
fn validate_all_seed_runbooks_ok() {
    settings().bind(|| assert_cmd_snapshot!(CliTest::new().cmd(&["validate"])));
}

fn broken_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("runbooks/policy.yaml", dir.path().join("policy.yaml")).unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "runbook: broken\ntitle: Broken\nseverity: P1\nchecks:\n  - id: healthz\n    probe: htp\n    with: { url: \"http://127.0.0.1:1/healthz\" }\ncauses:\n  - id: down\n    title: Down\n    when: \"checks.helthz.failed\"\n    remedy: [restart]\nactions:\n  - id: restart\n    run: [\"systemctl\", \"restart\", \"x\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("also-broken.yaml"),
        "runbook: also-broken\ntitle: [unclosed\n",
    )
    .unwrap();
    dir
}

#[test]
fn validate_reports_every_problem_in_every_file() {
    let dir = broken_dir();
    settings().bind(|| {
        assert_cmd_snapshot!(CliTest::in_dir(
            dir.path(),
            &["validate", "--runbooks", "."]
        ));
    });
}

#[test]
fn validate_github_format() {
    let dir = broken_dir();
    settings().bind(|| {
        assert_cmd_snapshot!(CliTest::in_dir(
            dir.path(),
            &["validate", "--runbooks", ".", "--format", "github"]
        ));
    });
}

#[test]
fn validate_json_format() {
    let dir = broken_dir();
    let out = CliTest::in_dir(
        dir.path(),
        &["validate", "--runbooks", ".", "--format", "json"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for code in [
        "unknown-probe",
        "unknown-check",
        "missing-verify",
        "missing-limit",
        "wrong-type",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    for d in doc["diagnostics"].as_array().unwrap() {
        assert!(d["line"].as_u64().is_some_and(|l| l > 0), "no line in {d}");
    }
}

#[test]
fn plan_renders_templates_in_waves() {
    settings().bind(|| assert_cmd_snapshot!(CliTest::new().cmd(&["plan", "sse-not-connecting"])));
}

#[test]
fn plan_with_set_overrides_a_param() {
    let out = CliTest::new()
        .cmd(&[
            "plan",
            "sse-not-connecting",
            "--set",
            "base_url=http://127.0.0.1:9999",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("http://127.0.0.1:9999/healthz"), "{text}");
    assert!(!text.contains("{{ params.base_url }}"), "{text}");
}

#[test]
fn plan_never_shows_a_secret() {
    let out = CliTest::new()
        .cmd(&[
            "plan",
            "sse-not-connecting",
            "--set",
            "token_file=/run/secret-token-path",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("secret-token-path"), "{text}");
    assert!(text.contains("***"), "{text}");
}

#[test]
fn plan_refuses_bad_params() {
    settings().bind(|| {
        assert_cmd_snapshot!(CliTest::new().cmd(&[
            "plan",
            "sse-not-connecting",
            "--set",
            "base_ur=http://x"
        ]));
        assert_cmd_snapshot!(CliTest::new().cmd(&[
            "plan",
            "sse-not-connecting",
            "--set",
            "base_url=ftp://x"
        ]));
        assert_cmd_snapshot!(CliTest::new().cmd(&["plan", "sse-not-conecting"]));
    });
}

#[test]
fn graph_mermaid_and_dot() {
    settings().bind(|| {
        assert_cmd_snapshot!(CliTest::new().cmd(&["graph", "sse-not-connecting"]));
        assert_cmd_snapshot!(CliTest::new().cmd(&[
            "graph",
            "circuit-breaker-open",
            "--format",
            "dot"
        ]));
    });
}

#[test]
fn wrong_format_for_a_verb_is_a_usage_error() {
    let out = CliTest::new()
        .cmd(&["list", "--format", "dot"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = CliTest::new().cmd(&["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_verb_has_help_with_an_example() {
    for verb in ["list", "validate", "plan", "graph", "schema"] {
        let out = CliTest::new().cmd(&[verb, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{verb}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example"),
            "`runbook {verb} --help` has no example:\n{text}"
        );
        assert!(text.contains("runbook "), "{verb}");
    }
}

#[test]
fn committed_schema_is_current() {
    let out = CliTest::new().cmd(&["schema"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string("schema/runbook.schema.json").unwrap_or_default();
    assert!(
        committed == String::from_utf8(out.stdout).unwrap(),
        "schema/runbook.schema.json is stale: run `cargo run -- schema > schema/runbook.schema.json`"
    );
}
