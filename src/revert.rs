//! Pending reverts (`revert_after`) performed when due, by `runbook tick` and `runbook serve`.
//!
//! Each due revert is claimed in an `IMMEDIATE` transaction (two processes never both perform
//! one), then its rollback actions run as a run of their own through the executor and every
//! gate of `run`: intent rows, dry run, consent (`--yes`, a terminal approval, or in `serve`
//! the severity's `auto_remediation`), limits, the runbook lock. A revert ends `done` or
//! `failed`; one that was not run (approval, limit, lock, dry run) stays `pending`.
//!
//! What consents and who is asked are the caller's: [`Reverter`] takes them as functions.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::audit::AuditStore;
use crate::exec::{
    Approver, ExecError, Executor, Ledger, Options, Reporter, RevertResult, RevertRow, RevertState,
    RunEvent, StepStatus, status_name,
};
use crate::exit;
use crate::host::{DryRunHost, Host, RealHost};
use crate::runbook::Catalog;
use crate::runbook::model::Runbook;

/// Collects a revert run's steps and messages for the tick's own report.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Value>>>, Arc<Mutex<Vec<String>>>);

impl Reporter for Collect {
    fn event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::StepFinished(s) => self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(serde_json::to_value(s).unwrap_or(Value::Null)),
            RunEvent::Message { text } => self
                .1
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(text.clone()),
            _ => {}
        }
    }
}

/// What became of one due revert.
#[derive(Debug, Serialize)]
pub struct RevertItem {
    /// The pending revert's id.
    pub id: i64,
    /// The run that made the change.
    pub run_id: String,
    /// Its runbook.
    pub runbook: String,
    /// The action that made the change.
    pub action_id: String,
    /// The actions that undo it.
    pub rollback: Vec<String>,
    /// When it became due.
    pub due_at: String,
    /// done, failed, pending (not run: approval, limit, lock), `dry_run`, skipped (taken by
    /// another tick).
    pub result: &'static str,
    /// Why it ended so.
    pub reason: Option<String>,
    /// The run that performed (or tried) the rollback.
    pub revert_run_id: Option<String>,
    /// The revert run's steps.
    pub steps: Vec<Value>,
    /// Its messages (`notify` on stdout).
    pub messages: Vec<String>,
    /// The exit code this item alone would give (`tick` reports the worst).
    #[serde(skip)]
    pub exit_code: u8,
}

impl RevertItem {
    /// A due revert, not performed yet.
    #[must_use]
    pub fn new(row: &RevertRow) -> Self {
        RevertItem {
            id: row.id,
            run_id: row.revert.run_id.clone(),
            runbook: row.revert.runbook.clone(),
            action_id: row.revert.action_id.clone(),
            rollback: row.revert.rollback.clone(),
            due_at: row.revert.due_at.clone(),
            result: "pending",
            reason: None,
            revert_run_id: None,
            steps: Vec::new(),
            messages: Vec::new(),
            exit_code: exit::OK,
        }
    }

    fn ended(mut self, result: &'static str, reason: Option<String>, code: u8) -> Self {
        self.result = result;
        self.reason = reason;
        self.exit_code = code;
        self
    }
}

/// Performs due reverts: the store, the runbooks as they are now, and how to consent.
pub struct Reverter<'a> {
    /// The audit file holding the pending reverts.
    pub store: &'a AuditStore,
    /// The runbooks as they are now.
    pub catalog: &'a Catalog,
    /// Their directory (for messages).
    pub dir: &'a Path,
    /// Runs the executor.
    pub rt: &'a tokio::runtime::Runtime,
    /// Show, run nothing.
    pub dry_run: bool,
    /// Whether mutating rollback actions of this runbook run without asking.
    pub yes: &'a dyn Fn(&Runbook) -> bool,
    /// A person is at a terminal.
    pub interactive: bool,
    /// Who asks that person.
    pub approver: &'a dyn Fn() -> Option<Box<dyn Approver>>,
    /// The revert run's trigger (`tick`, `serve`).
    pub trigger: &'a str,
    /// Now, RFC 3339 UTC with milliseconds.
    pub now: &'a str,
}

