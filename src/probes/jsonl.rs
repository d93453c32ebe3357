//! `jsonl`: scan JSON-lines files like the seed's Python loop and `awk 'length > 1048576'`:
//! counts lines, malformed JSON, oversized lines (streamed, never buffered whole) and invalid
//! UTF-8; rotation-aware from saved positions when `incremental`.
//!
//! `top` (a jq path) counts the most frequent values (e.g. `.reason` of denied orders);
//! `percentiles` (a jq path) computes p50/p90/p95/p99 of a numeric field (e.g. `.decision_ms`);
//! `last` keeps the last N lines.
//!
//! Result: `lines`, `malformed`, `oversized`, `invalid_utf8`, `rotations`, `file_positions`,
//! `files`, `top`, `percentiles`, `last`, `first_malformed`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::value::{DurationParam, Tpl};

/// Parameters of the `jsonl` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlParams {
    /// A file path or glob (`/opt/aurora/logs/*.jsonl`).
    pub path: String,
    /// A line longer than this is oversized (default 1048576, the seed's threshold).
    #[serde(default)]
    pub max_line_bytes: Option<Tpl<u64>>,
    /// Keep the last N lines (like `tail -N`).
    #[serde(default)]
    pub last: Option<Tpl<u32>>,
    /// jq path whose values are counted (top 10).
    #[serde(default)]
    pub top: Option<String>,
    /// jq path of a number whose percentiles are computed.
    #[serde(default)]
    pub percentiles: Option<String>,
    /// Only lines whose timestamp is within this long.
    #[serde(default)]
    pub since: Option<DurationParam>,
    /// Continue from the positions saved by the previous run (rotation-aware).
    #[serde(default)]
    pub incremental: Option<bool>,
}

/// Result fields of the `jsonl` probe.
pub const FIELDS: &[&str] = &[
    "lines",
    "malformed",
    "oversized",
    "invalid_utf8",
    "rotations",
    "file_positions",
    "files",
    "top",
    "percentiles",
    "last",
    "first_malformed",
];
