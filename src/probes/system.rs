//! `system`: CPU, memory, swap, load and disk usage, like `free -h`, `df -h PATH`, `uptime`
//! and `iostat`.
//!
//! Result: `cpu_pct`, `mem_total_mb`, `mem_available_mb`, `mem_used_pct`, `swap_used_pct`,
//! `load1`, `load5`, `load15`, `disk_used_pct`, `disk_free_mb`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use sysinfo::System;

use crate::probes::{ProbeContext, ProbeOutcome};

/// Parameters of the `system` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemParams {
    /// A path whose filesystem's usage is reported (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Measure CPU usage (default true). Measuring takes two readings 200 ms apart; a check
    /// that reads only memory, swap, load or disk sets `cpu: false` and answers at once
    /// (`cpu_pct` is then null and `value` is `disk_used_pct`).
    #[serde(default)]
    pub cpu: Option<bool>,
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

/// Run the probe: two CPU readings `MINIMUM_CPU_UPDATE_INTERVAL` apart, memory, swap,
/// load, and `statvfs` of the filesystem holding `path`.
pub async fn probe(params: SystemParams, _cx: &ProbeContext<'_>) -> ProbeOutcome {
    let path = params.path.unwrap_or_else(|| "/".to_owned());
    let Ok(mut sys) = System::new() else {
        return ProbeOutcome::Error("unavailable: cannot read system statistics".into());
    };
    let cpu_pct = if params.cpu.unwrap_or(true) {
        sys.refresh_cpu_usage();
        tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
        sys.refresh_cpu_usage();
        Some(round2(f64::from(sys.global_cpu_usage())))
    } else {
        None
    };
    sys.refresh_memory();
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let total = sys.total_memory();
    let available = sys.available_memory();
    let mem_used_pct = if total == 0 {
        0.0
    } else {
        100.0 * (total.saturating_sub(available)) as f64 / total as f64
    };
    let swap_used_pct = if sys.total_swap() == 0 {
        0.0
    } else {
        100.0 * sys.used_swap() as f64 / sys.total_swap() as f64
    };
    let load = System::load_average().ok();
    let (disk_used_pct, disk_free_mb) = match disk_usage(&path) {
        Ok(d) => d,
        Err(e) => return ProbeOutcome::Error(format!("cannot stat filesystem of `{path}`: {e}")),
    };
    ProbeOutcome::observed([
        ("value", json!(cpu_pct.unwrap_or(round2(disk_used_pct)))),
        ("cpu_pct", json!(cpu_pct)),
        ("mem_total_mb", json!(round2(mb(total)))),
        ("mem_available_mb", json!(round2(mb(available)))),
        ("mem_used_pct", json!(round2(mem_used_pct))),
        ("swap_used_pct", json!(round2(swap_used_pct))),
        ("load1", json!(load.as_ref().map(|l| l.one))),
        ("load5", json!(load.as_ref().map(|l| l.five))),
        ("load15", json!(load.as_ref().map(|l| l.fifteen))),
        ("disk_used_pct", json!(round2(disk_used_pct))),
        ("disk_free_mb", json!(round2(disk_free_mb))),
    ])
}

/// Used percentage (like `df`: used / (used + available to users)) and free MB.
fn disk_usage(path: &str) -> Result<(f64, f64), nix::Error> {
    let st = nix::sys::statvfs::statvfs(path)?;
    let frag = st.fragment_size() as f64;
    let total = st.blocks() as f64 * frag;
    let free = st.blocks_free() as f64 * frag;
    let avail = st.blocks_available() as f64 * frag;
    let used = total - free;
    let pct = if used + avail > 0.0 {
        100.0 * used / (used + avail)
    } else {
        0.0
    };
    Ok((pct, avail / (1024.0 * 1024.0)))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
