//! Triage: which runbook fits what the host shows now. Every runbook's symptom checks (the
//! checks its symptoms read, with the checks those depend on) run read-only, side by side;
//! the runbooks whose symptoms are present are ranked by severity, then by how many symptoms
//! are present, then by how many of the checks behind them failed.
//!
//! Nothing is written: the runs use a dry-run host and an in-memory ledger.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::exec::{Executor, MemoryLedger, Options, StepKind, StepStatus};
use crate::host::Host;
use crate::runbook::model::Runbook;

/// One runbook's triage.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Runbook name.
    pub runbook: String,
    /// Its title.
    pub title: String,
    /// Its severity (a key of the policy, `P0` first).
    pub severity: String,
    /// Its service.
    pub service: Option<String>,
    /// Symptoms present: (id, text).
    pub present: Vec<(String, String)>,
    /// Symptoms that a check could not decide (a check in error or unknown).
    pub undecided: Vec<String>,
    /// The symptom checks that failed, with what they saw.
    pub evidence: Vec<String>,
    /// How many symptoms can be observed at all (have a `when`).
    pub observable: usize,
    /// How many checks ran.
    pub checks_run: usize,
}

impl Entry {
    /// Some symptom is present.
    #[must_use]
    pub fn matches(&self) -> bool {
        !self.present.is_empty()
    }
}

static CHECK_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bchecks\.([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex"));

/// The checks `rb`'s symptoms read, with the checks those depend on, in source order.
#[must_use]
pub fn symptom_checks(rb: &Runbook) -> Vec<String> {
    let mut want: BTreeSet<String> = rb
        .symptoms
        .iter()
        .filter_map(|s| s.when.as_deref())
        .flat_map(|w| CHECK_REF.captures_iter(w).map(|c| c[1].to_owned()))
        .collect();
    // Close over dependencies (guards, `after`); bounded by the number of checks.
    for _ in 0..rb.checks.len() {
        let more: Vec<String> = rb
            .checks
            .iter()
            .filter(|c| want.contains(&c.id))
            .flat_map(|c| c.deps.iter().chain(&c.after).cloned())
            .filter(|d| !want.contains(d))
            .collect();
        if more.is_empty() {
            break;
        }
        want.extend(more);
    }
    rb.checks
        .iter()
        .filter(|c| want.contains(&c.id))
        .map(|c| c.id.clone())
        .collect()
}

/// `rb` cut down to its symptom checks: no causes, no actions.
#[must_use]
pub fn symptoms_only(rb: &Runbook) -> Runbook {
    let keep = symptom_checks(rb);
    let mut cut = rb.clone();
    cut.checks.retain(|c| keep.contains(&c.id));
    cut.causes.clear();
    cut.actions.clear();
    cut.escalation = None;
    cut
}

/// Triage one runbook with `params` on `host` (a dry-run host: nothing changes).
///
/// # Errors
/// The executor's error as text.
pub async fn triage_one(
    rb: &Runbook,
    params: Map<String, Value>,
    host: &dyn Host,
) -> Result<Entry, String> {
    let cut = symptoms_only(rb);
    let ledger = MemoryLedger::new();
    let opts = Options {
        trigger: "triage".into(),
        ..Options::default()
    };
    let observable = rb.symptoms.iter().filter(|s| s.when.is_some()).count();
    let mut entry = Entry {
        runbook: rb.name.clone(),
        title: rb.title.clone(),
        severity: rb.severity.clone(),
        service: rb.service.clone(),
        present: Vec::new(),
        undecided: Vec::new(),
        evidence: Vec::new(),
        observable,
        checks_run: cut.checks.len(),
    };
    if cut.checks.is_empty() {
        return Ok(entry);
    }
    let mut exec = Executor::new(&cut, host, &ledger, params, opts);
    exec.run().await.map_err(|e| e.to_string())?;
    drop(exec);
    let steps = ledger.steps();
    let undecided_checks: BTreeSet<&str> = steps
        .iter()
        .filter(|s| {
            s.kind == StepKind::Check && matches!(s.status, StepStatus::Error | StepStatus::Unknown)
        })
        .map(|s| s.id.as_str())
        .collect();
    for step in &steps {
        match step.kind {
            StepKind::Symptom => {
                let symptom = rb.symptoms.iter().find(|s| s.id == step.id);
                let text = symptom.map(|s| s.text.clone()).unwrap_or_default();
                let reads_undecided = symptom.and_then(|s| s.when.as_deref()).is_some_and(|w| {
                    CHECK_REF
                        .captures_iter(w)
                        .any(|c| undecided_checks.contains(&c[1]))
                });
                match step.status {
                    StepStatus::Matched => entry.present.push((step.id.clone(), text)),
                    StepStatus::Unknown => entry.undecided.push(step.id.clone()),
                    _ if reads_undecided => entry.undecided.push(step.id.clone()),
                    _ => {}
                }
            }
            StepKind::Check if matches!(step.status, StepStatus::Failed | StepStatus::Error) => {
                let seen = step.decided_by.clone().unwrap_or_default();
                entry.evidence.push(format!(
                    "{} {}: {seen}",
                    step.id,
                    crate::exec::status_name(step.status)
                ));
            }
            _ => {}
        }
    }
    Ok(entry)
}

/// Rank: matching runbooks first, by severity (`P0` before `P1`), then more symptoms present,
/// then more failed checks, then name.
pub fn rank(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        b.matches()
            .cmp(&a.matches())
            .then_with(|| a.severity.cmp(&b.severity))
            .then_with(|| b.present.len().cmp(&a.present.len()))
            .then_with(|| b.evidence.len().cmp(&a.evidence.len()))
            .then_with(|| a.runbook.cmp(&b.runbook))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, sev: &str, present: usize, evidence: usize) -> Entry {
        Entry {
            runbook: name.into(),
            title: String::new(),
            severity: sev.into(),
            service: None,
            present: (0..present)
                .map(|i| (format!("s{i}"), String::new()))
                .collect(),
            undecided: Vec::new(),
            evidence: (0..evidence).map(|i| format!("c{i}")).collect(),
            observable: 2,
            checks_run: 2,
        }
    }

    #[test]
    fn matching_first_then_severity_then_symptoms_then_evidence() {
        let mut v = vec![
            entry("quiet-p0", "P0", 0, 0),
            entry("p2-two", "P2", 2, 1),
            entry("p1-one", "P1", 1, 0),
            entry("p1-two", "P1", 2, 0),
            entry("p1-two-more", "P1", 2, 3),
        ];
        rank(&mut v);
        let names: Vec<_> = v.iter().map(|e| e.runbook.as_str()).collect();
        assert_eq!(
            names,
            ["p1-two-more", "p1-two", "p1-one", "p2-two", "quiet-p0"]
        );
    }
}
