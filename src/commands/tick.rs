//! `runbook tick [--dry-run] [--yes]`: perform what is due, for cron: the pending reverts of
//! temporary changes (`revert_after`), then the rechecks of incidents whose symptom was to be
//! gone `after_action_unresolved` after a remediation ([`crate::escalation::recheck_due`]: the
//! checks re-run read-only; healthy resolves, a persisting problem fires the next level now),
//! then the escalation levels of open incidents that are due by their time
//! ([`crate::escalation::fire_due`]). Each revert, recheck and level is claimed in an
//! `IMMEDIATE` transaction, so it happens once however many ticks run; a dry run only lists
//! them. Rechecks come before the timed levels so that one tick does not climb twice (a
//! recheck's level, then the same level's time).
//!
//! A tick also completes what a killed process left half done: a level claimed and never
//! settled is sent again ([`crate::escalation::fire_due`]: at least once), and a run whose end
//! was recorded without its incident gets it now ([`crate::escalation::recover_runs`]).
//!
//! The reverts are performed by [`crate::revert::Reverter`] (shared with `serve`), as runs with
//! trigger `tick`, consenting with `--yes` or a terminal approval; one that was not run
//! (approval, limit, lock, dry run) stays `pending` for the next tick.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_existing;
use crate::commands::common::runtime;
use crate::commands::common::{TerminalApprover, print_json};
use crate::escalation::{self, Fired, HostNotifier, Incident, Recheck, Recovered, UnhandledRun};
use crate::exec::{Approver, Ledger, RevertRow};
use crate::exit;
use crate::revert::{RevertItem, Reverter};
use crate::runbook::model::Runbook;

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
        Ok(None) => {
            return report(format, &now_s, dry_run, &Done::default());
        }
        Err(code) => return code,
    };
    let found = match Found::look(&store, now, &now_s) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    if found.is_empty() {
        return report(format, &now_s, dry_run, &Done::default());
    }
    let Found {
        reverts: due,
        rechecks: due_rechecks,
        incidents: due_incidents,
        lost_claims,
        unhandled,
    } = found;
    let cat = ctx.catalog();
    if cat.runbooks.is_empty() && cat.files.is_empty() {
        let timers = due.len() + due_rechecks.len() + due_incidents.len() + lost_claims;
        if timers == 0 {
            // Only runs of runbooks that are not here: theirs to record where they are.
            return report(format, &now_s, dry_run, &Done::default());
        }
        // Most likely the wrong directory (cron's working directory): touch nothing rather
        // than fail every revert for a runbook "gone".
        eprintln!(
            "error: no runbooks in `{}`; {} revert(s), {} recheck(s) and {} escalation(s) due, \
             left pending",
            ctx.dir.display(),
            due.len(),
            due_rechecks.len(),
            due_incidents.len() + lost_claims
        );
        eprintln!("hint: point --runbooks (or $RUNBOOK_DIR) at the directory of runbooks");
        return exit::INVALID;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let consent = |_: &Runbook| yes;
    let approver = || -> Option<Box<dyn Approver>> { Some(Box::new(TerminalApprover::new(None))) };
    let tick = Reverter {
        store: &store,
        catalog: &cat,
        dir: &ctx.dir,
        rt: &rt,
        dry_run,
        yes: &consent,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        approver: &approver,
        trigger: "tick",
        now: &now_s,
    };
    let items: Vec<RevertItem> = due.iter().map(|row| tick.one(row)).collect();
    let found = Found {
        reverts: Vec::new(),
        rechecks: due_rechecks,
        incidents: due_incidents,
        lost_claims,
        unhandled,
    };
    match incidents(&tick, found, now) {
        Ok((rechecks, recovered, esc)) => report(
            format,
            &now_s,
            dry_run,
            &Done {
                items,
                rechecks,
                recovered,
                esc,
            },
        ),
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAULT
        }
    }
}

