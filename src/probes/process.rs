//! `process`: find processes by name or command line, like `pgrep -f PATTERN` with `top -p`.
//!
//! Result: `running`, `count`, `pids`, `cpu_pct`, `rss_mb`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use sysinfo::{Pid, Process, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use crate::probes::{ProbeContext, ProbeOutcome};

/// Parameters of the `process` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessParams {
    /// Exact process name.
    #[serde(default)]
    pub name: Option<String>,
    /// A substring of the full command line (`pgrep -f`).
    #[serde(default)]
    pub cmdline: Option<String>,
}

impl ProcessParams {
    /// Exactly one of `name` / `cmdline`.
    ///
    /// # Errors
    /// A message when neither or both are given.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.name, &self.cmdline) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err("give exactly one of `name` or `cmdline`".into()),
        }
    }
}

/// Result fields of the `process` probe.
pub const FIELDS: &[&str] = &["running", "count", "pids", "cpu_pct", "rss_mb"];

/// Run the probe: one process refresh, a CPU interval, a second refresh for usage.
pub async fn probe(params: ProcessParams, _cx: &ProbeContext<'_>) -> ProbeOutcome {
    if let Err(e) = params.validate() {
        return ProbeOutcome::Error(e);
    }
    let Ok(mut sys) = System::new() else {
        return ProbeOutcome::Error("unavailable: cannot read the process table".into());
    };
    let kind = ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .with_cmd(UpdateKind::OnlyIfNotSet);
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let me = std::process::id();
    let matching = |sys: &System| -> Vec<Pid> {
        let mut pids: Vec<Pid> = sys
            .processes()
            .iter()
            .filter(|(pid, p)| {
                pid.as_u32() != me && p.thread_kind().is_none() && matches(&params, p)
            })
            .map(|(pid, _)| *pid)
            .collect();
        pids.sort_unstable();
        pids
    };
    let pids = matching(&sys);
    if !pids.is_empty() {
        // CPU usage is a difference between two readings.
        tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, kind);
    }
    let procs: Vec<&Process> = pids.iter().filter_map(|p| sys.process(*p)).collect();
    let cpu: f64 = procs.iter().map(|p| f64::from(p.cpu_usage())).sum();
    let rss: u64 = procs.iter().map(|p| p.memory()).sum();
    let count = procs.len();
    ProbeOutcome::observed([
        ("value", json!(count)),
        ("running", json!(count > 0)),
        ("count", json!(count)),
        (
            "pids",
            json!(procs.iter().map(|p| p.pid().as_u32()).collect::<Vec<_>>()),
        ),
        ("cpu_pct", json!((cpu * 100.0).round() / 100.0)),
        ("rss_mb", json!((rss as f64 / 10485.76).round() / 100.0)),
    ])
}

fn matches(params: &ProcessParams, p: &Process) -> bool {
    if let Some(name) = &params.name {
        return p.name() == name.as_str();
    }
    if let Some(pattern) = &params.cmdline {
        let cmd: Vec<_> = p.cmd().iter().map(|a| a.to_string_lossy()).collect();
        return cmd.join(" ").contains(pattern.as_str());
    }
    false
}