impl Reverter<'_> {
    /// Perform (or, in a dry run, show) one due revert: claim it, find its runbook, run its
    /// rollback actions through the executor, settle it.
    #[must_use]
    pub fn one(&self, row: &RevertRow) -> RevertItem {
        let item = RevertItem::new(row);
        if !self.dry_run {
            match self.store.claim_revert(row.id, self.now) {
                Ok(true) => {}
                Ok(false) => {
                    return item.ended(
                        "skipped",
                        Some("taken by another `tick` or `serve`".into()),
                        exit::OK,
                    );
                }
                Err(e) => return item.ended("pending", Some(e.to_string()), exit::FAULT),
            }
        }
        let rb = match self.find(row) {
            Ok(rb) => rb,
            Err((gone, reason)) => {
                let (state, result, code) = if gone {
                    (RevertState::Failed, "failed", exit::PROBLEM)
                } else {
                    (RevertState::Pending, "pending", exit::INVALID)
                };
                if self.dry_run {
                    let reason = format!("would be left {}: {reason}", state.name());
                    return item.ended("dry_run", Some(reason), code);
                }
                return self.settle(item, state, None, result, reason, code);
            }
        };
        self.perform(row, rb, item)
    }

    /// Run the rollback actions through the executor and settle the revert by how they went.
    fn perform(&self, row: &RevertRow, rb: &Runbook, mut item: RevertItem) -> RevertItem {
        let params = params_for(rb, &row.revert.params);
        self.store
            .add_secrets(rb.params.iter().filter(|p| p.secret).filter_map(|p| {
                params
                    .get(&p.name)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            }));
        let opts = Options {
            yes: (self.yes)(rb),
            interactive: self.interactive,
            trigger: self.trigger.into(),
            approver: (self.approver)(),
            channels: crate::actions::NotifyTarget::from_policy(self.catalog.policy.as_ref()),
            ..Options::default()
        };
        let (real, dry) = (RealHost::new(), DryRunHost::new());
        let host: &dyn Host = if self.dry_run { &dry } else { &real };
        let collect = Collect::default();
        let mut exec = Executor::new(rb, host, self.store, params, opts);
        exec.reporter(Box::new(collect.clone()));
        let outcome = self.rt.block_on(exec.revert(&row.revert.rollback));
        drop(exec);
        item.steps = std::mem::take(&mut *collect.0.lock().unwrap_or_else(PoisonError::into_inner));
        item.messages =
            std::mem::take(&mut *collect.1.lock().unwrap_or_else(PoisonError::into_inner));
        let result = match outcome {
            Ok(r) => r,
            Err(ExecError::Locked(name)) => {
                let reason = format!("another run of `{name}` is in progress; left pending");
                if self.dry_run {
                    return item.ended("pending", Some(reason), exit::PROBLEM);
                }
                return self.settle(
                    item,
                    RevertState::Pending,
                    None,
                    "pending",
                    reason,
                    exit::PROBLEM,
                );
            }
            Err(e @ ExecError::Ledger(_)) => {
                // The store is failing: the claim stays `running` and the next tick, finding
                // this process gone, marks it failed for a person to look at.
                return item.ended("failed", Some(e.to_string()), exit::FAULT);
            }
        };
        item.revert_run_id = Some(result.run.run_id.clone());
        if self.dry_run {
            let what = row.revert.rollback.join("`, `");
            return item.ended("dry_run", Some(format!("would run `{what}`")), exit::OK);
        }
        self.conclude(row, item, &result)
    }

    /// Settle a performed revert: done when every rollback action succeeded; pending again
    /// when one was held back by a gate that may open (approval, limit); else failed.
    fn conclude(&self, row: &RevertRow, item: RevertItem, result: &RevertResult) -> RevertItem {
        let run_id = result.run.run_id.clone();
        let all_ok = result.actions.len() == row.revert.rollback.len()
            && result.actions.iter().all(|(_, s)| *s == StepStatus::Ok);
        if all_ok {
            return self.settle(
                item,
                RevertState::Done,
                Some(&run_id),
                "done",
                "rolled back".into(),
                exit::OK,
            );
        }
        match result.actions.last().map(|(id, st)| (id.clone(), *st)) {
            Some((id, st @ (StepStatus::NeedsApproval | StepStatus::RateLimited))) => {
                let why = if st == StepStatus::NeedsApproval {
                    "needs approval"
                } else {
                    "its limit is used up"
                };
                self.settle(
                    item,
                    RevertState::Pending,
                    Some(&run_id),
                    "pending",
                    format!("`{id}` {why}; left pending"),
                    exit::PROBLEM,
                )
            }
            Some((id, st)) => {
                let detail = item
                    .steps
                    .last()
                    .and_then(|s| s["decided_by"].as_str())
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                let reason = format!("`{id}` {}{detail}", status_name(st).replace('_', " "));
                self.settle(
                    item,
                    RevertState::Failed,
                    Some(&run_id),
                    "failed",
                    reason,
                    exit::PROBLEM,
                )
            }
            None => self.settle(
                item,
                RevertState::Failed,
                Some(&run_id),
                "failed",
                "no rollback action ran".into(),
                exit::PROBLEM,
            ),
        }
    }

    /// The runbook and its rollback actions as they are now. `Err((true, _))`: gone for good;
    /// `Err((false, _))`: the file is there but does not compile (left pending).
    fn find(&self, row: &RevertRow) -> Result<&Runbook, (bool, String)> {
        let name = &row.revert.runbook;
        let Some(rb) = self.catalog.runbooks.iter().find(|r| &r.name == name) else {
            let broken = self
                .catalog
                .files
                .iter()
                .any(|f| f.file_stem().is_some_and(|s| s == name.as_str()));
            return Err(if broken {
                (
                    false,
                    format!("runbook `{name}` does not compile; see `runbook validate`"),
                )
            } else {
                (
                    true,
                    format!("runbook `{name}` is no longer in `{}`", self.dir.display()),
                )
            });
        };
        if let Some(missing) = row
            .revert
            .rollback
            .iter()
            .find(|id| rb.action(id).is_none())
        {
            return Err((
                true,
                format!("runbook `{name}` has no action `{missing}` any more"),
            ));
        }
        Ok(rb)
    }

    fn settle(
        &self,
        item: RevertItem,
        state: RevertState,
        run_id: Option<&str>,
        result: &'static str,
        reason: String,
        code: u8,
    ) -> RevertItem {
        let detail = json!({
            "reason": reason,
            "actions": item.steps.iter().map(|s| json!({"id": s["id"], "status": s["status"]})).collect::<Vec<_>>(),
        });
        match self.store.settle_revert(item.id, state, run_id, &detail) {
            Ok(()) => item.ended(result, Some(reason), code),
            Err(e) => item.ended(result, Some(format!("{reason}; {e}")), exit::FAULT),
        }
    }
}

/// The run's parameters for the rollback: the recorded values, except secrets (recorded
/// redacted), which come from their definitions again; parameters added since take their
/// defaults.
#[must_use]
pub fn params_for(rb: &Runbook, recorded: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for p in &rb.params {
        let value = if p.secret {
            p.default.clone()
        } else {
            recorded.get(&p.name).cloned().or_else(|| p.default.clone())
        };
        if let Some(v) = value {
            out.insert(p.name.clone(), v);
        }
    }
    out
}
