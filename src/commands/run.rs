//! `runbook run NAME [--set k=v] [--dry-run] [--yes] [--answer ID=yes|no]`: diagnose this
//! host, fix what the runbook allows, record everything in the audit trail. `--answer` answers
//! a `manual` check beforehand (it is `unknown` without a terminal otherwise). A run that leaves a problem opens (or
//! updates) the runbook's incident and fires its first escalation level; one that ends healthy
//! or remediated resolves it ([`crate::escalation::after_run`], key: the runbook name). A dry
//! run changes no incident. The run's end is committed before its incident: a process killed
//! in between leaves a run without its incident, which the next `runbook tick` records
//! ([`crate::escalation::recover_runs`]), as does this runbook's next run by its own end.

use std::collections::HashMap;
use std::io::IsTerminal;

use crate::actions::NotifyTarget;
use crate::audit::AuditStore;
use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::common::TerminalApprover;
use crate::commands::common::runtime;
use crate::commands::incidents;
use crate::escalation::{self, HostNotifier, Spec};
use crate::exec::{Executor, Options, RunResult};
use crate::exit;
use crate::host::{DryRunHost, Host, RealHost};
use crate::probes::ProbeKind;
use crate::report::{ConsoleReporter, JsonReporter};
use crate::runbook::model::Runbook;
use crate::runbook::policy::Policy;

/// Run the verb.
pub fn run(
    ctx: &Ctx,
    name: &str,
    sets: &[String],
    dry_run: bool,
    yes: bool,
    lock_wait: &str,
    answers: &[String],
) -> u8 {
    let lock_wait = match crate::runbook::value::parse_duration(lock_wait) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --lock-wait: {e}");
            return crate::exit::INVALID;
        }
    };
    let format = match ctx.format_in("run", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (cat, i) = match ctx.runbook(name) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rb = &cat.runbooks[i];
    let answers = match parse_answers(rb, answers) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let params = match crate::plan::resolve_params(rb, sets) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let store = match AuditStore::open(&ctx.db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: audit trail `{}` is not writable: {e}",
                ctx.db.display()
            );
            eprintln!("hint: no audit, no action; set --db or $RUNBOOK_DB to a writable path");
            return exit::FAULT;
        }
    };
    // Defence in depth: the executor redacts too, the store refuses to write these anyway.
    store.add_secrets(rb.params.iter().filter(|p| p.secret).filter_map(|p| {
        params
            .get(&p.name)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }));
    let real = RealHost::new();
    let dry = DryRunHost::new();
    let host: &dyn Host = if dry_run { &dry } else { &real };
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let ladder = cat
        .policy
        .as_ref()
        .map(|p| p.ladder_levels(rb))
        .unwrap_or_default();
    // Human output on a terminal gets the live status line.
    let (console, live) = if format == Format::Human && std::io::stdout().is_terminal() {
        let (c, bar) = ConsoleReporter::live(std::io::stdout(), ctx.color);
        (c, Some(bar))
    } else {
        (ConsoleReporter::new(std::io::stdout(), ctx.color), None)
    };
    let opts = Options {
        yes,
        interactive,
        approver: Some(Box::new(TerminalApprover::new(live))),
        channels: NotifyTarget::from_policy(cat.policy.as_ref()),
        ladder,
        lock_wait,
        answers,
        ..Options::default()
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let mut exec = Executor::new(rb, host, &store, params, opts);
    if format == Format::Json {
        exec.reporter(Box::new(JsonReporter::new(std::io::stdout())));
    } else {
        exec.reporter(Box::new(console));
    }
    let result = match rt.block_on(exec.run()) {
        Ok(r) => r,
        Err(e) => {
            say_exec_error(ctx, &e);
            return exit::FAULT;
        }
    };
    drop(exec);
    // A dry run changes no incident: it fixed nothing, and its view is for a person to read.
    if dry_run {
        return result.exit_code;
    }
    match cat.policy.as_ref() {
        Some(policy) => escalate(&rt, &store, policy, rb, &result, format),
        None => result.exit_code,
    }
}

/// `--answer ID=yes|no` values as answers by check id. Each id must be a `manual` check of
/// `rb`; the same id answered twice must say the same.
fn parse_answers(rb: &Runbook, answers: &[String]) -> Result<HashMap<String, bool>, String> {
    let mut out = HashMap::new();
    for a in answers {
        let Some((id, value)) = a.split_once('=') else {
            return Err(format!(
                "--answer `{a}`: write `--answer ID=yes` or `ID=no`"
            ));
        };
        let (id, value) = (id.trim(), value.trim());
        let answer = match value.to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" => true,
            "no" | "n" | "false" => false,
            _ => {
                return Err(format!(
                    "--answer `{a}`: `{value}` is not an answer; write yes or no"
                ));
            }
        };
        if !rb
            .checks
            .iter()
            .any(|c| c.id == id && c.probe == ProbeKind::Manual)
        {
            let manual: Vec<String> = rb
                .checks
                .iter()
                .filter(|c| c.probe == ProbeKind::Manual)
                .map(|c| format!("`{}`", c.id))
                .collect();
            let which = if manual.is_empty() {
                "it has none".to_owned()
            } else {
                format!("its manual checks: {}", manual.join(", "))
            };
            return Err(format!(
                "--answer `{a}`: `{id}` is not a manual check of `{}`; {which}",
                rb.name
            ));
        }
        if out
            .insert(id.to_owned(), answer)
            .is_some_and(|before| before != answer)
        {
            return Err(format!("--answer: `{id}` is answered both yes and no"));
        }
    }
    Ok(out)
}

/// Open, update or resolve the runbook's incident (key: the runbook name) and fire its first
/// level; say so on stdout (human) or stderr (JSON: stdout is the run's document).
fn escalate(
    rt: &tokio::runtime::Runtime,
    store: &AuditStore,
    policy: &Policy,
    rb: &Runbook,
    result: &RunResult,
    format: Format,
) -> u8 {
    let Some(spec) = Spec::new(policy, rb) else {
        return result.exit_code;
    };
    let notifier = HostNotifier::default();
    let done = rt.block_on(escalation::after_run(
        store,
        policy,
        &spec,
        &rb.name,
        result,
        chrono::Utc::now(),
        &notifier,
    ));
    let esc = match done {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: the run's incident could not be recorded: {e}");
            return exit::FAULT;
        }
    };
    let mut lines = incidents::change_lines(&esc.change);
    lines.extend(esc.fired.iter().flat_map(incidents::fired_lines));
    for line in lines {
        if format == Format::Json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    result.exit_code
}

/// The engine stopped a run: say why, and for an audit trail that cannot be written, what to
/// do (the same advice as when the database cannot be opened at all).
fn say_exec_error(ctx: &Ctx, e: &crate::exec::ExecError) {
    eprintln!("error: {e}");
    if matches!(e, crate::exec::ExecError::Ledger(_)) {
        eprintln!(
            "hint: no audit, no action: the run stopped because `{}` cannot be written; \
             free space or make it writable (or set --db / $RUNBOOK_DB)",
            ctx.db.display()
        );
    }
}
