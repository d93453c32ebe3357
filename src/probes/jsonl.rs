//! `jsonl`: scan JSON-lines files like the seed's Python loop and `awk 'length > 1048576'`:
//! counts lines, malformed JSON, oversized lines (streamed, never buffered whole) and invalid
//! UTF-8, per file and in total; with `incremental`, reads only what is new since the last run
//! and survives rotation.
//!
//! `top` (a jq path) counts the most frequent values (e.g. `.reason` of denied orders);
//! `percentiles` (a jq path) computes p50/p90/p95/p99 of a numeric field (e.g. `.decision_ms`);
//! `last` keeps the last N lines; `since` skips lines whose `timestamp`, `ts` or `time`
//! (RFC 3339 or Unix seconds/ms) is older (lines without one are kept).
//!
//! `value` is `malformed + oversized`. A line is malformed unless it is exactly one JSON text
//! by the grammar of RFC 8259 (any depth, any number size, duplicate keys allowed; a byte
//! order mark is malformed). A line with invalid UTF-8 counts in `invalid_utf8` and in
//! `malformed`; an empty line counts in `lines` and `empty` (a line of spaces is malformed);
//! a trailing `\r` is tolerated.
//! `first_malformed` names up to 10 `{file, line, error}` (line numbers from 1 in each file,
//! files in sorted glob order). `top` is a list of `{value, count}`, most frequent first;
//! `percentiles` is `{count, p50, p90, p95, p99}` (nearest rank; past a million numbers,
//! within 0.5 % and marked `approximate`, so memory stays bounded). No file matching is an
//! observation (`files: 0`).
//!
//! `incremental: true` keeps each file's position in the audit DB (`tail_positions`, one per
//! runbook check): a file is known by device + inode + a checksum of its first bytes, and
//! rename+create, copytruncate, truncation, delete+recreate and rewrite are each detected and
//! counted in `rotations`; the rest of a rotated file is read to its end first. A last line
//! without `\n` waits until it is complete. `file_positions` is each file's offset, like the
//! seed's `tailer_stats.file_positions`.
//!
//! Result: `lines`, `empty`, `malformed`, `oversized`, `invalid_utf8`, `rotations`,
//! `file_positions`, `per_file` (`{path: {lines, empty, malformed, oversized, invalid_utf8,
//! from, to, change, rest_of}}`), `files`, `incremental`, `top`, `percentiles`, `last`,
//! `first_malformed`.

mod follow;
mod quantiles;
mod scan;
mod tail;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::{ProbeContext, ProbeOutcome, TailPosition, jq};
use crate::runbook::value::{DurationParam, Tpl};

pub use follow::{Follow, follow};
pub use scan::{Opts, Partial, Tally, scan};
pub use tail::{Change, Read, read as read_incremental};

/// Parameters of the `jsonl` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlParams {
    /// A file path or glob (`/opt/aurora/logs/*.jsonl`).
    pub path: String,
    /// A line longer than this is oversized (default 1048576, the seed's threshold).
    #[serde(default)]
    pub max_line_bytes: Option<Tpl<u64>>,
    /// Keep the last N lines (like `tail -N`).
    #[serde(default)]
    pub last: Option<Tpl<u32>>,
    /// jq path whose values are counted (top 10).
    #[serde(default)]
    pub top: Option<String>,
    /// jq path of a number whose percentiles are computed.
    #[serde(default)]
    pub percentiles: Option<String>,
    /// Only lines whose timestamp is within this long.
    #[serde(default)]
    pub since: Option<DurationParam>,
    /// Continue from the positions saved by the previous run (rotation-aware).
    #[serde(default)]
    pub incremental: Option<bool>,
}

/// Result fields of the `jsonl` probe.
pub const FIELDS: &[&str] = &[
    "lines",
    "empty",
    "malformed",
    "oversized",
    "invalid_utf8",
    "rotations",
    "file_positions",
    "per_file",
    "files",
    "incremental",
    "top",
    "percentiles",
    "last",
    "first_malformed",
];

/// The seed's threshold for an oversized line.
const DEFAULT_MAX_LINE_BYTES: u64 = 1_048_576;
/// How many values `top` lists.
const TOP: usize = 10;

/// Run the probe: the scan is blocking file I/O, so it runs on the blocking pool.
pub async fn probe(params: JsonlParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    let opts = match opts(&params) {
        Ok(o) => o,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let store = cx.positions.filter(|_| params.incremental == Some(true));
    let saved = match store.map(|s| s.load_positions(cx.reader)).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return ProbeOutcome::Error(format!("cannot read saved positions: {e}")),
    };
    let pattern = params.path.clone();
    let incremental = store.is_some();
    let scanned =
        tokio::task::spawn_blocking(move || scan_files(&pattern, &opts, incremental, &saved)).await;
    let (mut out, positions) = match scanned {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return ProbeOutcome::Error(e),
        Err(e) => return ProbeOutcome::Error(format!("jsonl scan failed: {e}")),
    };
    if let Some(store) = store
        && let Err(e) = store.save_positions(cx.reader, &positions)
    {
        return ProbeOutcome::Error(format!("cannot save positions: {e}"));
    }
    out.insert("incremental".into(), json!(incremental));
    ProbeOutcome::Observed(out)
}

