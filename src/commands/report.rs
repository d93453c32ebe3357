//! `runbook report RUN | --incident ID [--format md|html] [--templates DIR] [-o FILE]`: a
//! post-mortem draft from the audit trail (see [`crate::report::postmortem`]), Markdown on
//! stdout by default.
//!
//! The audit database is opened read-only and nothing is written to it. The runbook of the
//! same name in the runbook dir, as it is now, gives the step graph of the HTML report (and
//! titles, guidance, remedies); when its SHA-256 is not the one a run recorded, the report
//! says so. Exit 0 written, 2 no such run or incident (or no database), a template error
//! (its file and line named) or bad options, 3 the database cannot be read or the output
//! cannot be written.

use std::io::Write as _;
use std::path::Path;

use crate::cli::{Command, Format};
use crate::commands::Ctx;
use crate::exit;
use crate::report::postmortem::{
    ReadError, Recorded, Report, ReportFormat, Scope, Sources, Templates, run_graph,
};

/// Run the verb with the arguments of `command`, a [`Command::Report`].
pub fn run(ctx: &Ctx, command: Command) -> u8 {
    let Command::Report {
        run,
        incident,
        templates,
        output,
    } = command
    else {
        // Not reached: the dispatch passes only `Command::Report`.
        return exit::FAULT;
    };
    verb(
        ctx,
        run.as_deref(),
        incident,
        templates.as_deref(),
        output.as_deref(),
    )
}

fn verb(
    ctx: &Ctx,
    run: Option<&str>,
    incident: Option<i64>,
    templates: Option<&Path>,
    output: Option<&Path>,
) -> u8 {
    let format = match ctx.format_in("report", &[Format::Md, Format::Html], Format::Md) {
        Ok(Format::Html) => ReportFormat::Html,
        Ok(_) => ReportFormat::Markdown,
        Err(code) => return code,
    };
    if let Some(dir) = templates.filter(|d| !d.is_dir()) {
        eprintln!("error: `--templates {}`: not a directory", dir.display());
        return exit::INVALID;
    }
    if !ctx.db.exists() {
        eprintln!(
            "error: `runbook report`: no audit database at `{}`",
            ctx.db.display()
        );
        eprintln!("hint: point --db (or $RUNBOOK_DB) at the database `runbook run` wrote");
        return exit::INVALID;
    }
    let (read, scope) = match (run, incident) {
        (_, Some(id)) => (Recorded::incident(&ctx.db, id), Scope::Incident),
        (Some(run), None) => (Recorded::run(&ctx.db, run), Scope::Run),
        (None, None) => {
            eprintln!("error: `runbook report` needs a run id or `--incident ID`");
            return exit::INVALID;
        }
    };
    let rec = match read {
        Ok(rec) => rec,
        Err(e @ (ReadError::NoRun(_) | ReadError::NoIncident(_))) => {
            eprintln!("error: {e} in `{}`", ctx.db.display());
            eprintln!("hint: `runbook history` lists run ids, `runbook incidents` open incidents");
            return exit::INVALID;
        }
        Err(e @ ReadError::Ambiguous { .. }) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
        Err(e @ ReadError::Db(_)) => {
            eprintln!("error: `{}`: {e}", ctx.db.display());
            return exit::FAULT;
        }
    };
    let cat = ctx.catalog();
    let name = rec
        .runs
        .first()
        .map(|r| r.summary.runbook.clone())
        .or_else(|| rec.incident.as_ref().map(|i| i.runbook.clone()))
        .unwrap_or_default();
    let rb = cat.find(&name);
    let sources = Sources {
        runbook: rb,
        policy: cat.policy.as_ref(),
        now: chrono::Utc::now(),
    };
    let mut report = Report::build(&rec, scope, &sources);
    if format == ReportFormat::Html {
        if let (Some(rb), Some(last)) = (rb, rec.runs.last()) {
            report.graph = run_graph(rb, cat.policy.as_ref(), last);
        }
    }
    let text = match Templates::new(templates).render(format, &report.to_context()) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    write(output, &text)
}

fn write(output: Option<&Path>, text: &str) -> u8 {
    if let Some(path) = output {
        return match std::fs::write(path, text) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                exit::FAULT
            }
        };
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        // A closed pipe (`| head`) is the reader's choice, not a fault.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            exit::FAULT
        }
    }
}