/// The incidents' part of a tick, after the reverts: the rechecks due, the runs whose
/// incident was never recorded, then the levels due (and those whose claim was lost).
fn incidents(
    tick: &Reverter<'_>,
    found: Found,
    now: DateTime<Utc>,
) -> Result<(Vec<Recheck>, Vec<Recovered>, Escalations), crate::audit::AuditError> {
    let (store, cat, dry_run) = (tick.store, tick.catalog, tick.dry_run);
    let notifier = HostNotifier::default();
    let rechecks = if found.rechecks.is_empty() {
        Vec::new()
    } else {
        tick.rt
            .block_on(escalation::recheck_due(store, cat, now, &notifier, dry_run))?
    };
    let recovered = if found.unhandled.is_empty() {
        Vec::new()
    } else {
        tick.rt.block_on(escalation::recover_runs(
            store, cat, now, &notifier, dry_run,
        ))?
    };
    // A recheck may have fired a level: what is due by its time is looked up again.
    let due = if dry_run || rechecks.is_empty() {
        found.incidents
    } else {
        escalation::due(store, now)?
    };
    let esc = escalate(tick, &due, found.lost_claims, now, &notifier);
    Ok((rechecks, recovered, esc))
}

/// What a tick found to do, before it loads the runbooks.
struct Found {
    reverts: Vec<RevertRow>,
    rechecks: Vec<Incident>,
    incidents: Vec<Incident>,
    /// Levels claimed by a process that is gone and never settled.
    lost_claims: usize,
    /// Runs that ended without their incident (the process stopped in between).
    unhandled: Vec<UnhandledRun>,
}

impl Found {
    fn look(
        store: &crate::audit::AuditStore,
        now: DateTime<Utc>,
        now_s: &str,
    ) -> Result<Found, String> {
        let s = |e: crate::audit::AuditError| e.to_string();
        Ok(Found {
            reverts: store.due_reverts(now_s).map_err(|e| e.to_string())?,
            rechecks: escalation::due_rechecks(store, now).map_err(s)?,
            incidents: escalation::due(store, now).map_err(s)?,
            lost_claims: escalation::orphaned_claims(store).map_err(s)?,
            unhandled: escalation::unhandled_runs(store, None).map_err(s)?,
        })
    }

    fn is_empty(&self) -> bool {
        self.reverts.is_empty()
            && self.rechecks.is_empty()
            && self.incidents.is_empty()
            && self.lost_claims == 0
            && self.unhandled.is_empty()
    }
}

/// What a tick did.
#[derive(Default)]
struct Done {
    items: Vec<RevertItem>,
    rechecks: Vec<Recheck>,
    /// Runs whose incident was never recorded, recorded now.
    recovered: Vec<Recovered>,
    esc: Escalations,
}

/// The escalation part of a tick.
#[derive(Debug, Default, Serialize)]
struct Escalations {
    /// Incidents with a level due.
    due: usize,
    /// Levels claimed by a process that is gone and never settled: sent again (among
    /// `fired`, with `resent_after_crash`).
    lost_claims: usize,
    /// Levels fired now.
    fired: Vec<Fired>,
    /// In a dry run: what would fire (incident id, level id).
    would_fire: Vec<Value>,
    /// Why nothing could fire (no policy, a store failure).
    error: Option<String>,
    #[serde(skip)]
    exit_code: u8,
}

