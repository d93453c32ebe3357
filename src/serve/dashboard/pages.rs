//! What each page shows, read from the audit store and the catalog into the templates'
//! context. Blocking (`SQLite`): the routes call these off the async threads. Every read is
//! bounded: a page lists at most [`RUNS_SHOWN`] runs, found among the latest
//! [`RUNS_SCANNED`] of the runbook chosen.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::audit::AuditError;
use crate::escalation::{self, Incident};
use crate::plan::Plan;
use crate::report::postmortem::{
    ReadError, Recorded, Report, ReportFormat, Scope, Sources, Templates, inline_svg, run_graph,
};
use crate::runbook::model::Runbook;
use crate::runbook::policy::Policy;
use crate::serve::server::App;

use super::views::relative;

/// Runs listed on the runs page.
pub const RUNS_SHOWN: u32 = 100;
/// Runs read to find those of one outcome.
pub const RUNS_SCANNED: u32 = 2000;
/// Alert labels shown per run.
const LABELS_SHOWN: usize = 6;
/// A run still going, in the outcome filter.
pub const RUNNING: &str = "running";
/// The outcomes offered by the filter.
pub const OUTCOMES: [&str; 6] = [
    "healthy",
    "remediated",
    "problem_remains",
    "fault",
    "interrupted",
    RUNNING,
];

/// The runs page's query string.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RunsFilter {
    /// Runs of this runbook only.
    #[serde(default)]
    pub runbook: Option<String>,
    /// Runs that ended so (or `running`).
    #[serde(default)]
    pub outcome: Option<String>,
}

impl RunsFilter {
    /// Empty fields mean no filter (what the form sends for "all").
    #[must_use]
    pub fn normalized(self) -> RunsFilter {
        let keep = |v: Option<String>| v.filter(|s| !s.is_empty());
        RunsFilter {
            runbook: keep(self.runbook),
            outcome: keep(self.outcome),
        }
    }
}

fn runbook<'a>(app: &'a App, name: &str) -> Option<&'a Runbook> {
    app.catalog().runbooks.iter().find(|r| r.name == name)
}

/// An alert context's labels as sorted pairs, `alertname` first, at most `LABELS_SHOWN`.
fn labels(alert: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(map)) = alert.and_then(|a| a.get("labels")) else {
        return Vec::new();
    };
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut pairs: Vec<(String, String)> = map
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    pairs.sort();
    if let Some(name) = map.get("alertname") {
        pairs.insert(0, ("alertname".into(), text(name)));
    }
    pairs.truncate(LABELS_SHOWN);
    pairs
}

/// The runs page: the latest runs, newest first, filtered.
///
/// # Errors
/// When the store fails.
pub fn runs(app: &App, filter: &RunsFilter) -> Result<Value, AuditError> {
    let store = app.store();
    let scan = if filter.outcome.is_some() {
        RUNS_SCANNED
    } else {
        RUNS_SHOWN
    };
    let found = store.history(filter.runbook.as_deref(), scan)?;
    let mut runs = Vec::new();
    for r in found {
        let outcome = r.outcome.clone().unwrap_or_else(|| RUNNING.into());
        if filter.outcome.as_ref().is_some_and(|o| *o != outcome) {
            continue;
        }
        if runs.len() == RUNS_SHOWN as usize {
            break;
        }
        let context = store.run_context(&r.id)?;
        runs.push(json!({
            "id": r.id,
            "runbook": r.runbook,
            "title": runbook(app, &r.runbook).map(|rb| rb.title.clone()),
            "trigger": r.trigger,
            "mode": r.mode,
            "labels": labels(context.as_ref().and_then(|(_, a)| a.as_ref())),
            "started_at": r.started_at,
            "duration_ms": r.duration_ms,
            "outcome": outcome,
        }));
    }
    let mut names: Vec<&str> = app
        .catalog()
        .runbooks
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    names.sort_unstable();
    Ok(json!({
        "nav": "runs",
        "live": "runs",
        "capped": runs.len() == RUNS_SHOWN as usize,
        "runs": runs,
        "runbooks": names,
        "outcomes": OUTCOMES,
        "runbook": filter.runbook,
        "outcome": filter.outcome,
    }))
}

/// A deadline as the incidents page shows it.
fn clock(due: &str, now: DateTime<Utc>) -> Value {
    let at = DateTime::parse_from_rfc3339(due).map(|t| t.with_timezone(&Utc));
    match at {
        Ok(at) => json!({"due_at": due, "rel": relative(at, now), "past": at <= now}),
        Err(_) => json!({"due_at": due, "rel": "", "past": false}),
    }
}

fn incident(app: &App, i: &Incident, now: DateTime<Utc>) -> Result<Value, AuditError> {
    let mut v = i.to_json(now);
    let alert = match &i.last_run_id {
        Some(run) => app.store().run_context(run)?.and_then(|(_, a)| a),
        None => None,
    };
    let next = i.next_level().map(|l| l.id.clone());
    let ladder: Vec<Value> = i
        .levels
        .iter()
        .enumerate()
        .map(|(n, l)| {
            json!({
                "id": l.id,
                "name": l.name,
                "after_ms": l.after_ms,
                "reached": n < i.level as usize,
                "current": n + 1 == i.level as usize,
                "next": next.as_deref() == Some(l.id.as_str()),
            })
        })
        .collect();
    if let (Some(due), Some(next)) = (&i.next_due_at, v.get_mut("next"))
        && let (Value::Object(next), Value::Object(c)) = (next, clock(due, now))
    {
        next.extend(c);
    }
    for (key, due) in [
        ("response", &i.response_due_at),
        ("resolution", &i.resolution_due_at),
    ] {
        if let (Some(Value::Object(part)), Value::Object(c)) = (v.get_mut(key), clock(due, now)) {
            part.extend(c.into_iter().filter(|(k, _)| k != "due_at"));
        }
    }
    v["ladder_levels"] = json!(ladder);
    v["labels"] = json!(labels(alert.as_ref()));
    v["title"] = json!(runbook(app, &i.runbook).map(|rb| rb.title.clone()));
    Ok(v)
}

