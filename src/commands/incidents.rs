//! `runbook incidents`: open and acknowledged incidents with their level, next level,
//! deadlines and due recheck (`after_action_unresolved`). Also the lines `run` and `tick`
//! print about incidents and fired levels.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::audit::open_existing;
use crate::commands::common::print_json;
use crate::escalation::{self, Change, Fired, Incident};
use crate::exit;

/// Run the verb.
pub fn run(ctx: &Ctx, now: Option<&str>) -> u8 {
    let format = match ctx.format_in("incidents", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let now = match now_arg(now) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let incidents = match open_existing(ctx) {
        Ok(Some(store)) => match escalation::list(&store) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAULT;
            }
        },
        Ok(None) => Vec::new(),
        Err(code) => return code,
    };
    if format == Format::Json {
        print_json(&json!({
            "now": fmt(now),
            "incidents": incidents.iter().map(|i| i.to_json(now)).collect::<Vec<_>>(),
        }));
        return exit::OK;
    }
    let mut out = std::io::stdout().lock();
    if incidents.is_empty() {
        let _ = writeln!(out, "no open incidents");
    }
    for i in &incidents {
        let _ = writeln!(out, "{}", incident_line(i, now));
    }
    exit::OK
}

/// `--now RFC3339` (hidden, for tests and replays), else the wall clock.
///
/// # Errors
/// The exit code to return (the message is printed).
pub fn now_arg(now: Option<&str>) -> Result<DateTime<Utc>, u8> {
    match now.map(DateTime::parse_from_rfc3339).transpose() {
        Ok(t) => Ok(t.map_or_else(Utc::now, |t| t.with_timezone(&Utc))),
        Err(e) => {
            eprintln!("error: --now: {e} (write RFC 3339, e.g. 2025-01-01T12:00:00Z)");
            Err(exit::INVALID)
        }
    }
}

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One line for people.
#[must_use]
pub fn incident_line(i: &Incident, now: DateTime<Utc>) -> String {
    let level = i.current_level().map_or_else(
        || "no level yet".to_owned(),
        |l| format!("{} {}", l.id, l.name),
    );
    let next = match (i.next_level(), &i.next_due_at) {
        (Some(l), Some(at)) => format!("next {} at {at}", l.id),
        _ if i.acked_by.is_some() => format!(
            "acked by {} at {}",
            i.acked_by.as_deref().unwrap_or_default(),
            i.acked_at.as_deref().unwrap_or_default()
        ),
        _ => "top of the ladder".to_owned(),
    };
    let breached = |b: bool| if b { " BREACHED" } else { "" };
    let recheck = i
        .recheck_due_at
        .as_deref()
        .map(|at| format!("; recheck due {at}"))
        .unwrap_or_default();
    format!(
        "#{} {} [{}] {}: {level}; {next}; opened {}; response due {}{}; resolution due {}{}{recheck}",
        i.id,
        i.runbook,
        i.severity,
        i.status.name(),
        i.opened_at,
        i.response_due_at,
        breached(i.response_breached(now)),
        i.resolution_due_at,
        breached(i.resolution_breached(now)),
    )
}

/// Lines about what a run's end did to its incident.
#[must_use]
pub fn change_lines(change: &Change) -> Vec<String> {
    match change {
        Change::Opened(i) => vec![format!(
            "incident #{} opened ({}, ladder {}): response due {}, resolution due {}",
            i.id,
            i.severity,
            i.ladder.as_deref().unwrap_or("none"),
            i.response_due_at,
            i.resolution_due_at
        )],
        Change::Updated(i) => vec![format!(
            "incident #{} still {} ({})",
            i.id,
            i.status.name(),
            i.current_level().map_or_else(
                || "no level yet".to_owned(),
                |l| format!("{} {}", l.id, l.name)
            )
        )],
        Change::Resolved(i) => vec![format!("incident #{} resolved", i.id)],
        Change::Unchanged => Vec::new(),
    }
}

/// Lines about one fired level: the level, each channel, and the message when it went to stdout.
#[must_use]
pub fn fired_lines(f: &Fired) -> Vec<String> {
    let channels: Vec<String> = f
        .sent
        .iter()
        .map(|s| {
            if s.ok {
                format!("{} ok", s.channel)
            } else {
                format!("{} FAILED ({})", s.channel, s.detail)
            }
        })
        .collect();
    let skipped = if f.skipped.is_empty() {
        String::new()
    } else {
        format!(" (passed over: {})", f.skipped.join(", "))
    };
    let next = f.next_due_at.as_deref().map_or_else(
        || "; top of the ladder".to_owned(),
        |n| format!("; next due {n}"),
    );
    let why = f.recheck_run_id.as_deref().map_or_else(String::new, |run| {
        format!(" (the symptom persists after the remediation: recheck run {run})")
    });
    let mut lines = vec![format!(
        "incident #{} `{}` [{}] escalated to {} ({}){skipped}{why}: {}{next}",
        f.incident_id,
        f.runbook,
        f.severity,
        f.level_id,
        f.level_name,
        if channels.is_empty() {
            "no channel".to_owned()
        } else {
            channels.join(", ")
        },
    )];
    if f.sent.iter().any(|s| s.target == "stdout") {
        lines.push(format!("  ✉ {}", f.message));
    }
    lines
}
