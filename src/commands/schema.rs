//! `runbook schema`: the JSON Schema of the runbook format.

use std::io::Write;

use crate::commands::Ctx;
use crate::exit;

/// Run the verb.
pub fn run(_ctx: &Ctx) -> u8 {
    let _ = std::io::stdout()
        .lock()
        .write_all(crate::runbook::schema::runbook_schema().as_bytes());
    exit::OK
}
