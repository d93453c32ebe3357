//! [`Event`] and [`timeline`]: every step of every run in the order it was recorded, with the
//! alert and the incident's events (levels fired, notifications, acknowledgement,
//! resolution) merged in by time.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::report::postmortem::clock;
use crate::report::postmortem::recorded::{Recorded, RecordedRun};
use crate::report::postmortem::report::{status, summary};

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When (UTC, RFC 3339 with milliseconds).
    pub at: String,
    /// Offset from the report's start (`+00:02.314`).
    pub rel: String,
    /// The run it belongs to, if any.
    pub run: Option<String>,
    /// `alert_started`, `alert_received`, `run_started`, `check`, `symptom`, `cause`,
    /// `action`, `verify`, `rollback`, `escalation`, `run_finished`, `incident_opened`,
    /// `level`, `notification`, `acknowledged`, `resolved`.
    pub kind: String,
    /// The kind for people (`verification`, `alert received`).
    pub label: String,
    /// What it is about: a step id, a run id, `#3`, `L2`, a channel.
    pub id: String,
    /// How it went.
    pub status: String,
    /// The deciding value, the output summary, who, where.
    pub summary: String,
    /// A step's order within its run.
    pub seq: Option<i64>,
}

struct Timed {
    t: DateTime<Utc>,
    event: Event,
}

fn event(base: DateTime<Utc>, at: &str, kind: &str, label: &str) -> Timed {
    let t = clock::parse(at).unwrap_or(base);
    Timed {
        t,
        event: Event {
            at: at.to_owned(),
            rel: clock::offset(base, t),
            run: None,
            kind: kind.to_owned(),
            label: label.to_owned(),
            id: String::new(),
            status: String::new(),
            summary: String::new(),
            seq: None,
        },
    }
}

impl Timed {
    fn with(mut self, id: &str, status: &str, summary: String) -> Timed {
        id.clone_into(&mut self.event.id);
        status.clone_into(&mut self.event.status);
        self.event.summary = summary;
        self
    }

    fn of_run(mut self, run: &str) -> Timed {
        self.event.run = Some(run.to_owned());
        self
    }
}

/// Every event of `rec`, in order; offsets from `base`.
#[must_use]
pub fn timeline(rec: &Recorded, base: DateTime<Utc>) -> Vec<Event> {
    let mut runs = Vec::new();
    let mut others = Vec::new();
    for r in &rec.runs {
        others.extend(alert_events(r, base));
        runs.extend(run_events(r, base));
    }
    others.extend(incident_events(rec, base));
    // Stable: events at the same time keep the order they were added in.
    others.sort_by_key(|e| e.t);
    let mut out = Vec::with_capacity(runs.len() + others.len());
    let mut others = others.into_iter().peekable();
    // The runs' own events keep their recorded order (concurrent checks start within a
    // millisecond of each other in either order); the rest goes in by time, after a run's
    // event of the same millisecond.
    for e in runs {
        while let Some(o) = others.next_if(|o| o.t < e.t) {
            out.push(o.event);
        }
        out.push(e.event);
    }
    out.extend(others.map(|o| o.event));
    out
}

fn alert_events(r: &RecordedRun, base: DateTime<Utc>) -> Vec<Timed> {
    let mut out = Vec::new();
    let run = &r.summary.id;
    let alert = r.alert.as_ref();
    let name = alert
        .and_then(|a| a.pointer("/labels/alertname"))
        .and_then(Value::as_str)
        .unwrap_or("alert");
    if let Some(starts) = alert
        .and_then(|a| a.get("starts_at"))
        .and_then(Value::as_str)
        .filter(|s| clock::parse(s).is_some())
    {
        let fp = alert
            .and_then(|a| a.get("fingerprint"))
            .and_then(Value::as_str)
            .map(|f| format!("fingerprint {f}"))
            .unwrap_or_default();
        out.push(
            event(
                base,
                &clock::normal(starts),
                "alert_started",
                "alert firing",
            )
            .with(name, "firing", fp)
            .of_run(run),
        );
    }
    if let Some(d) = &r.delivery {
        out.push(
            event(base, &d.received_at, "alert_received", "alert received")
                .with(
                    name,
                    &d.source,
                    format!("delivered to `runbook serve`, run {run}"),
                )
                .of_run(run),
        );
    }
    out
}

