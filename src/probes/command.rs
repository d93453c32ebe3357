//! `command`: run a read-only command (argv, no shell) with a timeout in its own process
//! group, output capped. Only for what no native probe covers (`nginx -t`, `ufw status`,
//! `chronyc tracking`).
//!
//! `parse: json` parses stdout into `json`; `parse: lines` splits it into `lines`;
//! `value` is the parsed output (or trimmed stdout).
//!
//! Result: `exit_code`, `stdout`, `stderr`, `json`, `lines`, `value`, `truncated`, `reason`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

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
