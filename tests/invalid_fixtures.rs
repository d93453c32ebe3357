//! Broken runbooks: every file in `fixtures/runbooks/invalid/` fails with exactly the code it
//! is named after, at a position, and renders as reviewed in `tests/snapshots/`.
//!
//! A fixture is `<code>.yaml` or `<code>--<variant>.yaml`. Its `runbook:` key equals its file
//! stem and it is otherwise valid against `runbooks/policy.yaml`, so every error it produces
//! carries `<code>` (warnings such as `unused-action` may come along). `file-too-large` is
//! generated into a temporary directory instead of committing a 1 MiB file.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use runbook::runbook::diagnostic::Severity;
use runbook::runbook::load::MAX_FILE_BYTES;
use runbook::runbook::{Catalog, Diagnostic};

/// Where the fixtures are, relative to the crate root.
const FIXTURES: &str = "fixtures/runbooks/invalid";
/// The directory whose `policy.yaml` the fixtures are checked against.
const POLICY_DIR: &str = "runbooks";
/// Deleting fixtures below this many fails the suite.
const MIN_FIXTURES: usize = 40;
/// Codes raised before there is text to point into: they carry no line and column.
const IO_CODES: &[&str] = &["io-error", "file-too-large"];

/// Every code the fixture set must exercise (`file-too-large` is generated, see below).
const REQUIRED_CODES: &[&str] = &[
    "yaml-syntax",
    "wrong-type",
    "unknown-key",
    "missing-key",
    "duplicate-key",
    "unknown-value",
    "unknown-anchor",
    "not-utf8",
    "too-deep",
    "alias-bomb",
    "multiple-documents",
    "invalid-name",
    "name-mismatch",
    "invalid-id",
    "duplicate-id",
    "unknown-param-type",
    "bad-param-default",
    "bad-param-from",
    "bad-cron",
    "unknown-severity",
    "unknown-ladder",
    "unknown-channel",
    "unknown-level",
    "bad-duration",
    "unknown-probe",
    "bad-probe-param",
    "bad-sample",
    "expression-syntax",
    "template-syntax",
    "unknown-check",
    "unknown-cause",
    "unknown-action",
    "unknown-param",
    "unknown-symptom",
    "unknown-field",
    "unknown-variable",
    "step-order",
    "action-form",
    "shell-template",
    "shell-taint",
    "secret-to-alert-host",
    "secret-from-alert-path",
    "param-hosts",
    "bad-retry",
    "bad-limit",
    "missing-rollback",
    "missing-verify",
    "missing-limit",
    "unreachable-cause",
    "dead-end-cause",
    "graph-cycle",
];

/// Run from the crate root, so fixture paths (and the names in snapshots) are relative.
fn crate_root() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).expect("crate root exists");
}

/// The fixture files, sorted.
fn fixtures() -> Vec<PathBuf> {
    crate_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap_or_else(|e| panic!("cannot read `{FIXTURES}`: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("fixture name is not UTF-8: {}", path.display()))
}

/// The code a fixture is named after: its stem before `--`.
fn expected_code(stem: &str) -> &str {
    stem.split_once("--").map_or(stem, |(code, _)| code)
}

/// One line per diagnostic, for failure messages.
fn summary(diags: &[&Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let at = d.span.and(d.position()).map_or_else(
            || "no position".to_owned(),
            |(f, l, c)| format!("{f}:{l}:{c}"),
        );
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "  {sev} [{}] {at}: {}", d.code, d.message);
    }
    if out.is_empty() {
        out.push_str("  (nothing)\n");
    }
    out
}

/// Check what loading `path` reported; on success, the rendered diagnostics to snapshot.
fn check(path: &Path, expected: &str, cat: &Catalog) -> Result<String, String> {
    let name = path.display().to_string();
    // Diagnostics of this file, and file-level ones (`file-too-large` names no source);
    // a broken policy.yaml is reported by `policy_loads` instead of once per fixture.
    let own: Vec<&Diagnostic> = cat
        .diagnostics
        .iter()
        .filter(|d| d.source.as_ref().is_none_or(|s| s.name == name))
        .collect();
    let errors: Vec<&&Diagnostic> = own
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let mut problems = Vec::new();
    if !errors.iter().any(|d| d.code == expected) {
        problems.push(format!("no `{expected}` error was reported"));
    }
    for d in &errors {
        if d.code != expected {
            problems.push(format!("unexpected error `{}`: {}", d.code, d.message));
        } else if !IO_CODES.contains(&d.code) && (d.span.is_none() || d.source.is_none()) {
            problems.push(format!(
                "`{}` has no line and column: {}",
                d.code, d.message
            ));
        }
    }
    if problems.is_empty() {
        return Ok(own.iter().map(|d| d.render(false)).collect());
    }
    let mut msg = format!("fixture `{name}` (expects only `{expected}` errors):\n");
    for p in problems {
        let _ = writeln!(msg, "  - {p}");
    }
    let _ = write!(msg, "reported:\n{}", summary(&own));
    if cat.policy.is_none() {
        let _ = writeln!(
            msg,
            "note: `{POLICY_DIR}/policy.yaml` did not load; see `policy_loads`"
        );
    }
    Err(msg)
}

/// Escape a literal for insta's regex filters.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn settings(input: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_input_file(input);
    s.set_omit_expression(true);
    s
}

