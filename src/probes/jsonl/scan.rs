//! The JSON-lines scanner: reads a byte range of a file through one fixed buffer, checks each
//! line in place with the strict validator, and tallies what it saw.
//!
//! - Memory is bounded whatever the file: one read buffer per worker, plus at most
//!   `max_line_bytes` for a line split across two reads. An oversized line is skipped to its
//!   `\n` by `memchr`, never held.
//! - A plain count (no `top`, `percentiles`, `since`, `last`) of a large range is split among
//!   the cores: worker `k` owns the lines whose first byte lies in its slice of the range,
//!   finishes its last line past the slice's end, and skips the line its predecessor owns.
//!   Line numbers are made global when the workers' tallies are merged in order.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use super::quantiles::Numbers;
use crate::probes::jq;
use crate::probes::json_strict::Validator;

/// The read buffer of one worker.
const BUF: usize = 1 << 20;
/// A range smaller than this is not split.
const SPLIT_MIN: u64 = 8 << 20;
/// The size of a slice a thread takes at a time.
const SLICE: u64 = 16 << 20;
/// At most this many slices (their tallies wait in memory until merged).
const MAX_SLICES: usize = 256;
/// How many malformed lines are described.
pub const FIRST_MALFORMED: usize = 10;

/// What to look for in each line.
#[derive(Default)]
pub struct Opts {
    /// A line longer than this is oversized.
    pub max_line_bytes: usize,
    /// Keep the last N lines.
    pub keep_last: usize,
    /// jq path whose values are counted.
    pub top: Option<jq::Program>,
    /// jq path of a number whose percentiles are computed.
    pub percentiles: Option<jq::Program>,
    /// Lines with an older timestamp are skipped.
    pub cutoff: Option<chrono::DateTime<chrono::Utc>>,
}

impl Opts {
    /// Whether lines must be parsed into values (then the scan runs on one thread: a jq
    /// program is not shared between threads).
    fn wants_values(&self) -> bool {
        self.keep_last > 0
            || self.cutoff.is_some()
            || self.top.is_some()
            || self.percentiles.is_some()
    }
}

/// What a scan saw. Counts add up across workers, files and runs.
#[derive(Debug, Default)]
pub struct Tally {
    /// Complete lines (and a final line without `\n`, where counted).
    pub lines: u64,
    /// Empty lines (nothing but an optional `\r`); a line of spaces is malformed.
    pub empty: u64,
    /// Lines that are not one JSON text (invalid UTF-8 included).
    pub malformed: u64,
    /// Lines over `max_line_bytes`.
    pub oversized: u64,
    /// Lines with invalid UTF-8 (also counted in `malformed`).
    pub invalid_utf8: u64,
    /// Up to [`FIRST_MALFORMED`] `(line number, message)`; line numbers count from 1 within
    /// the scanned range.
    pub first_malformed: Vec<(u64, String)>,
    /// The last lines (values, or the text of a line that is not a value).
    pub last: VecDeque<Value>,
    /// Counts of `top` values.
    pub top: HashMap<String, u64>,
    /// Numbers for `percentiles` (bounded memory).
    pub numbers: Numbers,
    /// The first jq runtime error.
    pub jq_error: Option<String>,
}

impl Tally {
    /// Add `later` (the tally of the range after this one) to this one; its line numbers
    /// go on from this one's.
    pub fn merge(&mut self, mut later: Tally, keep_last: usize) {
        let offset = self.lines;
        for (n, msg) in later.first_malformed.drain(..) {
            if self.first_malformed.len() < FIRST_MALFORMED {
                self.first_malformed.push((n + offset, msg));
            }
        }
        self.merge_counts(later, keep_last);
    }

    /// Add `other`'s counts, last lines, `top` and numbers; not its `first_malformed` (line
    /// numbers of another file).
    pub fn merge_counts(&mut self, later: Tally, keep_last: usize) {
        self.lines += later.lines;
        self.empty += later.empty;
        self.malformed += later.malformed;
        self.oversized += later.oversized;
        self.invalid_utf8 += later.invalid_utf8;
        for v in later.last {
            remember(&mut self.last, keep_last, v);
        }
        for (k, n) in later.top {
            *self.top.entry(k).or_default() += n;
        }
        self.numbers.merge(later.numbers);
        if self.jq_error.is_none() {
            self.jq_error = later.jq_error;
        }
    }
}

