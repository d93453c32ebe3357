//! [`Report`]: the post-mortem draft as data — what the templates render. Built from what the
//! audit recorded ([`Recorded`]), the runbook as it is now and policy.yaml; nothing here
//! writes Markdown or HTML.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::{StepRow, redact};
use crate::escalation::Incident;
use crate::report::postmortem::actions::Actions;
use crate::report::postmortem::clock;
use crate::report::postmortem::impact::{Impact, SeverityView};
use crate::report::postmortem::recorded::{Recorded, RecordedRun};
use crate::report::postmortem::root_cause::RootCause;
use crate::report::postmortem::timeline::{Event, timeline};
use crate::runbook::model::Runbook;
use crate::runbook::policy::Policy;

/// What the report is built with besides the record.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The runbook of the same name in the runbook dir, as it is now, if it compiles.
    pub runbook: Option<&'a Runbook>,
    /// policy.yaml, if there is one.
    pub policy: Option<&'a Policy>,
    /// The clock deadlines are judged against.
    pub now: DateTime<Utc>,
}

/// The post-mortem draft of one run or one incident.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `run` (one run) or `incident` (every run of an incident).
    pub scope: &'static str,
    /// The heading.
    pub title: String,
    /// When the report was made.
    pub generated_at: String,
    /// The runbook.
    pub runbook: RunbookInfo,
    /// The severity, from the incident, else from the runbook, with policy.yaml's words.
    pub severity: Option<SeverityView>,
    /// The runs, oldest first.
    pub runs: Vec<RunView>,
    /// The incident.
    pub incident: Option<IncidentView>,
    /// Every event in order.
    pub timeline: Vec<Event>,
    /// Severity, detection, response and resolution against the targets.
    pub impact: Impact,
    /// Causes matched, ruled out, unknown, with their evidence.
    pub root_cause: RootCause,
    /// Actions by what became of them; verification; escalation.
    pub actions: Actions,
    /// What the template leaves to people.
    pub lessons: Lessons,
    /// The sections of policy.yaml's `postmortem` (or the seed's five), in order.
    pub sections: Vec<Section>,
    /// Every step of every run, with its inputs and result, for the details.
    pub steps: Vec<StepDetail>,
    /// Caveats: the runbook changed since the run, is gone, a run did not finish.
    pub notes: Vec<String>,
    /// The step graph, when the caller drew one (HTML).
    pub graph: Option<Graph>,
    /// The defaults of the runbook's secret params, redacted from the context.
    #[serde(skip)]
    secrets: Vec<String>,
}

/// The runbook the report is about.
#[derive(Debug, Clone, Serialize)]
pub struct RunbookInfo {
    /// Name.
    pub name: String,
    /// Title, when the runbook is in the runbook dir.
    pub title: Option<String>,
    /// Service.
    pub service: Option<String>,
    /// The seed section it was written from.
    pub source: Option<String>,
    /// Its file.
    pub file: Option<String>,
    /// SHA-256 of the file now; `None` when it is not in the runbook dir.
    pub sha256_now: Option<String>,
    /// Whether some run recorded another SHA-256 than the file has now.
    pub changed: bool,
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// Run id.
    pub id: String,
    /// cli, webhook, schedule, recheck, ...
    pub trigger: String,
    /// real or `dry_run`.
    pub mode: String,
    /// Host.
    pub host: String,
    /// User.
    pub user: String,
    /// Start (UTC).
    pub started_at: String,
    /// Offset from the report's start.
    pub rel: String,
    /// End (UTC), if it ended.
    pub finished_at: Option<String>,
    /// Wall time, for people.
    pub took: Option<String>,
    /// healthy, remediated, `problem_remains`, fault, interrupted; `None` while running.
    pub outcome: Option<String>,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// Parameters as compact JSON, secrets redacted.
    pub params: String,
    /// SHA-256 of the runbook file the run used.
    pub runbook_sha256: String,
    /// Whether the file has changed since.
    pub runbook_changed: bool,
    /// The alert that started it.
    pub alert: Option<AlertView>,
    /// Steps recorded.
    pub step_count: usize,
}

/// The alert behind a run.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// `alertname`.
    pub name: Option<String>,
    /// Fingerprint.
    pub fingerprint: Option<String>,
    /// When it started firing (the sender's clock).
    pub starts_at: Option<String>,
    /// When the server received it.
    pub received_at: Option<String>,
    /// `alertmanager`, `grafana`, `generic`.
    pub source: Option<String>,
    /// Labels as `k=v`, sorted.
    pub labels: Vec<String>,
}

