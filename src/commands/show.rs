//! `runbook show RUN`: one run and each of its steps. `RUN` is a run id or a unique prefix.

use std::fmt::Write as _;

use serde_json::Value;

use crate::audit::{AuditError, RunSummary, StepRow};
use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_required;
use crate::commands::common::print_json;
use crate::commands::history::{duration, short_time};
use crate::exit;

/// Longest compact JSON shown per cell before it is cut.
const CELL: usize = 160;

/// Run the verb.
pub fn run(ctx: &Ctx, run: &str) -> u8 {
    let format = match ctx.format_in("show", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let store = match open_required(ctx, "show") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (summary, steps) = match store.show(run) {
        Ok(Some(found)) => found,
        Ok(None) => {
            eprintln!("error: no run `{run}` in `{}`", ctx.db.display());
            eprintln!("hint: `runbook history` lists run ids");
            return exit::INVALID;
        }
        Err(e @ AuditError::AmbiguousRun { .. }) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    if format == Format::Json {
        print_json(&serde_json::json!({"run": summary, "steps": steps}));
    } else {
        print!("{}", render(&summary, &steps));
    }
    exit::OK
}

fn render(r: &RunSummary, steps: &[StepRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run {}  runbook {}  ({})", r.id, r.runbook, r.mode);
    let _ = writeln!(
        out,
        "  started {} by {}@{} via {}, pid {}",
        short_time(&r.started_at),
        r.user,
        r.host,
        r.trigger,
        r.pid
    );
    let _ = writeln!(
        out,
        "  outcome {}  exit {}  duration {}",
        r.outcome.as_deref().unwrap_or("running"),
        r.exit_code
            .map_or_else(|| "-".to_owned(), |c| c.to_string()),
        r.duration_ms.map_or_else(|| "-".to_owned(), duration)
    );
    let _ = writeln!(out, "  runbook sha256 {}", r.runbook_sha256);
    if r.params.as_object().is_some_and(|m| !m.is_empty()) {
        let _ = writeln!(out, "  params {}", compact(&r.params));
    }
    if steps.is_empty() {
        let _ = writeln!(out, "  (no steps)");
    }
    for s in steps {
        let status = if s.state == "intent" {
            "intent, no result (the run stopped while this action ran)"
        } else {
            s.status.as_deref().unwrap_or("-")
        };
        let _ = write!(
            out,
            "{:>3}. {:<10} {:<24} {}",
            s.seq, s.kind, s.step_id, status
        );
        if let Some(d) = s.duration_ms {
            let _ = write!(out, "  {}", duration(d));
        }
        if let Some(by) = &s.decided_by {
            let _ = write!(out, "  ({by})");
        }
        out.push('\n');
        if !is_empty(&s.inputs) {
            let _ = writeln!(out, "       inputs {}", compact(&s.inputs));
        }
        if let Some(result) = s.result.as_ref().filter(|v| !is_empty(v)) {
            let _ = writeln!(out, "       result {}", compact(result));
        }
        if let Some(g) = &s.guidance {
            let _ = writeln!(out, "       guidance {g}");
        }
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= CELL {
        s
    } else {
        let cut: String = s.chars().take(CELL).collect();
        format!("{cut}…")
    }
}
