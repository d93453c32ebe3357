//! A scenario file checked against its runbook: every id resolved, every given result read
//! for its check's probe. Holding a [`ScenarioFile`] means `compile.rs` found nothing wrong.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::runbook::diagnostic::{SourceFile, Span};
use crate::scenario::given::Given;
use crate::scenario::raw::{
    ActionState, CheckState, ExpectedOutcome, RawActionResult, VerifyExpect,
};

/// The scenarios of one runbook, from one file.
#[derive(Debug)]
pub struct ScenarioFile {
    /// The file, for locating problems found when a scenario runs.
    pub source: Arc<SourceFile>,
    /// The runbook's name.
    pub runbook: String,
    /// The scenarios, in file order.
    pub scenarios: Vec<Scenario>,
}

/// One scenario, ready to run.
#[derive(Debug)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Where its name is written.
    pub span: Span,
    /// 1-based line of its name.
    pub line: usize,
    /// 1-based column of its name.
    pub column: usize,
    /// Parameters as `name=value`, like `--set`.
    pub sets: Vec<String>,
    /// The `alert` context.
    pub alert: Option<Value>,
    /// Each check's result (the file's `baseline` with the scenario's own over it).
    pub checks: HashMap<String, Given>,
    /// Results of verification re-runs, one per attempt (the last repeats).
    pub after: HashMap<String, Vec<Given>>,
    /// Outcomes of actions (default `ok`).
    pub actions: HashMap<String, RawActionResult>,
    /// Remediation allowed.
    pub yes: bool,
    /// Actions approved beforehand.
    pub approved: HashSet<String>,
    /// Uses of actions' limits spent before the run.
    pub limits_used: Vec<(String, u32)>,
    /// The decisions expected.
    pub expect: Expect,
}

/// The decisions a scenario expects; `None` and empty lists of checks or verifications are
/// not compared.
#[derive(Debug, Clone)]
pub struct Expect {
    /// How the run ends.
    pub outcome: ExpectedOutcome,
    /// Symptoms present, exactly.
    pub symptoms: Option<Vec<String>>,
    /// Causes matched, exactly and in order.
    pub matched: Option<Vec<String>>,
    /// Causes ruled out, exactly.
    pub ruled_out: Option<Vec<String>>,
    /// Causes unknown, exactly.
    pub unknown: Option<Vec<String>>,
    /// Statuses of these checks.
    pub checks: Vec<(String, CheckState)>,
    /// Remedy actions attempted, in order (`not_run`: not attempted).
    pub actions: Option<Vec<(String, ActionState)>>,
    /// Rollback actions attempted, in order (`not_run`: not attempted).
    pub rollbacks: Option<Vec<(String, ActionState)>>,
    /// Verification of these checks.
    pub verify: Vec<(String, VerifyExpect)>,
    /// The highest escalation level asked for, or `none`.
    pub escalation: Option<String>,
}
