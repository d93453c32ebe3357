//! The console reporter: one line per step with its status, duration and the value that
//! decided it; guidance under failing steps; colour only on a terminal without `NO_COLOR`.

use std::fmt::Write as _;
use std::io::Write;

use crate::exec::{Outcome, Reporter, RunEvent, StepKind, StepStatus, status_name};

/// Writes human lines to a writer (stdout).
pub struct ConsoleReporter<W: Write + Send> {
    out: W,
    color: bool,
}

impl<W: Write + Send> ConsoleReporter<W> {
    /// A reporter writing to `out`.
    pub fn new(out: W, color: bool) -> Self {
        ConsoleReporter { out, color }
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
            RunEvent::StepStarted { .. } => return,
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
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }
}