/// Fire the escalation levels due (in a dry run, list them). A level whose channels
/// failed is fired all the same (recorded, not retried): the exit code does not change.
fn escalate(
    tick: &Reverter<'_>,
    due: &[Incident],
    lost_claims: usize,
    now: DateTime<Utc>,
    notifier: &HostNotifier,
) -> Escalations {
    let mut esc = Escalations {
        due: due.len(),
        lost_claims,
        ..Escalations::default()
    };
    if due.is_empty() && lost_claims == 0 {
        return esc;
    }
    if tick.dry_run {
        esc.would_fire = due
            .iter()
            .map(|i| {
                json!({"incident_id": i.id, "runbook": i.runbook,
                           "level": i.next_level().map(|l| l.id.clone()), "due_at": i.next_due_at})
            })
            .collect();
        return esc;
    }
    let Some(policy) = tick.catalog.policy.as_ref() else {
        // The channels are in policy.yaml: without it, leave the levels due.
        esc.error = Some(format!(
            "no policy.yaml in `{}`: {} escalation(s) due, left pending",
            tick.dir.display(),
            due.len() + lost_claims
        ));
        esc.exit_code = exit::INVALID;
        return esc;
    };
    match tick
        .rt
        .block_on(escalation::fire_due(tick.store, policy, now, notifier))
    {
        Ok(fired) => esc.fired = fired,
        Err(e) => {
            esc.error = Some(e.to_string());
            esc.exit_code = exit::FAULT;
        }
    }
    esc
}

/// Print what was done; the exit code is the worst of the reverts', the rechecks' and the
/// escalations'. A recheck that escalated or resolved is done (0): the incident carries the
/// problem, as it does for a level fired by its time.
fn report(format: Format, now: &str, dry_run: bool, done: &Done) -> u8 {
    let Done {
        items,
        rechecks,
        recovered,
        esc,
    } = done;
    let code = items
        .iter()
        .map(|i| i.exit_code)
        .chain(rechecks.iter().map(|r| r.exit_code))
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
            "rechecks": rechecks,
            "unhandled_runs": recovered,
            "escalations": esc,
            "exit_code": code,
        }));
        return code;
    }
    let mut out = std::io::stdout().lock();
    if items.is_empty() && rechecks.is_empty() && recovered.is_empty() && esc.due == 0 {
        let _ = writeln!(out, "nothing due");
        return code;
    }
    for i in items {
        let _ = writeln!(
            out,
            "revert `{}` of run {} ({}, due {}): {}",
            i.action_id,
            i.run_id,
            i.runbook,
            i.due_at,
            ended(i.result, i.reason.as_deref())
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
    for r in rechecks {
        for line in recheck_lines(r) {
            let _ = writeln!(out, "{line}");
        }
    }
    for r in recovered {
        for line in recovered_lines(r) {
            let _ = writeln!(out, "{line}");
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

/// How an item ended, for people: `done — why`.
fn ended(result: &str, reason: Option<&str>) -> String {
    let result = result.replace('_', " ");
    reason.map_or_else(|| result.clone(), |why| format!("{result} — {why}"))
}

/// Lines about one recheck: what became of it, what the run saw, its run, the level it fired.
fn recheck_lines(r: &Recheck) -> Vec<String> {
    let mut lines = vec![format!(
        "recheck of incident #{} `{}` (due {}): {}",
        r.incident_id,
        r.runbook,
        r.due_at,
        ended(r.result, r.reason.as_deref())
    )];
    if !r.findings.is_empty() {
        lines.push(format!("  seen: {}", r.findings.join(", ")));
    }
    if let Some(run) = &r.run_id {
        lines.push(format!("  run {run}"));
    }
    if let Some(f) = &r.fired {
        lines.extend(crate::commands::incidents::fired_lines(f));
    }
    lines
}

/// Lines about a run whose incident was never recorded: what was done, the change, the level.
fn recovered_lines(r: &Recovered) -> Vec<String> {
    let what = match r.result {
        "recorded" => "recorded now",
        "dry_run" => "would be recorded",
        _ => "recorded by another process",
    };
    let mut lines = vec![format!(
        "run {} `{}` ended {} with a problem and no incident (the process stopped before \
         recording it): {what}",
        r.run.run_id, r.run.runbook, r.run.finished_at
    )];
    if let Some(e) = &r.escalation {
        lines.extend(crate::commands::incidents::change_lines(&e.change));
        lines.extend(
            e.fired
                .iter()
                .flat_map(crate::commands::incidents::fired_lines),
        );
    }
    lines
}
