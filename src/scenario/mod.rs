//! Scenario tests (`runbook test`) and replays of recorded runs (`runbook replay`): the real
//! executor deciding on results given in place of the host.
//!
//! A scenario file sits beside the runbooks, `runbooks/tests/<runbook>.yaml`:
//!
//! ```yaml
//! runbook: service-down
//! baseline:                        # results shared by the scenarios (each may replace them)
//!   service_active: { active_state: active }
//!   healthz: { status: 200 }
//! scenarios:
//!   - name: service down, restart fixes it
//!     checks:
//!       service_active: { active_state: failed }
//!       healthz: { unreachable: connection refused }
//!     after: { healthz: { status: 200 } }   # verification re-runs after the remedy
//!     yes: true                             # like --yes
//!     expect:
//!       outcome: remediated
//!       matched: [service_down]
//!       actions: { restart_service: ok }
//!       escalation: none
//! ```
//!
//! Phases, as for runbooks: `raw` (as written, spans kept) → `compile` (checked against the
//! compiled runbook: ids, result fields per probe, params) → [`ScenarioFile`] → `verdict`
//! (each scenario run through [`crate::exec::Executor`] with a [`GivenOracle`] in place of
//! probes and actions, a [`SealedHost`] and an in-memory ledger; no sleep, a fixed `now`)
//! → [`DecisionPath`] compared with the expectation as [`Row`]s. `replay` runs the same
//! executor with a [`RecordedOracle`] that answers from an audit trail's steps;
//! `recorded_scenario` turns those steps into a scenario file ([`RecordedScenario`], written
//! by `yaml_writer`) that expects the decisions the run took.
//!
//! Nothing here touches the host: no probe runs, no action runs, nothing is written but the
//! `JUnit` report the command asks for.

pub mod compile;
pub mod decision_path;
pub mod given;
pub mod given_oracle;
pub mod junit;
pub mod raw;
pub mod recorded_scenario;
pub mod replay;
pub mod row;
pub mod scenario_file;
pub mod sealed_host;
pub mod verdict;
pub mod yaml_writer;

pub use decision_path::DecisionPath;
pub use given_oracle::GivenOracle;
pub use recorded_scenario::RecordedScenario;
pub use replay::{RecordedGates, RecordedOracle, RecordedRun, RecordedStep, Replay};
pub use row::Row;
pub use scenario_file::{Scenario, ScenarioFile};
pub use sealed_host::SealedHost;
pub use verdict::{ScenarioResult, Verdict};

/// A catalog of one runbook compiled from `yaml` (file name `t.yaml`), for unit tests.
#[cfg(test)]
pub(crate) fn test_catalog(yaml: &str) -> crate::runbook::catalog::Catalog {
    use crate::runbook::diagnostic::SourceFile;
    let src = SourceFile::new("t.yaml", yaml);
    let raw: crate::runbook::raw::RawRunbook =
        crate::runbook::load::parse(&src).expect("runbook parses");
    let (rb, diags) =
        crate::runbook::compile::compile(&src, &raw, crate::runbook::compile::Context::default());
    crate::runbook::catalog::Catalog {
        runbooks: vec![rb.unwrap_or_else(|| panic!("runbook compiles: {diags:?}"))],
        ..crate::runbook::catalog::Catalog::default()
    }
}
