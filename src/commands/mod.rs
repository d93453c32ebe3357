//! One thin file per verb: parse nothing, call the library, print, return an exit code.

mod ack;
mod approve;
mod audit;
mod common;
mod demo;
mod graph;
mod history;
mod incidents;
mod list;
mod plan;
mod probe;
mod replay;
mod report;
mod run;
mod schema;
mod serve;
mod show;
mod sim;
mod test;
mod tick;
mod triage;
mod validate;

pub use common::Ctx;

use crate::cli::{AuditOp, Cli, Command};

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
        Command::Test { paths, junit } => test::run(&ctx, &paths, junit.as_deref()),
        c @ (Command::Replay { .. } | Command::Report { .. } | Command::Serve { .. }) => {
            by_command(&ctx, c)
        }
        Command::Run {
            name,
            sets,
            dry_run,
            yes,
            lock_wait,
            answers,
        } => run::run(&ctx, &name, &sets, dry_run, yes, &lock_wait, &answers),
        Command::Probe {
            kind,
            with,
            doc,
            timeout,
            help,
            follow,
            interval,
            count,
            poll,
        } => {
            if follow {
                probe::follow(&ctx, kind.as_deref(), &with, &interval, count, poll)
            } else {
                probe::run(&ctx, kind.as_deref(), &with, doc || help, &timeout)
            }
        }
        Command::Tick { dry_run, yes, now } => tick::run(&ctx, dry_run, yes, now.as_deref()),
        Command::Incidents { now } => incidents::run(&ctx, now.as_deref()),
        Command::Approve {
            run,
            action,
            ttl,
            by,
        } => approve::run(&ctx, &run, &action, &ttl, by.as_deref()),
        Command::Ack { id, by, now } => ack::run(&ctx, id, by.as_deref(), now.as_deref()),
        Command::History { runbook, limit } => history::run(&ctx, runbook.as_deref(), limit),
        Command::Show { run } => show::run(&ctx, &run),
        Command::Audit {
            op: AuditOp::Verify,
        } => audit::verify(&ctx),
        Command::Audit {
            op: AuditOp::Export,
        } => audit::export(&ctx),
        Command::Sim {
            dir,
            faults,
            duration,
        } => sim::run(&ctx, dir.as_deref(), &faults, duration.as_deref()),
        Command::Triage { service, sets } => triage::run(&ctx, service.as_deref(), &sets),
        Command::Demo { scenario, list } => demo::run(&ctx, scenario.as_deref(), list),
        Command::SimTool {
            control,
            program,
            args,
        } => sim::tool(&control, &program, &args),
    }
}

/// The verbs that take their whole [`Command`] (`run()` is at clippy's length limit).
fn by_command(ctx: &Ctx, command: Command) -> u8 {
    match command {
        c @ Command::Report { .. } => report::run(ctx, c),
        Command::Serve {
            listen,
            token_files,
            api_token_files,
            basic_auth_user,
            basic_auth_password_file,
            hmac_secret_files,
            grafana_hmac,
            body_limit,
            queue,
            workers,
            cooldown,
            allow_unauthenticated,
            approval_ttl,
            schedule_now,
            follow,
            follow_interval,
        } => serve::run(
            ctx,
            &serve::ServeArgs {
                listen,
                body_limit,
                queue,
                workers,
                cooldown,
                token_files,
                api_token_files,
                basic_auth_user,
                basic_auth_password_file,
                hmac_secret_files,
                grafana_hmac,
                allow_unauthenticated,
                approval_ttl,
                follow,
                follow_interval,
                schedule_now,
            },
        ),
        c => replay::run(ctx, c),
    }
}