fn run_events(r: &RecordedRun, base: DateTime<Utc>) -> Vec<Timed> {
    let s = &r.summary;
    let mut out = vec![
        event(base, &s.started_at, "run_started", "run started")
            .with(
                &s.id,
                &s.trigger,
                format!(
                    "trigger {}, mode {}, {}@{}",
                    s.trigger, s.mode, s.user, s.host
                ),
            )
            .of_run(&s.id),
    ];
    for step in &r.steps {
        let label = match step.kind.as_str() {
            "verify" => "verification",
            other => other,
        };
        let mut text = summary(step);
        if step.kind == "cause" {
            if let Some(title) = step.inputs.get("title").and_then(Value::as_str) {
                text = format!("{title}: {text}");
            }
        }
        let mut e = event(base, &step.started_at, &step.kind, label)
            .with(&step.step_id, status(step), text)
            .of_run(&s.id);
        e.event.seq = Some(step.seq);
        out.push(e);
    }
    if let Some(end) = &s.finished_at {
        let exit = s
            .exit_code
            .map_or_else(String::new, |c| format!("exit {c}"));
        let took = s
            .duration_ms
            .map_or_else(String::new, |ms| format!(" after {}", clock::span(ms)));
        out.push(
            event(base, end, "run_finished", "run finished")
                .with(
                    &s.id,
                    s.outcome.as_deref().unwrap_or("unfinished"),
                    format!("{exit}{took}"),
                )
                .of_run(&s.id),
        );
    }
    out
}

fn incident_events(rec: &Recorded, base: DateTime<Utc>) -> Vec<Timed> {
    let Some(inc) = &rec.incident else {
        return Vec::new();
    };
    let id = format!("#{}", inc.id);
    let mut out = vec![
        event(base, &inc.opened_at, "incident_opened", "incident opened").with(
            &id,
            "open",
            format!(
                "severity {}{}; response due {}, resolution due {}",
                inc.severity,
                inc.ladder
                    .as_deref()
                    .map_or_else(String::new, |l| format!(", ladder {l}")),
                inc.response_due_at,
                inc.resolution_due_at
            ),
        ),
    ];
    for l in &rec.levels {
        let at = l.fired_at.as_deref().unwrap_or(&l.claimed_at);
        let mut text = format!("{} ({}), due {}", l.level_id, l.level_name, l.due_at);
        match l.state.as_str() {
            "skipped" => text.push_str("; passed over: a later level was due as well"),
            "firing" => text.push_str("; claimed, never settled: whether it was sent is unknown"),
            _ => {}
        }
        if let Some(run) = &l.recheck_run_id {
            let _ = write!(
                text,
                "; the symptom persisted after the remediation (recheck run {run})"
            );
        }
        out.push(event(base, at, "level", "escalation level").with(&l.level_id, &l.state, text));
    }
    for n in &rec.notifications {
        let level = n
            .level
            .and_then(|p| rec.levels.iter().find(|l| l.level == p))
            .map_or_else(String::new, |l| format!("{}, ", l.level_id));
        let detail = n
            .detail
            .as_deref()
            .map_or_else(String::new, |d| format!(": {d}"));
        out.push(
            event(base, &n.sent_at, "notification", "notification sent").with(
                &n.channel,
                &n.status,
                format!("{level}{}{detail}", n.target),
            ),
        );
    }
    if let Some(at) = &inc.acked_at {
        out.push(event(base, at, "acknowledged", "acknowledged").with(
            &id,
            "acked",
            format!("by {}", inc.acked_by.as_deref().unwrap_or("?")),
        ));
    }
    if let Some(at) = &inc.resolved_at {
        let by = inc
            .last_run_id
            .as_deref()
            .map_or_else(String::new, |r| format!("its last run: {r}"));
        out.push(event(base, at, "resolved", "incident resolved").with(&id, "resolved", by));
    }
    out.retain(|e| rec.in_window(e.t));
    out
}
