//! Follow mode: watch JSON-lines files as they grow, like `tail -F`, and report each
//! interval's counts (`runbook probe jsonl --follow`, and `serve`).
//!
//! File events come from inotify through the `notify` crate (a polling watcher where inotify
//! is unavailable, e.g. out of watches); a burst of events is drained and read once. An event
//! queue overflow (notify's `Rescan` flag) or a watcher error only means "look at everything":
//! every read is a rescan of the glob from the saved positions anyway, and each interval ends
//! with one, so a lost event delays a line by at most one interval and loses nothing. Between
//! events the thread sleeps in `recv_timeout`: idle CPU is nil.
//!
//! Positions live in memory (starting at each file's current end, like `tail -F`) unless a
//! store is given (`incremental`), then they start from and are saved to it at each report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use serde_json::{Map, Value, json};

use super::scan::{Opts, Tally};
use super::{expand, tail};
use crate::probes::{PositionStore, TailPosition};

/// How to follow.
pub struct Follow<'a> {
    /// The path or glob.
    pub pattern: String,
    /// What to count.
    pub opts: Opts,
    /// How often to report.
    pub interval: Duration,
    /// Stop after this many reports (`None`: until the process is stopped).
    pub count: Option<u64>,
    /// Saved positions (`incremental`), and who reads.
    pub store: Option<(&'a dyn PositionStore, &'a str)>,
    /// Poll instead of inotify (network filesystems deliver no inotify events for writes
    /// made on another machine).
    pub poll: bool,
    /// Set to stop following (checked at least once per interval).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The directory to watch: the pattern's longest leading part without glob characters.
