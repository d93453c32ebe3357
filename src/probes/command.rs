//! `command`: run a read-only command (argv, no shell) with a timeout in its own process
//! group, output capped. Only for what no native probe covers (`nginx -t`, `ufw status`,
//! `chronyc tracking`).
//!
//! `parse: json` parses stdout into `json`; `parse: lines` splits it into `lines`;
//! `value` is the parsed output (or trimmed stdout). A non-zero exit is an observation
//! (`exit_code`); a timeout is an observation with a `reason`; a program that cannot be
//! started is an error.
//!
//! Result: `exit_code`, `stdout`, `stderr`, `json`, `lines`, `value`, `truncated`, `reason`.

use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::host::{DEFAULT_OUTPUT_CAP, HostError, Intent, ProcSpec};
use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::format_duration;

/// Parameters of the `command` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// Argv; each element may be a template; never a shell.
    pub run: Vec<String>,
    /// Working directory (default `/`).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// How to read stdout.
    #[serde(default)]
    pub parse: Option<Parse>,
}

/// How the `command` probe reads stdout.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Parse {
    /// Parse stdout as JSON.
    Json,
    /// Split stdout into lines.
    Lines,
}

impl CommandParams {
    /// The argv is not empty.
    ///
    /// # Errors
    /// A message when `run` is empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.run.is_empty() {
            Err("`run` needs at least the program".into())
        } else {
            Ok(())
        }
    }
}

/// Result fields of the `command` probe.
pub const FIELDS: &[&str] = &[
    "exit_code",
    "stdout",
    "stderr",
    "json",
    "lines",
    "value",
    "truncated",
    "reason",
];

/// Run the probe through [`crate::host::Host::spawn`] with [`Intent::Observe`].
pub async fn probe(params: CommandParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    if let Err(e) = params.validate() {
        return ProbeOutcome::Error(e);
    }
    let spec = ProcSpec {
        argv: params.run.clone(),
        env: params.env.clone(),
        cwd: params.cwd.as_ref().map(PathBuf::from),
        timeout: cx.timeout,
        output_cap: DEFAULT_OUTPUT_CAP,
    };
    let out = match cx.host.spawn(&spec, Intent::Observe).await {
        Ok(out) => out,
        Err(e @ HostError::Spawn { .. }) => return ProbeOutcome::Error(e.to_string()),
        Err(e) => return ProbeOutcome::Error(format!("cannot run `{}`: {e}", params.run[0])),
    };
    let mut m = Map::new();
    m.insert("exit_code".into(), json!(out.exit_code));
    m.insert("stdout".into(), json!(out.stdout));
    m.insert("stderr".into(), json!(out.stderr));
    m.insert("truncated".into(), json!(out.truncated));
    if out.timed_out {
        // The command did not answer in time: an observation, the check fails.
        m.insert("unreachable".into(), Value::Bool(true));
        m.insert(
            "reason".into(),
            json!(format!("timed out after {}", format_duration(cx.timeout))),
        );
    } else if let Some(sig) = out.signal.filter(|_| out.exit_code.is_none()) {
        m.insert("reason".into(), json!(format!("killed by signal {sig}")));
    }
    let value = match params.parse {
        Some(Parse::Json) => match serde_json::from_str::<Value>(&out.stdout) {
            Ok(v) => {
                m.insert("json".into(), v.clone());
                v
            }
            Err(e) => {
                m.insert("json".into(), Value::Null);
                m.entry("reason")
                    .or_insert_with(|| json!(format!("stdout is not JSON: {e}")));
                Value::Null
            }
        },
        Some(Parse::Lines) => {
            let lines: Vec<Value> = out.stdout.lines().map(|l| json!(l)).collect();
            m.insert("lines".into(), Value::Array(lines.clone()));
            Value::Array(lines)
        }
        None => json!(out.stdout.trim()),
    };
    m.insert("value".into(), value);
    ProbeOutcome::Observed(m)
}