/// The incidents page: the open and acknowledged incidents with their clocks at `now`.
///
/// # Errors
/// When the store fails.
pub fn incidents(app: &App, now: DateTime<Utc>) -> Result<Value, AuditError> {
    let list = escalation::list(app.store())?;
    let shown = list
        .iter()
        .map(|i| incident(app, i, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "nav": "incidents",
        "live": "incidents",
        "now": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "incidents": shown,
    }))
}

/// The runbooks page: each served runbook, with its step graph (`graphs`, by name: the SVG,
/// or why there is none).
#[must_use]
pub fn runbooks(app: &App, graphs: &BTreeMap<String, Result<String, String>>) -> Value {
    let mut list: Vec<&Runbook> = app.catalog().runbooks.iter().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let shown: Vec<Value> = list
        .into_iter()
        .map(|rb| {
            let graph = graphs.get(&rb.name);
            json!({
                "name": rb.name,
                "title": rb.title,
                "severity": rb.severity,
                "service": rb.service,
                "alerts": rb.triggers.alerts,
                "matchers": rb.triggers.matchers.iter().collect::<Vec<_>>(),
                "schedule": rb.triggers.schedule,
                "checks": rb.checks.len(),
                "causes": rb.causes.len(),
                "actions": rb.actions.len(),
                "graph": graph.and_then(|g| g.as_ref().ok()),
                "graph_error": graph.and_then(|g| g.as_ref().err()),
            })
        })
        .collect();
    json!({ "nav": "runbooks", "runbooks": shown })
}

/// A runbook's plain step graph, or why there is none.
///
/// # Errors
/// When its plan cannot be built (the message says why).
pub fn plain_graph(rb: &Runbook, policy: Option<&Policy>) -> Result<String, String> {
    Plan::build(rb, policy, &[])
        .map(|plan| inline_svg(&plan, &BTreeMap::new()))
        .map_err(|e| format!("no graph: {e}"))
}

/// A run's page: its post-mortem as one HTML document.
pub struct RunPage {
    /// The post-mortem (`runbook report RUN --format html`).
    pub html: String,
    /// The run has not ended: the page follows it live.
    pub running: bool,
}

/// Why a run's page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum RunPageError {
    /// No such run, or an ambiguous prefix (the message says which).
    #[error("{0}")]
    NotFound(String),
    /// The audit file cannot be read.
    #[error("{0}")]
    Store(String),
    /// The report's template failed (a defect).
    #[error("{0}")]
    Template(String),
}

/// Run `id`'s post-mortem, judged at `now`, from the audit file (read-only), the runbook as
/// served and policy.yaml.
///
/// # Errors
/// See [`RunPageError`].
pub fn run(app: &App, id: &str, now: DateTime<Utc>) -> Result<RunPage, RunPageError> {
    let rec = Recorded::run(app.db(), id).map_err(|e| match e {
        ReadError::Db(_) => RunPageError::Store(e.to_string()),
        _ => RunPageError::NotFound(e.to_string()),
    })?;
    let cat = app.catalog();
    let first = rec.runs.first();
    let rb = first.and_then(|r| cat.find(&r.summary.runbook));
    let running = first.is_some_and(|r| r.summary.finished_at.is_none());
    let sources = Sources {
        runbook: rb,
        policy: cat.policy.as_ref(),
        now,
    };
    let mut report = Report::build(&rec, Scope::Run, &sources);
    if let (Some(rb), Some(last)) = (rb, rec.runs.last()) {
        report.graph = run_graph(rb, cat.policy.as_ref(), last);
    }
    let html = Templates::new(None)
        .render(ReportFormat::Html, &report.to_context())
        .map_err(|e| RunPageError::Template(e.to_string()))?;
    Ok(RunPage { html, running })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_put_alertname_first_and_are_capped() {
        let alert = json!({"labels": {
            "zone": "b", "alertname": "Down", "instance": "h1:9100", "a": "1", "b": "2",
            "c": "3", "d": 4
        }});
        let got = labels(Some(&alert));
        assert_eq!(got.len(), LABELS_SHOWN);
        assert_eq!(got[0], ("alertname".into(), "Down".into()));
        assert_eq!(got[1], ("a".into(), "1".into()));
        assert_eq!(
            got[4],
            ("d".into(), "4".into()),
            "a number is shown as written"
        );
        assert!(labels(None).is_empty());
        assert!(labels(Some(&json!({"labels": null}))).is_empty());
    }

    #[test]
    fn an_empty_filter_field_is_no_filter() {
        let f = RunsFilter {
            runbook: Some(String::new()),
            outcome: Some("fault".into()),
        }
        .normalized();
        assert_eq!(f.runbook, None);
        assert_eq!(f.outcome.as_deref(), Some("fault"));
    }
}
