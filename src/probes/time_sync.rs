//! `time_sync`: is the clock synchronised, like `timedatectl status` / `chronyc tracking`
//! (asked in that order; `adjtimex` needs `unsafe`, which this crate forbids).
//! `error: unavailable` where neither can be read. `value` is `synced`.
//!
//! `timedatectl` and `chronyc` (defaults: those names) are the programs to run: paths to other
//! programs speaking their verbs (`timedatectl show -p NTPSynchronized --value`, `chronyc -n
//! tracking`): a container's replacement, the simulator's. Each is argv[0], never shell; an
//! empty value or one starting with `-` is refused. `timedatectl` is asked only where systemd
//! runs, unless another program than the plain `timedatectl` is named.
//!
//! Result: `synced`, `offset_ms`, `max_error_ms`, `source`.

use std::path::Path;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::host::{DEFAULT_OUTPUT_CAP, HostError, Intent, ProcSpec};
use crate::probes::systemd::Program;
use crate::probes::{ProbeContext, ProbeOutcome};

/// Parameters of the `time_sync` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSyncParams {
    /// The `timedatectl` program (default `timedatectl`): a name or a path.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timedatectl: Option<Program>,
    /// The `chronyc` program (default `chronyc`): a name or a path.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub chronyc: Option<Program>,
}

/// Result fields of the `time_sync` probe.
pub const FIELDS: &[&str] = &["synced", "offset_ms", "max_error_ms", "source"];

/// Run the probe: `timedatectl` where systemd runs (or when named), else `chronyc tracking`.
pub async fn probe(params: TimeSyncParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let (timedatectl, named) = Program::or_default(params.timedatectl.as_ref(), "timedatectl");
    let (chronyc, _) = Program::or_default(params.chronyc.as_ref(), "chronyc");
    let mut tried = Vec::new();
    if named || Path::new("/run/systemd/system").is_dir() {
        match run(
            cx,
            &[timedatectl, "show", "-p", "NTPSynchronized", "--value"],
        )
        .await
        {
            Ok(out) => match out.trim() {
                "yes" => return synced(true, None, None, "timedatectl"),
                "no" => return synced(false, None, None, "timedatectl"),
                other => tried.push(format!("`{timedatectl}` said `{other}`")),
            },
            Err(e) => tried.push(e),
        }
    } else {
        tried.push("no systemd for `timedatectl`".into());
    }
    match run(cx, &[chronyc, "-n", "tracking"]).await {
        Ok(out) => {
            if let Some(outcome) = parse_chrony(&out) {
                return outcome;
            }
            tried.push(format!("`{chronyc} tracking` printed nothing readable"));
        }
        Err(e) => tried.push(e),
    }
    ProbeOutcome::Error(format!("unavailable: {}", tried.join("; ")))
}

async fn run(cx: &ProbeContext<'_>, argv: &[&str]) -> Result<String, String> {
    let spec = ProcSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: IndexMap::new(),
        cwd: None,
        timeout: cx.timeout,
        output_cap: DEFAULT_OUTPUT_CAP,
    };
    match cx.host.spawn(&spec, Intent::Observe).await {
        Ok(out) if out.exit_code == Some(0) => Ok(out.stdout),
        Ok(out) if out.timed_out => Err(format!("`{}` timed out", argv[0])),
        Ok(out) => Err(format!("`{}` failed: {}", argv[0], out.stderr.trim())),
        Err(HostError::Spawn { source, .. }) => Err(format!("no `{}` ({source})", argv[0])),
        Err(e) => Err(format!("cannot run `{}`: {e}", argv[0])),
    }
}

/// Read `chronyc tracking`: `Leap status`, `System time` (offset), `Root dispersion`.
fn parse_chrony(text: &str) -> Option<ProbeOutcome> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let leap = field("Leap status")?;
    let first_number = |s: &str| s.split_whitespace().next()?.parse::<f64>().ok();
    // "0.000012 seconds fast of NTP time": the local clock is ahead, a positive offset.
    let offset_ms = field("System time").and_then(|s| {
        let secs = first_number(&s)?;
        Some(if s.contains("slow") { -secs } else { secs } * 1000.0)
    });
    let max_error_ms = field("Root dispersion")
        .and_then(|s| first_number(&s))
        .map(|s| s * 1000.0);
    Some(synced(
        leap != "Not synchronised",
        offset_ms,
        max_error_ms,
        "chronyc",
    ))
}

fn synced(
    ok: bool,
    offset_ms: Option<f64>,
    max_error_ms: Option<f64>,
    source: &str,
) -> ProbeOutcome {
    ProbeOutcome::observed([
        ("value", json!(ok)),
        ("synced", json!(ok)),
        ("offset_ms", json!(offset_ms)),
        ("max_error_ms", json!(max_error_ms)),
        ("source", json!(source)),
    ])
}
