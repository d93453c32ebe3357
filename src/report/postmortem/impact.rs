//! [`Impact`]: the severity with policy.yaml's words, time to detect (alert start → run
//! start), and time to respond and to resolve against the severity's targets.
//!
//! The clock starts when the alert started firing, or at the first run when no alert started
//! it. A response is the first action attempted, an acknowledgement, or the resolution,
//! whichever came first; the resolution is the end of a run that ended healthy or remediated,
//! or the incident's resolution.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::report::postmortem::clock;
use crate::report::postmortem::recorded::Recorded;
use crate::runbook::policy::Policy;
use crate::runbook::value::{DurationParam, format_duration, parse_duration};

/// A severity as policy.yaml describes it.
#[derive(Debug, Clone, Serialize)]
pub struct SeverityView {
    /// `P1`.
    pub key: String,
    /// `High`.
    pub name: Option<String>,
    /// The impact that defines it.
    pub impact: Option<String>,
    /// Time to first response (`15m`).
    pub response: Option<String>,
    /// Time to resolution (`4h`).
    pub resolution: Option<String>,
    #[serde(skip)]
    response_d: Option<Duration>,
    #[serde(skip)]
    resolution_d: Option<Duration>,
}

impl SeverityView {
    /// Severity `key` with what `policy` says of it (nothing when it does not know it).
    #[must_use]
    pub fn new(key: &str, policy: Option<&Policy>) -> SeverityView {
        let def = policy.and_then(|p| p.severities.get(key));
        let d = |p: &DurationParam| match p {
            DurationParam::Fixed(d) => Some(*d),
            DurationParam::Template(t) => parse_duration(t).ok(),
        };
        let response_d = def.and_then(|s| d(&s.response));
        let resolution_d = def.and_then(|s| d(&s.resolution));
        SeverityView {
            key: key.to_owned(),
            name: def.map(|s| s.name.clone()),
            impact: def.and_then(|s| s.impact.clone()),
            response: response_d.map(format_duration),
            resolution: resolution_d.map(format_duration),
            response_d,
            resolution_d,
        }
    }
}

/// One target judged.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The target (`15m`), when the severity has one.
    pub target: Option<String>,
    /// The clock's start + the target.
    pub due_at: Option<String>,
    /// When it was done.
    pub done_at: Option<String>,
    /// What counted (`action `restart` ran`, `acknowledged by ana`).
    pub done_by: Option<String>,
    /// Start → done.
    pub took: Option<String>,
    /// `met`, `breached`, `pending` (not done, not yet due), `unknown` (no target).
    pub verdict: &'static str,
}

/// The impact section.
#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    /// The clock's start.
    pub start: String,
    /// `alert` (when it started firing) or `run` (the first run's start).
    pub start_basis: &'static str,
    /// When the engine looked: the first run's start.
    pub detected_at: Option<String>,
    /// Alert start → run start, when an alert started it.
    pub time_to_detect: Option<String>,
    /// Time to respond against the severity's response target.
    pub response: Target,
    /// Time to resolve against the severity's resolution target.
    pub resolution: Target,
    /// The last run's outcome.
    pub outcome: Option<String>,
    /// Whether the problem is over.
    pub resolved: bool,
}

impl Impact {
    /// The impact of `rec` under `severity`, deadlines judged at `now`.
    #[must_use]
    pub fn new(rec: &Recorded, severity: Option<&SeverityView>, now: DateTime<Utc>) -> Impact {
        let detected = rec
            .runs
            .first()
            .and_then(|r| clock::parse(&r.summary.started_at));
        let alert_start = rec
            .runs
            .iter()
            .filter_map(|r| r.alert.as_ref()?.get("starts_at")?.as_str())
            .filter_map(clock::parse)
            .min();
        let start = alert_start.or(detected).unwrap_or(now);
        let resolved = resolution(rec);
        let response = response(rec)
            .into_iter()
            .chain(resolved.clone())
            .min_by_key(|d| d.0);
        Impact {
            start: clock::utc(start),
            start_basis: if alert_start.is_some() {
                "alert"
            } else {
                "run"
            },
            detected_at: detected.map(clock::utc),
            time_to_detect: alert_start.zip(detected).map(|(a, d)| clock::between(a, d)),
            response: judge(start, severity.and_then(|s| s.response_d), response, now),
            resolution: judge(
                start,
                severity.and_then(|s| s.resolution_d),
                resolved.clone(),
                now,
            ),
            outcome: rec.runs.last().and_then(|r| r.summary.outcome.clone()),
            resolved: resolved.is_some(),
        }
    }
}

type Done = (DateTime<Utc>, String);

