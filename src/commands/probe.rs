//! `runbook probe KIND --with k=v ...`: one probe, ad hoc, result as JSON;
//! `runbook probe --help KIND` (or `KIND --doc`): the probe's documentation.

use std::io::{IsTerminal, Write};

use clap::CommandFactory;
use serde_json::{Map, Value, json};

use crate::commands::Ctx;
use crate::commands::common::runtime;
use crate::exit;
use crate::host::RealHost;
use crate::probes::{ProbeContext, ProbeKind, ProbeOutcome, jsonl};
use crate::runbook::value::parse_duration;

/// Run the verb. `doc` prints the probe's documentation; with no `kind`, the verb's help.
pub fn run(ctx: &Ctx, kind: Option<&str>, with: &[String], doc: bool, timeout: &str) -> u8 {
    let Some(kind) = kind else {
        // `--help` alone (clap requires the kind otherwise): the verb's own help.
        let mut cmd = crate::cli::Cli::command();
        if let Some(probe) = cmd.find_subcommand_mut("probe") {
            let mut probe = probe.clone().bin_name("runbook probe");
            let _ = probe.print_help();
        }
        return exit::OK;
    };
    let Some(probe) = ProbeKind::from_name(kind) else {
        let names: Vec<&str> = ProbeKind::ALL.iter().map(|k| k.name()).collect();
        let hint = crate::runbook::compile::suggest(kind, names.iter().copied()).map_or_else(
            || format!("probes: {}", names.join(", ")),
            |s| format!("did you mean `{s}`?"),
        );
        eprintln!("error: unknown probe `{kind}`; {hint}");
        return exit::INVALID;
    };
    if doc {
        println!("{}", probe.help());
        return exit::OK;
    }
    let timeout = match parse_duration(timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --timeout: {e}");
            return exit::INVALID;
        }
    };
    let params = match parse_with(with) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let host = RealHost::new();
    // `incremental` reads go on from the positions this command saved last time (reader
    // `probe`), in the audit DB.
    let store = if params.get("incremental") == Some(&Value::Bool(true)) {
        match crate::audit::AuditStore::open(&ctx.db) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: `incremental` keeps positions in the audit DB: {e}");
                return exit::FAULT;
            }
        }
    } else {
        None
    };
    let cx = ProbeContext {
        host: &host,
        timeout,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        positions: store
            .as_ref()
            .map(|s| s as &dyn crate::probes::PositionStore),
        reader: "probe",
        answer: None,
    };
    let with = Value::Object(params);
    let started = std::time::Instant::now();
    let outcome = rt.block_on(async {
        match tokio::time::timeout(timeout, probe.run(&with, &cx)).await {
            Ok(o) => o,
            Err(_) => ProbeOutcome::unreachable(format!(
                "timed out after {}",
                crate::runbook::value::format_duration(timeout)
            )),
        }
    });
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (state, result, code) = match outcome {
        ProbeOutcome::Observed(m) => ("observed", Value::Object(m), exit::OK),
        ProbeOutcome::Error(e) if e.starts_with("bad parameters") => {
            eprintln!("error: probe `{kind}`: {e}");
            return exit::INVALID;
        }
        ProbeOutcome::Error(e) => ("error", json!({ "error": e }), exit::PROBLEM),
        ProbeOutcome::Unknown(e) => ("unknown", json!({ "reason": e }), exit::PROBLEM),
    };
    let doc = json!({ "probe": kind, "with": with, "outcome": state, "duration_ms": duration_ms, "result": result });
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, &doc);
    let _ = writeln!(out);
    code
}

/// `--with k=v` pairs as a params map. Values are YAML: `8001` is a number, `true` a bool,
/// `[a, b]` a list, else a string.
fn parse_with(with: &[String]) -> Result<Map<String, Value>, u8> {
    let mut params = Map::new();
    for w in with {
        let Some((k, v)) = w.split_once('=') else {
            eprintln!("error: `--with {w}`: write `--with key=value`");
            return Err(exit::INVALID);
        };
        let value = serde_saphyr::from_str::<Value>(v)
            .ok()
            .filter(|x| !x.is_null() || v.trim() == "null")
            .unwrap_or_else(|| Value::String(v.to_owned()));
        params.insert(k.to_owned(), value);
    }
    Ok(params)
}

/// `runbook probe jsonl --follow`: one JSON line of counts per interval, until stopped or
/// `count` reports.
pub fn follow(
    ctx: &Ctx,
    kind: Option<&str>,
    with: &[String],
    interval: &str,
    count: Option<u64>,
    poll: bool,
) -> u8 {
    if kind != Some("jsonl") {
        eprintln!("error: `--follow` is for the `jsonl` probe");
        return exit::INVALID;
    }
    let interval = match parse_duration(interval) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            eprintln!("error: --interval must be more than 0");
            return exit::INVALID;
        }
        Err(e) => {
            eprintln!("error: --interval: {e}");
            return exit::INVALID;
        }
    };
    let params = match parse_with(with) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let params: jsonl::JsonlParams = match serde_json::from_value(Value::Object(params)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: jsonl parameters: {e}");
            return exit::INVALID;
        }
    };
    let opts = match jsonl::opts(&params) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let store = if params.incremental == Some(true) {
        match crate::audit::AuditStore::open(&ctx.db) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: `incremental` keeps positions in the audit DB: {e}");
                return exit::FAULT;
            }
        }
    } else {
        None
    };
    let f = jsonl::Follow {
        pattern: params.path.clone(),
        opts,
        interval,
        count,
        store: store
            .as_ref()
            .map(|s| (s as &dyn crate::probes::PositionStore, "probe")),
        poll,
        stop: None,
    };
    let mut out = std::io::stdout().lock();
    match jsonl::follow(&f, |m| {
        let _ = writeln!(out, "{}", Value::Object(m));
        let _ = out.flush();
    }) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAULT
        }
    }
}
