//! `runbook triage [--service S] [--set k=v]`: run every runbook's symptom checks read-only,
//! rank the runbooks whose symptoms are present, say which to run. `--set` values go to the
//! runbooks that declare the parameter. Exit 0 when no symptom is present, 1 when one is.

use std::io::Write;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::common::runtime;
use crate::exit;
use crate::host::DryRunHost;
use crate::runbook::model::Runbook;
use crate::triage::{self, Entry};

/// `k=v` values of `sets` whose `k` is a parameter of `rb`.
pub(crate) fn sets_for(rb: &Runbook, sets: &[String]) -> Vec<String> {
    sets.iter()
        .filter(|s| {
            s.split_once('=')
                .is_some_and(|(k, _)| rb.params.iter().any(|p| p.name == k.trim()))
        })
        .cloned()
        .collect()
}

/// Triage `runbooks` (each with its parameters) side by side on a dry-run host; ranked.
///
/// # Errors
/// A runbook whose run failed in the engine, as text.
pub(crate) async fn triage_all(
    runbooks: Vec<(&Runbook, Map<String, Value>)>,
) -> Result<Vec<Entry>, String> {
    let host = DryRunHost::new();
    let host = &host;
    let runs = runbooks
        .into_iter()
        .map(|(rb, params)| async move { triage::triage_one(rb, params, host).await });
    let mut entries = futures::future::join_all(runs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    triage::rank(&mut entries);
    Ok(entries)
}

/// Print the ranking for people.
pub(crate) fn print_human(out: &mut impl Write, entries: &[Entry], took_ms: u128) {
    let matching: Vec<&Entry> = entries.iter().filter(|e| e.matches()).collect();
    let _ = writeln!(
        out,
        "triage: {} runbooks, their symptom checks run read-only ({took_ms} ms)",
        entries.len()
    );
    if matching.is_empty() {
        let _ = writeln!(out, "  no symptom present");
    }
    for (i, e) in matching.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} {:<24} {} — {} of {} symptoms present",
            i + 1,
            e.severity,
            e.runbook,
            e.title,
            e.present.len(),
            e.observable
        );
        for (id, text) in &e.present {
            let _ = writeln!(out, "       symptom {id}: {text}");
        }
        for ev in e.evidence.iter().take(4) {
            let _ = writeln!(out, "       evidence {ev}");
        }
    }
    let undecided: Vec<&str> = entries
        .iter()
        .filter(|e| !e.matches() && !e.undecided.is_empty())
        .map(|e| e.runbook.as_str())
        .collect();
    if !undecided.is_empty() {
        let _ = writeln!(
            out,
            "  undecided (a symptom check could not look): {}",
            undecided.join(", ")
        );
    }
    let silent: Vec<&str> = entries
        .iter()
        .filter(|e| e.observable == 0)
        .map(|e| e.runbook.as_str())
        .collect();
    if !silent.is_empty() {
        let _ = writeln!(
            out,
            "  no observable symptom (scheduled or by hand): {}",
            silent.join(", ")
        );
    }
    if let Some(first) = matching.first() {
        let _ = writeln!(out, "run: runbook run {}", first.runbook);
    }
}

/// Run the verb.
pub fn run(ctx: &Ctx, service: Option<&str>, sets: &[String]) -> u8 {
    let format = match ctx.format_in("triage", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let cat = ctx.catalog();
    for d in &cat.diagnostics {
        eprintln!("warning: {}", d.message);
    }
    let chosen: Vec<&Runbook> = cat
        .runbooks
        .iter()
        .filter(|rb| service.is_none_or(|s| rb.service.as_deref() == Some(s)))
        .collect();
    if chosen.is_empty() {
        eprintln!(
            "error: no runbook{} in {}",
            service
                .map(|s| format!(" for service `{s}`"))
                .unwrap_or_default(),
            ctx.dir.display()
        );
        return exit::INVALID;
    }
    let mut with_params = Vec::new();
    for rb in chosen {
        match crate::plan::resolve_params(rb, &sets_for(rb, sets)) {
            Ok(p) => with_params.push((rb, p)),
            Err(e) => {
                eprintln!("error: {}: {e}", rb.name);
                return exit::INVALID;
            }
        }
    }
    let Ok(rt) = runtime() else {
        return exit::FAULT;
    };
    let started = Instant::now();
    let entries = match rt.block_on(triage_all(with_params)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        let v = json!({
            "ranked": entries.iter().filter(|e| e.matches()).collect::<Vec<_>>(),
            "runbooks": entries,
            "run": entries.iter().find(|e| e.matches()).map(|e| e.runbook.clone()),
        });
        let _ = writeln!(out, "{v}");
    } else {
        print_human(&mut out, &entries, started.elapsed().as_millis());
    }
    if entries.iter().any(Entry::matches) {
        exit::PROBLEM
    } else {
        exit::OK
    }
}
