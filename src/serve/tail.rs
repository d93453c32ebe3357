//! `runbook serve --follow GLOB`: the `jsonl --follow` machinery inside the server. A thread
//! follows the files (inotify, polling fallback, positions kept in the audit DB under the
//! reader `serve`, so a restart goes on where it stopped and a rotation while it was down is
//! read to its end) and adds each interval's counts to counters that `/metrics` exposes:
//! a Prometheus rule on `runbook_jsonl_malformed_total` or on a stalled
//! `runbook_jsonl_lines_total` is the seed's "dead / empty stream" alert.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::audit::AuditStore;
use crate::probes::jsonl::{self, Follow, Opts};

/// What the followed files held since the server started.
#[derive(Debug, Default)]
pub struct TailStats {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    lines: u64,
    malformed: u64,
    oversized: u64,
    invalid_utf8: u64,
    rotations: u64,
    reports: u64,
    positions: BTreeMap<String, u64>,
    error: Option<String>,
}

impl TailStats {
    fn add(&self, report: &Map<String, Value>) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let n = |k: &str| report.get(k).and_then(Value::as_u64).unwrap_or(0);
        c.lines += n("lines");
        c.malformed += n("malformed");
        c.oversized += n("oversized");
        c.invalid_utf8 += n("invalid_utf8");
        c.rotations += n("rotations");
        c.reports += 1;
        if let Some(Value::Object(p)) = report.get("file_positions") {
            for (file, pos) in p {
                c.positions.insert(file.clone(), pos.as_u64().unwrap_or(0));
            }
        }
    }

    fn failed(&self, e: String) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error = Some(e);
    }

    /// Prometheus text for `/metrics`.
    #[must_use]
    pub fn render(&self) -> String {
        let c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (name, help, v) in [
            (
                "lines",
                "Lines read from the followed JSON-lines files.",
                c.lines,
            ),
            (
                "malformed",
                "Lines that were not one JSON text.",
                c.malformed,
            ),
            ("oversized", "Lines over max_line_bytes.", c.oversized),
            ("invalid_utf8", "Lines with invalid UTF-8.", c.invalid_utf8),
            ("rotations", "Rotations of the followed files.", c.rotations),
        ] {
            let _ = writeln!(out, "# HELP runbook_jsonl_{name}_total {help}");
            let _ = writeln!(out, "# TYPE runbook_jsonl_{name}_total counter");
            let _ = writeln!(out, "runbook_jsonl_{name}_total {v}");
        }
        let _ = writeln!(
            out,
            "# HELP runbook_jsonl_file_position_bytes Read position in each followed file."
        );
        let _ = writeln!(out, "# TYPE runbook_jsonl_file_position_bytes gauge");
        for (file, pos) in &c.positions {
            let file = file.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "runbook_jsonl_file_position_bytes{{file=\"{file}\"}} {pos}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP runbook_jsonl_follow_up 1 while the follower runs, 0 after it failed."
        );
        let _ = writeln!(out, "# TYPE runbook_jsonl_follow_up gauge");
        let _ = writeln!(
            out,
            "runbook_jsonl_follow_up {}",
            u8::from(c.error.is_none())
        );
        out
    }
}

/// Follow `pattern` on a thread until `stop` is set; counts go to `stats`.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(
    pattern: String,
    db: PathBuf,
    interval: Duration,
    stats: Arc<TailStats>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("runbook-follow".into())
        .spawn(move || {
            let store = match AuditStore::open(&db) {
                Ok(s) => s,
                Err(e) => return stats.failed(e.to_string()),
            };
            let f = Follow {
                pattern,
                opts: Opts {
                    max_line_bytes: 1 << 20,
                    ..Opts::default()
                },
                interval,
                count: None,
                store: Some((&store, "serve")),
                poll: false,
                stop: Some(stop),
            };
            if let Err(e) = jsonl::follow(&f, |report| stats.add(&report)) {
                stats.failed(e);
            }
        })
}
