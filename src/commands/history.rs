//! `runbook history [--runbook NAME] [--limit N]`.

use crate::audit::RunSummary;
use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_existing;
use crate::commands::common::print_json;
use crate::exit;

/// Run the verb.
pub fn run(ctx: &Ctx, runbook: Option<&str>, limit: u32) -> u8 {
    let format = match ctx.format_in("history", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let runs = match open_existing(ctx) {
        Err(code) => return code,
        Ok(None) => {
            eprintln!(
                "note: no runs recorded yet (no audit database at `{}`)",
                ctx.db.display()
            );
            Vec::new()
        }
        Ok(Some(store)) => match store.history(runbook, limit) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAULT;
            }
        },
    };
    if format == Format::Json {
        print_json(&serde_json::to_value(&runs).unwrap_or_default());
    } else {
        print!("{}", table(&runs));
    }
    exit::OK
}

/// The human table.
fn table(runs: &[RunSummary]) -> String {
    let header = [
        "ID", "RUNBOOK", "MODE", "STARTED", "DURATION", "OUTCOME", "EXIT",
    ];
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.runbook.clone(),
                r.mode.clone(),
                short_time(&r.started_at),
                r.duration_ms.map_or_else(|| "-".to_owned(), duration),
                r.outcome.clone().unwrap_or_else(|| "running".to_owned()),
                r.exit_code
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// `2025-01-01T12:00:00.123Z` → `2025-01-01 12:00:00Z`.
pub(crate) fn short_time(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%SZ")
            .to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

/// `850ms`, `12.3s`, `4m05s`.
pub(crate) fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