/// What to do with a last line that has no `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// Count it (the file is finished, or a full scan: like Python's loop).
    Count,
    /// Leave it for later (incremental: it may still be being written).
    Leave,
}

/// Scan `[from, to)` of `file` (`from` at a line start). Lines starting before `to` are read
/// to their end even past `to`, except that reading stops at `limit` (the file's length when
/// the scan began, for an incremental read; `u64::MAX` to read to the end). Returns the tally
/// and the offset just after the last line consumed.
///
/// # Errors
/// A read error.
pub fn scan(
    file: &File,
    from: u64,
    to: u64,
    limit: u64,
    partial: Partial,
    opts: &Opts,
) -> io::Result<(Tally, u64)> {
    let workers = if opts.wants_values() || to.saturating_sub(from) < SPLIT_MIN {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    if workers == 1 {
        let mut w = Worker::new(opts);
        let end = w.run(file, from, false, to, limit, partial)?;
        return Ok((w.tally, end));
    }
    // More slices than threads, taken in turn: a thread that finishes early takes the next
    // slice instead of waiting for a slower one. Merged in slice order.
    let slices = usize::try_from((to - from) / SLICE)
        .unwrap_or(MAX_SLICES)
        .clamp(workers, MAX_SLICES);
    let span = (to - from) / slices as u64;
    let bounds: Vec<u64> = (0..=slices as u64)
        .map(|k| {
            if k == slices as u64 {
                to
            } else {
                from + k * span
            }
        })
        .collect();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<SliceResult>>> = Mutex::new((0..slices).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= slices {
                        break;
                    }
                    let mut w = Worker::new(opts);
                    let r = w
                        .run(file, bounds[k], k > 0, bounds[k + 1], limit, partial)
                        .map(|end| (std::mem::take(&mut w.tally), end));
                    done.lock().unwrap_or_else(PoisonError::into_inner)[k] = Some(r);
                }
            });
        }
    });
    let mut total = Tally::default();
    let mut end = from;
    for r in done.into_inner().unwrap_or_else(PoisonError::into_inner) {
        let (t, e) = r.unwrap_or_else(|| Err(io::Error::other("a scan worker stopped")))?;
        total.merge(t, opts.keep_last);
        end = end.max(e);
    }
    Ok((total, end))
}

/// A slice's tally and where its reading ended.
type SliceResult = io::Result<(Tally, u64)>;

/// One thread's scan of one slice.
struct Worker<'o> {
    opts: &'o Opts,
    validator: Validator,
    tally: Tally,
}

impl<'o> Worker<'o> {
    fn new(opts: &'o Opts) -> Self {
        Worker {
            opts,
            validator: Validator::new(),
            tally: Tally::default(),
        }
    }

