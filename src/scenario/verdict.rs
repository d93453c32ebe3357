//! Running scenarios through the real executor: an in-memory ledger, a sealed host, the
//! scenario's oracle; then the path it took compared with the expectation.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::exec::{Executor, Ledger, MemoryLedger, Options};
use crate::host::{Host, HostMode};
use crate::runbook::Catalog;
use crate::runbook::diagnostic::Diagnostic;
use crate::runbook::model::Runbook;
use crate::scenario::compile::levels;
use crate::scenario::decision_path::DecisionPath;
use crate::scenario::given_oracle::GivenOracle;
use crate::scenario::row::{self, Row};
use crate::scenario::scenario_file::{Scenario, ScenarioFile};
use crate::scenario::sealed_host::SealedHost;

/// The host name scenarios see (`{{ host }}`).
pub const SCENARIO_HOST: &str = "scenario-host";

/// How one scenario went.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every expected decision was taken.
    Passed {
        /// Each decision, expected and actual.
        rows: Vec<Row>,
        /// The path the run took.
        path: DecisionPath,
    },
    /// A decision differs.
    Failed {
        /// Each decision, expected and actual.
        rows: Vec<Row>,
        /// The path the run took.
        path: DecisionPath,
    },
    /// The scenario cannot be judged (a check ran with no given result; the engine failed).
    Invalid {
        /// Why, located at the scenario.
        #[serde(serialize_with = "ser_diag")]
        diagnostic: Box<Diagnostic>,
    },
}

fn ser_diag<S: serde::Serializer>(d: &Diagnostic, s: S) -> Result<S::Ok, S::Error> {
    d.to_json().serialize(s)
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// 1-based line of its name.
    pub line: usize,
    /// 1-based column of its name.
    pub column: usize,
    /// How it went.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Run `rb` through the executor with `host`, `ledger` and `opts` (their oracle answering)
/// to its end, and read back the path it took.
///
/// # Errors
/// The executor's error, as text.
pub fn drive(
    rt: &tokio::runtime::Runtime,
    rb: &Runbook,
    host: &dyn Host,
    ledger: &MemoryLedger,
    params: Map<String, Value>,
    opts: Options,
) -> Result<DecisionPath, String> {
    let mut exec = Executor::new(rb, host, ledger, params, opts);
    let result = rt.block_on(exec.run()).map_err(|e| e.to_string())?;
    drop(exec);
    let outcome = serde_json::to_value(result.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(DecisionPath::from_records(&ledger.steps(), &outcome))
}

/// Run every scenario of `file` (its runbook is in `cat`).
#[must_use]
pub fn run_file(
    rt: &tokio::runtime::Runtime,
    file: &ScenarioFile,
    cat: &Catalog,
) -> Vec<ScenarioResult> {
    let Some(rb) = cat.find(&file.runbook) else {
        return Vec::new();
    };
    let levels = levels(cat, rb);
    file.scenarios
        .iter()
        .map(|sc| ScenarioResult {
            name: sc.name.clone(),
            line: sc.line,
            column: sc.column,
            verdict: run_one(rt, rb, cat, &levels, file, sc),
        })
        .collect()
}

fn run_one(
    rt: &tokio::runtime::Runtime,
    rb: &Runbook,
    cat: &Catalog,
    levels: &[String],
    file: &ScenarioFile,
    sc: &Scenario,
) -> Verdict {
    let invalid = |code: &'static str, message: String, help: &str| Verdict::Invalid {
        diagnostic: Box::new(
            Diagnostic::error(code, message)
                .at(&file.source, sc.span)
                .help(help),
        ),
    };
    let params = match crate::plan::resolve_params(rb, &sc.sets) {
        Ok(p) => p,
        Err(e) => return invalid("bad-param", e.to_string(), "see `set:`"),
    };
    let ledger = MemoryLedger::new();
    for (id, used) in &sc.limits_used {
        if let Some(limit) = rb.action(id).and_then(|a| a.limit) {
            // The ledger's key for an action's limit (the executor's, and the audit store's).
            let key = format!("{}/{id}", rb.name);
            for _ in 0..(*used).min(limit.max) {
                let _ = ledger.take_limit(&key, limit.max, limit.per);
            }
        }
    }
    let oracle = Arc::new(GivenOracle::new(rb, sc));
    let opts = Options {
        yes: sc.yes,
        trigger: "test".into(),
        alert: sc.alert.clone(),
        ladder: cat
            .policy
            .as_ref()
            .map(|p| p.ladder_levels(rb))
            .unwrap_or_default(),
        approved: sc.approved.clone(),
        oracle: Some(Arc::clone(&oracle) as Arc<dyn crate::exec::events::Oracle>),
        ..Options::default()
    };
    let host = SealedHost::new(SCENARIO_HOST, HostMode::Real);
    let path = match drive(rt, rb, &host, &ledger, params, opts) {
        Ok(p) => p,
        Err(e) => {
            return invalid(
                "engine-fault",
                format!("the run failed: {e}"),
                "report this",
            );
        }
    };
    let missing = oracle.missing();
    if !missing.is_empty() {
        return invalid(
            "missing-result",
            format!(
                "scenario `{}`: check(s) {} ran with no result given",
                sc.name,
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "give each a result under the scenario's `checks:` or the file's `baseline:`",
        );
    }
    let rows = row::expectation(&sc.expect, &path, levels);
    if rows.iter().all(|r| r.same) {
        Verdict::Passed { rows, path }
    } else {
        Verdict::Failed { rows, path }
    }
}
