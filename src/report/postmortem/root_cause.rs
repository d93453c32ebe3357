//! [`RootCause`]: the causes matched, with the evidence (each check their `when` reads and
//! what it saw, and how its verification went); the causes ruled out and why; the ones left
//! unknown. Across the runs of an incident, a cause counts as matched if any run matched it.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use crate::audit::StepRow;
use crate::report::postmortem::recorded::{Recorded, RecordedRun};
use crate::report::postmortem::report::{status, summary};
use crate::runbook::model::Runbook;

/// The root-cause section.
#[derive(Debug, Clone, Serialize)]
pub struct RootCause {
    /// Causes matched (in the first run that matched each).
    pub matched: Vec<CauseView>,
    /// Causes ruled out: every check they read looked, and the `when` was false.
    pub ruled_out: Vec<CauseView>,
    /// Causes neither matched nor ruled out: a check they read could not look.
    pub unknown: Vec<CauseView>,
}

/// One cause as a run decided it.
#[derive(Debug, Clone, Serialize)]
pub struct CauseView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Its `when`, as the run had it.
    pub when: String,
    /// matched, `ruled_out`, unknown.
    pub status: String,
    /// What decided it.
    pub why: String,
    /// The runbook's words for a person.
    pub guidance: Option<String>,
    /// The run that decided it.
    pub run: String,
    /// The remedy actions the runbook names for it now.
    pub remedy: Vec<String>,
    /// The level it escalates to, per the runbook now.
    pub escalate: Option<String>,
    /// The checks its `when` reads and what they saw.
    pub evidence: Vec<Evidence>,
}

/// One check behind a cause.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// Check id.
    pub check: String,
    /// Its status in the run (`not run` when the run has no row of it).
    pub status: String,
    /// What it saw: the deciding value, the reason.
    pub saw: String,
    /// Its last verification in the run (`ok: status=200`), if it was re-run.
    pub verified: Option<String>,
}

static CHECK_REF: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\bchecks\.([A-Za-z_][A-Za-z0-9_-]*)").ok());

impl RootCause {
    /// The causes of `rec`'s runs; `rb` (the runbook now) adds remedies and guidance.
    #[must_use]
    pub fn new(rec: &Recorded, rb: Option<&Runbook>) -> RootCause {
        let mut seen: Vec<CauseView> = Vec::new();
        for run in &rec.runs {
            for step in run.steps.iter().filter(|s| s.kind == "cause") {
                let view = cause_view(run, step, rb);
                match seen.iter_mut().find(|c| c.id == view.id) {
                    // A cause matched once stays matched, with that run's evidence.
                    Some(c) if c.status == "matched" => {}
                    Some(c) => *c = view,
                    None => seen.push(view),
                }
            }
        }
        let mut rc = RootCause {
            matched: Vec::new(),
            ruled_out: Vec::new(),
            unknown: Vec::new(),
        };
        for c in seen {
            match c.status.as_str() {
                "matched" => rc.matched.push(c),
                "ruled_out" => rc.ruled_out.push(c),
                _ => rc.unknown.push(c),
            }
        }
        rc
    }
}

fn cause_view(run: &RecordedRun, step: &StepRow, rb: Option<&Runbook>) -> CauseView {
    let text = |k: &str| {
        step.inputs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let when = text("when");
    let cause = rb.and_then(|rb| rb.cause(&step.step_id));
    let mut checks: Vec<String> = Vec::new();
    if let Some(re) = CHECK_REF.as_ref() {
        for c in re.captures_iter(&when) {
            let id = c[1].to_owned();
            if !checks.contains(&id) {
                checks.push(id);
            }
        }
    }
    // The runbook's own list, when it still has this `when` (the run's text is the truth).
    if let Some(c) = cause.filter(|c| c.when == when) {
        // Its references to other causes (`causes.x.matched`) are not evidence checks.
        let is_check = |id: &String| rb.is_some_and(|rb| rb.check(id).is_some());
        for id in c.checks.iter().filter(|id| is_check(id)) {
            if !checks.contains(id) {
                checks.push(id.clone());
            }
        }
    }
    let evidence = checks.into_iter().map(|id| evidence(run, id)).collect();
    let title = text("title");
    CauseView {
        title: if title.is_empty() {
            cause.map(|c| c.title.clone()).unwrap_or_default()
        } else {
            title
        },
        id: step.step_id.clone(),
        when,
        status: status(step).to_owned(),
        why: summary(step),
        guidance: step
            .guidance
            .clone()
            .or_else(|| cause.and_then(|c| c.guidance.clone())),
        run: run.summary.id.clone(),
        remedy: cause.map(|c| c.remedy.clone()).unwrap_or_default(),
        escalate: cause.and_then(|c| c.escalate.clone()),
        evidence,
    }
}

fn evidence(run: &RecordedRun, check: String) -> Evidence {
    let row = run
        .steps
        .iter()
        .find(|s| s.kind == "check" && s.step_id == check);
    let verified = run
        .steps
        .iter()
        .rev()
        .find(|s| s.kind == "verify" && s.step_id == check)
        .map(|s| format!("{}: {}", status(s), summary(s)));
    Evidence {
        status: row.map_or_else(|| "not run".to_owned(), |s| status(s).to_owned()),
        saw: row.map(summary).unwrap_or_default(),
        verified,
        check,
    }
}
