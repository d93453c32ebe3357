//! `journal`: count journal lines of a unit matching a pattern, like
//! `journalctl -u UNIT | grep -i PATTERN`. `error: unavailable` where there is no journal.
//!
//! Result: `count`, `last` (the last matching lines), `reason`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::value::{DurationParam, Tpl};

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
}

/// Result fields of the `journal` probe.
pub const FIELDS: &[&str] = &["count", "last", "reason"];
