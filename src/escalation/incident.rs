//! [`Incident`]: an open problem of one runbook and key, with its deadlines and its ladder;
//! [`Spec`]: what the runbook and policy.yaml say an incident of that runbook is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::runbook::model::Runbook;
use crate::runbook::policy::Policy;

/// One level of a ladder as the incident fixed it when it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelSpec {
    /// `L2`.
    pub id: String,
    /// `Senior Engineer`.
    pub name: String,
    /// Due this long after the incident opened.
    pub after_ms: u64,
    /// Channels of policy.yaml to notify.
    pub notify: Vec<String>,
}

/// What an incident of one runbook is: severity, deadlines, ladder.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Runbook name.
    pub runbook: String,
    /// Severity key (`P1`).
    pub severity: String,
    /// Time to first response.
    pub response: Duration,
    /// Time to resolution.
    pub resolution: Duration,
    /// The ladder's name, if the runbook or its severity names one.
    pub ladder: Option<String>,
    /// Its levels, lowest first.
    pub levels: Vec<LevelSpec>,
    /// The runbook's `escalation.after_action_unresolved`.
    pub after_action_unresolved: Option<Duration>,
    /// Ids of the runbook's mutating actions: a run that completed one as a remedy performed
    /// a remediation, which is what starts the `after_action_unresolved` clock.
    pub mutating_actions: Vec<String>,
}

impl Spec {
    /// From the runbook and the policy; `None` when the policy does not know the severity
    /// (there are no deadlines to keep).
    #[must_use]
    pub fn new(policy: &Policy, rb: &Runbook) -> Option<Spec> {
        let sev = policy.severities.get(&rb.severity)?;
        let esc = rb.escalation.as_ref();
        let ladder = policy.ladder_for(esc.and_then(|e| e.ladder.as_deref()), &rb.severity);
        Some(Spec {
            runbook: rb.name.clone(),
            severity: rb.severity.clone(),
            response: duration(&sev.response),
            resolution: duration(&sev.resolution),
            ladder: ladder.map(|(name, _)| name.to_owned()),
            levels: ladder
                .map(|(_, l)| {
                    l.levels
                        .iter()
                        .map(|lv| LevelSpec {
                            id: lv.id.clone(),
                            name: lv.name.clone(),
                            after_ms: u64::try_from(lv.after().as_millis()).unwrap_or(u64::MAX),
                            notify: lv.notify.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            after_action_unresolved: esc.and_then(|e| e.after_action_unresolved),
            mutating_actions: rb
                .actions
                .iter()
                .filter(|a| a.mutating())
                .map(|a| a.id.clone())
                .collect(),
        })
    }
}

fn duration(d: &crate::runbook::value::DurationParam) -> Duration {
    match d {
        crate::runbook::value::DurationParam::Fixed(d) => *d,
        crate::runbook::value::DurationParam::Template(t) => {
            crate::runbook::value::parse_duration(t).unwrap_or_default()
        }
    }
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Climbing its ladder.
    Open,
    /// Someone took it: no further level, still listed.
    Acked,
    /// Over: a healthy run, or the alert resolved.
    Resolved,
}

impl IncidentStatus {
    /// The stored name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acked => "acked",
            IncidentStatus::Resolved => "resolved",
        }
    }

    /// From the stored name (an unknown one reads as resolved: it stops nothing, fires nothing).
    #[must_use]
    pub fn from_name(s: &str) -> IncidentStatus {
        match s {
            "open" => IncidentStatus::Open,
            "acked" => IncidentStatus::Acked,
            _ => IncidentStatus::Resolved,
        }
    }
}

/// An incident as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// Id (what `runbook ack` takes).
    pub id: i64,
    /// Runbook name.
    pub runbook: String,
    /// The runbook name for CLI runs, the alert fingerprint for alerts.
    pub dedup_key: String,
    /// Severity key.
    pub severity: String,
    /// Ladder name.
    pub ladder: Option<String>,
    /// The ladder's levels, fixed at open.
    pub levels: Vec<LevelSpec>,
    /// open, acked, resolved.
    pub status: IncidentStatus,
    /// When it opened.
    pub opened_at: String,
    /// Levels reached: 1 is the first level, 0 none yet.
    pub level: u32,
    /// When the next level fires; `None` when none is left, or acked, or resolved.
    pub next_due_at: Option<String>,
    /// Response deadline.
    pub response_due_at: String,
    /// Resolution deadline.
    pub resolution_due_at: String,
    /// The runbook's `after_action_unresolved`, in milliseconds.
    pub after_action_unresolved_ms: Option<i64>,
    /// When the checks are re-run (`after_action_unresolved` after the last run that performed
    /// a remediation); cleared when the recheck is taken.
    pub recheck_due_at: Option<String>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When.
    pub acked_at: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// The run that opened it.
    pub first_run_id: Option<String>,
    /// The latest run that found the problem (or resolved it).
    pub last_run_id: Option<String>,
    /// Last change.
    pub updated_at: String,
}

impl Incident {
    /// The incident as `incidents --format json`, `GET /api/incidents` and `ack` show it, with
    /// its deadlines judged at `now`.
    #[must_use]
    pub fn to_json(&self, now: DateTime<Utc>) -> serde_json::Value {
        let level = self.current_level();
        let next = self.next_level();
        json!({
            "id": self.id,
            "runbook": self.runbook,
            "dedup_key": self.dedup_key,
            "severity": self.severity,
            "status": self.status,
            "ladder": self.ladder,
            "level": level.map(|l| json!({"position": self.level, "id": l.id, "name": l.name})),
            "opened_at": self.opened_at,
            "next": next.map(|l| json!({"id": l.id, "name": l.name, "due_at": self.next_due_at})),
            "response": {"due_at": self.response_due_at, "breached": self.response_breached(now)},
            "resolution": {"due_at": self.resolution_due_at, "breached": self.resolution_breached(now)},
            "recheck_due_at": self.recheck_due_at,
            "acked_by": self.acked_by,
            "acked_at": self.acked_at,
            "first_run_id": self.first_run_id,
            "last_run_id": self.last_run_id,
        })
    }