/// The incident.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    /// Id.
    pub id: i64,
    /// open, acked, resolved.
    pub status: String,
    /// Severity key.
    pub severity: String,
    /// Ladder name.
    pub ladder: Option<String>,
    /// The alert fingerprint, or the runbook name for CLI runs.
    pub key: String,
    /// When it opened.
    pub opened_at: String,
    /// Offset from the report's start.
    pub opened_rel: String,
    /// The highest level reached (`L2 (Senior Engineer)`), if any.
    pub level: Option<String>,
    /// The next level and when it is due, while it climbs.
    pub next: Option<String>,
    /// Response deadline.
    pub response_due_at: String,
    /// Resolution deadline.
    pub resolution_due_at: String,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When.
    pub acked_at: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// The run that opened it.
    pub first_run_id: Option<String>,
    /// The latest run.
    pub last_run_id: Option<String>,
}

/// One section of the template.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// `timeline`, `impact`, `root_cause`, `actions`, `lessons`, or another id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// What goes in it.
    pub prompt: Option<String>,
}

/// What the template leaves to people.
#[derive(Debug, Clone, Serialize)]
pub struct Lessons {
    /// The lessons section's prompt.
    pub prompt: Option<String>,
    /// policy.yaml's follow-up items.
    pub follow_up: Vec<String>,
}

/// One step, in full.
#[derive(Debug, Clone, Serialize)]
pub struct StepDetail {
    /// Its run.
    pub run: String,
    /// Order within the run.
    pub seq: i64,
    /// check, symptom, cause, action, verify, rollback, escalation.
    pub kind: String,
    /// Its id in the runbook.
    pub id: String,
    /// Its status; `intent` for an action with no result (the run stopped while it ran).
    pub status: String,
    /// Start (UTC).
    pub at: String,
    /// Offset from the report's start.
    pub rel: String,
    /// Wall time.
    pub took: Option<String>,
    /// The deciding value, or what the action answered.
    pub summary: String,
    /// Words for a person.
    pub guidance: Option<String>,
    /// Resolved inputs, pretty JSON.
    pub inputs_json: String,
    /// The result, pretty JSON.
    pub result_json: String,
}

/// The step graph drawn for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    /// The run whose statuses colour it.
    pub run: String,
    /// Inline SVG.
    pub svg: String,
}

/// The seed's sections, for a policy without `postmortem`.
const DEFAULT_SECTIONS: [(&str, &str, &str); 5] = [
    ("timeline", "Timeline", "Detailed sequence of events"),
    ("impact", "Impact", "Quantitative business impact"),
    ("root_cause", "Root cause", "Technical root cause analysis"),
    ("actions", "Actions", "Corrective and preventive actions"),
    ("lessons", "Lessons", "What was learned"),
];

impl Report {
    /// The report of `rec`: one run when `rec` was read for a run, else the incident's.
    #[must_use]
    pub fn build(rec: &Recorded, scope: Scope, src: &Sources<'_>) -> Report {
        let first = rec.runs.first();
        let base = first
            .and_then(|r| clock::parse(&r.summary.started_at))
            .or_else(|| {
                rec.incident
                    .as_ref()
                    .and_then(|i| clock::parse(&i.opened_at))
            })
            .unwrap_or(src.now);
        let name = first
            .map(|r| r.summary.runbook.clone())
            .or_else(|| rec.incident.as_ref().map(|i| i.runbook.clone()))
            .unwrap_or_default();
        let rb = src.runbook.filter(|rb| rb.name == name);
        let sha_now = rb.map(|rb| hex::encode(Sha256::digest(rb.file.text.as_bytes())));
        let runs: Vec<RunView> = rec
            .runs
            .iter()
            .map(|r| run_view(r, base, sha_now.as_deref()))
            .collect();
        let runbook = RunbookInfo {
            title: rb.map(|rb| rb.title.clone()),
            service: rb.and_then(|rb| rb.service.clone()),
            source: rb.and_then(|rb| rb.source.clone()),
            file: rb.map(|rb| rb.file.name.clone()),
            sha256_now: sha_now,
            changed: runs.iter().any(|r| r.runbook_changed),
            name,
        };
        let severity_key = rec
            .incident
            .as_ref()
            .map(|i| i.severity.clone())
            .or_else(|| rb.map(|rb| rb.severity.clone()));
        let severity = severity_key.map(|k| SeverityView::new(&k, src.policy));
        let title = match (scope, &rec.incident) {
            (Scope::Incident, Some(inc)) => format!(
                "Post-mortem: incident #{} — {}",
                inc.id,
                runbook.title.as_deref().unwrap_or(&runbook.name)
            ),
            _ => format!(
                "Post-mortem: {} — run {}",
                runbook.title.as_deref().unwrap_or(&runbook.name),
                first.map_or("", |r| r.summary.id.as_str())
            ),
        };
        let (sections, lessons) = sections(src.policy);
        let steps = rec
            .runs
            .iter()
            .flat_map(|r| {
                r.steps
                    .iter()
                    .map(move |s| step_detail(&r.summary.id, s, base))
            })
            .collect();
        let notes = notes(rec, &runbook, rb.is_some());
        Report {
            scope: scope.name(),
            title,
            generated_at: clock::utc(src.now),
            incident: rec.incident.as_ref().map(|i| incident_view(i, base)),
            timeline: timeline(rec, base),
            impact: Impact::new(rec, severity.as_ref(), src.now),
            root_cause: RootCause::new(rec, rb),
            actions: Actions::new(rec, base),
            severity,
            runbook,
            runs,
            lessons,
            sections,
            steps,
            notes,
            graph: None,
            secrets: secret_defaults(rb),
        }
    }

