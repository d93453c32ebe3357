//! `runbook triage` against the Aurora simulator: which runbooks' symptoms are present, in
//! which order, and that it changes nothing.

use runbook::sim::Fault;
use serde_json::Value;
use std::process::Command;

mod sim_case;
use sim_case::SimCase;

struct Aurora {
    case: SimCase,
}

impl Aurora {
    fn start(faults: &[Fault]) -> Aurora {
        Aurora {
            case: SimCase::start(faults),
        }
    }

    /// `runbook triage` with every simulator parameter and short samples; (exit, stdout).
    fn triage(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        cmd.arg("--runbooks")
            .arg(self.case.runbooks())
            .arg("--db")
            .arg(self.case.db())
            .arg("triage");
        for (k, v) in self.case.sim().params() {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        for s in [
            "growth_every=1s",
            "sustain_every=1s",
            "first_event_within=2s",
        ] {
            cmd.arg("--set").arg(s);
        }
        let out = cmd.args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn a_healthy_host_has_no_symptom_and_triage_exits_0() {
    let a = Aurora::start(&[]);
    let (code, out, err) = a.triage(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no symptom present"), "{out}");
    assert!(!out.contains("run: runbook run"), "{out}");
}

#[test]
fn an_open_breaker_ranks_the_p0_runbook_first_and_changes_nothing() {
    let a = Aurora::start(&[Fault::Breaker]);
    let (code, out, err) = a.triage(&["--format", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let ranked: Vec<&str> = v["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["runbook"].as_str().unwrap())
        .collect();
    // P0 circuit-breaker-open before P1 latency-spikes (whose "breaker may trip" is present).
    assert_eq!(ranked, ["circuit-breaker-open", "latency-spikes"], "{out}");
    assert_eq!(v["run"], "circuit-breaker-open");
    let first = &v["ranked"][0];
    assert_eq!(first["present"][0][0], "breaker_open");
    assert!(
        first["evidence"][0]
            .as_str()
            .unwrap()
            .contains("breaker_state failed"),
        "{first}"
    );
    // Read-only: no program was asked to change anything, no audit row was written.
    assert!(
        a.case
            .sim()
            .calls()
            .iter()
            .all(|c| c.starts_with("fault on")),
        "{:?}",
        a.case.sim().calls()
    );
    assert!(!a.case.db().exists());
}

#[test]
fn service_narrows_the_runbooks_and_an_unknown_service_is_invalid_input() {
    let a = Aurora::start(&[Fault::Breaker]);
    let (code, out, err) = a.triage(&["--service", "aurora-live-feed"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        !out.contains("circuit-breaker-open"),
        "a runner runbook was triaged: {out}"
    );
    assert!(out.contains("1. P1 latency-spikes"), "{out}");
    assert!(out.contains("run: runbook run latency-spikes"), "{out}");
    let (code, out, err) = a.triage(&["--service", "nope"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no runbook for service `nope`"), "{err}");
}
