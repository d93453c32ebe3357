//! `runbook graph NAME --format mermaid|dot`.

use std::io::Write;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::exit;
use crate::plan::Plan;
use crate::report::{GraphFormat, render_graph};

/// Run the verb.
pub fn run(ctx: &Ctx, name: &str, sets: &[String]) -> u8 {
    let format = match ctx.format_in("graph", &[Format::Mermaid, Format::Dot], Format::Mermaid) {
        Ok(Format::Dot) => GraphFormat::Dot,
        Ok(_) => GraphFormat::Mermaid,
        Err(code) => return code,
    };
    let (cat, i) = match ctx.runbook(name) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match Plan::build(&cat.runbooks[i], cat.policy.as_ref(), sets) {
        Ok(plan) => {
            let _ = std::io::stdout()
                .lock()
                .write_all(render_graph(&plan, format).as_bytes());
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
    }
}
