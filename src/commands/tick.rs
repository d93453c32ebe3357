//! `runbook tick [--dry-run] [--yes]`: perform what is due, for cron: the pending reverts of
//! temporary changes (`revert_after`), then the escalation levels of open incidents
//! ([`crate::escalation::fire_due`]: each level claimed in an `IMMEDIATE` transaction, so it
//! fires once however many ticks run; a dry run only lists them).
//!
//! Each due revert is claimed in an `IMMEDIATE` transaction (two `tick`s never both perform
//! one), then its rollback actions run as a run of their own (trigger `tick`) through the
//! executor and every gate of `run`: intent rows, `--dry-run`, `--yes` or a terminal
//! approval, limits, the runbook lock. A revert ends `done` or `failed`; one that was not
//! run (approval, limit, lock, dry run) stays `pending` for the next tick.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::audit::AuditStore;
use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_existing;
use crate::commands::common::{TerminalApprover, print_json};
use crate::escalation::{self, Fired, HostNotifier, Incident};
use crate::exec::{
    ExecError, Executor, Ledger, Options, Reporter, RevertResult, RevertRow, RevertState, RunEvent,
    StepStatus, status_name,
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
struct Item {
    /// The pending revert's id.
    id: i64,
    /// The run that made the change.
    run_id: String,
    runbook: String,
    action_id: String,
    rollback: Vec<String>,
    due_at: String,
    /// done, failed, pending (not run: approval, limit, lock), `dry_run`, skipped (taken by
    /// another tick).
    result: &'static str,
    reason: Option<String>,
    /// The run that performed (or tried) the rollback.
    revert_run_id: Option<String>,
    steps: Vec<Value>,
    messages: Vec<String>,
    #[serde(skip)]
    exit_code: u8,
}

impl Item {
    fn new(row: &RevertRow) -> Self {
        Item {
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

/// Everything the loop over due reverts needs.
struct Tick<'a> {
    ctx: &'a Ctx,
    store: &'a AuditStore,
    cat: &'a Catalog,
    rt: &'a tokio::runtime::Runtime,
    dry_run: bool,
    yes: bool,
    now: &'a str,
}

/// Run the verb.
pub fn run(ctx: &Ctx, dry_run: bool, yes: bool, now: Option<&str>) -> u8 {
    let format = match ctx.format_in("tick", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let now = match crate::commands::incidents::now_arg(now) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let now_s = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    // No database: nothing has run, so nothing is due; a cron job does not create one.
    let store = match open_existing(ctx) {
        Ok(Some(s)) => s,
        Ok(None) => return report(format, &now_s, dry_run, &[], &Escalations::default()),
        Err(code) => return code,
    };
    let due = match store.due_reverts(&now_s) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    let due_incidents = match escalation::due(&store, now) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    if due.is_empty() && due_incidents.is_empty() {
        return report(format, &now_s, dry_run, &[], &Escalations::default());
    }
    let cat = ctx.catalog();
    if cat.runbooks.is_empty() && cat.files.is_empty() {
        // Most likely the wrong directory (cron's working directory): touch nothing rather
        // than fail every revert for a runbook "gone".
        eprintln!(
            "error: no runbooks in `{}`; {} revert(s) and {} escalation(s) due, left pending",
            ctx.dir.display(),
            due.len(),
            due_incidents.len()
        );
        eprintln!("hint: point --runbooks (or $RUNBOOK_DIR) at the directory of runbooks");
        return exit::INVALID;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::FAULT;
        }
    };
    let tick = Tick {
        ctx,
        store: &store,
        cat: &cat,
        rt: &rt,
        dry_run,
        yes,
        now: &now_s,
    };
    let items: Vec<Item> = due.iter().map(|row| tick.one(row)).collect();
    let esc = tick.escalate(&due_incidents, now);
    report(format, &now_s, dry_run, &items, &esc)
}

/// The escalation part of a tick.
#[derive(Debug, Default, Serialize)]
struct Escalations {
    /// Incidents with a level due.
    due: usize,
    /// Levels fired now.
    fired: Vec<Fired>,
    /// In a dry run: what would fire (incident id, level id).
    would_fire: Vec<Value>,
    /// Why nothing could fire (no policy, a store failure).
    error: Option<String>,
    #[serde(skip)]
    exit_code: u8,
}

impl Tick<'_> {
    /// Fire the escalation levels due (in a dry run, list them). A level whose channels
    /// failed is fired all the same (recorded, not retried): the exit code does not change.
    fn escalate(&self, due: &[Incident], now: DateTime<Utc>) -> Escalations {
        let mut esc = Escalations {
            due: due.len(),
            ..Escalations::default()
        };
        if due.is_empty() {
            return esc;
        }
        if self.dry_run {
            esc.would_fire = due
                .iter()
                .map(|i| {
                    json!({"incident_id": i.id, "runbook": i.runbook,
                           "level": i.next_level().map(|l| l.id.clone()), "due_at": i.next_due_at})
                })
                .collect();
            return esc;
        }
        let Some(policy) = self.cat.policy.as_ref() else {
            // The channels are in policy.yaml: without it, leave the levels due.
            esc.error = Some(format!(
                "no policy.yaml in `{}`: {} escalation(s) due, left pending",
                self.ctx.dir.display(),
                due.len()
            ));
            esc.exit_code = exit::INVALID;
            return esc;
        };
        let notifier = HostNotifier::default();
        match self
            .rt
            .block_on(escalation::fire_due(self.store, policy, now, &notifier))
        {
            Ok(fired) => esc.fired = fired,
            Err(e) => {
                esc.error = Some(e.to_string());
                esc.exit_code = exit::FAULT;
            }
        }
        esc
    }

    /// Perform (or, in a dry run, show) one due revert.
    fn one(&self, row: &RevertRow) -> Item {
        let item = Item::new(row);
        if !self.dry_run {
            match self.store.claim_revert(row.id, self.now) {
                Ok(true) => {}
                Ok(false) => {
                    return item.ended("skipped", Some("taken by another `tick`".into()), exit::OK);
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
    fn perform(&self, row: &RevertRow, rb: &Runbook, mut item: Item) -> Item {
        let params = params_for(rb, &row.revert.params);
        self.store
            .add_secrets(rb.params.iter().filter(|p| p.secret).filter_map(|p| {
                params
                    .get(&p.name)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            }));
        let opts = Options {
            yes: self.yes,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            trigger: "tick".into(),
            approver: Some(Box::new(TerminalApprover::new(None))),
            channels: crate::actions::NotifyTarget::from_policy(self.cat.policy.as_ref()),
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
    fn conclude(&self, row: &RevertRow, item: Item, result: &RevertResult) -> Item {
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
                    "needs approval (--yes)"
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
        let Some(rb) = self.cat.runbooks.iter().find(|r| &r.name == name) else {
            let broken = self
                .cat
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
                    format!(
                        "runbook `{name}` is no longer in `{}`",
                        self.ctx.dir.display()
                    ),
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
        item: Item,
        state: RevertState,
        run_id: Option<&str>,
        result: &'static str,
        reason: String,
        code: u8,
    ) -> Item {
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
fn params_for(rb: &Runbook, recorded: &Value) -> Map<String, Value> {
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

/// Print what was done; the exit code is the worst of the items' and the escalations'.
fn report(format: Format, now: &str, dry_run: bool, items: &[Item], esc: &Escalations) -> u8 {
    let code = items
        .iter()
        .map(|i| i.exit_code)
        .chain([esc.exit_code])
        .max_by_key(|c| match *c {
            exit::FAULT => 3,
            exit::INVALID => 2,
            exit::PROBLEM => 1,
            _ => 0,
        })
        .unwrap_or(exit::OK);
    if format == Format::Json {
        print_json(&json!({
            "now": now,
            "dry_run": dry_run,
            "due": items.len(),
            "reverts": items,
            "escalations": esc,
            "exit_code": code,
        }));
        return code;
    }
    let mut out = std::io::stdout().lock();
    if items.is_empty() && esc.due == 0 {
        let _ = writeln!(out, "nothing due");
        return code;
    }
    for i in items {
        let _ = writeln!(
            out,
            "revert `{}` of run {} ({}, due {}): {}{}",
            i.action_id,
            i.run_id,
            i.runbook,
            i.due_at,
            i.result.replace('_', " "),
            i.reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
        for s in &i.steps {
            let _ = writeln!(
                out,
                "  {} {}: {} — {}",
                s["kind"].as_str().unwrap_or_default(),
                s["id"].as_str().unwrap_or_default(),
                s["status"].as_str().unwrap_or_default().replace('_', " "),
                s["decided_by"].as_str().unwrap_or_default()
            );
        }
        for m in &i.messages {
            let _ = writeln!(out, "  ✉ {m}");
        }
        if let Some(r) = &i.revert_run_id {
            let _ = writeln!(out, "  run {r}");
        }
    }
    for f in &esc.fired {
        for line in crate::commands::incidents::fired_lines(f) {
            let _ = writeln!(out, "{line}");
        }
    }
    for w in &esc.would_fire {
        let _ = writeln!(
            out,
            "incident #{} `{}`: {} would fire (due {})",
            w["incident_id"],
            w["runbook"].as_str().unwrap_or_default(),
            w["level"].as_str().unwrap_or("a level"),
            w["due_at"].as_str().unwrap_or_default()
        );
    }
    if let Some(e) = &esc.error {
        drop(out);
        eprintln!("error: {e}");
    }
    code
}
