//! `runbook probe jsonl --follow`: the real binary follows files in a temp dir while the test
//! appends, rotates and truncates them; the interval reports must add up to exactly what was
//! written after the follow began — with inotify, and with the polling watcher.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use insta_cmd::get_cargo_bin;
use serde_json::Value;

/// Reports of a follow, read on a thread so every wait is bounded.
struct Follow {
    child: std::process::Child,
    reports: mpsc::Receiver<Value>,
}

impl Follow {
    fn start(dir: &Path, count: u32, poll: bool) -> Follow {
        let mut cmd = Command::new(get_cargo_bin("runbook"));
        cmd.args(["probe", "jsonl", "--with"])
            .arg(format!("path={}/*.jsonl", dir.display()))
            .args([
                "--follow",
                "--interval",
                "300ms",
                "--count",
                &count.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if poll {
            cmd.arg("--poll");
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, reports) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("a report is one JSON line");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Follow { child, reports }
    }

    fn next(&self) -> Value {
        self.reports
            .recv_timeout(Duration::from_secs(10))
            .expect("a report within 10 s")
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(from: u32, to: u32) -> String {
    let mut out = String::new();
    for i in from..to {
        let _ = writeln!(out, "{{\"seq\":{i}}}");
    }
    out
}

fn follow_adds_up(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    // Already there when the follow starts: not news, like `tail -F`.
    append(&log, &lines(0, 500));
    let reports = 8;
    let f = Follow::start(dir.path(), reports, poll);
    let mut seen = vec![f.next()];
    assert_eq!(seen[0]["lines"], 0, "{}", seen[0]);
    let watcher = if poll { "poll" } else { "inotify" };
    assert_eq!(seen[0]["watcher"], watcher);

    // 1000 lines, a malformed one, a line written in two halves, a rename+create rotation
    // with lines written to the old file after the rename, then more lines.
    append(&log, &lines(500, 1500));
    append(&log, "{\"seq\": 1500, broken\n");
    append(&log, "{\"seq\":");
    std::thread::sleep(Duration::from_millis(400));
    append(&log, "1501}\n");
    std::fs::rename(&log, dir.path().join("app.jsonl.1")).unwrap();
    append(&dir.path().join("app.jsonl.1"), &lines(1502, 1510));
    append(&log, &lines(1510, 2000));

    while seen.len() < reports as usize {
        seen.push(f.next());
    }
    let sum = |k: &str| seen.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    // 1000 + broken + the two-halves line + 8 in the renamed file + 490 new.
    assert_eq!(sum("lines"), 1500, "{seen:#?}");
    assert_eq!(sum("malformed"), 1, "{seen:#?}");
    assert_eq!(sum("rotations"), 1, "{seen:#?}");
    let last = seen.last().unwrap();
    assert_eq!(
        last["file_positions"][log.display().to_string()],
        std::fs::metadata(&log).unwrap().len(),
        "{last}"
    );
    assert!(seen.iter().all(|r| r["watcher"] == watcher));
}

#[test]
fn follow_with_inotify_counts_every_new_line_once() {
    follow_adds_up(false);
}

#[test]
fn follow_with_polling_counts_every_new_line_once() {
    follow_adds_up(true);
}

#[test]
fn follow_is_for_jsonl_only_and_needs_a_positive_interval() {
    let out = Command::new(get_cargo_bin("runbook"))
        .args([
            "probe",
            "http",
            "--with",
            "url=http://127.0.0.1:1",
            "--follow",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(get_cargo_bin("runbook"))
        .args([
            "probe",
            "jsonl",
            "--with",
            "path=/nonexistent/*.jsonl",
            "--follow",
        ])
        .args(["--interval", "0s", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interval"));
}
