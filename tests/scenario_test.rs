//! `runbook test` end to end: the seed runbooks' scenarios pass, a wrong expectation fails with
//! the expected and actual decisions side by side (and in `JUnit` XML), broken scenario files are
//! located without losing the other files' results, and no scenario touches the host.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `runbook ARGS` from the repository root.
fn runbook(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .current_dir(root())
        .env_remove("RUNBOOK_DIR")
        .env_remove("RUNBOOK_DB")
        .env("NO_COLOR", "1")
        .output()
        .expect("runbook runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The summary line's numbers: (scenarios, files, passed, failed, invalid).
fn summary(out: &str) -> (usize, usize, usize, usize, usize) {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains(" scenario(s) in "))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3], nums[4])
}

/// Copy the seed runbooks (and policy) into `dir/runbooks`, with no scenarios.
fn copy_runbooks(dir: &Path) -> PathBuf {
    let rb = dir.join("runbooks");
    std::fs::create_dir_all(rb.join("tests")).unwrap();
    for entry in std::fs::read_dir(root().join("runbooks")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&p, rb.join(p.file_name().unwrap())).unwrap();
        }
    }
    rb
}

#[test]
fn every_seed_runbook_has_scenarios_and_they_all_pass() {
    let o = runbook(&["--runbooks", "runbooks", "test", "runbooks/"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = stdout(&o);
    let (scenarios, files, passed, failed, invalid) = summary(&out);
    // One scenario per `- name:` line of the scenario files, all of them run.
    let mut written = 0;
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("runbooks/tests")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        written += text.lines().filter(|l| l.starts_with("  - name: ")).count();
        names.insert(p.file_stem().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(scenarios, written, "{out}");
    assert_eq!((passed, failed, invalid), (written, 0, 0), "{out}");
    let cat = runbook::runbook::Catalog::load(&[root().join("runbooks")], &root().join("runbooks"));
    assert_eq!(cat.runbooks.len(), 13, "the seed runbooks compile");
    let seeds: BTreeSet<String> = cat.runbooks.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, seeds, "a scenario file per seed runbook");
    assert_eq!(files, 13);
    println!("{scenarios} scenarios in {files} files");
}

#[test]
fn every_cause_of_every_seed_runbook_is_matched_by_some_scenario() {
    let o = runbook(&[
        "--runbooks",
        "runbooks",
        "--format",
        "json",
        "test",
        "runbooks/",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut matched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in doc["files"].as_array().unwrap() {
        let name = f["runbook"].as_str().unwrap().to_owned();
        for s in f["scenarios"].as_array().unwrap() {
            assert_eq!(s["verdict"], "passed", "{s}");
            for c in s["path"]["causes"].as_array().unwrap() {
                if c["status"] == "matched" {
                    matched
                        .entry(name.clone())
                        .or_default()
                        .insert(c["id"].as_str().unwrap().to_owned());
                }
            }
            outcomes
                .entry(name.clone())
                .or_default()
                .insert(s["path"]["outcome"].as_str().unwrap().to_owned());
        }
    }
    let cat = runbook::runbook::Catalog::load(&[root().join("runbooks")], &root().join("runbooks"));
    for rb in &cat.runbooks {
        let all: BTreeSet<String> = rb.causes.iter().map(|c| c.id.clone()).collect();
        let seen = matched.get(&rb.name).cloned().unwrap_or_default();
        let missing: Vec<&String> = all.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "{}: no scenario matches {missing:?}",
            rb.name
        );
        let outs = &outcomes[&rb.name];
        // A runbook with a remedy has a scenario where it works and one where it may not run.
        if rb
            .causes
            .iter()
            .any(|c| !c.remedy.is_empty() && c.escalate.is_none())
        {
            assert!(outs.contains("remediated"), "{}: {outs:?}", rb.name);
        }
        assert!(outs.contains("problem_remains"), "{}: {outs:?}", rb.name);
    }
}

#[test]
fn the_same_scenarios_give_the_same_output() {
    let a = runbook(&["--runbooks", "runbooks", "test"]);
    let b = runbook(&["--runbooks", "runbooks", "test"]);
    assert_eq!(a.status.code(), Some(0), "{}", show(&a));
    assert_eq!(stdout(&a), stdout(&b));
    assert!(stdout(&a).contains("runbooks/tests/service-down.yaml"));
}

/// A seed scenario file with one expectation made wrong.
fn wrong_expectation(dir: &Path) -> PathBuf {
    let rb = copy_runbooks(dir);
    let text = std::fs::read_to_string(root().join("runbooks/tests/service-down.yaml")).unwrap();
    let anchor = "  - name: unit failed, restart and reload fix it";
    let at = text.find(anchor).expect("the scenario is there");
    let (head, tail) = text.split_at(at);
    let tail = tail.replacen("outcome: remediated", "outcome: healthy", 1);
    std::fs::write(rb.join("tests/service-down.yaml"), format!("{head}{tail}")).unwrap();
    rb
}

#[test]
fn a_wrong_expectation_fails_and_shows_expected_beside_actual() {
    let dir = tempfile::tempdir().unwrap();
    let rb = wrong_expectation(dir.path());
    let junit = dir.path().join("report.xml");
    let o = runbook(&[
        "test",
        rb.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL    unit failed, restart and reload fix it"),
        "{out}"
    );
    assert!(out.contains("  ok      healthy"), "{out}");
    let header = out
        .lines()
        .find(|l| l.contains("expected") && l.contains("actual"))
        .unwrap_or_else(|| panic!("no side-by-side header:\n{out}"));
    assert!(header.find("expected") < header.find("actual"), "{header}");
    let outcome = out
        .lines()
        .find(|l| l.contains("✗ outcome"))
        .unwrap_or_else(|| panic!("the outcome is not marked:\n{out}"));
    assert!(
        outcome.find("healthy") < outcome.find("remediated"),
        "expected before actual: {outcome}"
    );
    // The rest of the decision path is there too, and agrees.
    for row in [
        "causes matched",
        "check healthz",
        "action restart_service",
        "verify healthz",
        "escalation",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no `{row}` row:\n{out}"));
        assert!(!line.contains('✗'), "{line}");
    }
    let (_, _, passed, failed, invalid) = summary(&out);
    assert_eq!((failed, invalid), (1, 0));
    assert!(passed >= 6, "{out}");
    check_junit(&junit);
}

/// The `JUnit` report is well-formed XML (python's parser says so) and names the failing case.
fn check_junit(path: &Path) {
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
failed = []
for suite in root.iter("testsuite"):
    for case in suite.iter("testcase"):
        f = case.find("failure")
        if f is not None:
            failed.append((suite.get("name"), case.get("name"), f.get("message"), f.text))
assert len(failed) == 1, failed
suite, name, message, body = failed[0]
assert suite.endswith("service-down.yaml"), suite
assert name == "unit failed, restart and reload fix it", name
assert "outcome" in message, message
assert "remediated" in body and "healthy" in body, body
print(root.get("tests"), root.get("failures"))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 is needed to check the JUnit XML (apt-get install python3)");
    assert!(o.status.success(), "{}", show(&o));
    let counts = stdout(&o);
    assert!(counts.trim_end().ends_with(" 1"), "{counts}");
}

#[test]
fn broken_scenario_files_are_located_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let o = runbook(&[
        "--runbooks",
        "runbooks",
        "test",
        "fixtures/scenarios/",
        "runbooks/tests/service-down.yaml",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let out = stdout(&o);
    for located in [
        "unknown-key fixtures/scenarios/unknown-key.yaml:5:5",
        "unknown-check fixtures/scenarios/unknown-check.yaml:9:7",
        "unknown-runbook fixtures/scenarios/unknown-runbook.yaml:2:10",
        "yaml-syntax fixtures/scenarios/yaml-syntax.yaml:7:11",
        "missing-result fixtures/scenarios/missing-result.yaml:4:11",
    ] {
        assert!(out.contains(located), "no `{located}` in:\n{out}");
    }
    assert!(out.contains("did you mean `healthz`?"), "{out}");
    assert!(out.contains("did you mean `service-down`?"), "{out}");
    assert!(
        out.contains("check(s) `healthz` ran with no result given"),
        "{out}"
    );
    // The valid file's results are all there.
    let seed = std::fs::read_to_string(root().join("runbooks/tests/service-down.yaml")).unwrap();
    let seed_count = seed.lines().filter(|l| l.starts_with("  - name: ")).count();
    let (_, files, passed, failed, invalid) = summary(&out);
    assert_eq!(
        (files, passed, failed, invalid),
        (6, seed_count, 0, 1),
        "{out}"
    );
    assert!(out.contains("4 file(s) invalid"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("errors=\"5\""), "{xml}");
    assert!(xml.contains("unknown-key.yaml:5:5"), "{xml}");
}

#[test]
fn no_scenario_files_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = runbook(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no scenario files"),
        "{}",
        show(&o)
    );
}

/// A runbook whose probes and actions point at a closed port, a loopback listener and a file
/// in a temp dir: the scenarios give every result, and nothing reaches any of them.
#[test]
fn scenarios_touch_no_host() {
    let dir = tempfile::tempdir().unwrap();
    let rb = copy_runbooks(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let hook = listener.local_addr().unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let marker = dir.path().join("marker");
    std::fs::write(
        rb.join("sealed.yaml"),
        format!(
            r#"runbook: sealed
title: Sealed (test)
severity: P3
params:
  closed_url: {{ type: url, default: "http://{closed}" }}
  hook_url: {{ type: url, default: "http://{hook}" }}
  marker: {{ type: path, default: "{marker}" }}
checks:
  - id: web
    probe: http
    with: {{ url: "{{{{ params.closed_url }}}}/healthz" }}
    expect: "status == 200"
  - id: hook_health
    probe: http
    with: {{ url: "{{{{ params.hook_url }}}}/healthz" }}
    expect: "status == 200"
  - id: marker_file
    probe: file
    with: {{ path: "{{{{ params.marker }}}}" }}
    expect: "exists"
causes:
  - id: web_down
    title: Web down
    when: "checks.web.failed"
    remedy: [call_hook, touch_marker]
    verify: [web]
actions:
  - id: call_hook
    http: {{ method: POST, url: "{{{{ params.hook_url }}}}/fix" }}
    limit: {{ max: 5, per: 1h }}
  - id: touch_marker
    run: ["touch", "{{{{ params.marker }}}}"]
    limit: {{ max: 5, per: 1h }}
escalation: {{ ladder: p3d }}
"#,
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        rb.join("tests/sealed.yaml"),
        r"runbook: sealed
baseline:
  web: { status: 200 }
  hook_health: { status: 200 }
  marker_file: { exists: true, kind: file }
scenarios:
  - name: a closed port answers 200 as given
    expect:
      outcome: healthy
      checks: { web: ok, hook_health: ok, marker_file: ok }
      actions: {}
  - name: remedies are given, not performed
    checks:
      web: { status: 503 }
    after:
      web: { status: 200 }
    yes: true
    expect:
      outcome: remediated
      matched: [web_down]
      actions: { call_hook: ok, touch_marker: ok }
      verify: { web: [ok] }
",
    )
    .unwrap();
    let o = runbook(&["test", rb.join("tests/sealed.yaml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(summary(&stdout(&o)).2, 2, "{}", show(&o));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("a scenario connected to the loopback listener from {peer}"),
        Err(e) => panic!("accept: {e}"),
    }
    assert!(
        !marker.exists(),
        "the `run` action touched {}",
        marker.display()
    );
}
