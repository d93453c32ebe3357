//! `runbook approve RUN ACTION [--ttl 15m] [--by NAME]`: record an approval of one action of a
//! run that waited for approval. A running `runbook serve` takes it (within a second) and runs
//! the runbook again for the same alert and key with that action allowed; an approval not
//! taken before it expires runs nothing.

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_required;
use crate::commands::common::print_json;
use crate::exit;
use crate::runbook::value::parse_duration;
use crate::serve::server::waiting_for_approval;

/// Run the verb.
pub fn run(ctx: &Ctx, run: &str, action: &str, ttl: &str, by: Option<&str>) -> u8 {
    let format = match ctx.format_in("approve", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let ttl = match parse_duration(ttl) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --ttl: {e}");
            return exit::INVALID;
        }
    };
    let store = match open_required(ctx, "approve") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let summary = match waiting_for_approval(&store, run, action) {
        Ok(r) => r,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            if code == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                return exit::FAULT;
            }
            eprintln!("hint: `runbook show RUN` lists the actions that need approval");
            return exit::INVALID;
        }
    };
    let who = by.map_or_else(
        || {
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into())
        },
        str::to_owned,
    );
    let approval = match store.add_approval(&summary.id, action, &who, ttl, chrono::Utc::now()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
    };
    if format == Format::Json {
        print_json(&serde_json::json!({ "approval": approval }));
    } else {
        println!(
            "approval #{} of `{action}` in run {} ({}) recorded, valid until {}: a running `runbook serve` runs it",
            approval.id, summary.id, summary.runbook, approval.expires_at
        );
    }
    exit::OK
}
