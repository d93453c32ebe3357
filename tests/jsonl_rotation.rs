//! The rotation matrix of the `jsonl` probe's incremental mode, end to end: every read is a
//! new `runbook --db DB probe jsonl` process, so positions go through the audit DB
//! (`tail_positions`) each time. A writer appends sequence-numbered lines (`{"seq":N,...}`)
//! to `app.jsonl` in a temp dir; the file is rotated by real `logrotate` (`create`,
//! `copytruncate`) and by hand (rename+create, truncate, delete+recreate, rewrite larger);
//! each test asserts the exact multiset of sequence numbers read over all runs (none lost,
//! none twice) and that `rotations` counts each rotation once.
//!
//! Needs `logrotate` on `PATH` or in `/usr/sbin` (Debian package `logrotate`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Lines a writer thread writes at most (bounds its loop).
const WRITER_MAX: u64 = 200_000;
/// How long any wait in these tests may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// One JSON line with its sequence number, padded so files grow by realistic amounts.
fn line(seq: u64) -> String {
    format!("{{\"seq\":{seq},\"msg\":\"order accepted\",\"pad\":\"{seq:0>24}\"}}\n")
}

fn lines(seqs: std::ops::Range<u64>) -> String {
    seqs.map(line).collect()
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// A temp dir with `app.jsonl` and a reader whose positions live in `state.db`.
struct Case {
    dir: tempfile::TempDir,
    path: PathBuf,
    db: PathBuf,
    max_line_bytes: u64,
    /// How many times each sequence number was read, over all reads.
    seen: BTreeMap<u64, u32>,
    /// Oversized lines read, over all reads.
    oversized: u64,
    /// Whether a piece of a line may be read (see `copytruncate` with a running writer).
    fragments_allowed: bool,
    /// `rotations`, summed over all reads.
    rotations: u64,
}

/// What one run of the probe read.
struct Run {
    seqs: Vec<u64>,
    rotations: u64,
    result: Value,
}

impl Run {
    /// This run's entry for `path` in `per_file`.
    fn file(&self, path: &Path) -> &Value {
        &self.result["per_file"][path.to_str().unwrap()]
    }
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.jsonl");
        let db = dir.path().join("state.db");
        File::create(&path).unwrap();
        Case {
            dir,
            path,
            db,
            max_line_bytes: 1 << 20,
            seen: BTreeMap::new(),
            oversized: 0,
            fragments_allowed: false,
            rotations: 0,
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run the probe once, as a new process, with positions in `db`, keeping every line
    /// read (`last`) to see which they were.
    fn read_with(&self, db: &Path) -> Value {
        self.probe(db, &["--with", "last=1000000"])
    }

    /// Run the probe once, as a new process, with positions in `db` and `extra` arguments.
    fn probe(&self, db: &Path, extra: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .arg("--db")
            .arg(db)
            .args(["probe", "jsonl", "--with"])
            .arg(format!("path={}", self.path.display()))
            .args(["--with", "incremental=true"])
            .args(extra)
            .arg("--with")
            .arg(format!("max_line_bytes={}", self.max_line_bytes))
            .env_remove("RUNBOOK_DB")
            .env_remove("RUNBOOK_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runbook probe jsonl failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["outcome"], "observed", "{v:#}");
        v["result"].clone()
    }

    /// One incremental read: records what it saw in the ledger. Every line read must be a
    /// whole, valid line of ours or an oversized one.
    fn read(&mut self) -> Run {
        let result = self.read_with(&self.db.clone());
        let mut seqs = Vec::new();
        let (mut oversized, mut fragments) = (0, 0);
        for v in result["last"].as_array().unwrap() {
            if let Some(seq) = v["seq"].as_u64() {
                seqs.push(seq);
            } else if v.as_str().is_some_and(|s| s.starts_with("<oversized line")) {
                oversized += 1;
            } else if self.fragments_allowed && v.is_string() {
                fragments += 1;
            } else {
                panic!("a line that is not one of ours: {v}\n{result:#}");
            }
        }
        let count = |k: &str| result[k].as_u64().unwrap();
        let lines = seqs.len() as u64 + oversized + fragments;
        assert_eq!(count("lines"), lines, "{result:#}");
        assert_eq!(count("oversized"), oversized, "{result:#}");
        assert_eq!(
            (count("malformed"), count("empty"), count("invalid_utf8")),
            (fragments, 0, 0),
            "{result:#}"
        );
        for &s in &seqs {
            *self.seen.entry(s).or_default() += 1;
        }
        self.oversized += oversized;
        let rotations = count("rotations");
        self.rotations += rotations;
        Run {
            seqs,
            rotations,
            result,
        }
    }

    /// Every sequence number in `written` was read exactly once, and no other.
    #[track_caller]
    fn assert_read_once(&self, written: impl IntoIterator<Item = u64>) {
        let mut expected: BTreeMap<u64, u32> = BTreeMap::new();
        for s in written {
            *expected.entry(s).or_default() += 1;
        }
        assert_eq!(
            expected.values().max().copied().unwrap_or(1),
            1,
            "the test wrote a number twice"
        );
        let missing: Vec<u64> = expected
            .keys()
            .filter(|s| !self.seen.contains_key(s))
            .copied()
            .collect();
        let twice: Vec<(u64, u32)> = self
            .seen
            .iter()
            .filter(|&(_, &n)| n > 1)
            .map(|(&s, &n)| (s, n))
            .collect();
        let unknown: Vec<u64> = self
            .seen
            .keys()
            .filter(|s| !expected.contains_key(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty() && twice.is_empty() && unknown.is_empty(),
            "lost: {} {:?}..., read more than once (seq, times): {:?}..., never written: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)],
            &twice[..twice.len().min(20)],
            &unknown[..unknown.len().min(20)],
        );
    }

    /// A logrotate config for `app.jsonl` with `mode` (`create` or `copytruncate`).
    fn logrotate_conf(&self, mode: &str) -> PathBuf {
        let conf = self.dir().join(format!("{mode}.conf"));
        std::fs::write(
            &conf,
            format!(
                "{} {{\n    {mode}\n    rotate 5\n    nocompress\n    missingok\n}}\n",
                self.path.display()
            ),
        )
        .unwrap();
        conf
    }

    /// Rotate now with real `logrotate -f`.
    fn logrotate(&self, conf: &Path) {
        let out = Command::new(logrotate_bin())
            .arg("-f")
            .arg("-s")
            .arg(self.dir().join("logrotate.state"))
            .arg(conf)
            .output()
            .expect("`logrotate` must be installed (Debian package `logrotate`)");
        assert!(
            out.status.success(),
            "logrotate failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Rename `app.jsonl` to `app.jsonl.<suffix>` and create an empty `app.jsonl`.
    fn rename_create(&self, suffix: &str) {
        std::fs::rename(&self.path, self.dir().join(format!("app.jsonl.{suffix}"))).unwrap();
        File::create(&self.path).unwrap();
    }
}

fn logrotate_bin() -> PathBuf {
    let sbin = Path::new("/usr/sbin/logrotate");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("logrotate")
    }
}

/// A writer thread appending `line(seq)` for seq = 0, 1, 2, ... like a logger that opens the
/// file by path for each line (`O_APPEND`, never `O_CREAT`: between `create`'s rename and
/// its create the file is missing, and the writer waits for it).
struct Writer {
    pen: Arc<Mutex<()>>,
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Writer {
    fn start(path: &Path) -> Self {
        let pen = Arc::new(Mutex::new(()));
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, w, s, path) = (pen.clone(), written.clone(), stop.clone(), path.to_owned());
        let handle = std::thread::spawn(move || {
            for seq in 0..WRITER_MAX {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                {
                    let _pen = p.lock().unwrap();
                    let start = Instant::now();
                    let mut f = loop {
                        match OpenOptions::new().append(true).open(&path) {
                            Ok(f) => break f,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                                assert!(start.elapsed() < DEADLINE, "the log never came back");
                                std::thread::sleep(Duration::from_micros(200));
                            }
                            Err(e) => panic!("cannot open the log: {e}"),
                        }
                    };
                    f.write_all(line(seq).as_bytes()).unwrap();
                    w.store(seq + 1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        Writer {
            pen,
            written,
            stop,
            handle,
        }
    }

    /// Lines completely written so far (sequence numbers `0..written`).
    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Wait until `n` more lines are written.
    fn wait_for(&self, n: u64) {
        let target = self.written() + n;
        let start = Instant::now();
        while self.written() < target {
            assert!(start.elapsed() < DEADLINE, "the writer is stuck");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// While held, the writer is between two lines.
    fn pause(&self) -> MutexGuard<'_, ()> {
        self.pen.lock().unwrap()
    }

    /// Stop; returns how many lines were written.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the writer panicked");
        self.written.load(Ordering::SeqCst)
    }
}

#[test]
fn logrotate_create_while_writing_loses_nothing() {
    let mut c = Case::new();
    let conf = c.logrotate_conf("create");
    let w = Writer::start(&c.path);
    for round in 0..4 {
        w.wait_for(40);
        c.read();
        w.wait_for(40);
        let before = inode(&c.path);
        c.logrotate(&conf);
        // A line the writer opened before the rename lands in the renamed file: let it
        // finish before reading, so the read sees it there.
        drop(w.pause());
        assert_ne!(inode(&c.path), before, "logrotate `create` made a new file");
        w.wait_for(20);
        let r = c.read();
        assert_eq!(r.rotations, 1, "round {round}: {:#}", r.result);
        let f = r.file(&c.path);
        assert_eq!(f["change"], "replaced", "round {round}: {f:#}");
        let rest_of = f["rest_of"]["path"].as_str().unwrap();
        assert!(rest_of.ends_with("app.jsonl.1"), "{f:#}");
    }
    let n = w.finish();
    let r = c.read();
    assert_eq!(r.rotations, 0);
    assert!(n >= 4 * 100, "the writer wrote {n} lines");
    c.assert_read_once(0..n);
    assert_eq!(c.rotations, 4);
}

/// `copytruncate` loses what a writer appends between its copy and its truncate (its
/// documented race, stated in the README): here the writer is paused while logrotate runs,
/// so every line must be read exactly once. The test below lets it write through.
#[test]
fn logrotate_copytruncate_with_the_writer_paused_loses_nothing() {
    let mut c = Case::new();
    let conf = c.logrotate_conf("copytruncate");
    let w = Writer::start(&c.path);
    for round in 0..4 {
        w.wait_for(40);
        c.read();
        w.wait_for(40);
        let before = inode(&c.path);
        {
            let _paused = w.pause();
            c.logrotate(&conf);
        }
        assert_eq!(inode(&c.path), before, "copytruncate keeps the inode");
        // Some rounds read the truncated file empty, others after the writer refilled it.
        if round % 2 == 1 {
            w.wait_for(20);
        }
        let r = c.read();
        assert_eq!(r.rotations, 1, "round {round}: {:#}", r.result);
        let f = r.file(&c.path);
        assert!(
            f["change"] == "truncated" || f["change"] == "rewritten",
            "round {round}: {f:#}"
        );
        let rest_of = f["rest_of"]["path"].as_str().unwrap();
        assert!(rest_of.ends_with("app.jsonl.1"), "{f:#}");
    }
    let n = w.finish();
    let r = c.read();
    assert_eq!(r.rotations, 0);
    c.assert_read_once(0..n);
    assert_eq!(c.rotations, 4);
}

/// With the writer running through `copytruncate`, lines written after the copy and before
/// the truncate are in neither file. Only lines completely written before logrotate started
/// or begun after it exited must be read; none may be read twice.
#[test]
fn logrotate_copytruncate_while_writing_loses_only_the_race_window() {
    let mut c = Case::new();
    // The copy may end inside a line being written (its end is then truncated away): read
    // as a malformed piece, within the race window too.
    c.fragments_allowed = true;
    let conf = c.logrotate_conf("copytruncate");
    let w = Writer::start(&c.path);
    let mut windows = Vec::new();
    for round in 0..3 {
        w.wait_for(40);
        c.read();
        w.wait_for(40);
        // Lines `0..lo` were written before logrotate started; lines after `hi` began after
        // it exited (line `hi` may have begun just before).
        let lo = w.written();
        c.logrotate(&conf);
        let hi = w.written();
        windows.push(lo..=hi);
        w.wait_for(20);
        let r = c.read();
        assert_eq!(r.rotations, 1, "round {round}: {:#}", r.result);
    }
    let n = w.finish();
    c.read();
    let twice: Vec<_> = c.seen.iter().filter(|&(_, &k)| k > 1).collect();
    assert!(twice.is_empty(), "read twice: {twice:?}");
    assert!(c.seen.keys().all(|&s| s < n), "never written");
    let lost: Vec<u64> = (0..n)
        .filter(|s| !c.seen.contains_key(s))
        .filter(|s| !windows.iter().any(|w| w.contains(s)))
        .collect();
    assert!(lost.is_empty(), "lost outside the race windows: {lost:?}");
    assert_eq!(c.rotations, 3);
}

#[test]
fn rename_and_create_by_hand_reads_the_rest_of_the_renamed_file() {
    let mut c = Case::new();
    append(&c.path, lines(0..10).as_bytes());
    c.read();
    // Unread lines in the file that is renamed away, and lines in its successor.
    append(&c.path, lines(10..25).as_bytes());
    c.rename_create("1");
    append(&c.path, lines(25..30).as_bytes());
    let r = c.read();
    assert_eq!(r.seqs, (10..30).collect::<Vec<_>>(), "rest first, in order");
    assert_eq!(r.rotations, 1);
    let f = r.file(&c.path);
    assert_eq!(f["change"], "replaced");
    assert_eq!(f["rest_of"]["lines"], 15);
    append(&c.path, lines(30..32).as_bytes());
    let r = c.read();
    assert_eq!((r.seqs.len(), r.rotations), (2, 0));
    c.assert_read_once(0..32);
    assert_eq!(c.rotations, 1);
}

/// Renamed without a new file (logrotate `nocreate`): a run while the path is missing sees
/// no file and keeps the position; when the writer creates the file, the rest is read.
#[test]
fn rename_without_create_keeps_the_position_while_the_file_is_missing() {
    let mut c = Case::new();
    let conf = c.logrotate_conf("nocreate");
    append(&c.path, lines(0..10).as_bytes());
    c.read();
    append(&c.path, lines(10..20).as_bytes());
    c.logrotate(&conf);
    assert!(!c.path.exists());
    let r = c.read();
    assert_eq!((r.result["files"].as_u64(), r.seqs.len()), (Some(0), 0));
    std::fs::write(&c.path, lines(20..25)).unwrap();
    let r = c.read();
    assert_eq!(r.rotations, 1);
    assert_eq!(r.seqs, (10..25).collect::<Vec<_>>());
    c.assert_read_once(0..25);
}

#[test]
fn plain_truncate_is_a_rotation_and_reading_restarts_at_zero() {
    let mut c = Case::new();
    append(&c.path, lines(0..20).as_bytes());
    c.read();
    // Truncated to nothing: nothing to read yet, but a rotation.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&c.path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let r = c.read();
    assert_eq!((r.seqs.len(), r.rotations), (0, 1), "{:#}", r.result);
    assert_eq!(r.file(&c.path)["change"], "truncated");
    // Then written again, shorter than before: read from 0, no second rotation.
    append(&c.path, lines(20..23).as_bytes());
    let r = c.read();
    assert_eq!((r.seqs, r.rotations), ((20..23).collect(), 0));
    // Truncated and refilled shorter than the old offset before the next read.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&c.path)
        .unwrap();
    f.set_len(0).unwrap();
    append(&c.path, lines(23..24).as_bytes());
    let r = c.read();
    assert_eq!((r.seqs, r.rotations), (vec![23], 1), "{:#}", r.result);
    c.assert_read_once(0..24);
    assert_eq!(c.rotations, 2);
}

#[test]
fn truncate_then_rewrite_larger_between_two_reads_is_detected() {
    let mut c = Case::new();
    append(&c.path, lines(0..10).as_bytes());
    c.read();
    let ino = inode(&c.path);
    // Same inode, now longer than the saved offset: only the first bytes tell.
    std::fs::write(&c.path, lines(10..40)).unwrap();
    assert_eq!(inode(&c.path), ino);
    let r = c.read();
    assert_eq!(r.rotations, 1, "{:#}", r.result);
    assert_eq!(r.file(&c.path)["change"], "rewritten");
    assert_eq!(r.seqs, (10..40).collect::<Vec<_>>());
    append(&c.path, lines(40..45).as_bytes());
    let r = c.read();
    assert_eq!((r.seqs.len(), r.rotations), (5, 0));
    c.assert_read_once(0..45);
}

#[test]
fn delete_and_recreate_is_detected_with_or_without_inode_reuse() {
    let mut c = Case::new();
    let mut next = 0;
    let mut reused = 0;
    // Recreated shorter and longer than the saved offset, several times: the inode is
    // often reused (then only size and first bytes tell), sometimes not.
    for (round, count) in [3u64, 30, 1, 50, 2, 40].into_iter().enumerate() {
        append(&c.path, lines(next..next + 10).as_bytes());
        next += 10;
        c.read();
        let old = inode(&c.path);
        std::fs::remove_file(&c.path).unwrap();
        std::fs::write(&c.path, lines(next..next + count)).unwrap();
        next += count;
        let same = inode(&c.path) == old;
        reused += u32::from(same);
        let r = c.read();
        assert_eq!(r.rotations, 1, "round {round}: {:#}", r.result);
        let change = &r.file(&c.path)["change"];
        if same {
            assert!(change == "truncated" || change == "rewritten", "{change}");
        } else {
            assert_eq!(change, "replaced");
        }
        assert_eq!(r.seqs.len() as u64, count, "round {round}: {:#}", r.result);
    }
    // Replaced by a file made before the old one is deleted: the inode cannot be reused.
    append(&c.path, lines(next..next + 10).as_bytes());
    next += 10;
    c.read();
    let fresh = c.dir().join("app.jsonl.tmp");
    std::fs::write(&fresh, lines(next..next + 5)).unwrap();
    next += 5;
    std::fs::remove_file(&c.path).unwrap();
    std::fs::rename(&fresh, &c.path).unwrap();
    let r = c.read();
    assert_eq!((r.seqs.len(), r.rotations), (5, 1));
    assert_eq!(r.file(&c.path)["change"], "replaced");
    c.assert_read_once(0..next);
    assert_eq!(c.rotations, 7);
    eprintln!("inode reused in {reused} of 6 recreations");
}

#[test]
fn a_partial_line_is_counted_once_when_complete() {
    let mut c = Case::new();
    let l3 = line(3);
    let (head, tail) = l3.split_at(l3.len() / 2);
    append(&c.path, format!("{}{head}", lines(0..3)).as_bytes());
    let r = c.read();
    assert_eq!(r.seqs, vec![0, 1, 2], "the half line waits");
    let r = c.read();
    assert!(r.seqs.is_empty(), "still waiting");
    append(&c.path, format!("{tail}{}", line(4)).as_bytes());
    let r = c.read();
    assert_eq!(r.seqs, vec![3, 4]);
    // Completed just before a rename: read once, from the renamed file.
    let l5 = line(5);
    let (head, tail) = l5.split_at(10);
    append(&c.path, head.as_bytes());
    assert!(c.read().seqs.is_empty());
    append(&c.path, tail.as_bytes());
    c.rename_create("1");
    let r = c.read();
    assert_eq!((r.seqs, r.rotations), (vec![5], 1));
    c.assert_read_once(0..6);
}

#[test]
fn a_huge_line_is_counted_once_as_oversized() {
    let mut c = Case::new();
    c.max_line_bytes = 1000;
    let huge = format!(
        "{{\"seq\":1,\"pad\":\"{}\"}}\n",
        "x".repeat(3 * c.max_line_bytes as usize)
    );
    let (head, tail) = huge.split_at(2 * c.max_line_bytes as usize);
    // Already over the limit, but not complete: not counted yet.
    append(&c.path, format!("{}{head}", line(0)).as_bytes());
    let r = c.read();
    assert_eq!(r.seqs, vec![0]);
    assert_eq!(r.result["oversized"], 0);
    append(&c.path, format!("{tail}{}", line(2)).as_bytes());
    let r = c.read();
    assert_eq!(r.seqs, vec![2]);
    assert_eq!(r.result["oversized"], 1);
    assert!(c.read().result["lines"] == 0, "nothing new");
    // A rotation after it does not count it again.
    append(&c.path, line(3).as_bytes());
    c.rename_create("1");
    append(&c.path, line(4).as_bytes());
    let r = c.read();
    assert_eq!((r.seqs, r.rotations), (vec![3, 4], 1));
    assert_eq!(c.oversized, 1);
    c.assert_read_once([0, 2, 3, 4]);
}

/// Without `last` (a plain count), a new range of 8 MiB or more is split among workers; a
/// last line still being written that covers a whole worker's share must wait all the same.
#[test]
fn a_long_partial_line_in_a_split_read_waits_until_complete() {
    let c = Case::new();
    let first = line(0);
    let head = format!("{{\"seq\":1,\"pad\":\"{}", "x".repeat(9 << 20));
    append(&c.path, format!("{first}{head}").as_bytes());
    let r = c.probe(&c.db, &[]);
    let f = &r["per_file"][c.path.to_str().unwrap()];
    assert_eq!(
        (&r["lines"], &r["oversized"], &f["to"]),
        (&1.into(), &0.into(), &first.len().into()),
        "the position must stay before the unfinished line: {r:#}"
    );
    append(&c.path, format!("\"}}\n{}", line(2)).as_bytes());
    let r = c.probe(&c.db, &[]);
    assert_eq!(
        (&r["lines"], &r["oversized"], &r["malformed"]),
        (&2.into(), &1.into(), &0.into()),
        "the finished line is one oversized line: {r:#}"
    );
}

#[test]
fn a_new_process_continues_mid_file_from_the_db() {
    let mut c = Case::new();
    append(&c.path, lines(0..100).as_bytes());
    let first = c.read();
    let to = first.file(&c.path)["to"].as_u64().unwrap();
    append(&c.path, lines(100..150).as_bytes());
    let second = c.read();
    let f = second.file(&c.path);
    assert_eq!(f["change"], "same");
    assert_eq!(
        f["from"].as_u64(),
        Some(to),
        "continues where the last run stopped"
    );
    assert_eq!(second.seqs, (100..150).collect::<Vec<_>>());
    c.assert_read_once(0..150);
    // The position is in the DB, not in the file: another DB starts over.
    let fresh = c.read_with(&c.dir().join("other.db"));
    assert_eq!(fresh["lines"], 150);
}

#[test]
fn one_rotation_while_stopped_loses_nothing() {
    let mut c = Case::new();
    let conf = c.logrotate_conf("create");
    append(&c.path, lines(0..50).as_bytes());
    c.read();
    // Many files' worth of writes on both sides of one rotation, none read in between.
    append(&c.path, lines(50..5000).as_bytes());
    c.logrotate(&conf);
    append(&c.path, lines(5000..10_000).as_bytes());
    let r = c.read();
    assert_eq!(r.rotations, 1);
    assert_eq!(r.seqs, (50..10_000).collect::<Vec<_>>());
    c.assert_read_once(0..10_000);
}

#[test]
fn one_copytruncate_while_stopped_loses_nothing() {
    let mut c = Case::new();
    let conf = c.logrotate_conf("copytruncate");
    append(&c.path, lines(0..50).as_bytes());
    c.read();
    append(&c.path, lines(50..3000).as_bytes());
    c.logrotate(&conf);
    append(&c.path, lines(3000..6000).as_bytes());
    let r = c.read();
    assert_eq!(r.rotations, 1);
    assert_eq!(r.file(&c.path)["change"], "rewritten");
    assert_eq!(r.seqs, (50..6000).collect::<Vec<_>>());
    c.assert_read_once(0..6000);
}

/// The documented limit: after two rotations between reads, the middle file is not read
/// (nothing else is lost, nothing is read twice, and one rotation is counted).
#[test]
fn two_rotations_while_stopped_lose_exactly_the_middle_file() {
    let mut c = Case::new();
    let conf = c.logrotate_conf("create");
    append(&c.path, lines(0..10).as_bytes());
    c.read();
    append(&c.path, lines(10..20).as_bytes());
    c.logrotate(&conf);
    append(&c.path, lines(20..30).as_bytes());
    c.logrotate(&conf);
    append(&c.path, lines(30..40).as_bytes());
    let r = c.read();
    assert_eq!(r.rotations, 1);
    assert!(
        r.file(&c.path)["rest_of"]["path"]
            .as_str()
            .unwrap()
            .ends_with("app.jsonl.2")
    );
    c.assert_read_once((0..20).chain(30..40));
}