    /// Read lines starting in `[start, stop)`; `align`: `start` may be mid-line, whose line
    /// belongs to the previous worker. Returns the offset after the last line consumed.
    fn run(
        &mut self,
        file: &File,
        start: u64,
        align: bool,
        stop: u64,
        limit: u64,
        partial: Partial,
    ) -> io::Result<u64> {
        let max = self.opts.max_line_bytes;
        let mut buf = vec![
            0u8;
            BUF.min(usize::try_from(limit.saturating_sub(start)).unwrap_or(BUF))
                .max(1)
        ];
        let mut pos = start;
        // Skip the tail of a line that began before `start`.
        let mut skipping = false;
        if align {
            let mut b = [0u8; 1];
            let n = read_at(file, &mut b, start - 1)?;
            skipping = n == 1 && b[0] != b'\n';
        }
        let mut line_start = start;
        let mut carry: Vec<u8> = Vec::new();
        let mut over = false;
        let mut number = 0u64;
        loop {
            if !skipping && carry.is_empty() && !over && line_start >= stop {
                return Ok(line_start);
            }
            let room = usize::try_from(limit.saturating_sub(pos))
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = if room == 0 {
                0
            } else {
                read_at(file, &mut buf[..room], pos)?
            };
            if n == 0 {
                // End of file (or of `limit`).
                if skipping {
                    // The whole slice lies inside a line an earlier worker owns: that worker
                    // says where reading ended (with `Partial::Leave`, at the line's start).
                    return Ok(0);
                }
                if (over || !carry.is_empty()) && partial == Partial::Count {
                    number += 1;
                    self.line(&carry, over, number);
                    return Ok(pos);
                }
                return Ok(line_start);
            }
            let data = &buf[..n];
            let mut i = 0;
            while i < n {
                if skipping {
                    if let Some(j) = memchr::memchr(b'\n', &data[i..]) {
                        i += j + 1;
                        line_start = pos + i as u64;
                        skipping = false;
                        if line_start >= stop {
                            return Ok(line_start);
                        }
                        continue;
                    }
                    // No line starts in this slice: stop here rather than read the earlier
                    // worker's line to its end (each slice doing so made a long line cost
                    // slices × its length).
                    if pos + n as u64 >= stop {
                        return Ok(0);
                    }
                    break;
                }
                if let Some(j) = memchr::memchr(b'\n', &data[i..]) {
                    let piece = &data[i..i + j];
                    number += 1;
                    if over || carry.len() + piece.len() > max {
                        self.line(&[], true, number);
                    } else if carry.is_empty() {
                        self.line(piece, false, number);
                    } else {
                        carry.extend_from_slice(piece);
                        self.line(&carry, false, number);
                    }
                    carry.clear();
                    over = false;
                    i += j + 1;
                    line_start = pos + i as u64;
                    if line_start >= stop {
                        return Ok(line_start);
                    }
                } else {
                    let rest = &data[i..];
                    if !over {
                        if carry.len() + rest.len() > max {
                            over = true;
                            carry = Vec::new();
                        } else {
                            carry.extend_from_slice(rest);
                        }
                    }
                    i = n;
                }
            }
            pos += n as u64;
        }
    }

    /// One line; `number` counts from 1 within this worker's slice.
    fn line(&mut self, raw: &[u8], oversized: bool, number: u64) {
        let t = &mut self.tally;
        let keep = self.opts.keep_last;
        t.lines += 1;
        if oversized {
            t.oversized += 1;
            if keep > 0 {
                remember(
                    &mut t.last,
                    keep,
                    json!(format!(
                        "<oversized line over {} bytes>",
                        self.opts.max_line_bytes
                    )),
                );
            }
            return;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            t.empty += 1;
            return;
        }
        // Validate first: an all-ASCII valid line needs no UTF-8 pass (the common case).
        let checked = self.validator.check(raw);
        let utf8 = match checked {
            Ok(true) => Ok(()),
            _ => std::str::from_utf8(raw).map(|_| ()),
        };
        if let Err(e) = utf8 {
            t.invalid_utf8 += 1;
            malformed(
                t,
                number,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            );
            if keep > 0 {
                remember(&mut t.last, keep, json!(String::from_utf8_lossy(raw)));
            }
            return;
        }
        // Valid UTF-8 from here on (`from_utf8_lossy` borrows; it only runs when needed).
        if let Err(e) = checked {
            malformed(t, number, e.to_string());
            if keep > 0 {
                remember(&mut t.last, keep, json!(String::from_utf8_lossy(raw)));
            }
            return;
        }
        if !self.opts.wants_values() {
            return;
        }
        let text = String::from_utf8_lossy(raw);
        // Valid JSON that serde_json will not build (deeper than 128, a number beyond f64, a
        // lone surrogate) still counts as valid; it only has no value to look into.
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            if keep > 0 {
                remember(&mut t.last, keep, json!(text));
            }
            return;
        };
        if let Some(cutoff) = self.opts.cutoff
            && timestamp(&value).is_some_and(|ts| ts < cutoff)
        {
            return;
        }
        if t.jq_error.is_none() {
            if let Some(p) = &self.opts.top {
                match p.eval(&value) {
                    Ok(Value::Null) => {}
                    Ok(Value::String(s)) => *t.top.entry(s).or_default() += 1,
                    Ok(v) => *t.top.entry(v.to_string()).or_default() += 1,
                    Err(e) => t.jq_error = Some(format!("`top`: {e}")),
                }
            }
            if let Some(p) = &self.opts.percentiles {
                match p.eval(&value) {
                    Ok(v) => {
                        if let Some(x) = v.as_f64() {
                            t.numbers.push(x);
                        }
                    }
                    Err(e) => t.jq_error = Some(format!("`percentiles`: {e}")),
                }
            }
        }
        if keep > 0 {
            remember(&mut t.last, keep, value);
        }
    }
}