    /// The level reached, if any.
    #[must_use]
    pub fn current_level(&self) -> Option<&LevelSpec> {
        (self.level as usize)
            .checked_sub(1)
            .and_then(|i| self.levels.get(i))
    }

    /// The level that fires next, if the incident still climbs.
    #[must_use]
    pub fn next_level(&self) -> Option<&LevelSpec> {
        self.next_due_at
            .as_ref()
            .and_then(|_| self.levels.get(self.level as usize))
    }

    /// Whether the response deadline passed with nobody acknowledging (an acknowledgement is
    /// the response; a late one leaves it breached).
    #[must_use]
    pub fn response_breached(&self, now: DateTime<Utc>) -> bool {
        let due = parse(&self.response_due_at);
        match self.acked_at.as_deref().map(parse) {
            Some(acked) => acked > due,
            None if self.status == IncidentStatus::Resolved => self
                .resolved_at
                .as_deref()
                .map(parse)
                .is_some_and(|r| r > due),
            None => now > due,
        }
    }

    /// Whether the resolution deadline passed before it was resolved.
    #[must_use]
    pub fn resolution_breached(&self, now: DateTime<Utc>) -> bool {
        let due = parse(&self.resolution_due_at);
        self.resolved_at.as_deref().map_or(now, parse) > due
    }
}

/// A stored time; an unreadable one reads as the far future (it never breaches, never fires).
pub(crate) fn parse(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc))
}

/// The stored form of a time.
pub(crate) fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `t + ms`, at most the end of year 9999: a four-digit year keeps text order the time order.
pub(crate) fn plus(t: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    let never = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc());
    i64::try_from(ms)
        .ok()
        .and_then(|ms| t.checked_add_signed(chrono::Duration::milliseconds(ms)))
        .map_or(never, |d| d.min(never))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse(s)
    }

    fn incident() -> Incident {
        Incident {
            id: 1,
            runbook: "rb".into(),
            dedup_key: "rb".into(),
            severity: "P1".into(),
            ladder: None,
            levels: Vec::new(),
            status: IncidentStatus::Open,
            opened_at: "2030-01-01T00:00:00.000Z".into(),
            level: 1,
            next_due_at: None,
            response_due_at: "2030-01-01T00:15:00.000Z".into(),
            resolution_due_at: "2030-01-01T04:00:00.000Z".into(),
            after_action_unresolved_ms: None,
            recheck_due_at: None,
            acked_by: None,
            acked_at: None,
            resolved_at: None,
            first_run_id: None,
            last_run_id: None,
            updated_at: "2030-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn response_is_breached_by_time_unless_acknowledged_in_time() {
        let mut i = incident();
        assert!(!i.response_breached(t("2030-01-01T00:15:00Z")));
        assert!(i.response_breached(t("2030-01-01T00:15:00.001Z")));
        i.acked_at = Some("2030-01-01T00:10:00.000Z".into());
        assert!(!i.response_breached(t("2030-01-02T00:00:00Z")));
        i.acked_at = Some("2030-01-01T00:20:00.000Z".into());
        assert!(i.response_breached(t("2030-01-01T00:21:00Z")), "a late ack");
    }

    #[test]
    fn resolution_is_breached_until_resolved_and_stays_as_it_was_resolved() {
        let mut i = incident();
        assert!(!i.resolution_breached(t("2030-01-01T03:59:00Z")));
        assert!(i.resolution_breached(t("2030-01-01T04:01:00Z")));
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some("2030-01-01T01:00:00.000Z".into());
        assert!(!i.resolution_breached(t("2030-01-09T00:00:00Z")));
        assert!(
            i.response_breached(t("2030-01-09T00:00:00Z")),
            "resolved after the response deadline with no ack"
        );
    }

    #[test]
    fn a_due_time_past_year_9999_is_clamped_so_text_order_stays_time_order() {
        let far = plus(t("2030-01-01T00:00:00Z"), u64::MAX);
        assert_eq!(fmt(far), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            fmt(plus(t("2030-01-01T00:00:00Z"), 30 * 60 * 1000)),
            "2030-01-01T00:30:00.000Z"
        );
    }
}
