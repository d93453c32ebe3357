//! The `runbook` binary: arguments → command → exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match runbook::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                runbook::exit::INVALID
            } else {
                runbook::exit::OK
            });
        }
    };
    ExitCode::from(runbook::commands::run(cli))
}
