//! `journal`: count journal lines of a unit matching a pattern, like
//! `journalctl -u UNIT | grep -i PATTERN`. `error: unavailable` where there is no journal.
//!
//! Without `pattern` every line counts; `value` is `count`.
//!
//! `journalctl` (default `journalctl`) is the program to run: a path to another program
//! speaking journalctl's options (`-u`, `--since`, `-o cat`): a container's replacement, the
//! simulator's. It is argv[0], never shell; an empty value or one starting with `-` is refused.
//! Another program than the plain `journalctl` skips the `/run/systemd/system` test.
//!
//! Result: `count`, `last` (the last matching lines), `reason`.

use std::collections::VecDeque;
use std::time::Duration;

use indexmap::IndexMap;
use regex::RegexBuilder;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::host::{HostError, Intent, ProcSpec};
use crate::probes::systemd::Program;
use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::{DurationParam, Tpl, format_duration};

/// Parameters of the `journal` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalParams {
    /// The unit.
    pub unit: String,
    /// A regular expression (case-insensitive).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Only entries newer than this (default 1h).
    #[serde(default)]
    pub since: Option<DurationParam>,
    /// How many matching lines to keep in `last` (default 10).
    #[serde(default)]
    pub last: Option<Tpl<u32>>,
    /// The program to run (default `journalctl`): a name or a path.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub journalctl: Option<Program>,
}

/// Result fields of the `journal` probe.
pub const FIELDS: &[&str] = &["count", "last", "reason"];

/// Run the probe: `journalctl -u UNIT --since=-Ns -o cat --no-pager`, then match each line.
pub async fn probe(params: JournalParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let (journalctl, named) = Program::or_default(params.journalctl.as_ref(), "journalctl");
    if !named && let Some(why) = super::systemd::unavailable() {
        return ProbeOutcome::Error(why.replace("no systemd", "no systemd journal"));
    }
    let since = match &params.since {
        None => Duration::from_secs(3600),
        Some(DurationParam::Fixed(d)) => *d,
        Some(DurationParam::Template(t)) => {
            return ProbeOutcome::Error(format!("`since` was not rendered: `{t}`"));
        }
    };
    let keep = match &params.last {
        None => 10,
        Some(Tpl::Lit(n)) => *n as usize,
        Some(Tpl::Template(t)) => {
            return ProbeOutcome::Error(format!("`last` was not rendered: `{t}`"));
        }
    };
    let pattern = match params
        .pattern
        .as_deref()
        .map(|p| RegexBuilder::new(p).case_insensitive(true).build())
        .transpose()
    {
        Ok(p) => p,
        Err(e) => return ProbeOutcome::Error(format!("bad `pattern`: {e}")),
    };
    let spec = ProcSpec {
        argv: vec![
            journalctl.to_owned(),
            "-u".into(),
            params.unit.clone(),
            format!("--since=-{}s", since.as_secs().max(1)),
            "-o".into(),
            "cat".into(),
            "--no-pager".into(),
        ],
        env: IndexMap::new(),
        cwd: None,
        timeout: cx.timeout,
        output_cap: JOURNAL_CAP,
    };
    let out = match cx.host.spawn(&spec, Intent::Observe).await {
        Ok(out) => out,
        Err(HostError::Spawn { source, .. }) => {
            return ProbeOutcome::Error(format!(
                "unavailable: no systemd journal (`{journalctl}`: {source})"
            ));
        }
        Err(e) => return ProbeOutcome::Error(format!("cannot run `{journalctl}`: {e}")),
    };
    if out.timed_out {
        return ProbeOutcome::unreachable(format!(
            "`{journalctl}` timed out after {}",
            format_duration(cx.timeout)
        ));
    }
    if out.exit_code != Some(0) {
        return ProbeOutcome::Error(format!("`{journalctl}` failed: {}", out.stderr.trim()));
    }
    let mut count = 0u64;
    let mut last: VecDeque<&str> = VecDeque::with_capacity(keep.min(1000));
    for line in out.stdout.lines() {
        if pattern.as_ref().is_none_or(|re| re.is_match(line)) {
            count += 1;
            if keep > 0 {
                if last.len() == keep {
                    last.pop_front();
                }
                last.push_back(line);
            }
        }
    }
    let mut m = Map::new();
    m.insert("value".into(), json!(count));
    m.insert("count".into(), json!(count));
    m.insert("last".into(), json!(last));
    if out.truncated {
        m.insert(
            "reason".into(),
            json!(format!(
                "journal output over {JOURNAL_CAP} bytes; counted the first part"
            )),
        );
    }
    ProbeOutcome::Observed(m)
}

/// Journal output kept for matching (bigger than a command's: a busy unit logs a lot).
const JOURNAL_CAP: usize = 64 * 1024 * 1024;
