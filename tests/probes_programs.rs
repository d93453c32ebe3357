//! Program parameters (`systemctl`, `journalctl`, `timedatectl`, `chronyc`), templated
//! `sample.every`, and `runbook run --answer`, end to end through the real binary.
//!
//! Small shell scripts in a temp dir play the system tools: they print what the real ones
//! print and record their argv in a file, so each test asserts both what the probe read and
//! what it asked. Everything is local; every child is the binary with its own timeouts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The path the probes test for systemd; without it the host's tools are `unavailable`.
const SYSTEMD_RUNTIME: &str = "/run/systemd/system";

fn has_systemd() -> bool {
    Path::new(SYSTEMD_RUNTIME).is_dir()
}

/// A temp dir with fake tools, runbooks and an audit DB.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rb = dir.path().join("runbooks");
        std::fs::create_dir(&rb).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/policy.yaml"),
            rb.join("policy.yaml"),
        )
        .unwrap();
        Case { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fake tool: a `/bin/sh` script that appends its arguments (one line per call) to
    /// `<name>.argv`, then runs `body`.
    fn tool(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        let log = self.path(&format!("{name}.argv"));
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n{body}\n",
            log.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The argument lines a fake tool was called with, in order.
    fn calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(&format!("{name}.argv")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn runbook(&self, name: &str, text: &str) {
        std::fs::write(self.path("runbooks").join(format!("{name}.yaml")), text).unwrap();
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_DIR")
            .args(["--runbooks", "runbooks", "--db"])
            .arg(self.path("audit.db"));
        cmd
    }

    /// `runbook probe KIND --with k=v ...`: exit code and the JSON document.
    fn probe(&self, kind: &str, with: &[String]) -> (i32, Value, String) {
        let mut cmd = self.cmd();
        cmd.args(["probe", kind, "--timeout", "5s"]);
        for w in with {
            cmd.arg("--with").arg(w);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (code(&out), doc, stderr)
    }

    /// `runbook run NAME --format json ARGS...`: exit code, the JSON document, all output.
    fn run(&self, name: &str, args: &[&str]) -> (i32, Value, String) {
        let out = self
            .cmd()
            .args(["--format", "json", "run", name])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let doc = stdout
            .rfind('}')
            .and_then(|end| serde_json::from_str(&stdout[..=end]).ok())
            .unwrap_or(Value::Null);
        (code(&out), doc, text)
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn with(k: &str, v: impl AsRef<Path>) -> String {
    format!("{k}={}", v.as_ref().display())
}

/// The step of a run with this kind and id.
fn step<'d>(doc: &'d Value, kind: &str, id: &str) -> &'d Value {
    doc["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["kind"] == kind && s["id"] == id))
        .unwrap_or_else(|| panic!("no {kind} `{id}` in {doc:#}"))
}

/// `systemctl show` output for a unit in `state`.
fn show(state: &str) -> String {
    format!(
        "printf 'ActiveState=%s\\nSubState=running\\nLoadState=loaded\\nNRestarts=2\\nMainPID=4242\\nActiveEnterTimestamp=\\n' \"{state}\""
    )
}

const SHOW_ARGS: &str = "show aurora-live-feed --property=ActiveState,SubState,LoadState,NRestarts,MainPID,ActiveEnterTimestamp";

// ---- systemd probe ----------------------------------------------------------------------

#[test]
fn systemd_probe_reads_the_named_systemctl() {
    let case = Case::new();
    let systemctl = case.tool("systemctl", &show("active"));
    let (code, doc, err) = case.probe(
        "systemd",
        &[
            with("unit", "aurora-live-feed"),
            with("systemctl", &systemctl),
        ],
    );
    assert_eq!(code, 0, "{doc:#} {err}");
    assert_eq!(doc["outcome"], "observed", "{doc:#}");
    let r = &doc["result"];
    assert_eq!(r["active_state"], "active");
    assert_eq!(r["value"], "active");
    assert_eq!(r["sub_state"], "running");
    assert_eq!(r["load_state"], "loaded");
    assert_eq!(r["restarts"], 2);
    assert_eq!(r["main_pid"], 4242);
    // Asked once, with exactly the argv of `systemctl show`.
    assert_eq!(case.calls("systemctl"), [SHOW_ARGS]);
}

#[test]
fn systemd_probe_reports_the_named_programs_failure() {
    let case = Case::new();
    let systemctl = case.tool(
        "systemctl",
        "echo 'Failed to connect to bus: No such file' >&2; exit 1",
    );
    let (code, doc, err) = case.probe(
        "systemd",
        &[
            with("unit", "aurora-live-feed"),
            with("systemctl", &systemctl),
        ],
    );
    assert_eq!(code, 1, "{doc:#} {err}");
    assert_eq!(doc["outcome"], "error", "{doc:#}");
    let e = doc["result"]["error"].as_str().unwrap();
    assert!(e.contains("show aurora-live-feed` failed"), "{e}");
    assert!(e.contains("Failed to connect to bus"), "{e}");
    assert_eq!(case.calls("systemctl").len(), 1);
}

#[test]
fn systemd_probe_with_a_missing_program_is_an_error() {
    let case = Case::new();
    let missing = case.path("no-such-systemctl");
    let (code, doc, _) = case.probe(
        "systemd",
        &[
            with("unit", "aurora-live-feed"),
            with("systemctl", &missing),
        ],
    );
    assert_eq!(code, 1, "{doc:#}");
    let e = doc["result"]["error"].as_str().unwrap();
    assert!(e.starts_with("unavailable"), "{e}");
    assert!(e.contains("no-such-systemctl"), "{e}");
}

#[test]
fn without_the_param_the_host_systemd_is_asked_as_before() {
    if has_systemd() {
        eprintln!("skipped: this host runs systemd");
        return;
    }
    let case = Case::new();
    // Absent, or the plain standard name (the runbooks' default): the gate applies.
    for extra in [None, Some(with("systemctl", "systemctl"))] {
        let mut w = vec![with("unit", "aurora-live-feed")];
        w.extend(extra.clone());
        let (code, doc, _) = case.probe("systemd", &w);
        assert_eq!(code, 1, "{extra:?}: {doc:#}");
        assert_eq!(doc["outcome"], "error");
        assert_eq!(
            doc["result"]["error"], "unavailable: no systemd (`/run/systemd/system` is absent)",
            "{extra:?}"
        );
    }
    let (_, doc, _) = case.probe("journal", &[with("unit", "aurora-live-feed")]);
    assert_eq!(
        doc["result"]["error"],
        "unavailable: no systemd journal (`/run/systemd/system` is absent)"
    );
}

#[test]
fn program_values_that_are_empty_or_options_are_refused() {
    let case = Case::new();
    let cases = [
        ("systemd", "systemctl", "-H"),
        ("systemd", "systemctl", "--help"),
        ("systemd", "systemctl", ""),
        ("journal", "journalctl", "--file=/etc/shadow"),
        ("time_sync", "timedatectl", "-x"),
        ("time_sync", "chronyc", "-h"),
    ];
    for (kind, key, value) in cases {
        let mut w = vec![format!("{key}={value}")];
        if kind != "time_sync" {
            w.push(with("unit", "aurora-live-feed"));
        }
        let (code, doc, err) = case.probe(kind, &w);
        assert_eq!(code, 2, "{kind} {key}={value:?}: {doc:#} {err}");
        assert!(
            err.contains("refused program") || err.contains("may not be empty"),
            "{kind} {key}={value:?}: {err}"
        );
    }
}

// ---- journal probe ----------------------------------------------------------------------

#[test]
fn journal_probe_reads_the_named_journalctl() {
    let case = Case::new();
    let journalctl = case.tool(
        "journalctl",
        "printf 'started\\nERROR: database gone\\nok\\nerror again\\n'",
    );
    let (code, doc, err) = case.probe(
        "journal",
        &[
            with("unit", "aurora-live-feed"),
            with("pattern", "error"),
            with("since", "2m"),
            with("journalctl", &journalctl),
        ],
    );
    assert_eq!(code, 0, "{doc:#} {err}");
    assert_eq!(doc["result"]["count"], 2, "{doc:#}");
    assert_eq!(
        doc["result"]["last"],
        serde_json::json!(["ERROR: database gone", "error again"])
    );
    assert_eq!(
        case.calls("journalctl"),
        ["-u aurora-live-feed --since=-120s -o cat --no-pager"]
    );
}

// ---- time_sync probe --------------------------------------------------------------------

#[test]
fn time_sync_asks_the_named_timedatectl_without_systemd() {
    let case = Case::new();
    let timedatectl = case.tool("timedatectl", "echo no");
    let chronyc = case.tool("chronyc", "exit 1");
    let (code, doc, err) = case.probe(
        "time_sync",
        &[with("timedatectl", &timedatectl), with("chronyc", &chronyc)],
    );
    assert_eq!(code, 0, "{doc:#} {err}");
    assert_eq!(doc["result"]["synced"], false, "{doc:#}");
    assert_eq!(doc["result"]["source"], "timedatectl");
    assert_eq!(
        case.calls("timedatectl"),
        ["show -p NTPSynchronized --value"]
    );
    assert!(
        case.calls("chronyc").is_empty(),
        "chronyc asked after a clear answer"
    );
}

const TRACKING: &str = "printf 'Reference ID    : C0A80001 (ntp.local)\\nSystem time     : 0.000250000 seconds slow of NTP time\\nRoot dispersion : 0.001000000 seconds\\nLeap status     : Normal\\n'";

#[test]
fn time_sync_falls_back_to_the_named_chronyc() {
    let case = Case::new();
    let timedatectl = case.tool("timedatectl", "echo 'Failed to connect to bus' >&2; exit 1");
    let chronyc = case.tool("chronyc", TRACKING);
    let (code, doc, err) = case.probe(
        "time_sync",
        &[with("timedatectl", &timedatectl), with("chronyc", &chronyc)],
    );
    assert_eq!(code, 0, "{doc:#} {err}");
    let r = &doc["result"];
    assert_eq!(r["synced"], true, "{doc:#}");
    assert_eq!(r["source"], "chronyc");
    assert!(
        (r["offset_ms"].as_f64().unwrap() + 0.25).abs() < 1e-9,
        "{r}"
    );
    assert_eq!(case.calls("timedatectl").len(), 1);
    assert_eq!(case.calls("chronyc"), ["-n tracking"]);
}

#[test]
fn time_sync_with_only_chronyc_keeps_the_timedatectl_gate() {
    if has_systemd() {
        eprintln!("skipped: this host runs systemd");
        return;
    }
    let case = Case::new();
    let chronyc = case.tool("chronyc", "printf 'Leap status     : Not synchronised\\n'");
    let (code, doc, _) = case.probe("time_sync", &[with("chronyc", &chronyc)]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["result"]["synced"], false);
    assert_eq!(doc["result"]["source"], "chronyc");
    assert_eq!(case.calls("chronyc"), ["-n tracking"]);
    // A failing chronyc: both reasons are named, the missing systemd first.
    let broken = case.tool("chronyc2", "exit 3");
    let (code, doc, _) = case.probe("time_sync", &[with("chronyc", &broken)]);
    assert_eq!(code, 1, "{doc:#}");
    let e = doc["result"]["error"].as_str().unwrap();
    assert!(
        e.starts_with("unavailable: no systemd for `timedatectl`; "),
        "{e}"
    );
    assert!(e.contains("chronyc2"), "{e}");
}

// ---- systemd action, in a run -----------------------------------------------------------

/// A unit that is down until the `systemd` action restarts it (through the named program).
const RESTART: &str = r#"runbook: restart
title: Restart through a named systemctl
severity: P1
params:
  unit: { type: name, default: aurora-live-feed }
  systemctl: { type: path, default: systemctl }
checks:
  - id: service_active
    probe: systemd
    with: { unit: "{{ params.unit }}", systemctl: "{{ params.systemctl }}" }
    expect: "active_state == 'active'"
causes:
  - id: service_down
    title: Service down
    when: "checks.service_active.failed"
    remedy: [restart_service]
    verify: [service_active]
actions:
  - id: restart_service
    systemd: { unit: "{{ params.unit }}", op: restart, systemctl: "{{ params.systemctl }}" }
    limit: { max: 5, per: 1h }
escalation: { ladder: p3d }
"#;

/// A fake systemctl keeping the unit's state in a file: `restart` makes it active.
fn stateful_systemctl(case: &Case) -> PathBuf {
    let state = case.path("unit.state");
    std::fs::write(&state, "inactive").unwrap();
    let s = state.display();
    case.tool(
        "systemctl",
        &format!(
            "case \"$1\" in\n  show) {};;\n  restart) echo active > '{s}';;\n  *) exit 5;;\nesac",
            show(&format!("$(cat '{s}')"))
        ),
    )
}

#[test]
fn systemd_action_restarts_through_the_named_systemctl() {
    let case = Case::new();
    case.runbook("restart", RESTART);
    let systemctl = stateful_systemctl(&case);
    let set = with("systemctl", &systemctl);
    let (code, doc, out) = case.run("restart", &["--yes", "--set", &set]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc["outcome"], "remediated", "{out}");
    assert_eq!(step(&doc, "check", "service_active")["status"], "failed");
    let action = step(&doc, "action", "restart_service");
    assert_eq!(action["status"], "ok", "{action:#}");
    assert_eq!(
        action["inputs"]["form"]["systemd"]["systemctl"],
        systemctl.display().to_string()
    );
    assert_eq!(step(&doc, "verify", "service_active")["status"], "ok");
    assert_eq!(
        case.calls("systemctl"),
        [SHOW_ARGS, "restart aurora-live-feed", SHOW_ARGS]
    );
}

#[test]
fn systemd_action_refuses_a_program_that_is_an_option() {
    let case = Case::new();
    // The probe sees a real answer (inactive), the action a program that looks like an option.
    let systemctl = stateful_systemctl(&case);
    let rb = RESTART.replace(
        "op: restart, systemctl: \"{{ params.systemctl }}\"",
        "op: restart, systemctl: \"{{ params.action_systemctl }}\"",
    );
    let rb = rb.replace(
        "  systemctl: { type: path, default: systemctl }\n",
        "  systemctl: { type: path, default: systemctl }\n  action_systemctl: { type: path, default: systemctl }\n",
    );
    case.runbook("restart", &rb);
    let (code, doc, out) = case.run(
        "restart",
        &[
            "--yes",
            "--set",
            &with("systemctl", &systemctl),
            "--set",
            "action_systemctl=--version",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let action = step(&doc, "action", "restart_service");
    assert_eq!(action["status"], "failed", "{action:#}");
    assert!(
        action["decided_by"]
            .as_str()
            .unwrap()
            .contains("refused program `--version`"),
        "{action:#}"
    );
    assert_eq!(
        case.calls("systemctl"),
        [SHOW_ARGS],
        "the action ran something"
    );
}

#[test]
fn without_the_param_the_run_sees_no_systemd() {
    if has_systemd() {
        eprintln!("skipped: this host runs systemd");
        return;
    }
    let case = Case::new();
    case.runbook("restart", RESTART);
    let (code, doc, out) = case.run("restart", &["--yes"]);
    assert_eq!(code, 1, "{out}");
    let check = step(&doc, "check", "service_active");
    assert_eq!(check["status"], "error", "{check:#}");
    assert!(
        check["decided_by"]
            .as_str()
            .unwrap()
            .starts_with("unavailable: no systemd"),
        "{check:#}"
    );
    assert_eq!(step(&doc, "cause", "service_down")["status"], "unknown");
}

// ---- sample.every as a template ---------------------------------------------------------

const SAMPLED: &str = r#"runbook: sampled
title: A sampled check with a templated interval
severity: P3
params:
  every: { type: duration, default: 30s }
  counter: { type: path, default: /nonexistent }
  every_text: { type: string, default: "30s" }
checks:
  - id: growing
    probe: command
    with: { run: ["{{ params.counter }}"], parse: json }
    sample: { times: 3, every: "{{ params.every }}" }
    expect: "delta == 2"
causes:
  - id: static
    title: Counter static
    when: "checks.growing.failed"
    guidance: Nothing grows.
    escalate: L1
escalation: { ladder: p3d }
"#;

#[test]
fn sample_every_takes_a_template() {
    let case = Case::new();
    case.runbook("sampled", SAMPLED);
    let plan = |args: &[&str]| {
        let out = case
            .cmd()
            .args(["plan", "sampled"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(plan(&[]).contains("sample: 3 × every 30s"), "{}", plan(&[]));
    let short = plan(&["--set", "every=250ms"]);
    assert!(short.contains("sample: 3 × every 250ms"), "{short}");
    // `validate` accepts it; a duration param refuses a bad value before anything runs.
    let out = case.cmd().args(["validate", "runbooks"]).output().unwrap();
    assert_eq!(code(&out), 0, "{out:?}");
    let (code, _, out) = case.run("sampled", &["--set", "every=soon"]);
    assert_eq!(code, 2, "{out}");

    // A counter that goes up by one per call, sampled quickly.
    let n = case.path("n");
    std::fs::write(&n, "0").unwrap();
    let counter = case.tool(
        "counter",
        &format!(
            "v=$(( $(cat '{0}') + 1 )); echo $v > '{0}'; echo $v",
            n.display()
        ),
    );
    let started = std::time::Instant::now();
    let (code, doc, out) = case.run(
        "sampled",
        &["--set", &with("counter", &counter), "--set", "every=20ms"],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the 30s default was used"
    );
    assert_eq!(code, 0, "{out}");
    let check = step(&doc, "check", "growing");
    assert_eq!(check["status"], "ok", "{check:#}");
    assert_eq!(check["result"]["values"], serde_json::json!([1, 2, 3]));
    assert_eq!(case.calls("counter").len(), 3);
}

#[test]
fn sample_every_that_renders_to_no_duration_is_an_error() {
    let case = Case::new();
    case.runbook(
        "sampled",
        &SAMPLED.replace("{{ params.every }}", "{{ params.every_text }}"),
    );
    let (code, doc, out) = case.run("sampled", &["--set", "every_text=often"]);
    assert_eq!(code, 1, "{out}");
    let check = step(&doc, "check", "growing");
    assert_eq!(check["status"], "error", "{check:#}");
    assert!(
        check["decided_by"]
            .as_str()
            .unwrap()
            .contains("`sample.every`: invalid duration `often`"),
        "{check:#}"
    );
}

// ---- runbook run --answer ---------------------------------------------------------------

const ASKS: &str = r#"runbook: asks
title: A runbook with a question
severity: P3
params: {}
checks:
  - id: token_ok
    probe: manual
    with: { question: "Is the dashboard sending the token?" }
    expect: "answer"
  - id: also_asked
    probe: manual
    with: { question: "Anything else?" }
    expect: "not answer"
causes:
  - id: token_wrong
    title: The dashboard sends a wrong token
    when: "checks.token_ok.failed"
    guidance: Fix the dashboard's token.
    escalate: L1
escalation: { ladder: p3d }
"#;

#[test]
fn answers_decide_manual_checks_and_the_causes_reading_them() {
    let case = Case::new();
    case.runbook("asks", ASKS);

    let (code, doc, out) = case.run(
        "asks",
        &["--answer", "token_ok=yes", "--answer", "also_asked=N"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc["outcome"], "healthy", "{out}");
    let check = step(&doc, "check", "token_ok");
    assert_eq!(check["status"], "ok");
    assert_eq!(check["result"]["answer"], true);
    assert_eq!(check["result"]["value"], true);
    assert!(
        check["result"]["reason"]
            .as_str()
            .unwrap()
            .contains("on the command line"),
        "{check:#}"
    );
    assert_eq!(step(&doc, "check", "also_asked")["status"], "ok");
    assert_eq!(step(&doc, "cause", "token_wrong")["status"], "ruled_out");

    let (code, doc, out) = case.run(
        "asks",
        &["--answer", "token_ok=no", "--answer", "also_asked=false"],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(step(&doc, "check", "token_ok")["status"], "failed");
    assert_eq!(step(&doc, "check", "token_ok")["result"]["answer"], false);
    assert_eq!(step(&doc, "cause", "token_wrong")["status"], "matched");

    // Unanswered (no terminal here): unknown, as before; the run is not healthy.
    let (code, doc, out) = case.run("asks", &["--answer", "token_ok=y"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(step(&doc, "check", "also_asked")["status"], "unknown");

    // The audit trail holds the answer and why.
    let out = case.cmd().args(["audit", "export"]).output().unwrap();
    let export = String::from_utf8_lossy(&out.stdout);
    assert!(
        export.contains("answered `yes` on the command line")
            && export.contains("answered `no` on the command line"),
        "{export}"
    );
}

#[test]
fn bad_answers_are_invalid_input() {
    let case = Case::new();
    case.runbook("asks", ASKS);
    let expect_2 = |args: &[&str], needles: &[&str]| {
        let (code, _, out) = case.run("asks", args);
        assert_eq!(code, 2, "{args:?}: {out}");
        for n in needles {
            assert!(out.contains(n), "{args:?}: `{n}` not in {out}");
        }
    };
    expect_2(
        &["--answer", "nope=yes"],
        &[
            "`nope` is not a manual check of `asks`",
            "`token_ok`, `also_asked`",
        ],
    );
    expect_2(
        &["--answer", "token_ok=maybe"],
        &["`maybe` is not an answer"],
    );
    expect_2(&["--answer", "token_ok"], &["write `--answer ID=yes`"]);
    expect_2(
        &["--answer", "token_ok=yes", "--answer", "token_ok=no"],
        &["answered both yes and no"],
    );
    // Refused before anything ran: not even the audit trail was opened.
    assert!(!case.path("audit.db").exists());
}

#[test]
fn an_answer_for_a_seed_runbook_names_its_manual_checks() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    let db = tempfile::tempdir().unwrap();
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUNBOOK_DIR")
        .arg("--db")
        .arg(db.path().join("audit.db"))
        .args([
            "run",
            "sse-not-connecting",
            "--answer",
            "service_active=yes",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`service_active` is not a manual check of `sse-not-connecting`")
            && err.contains("`dashboard_token`"),
        "{err}"
    );
}
