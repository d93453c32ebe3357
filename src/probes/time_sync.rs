//! `time_sync`: is the clock synchronised, like `timedatectl status` / `chronyc tracking`
//! (via adjtimex). `error: unavailable` where it cannot be read.
//!
//! Result: `synced`, `offset_ms`, `max_error_ms`, `source`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `time_sync` probe (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSyncParams {}

/// Result fields of the `time_sync` probe.
pub const FIELDS: &[&str] = &["synced", "offset_ms", "max_error_ms", "source"];
