//! End to end: every seed runbook against the Aurora simulator with the fault it is written
//! for. `runbook run NAME --yes` must find the expected cause, run the expected actions (which
//! act on the simulator through its programs, its `EnvironmentFile`, its HTTP API, its files),
//! verify and exit 0; without `--yes` the same fault must leave exit 1 and an incident at the
//! right level. A healthy simulator must leave every runbook at exit 0 with no action.
//!
//! The test machine's own CPU, load and disk are not what these tests are about (cargo may
//! be compiling beside them): the host thresholds are opened wide with `--set`. The `disk`
//! fault has its own test on a small tmpfs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use runbook::sim::{Fault, Sim, SimConfig};
use serde_json::Value;

mod sim_case;
use sim_case::SimCase;

/// Sampling intervals shortened, host thresholds opened (see the module doc).
const FAST: &[&str] = &[
    "growth_every=1s",
    "sustain_every=1s",
    "first_event_within=3s",
    "max_cpu_pct=100.1",
    "max_load1=100000",
    "max_disk_used_pct=100.1",
];

/// A simulator, the seed runbooks pointed at it, an audit file.
struct Aurora {
    case: SimCase,
}

/// A finished `runbook run`.
struct Run {
    code: i32,
    doc: Value,
    stderr: String,
}

impl Run {
    fn steps(&self, kind: &str) -> Vec<&Value> {
        self.doc["steps"]
            .as_array()
            .map(|s| s.iter().filter(|s| s["kind"] == kind).collect())
            .unwrap_or_default()
    }

    /// Ids of steps of `kind` with `status`, in order.
    fn ids(&self, kind: &str, status: &str) -> Vec<String> {
        self.steps(kind)
            .into_iter()
            .filter(|s| s["status"] == status)
            .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn why(&self) -> String {
        let lines: Vec<String> = self.doc["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{} {} {}: {}",
                    s["kind"].as_str().unwrap_or(""),
                    s["id"].as_str().unwrap_or(""),
                    s["status"].as_str().unwrap_or(""),
                    s["decided_by"].as_str().unwrap_or("")
                )
            })
            .collect();
        format!(
            "exit {}, outcome {}\n{}\nstderr: {}",
            self.code,
            self.doc["outcome"],
            lines.join("\n"),
            self.stderr
        )
    }
}

impl Aurora {
    fn start(faults: &[Fault]) -> Aurora {
        Aurora {
            case: SimCase::start(faults),
        }
    }

    fn start_with(faults: &[Fault], prepare: impl FnOnce(&Path)) -> Aurora {
        Aurora {
            case: SimCase::start_with(faults, prepare),
        }
    }

    fn sim(&self) -> &Sim {
        self.case.sim()
    }

    fn runbooks(&self) -> std::path::PathBuf {
        self.case.runbooks()
    }

    /// `--set` values for `runbook`: the simulator's, and [`FAST`], for the params it declares.
    fn sets(&self, runbook: &str) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.runbooks().join(format!("{runbook}.yaml"))).unwrap();
        let declared = |k: &str| text.contains(&format!("\n  {k}: {{"));
        let mut sets: Vec<String> = self
            .sim()
            .params()
            .into_iter()
            .filter(|(k, _)| declared(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        sets.extend(
            FAST.iter()
                .filter(|kv| declared(kv.split('=').next().unwrap()))
                .map(|s| (*s).to_owned()),
        );
        sets
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.arg("--runbooks")
            .arg(self.runbooks())
            .arg("--db")
            .arg(self.case.db())
            .arg("--format")
            .arg("json")
            .env_remove("RUNBOOK_DIR")
            .env_remove("RUNBOOK_DB");
        cmd
    }

    fn run(&self, runbook: &str, yes: bool, answers: &[(&str, bool)]) -> Run {
        self.run_with(runbook, yes, answers, &[])
    }

    /// [`Aurora::run`] with more `--set` values (later ones win).
    fn run_with(&self, runbook: &str, yes: bool, answers: &[(&str, bool)], more: &[&str]) -> Run {
        let mut cmd = self.cli();
        cmd.arg("run").arg(runbook);
        for s in self.sets(runbook) {
            cmd.arg("--set").arg(s);
        }
        for s in more {
            cmd.arg("--set").arg(s);
        }
        if yes {
            cmd.arg("--yes");
        }
        for (id, a) in answers {
            cmd.arg("--answer")
                .arg(format!("{id}={}", if *a { "yes" } else { "no" }));
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        Run {
            code: out.status.code().unwrap_or(-1),
            doc: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Open incidents as JSON.
    fn incidents(&self) -> Value {
        let out = self.cli().arg("incidents").output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

/// One seed runbook's fault and what must follow.
struct Case {
    runbook: &'static str,
    faults: &'static [Fault],
    answers: &'static [(&'static str, bool)],
    /// Causes matched, in order.
    matched: &'static [&'static str],
    /// Actions that run with `--yes`, in order (empty: the runbook only escalates).
    actions: &'static [&'static str],
    /// With `--yes` the runbook fixes it (exit 0); else it hands it on (exit 1).
    fixed: bool,
    /// Escalation levels of the unresolved causes when remediation is not allowed.
    levels: &'static [&'static str],
}

