//! `jsonl`: scan JSON-lines files like the seed's Python loop and `awk 'length > 1048576'`:
//! counts lines, malformed JSON, oversized lines (streamed, never buffered whole) and invalid
//! UTF-8; rotation-aware from saved positions when `incremental`.
//!
//! `top` (a jq path) counts the most frequent values (e.g. `.reason` of denied orders);
//! `percentiles` (a jq path) computes p50/p90/p95/p99 of a numeric field (e.g. `.decision_ms`);
//! `last` keeps the last N lines.
//!
//! `value` is `malformed + oversized`. A line is malformed unless it is exactly one JSON text
//! by the grammar of RFC 8259 (see `json_strict`: any depth, any number size, duplicate keys
//! allowed; a byte order mark is malformed). A line with invalid UTF-8 counts in
//! `invalid_utf8` and in `malformed`; an empty (or blank) line counts in `lines` and `empty`;
//! a trailing `\r` is tolerated.
//! `first_malformed` names up to 10 `{file, line, error}` (line numbers count from 1 in each
//! file, files in sorted glob order). `top` is a list of `{value, count}`, most frequent first; `percentiles` is
//! `{count, p50, p90, p95, p99}` (nearest rank). `since` skips lines whose `timestamp`, `ts` or
//! `time` (RFC 3339 or Unix seconds/ms) is older; lines without one are kept. No file matching
//! is an observation (`files: 0`).
//!
//! This version rescans whole files: `incremental` is accepted but `rotations` is not reported
//! yet, and `file_positions` is each file's end offset.
//!
//! Result: `lines`, `empty`, `malformed`, `oversized`, `invalid_utf8`, `rotations`, `file_positions`,
//! `files`, `top`, `percentiles`, `last`, `first_malformed`.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::json_strict::Validator;
use crate::probes::{ProbeContext, ProbeOutcome, jq};
use crate::runbook::value::{DurationParam, Tpl};

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
    "files",
    "top",
    "percentiles",
    "last",
    "first_malformed",
];

/// The seed's threshold for an oversized line.
const DEFAULT_MAX_LINE_BYTES: u64 = 1_048_576;
/// How many malformed lines are described in `first_malformed`.
const FIRST_MALFORMED: usize = 10;
/// How many values `top` lists.
const TOP: usize = 10;

/// Run the probe: the scan is blocking file I/O, so it runs on the blocking pool.
pub async fn probe(params: JsonlParams, _cx: &ProbeContext<'_>) -> ProbeOutcome {
    let scan = match Scan::from_params(&params) {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::Error(e),
    };
    let pattern = params.path.clone();
    match tokio::task::spawn_blocking(move || scan.run(&pattern)).await {
        Ok(Ok(m)) => ProbeOutcome::Observed(m),
        Ok(Err(e)) => ProbeOutcome::Error(e),
        Err(e) => ProbeOutcome::Error(format!("jsonl scan failed: {e}")),
    }
}

/// What to look for, and the running totals.
#[derive(Default)]
struct Scan {
    max_line_bytes: usize,
    keep_last: usize,
    top_path: Option<jq::Program>,
    pct_path: Option<jq::Program>,
    validator: Validator,
    /// Lines with an older timestamp are skipped (`since`).
    cutoff: Option<chrono::DateTime<chrono::Utc>>,
    lines: u64,
    empty: u64,
    malformed: u64,
    oversized: u64,
    invalid_utf8: u64,
    first_malformed: Vec<Value>,
    last: VecDeque<Value>,
    top: HashMap<String, u64>,
    numbers: Vec<f64>,
    jq_error: Option<String>,
}

impl Scan {
    fn from_params(p: &JsonlParams) -> Result<Self, String> {
        let max_line_bytes = match &p.max_line_bytes {
            None => DEFAULT_MAX_LINE_BYTES,
            Some(Tpl::Lit(n)) => *n,
            Some(Tpl::Template(t)) => {
                return Err(format!("`max_line_bytes` was not rendered: `{t}`"));
            }
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
            Some(DurationParam::Template(t)) => {
                return Err(format!("`since` was not rendered: `{t}`"));
            }
        };
        Ok(Scan {
            max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
            keep_last,
            top_path: p
                .top
                .as_deref()
                .map(jq::Program::new)
                .transpose()
                .map_err(|e| format!("`top`: {e}"))?,
            pct_path: p
                .percentiles
                .as_deref()
                .map(jq::Program::new)
                .transpose()
                .map_err(|e| format!("`percentiles`: {e}"))?,
            cutoff,
            ..Scan::default()
        })
    }

    fn run(mut self, pattern: &str) -> Result<Map<String, Value>, String> {
        let paths = expand(pattern)?;
        let mut positions = Map::new();
        for path in &paths {
            let file =
                File::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
            let name = path.display().to_string();
            let end = self
                .read(BufReader::with_capacity(64 * 1024, file), &name)
                .map_err(|e| format!("cannot read `{name}`: {e}"))?;
            positions.insert(name, json!(end));
        }
        if let Some(e) = self.jq_error {
            return Err(e);
        }
        let mut m = Map::new();
        m.insert("value".into(), json!(self.malformed + self.oversized));
        m.insert("files".into(), json!(paths.len()));
        m.insert("lines".into(), json!(self.lines));
        m.insert("empty".into(), json!(self.empty));
        m.insert("malformed".into(), json!(self.malformed));
        m.insert("oversized".into(), json!(self.oversized));
        m.insert("invalid_utf8".into(), json!(self.invalid_utf8));
        m.insert("first_malformed".into(), Value::Array(self.first_malformed));
        m.insert("file_positions".into(), Value::Object(positions));
        if self.keep_last > 0 {
            m.insert("last".into(), Value::Array(self.last.into()));
        }
        if self.top_path.is_some() {
            let mut top: Vec<(String, u64)> = self.top.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let top: Vec<Value> = top
                .into_iter()
                .take(TOP)
                .map(|(value, count)| json!({ "value": value, "count": count }))
                .collect();
            m.insert("top".into(), Value::Array(top));
        }
        if self.pct_path.is_some() {
            m.insert("percentiles".into(), percentiles(&mut self.numbers));
        }
        Ok(m)
    }

