//! What every verb needs: where the runbooks are, the output format, colour, and loading one
//! runbook by name with its diagnostics shown.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use crate::cli::{Cli, ColorChoice, Format};
use crate::exit;
use crate::runbook::Catalog;

/// Settings shared by the verbs.
#[derive(Debug)]
pub struct Ctx {
    /// The runbook directory.
    pub dir: PathBuf,
    /// The audit database.
    pub db: PathBuf,
    /// Requested format, if any.
    pub format: Option<Format>,
    /// Colour diagnostics.
    pub color: bool,
}

impl Ctx {
    /// From the command line and environment.
    #[must_use]
    pub fn new(cli: &Cli) -> Self {
        let color = match cli.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        };
        Ctx {
            db: cli.db.clone().unwrap_or_else(default_db),
            dir: cli
                .runbooks
                .clone()
                .unwrap_or_else(|| PathBuf::from("runbooks")),
            format: cli.format,
            color,
        }
    }

    /// Refuse a format this verb does not have.
    ///
    /// # Errors
    /// The exit code to return.
    pub fn format_in(&self, verb: &str, allowed: &[Format], default: Format) -> Result<Format, u8> {
        let f = self.format.unwrap_or(default);
        if allowed.contains(&f) {
            Ok(f)
        } else {
            let names: Vec<String> = allowed
                .iter()
                .map(|f| format!("{f:?}").to_lowercase())
                .collect();
            eprintln!(
                "error: `runbook {verb}` has no format `{}`; use {}",
                format!("{f:?}").to_lowercase(),
                names.join(" or ")
            );
            Err(exit::INVALID)
        }
    }

    /// Load the runbook directory.
    #[must_use]
    pub fn catalog(&self) -> Catalog {
        Catalog::load(std::slice::from_ref(&self.dir), &self.dir)
    }

    /// Load one runbook by name, printing its diagnostics to stderr when it does not compile.
    ///
    /// # Errors
    /// The exit code to return.
    pub fn runbook(&self, name: &str) -> Result<(Catalog, usize), u8> {
        let cat = self.catalog();
        if let Some(i) = cat.runbooks.iter().position(|r| r.name == name) {
            return Ok((cat, i));
        }
        let own: Vec<_> = cat
            .diagnostics
            .iter()
            .filter(|d| {
                d.source.as_ref().is_some_and(|s| {
                    std::path::Path::new(&s.name)
                        .file_stem()
                        .is_some_and(|st| st == name)
                })
            })
            .collect();
        let mut err = std::io::stderr().lock();
        if own.is_empty() {
            let names: Vec<&str> = cat.runbooks.iter().map(|r| r.name.as_str()).collect();
            let hint = crate::runbook::compile::suggest(name, names.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            let _ = writeln!(
                err,
                "error: no runbook `{name}` in `{}`{hint}",
                self.dir.display()
            );
            if names.is_empty() {
                let _ = writeln!(
                    err,
                    "hint: point --runbooks (or $RUNBOOK_DIR) at a directory of runbooks"
                );
            }
        } else {
            for d in own {
                let _ = write!(err, "{}", d.render(self.color));
            }
            let _ = writeln!(
                err,
                "error: runbook `{name}` does not compile; see `runbook validate`"
            );
        }
        Err(exit::INVALID)
    }
}

/// Print a JSON document to stdout.
pub fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}

/// `$XDG_STATE_HOME/runbook/audit.db`, else `~/.local/state/runbook/audit.db`.
fn default_db() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("runbook").join("audit.db")
}

/// Asks `[y/N]` on the terminal, with the live status line (if any) out of the way.
pub struct TerminalApprover {
    live: Option<indicatif::ProgressBar>,
}

impl TerminalApprover {
    /// An approver; `live` is the status line to keep out of the prompt's way.
    #[must_use]
    pub fn new(live: Option<indicatif::ProgressBar>) -> Self {
        TerminalApprover { live }
    }
}

impl crate::exec::Approver for TerminalApprover {
    fn approve(&self, prompt: &str, timeout: Duration) -> bool {
        match &self.live {
            Some(bar) => bar.suspend(|| ask(prompt, timeout)),
            None => ask(prompt, timeout),
        }
    }
}

fn ask(prompt: &str, timeout: Duration) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "  ? {prompt} [y/N] ");
    let _ = err.flush();
    drop(err);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(line);
    });
    if let Ok(line) = rx.recv_timeout(timeout) {
        matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
    } else {
        eprintln!(
            "(no answer within {}: no)",
            crate::runbook::value::format_duration(timeout)
        );
        false
    }
}

/// A multi-thread tokio runtime for a verb, or the exit code (engine fault) after saying why.
///
/// # Errors
/// The exit code when the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            exit::FAULT
        })
}