fn check(case: &Case) {
    // Remediation allowed.
    let a = Aurora::start(case.faults);
    let run = a.run(case.runbook, true, case.answers);
    let why = run.why();
    assert_eq!(run.ids("cause", "matched"), case.matched, "{why}");
    let ok_actions = run.ids("action", "ok");
    assert_eq!(ok_actions, case.actions, "{why}");
    if case.fixed {
        assert_eq!(run.code, 0, "{why}");
        assert_eq!(run.doc["outcome"], "remediated", "{why}");
        let verify = run.steps("verify");
        assert!(
            verify.last().is_some_and(|s| s["status"] == "ok"),
            "the last verification did not pass:\n{why}"
        );
        // The fault is gone from the simulator: the actions acted on it.
        assert!(
            a.sim().faults().iter().all(|f| !case.faults.contains(f)),
            "faults left on the simulator: {:?}\n{why}",
            a.sim().faults()
        );
    } else {
        assert_eq!(run.code, 1, "{why}");
    }
    drop(a);

    // Remediation not allowed: the problem remains, an incident is open at the right level.
    let a = Aurora::start(case.faults);
    let run = a.run(case.runbook, false, case.answers);
    let why = run.why();
    assert_eq!(run.code, 1, "{why}");
    assert_eq!(run.ids("cause", "matched"), case.matched, "{why}");
    // Nothing changed the simulator: no program was asked to change a unit.
    assert!(run.ids("action", "ok").is_empty(), "{why}");
    assert!(
        a.sim().calls().iter().all(|c| !c.starts_with("systemctl ")),
        "{:?}\n{why}",
        a.sim().calls()
    );
    let levels: Vec<String> = run
        .steps("escalation")
        .iter()
        .map(|s| s["result"]["level"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(levels, case.levels, "{why}");
    let incidents = a.incidents();
    let open: Vec<&Value> = incidents
        .as_array()
        .or_else(|| incidents["incidents"].as_array())
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    assert!(
        open.iter()
            .any(|i| i["key"] == case.runbook || i["runbook"] == case.runbook),
        "no open incident for {}: {incidents}\n{why}",
        case.runbook
    );
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(&$case);
            }
        )*
    };
}

