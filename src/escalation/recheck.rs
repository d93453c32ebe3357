//! [`Recheck`]: the runbook's `escalation.after_action_unresolved` acted on — "symptom persists
//! this long after remediation → next level" (design §2). Performed by `runbook tick` and by
//! `serve`'s background thread through [`recheck_due`]; the rules are in the module doc of
//! [`crate::escalation`].
//!
//! One due recheck: (1) claim it (`recheck_due_at` cleared in an `IMMEDIATE` transaction,
//! so of several ticks and servers exactly one runs it); (2) run the runbook's checks as a
//! read-only diagnosis — the executor on a dry-run host, trigger `recheck`, recorded in the
//! audit like any run, with the parameters and alert of the incident's last run; (3) end it
//! in one more `IMMEDIATE` transaction: checks pass → the incident is resolved; the problem
//! remains → the next level is claimed there and then sent like a timed level.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::audit::{AuditError, AuditStore};
use crate::escalation::incident::Incident;
use crate::escalation::notifier::Notifier;
use crate::escalation::timers::{
    Fired, RecheckEnd, claim_recheck, due_rechecks, end_recheck, send,
};
use crate::exec::{
    Executor, Options, Outcome, Reporter, RunEvent, RunResult, StepKind, StepStatus, status_name,
};
use crate::exit;
use crate::host::DryRunHost;
use crate::runbook::Catalog;
use crate::runbook::model::Runbook;
use crate::runbook::policy::Policy;

/// The trigger recorded on a recheck run.
pub const TRIGGER: &str = "recheck";

/// What became of one due recheck.
#[derive(Debug, Serialize)]
pub struct Recheck {
    /// The incident.
    pub incident_id: i64,
    /// Its runbook.
    pub runbook: String,
    /// When the recheck was due.
    pub due_at: String,
    /// `resolved` (the checks pass again), `escalated` (the symptom persists: the next level
    /// fired), `persists` (it does, and no level fires: acknowledged, top of the ladder),
    /// `dry_run`, `skipped` (taken by another process, or resolved meanwhile), `failed` (could
    /// not recheck; not retried, the incident's timers go on), `pending` (left due: the
    /// runbook does not compile, no policy.yaml).
    pub result: &'static str,
    /// Why it ended so.
    pub reason: Option<String>,
    /// The recheck run.
    pub run_id: Option<String>,
    /// How the recheck run ended.
    pub outcome: Option<Outcome>,
    /// What the recheck run saw wrong: failing checks, present symptoms, matched causes.
    pub findings: Vec<String>,
    /// The level fired, when it escalated.
    pub fired: Option<Fired>,
    /// The exit code this item alone would give (`tick` reports the worst).
    #[serde(skip)]
    pub exit_code: u8,
}

impl Recheck {
    fn new(inc: &Incident) -> Recheck {
        Recheck {
            incident_id: inc.id,
            runbook: inc.runbook.clone(),
            due_at: inc.recheck_due_at.clone().unwrap_or_default(),
            result: "pending",
            reason: None,
            run_id: None,
            outcome: None,
            findings: Vec::new(),
            fired: None,
            exit_code: exit::OK,
        }
    }

    fn ended(mut self, result: &'static str, reason: Option<String>, code: u8) -> Recheck {
        self.result = result;
        self.reason = reason;
        self.exit_code = code;
        self
    }
}

/// Collects what a recheck run saw wrong.
#[derive(Clone, Default)]
struct Findings(Arc<Mutex<Vec<String>>>);

impl Reporter for Findings {
    fn event(&mut self, event: &RunEvent) {
        let RunEvent::StepFinished(s) = event else {
            return;
        };
        let what = match (s.kind, s.status) {
            (StepKind::Check, StepStatus::Failed | StepStatus::Error | StepStatus::Unknown) => {
                format!("check `{}` {}", s.id, status_name(s.status))
            }
            (StepKind::Symptom, StepStatus::Matched) => format!("symptom `{}` present", s.id),
            (StepKind::Cause, StepStatus::Matched) => format!("cause `{}` matched", s.id),
            _ => return,
        };
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(what);
    }
}

/// Perform every recheck due by `now` (in a dry run, list them): each claimed once across
/// processes, its checks re-run read-only, its incident resolved or climbed.
///
/// # Errors
/// When the due rechecks cannot be read; a failure of one recheck is in its [`Recheck`].
pub async fn recheck_due(
    store: &AuditStore,
    catalog: &Catalog,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
    dry_run: bool,
) -> Result<Vec<Recheck>, AuditError> {
    let mut done = Vec::new();
    for inc in due_rechecks(store, now)? {
        done.push(recheck(store, catalog, &inc, now, notifier, dry_run).await);
    }
    Ok(done)
}

/// The runbook of an incident as it is now. `Err(true)`: its file is there and does not
/// compile (left due); `Err(false)`: gone.
fn find<'c>(catalog: &'c Catalog, name: &str) -> Result<&'c Runbook, bool> {
    catalog
        .runbooks
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            catalog
                .files
                .iter()
                .any(|f| f.file_stem().is_some_and(|s| s == name))
        })
}

