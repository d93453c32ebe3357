//! The decisions of one run, in the order they were taken: each check's status, the
//! symptoms, each cause matched / ruled out / unknown, the actions with their status, the
//! verification re-runs, the rollbacks, the escalation and the outcome. Built from the
//! executor's step records (a scenario, a replay) or from the audit trail's step rows (a
//! recorded run), so the two compare field by field.

use serde::Serialize;
use serde_json::Value;

use crate::exec::{StepKind, StepRecord, status_name};

/// An action that the oracle of a replay let through without a recorded outcome.
pub const WOULD_RUN: &str = "would_run";

/// One decided step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    /// The step's id (check, symptom, cause, action; for an escalation, the cause).
    pub id: String,
    /// Its status (`ok`, `matched`, `needs_approval`, ...); for an escalation, the level.
    pub status: String,
}

/// The decisions of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DecisionPath {
    /// Checks (first run), in order.
    pub checks: Vec<Decided>,
    /// Symptoms with a `when`, in order: `matched` (present) or `absent`.
    pub symptoms: Vec<Decided>,
    /// Causes, in order.
    pub causes: Vec<Decided>,
    /// Remedy actions attempted, in order.
    pub actions: Vec<Decided>,
    /// Verification re-runs of checks, in order.
    pub verifications: Vec<Decided>,
    /// Rollback actions attempted, in order.
    pub rollbacks: Vec<Decided>,
    /// Escalations: the unresolved cause, and the level it asks for.
    pub escalations: Vec<Decided>,
    /// healthy, remediated, `problem_remains`, fault.
    pub outcome: String,
}

/// The name a step kind is stored under.
#[must_use]
pub fn kind_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Check => "check",
        StepKind::Symptom => "symptom",
        StepKind::Cause => "cause",
        StepKind::Action => "action",
        StepKind::Verify => "verify",
        StepKind::Rollback => "rollback",
        StepKind::Escalation => "escalation",
    }
}

impl DecisionPath {
    /// From the executor's records.
    #[must_use]
    pub fn from_records(steps: &[StepRecord], outcome: &str) -> Self {
        let mut p = DecisionPath {
            outcome: outcome.to_owned(),
            ..DecisionPath::default()
        };
        for s in steps {
            p.push(kind_name(s.kind), &s.id, status_name(s.status), &s.result);
        }
        p
    }

    /// Add one step: `kind` and `status` as the audit trail names them.
    pub fn push(&mut self, kind: &str, id: &str, status: &str, result: &Value) {
        let d = |status: &str| Decided {
            id: id.to_owned(),
            status: status.to_owned(),
        };
        match kind {
            "check" => self.checks.push(d(status)),
            "symptom" => self.symptoms.push(d(status)),
            "cause" => self.causes.push(d(status)),
            "action" | "rollback" => {
                let status = if result.get("would_run") == Some(&Value::Bool(true)) {
                    WOULD_RUN
                } else {
                    status
                };
                if kind == "action" {
                    self.actions.push(d(status));
                } else {
                    self.rollbacks.push(d(status));
                }
            }
            "verify" => self.verifications.push(d(status)),
            "escalation" => {
                let level = result.get("level").and_then(Value::as_str).unwrap_or("?");
                self.escalations.push(d(level));
            }
            _ => {}
        }
    }

    /// Ids of the causes with this status, in order.
    #[must_use]
    pub fn causes_with(&self, status: &str) -> Vec<&str> {
        self.causes
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.id.as_str())
            .collect()
    }

    /// Ids of the symptoms present, in order.
    #[must_use]
    pub fn symptoms_present(&self) -> Vec<&str> {
        self.symptoms
            .iter()
            .filter(|c| c.status == "matched")
            .map(|c| c.id.as_str())
            .collect()
    }

    /// The first-run status of check `id`.
    #[must_use]
    pub fn check(&self, id: &str) -> Option<&str> {
        self.checks
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.status.as_str())
    }

    /// Every verification status of check `id`, in order.
    #[must_use]
    pub fn verified(&self, id: &str) -> Vec<&str> {
        self.verifications
            .iter()
            .filter(|c| c.id == id)
            .map(|c| c.status.as_str())
            .collect()
    }

    /// The highest level the escalations ask for (by position in `levels`, lowest first),
    /// or `none`.
    #[must_use]
    pub fn escalation(&self, levels: &[String]) -> String {
        self.escalations
            .iter()
            .max_by_key(|e| levels.iter().position(|l| *l == e.status))
            .map_or_else(|| "none".to_owned(), |e| e.status.clone())
    }
}

/// `id status, id status` or `-` for none.
#[must_use]
pub fn list(items: &[Decided]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items
        .iter()
        .map(|d| format!("{} {}", d.id, d.status))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a, b` or `-` for none.
#[must_use]
pub fn ids<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_land_in_their_place_and_escalation_takes_the_highest_level() {
        let mut p = DecisionPath::default();
        p.push("check", "healthz", "failed", &json!({}));
        p.push("cause", "down", "matched", &json!({}));
        p.push("cause", "auth", "ruled_out", &json!({}));
        p.push("action", "restart", "failed", &json!({"would_run": true}));
        p.push("verify", "healthz", "failed", &json!({}));
        p.push("verify", "healthz", "ok", &json!({}));
        p.push("escalation", "down", "ok", &json!({"level": "L2"}));
        p.push("escalation", "auth", "ok", &json!({"level": "L1"}));
        let levels = vec!["L1".to_owned(), "L2".to_owned(), "L3".to_owned()];
        assert_eq!(p.check("healthz"), Some("failed"));
        assert_eq!(p.causes_with("matched"), vec!["down"]);
        assert_eq!(p.actions[0].status, WOULD_RUN);
        assert_eq!(p.verified("healthz"), vec!["failed", "ok"]);
        assert_eq!(p.escalation(&levels), "L2");
        assert_eq!(DecisionPath::default().escalation(&levels), "none");
    }
}
