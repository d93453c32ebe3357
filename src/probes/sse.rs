//! `sse`: open a Server-Sent Events stream (with a bearer token from a file) and wait for events.
//!
//! Reports whether the stream connected, how long the first event took, and how many events
//! arrived within `window`. A 401 is an observation (`status == 401`), not an error.
//!
//! Result: `status`, `connected`, `first_event_ms`, `events`, `reason`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::value::DurationParam;

/// Parameters of the `sse` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseParams {
    /// The stream URL.
    pub url: String,
    /// File holding a bearer token (secret).
    #[serde(default)]
    pub token_file: Option<String>,
    /// The first event must arrive within this long (default 5s).
    #[serde(default)]
    pub first_event_within: Option<DurationParam>,
    /// Count events for this long after connecting (default: until the first event).
    #[serde(default)]
    pub window: Option<DurationParam>,
    /// Skip TLS verification (`curl -k`).
    #[serde(default)]
    pub insecure: Option<bool>,
}

/// Result fields of the `sse` probe.
pub const FIELDS: &[&str] = &["status", "connected", "first_event_ms", "events", "reason"];