fn malformed(t: &mut Tally, number: u64, msg: String) {
    t.malformed += 1;
    if t.first_malformed.len() < FIRST_MALFORMED {
        t.first_malformed.push((number, msg));
    }
}

fn remember(last: &mut VecDeque<Value>, keep: usize, v: Value) {
    if keep == 0 {
        return;
    }
    if last.len() == keep {
        last.pop_front();
    }
    last.push_back(v);
}

/// `read_at` that retries on `Interrupted`.
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
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
            #[allow(clippy::cast_possible_truncation)]
            chrono::DateTime::from_timestamp_millis(ms as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts(max: usize) -> Opts {
        Opts {
            max_line_bytes: max,
            ..Opts::default()
        }
    }

    fn file(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        let file = File::open(f.path()).unwrap();
        (f, file)
    }

    /// The counts of a scan split at every possible byte are those of a one-worker scan.
    #[test]
    fn any_split_point_gives_the_same_counts() {
        let content = b"{\"a\":1}\n\nnot json\n{\"b\":[1,2]}\r\n\"x\"\n{\"long\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}\n[1,\n\xff\xfe\n{}";
        let (_keep, f) = file(content);
        let len = content.len() as u64;
        let o = opts(40);
        let (whole, end) = scan(&f, 0, len, u64::MAX, Partial::Count, &o).unwrap();
        assert_eq!(end, len);
        assert_eq!(
            (
                whole.lines,
                whole.empty,
                whole.malformed,
                whole.oversized,
                whole.invalid_utf8
            ),
            (9, 1, 3, 1, 1)
        );
        for cut in 1..len {
            let mut head = Worker::new(&o);
            let ea = head
                .run(&f, 0, false, cut, u64::MAX, Partial::Count)
                .unwrap();
            let mut tail = Worker::new(&o);
            let eb = tail
                .run(&f, cut, true, len, u64::MAX, Partial::Count)
                .unwrap();
            let mut t = head.tally;
            t.merge(tail.tally, 0);
            assert_eq!(
                (t.lines, t.empty, t.malformed, t.oversized, t.invalid_utf8),
                (
                    whole.lines,
                    whole.empty,
                    whole.malformed,
                    whole.oversized,
                    whole.invalid_utf8
                ),
                "split at {cut}"
            );
            assert_eq!(t.first_malformed, whole.first_malformed, "split at {cut}");
            assert_eq!(ea.max(eb), len, "split at {cut}");
        }
    }

    #[test]
    fn a_partial_last_line_is_left_or_counted() {
        let (_keep, f) = file(b"{}\n{\"a\":");
        let o = opts(100);
        let (t, end) = scan(&f, 0, 8, 8, Partial::Leave, &o).unwrap();
        assert_eq!((t.lines, t.malformed, end), (1, 0, 3));
        let (t, end) = scan(&f, 0, 8, u64::MAX, Partial::Count, &o).unwrap();
        assert_eq!((t.lines, t.malformed, end), (2, 1, 8));
    }

    #[test]
    fn an_oversized_line_is_never_held() {
        let mut content = b"{}\n\"".to_vec();
        content.extend(std::iter::repeat_n(b'x', 3 * BUF));
        content.extend_from_slice(b"\"\n{}\n");
        let (_keep, f) = file(&content);
        let o = opts(1000);
        let (t, _) = scan(&f, 0, content.len() as u64, u64::MAX, Partial::Count, &o).unwrap();
        assert_eq!((t.lines, t.oversized, t.malformed), (3, 1, 0));
    }
}