cases! {
    sse_not_connecting_service_down: Case {
        runbook: "sse-not-connecting",
        faults: &[Fault::Down],
        answers: &[("dashboard_token", true)],
        matched: &["service_down"],
        actions: &["restart_service"],
        fixed: true,
        levels: &["L1"],
    };
    service_down: Case {
        runbook: "service-down",
        faults: &[Fault::Down],
        answers: &[],
        matched: &["service_down"],
        actions: &["restart_service", "reload_nginx"],
        fixed: true,
        levels: &["L1"],
    };
    dead_empty_stream_rotation: Case {
        runbook: "dead-empty-stream",
        faults: &[Fault::Rotation],
        answers: &[],
        matched: &["file_rotation"],
        actions: &["restart_service"],
        fixed: true,
        levels: &["L1"],
    };
    sse_availability_slo_nginx_down: Case {
        runbook: "sse-availability-slo",
        faults: &[Fault::NginxDown],
        answers: &[],
        matched: &["nginx_down"],
        actions: &["restart_nginx"],
        fixed: true,
        levels: &["L1"],
    };
    latency_spikes_clock: Case {
        runbook: "latency-spikes",
        faults: &[Fault::Clock],
        answers: &[],
        matched: &["chrony_down"],
        actions: &["restart_chrony"],
        fixed: true,
        levels: &["L1"],
    };
    exec_latency_p99_exchange_slow: Case {
        runbook: "exec-latency-p99",
        faults: &[Fault::Latency],
        answers: &[],
        matched: &["exchange_slowdown"],
        actions: &["reduce_frequency", "restart_runner"],
        fixed: true,
        levels: &["L1"],
    };
    circuit_breaker_open_rate_limited: Case {
        runbook: "circuit-breaker-open",
        faults: &[Fault::Breaker],
        answers: &[("spreads", false)],
        matched: &["api_rate_limit"],
        actions: &["reduce_kelly", "restart_runner"],
        fixed: true,
        levels: &["L1"],
    };
    calibration_ece_high_drift: Case {
        runbook: "calibration-ece-high",
        faults: &[Fault::Ece],
        answers: &[],
        matched: &["calibration_drift"],
        actions: &["recalibrate"],
        fixed: true,
        levels: &["L1"],
    };
    policy_deny_rate_high_thresholds: Case {
        runbook: "policy-deny-rate-high",
        faults: &[Fault::DenyRate],
        answers: &[("market_conditions", false), ("model_drift", false)],
        matched: &["conservative_thresholds"],
        actions: &["shrink_p", "restart_runner"],
        fixed: true,
        levels: &["L1"],
    };
    high_denial_rate_escalates: Case {
        runbook: "high-denial-rate",
        faults: &[Fault::DenyRate],
        answers: &[("market_conditions", false)],
        matched: &["denials_unexplained"],
        actions: &[],
        fixed: false,
        levels: &["L2"],
    };
    data_loss_incident_restore: Case {
        runbook: "data-loss-incident",
        faults: &[Fault::DataLoss],
        answers: &[("data_loss_confirmed", true)],
        matched: &["data_loss"],
        actions: &["stop_processing", "backup_current", "restore_archive", "resume_operations"],
        fixed: true,
        levels: &["L1"],
    };
    daily_checks_escalate: Case {
        runbook: "daily-checks",
        faults: &[Fault::Down],
        answers: &[],
        matched: &["service_unhealthy"],
        actions: &[],
        fixed: false,
        levels: &["L1"],
    };
    weekly_maintenance_security_findings: Case {
        runbook: "weekly-maintenance",
        faults: &[Fault::Auth],
        answers: &[],
        matched: &["rotation_test", "security_findings"],
        actions: &["rotate_logs"],
        fixed: false,
        levels: &["L1", "L2"],
    };
}

/// Every manual question answered as a healthy host's operator would.
const HEALTHY_ANSWERS: &[(&str, &[(&str, bool)])] = &[
    ("sse-not-connecting", &[("dashboard_token", true)]),
    ("circuit-breaker-open", &[("spreads", false)]),
    ("high-denial-rate", &[("market_conditions", false)]),
    (
        "policy-deny-rate-high",
        &[("market_conditions", false), ("model_drift", false)],
    ),
    ("data-loss-incident", &[("data_loss_confirmed", false)]),
];

