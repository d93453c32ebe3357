//! `runbook list`: runbooks with severity and triggers.

use std::io::Write;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::common::print_json;
use crate::exit;

/// Run the verb.
pub fn run(ctx: &Ctx) -> u8 {
    let format = match ctx.format_in("list", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let cat = ctx.catalog();
    let broken = cat.has_errors();
    if format == Format::Json {
        let items: Vec<_> = cat
            .runbooks
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "title": r.title, "severity": r.severity, "service": r.service,
                    "source": r.source, "triggers": r.triggers,
                    "checks": r.checks.len(), "causes": r.causes.len(), "actions": r.actions.len(),
                })
            })
            .collect();
        print_json(&serde_json::json!({ "runbooks": items, "invalid_files": broken }));
    } else {
        let mut out = std::io::stdout().lock();
        let w = cat
            .runbooks
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<w$}  {:<3}  {:<40}  TITLE",
            "NAME", "SEV", "TRIGGERS"
        );
        for r in &cat.runbooks {
            let mut triggers: Vec<String> = r.triggers.alerts.clone();
            if let Some(s) = &r.triggers.schedule {
                triggers.push(format!("cron {s}"));
            }
            let triggers = if triggers.is_empty() {
                "-".to_owned()
            } else {
                triggers.join(", ")
            };
            let _ = writeln!(
                out,
                "{:<w$}  {:<3}  {:<40}  {}",
                r.name, r.severity, triggers, r.title
            );
        }
        if broken {
            let n = cat
                .diagnostics
                .iter()
                .filter(|d| d.severity == crate::runbook::diagnostic::Severity::Error)
                .count();
            let _ = writeln!(
                std::io::stderr(),
                "warning: {n} error(s) in the runbook directory; run `runbook validate`"
            );
        }
    }
    if broken { exit::INVALID } else { exit::OK }
}
