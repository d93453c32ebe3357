//! The console reporter: one line per step with its status, duration and the value that
//! decided it; guidance under failing steps; colour only on a terminal without `NO_COLOR`.
//!
//! On a terminal ([`ConsoleReporter::live`]) a status line under the finished steps shows
//! what is running now and for how long (`⠙ 2 running: healthz 0.8s, sse_auth 0.8s`),
//! redrawn ten times a second and cleared at the end; the finished lines are the same as
//! in plain mode, so a log of a terminal session reads like a log of a pipe.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::{Outcome, Reporter, RunEvent, StepKind, StepStatus, status_name};

/// Writes human lines to a writer (stdout).
pub struct ConsoleReporter<W: Write + Send> {
    out: W,
    color: bool,
    live: Option<Live>,
}

/// The status line of a terminal and the steps it shows.
struct Live {
    bar: ProgressBar,
    running: Running,
}

/// The steps running now and when each started; read by the status line at every redraw.
type Running = Arc<Mutex<IndexMap<(&'static str, String), Instant>>>;

impl<W: Write + Send> ConsoleReporter<W> {
    /// A reporter writing plain lines to `out`.
    pub fn new(out: W, color: bool) -> Self {
        ConsoleReporter {
            out,
            color,
            live: None,
        }
    }

    /// A reporter for a terminal on stdout: plain lines to `out` plus a live status line
    /// drawn on stdout. The returned bar is for whoever else writes to the terminal while
    /// the run goes on (an approval prompt): wrap the writing in [`ProgressBar::suspend`].
    pub fn live(out: W, color: bool) -> (Self, ProgressBar) {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        let running = Running::default();
        let template = if color {
            "{spinner:.cyan} {running:.dim}"
        } else {
            "{spinner} {running}"
        };
        let shown = Arc::clone(&running);
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
                .with_key(
                    "running",
                    move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&status_line(&shown));
                    },
                ),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        let live = Live {
            bar: bar.clone(),
            running,
        };
        (
            ConsoleReporter {
                out,
                color,
                live: Some(live),
            },
            bar,
        )
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn mark(kind: StepKind, status: StepStatus) -> (&'static str, &'static str) {
    match (kind, status) {
        (StepKind::Escalation, _) => ("^", "35"),
        (_, StepStatus::Ok) => ("✓", "32"),
        (_, StepStatus::Failed | StepStatus::Error) => ("✗", "31"),
        (_, StepStatus::Matched) => ("●", "33"),
        (_, StepStatus::RuledOut | StepStatus::Absent | StepStatus::Skipped) => ("·", "2"),
        (
            _,
            StepStatus::NeedsApproval
            | StepStatus::RateLimited
            | StepStatus::DryRun
            | StepStatus::Unknown,
        ) => ("?", "33"),
    }
}

fn kind_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Check => "check",
        StepKind::Symptom => "symptom",
        StepKind::Cause => "cause",
        StepKind::Action => "action",
        StepKind::Verify => "verify",
        StepKind::Rollback => "rollback",
        StepKind::Escalation => "escalate",
    }
}

impl<W: Write + Send> Reporter for ConsoleReporter<W> {
    fn event(&mut self, event: &RunEvent) {
        let line = match event {
            RunEvent::RunStarted { run_id, info } => {
                format!(
                    "run {} — {} ({}, {}, run {run_id})",
                    info.runbook, info.trigger, info.mode, info.host
                )
            }
            RunEvent::StepStarted { kind, id } => {
                if let Some(live) = &mut self.live {
                    live.lock()
                        .insert((kind_name(*kind), id.clone()), Instant::now());
                    live.bar.tick();
                }
                return;
            }
            RunEvent::Message { text } => format!("  ✉ {text}"),
            RunEvent::StepFinished(s) => {
                let (m, code) = mark(s.kind, s.status);
                let status = status_name(s.status).replace('_', " ");
                let decided = s.decided_by.as_deref().unwrap_or("");
                let mut line = format!(
                    "  {} {:<8} {:<24} {:<14} {:>6} ms  {}",
                    self.paint(code, m),
                    kind_name(s.kind),
                    s.id,
                    status,
                    s.duration_ms,
                    decided
                );
                if let Some(g) = &s.guidance {
                    let _ = write!(line, "\n      guidance: {g}");
                }
                line
            }
            RunEvent::RunFinished {
                outcome,
                exit_code,
                duration_ms,
                ..
            } => {
                let (text, code) = match outcome {
                    Outcome::Healthy => ("healthy", "32"),
                    Outcome::Remediated => ("remediated and verified", "32"),
                    Outcome::ProblemRemains => ("problem remains", "31"),
                    Outcome::Fault => ("engine fault", "31"),
                };
                format!(
                    "outcome: {} (exit {exit_code}) in {duration_ms} ms",
                    self.paint(code, text)
                )
            }
        };
        match (&mut self.live, event) {
            (Some(status), RunEvent::StepFinished(s)) => {
                status
                    .lock()
                    .shift_remove(&(kind_name(s.kind), s.id.clone()));
                status.bar.suspend(|| {
                    let _ = writeln!(self.out, "{line}");
                    let _ = self.out.flush();
                });
            }
            (Some(status), RunEvent::RunFinished { .. }) => {
                status.bar.finish_and_clear();
                let _ = writeln!(self.out, "{line}");
                let _ = self.out.flush();
            }
            (Some(status), _) => status.bar.suspend(|| {
                let _ = writeln!(self.out, "{line}");
                let _ = self.out.flush();
            }),
            (None, _) => {
                let _ = writeln!(self.out, "{line}");
                let _ = self.out.flush();
            }
        }
    }
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, IndexMap<(&'static str, String), Instant>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `3 running: check healthz 0.8s, check sse_auth 0.8s +1 more`: at most three named, and
/// never wider than an 80-column terminal (a wrapped status line would not be erased).
fn status_line(running: &Running) -> String {
    let running = running.lock().unwrap_or_else(PoisonError::into_inner);
    if running.is_empty() {
        return String::new();
    }
    let mut msg = format!("{} running:", running.len());
    for (i, ((kind, id), since)) in running.iter().enumerate() {
        if i == 3 {
            let _ = write!(msg, " +{} more", running.len() - 3);
            break;
        }
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(
            msg,
            "{sep}{kind} {id} {:.1}s",
            since.elapsed().as_secs_f64()
        );
    }
    if msg.chars().count() > STATUS_WIDTH {
        msg = msg.chars().take(STATUS_WIDTH - 1).collect();
        msg.push('…');
    }
    msg
}

/// The widest status line, spinner excluded.
const STATUS_WIDTH: usize = 76;

impl<W: Write + Send> Drop for ConsoleReporter<W> {
    fn drop(&mut self) {
        // A run that ends by an error leaves no spinner behind.
        if let Some(live) = &self.live {
            live.bar.finish_and_clear();
        }
    }
}