fn watch_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::new();
    for part in Path::new(pattern)
        .parent()
        .into_iter()
        .flat_map(Path::components)
    {
        let s = part.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[']) {
            break;
        }
        dir.push(part);
    }
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// Follow until `count` reports were made; `report` gets each interval's fields.
///
/// # Errors
/// A bad glob, a file that cannot be read, a position store that fails.
pub fn follow(f: &Follow<'_>, mut report: impl FnMut(Map<String, Value>)) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let dir = watch_dir(&f.pattern);
    let recursive = if f.pattern[dir.as_os_str().len()..].contains('/') {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    // Kept alive for the whole follow; dropping it stops the events.
    let native = if f.poll {
        Err(notify::Error::generic("polling asked for"))
    } else {
        watcher(tx.clone(), &dir, recursive)
    };
    let (_watcher, backend): (Box<dyn Watcher>, &str) = match native {
        Ok(w) => (w, "inotify"),
        Err(e) => {
            let mut w = notify::PollWatcher::new(
                tx,
                notify::Config::default().with_poll_interval(Duration::from_millis(500)),
            )
            .map_err(|e2| format!("cannot watch `{}`: {e}; polling: {e2}", dir.display()))?;
            w.watch(&dir, recursive)
                .map_err(|e2| format!("cannot watch `{}`: {e}; polling: {e2}", dir.display()))?;
            (Box::new(w), "poll")
        }
    };

    let mut positions: HashMap<String, TailPosition> = HashMap::new();
    if let Some((store, reader)) = f.store {
        for p in store.load_positions(reader)? {
            positions.insert(p.path.clone(), p);
        }
    } else {
        // Like `tail -F`: what is there already is not news.
        for path in expand(&f.pattern)? {
            let r = tail::read(
                &path,
                None,
                &Opts {
                    max_line_bytes: f.opts.max_line_bytes,
                    ..Opts::default()
                },
            )
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            positions.insert(r.position.path.clone(), r.position);
        }
    }

    let mut reports = 0u64;
    let mut interval = Interval::default();
    let mut started = Instant::now();
    let mut deadline = started + f.interval;
    loop {
        if f.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Ok(());
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(first) => {
                // Drain the burst, then read once.
                let mut news = Seen::default();
                news.add(&first);
                while let Ok(e) = rx.try_recv() {
                    news.add(&e);
                }
                if news.changed {
                    interval.events += 1;
                    interval.rescans += u64::from(news.rescan);
                    read_all(f, &mut positions, &mut interval)?;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the file watcher stopped".into());
            }
        }
        if Instant::now() >= deadline {
            // An event may have been missed: look once more before reporting.
            read_all(f, &mut positions, &mut interval)?;
            if let Some((store, reader)) = f.store {
                let all: Vec<TailPosition> = positions.values().cloned().collect();
                store.save_positions(reader, &all)?;
            }
            let elapsed = started.elapsed();
            report(interval.fields(elapsed, &positions, backend));
            interval = Interval::default();
            reports += 1;
            if f.count.is_some_and(|n| reports >= n) {
                return Ok(());
            }
            started = Instant::now();
            deadline = started + f.interval;
        }
    }
}

/// What a burst of events says.
#[derive(Default)]
struct Seen {
    changed: bool,
    rescan: bool,
}

impl Seen {
    fn add(&mut self, e: &notify::Result<notify::Event>) {
        match e {
            // Reads (ours included) and attribute changes (atime) add no data.
            Ok(e)
                if matches!(
                    e.kind,
                    notify::EventKind::Access(_)
                        | notify::EventKind::Modify(notify::event::ModifyKind::Metadata(_))
                ) => {}
            Ok(e) => {
                self.changed = true;
                self.rescan |= e.need_rescan();
            }
            // A watcher error (e.g. a queue overflow reported as an error): look at everything.
            Err(_) => {
                self.changed = true;
                self.rescan = true;
            }
        }
    }
}

fn watcher(
    tx: mpsc::Sender<notify::Result<notify::Event>>,
    dir: &Path,
    mode: RecursiveMode,
) -> notify::Result<Box<dyn Watcher>> {
    let mut w = notify::recommended_watcher(tx)?;
    w.watch(dir, mode)?;
    Ok(Box::new(w))
}

/// Read what is new in every file the pattern names.
fn read_all(
    f: &Follow<'_>,
    positions: &mut HashMap<String, TailPosition>,
    interval: &mut Interval,
) -> Result<(), String> {
    for path in expand(&f.pattern)? {
        let name = path.display().to_string();
        let r = match tail::read(&path, positions.get(&name), &f.opts) {
            Ok(r) => r,
            // Rotated away between the glob and the open: the next read finds it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read `{name}`: {e}")),
        };
        if r.change.is_rotation() {
            interval.rotations += 1;
        }
        if let Some((_, rest)) = r.rest {
            interval.tally.merge_counts(rest, f.opts.keep_last);
        }
        interval.bytes += r.position.offset.saturating_sub(r.from);
        interval.tally.merge_counts(r.tally, f.opts.keep_last);
        positions.insert(name, r.position);
    }
    Ok(())
}

/// One interval's counts.
#[derive(Default)]
struct Interval {
    tally: Tally,
    rotations: u64,
    /// Bytes read from the followed files (a rotated file's rest not included).
    bytes: u64,
    events: u64,
    rescans: u64,
}

impl Interval {
    fn fields(
        &self,
        elapsed: Duration,
        positions: &HashMap<String, TailPosition>,
        backend: &str,
    ) -> Map<String, Value> {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let t = &self.tally;
        let mut files: Vec<(&String, u64)> = positions.iter().map(|(k, p)| (k, p.offset)).collect();
        files.sort();
        let mut m = Map::new();
        m.insert(
            "at".into(),
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        m.insert("interval_ms".into(), json!(elapsed.as_millis()));
        m.insert("lines".into(), json!(t.lines));
        m.insert("empty".into(), json!(t.empty));
        m.insert("malformed".into(), json!(t.malformed));
        m.insert("oversized".into(), json!(t.oversized));
        m.insert("invalid_utf8".into(), json!(t.invalid_utf8));
        m.insert("rotations".into(), json!(self.rotations));
        m.insert("bytes".into(), json!(self.bytes));
        #[allow(clippy::cast_precision_loss)]
        let (lps, bps) = (t.lines as f64 / secs, self.bytes as f64 / secs);
        m.insert("lines_per_s".into(), json!((lps * 10.0).round() / 10.0));
        m.insert("bytes_per_s".into(), json!(bps.round()));
        m.insert("events".into(), json!(self.events));
        m.insert("rescans".into(), json!(self.rescans));
        m.insert("watcher".into(), json!(backend));
        m.insert(
            "file_positions".into(),
            Value::Object(
                files
                    .into_iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        );
        m
    }
}
