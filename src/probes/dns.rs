//! `dns`: resolve a name, like `nslookup NAME`.
//!
//! Result: `addresses`, `count`, `reason`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `dns` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsParams {
    /// The name to resolve.
    pub name: String,
    /// A DNS server to ask instead of the system resolver (`ip[:port]`).
    #[serde(default)]
    pub server: Option<String>,
}

/// Result fields of the `dns` probe.
pub const FIELDS: &[&str] = &["addresses", "count", "reason"];
