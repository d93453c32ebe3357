//! `system`: CPU, memory, swap, load and disk usage, like `free -h`, `df -h PATH`, `uptime`
//! and `iostat`.
//!
//! Result: `cpu_pct`, `mem_total_mb`, `mem_available_mb`, `mem_used_pct`, `swap_used_pct`,
//! `load1`, `load5`, `load15`, `disk_used_pct`, `disk_free_mb`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `system` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemParams {
    /// A path whose filesystem's usage is reported (default `/`).
    #[serde(default)]
    pub path: Option<String>,
}

/// Result fields of the `system` probe.
pub const FIELDS: &[&str] = &[
    "cpu_pct",
    "mem_total_mb",
    "mem_available_mb",
    "mem_used_pct",
    "swap_used_pct",
    "load1",
    "load5",
    "load15",
    "disk_used_pct",
    "disk_free_mb",
];
