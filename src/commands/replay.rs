//! `runbook replay RUN [--runbook FILE] [--yes] [--emit-scenario[=NAME]]`: re-decide a
//! recorded run with the runbook as it is now (or an edited version in FILE), on the probe
//! results the run recorded, with no host access; show where the decisions differ (see
//! [`crate::scenario::replay`]). With `--emit-scenario`, print instead a scenario file that
//! gives the run's results and expects its decisions (see
//! [`crate::scenario::recorded_scenario`]), after running it as `runbook test` would.
//!
//! The audit database is opened read-only and nothing is written to it: not even the
//! migration or the marking of interrupted runs that opening it for a run does.
//! Exit 0 no decision differs (the scenario passes), 1 decisions differ (it does not), 2 bad
//! input (no such run, FILE invalid, a run with no scenario), 3 the audit database cannot be
//! read.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Value, json};

use crate::cli::{Command, Format};
use crate::commands::Ctx;
use crate::commands::common::print_json;
use crate::exit;
use crate::runbook::Catalog;
use crate::scenario::compile::levels;
use crate::scenario::recorded_scenario::{RecordedScenario, try_scenario};
use crate::scenario::replay::{RecordedRun, RecordedStep, replay};
use crate::scenario::row::render;
use crate::scenario::verdict::Verdict;

/// Why a run could not be read.
enum ReadError {
    /// No run with that id or prefix.
    NoRun,
    /// Several runs start with the prefix.
    Ambiguous(usize),
    /// The database could not be read.
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for ReadError {
    fn from(e: rusqlite::Error) -> Self {
        ReadError::Db(e)
    }
}

/// `--emit-scenario[=NAME]`.
#[derive(Clone, Copy)]
struct Emit<'a> {
    /// The scenario's name, when given.
    name: Option<&'a str>,
}

/// Run the verb with the arguments of `command`, a [`Command::Replay`].
pub fn run(ctx: &Ctx, command: Command) -> u8 {
    let Command::Replay {
        run,
        runbook,
        yes,
        emit_scenario,
    } = command
    else {
        // Not reached: the dispatch passes only `Command::Replay`.
        return exit::FAULT;
    };
    let emit = emit_scenario.as_ref().map(|name| Emit {
        name: name.as_deref(),
    });
    verb(ctx, &run, runbook.as_deref(), yes, emit)
}

fn verb(
    ctx: &Ctx,
    run_id: &str,
    file: Option<&Path>,
    assume_yes: bool,
    emit: Option<Emit<'_>>,
) -> u8 {
    let format = match ctx.format_in("replay", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if emit.is_some() && format == Format::Json {
        eprintln!("error: `--emit-scenario` prints a YAML scenario file; drop `--format json`");
        return exit::INVALID;
    }
    if !ctx.db.exists() {
        eprintln!(
            "error: `runbook replay`: no audit database at `{}`",
            ctx.db.display()
        );
        eprintln!("hint: point --db (or $RUNBOOK_DB) at the database `runbook run` wrote");
        return exit::INVALID;
    }
    let run = match read_run(&ctx.db, run_id) {
        Ok(r) => r,
        Err(ReadError::NoRun) => {
            eprintln!("error: no run `{run_id}` in `{}`", ctx.db.display());
            eprintln!("hint: `runbook history` lists run ids");
            return exit::INVALID;
        }
        Err(ReadError::Ambiguous(n)) => {
            eprintln!("error: run id `{run_id}` is ambiguous: {n} runs start with it");
            return exit::INVALID;
        }
        Err(ReadError::Db(e)) => {
            eprintln!(
                "error: cannot read the audit database `{}`: {e}",
                ctx.db.display()
            );
            return exit::FAULT;
        }
    };
    if run.is_revert() {
        eprintln!(
            "error: run `{}` only performed rollbacks (a due temporary change undone): there is no diagnosis to replay",
            run.id
        );
        return exit::INVALID;
    }
    let (cat, source) = match runbooks_for(ctx, file, &run) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let Some(rb) = cat.find(&run.runbook) else {
        eprintln!(
            "error: run `{}` is of runbook `{}`, `{source}` holds runbook `{}`",
            run.id,
            run.runbook,
            cat.runbooks.first().map_or("?", |r| r.name.as_str())
        );
        return exit::INVALID;
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::FAULT;
        }
    };
    let ladder = cat
        .policy
        .as_ref()
        .map(|p| p.ladder_levels(rb))
        .unwrap_or_default();
    let levels = levels(&cat, rb);
    if let Some(Emit { name }) = emit {
        return emit_scenario(ctx, &rt, &cat, &run, name, assume_yes, &source);
    }
    let result = match replay(&rt, rb, ladder, &levels, &run, assume_yes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the replay failed: {e}");
            return exit::FAULT;
        }
    };
    let differs = result.differs();
    if format == Format::Json {
        print_json(&json!({
            "run": run.id,
            "runbook": run.runbook,
            "runbook_file": source,
            "recorded_at": run.started_at,
            "differs": differs,
            "rows": result.rows,
            "notes": result.notes,
            "recorded": result.recorded,
            "replayed": result.replayed,
        }));
    } else {
        print!("{}", human(&run, &source, &result));
    }
    if differs { exit::PROBLEM } else { exit::OK }
}

