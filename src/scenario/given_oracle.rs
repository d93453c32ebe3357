//! The oracle of `runbook test`: a scenario's given results in place of the host.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, json};

use crate::actions::ActionOutcome;
use crate::exec::StepKind;
use crate::exec::events::Oracle;
use crate::probes::{ProbeKind, ProbeOutcome};
use crate::runbook::model::Runbook;
use crate::scenario::given::Given;
use crate::scenario::raw::RawActionResult;
use crate::scenario::scenario_file::Scenario;

/// The `now` every scenario sees: tests do not depend on the clock.
pub const FIXED_NOW: &str = "2025-01-01T00:00:00.000Z";

/// Answers from a scenario. A check that runs without a given result is recorded as
/// missing (and answers `error`), except a `manual` check, which is `unknown` as with no
/// terminal.
#[derive(Debug)]
pub struct GivenOracle {
    checks: HashMap<String, Given>,
    after: HashMap<String, Vec<Given>>,
    actions: HashMap<String, RawActionResult>,
    manual: HashSet<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Verification attempts asked so far, by check.
    attempts: HashMap<String, usize>,
    /// Checks that ran with no given result, in the order asked.
    missing: Vec<String>,
}

impl GivenOracle {
    /// The oracle of scenario `sc` of runbook `rb`.
    #[must_use]
    pub fn new(rb: &Runbook, sc: &Scenario) -> Self {
        GivenOracle {
            checks: sc.checks.clone(),
            after: sc.after.clone(),
            actions: sc.actions.clone(),
            manual: rb
                .checks
                .iter()
                .filter(|c| c.probe == ProbeKind::Manual)
                .map(|c| c.id.clone())
                .collect(),
            state: Mutex::new(State::default()),
        }
    }

    /// Checks that ran with no given result.
    #[must_use]
    pub fn missing(&self) -> Vec<String> {
        self.state().missing.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn first(&self, id: &str, sample: u32) -> ProbeOutcome {
        if let Some(g) = self.checks.get(id) {
            return g.outcome(sample);
        }
        if self.manual.contains(id) {
            return ProbeOutcome::Unknown("no terminal to ask".into());
        }
        let mut st = self.state();
        if !st.missing.iter().any(|m| m == id) {
            st.missing.push(id.to_owned());
        }
        ProbeOutcome::Error("no result given in the scenario".into())
    }
}

impl Oracle for GivenOracle {
    fn probe(&self, kind: StepKind, id: &str, sample: u32) -> ProbeOutcome {
        if kind != StepKind::Verify {
            return self.first(id, sample);
        }
        let attempt = {
            let mut st = self.state();
            let n = st.attempts.entry(id.to_owned()).or_insert(0);
            if sample == 0 {
                *n += 1;
            }
            *n
        };
        match self.after.get(id).filter(|a| !a.is_empty()) {
            Some(results) => results[(attempt - 1).min(results.len() - 1)].outcome(sample),
            // Not given: the remedy changed nothing this check sees.
            None => self.first(id, sample),
        }
    }

    fn action(&self, _kind: StepKind, id: &str) -> ActionOutcome {
        match self.actions.get(id) {
            Some(RawActionResult::Failed(reason)) => ActionOutcome::failed(reason.clone()),
            Some(RawActionResult::Ok) | None => ActionOutcome {
                ok: true,
                summary: "ok (given)".into(),
                detail: Map::from_iter([("given".to_owned(), json!(true))]),
            },
        }
    }

    fn now(&self) -> String {
        FIXED_NOW.to_owned()
    }
}
