//! [`Actions`]: the actions by what became of them (taken with their result, waiting for
//! approval, rate-limited, held back by a dry run, interrupted), the rollbacks, the
//! verification, and the escalation: the levels the runs asked for and the levels the
//! incident reached, with the notifications they sent.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::audit::StepRow;
use crate::report::postmortem::clock;
use crate::report::postmortem::recorded::Recorded;
use crate::report::postmortem::report::{form, status, summary};

/// One action, verification or escalation step.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    /// Its run.
    pub run: String,
    /// Step id.
    pub id: String,
    /// An action's form (`run`, `http`, `systemd`, `notify`, ...); empty for other steps.
    pub form: String,
    /// Status.
    pub status: String,
    /// What it answered, or why it did not run.
    pub summary: String,
    /// Start (UTC).
    pub at: String,
    /// Offset from the report's start.
    pub rel: String,
    /// Wall time.
    pub took: Option<String>,
    /// The runbook's words for a person.
    pub guidance: Option<String>,
}

/// A level of the incident's ladder reached.
#[derive(Debug, Clone, Serialize)]
pub struct LevelView {
    /// Position, from 1.
    pub position: i64,
    /// `L2`.
    pub id: String,
    /// `Senior Engineer`.
    pub name: String,
    /// fired, skipped, firing.
    pub state: String,
    /// When it was due.
    pub due_at: String,
    /// When it was sent (or claimed, when never sent).
    pub at: String,
    /// Offset from the report's start.
    pub rel: String,
    /// Each channel and how it answered (`ops: ok`).
    pub channels: Vec<String>,
    /// The recheck run that fired it, when a recheck did.
    pub recheck_run: Option<String>,
}

/// The actions section.
#[derive(Debug, Clone, Serialize)]
pub struct Actions {
    /// Performed: ok, failed or error (notifications included).
    pub taken: Vec<ActionView>,
    /// Skipped: they wait for a person's approval (`--yes`, `runbook approve`).
    pub needs_approval: Vec<ActionView>,
    /// Skipped: their `limit` was used up.
    pub rate_limited: Vec<ActionView>,
    /// Held back by a dry run.
    pub dry_run: Vec<ActionView>,
    /// Skipped for another reason.
    pub skipped: Vec<ActionView>,
    /// Announced with no result: the run stopped while they ran.
    pub interrupted: Vec<ActionView>,
    /// Rollbacks performed or attempted.
    pub rollbacks: Vec<ActionView>,
    /// Verification re-runs of checks, every attempt.
    pub verification: Vec<ActionView>,
    /// Escalation levels the runs asked for.
    pub escalations: Vec<ActionView>,
    /// Levels the incident reached (in a run's report: from its start to the next run).
    pub levels: Vec<LevelView>,
    /// Whether anything was done or asked for at all.
    pub any: bool,
}

fn view(run: &str, s: &StepRow, base: DateTime<Utc>) -> ActionView {
    ActionView {
        run: run.to_owned(),
        id: s.step_id.clone(),
        form: form(s),
        status: status(s).to_owned(),
        summary: summary(s),
        rel: clock::offset_of(base, &s.started_at),
        at: s.started_at.clone(),
        took: s.duration_ms.map(clock::span),
        guidance: s.guidance.clone(),
    }
}

impl Actions {
    /// The actions of `rec`'s runs; offsets from `base`.
    #[must_use]
    pub fn new(rec: &Recorded, base: DateTime<Utc>) -> Actions {
        let mut a = Actions {
            taken: Vec::new(),
            needs_approval: Vec::new(),
            rate_limited: Vec::new(),
            dry_run: Vec::new(),
            skipped: Vec::new(),
            interrupted: Vec::new(),
            rollbacks: Vec::new(),
            verification: Vec::new(),
            escalations: Vec::new(),
            levels: Vec::new(),
            any: false,
        };
        for run in &rec.runs {
            let id = &run.summary.id;
            for s in &run.steps {
                let v = view(id, s, base);
                let list = match (s.kind.as_str(), v.status.as_str()) {
                    ("action", "intent") => &mut a.interrupted,
                    ("action", "ok" | "failed" | "error") => &mut a.taken,
                    ("action", "needs_approval") => &mut a.needs_approval,
                    ("action", "rate_limited") => &mut a.rate_limited,
                    ("action", "dry_run") => &mut a.dry_run,
                    ("action", _) => &mut a.skipped,
                    ("rollback", _) => &mut a.rollbacks,
                    ("verify", _) => &mut a.verification,
                    ("escalation", _) => &mut a.escalations,
                    _ => continue,
                };
                list.push(v);
            }
        }
        for l in &rec.levels {
            let at = l.fired_at.clone().unwrap_or_else(|| l.claimed_at.clone());
            if !clock::parse(&at).is_none_or(|t| rec.in_window(t)) {
                continue;
            }
            let channels = rec
                .notifications
                .iter()
                .filter(|n| n.level == Some(l.level))
                .map(|n| format!("{}: {}", n.channel, n.status))
                .collect();
            a.levels.push(LevelView {
                position: l.level,
                id: l.level_id.clone(),
                name: l.level_name.clone(),
                state: l.state.clone(),
                due_at: l.due_at.clone(),
                rel: clock::offset_of(base, &at),
                at,
                channels,
                recheck_run: l.recheck_run_id.clone(),
            });
        }
        a.any = !(a.taken.is_empty()
            && a.needs_approval.is_empty()
            && a.rate_limited.is_empty()
            && a.dry_run.is_empty()
            && a.skipped.is_empty()
            && a.interrupted.is_empty()
            && a.rollbacks.is_empty()
            && a.escalations.is_empty()
            && a.levels.is_empty());
        a
    }
}