    /// Stream one file; an oversized line is skipped to its `\n`, never held whole. A line
    /// that lies within one buffer is checked in place; only a line split across two reads is
    /// copied. Returns the bytes read (the end position).
    fn read(&mut self, mut reader: impl BufRead, file: &str) -> std::io::Result<u64> {
        let max = self.max_line_bytes;
        let mut line: Vec<u8> = Vec::new();
        let mut over = false;
        let mut pos = 0u64;
        let mut number = 0u64;
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                if over || !line.is_empty() {
                    self.line(&line, over, file, number + 1);
                }
                return Ok(pos);
            }
            let mut start = 0;
            while let Some(i) = memchr::memchr(b'\n', &chunk[start..]) {
                let piece = &chunk[start..start + i];
                number += 1;
                if over || line.len() + piece.len() > max {
                    self.line(&[], true, file, number);
                } else if line.is_empty() {
                    self.line(piece, false, file, number);
                } else {
                    line.extend_from_slice(piece);
                    self.line(&line, false, file, number);
                }
                line.clear();
                over = false;
                start += i + 1;
            }
            let rest = &chunk[start..];
            if !over {
                if line.len() + rest.len() > max {
                    over = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(rest);
                }
            }
            let used = chunk.len();
            reader.consume(used);
            pos += used as u64;
        }
    }

    /// One line; `number` counts from 1 within `file`.
    fn line(&mut self, raw: &[u8], oversized: bool, file: &str, number: u64) {
        self.lines += 1;
        if oversized {
            self.oversized += 1;
            self.remember_last(json!(format!(
                "<oversized line over {} bytes>",
                self.max_line_bytes
            )));
            return;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                self.invalid_utf8 += 1;
                self.malformed(
                    file,
                    number,
                    &format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                );
                self.remember_last(json!(String::from_utf8_lossy(raw)));
                return;
            }
        };
        if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            self.empty += 1;
            return;
        }
        if let Err(e) = self.validator.validate(raw) {
            self.malformed(file, number, &e.to_string());
            self.remember_last(json!(text));
            return;
        }
        let wants_value = self.keep_last > 0
            || self.cutoff.is_some()
            || (self.jq_error.is_none() && (self.top_path.is_some() || self.pct_path.is_some()));
        if !wants_value {
            return;
        }
        // Valid JSON that serde_json will not build (deeper than 128, a number beyond f64, a
        // lone surrogate) still counts as valid; it only has no value to look into.
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            self.remember_last(json!(text));
            return;
        };
        if let Some(cutoff) = self.cutoff
            && timestamp(&value).is_some_and(|t| t < cutoff)
        {
            return;
        }
        if self.jq_error.is_none() {
            if let Some(path) = &self.top_path {
                match path.eval(&value) {
                    Ok(Value::Null) => {}
                    Ok(Value::String(s)) => *self.top.entry(s).or_default() += 1,
                    Ok(v) => *self.top.entry(v.to_string()).or_default() += 1,
                    Err(e) => self.jq_error = Some(format!("`top`: {e}")),
                }
            }
            if let Some(path) = &self.pct_path {
                match path.eval(&value) {
                    Ok(v) => {
                        if let Some(x) = v.as_f64() {
                            self.numbers.push(x);
                        }
                    }
                    Err(e) => self.jq_error = Some(format!("`percentiles`: {e}")),
                }
            }
        }
        self.remember_last(value);
    }

    fn malformed(&mut self, file: &str, line: u64, error: &str) {
        self.malformed += 1;
        if self.first_malformed.len() < FIRST_MALFORMED {
            self.first_malformed
                .push(json!({ "file": file, "line": line, "error": error }));
        }
    }

    fn remember_last(&mut self, v: Value) {
        if self.keep_last == 0 {
            return;
        }
        if self.last.len() == self.keep_last {
            self.last.pop_front();
        }
        self.last.push_back(v);
    }
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

/// A line's time from `timestamp`, `ts` or `time`: RFC 3339 text or Unix seconds (or ms).
fn timestamp(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = ["timestamp", "ts", "time"].iter().find_map(|k| v.get(k))?;
    match t {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&chrono::Utc)),
        Value::Number(n) => {
            let x = n.as_f64()?;
            let ms = if x > 1e12 { x } else { x * 1000.0 };
            chrono::DateTime::from_timestamp_millis(ms as i64)
        }
        _ => None,
    }
}

/// p50/p90/p95/p99 by nearest rank, and how many numbers there were.
fn percentiles(xs: &mut [f64]) -> Value {
    xs.sort_by(f64::total_cmp);
    let at = |pct: usize| -> Value {
        if xs.is_empty() {
            return Value::Null;
        }
        let rank = (pct * xs.len()).div_ceil(100);
        json!(xs[rank.clamp(1, xs.len()) - 1])
    };
    json!({
        "count": xs.len(),
        "p50": at(50),
        "p90": at(90),
        "p95": at(95),
        "p99": at(99),
    })
}
