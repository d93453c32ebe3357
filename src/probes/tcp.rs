//! `tcp`: connect to a host and port, like `nc -z` or "is port 8001 reachable".
//!
//! A refused or silent port is an observation (`open: false` with a `reason`); `value` is
//! `open`.
//!
//! Result: `open`, `connect_ms`, `reason`.

use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::{Tpl, format_duration};

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

/// Run the probe: one connect, bounded by the step's timeout, then close.
pub async fn probe(params: TcpParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let port = match params.port {
        Tpl::Lit(p) => p,
        Tpl::Template(t) => return ProbeOutcome::Error(format!("`port` was not rendered: `{t}`")),
    };
    let host = params
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let started = Instant::now();
    let result = tokio::time::timeout(cx.timeout, TcpStream::connect((host.as_str(), port))).await;
    let ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let closed = |reason: String| {
        ProbeOutcome::observed([
            ("value", json!(false)),
            ("open", json!(false)),
            ("connect_ms", Value::Null),
            ("reason", json!(reason)),
        ])
    };
    match result {
        Ok(Ok(_stream)) => ProbeOutcome::observed([
            ("value", json!(true)),
            ("open", json!(true)),
            ("connect_ms", json!(ms)),
        ]),
        Ok(Err(e)) => closed(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => closed(format!(
            "no answer from {host}:{port} within {}",
            format_duration(cx.timeout)
        )),
    }
}
