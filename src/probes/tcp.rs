//! `tcp`: connect to a host and port, like `nc -z` or "is port 8001 reachable".
//!
//! Result: `open`, `connect_ms`, `reason`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::value::Tpl;

/// Parameters of the `tcp` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpParams {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: Tpl<u16>,
}

/// Result fields of the `tcp` probe.
pub const FIELDS: &[&str] = &["open", "connect_ms", "reason"];
