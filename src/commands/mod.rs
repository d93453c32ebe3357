//! One thin file per verb: parse nothing, call the library, print, return an exit code.

mod common;
mod graph;
mod list;
mod plan;
mod schema;
mod validate;

pub use common::Ctx;

use crate::cli::{Cli, Command};

/// Run the parsed command line; returns the process exit code.
#[must_use]
pub fn run(cli: Cli) -> u8 {
    let ctx = Ctx::new(&cli);
    match cli.command {
        Command::List => list::run(&ctx),
        Command::Validate { paths } => validate::run(&ctx, &paths),
        Command::Plan { name, sets } => plan::run(&ctx, &name, &sets),
        Command::Graph { name, sets } => graph::run(&ctx, &name, &sets),
        Command::Schema => schema::run(&ctx),
    }
}
