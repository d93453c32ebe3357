//! `dns`: resolve a name, like `nslookup NAME`.
//!
//! Uses the system resolver (`/etc/hosts`, then DNS). A name that does not resolve is an
//! observation (`count: 0` with a `reason`); `value` is `count`. `server` (asking one DNS
//! server directly) is not implemented yet: the check is `error: unavailable`.
//!
//! Result: `addresses`, `count`, `reason`.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::format_duration;

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

/// Run the probe through the system resolver (`getaddrinfo`, as `ping NAME` would).
pub async fn probe(params: DnsParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    if let Some(server) = &params.server {
        return ProbeOutcome::Error(format!(
            "unavailable: asking a custom server (`{server}`) is not implemented; omit `server` to use the system resolver"
        ));
    }
    let name = params.name.trim_end_matches('.').to_owned();
    match tokio::time::timeout(cx.timeout, tokio::net::lookup_host((name.as_str(), 0))).await {
        Err(_) => ProbeOutcome::unreachable(format!(
            "no answer for `{name}` within {}",
            format_duration(cx.timeout)
        )),
        Ok(Err(e)) => ProbeOutcome::observed([
            ("value", json!(0)),
            ("count", json!(0)),
            ("addresses", json!([])),
            ("reason", json!(format!("`{name}` does not resolve: {e}"))),
        ]),
        Ok(Ok(addrs)) => {
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort_unstable();
            ips.dedup();
            let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
            ProbeOutcome::observed([
                ("value", json!(list.len())),
                ("count", json!(list.len())),
                ("addresses", json!(list)),
            ])
        }
    }
}