    /// The report as the templates see it. Defence in depth: the audit holds secrets
    /// redacted already, but the default of a secret param is in the runbook text, and it
    /// must not come back through the report: every string is passed through redaction.
    #[must_use]
    pub fn to_context(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        redact(&mut v, &self.secrets);
        v
    }
}

/// What a report spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One run.
    Run,
    /// Every run of an incident.
    Incident,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Run => "run",
            Scope::Incident => "incident",
        }
    }
}

/// policy.yaml's post-mortem sections (the seed's five without one) and its lessons part.
fn sections(policy: Option<&Policy>) -> (Vec<Section>, Lessons) {
    let postmortem = policy.and_then(|p| p.postmortem.as_ref());
    let sections: Vec<Section> = match postmortem {
        Some(pm) if !pm.sections.is_empty() => pm
            .sections
            .iter()
            .map(|s| Section {
                id: s.id.clone(),
                title: s.title.clone(),
                prompt: s.prompt.clone(),
            })
            .collect(),
        _ => DEFAULT_SECTIONS
            .iter()
            .map(|(id, title, prompt)| Section {
                id: (*id).to_owned(),
                title: (*title).to_owned(),
                prompt: Some((*prompt).to_owned()),
            })
            .collect(),
    };
    let lessons = Lessons {
        prompt: sections
            .iter()
            .find(|s| s.id == "lessons")
            .and_then(|s| s.prompt.clone()),
        follow_up: postmortem.map(|p| p.follow_up.clone()).unwrap_or_default(),
    };
    (sections, lessons)
}

