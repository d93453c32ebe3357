//! Post-mortem drafts (`runbook report`): one run, or one incident across its runs, as
//! Markdown or one self-contained HTML file, following policy.yaml's `postmortem` template
//! (Timeline, Impact, Root cause, Actions, Lessons).
//!
//! Three phases, one per type:
//! - [`Recorded`] (`recorded.rs`): what the audit database holds, read through a read-only
//!   connection (no migration, no marking of interrupted runs).
//! - [`Report`] (`report.rs`, with `timeline.rs`, `impact.rs`, `root_cause.rs`,
//!   `actions.rs`): the draft as data, built from the record, the runbook as it is now and
//!   policy.yaml. Secrets: the audit holds them redacted; the report reads nothing else that
//!   could hold one but the runbook, whose secret params' defaults are redacted again from
//!   everything the templates see ([`Report::to_context`]).
//! - [`Templates`] (`templates.rs`): minijinja templates embedded in the binary
//!   (`src/report/templates/`), overridable by file name from a directory.
//!
//! The HTML step graph is [`crate::report::render_svg`] of the plan of the runbook as it is
//! now, coloured with the statuses of the report's last run ([`graph_statuses`]).

mod actions;
mod clock;
mod impact;
mod recorded;
mod report;
mod root_cause;
mod templates;
mod timeline;

use std::collections::BTreeMap;

pub use actions::{ActionView, Actions, LevelView};
pub use impact::{Impact, SeverityView, Target};
pub use recorded::{Delivery, LevelFired, Notification, ReadError, Recorded, RecordedRun};
pub use report::{
    AlertView, Graph, IncidentView, Lessons, Report, RunView, RunbookInfo, Scope, Section, Sources,
    StepDetail,
};
pub use root_cause::{CauseView, Evidence, RootCause};
pub use templates::{BUILT_IN, ReportFormat, TemplateError, Templates};
pub use timeline::{Event, timeline};

/// The status of each node of the step graph (`check:ID`, `cause:ID`, `action:ID`,
/// `verify:ID`, `escalation:LEVEL`) as `run` recorded it: the last row of each wins (the last
/// verification attempt), a rollback colours its action unless the action ran as a remedy.
#[must_use]
pub fn graph_statuses(run: &RecordedRun) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in &run.steps {
        let status = report::status(s).to_owned();
        match s.kind.as_str() {
            "check" | "cause" | "action" | "verify" => {
                out.insert(format!("{}:{}", s.kind, s.step_id), status);
            }
            "rollback" => {
                out.entry(format!("action:{}", s.step_id)).or_insert(status);
            }
            "escalation" => {
                let level = s
                    .inputs
                    .get("level")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(&s.step_id);
                out.insert(format!("escalation:{level}"), status);
            }
            _ => {}
        }
    }
    out
}

/// A step graph as inline SVG for an HTML page: coloured by `status` (empty: plain). Inline
/// SVG in HTML needs no namespace declaration, and the page then names no URL at all.
#[must_use]
pub fn inline_svg(plan: &crate::plan::Plan, status: &BTreeMap<String, String>) -> String {
    crate::report::render_svg(plan, status).replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

/// The graph of `rb` as it is now, coloured by what `run` recorded, with the run's own
/// (non-secret) params where they still fit so its templates render as they did (the
/// defaults otherwise): what `runbook report --format html` and the dashboard draw.
#[must_use]
pub fn run_graph(
    rb: &crate::runbook::model::Runbook,
    policy: Option<&crate::runbook::policy::Policy>,
    run: &RecordedRun,
) -> Option<Graph> {
    use crate::plan::Plan;
    let sets: Vec<String> = rb
        .params
        .iter()
        .filter(|p| !p.secret)
        .filter_map(|p| {
            let v = run.summary.params.get(&p.name)?;
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => v.to_string(),
                _ => return None,
            };
            Some(format!("{}={text}", p.name))
        })
        .collect();
    let plan = Plan::build(rb, policy, &sets)
        .or_else(|_| Plan::build(rb, policy, &[]))
        .ok()?;
    Some(Graph {
        run: run.summary.id.clone(),
        svg: inline_svg(&plan, &graph_statuses(run)),
    })
}
