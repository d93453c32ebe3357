//! `runbook graph NAME --format mermaid|dot|svg`.

use std::collections::BTreeMap;
use std::io::Write;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::exit;
use crate::plan::Plan;
use crate::report::{GraphFormat, render_graph, render_svg};

/// Run the verb.
pub fn run(ctx: &Ctx, name: &str, sets: &[String]) -> u8 {
    let allowed = [Format::Mermaid, Format::Dot, Format::Svg];
    let format = match ctx.format_in("graph", &allowed, Format::Mermaid) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let (cat, i) = match ctx.runbook(name) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match Plan::build(&cat.runbooks[i], cat.policy.as_ref(), sets) {
        Ok(plan) => {
            let text = match format {
                // No statuses: the plain graph.
                Format::Svg => render_svg(&plan, &BTreeMap::new()),
                Format::Dot => render_graph(&plan, GraphFormat::Dot),
                _ => render_graph(&plan, GraphFormat::Mermaid),
            };
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
    }
}
