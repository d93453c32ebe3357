//! `runbook audit verify | export`, and opening the audit database for the reading verbs.
//!
//! A missing database is not created by a reading verb: `history` prints an empty list (exit
//! 0, nothing has run yet); `show`, `audit verify` and `audit export` refuse with exit 2, since
//! the user most likely pointed `--db` at the wrong place. A database that cannot be opened is
//! an engine fault (exit 3).

use std::io::Write;

use crate::audit::AuditStore;
use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::common::print_json;
use crate::exit;

/// Open the audit database if it exists: `Ok(None)` when there is none.
///
/// # Errors
/// The exit code to return when it exists but cannot be opened.
pub fn open_existing(ctx: &Ctx) -> Result<Option<AuditStore>, u8> {
    if !ctx.db.exists() {
        return Ok(None);
    }
    match AuditStore::open(&ctx.db) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::FAULT)
        }
    }
}

/// Open the audit database, refusing (exit 2) when there is none.
///
/// # Errors
/// The exit code to return.
pub fn open_required(ctx: &Ctx, verb: &str) -> Result<AuditStore, u8> {
    open_existing(ctx)?.ok_or_else(|| {
        eprintln!(
            "error: `runbook {verb}`: no audit database at `{}`",
            ctx.db.display()
        );
        eprintln!("hint: point --db (or $RUNBOOK_DB) at the database `runbook run` wrote");
        exit::INVALID
    })
}

/// `audit verify`: exit 0 when the chain recomputes, 1 when a row was altered.
pub fn verify(ctx: &Ctx) -> u8 {
    let format = match ctx.format_in(
        "audit verify",
        &[Format::Human, Format::Json],
        Format::Human,
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let store = match open_required(ctx, "audit verify") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let report = match store.verify() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    if format == Format::Json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else if let Some(a) = &report.altered {
        println!("altered: {} row {}: {}", a.table, a.id, a.reason);
    } else {
        println!(
            "ok: {} rows verified ({} chain entries, head {})",
            report.rows, report.entries, report.head
        );
    }
    if report.is_ok() {
        exit::OK
    } else {
        exit::PROBLEM
    }
}

/// `audit export`: JSON lines to stdout.
pub fn export(ctx: &Ctx) -> u8 {
    let store = match open_required(ctx, "audit export") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match store.export(&mut out).and_then(|()| Ok(out.flush()?)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAULT
        }
    }
}