/// The scan options from the (rendered) params.
///
/// # Errors
/// A parameter that was not rendered, or a jq path that does not compile.
pub fn opts(p: &JsonlParams) -> Result<Opts, String> {
    let max_line_bytes = match &p.max_line_bytes {
        None => DEFAULT_MAX_LINE_BYTES,
        Some(Tpl::Lit(n)) => *n,
        Some(Tpl::Template(t)) => return Err(format!("`max_line_bytes` was not rendered: `{t}`")),
    };
    let keep_last = match &p.last {
        None => 0,
        Some(Tpl::Lit(n)) => *n as usize,
        Some(Tpl::Template(t)) => return Err(format!("`last` was not rendered: `{t}`")),
    };
    let cutoff = match &p.since {
        None => None,
        Some(DurationParam::Fixed(d)) => {
            let d = chrono::Duration::from_std(*d).map_err(|e| format!("`since`: {e}"))?;
            Some(chrono::Utc::now() - d)
        }
        Some(DurationParam::Template(t)) => return Err(format!("`since` was not rendered: `{t}`")),
    };
    let program = |path: &Option<String>, what: &str| {
        path.as_deref()
            .map(jq::Program::new)
            .transpose()
            .map_err(|e| format!("`{what}`: {e}"))
    };
    Ok(Opts {
        max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
        keep_last,
        top: program(&p.top, "top")?,
        percentiles: program(&p.percentiles, "percentiles")?,
        cutoff,
    })
}

/// Scan every file the pattern names: whole, or from the saved positions. Returns the result
/// fields and the positions to save.
///
/// # Errors
/// A bad glob, a file that cannot be read, a jq runtime error.
pub fn scan_files(
    pattern: &str,
    opts: &Opts,
    incremental: bool,
    saved: &[TailPosition],
) -> Result<(Map<String, Value>, Vec<TailPosition>), String> {
    let paths = expand(pattern)?;
    let mut total = Tally::default();
    let mut first_malformed = Vec::new();
    let mut positions = Map::new();
    let mut per_file = Map::new();
    let mut rotations = 0u64;
    let mut save = Vec::new();
    let mut note_malformed = |file: &str, first_line: u64, t: &Tally| {
        for (n, msg) in &t.first_malformed {
            if first_malformed.len() < scan::FIRST_MALFORMED {
                first_malformed
                    .push(json!({ "file": file, "line": first_line + n - 1, "error": msg }));
            }
        }
    };
    for path in &paths {
        let name = path.display().to_string();
        let cannot = |e: std::io::Error| format!("cannot read `{name}`: {e}");
        let mut entry = Map::new();
        if incremental {
            let last = saved.iter().find(|p| p.path == name);
            let r = tail::read(path, last, opts).map_err(cannot)?;
            if r.change.is_rotation() {
                rotations += 1;
            }
            if let Some((old, rest)) = r.rest {
                let old_name = old.display().to_string();
                let first = last.map_or(1, |s| s.line + 1);
                note_malformed(&old_name, first, &rest);
                entry.insert(
                    "rest_of".into(),
                    json!({
                        "path": old_name,
                        "lines": rest.lines,
                        "malformed": rest.malformed,
                        "oversized": rest.oversized,
                    }),
                );
                total.merge_counts(rest, opts.keep_last);
            }
            note_malformed(&name, r.first_line, &r.tally);
            counts(&mut entry, &r.tally);
            entry.insert("from".into(), json!(r.from));
            entry.insert("to".into(), json!(r.position.offset));
            entry.insert("change".into(), json!(r.change.name()));
            positions.insert(name.clone(), json!(r.position.offset));
            total.merge_counts(r.tally, opts.keep_last);
            save.push(r.position);
        } else {
            let file = std::fs::File::open(path).map_err(cannot)?;
            let len = file.metadata().map_err(cannot)?.len();
            let (t, end) = scan(&file, 0, len, u64::MAX, Partial::Count, opts).map_err(cannot)?;
            note_malformed(&name, 1, &t);
            counts(&mut entry, &t);
            entry.insert("from".into(), json!(0));
            entry.insert("to".into(), json!(end));
            positions.insert(name.clone(), json!(end));
            total.merge_counts(t, opts.keep_last);
        }
        per_file.insert(name, Value::Object(entry));
    }
    if let Some(e) = total.jq_error.take() {
        return Err(e);
    }
    let mut m = Map::new();
    m.insert("value".into(), json!(total.malformed + total.oversized));
    m.insert("files".into(), json!(paths.len()));
    counts(&mut m, &total);
    m.insert("rotations".into(), json!(rotations));
    m.insert("first_malformed".into(), Value::Array(first_malformed));
    m.insert("file_positions".into(), Value::Object(positions));
    m.insert("per_file".into(), Value::Object(per_file));
    if opts.keep_last > 0 {
        m.insert("last".into(), Value::Array(total.last.into()));
    }
    if opts.top.is_some() {
        let mut top: Vec<(String, u64)> = total.top.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let top: Vec<Value> = top
            .into_iter()
            .take(TOP)
            .map(|(value, count)| json!({ "value": value, "count": count }))
            .collect();
        m.insert("top".into(), Value::Array(top));
    }
    if opts.percentiles.is_some() {
        m.insert(
            "percentiles".into(),
            std::mem::take(&mut total.numbers).summary(),
        );
    }
    Ok((m, save))
}

fn counts(m: &mut Map<String, Value>, t: &Tally) {
    m.insert("lines".into(), json!(t.lines));
    m.insert("empty".into(), json!(t.empty));
    m.insert("malformed".into(), json!(t.malformed));
    m.insert("oversized".into(), json!(t.oversized));
    m.insert("invalid_utf8".into(), json!(t.invalid_utf8));
}

/// The files a path or glob names, sorted; none is not an error (`files: 0`).
fn expand(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let paths = glob::glob(pattern).map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
    let mut out = Vec::new();
    for p in paths {
        let p = p.map_err(|e| format!("cannot read `{}`: {}", e.path().display(), e.error()))?;
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