/// Print the scenario of `run` for its runbook in `cat`, after running it as `runbook test`
/// does against the same runbook: exit 0 it passes, 1 it does not (why, on stderr).
fn emit_scenario(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    cat: &Catalog,
    run: &RecordedRun,
    name: Option<&str>,
    assume_yes: bool,
    source: &str,
) -> u8 {
    let Some(rb) = cat.find(&run.runbook) else {
        return exit::INVALID;
    };
    let scenario = match RecordedScenario::new(rb, &levels(cat, rb), run, name, assume_yes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let text = scenario.to_yaml();
    print!("{text}");
    for n in &scenario.notes {
        eprintln!("note: {n}");
    }
    match try_scenario(rt, cat, &text) {
        Ok(results) => {
            let mut code = exit::OK;
            for r in &results {
                match &r.verdict {
                    Verdict::Passed { .. } => {}
                    Verdict::Failed { rows, .. } => {
                        eprintln!(
                            "warning: the scenario does not pass against `{source}`: decisions differ"
                        );
                        eprint!("{}", render(rows, ("expected", "actual"), false, "  "));
                        code = exit::PROBLEM;
                    }
                    Verdict::Invalid { diagnostic } => {
                        eprintln!("warning: the scenario cannot run against `{source}`");
                        eprint!("{}", diagnostic.render(ctx.color));
                        code = exit::PROBLEM;
                    }
                }
            }
            code
        }
        Err(diagnostics) => {
            eprintln!("warning: the scenario does not load against `{source}`");
            for d in &diagnostics {
                eprint!("{}", d.render(ctx.color));
            }
            exit::PROBLEM
        }
    }
}

/// The catalog holding the runbook to decide with (FILE's, or the runbook dir's) and the file
/// it is in.
fn runbooks_for(
    ctx: &Ctx,
    file: Option<&Path>,
    run: &RecordedRun,
) -> Result<(Catalog, String), u8> {
    match file {
        Some(f) => {
            let cat = Catalog::load(&[f.to_path_buf()], &ctx.dir);
            if cat.has_errors() || cat.runbooks.len() != 1 {
                for d in &cat.diagnostics {
                    eprint!("{}", d.render(ctx.color));
                }
                eprintln!(
                    "error: `{}` does not compile; see `runbook validate {}`",
                    f.display(),
                    f.display()
                );
                return Err(exit::INVALID);
            }
            Ok((cat, f.display().to_string()))
        }
        None => match ctx.runbook(&run.runbook) {
            Ok((cat, _)) => {
                let file = cat
                    .find(&run.runbook)
                    .map(|rb| rb.file.name.clone())
                    .unwrap_or_default();
                Ok((cat, file))
            }
            Err(code) => Err(code),
        },
    }
}

fn human(run: &RecordedRun, source: &str, result: &crate::scenario::Replay) -> String {
    let differs = result.differs();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay of run {} ({}, {}) with {source}",
        run.id, run.runbook, run.started_at
    );
    if differs {
        out.push_str(&render(&result.rows, ("recorded", "replayed"), false, ""));
    }
    if !result.notes.is_empty() {
        out.push_str("notes:\n");
        for n in &result.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    let n = result.rows.iter().filter(|r| !r.same).count();
    if differs {
        let _ = writeln!(out, "{n} decision(s) differ");
    } else {
        let _ = writeln!(
            out,
            "no difference: {} decision(s) taken as recorded, outcome {}",
            result.rows.len(),
            result.replayed.outcome
        );
    }
    out
}

/// Read a run and its steps from the audit database, read-only.
fn read_run(db: &Path, run: &str) -> Result<RecordedRun, ReadError> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let cols = "id, runbook, host, mode, trigger, started_at, params, outcome";
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<RecordedRun> {
        let params: String = r.get(6)?;
        Ok(RecordedRun {
            id: r.get(0)?,
            runbook: r.get(1)?,
            host: r.get(2)?,
            mode: r.get(3)?,
            trigger: r.get(4)?,
            started_at: r.get(5)?,
            params: serde_json::from_str(&params).unwrap_or(Value::Null),
            alert: None,
            outcome: r.get(7)?,
            steps: Vec::new(),
        })
    };
    let mut found = conn
        .query_row(
            &format!("SELECT {cols} FROM runs WHERE id = ?1"),
            [run],
            row,
        )
        .optional()?;
    if found.is_none() {
        let escaped = run
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut matches: Vec<RecordedRun> = conn
            .prepare(&format!(
                "SELECT {cols} FROM runs WHERE id LIKE ?1 || '%' ESCAPE '\\' LIMIT 10"
            ))?
            .query_map([escaped], row)?
            .collect::<Result<_, _>>()?;
        if matches.len() > 1 {
            return Err(ReadError::Ambiguous(matches.len()));
        }
        found = matches.pop();
    }
    let mut run = found.ok_or(ReadError::NoRun)?;
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
    run.steps = conn
        .prepare(
            "SELECT kind, step_id, status, result, decided_by FROM steps \
             WHERE run_id = ?1 ORDER BY seq",
        )?
        .query_map([&run.id], |r| {
            Ok(RecordedStep {
                kind: r.get(0)?,
                id: r.get(1)?,
                status: r.get(2)?,
                result: json(r.get(3)?),
                decided_by: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    // Only a server run has a context row (and an older database no such table).
    let has_context: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'run_context'",
        [],
        |r| r.get(0),
    )?;
    if has_context {
        run.alert = conn
            .query_row(
                "SELECT alert FROM run_context WHERE run_id = ?1",
                [&run.id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            .and_then(|a| serde_json::from_str(&a).ok());
    }
    Ok(run)
}