fn secret_defaults(rb: Option<&Runbook>) -> Vec<String> {
    rb.map(|rb| {
        rb.params
            .iter()
            .filter(|p| p.secret)
            .filter_map(|p| p.default.as_ref())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

fn run_view(r: &RecordedRun, base: DateTime<Utc>, sha_now: Option<&str>) -> RunView {
    let s = &r.summary;
    RunView {
        id: s.id.clone(),
        trigger: s.trigger.clone(),
        mode: s.mode.clone(),
        host: s.host.clone(),
        user: s.user.clone(),
        rel: clock::offset_of(base, &s.started_at),
        started_at: s.started_at.clone(),
        finished_at: s.finished_at.clone(),
        took: s.duration_ms.map(clock::span),
        outcome: s.outcome.clone(),
        exit_code: s.exit_code,
        params: s.params.to_string(),
        runbook_sha256: s.runbook_sha256.clone(),
        runbook_changed: sha_now.is_some_and(|now| now != s.runbook_sha256),
        alert: alert_view(r),
        step_count: r.steps.len(),
    }
}

fn alert_view(r: &RecordedRun) -> Option<AlertView> {
    if r.alert.is_none() && r.delivery.is_none() {
        return None;
    }
    let a = r.alert.as_ref();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let labels = a
        .and_then(|a| a.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            let mut l: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect();
            l.sort();
            l
        })
        .unwrap_or_default();
    Some(AlertView {
        name: text(a.and_then(|a| a.pointer("/labels/alertname"))),
        fingerprint: text(a.and_then(|a| a.get("fingerprint"))),
        starts_at: text(a.and_then(|a| a.get("starts_at"))).map(|s| clock::normal(&s)),
        received_at: r.delivery.as_ref().map(|d| d.received_at.clone()),
        source: r.delivery.as_ref().map(|d| d.source.clone()),
        labels,
    })
}

fn incident_view(i: &Incident, base: DateTime<Utc>) -> IncidentView {
    IncidentView {
        id: i.id,
        status: i.status.name().to_owned(),
        severity: i.severity.clone(),
        ladder: i.ladder.clone(),
        key: i.dedup_key.clone(),
        opened_rel: clock::offset_of(base, &i.opened_at),
        opened_at: i.opened_at.clone(),
        level: i.current_level().map(|l| format!("{} ({})", l.id, l.name)),
        next: i.next_level().map(|l| {
            format!(
                "{} ({}) due {}",
                l.id,
                l.name,
                i.next_due_at.as_deref().unwrap_or("?")
            )
        }),
        response_due_at: i.response_due_at.clone(),
        resolution_due_at: i.resolution_due_at.clone(),
        acked_by: i.acked_by.clone(),
        acked_at: i.acked_at.clone(),
        resolved_at: i.resolved_at.clone(),
        first_run_id: i.first_run_id.clone(),
        last_run_id: i.last_run_id.clone(),
    }
}

fn step_detail(run: &str, s: &StepRow, base: DateTime<Utc>) -> StepDetail {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    StepDetail {
        run: run.to_owned(),
        seq: s.seq,
        kind: s.kind.clone(),
        id: s.step_id.clone(),
        status: status(s).to_owned(),
        rel: clock::offset_of(base, &s.started_at),
        at: s.started_at.clone(),
        took: s.duration_ms.map(clock::span),
        summary: summary(s),
        guidance: s.guidance.clone(),
        inputs_json: pretty(&s.inputs),
        result_json: s.result.as_ref().map(pretty).unwrap_or_default(),
    }
}

fn notes(rec: &Recorded, runbook: &RunbookInfo, found: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if !found {
        notes.push(format!(
            "runbook `{}` is not in the runbook dir (or does not compile): no step graph, \
             and what the report says of the runbook comes from the audit alone",
            runbook.name
        ));
    }
    for r in &rec.runs {
        let s = &r.summary;
        if runbook
            .sha256_now
            .as_deref()
            .is_some_and(|now| now != s.runbook_sha256)
        {
            notes.push(format!(
                "the runbook file changed since run {}: it ran with sha256 {}, the file now \
                 has {}; the step graph shows the runbook as it is now",
                s.id,
                s.runbook_sha256,
                runbook.sha256_now.as_deref().unwrap_or("?")
            ));
        }
        match s.outcome.as_deref() {
            None => notes.push(format!("run {} has not finished (still running?)", s.id)),
            Some("interrupted") => notes.push(format!(
                "run {} was interrupted: its process stopped before the end",
                s.id
            )),
            _ => {}
        }
    }
    notes
}

/// A step's status; `intent` for an action announced with no result recorded.
pub(super) fn status(s: &StepRow) -> &str {
    if s.state == "intent" {
        "intent"
    } else {
        s.status.as_deref().unwrap_or("unknown")
    }
}

/// What decided a step, with the reason a check gave when it is not already said.
pub(super) fn summary(s: &StepRow) -> String {
    if s.state == "intent" {
        return "started, no result recorded (the run stopped while it ran)".to_owned();
    }
    let mut out = s.decided_by.clone().unwrap_or_default();
    let reason = s
        .result
        .as_ref()
        .and_then(|r| r.get("reason"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty() && !out.contains(*r));
    if let Some(reason) = reason {
        if out.is_empty() {
            out = reason.to_owned();
        } else {
            out = format!("{out}; {reason}");
        }
    }
    // What a notification said is what people saw.
    let message = s
        .result
        .as_ref()
        .filter(|_| s.kind == "action" && form(s) == "notify")
        .and_then(|r| r.get("message"))
        .and_then(Value::as_str);
    if let Some(m) = message {
        out = format!("{out}: “{m}”");
    }
    out
}

/// An action's form (`run`, `http`, `systemd`, `notify`, ...), from its recorded inputs.
pub(super) fn form(s: &StepRow) -> String {
    s.inputs
        .get("form")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned())
        .unwrap_or_default()
}