#[test]
fn a_healthy_simulator_leaves_every_runbook_healthy_with_no_action() {
    let a = Aurora::start(&[]);
    let names: Vec<String> = std::fs::read_dir(a.runbooks())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
                && n != "policy.yaml"
        })
        .map(|n| n.trim_end_matches(".yaml").to_owned())
        .collect();
    assert_eq!(names.len(), 13);
    // The read-only diagnoses side by side; the weekly routine, which rotates the logs the
    // others read, after them.
    let (weekly, others): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| n == "weekly-maintenance");
    let mut runs: Vec<(String, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = others
            .iter()
            .map(|name| {
                let a = &a;
                s.spawn(move || {
                    let answers = HEALTHY_ANSWERS
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or(&[][..], |(_, a)| *a);
                    (name.clone(), a.run(name, true, answers))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    runs.extend(weekly.into_iter().map(|n| {
        let run = a.run(&n, true, &[]);
        (n, run)
    }));
    assert_eq!(runs.len(), 13);
    for (name, run) in &runs {
        let why = run.why();
        assert_eq!(run.code, 0, "{name}: {why}");
        if name == "weekly-maintenance" {
            // The weekly routine is an action: the manual log rotation test.
            assert_eq!(run.ids("action", "ok"), ["rotate_logs"], "{name}: {why}");
        } else {
            assert_eq!(run.doc["outcome"], "healthy", "{name}: {why}");
            assert!(run.steps("action").is_empty(), "{name}: {why}");
        }
    }
    assert!(
        a.sim().calls().iter().all(|c| !c.starts_with("systemctl")),
        "{:?}",
        a.sim().calls()
    );
}

#[test]
fn two_faults_at_once_report_both_causes_in_order() {
    let a = Aurora::start(&[Fault::Breaker, Fault::Ece]);
    let run = a.run("circuit-breaker-open", true, &[("spreads", false)]);
    let why = run.why();
    assert_eq!(
        run.ids("cause", "matched"),
        ["api_rate_limit", "bad_calibration"],
        "{why}"
    );
    assert_eq!(
        run.ids("action", "ok"),
        ["reduce_kelly", "restart_runner"],
        "{why}"
    );
    // One fixed, one handed on: the problem remains, escalated to the Dev level.
    assert_eq!(run.code, 1, "{why}");
    let levels: Vec<&str> = run
        .steps("escalation")
        .iter()
        .filter_map(|s| s["result"]["level"].as_str())
        .collect();
    assert_eq!(levels, ["L2"], "{why}");

    let a = Aurora::start(&[Fault::Auth, Fault::Cors]);
    let run = a.run("sse-not-connecting", true, &[("dashboard_token", true)]);
    let why = run.why();
    assert_eq!(
        run.ids("cause", "matched"),
        ["auth_failure", "cors"],
        "{why}"
    );
    assert_eq!(run.code, 1, "{why}");
}

#[test]
fn the_simulator_refuses_to_fill_a_big_disk() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        dir: dir.path().join("aurora"),
        faults: vec![Fault::Disk],
        exe: env!("CARGO_BIN_EXE_runbook").into(),
        tick: Duration::from_millis(100),
    };
    let err = rt.block_on(Sim::start(config)).err().expect("refused");
    assert!(err.to_string().contains("512 MiB or less"), "{err}");
    assert!(!Path::new(&dir.path().join("aurora/logs/aurora_events.jsonl.2")).exists());
}

/// The `disk` fault fills a real filesystem: a 16 MiB tmpfs mounted on the simulator's
/// directory in a private user and mount namespace (this test runs itself again inside one
/// with `unshare -r -m`). sse-availability-slo must find the disk nearly full, run the log
/// rotation script, and see the space come back.
#[test]
fn a_nearly_full_disk_is_found_and_freed_by_the_rotation_script() {
    if std::env::var_os("RUNBOOK_E2E_IN_NAMESPACE").is_some() {
        return nearly_full_disk_inside_a_namespace();
    }
    let status = Command::new("unshare")
        .args(["-r", "-m", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_nearly_full_disk_is_found_and_freed_by_the_rotation_script",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUNBOOK_E2E_IN_NAMESPACE", "1")
        .status()
        .expect("unshare (util-linux) runs");
    assert!(
        status.success(),
        "the test inside the namespace failed: {status}"
    );
}

fn nearly_full_disk_inside_a_namespace() {
    let a = Aurora::start_with(&[Fault::Disk], |dir| {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs in the namespace");
    });
    // The disk threshold is the runbook's own (85 %), not the opened one of FAST.
    let run = a.run_with("sse-availability-slo", true, &[], &["max_disk_used_pct=85"]);
    let why = run.why();
    assert_eq!(run.ids("cause", "matched"), ["disk_io"], "{why}");
    assert_eq!(run.ids("action", "ok"), ["rotate_logs"], "{why}");
    assert_eq!(run.code, 0, "{why}");
    let disk = run
        .steps("verify")
        .into_iter()
        .find(|s| s["id"] == "disk")
        .map(|s| s["result"]["disk_used_pct"].as_f64().unwrap())
        .expect("disk verified");
    assert!(disk < 50.0, "still {disk} % used\n{why}");
    // The rotated ballast went into the archive, compressed.
    let archived = std::fs::read_dir(a.sim().layout().archive.clone())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("aurora_events.jsonl.2.")
        });
    assert!(archived, "{why}");
}
