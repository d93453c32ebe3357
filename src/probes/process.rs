//! `process`: find processes by name or command line, like `pgrep -f PATTERN` with `top -p`.
//!
//! Result: `running`, `count`, `pids`, `cpu_pct`, `rss_mb`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `process` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessParams {
    /// Exact process name.
    #[serde(default)]
    pub name: Option<String>,
    /// A substring of the full command line (`pgrep -f`).
    #[serde(default)]
    pub cmdline: Option<String>,
}

impl ProcessParams {
    /// Exactly one of `name` / `cmdline`.
    ///
    /// # Errors
    /// A message when neither or both are given.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.name, &self.cmdline) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err("give exactly one of `name` or `cmdline`".into()),
        }
    }
}

/// Result fields of the `process` probe.
pub const FIELDS: &[&str] = &["running", "count", "pids", "cpu_pct", "rss_mb"];