/// Snapshot `rendered` as `name`; a mismatch comes back as a message instead of a panic so
/// every fixture is checked in one run.
fn snapshot(settings: &insta::Settings, name: &str, rendered: &str) -> Result<(), String> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, rendered));
    }));
    outcome.map_err(|e| {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("snapshot `{name}` does not match (review with `cargo insta review`): {why}\n")
    })
}

#[test]
fn every_fixture_fails_with_its_code() {
    let files = fixtures();
    let mut failures = Vec::new();
    for path in &files {
        let name = stem(path);
        let expected = expected_code(name);
        let cat = Catalog::load(std::slice::from_ref(path), Path::new(POLICY_DIR));
        match check(path, expected, &cat) {
            Ok(rendered) => {
                if let Err(e) = snapshot(&settings(path), name, &rendered) {
                    failures.push(e);
                }
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn file_too_large_is_refused_before_parsing() {
    crate_root();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("file-too-large.yaml");
    // A valid head, then a comment that pushes the file one byte past the limit.
    let mut text =
        String::from("runbook: file-too-large\ntitle: Broken on purpose\nseverity: P1\n# ");
    let limit = usize::try_from(MAX_FILE_BYTES).expect("the limit fits in memory");
    text.push_str(&"x".repeat(limit + 1 - text.len()));
    assert_eq!(text.len() as u64, MAX_FILE_BYTES + 1);
    std::fs::write(&path, &text).expect("write the large fixture");

    let cat = Catalog::load(std::slice::from_ref(&path), Path::new(POLICY_DIR));
    let rendered = check(&path, "file-too-large", &cat).unwrap_or_else(|e| panic!("{e}"));
    let mut s = settings(Path::new(FIXTURES));
    s.remove_input_file();
    s.add_filter(&regex_escape(&dir.path().display().to_string()), "[TMP]");
    snapshot(&s, "file-too-large", &rendered).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn fixtures_cover_every_code() {
    let files = fixtures();
    let names: Vec<&str> = files.iter().map(|p| stem(p)).collect();
    assert!(
        files.len() >= MIN_FIXTURES,
        "expected at least {MIN_FIXTURES} fixtures in `{FIXTURES}`, found {}: {names:?}",
        files.len()
    );
    let missing: Vec<&&str> = REQUIRED_CODES
        .iter()
        .filter(|code| !names.iter().any(|n| expected_code(n) == **code))
        .collect();
    assert!(
        missing.is_empty(),
        "no fixture in `{FIXTURES}` for: {missing:?}\nfixtures: {names:?}"
    );
}

#[test]
fn policy_loads() {
    crate_root();
    // The fixtures' own directory holds no policy.yaml, so they are checked against this one.
    assert!(
        !Path::new(FIXTURES).join("policy.yaml").exists(),
        "`{FIXTURES}/policy.yaml` would replace `{POLICY_DIR}/policy.yaml` for every fixture"
    );
    let cat = Catalog::load(&[PathBuf::from(FIXTURES)], Path::new(POLICY_DIR));
    let policy_diags: Vec<&Diagnostic> = cat
        .diagnostics
        .iter()
        .filter(|d| {
            d.source
                .as_ref()
                .is_some_and(|s| s.name.ends_with("policy.yaml"))
        })
        .collect();
    assert!(
        cat.policy.is_some() && policy_diags.is_empty(),
        "`{POLICY_DIR}/policy.yaml` did not load; fixtures that need it (unknown-severity, \
         unknown-ladder, unknown-channel, unknown-level) cannot fail as named:\n{}",
        summary(&policy_diags)
    );
}
