//! `runbook validate [PATH...]`: every problem in every file at once.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::common::print_json;
use crate::exit;
use crate::runbook::Catalog;
use crate::runbook::diagnostic::Severity;

/// Run the verb.
pub fn run(ctx: &Ctx, paths: &[PathBuf]) -> u8 {
    let format = match ctx.format_in(
        "validate",
        &[Format::Human, Format::Json, Format::Github],
        Format::Human,
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let paths = if paths.is_empty() {
        vec![ctx.dir.clone()]
    } else {
        paths.to_vec()
    };
    let cat = Catalog::load(&paths, &ctx.dir);
    let errors = cat
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = cat.diagnostics.len() - errors;
    let files = cat.files.len();
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let diags: Vec<_> = cat
                .diagnostics
                .iter()
                .map(crate::runbook::Diagnostic::to_json)
                .collect();
            print_json(&serde_json::json!({
                "ok": errors == 0, "files": files, "runbooks": cat.runbooks.len(),
                "errors": errors, "warnings": warnings, "diagnostics": diags,
            }));
        }
        Format::Github => {
            for d in &cat.diagnostics {
                let _ = writeln!(out, "{}", d.render_github());
            }
            let _ = writeln!(
                out,
                "{files} file(s), {} runbook(s): {errors} error(s), {warnings} warning(s)",
                cat.runbooks.len()
            );
        }
        _ => {
            for d in &cat.diagnostics {
                let _ = write!(out, "{}", d.render(ctx.color));
            }
            if errors == 0 {
                let _ = writeln!(
                    out,
                    "ok: {files} file(s), {} runbook(s) valid, {warnings} warning(s)",
                    cat.runbooks.len()
                );
            } else {
                let _ = writeln!(
                    out,
                    "error: {errors} error(s), {warnings} warning(s) in {files} file(s)"
                );
            }
        }
    }
    if errors == 0 { exit::OK } else { exit::INVALID }
}