async fn recheck(
    store: &AuditStore,
    catalog: &Catalog,
    inc: &Incident,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
    dry_run: bool,
) -> Recheck {
    let item = Recheck::new(inc);
    let name = &inc.runbook;
    let Some(policy) = catalog.policy.as_ref() else {
        // Its levels' channels are in policy.yaml: without it, leave the recheck due.
        return item.ended(
            "pending",
            Some("no policy.yaml: left due".into()),
            exit::INVALID,
        );
    };
    let rb = match find(catalog, name) {
        Ok(rb) => Some(rb),
        Err(true) => {
            return item.ended(
                "pending",
                Some(format!(
                    "runbook `{name}` does not compile; see `runbook validate` (left due)"
                )),
                exit::INVALID,
            );
        }
        Err(false) => None,
    };
    let gone = || format!("runbook `{name}` is no longer there; the incident climbs on its timers");
    if dry_run {
        let reason = match rb {
            Some(_) => format!("would re-run the checks of `{name}` (read-only)"),
            None => format!("would be dropped: {}", gone()),
        };
        return item.ended("dry_run", Some(reason), exit::OK);
    }
    let claimed = match claim_recheck(store, inc.id, now) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return item.ended(
                "skipped",
                Some("taken by another `tick` or `serve`".into()),
                exit::OK,
            );
        }
        Err(e) => return item.ended("pending", Some(e.to_string()), exit::FAULT),
    };
    let Some(rb) = rb else {
        return item.ended("failed", Some(gone()), exit::PROBLEM);
    };
    let (run, findings) = run_checks(store, policy, rb, &claimed).await;
    let mut item = item;
    item.findings = findings;
    let run = match run {
        Ok(r) => r,
        Err(e) => return item.ended("failed", Some(e), exit::FAULT),
    };
    item.run_id = Some(run.run_id.clone());
    item.outcome = Some(run.outcome);
    let healthy = match run.outcome {
        Outcome::Healthy | Outcome::Remediated => true,
        Outcome::ProblemRemains => false,
        Outcome::Fault => {
            return item.ended(
                "failed",
                Some("the recheck run ended in a fault".into()),
                exit::FAULT,
            );
        }
    };
    match end_recheck(store, &claimed, &run.run_id, healthy, now) {
        Ok(RecheckEnd::Resolved) => {
            item.ended("resolved", Some("the checks pass again".into()), exit::OK)
        }
        Ok(RecheckEnd::Climbed(claim)) => match send(store, policy, *claim, now, notifier).await {
            Ok(fired) => {
                let reason = format!(
                    "the symptom persists after the remediation: {} fired",
                    fired.level_id
                );
                item.fired = Some(fired);
                item.ended("escalated", Some(reason), exit::OK)
            }
            Err(e) => item.ended("failed", Some(e.to_string()), exit::FAULT),
        },
        Ok(RecheckEnd::Stays(why)) => item.ended(
            "persists",
            Some(format!("the symptom persists; no level fired: {why}")),
            exit::OK,
        ),
        Ok(RecheckEnd::Closed) => {
            item.ended("skipped", Some("resolved meanwhile".into()), exit::OK)
        }
        Err(e) => item.ended("failed", Some(e.to_string()), exit::FAULT),
    }
}

/// Run `rb`'s checks for `inc` as a read-only diagnosis: a dry-run host (no mutating action
/// runs), no notification channels (a `notify` remedy lands in the run's record, not on a
/// webhook: the level fired is the page), the parameters and alert of the incident's last run
/// (secrets from their definitions again, as the ledger holds them redacted).
async fn run_checks(
    store: &AuditStore,
    policy: &Policy,
    rb: &Runbook,
    inc: &Incident,
) -> (Result<RunResult, String>, Vec<String>) {
    let last = inc.last_run_id.as_deref();
    let recorded = last
        .and_then(|id| store.show(id).ok().flatten())
        .map_or(Value::Null, |(run, _)| run.params);
    let context = last.and_then(|id| store.run_context(id).ok().flatten());
    let params = crate::revert::params_for(rb, &recorded);
    store.add_secrets(rb.params.iter().filter(|p| p.secret).filter_map(|p| {
        params
            .get(&p.name)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }));
    // Like the run it rechecks: a later look at this run finds its alert and key.
    let (key, alert) = context.unzip();
    let opts = Options {
        trigger: TRIGGER.into(),
        alert: alert.flatten(),
        key,
        ladder: policy.ladder_levels(rb),
        ..Options::default()
    };
    let host = DryRunHost::new();
    let findings = Findings::default();
    let mut exec = Executor::new(rb, &host, store, params, opts);
    exec.reporter(Box::new(findings.clone()));
    let result = exec.run().await.map_err(|e| e.to_string());
    drop(exec);
    let seen = std::mem::take(&mut *findings.0.lock().unwrap_or_else(PoisonError::into_inner));
    (result, seen)
}
