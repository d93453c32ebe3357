//! `runbook ack ID [--by NAME]`: acknowledge an incident; no further level fires, and it stays
//! listed by `runbook incidents` until a healthy run (or a resolved alert) closes it.

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_required;
use crate::commands::common::print_json;
use crate::commands::incidents::now_arg;
use crate::escalation::{self, AckOutcome};
use crate::exit;

/// Run the verb.
pub fn run(ctx: &Ctx, id: i64, by: Option<&str>, now: Option<&str>) -> u8 {
    let format = match ctx.format_in("ack", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let now = match now_arg(now) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let store = match open_required(ctx, "ack") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let who = by.map_or_else(
        || {
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into())
        },
        str::to_owned,
    );
    let (result, incident, code) = match escalation::ack(&store, id, &who, now) {
        Ok(AckOutcome::Acked(i)) => ("acked", Some(i), exit::OK),
        Ok(AckOutcome::AlreadyAcked(i)) => ("already_acked", Some(i), exit::OK),
        Ok(AckOutcome::Resolved(i)) => ("resolved", Some(i), exit::OK),
        Ok(AckOutcome::NotFound) => ("not_found", None, exit::INVALID),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    if format == Format::Json {
        print_json(&serde_json::json!({
            "id": id,
            "result": result,
            "incident": incident.as_ref().map(|i| i.to_json(now)),
        }));
        return code;
    }
    match (result, &incident) {
        ("acked", Some(i)) => println!(
            "incident #{id} ({}) acknowledged by {who}: no further level fires",
            i.runbook
        ),
        ("already_acked", Some(i)) => println!(
            "incident #{id} was acknowledged already by {} at {}",
            i.acked_by.as_deref().unwrap_or("?"),
            i.acked_at.as_deref().unwrap_or("?")
        ),
        ("resolved", Some(i)) => println!(
            "incident #{id} is resolved already (at {})",
            i.resolved_at.as_deref().unwrap_or("?")
        ),
        _ => {
            eprintln!("error: no incident #{id}");
            eprintln!("hint: `runbook incidents` lists the open ones");
        }
    }
    code
}
