//! `run`: execute a program with an argv list, never through a shell. Each element may be a
//! template; a rendered value becomes exactly one argv element, byte for byte. Values with
//! NUL or newline are refused. Mutating.
//!
//! ```yaml
//! - id: restart_service
//!   run: ["systemctl", "restart", "{{ params.unit }}"]
//!   limit: { max: 3, per: 1h }
//! ```

use std::path::PathBuf;

use serde_json::{Map, json};

use crate::actions::{ActionContext, ActionOutcome};
use crate::host::{DEFAULT_OUTPUT_CAP, HostError, Intent, ProcOutput, ProcSpec};

/// Run the action.
pub async fn execute(
    argv: &[String],
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let label = format!("`{}`", argv.first().map_or("", String::as_str));
    let result = cx
        .host
        .spawn(&proc_spec(argv.to_vec(), cx), Intent::Mutate)
        .await;
    process_outcome(&label, result)
}

/// The process an action starts: its argv with the action's env, cwd and timeout.
pub(crate) fn proc_spec(argv: Vec<String>, cx: &ActionContext<'_>) -> ProcSpec {
    ProcSpec {
        argv,
        env: cx.env.clone(),
        cwd: cx.cwd.map(PathBuf::from),
        timeout: cx.timeout,
        output_cap: DEFAULT_OUTPUT_CAP,
    }
}

/// How a process-running action ended (`run`, `shell`, `systemd`): ok on exit 0 in time.
pub(crate) fn process_outcome(label: &str, result: Result<ProcOutput, HostError>) -> ActionOutcome {
    let out = match result {
        Ok(out) => out,
        Err(e) => return host_refusal(label, &e),
    };
    let ms = out.duration.as_millis();
    let ok = out.exit_code == Some(0) && !out.timed_out;
    let summary = if out.timed_out {
        let how = out
            .signal
            .map_or_else(String::new, |s| format!(", ended by {}", signal_name(s)));
        format!("{label} timed out after {ms} ms{how}")
    } else if let Some(code) = out.exit_code {
        let tail = if ok {
            String::new()
        } else {
            last_line(&out.stderr)
                .or_else(|| last_line(&out.stdout))
                .map_or_else(String::new, |l| format!(": {l}"))
        };
        format!("{label} exited {code} in {ms} ms{tail}")
    } else if let Some(sig) = out.signal {
        format!("{label} was killed by {}", signal_name(sig))
    } else {
        format!("{label} ended without an exit status")
    };
    let mut detail = Map::new();
    detail.insert("exit_code".into(), json!(out.exit_code));
    detail.insert("signal".into(), json!(out.signal));
    detail.insert("timed_out".into(), json!(out.timed_out));
    detail.insert("duration_ms".into(), json!(ms));
    detail.insert("stdout".into(), json!(out.stdout));
    detail.insert("stderr".into(), json!(out.stderr));
    detail.insert("truncated".into(), json!(out.truncated));
    ActionOutcome {
        ok,
        summary,
        detail,
    }
}

/// A refusal at the host's door (dry run, bad value) or a failure to start.
pub(crate) fn host_refusal(label: &str, e: &HostError) -> ActionOutcome {
    let mut outcome = ActionOutcome::failed(format!("{label}: {e}"));
    if matches!(e, HostError::DryRun(_)) {
        outcome.detail.insert("dry_run".into(), json!(true));
    }
    outcome
}

fn last_line(s: &str) -> Option<String> {
    let line = s.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    // One line for people: long tails are in `detail`.
    Some(line.chars().take(200).collect())
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}