/// The first action attempted in any run, or the acknowledgement, whichever came first.
fn response(rec: &Recorded) -> Option<Done> {
    let action = rec
        .runs
        .iter()
        .flat_map(|r| r.steps.iter())
        .filter(|s| {
            s.kind == "action"
                && (s.state == "intent"
                    || matches!(s.status.as_deref(), Some("ok" | "failed" | "error")))
        })
        .filter_map(|s| {
            Some((
                clock::parse(&s.started_at)?,
                format!("action `{}` ran", s.step_id),
            ))
        })
        .min_by_key(|d| d.0);
    let ack = rec.incident.as_ref().and_then(|i| {
        Some((
            clock::parse(i.acked_at.as_deref()?)?,
            format!("acknowledged by {}", i.acked_by.as_deref().unwrap_or("?")),
        ))
    });
    action.into_iter().chain(ack).min_by_key(|d| d.0)
}

/// The end of the first run that ended well, or the incident's resolution, whichever came
/// first.
fn resolution(rec: &Recorded) -> Option<Done> {
    let run = rec.runs.iter().find_map(|r| {
        let s = &r.summary;
        let good = matches!(s.outcome.as_deref(), Some("healthy" | "remediated"));
        let end = clock::parse(s.finished_at.as_deref().filter(|_| good)?)?;
        Some((
            end,
            format!("run {} ended {}", s.id, s.outcome.as_deref().unwrap_or("")),
        ))
    });
    let incident = rec.incident.as_ref().and_then(|i| {
        Some((
            clock::parse(i.resolved_at.as_deref()?)?,
            match &i.last_run_id {
                Some(run) => format!("incident #{} resolved, its last run {run}", i.id),
                None => format!("incident #{} resolved", i.id),
            },
        ))
    });
    run.into_iter().chain(incident).min_by_key(|d| d.0)
}

fn judge(
    start: DateTime<Utc>,
    target: Option<Duration>,
    done: Option<Done>,
    now: DateTime<Utc>,
) -> Target {
    let due = target
        .and_then(|t| chrono::Duration::from_std(t).ok())
        .and_then(|t| start.checked_add_signed(t));
    let verdict = match (due, &done) {
        (None, _) => "unknown",
        (Some(due), Some((at, _))) if *at <= due => "met",
        (Some(_), Some(_)) => "breached",
        (Some(due), None) if now > due => "breached",
        (Some(_), None) => "pending",
    };
    Target {
        target: target.map(format_duration),
        due_at: due.map(clock::utc),
        took: done.as_ref().map(|(at, _)| clock::between(start, *at)),
        done_at: done.as_ref().map(|(at, _)| clock::utc(*at)),
        done_by: done.map(|(_, by)| by),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        clock::parse(s).unwrap()
    }

    #[test]
    fn a_target_is_met_breached_pending_or_unknown() {
        let start = t("2030-01-01T00:00:00Z");
        let target = Some(Duration::from_secs(15 * 60));
        let done = |at: &str| Some((t(at), "action `fix` ran".to_owned()));
        let now = t("2030-01-01T00:20:00Z");
        let met = judge(start, target, done("2030-01-01T00:15:00Z"), now);
        assert_eq!(
            (met.verdict, met.took.as_deref()),
            ("met", Some("15 min 00 s"))
        );
        assert_eq!(met.due_at.as_deref(), Some("2030-01-01T00:15:00.000Z"));
        let late = judge(start, target, done("2030-01-01T00:15:00.001Z"), now);
        assert_eq!(late.verdict, "breached");
        assert_eq!(judge(start, target, None, now).verdict, "breached");
        let early = t("2030-01-01T00:10:00Z");
        let pending = judge(start, target, None, early);
        assert_eq!((pending.verdict, pending.took), ("pending", None));
        assert_eq!(
            judge(start, None, done("2030-01-01T00:01:00Z"), now).verdict,
            "unknown"
        );
    }

    #[test]
    fn a_severity_takes_policy_words_and_targets() {
        let policy: Policy = serde_saphyr::from_str(
            "severities:\n  P1: {name: High, response: 15m, resolution: 4h, impact: Degraded}\n\
             ladders: {}\n",
        )
        .unwrap();
        let s = SeverityView::new("P1", Some(&policy));
        assert_eq!(s.name.as_deref(), Some("High"));
        assert_eq!(s.impact.as_deref(), Some("Degraded"));
        assert_eq!(
            (s.response.as_deref(), s.resolution.as_deref()),
            (Some("15m"), Some("4h"))
        );
        let unknown = SeverityView::new("P9", Some(&policy));
        assert_eq!((unknown.name, unknown.response_d), (None, None));
    }
}
