//! The wall clock jumps while escalation timers run (issue 9, fault injection): each level of
//! the ladder fires exactly once, never before its time by the clock of the moment it fires,
//! and a level passed over by a forward jump is recorded `skipped`, never sent later.
//!
//! Two ways: `runbook tick --now T` with a sequence of times that jumps forwards over several
//! levels, backwards before the incident opened, and forwards again (deterministic); and a
//! running `runbook serve` whose wall clock is stepped like an NTP step by libfaketime
//! (`LD_PRELOAD`, `FAKETIME_TIMESTAMP_FILE` re-read at every call, the monotonic clock left
//! alone), which needs Debian's `faketime` package and skips, saying so, without it.
//!
//! The policy is the seed's (ladder p3e: L1 at once, L2 after 30 min, L3 after 2 h, L4 after
//! 4 h) with its webhooks pointed at a loopback server that records what it receives.

mod cli_case;
mod db_rows;
mod hooks;
mod record;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use cli_case::{CliCase, text};
use db_rows::rows;

/// The loopback server standing in for the policy's webhooks.
type Receiver = hooks::Hooks;

impl Receiver {
    /// How many deliveries to `path` name level `id` (`at L2 (`).
    fn count(&self, path: &str, level: &str) -> usize {
        let needle = format!("at {level} (");
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, body)| {
                p == path
                    && body["message"]
                        .as_str()
                        .or(body["text"].as_str())
                        .is_some_and(|m| m.contains(&needle))
            })
            .count()
    }

    /// Deliveries per level to each channel: `[(ops, slack)]` for L1..L4.
    fn per_level(&self) -> Vec<(usize, usize)> {
        ["L1", "L2", "L3", "L4"]
            .iter()
            .map(|l| (self.count(OPS, l), self.count(SLACK, l)))
            .collect()
    }

    fn total(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

const OPS: &str = "/hooks/runbook";
const SLACK: &str = "/services/T0/secret";

/// P1, ladder p3e, one check that always fails: a problem nothing here fixes.
const RUNBOOK: &str = r#"runbook: stuck
title: Stuck
severity: P1
checks:
  - id: ok_file
    probe: file
    with: { path: /nonexistent/runbook-clock-jumps/ok }
    expect: "exists"
escalation: { ladder: p3e }
"#;

/// A case whose policy's webhooks post to `rx`.
fn case(rx: &Receiver) -> CliCase {
    let base = format!("http://{}", rx.addr);
    CliCase::new("stuck.yaml", RUNBOOK, |policy| {
        let policy = policy
            .replace(
                "http://127.0.0.1:9097/hooks/runbook",
                &format!("{base}{OPS}"),
            )
            .replace(
                "http://127.0.0.1:9096/services/aurora-incidents",
                &format!("{base}{SLACK}"),
            );
        assert!(policy.contains(&base), "the seed policy's channels moved");
        policy
    })
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `opened ± offset` (`31m`, `-1h`) in RFC 3339.
fn at(opened: DateTime<Utc>, offset: &str) -> String {
    let (sign, d) = match offset.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, offset),
    };
    let d = chrono::Duration::from_std(humantime::parse_duration(d).unwrap()).unwrap();
    let t = if sign < 0 { opened - d } else { opened + d };
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// (`level_id`, state) of every escalation row, in level order, and each fired row's
/// `due_at <= fired_at` checked: a level never fires before its time by the clock that fired
/// it.
fn levels(db: &Path) -> Vec<(String, String)> {
    let all = rows(
        db,
        "SELECT level_id, state, due_at, fired_at FROM escalations ORDER BY level, id",
    );
    for r in &all {
        if r[1] == "fired" {
            assert!(
                time(&r[2]) <= time(&r[3]),
                "{} fired at {} before it was due at {}",
                r[0],
                r[3],
                r[2]
            );
        }
    }
    all.into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The only open incident's `opened_at`.
fn opened(case: &CliCase) -> DateTime<Utc> {
    let list = case.json(&["incidents"]);
    let list = list["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    time(list[0]["opened_at"].as_str().unwrap())
}

#[test]
fn tick_with_a_clock_that_jumps_both_ways_fires_each_level_once_and_never_early() {
    let rx = Receiver::with(hooks::record);
    let case = case(&rx);
    let (code, out) = case.cli(&["run", "stuck"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("escalated to L1"), "{out}");
    let opened = opened(&case);
    assert_eq!(rx.per_level()[0], (1, 0), "L1 goes to ops only");

    // (clock, the levels this tick fires, the levels it records skipped)
    let steps: &[(&str, &[&str], &[&str])] = &[
        ("-1h", &[], &[]),          // backwards, before the incident opened
        ("2h1m", &["L3"], &["L2"]), // forwards over L2 and L3 at once
        ("2h1m", &[], &[]),         // the same time again
        ("-30m", &[], &[]),         // backwards again
        ("31m", &[], &[]),          // L2's time, now that L2 was passed over
        ("1h59m", &[], &[]),        // just before L3's time, which has fired
        ("4h", &["L4"], &[]),       // L4 exactly at its time
        ("-10h", &[], &[]),         // far backwards
        ("4h", &[], &[]),           // forwards to L4's time once more
        ("30h", &[], &[]),          // far forwards: nothing is left
    ];
    for (offset, fires, skips) in steps {
        let now = at(opened, offset);
        let doc = case.json(&["tick", "--now", &now]);
        assert_eq!(doc["exit_code"], 0, "{doc}");
        let fired = doc["escalations"]["fired"].as_array().unwrap();
        let ids: Vec<&str> = fired
            .iter()
            .map(|f| f["level_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, *fires, "at {offset}: {doc}");
        for f in fired {
            assert_eq!(f["fired_at"], now.as_str(), "{f}");
            assert!(
                time(f["due_at"].as_str().unwrap()) <= time(&now),
                "fired early at {offset}: {f}"
            );
            assert_eq!(f["skipped"], serde_json::json!(skips), "at {offset}: {f}");
        }
    }
    assert_eq!(
        levels(&case.db()),
        pairs(&[
            ("L1", "fired"),
            ("L2", "skipped"),
            ("L3", "fired"),
            ("L4", "fired")
        ])
    );
    assert_eq!(
        rx.per_level(),
        [(1, 0), (0, 0), (1, 1), (1, 1)],
        "deliveries per level (ops, slack)"
    );
    assert_eq!(rx.total(), 5);
    let (code, out) = case.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    record::row(
        file!(),
        "tick_with_a_clock_that_jumps_both_ways_fires_each_level_once_and_never_early",
        "`runbook tick --now` walked backwards and forwards across a 4-level ladder",
        &format!(
            "{} ticks, {} of them backwards",
            steps.len(),
            steps.iter().filter(|s| s.0.starts_with('-')).count()
        ),
        "each level fired once, never before its time; a level passed over recorded skipped, not sent; `audit verify` ok",
    );
}

/// Where libfaketime is, if its package is installed.
fn libfaketime() -> Option<PathBuf> {
    let fixed = [
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    fixed
        .iter()
        .map(PathBuf::from)
        .chain(
            glob::glob("/usr/lib/*/faketime/libfaketime.so.1")
                .unwrap()
                .flatten(),
        )
        .find(|p| p.exists())
}

/// `runbook serve` under libfaketime; killed and reaped on drop.
struct Serve {
    child: Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// `runbook serve` on `case` under `clock`, its stderr in `serve.log`; waits (bounded)
    /// for `listening on`. Returns the server and its log's path.
    fn start(case: &CliCase, clock: &FakeClock) -> (Serve, PathBuf) {
        let log = case.path("serve.log");
        let mut cmd = case.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        clock.apply(&mut cmd);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut serve = Serve { child };
        let stdout = serve.child.stdout.take().unwrap();
        let (tx, first) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = first
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        assert!(
            line.starts_with("listening on http://127.0.0.1:"),
            "first line {line:?}; stderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        (serve, log)
    }
}

/// The fake clock: a `FAKETIME_TIMESTAMP_FILE` holding an offset from the real time.
struct FakeClock {
    lib: PathBuf,
    file: PathBuf,
    /// How many times [`FakeClock::set`] stepped it.
    steps: std::cell::Cell<usize>,
}

impl FakeClock {
    /// Step the wall clock to real time + `offset` (`31m`, `-29m`, `2h1m`). libfaketime takes
    /// one unit only (`+2h1m` reads as two minutes), so the file holds seconds. Written beside
    /// and renamed over, so a reader never sees half a file.
    fn set(&self, offset: &str) {
        let (sign, d) = match offset.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("+", offset),
        };
        let secs = humantime::parse_duration(d).unwrap().as_secs();
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{sign}{secs}\n")).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
        self.steps.set(self.steps.get() + 1);
    }

    /// `cmd` under the fake clock: only the wall clock is faked, re-read at every call.
    fn apply(&self, cmd: &mut std::process::Command) {
        cmd.env("LD_PRELOAD", &self.lib)
            .env("FAKETIME_TIMESTAMP_FILE", &self.file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env_remove("FAKETIME");
    }
}

/// The timer loop of `runbook serve` looks every 10 s; a level due is sent within this.
const FIRE_WAIT: Duration = Duration::from_secs(40);
/// Long enough for the timer loop to have looked at least once (its period and slack).
const ONE_TIMER_PERIOD: Duration = Duration::from_secs(12);

/// Wait (bounded) until `done` holds; false if it never did.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn a_running_server_whose_wall_clock_steps_both_ways_fires_each_level_once() {
    // Like every test here whose tool is missing: fail, saying what to install.
    let lib = libfaketime().expect(
        "libfaketime is not installed (Debian package `faketime`: apt-get install faketime); \
         the wall-clock step test needs it",
    );
    let rx = Receiver::with(hooks::record);
    let case = case(&rx);
    let clock = FakeClock {
        lib,
        file: case.path("faketime"),
        steps: std::cell::Cell::new(0),
    };
    clock.set("0s");

    let (serve, log) = Serve::start(&case, &clock);

    // Open the incident under the same clock: the run fires L1 itself.
    let mut run = case.cmd(&["run", "stuck"]);
    clock.apply(&mut run);
    let out = run.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("escalated to L1"), "{}", text(&out));
    let opened = opened(&case);
    let real = Utc::now();
    assert!(
        (opened - real).num_minutes().abs() < 5,
        "opened {opened} under a +0 fake clock, real {real}"
    );

    // A step forwards past L2 (due 30 min after opening): the server fires it.
    clock.set("31m");
    assert!(
        wait_until(FIRE_WAIT, || rx.count(OPS, "L2") > 0),
        "L2 never fired after the clock stepped 31 min forwards: libfaketime did not \
         reach the binary's clock? stderr:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Back by an hour (before the incident opened): the timer looks, nothing fires.
    clock.set("-29m");
    std::thread::sleep(ONE_TIMER_PERIOD);
    assert_eq!(rx.per_level(), [(1, 0), (1, 1), (0, 0), (0, 0)]);
    // Forwards again, past L3 (2 h): L3 fires, L2 not again.
    clock.set("2h1m");
    assert!(
        wait_until(FIRE_WAIT, || rx.count(OPS, "L3") > 0),
        "L3 never fired; stderr:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Back to L2's time, then past L4 (4 h).
    clock.set("31m");
    std::thread::sleep(ONE_TIMER_PERIOD);
    clock.set("4h1m");
    assert!(
        wait_until(FIRE_WAIT, || rx.count(OPS, "L4") > 0),
        "L4 never fired; stderr:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Once more backwards and forwards to the same time: nothing is left to fire.
    clock.set("-1h");
    std::thread::sleep(ONE_TIMER_PERIOD);
    clock.set("4h1m");
    std::thread::sleep(ONE_TIMER_PERIOD);

    assert_eq!(
        rx.per_level(),
        [(1, 0), (1, 1), (1, 1), (1, 1)],
        "deliveries per level (ops, slack)"
    );
    assert_eq!(rx.total(), 7);
    assert_eq!(
        levels(&case.db()),
        pairs(&[
            ("L1", "fired"),
            ("L2", "fired"),
            ("L3", "fired"),
            ("L4", "fired")
        ])
    );
    assert_eq!(
        rows(
            &case.db(),
            "SELECT COUNT(*) FROM notifications WHERE status = 'ok'"
        ),
        [["8"]],
        "L1 to stdout and ops, then ops and slack for each of L2, L3, L4"
    );
    drop(serve);
    let (code, out) = case.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    record::row(
        file!(),
        "a_running_server_whose_wall_clock_steps_both_ways_fires_each_level_once",
        "the wall clock of a running `serve` stepped like an NTP step (libfaketime), monotonic clock untouched",
        &format!("{} steps, both ways", clock.steps.get() - 1),
        "each of L1 to L4 delivered once and recorded once; `audit verify` ok",
    );
}
