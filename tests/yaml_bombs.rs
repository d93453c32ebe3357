//! Hostile runbook files against the loader's resource limits (`src/runbook/load.rs`).
//!
//! Each bomb is generated into a temporary directory, inside an otherwise valid runbook (under a
//! probe's free-form `with:`, read as a `Node`) so the parser reaches the bomb instead of failing
//! on the first unknown key. The real binary must exit 2 with the code and limit named, point at
//! the file (and `line:col` when the parser gives one), show no panic or signal, and peak under
//! [`MAX_RSS_KIB`]. No test here looks at wall time: `benches/yaml_bombs/bombs.sh` prints that.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

mod record;

/// Peak resident memory a refusal may take, in KiB (64 MiB).
const MAX_RSS_KIB: u64 = 64 * 1024;
/// Exit status for invalid input (`src/exit.rs`).
const INVALID: i32 = 2;
/// Bytes in the huge scalar.
const HUGE_SCALAR_BYTES: usize = 100 * 1024 * 1024;
/// Bound on `/proc` polling when `/usr/bin/time` is absent: 6,000 polls of 10 ms.
const MAX_POLLS: u32 = 6_000;
/// GNU time, which reports the child's peak RSS (`%M`, KiB).
const GNU_TIME: &str = "/usr/bin/time";

/// What one run of the binary did.
struct Outcome {
    status: ExitStatus,
    /// Stdout then stderr.
    output: String,
    /// Peak RSS in KiB.
    peak_kib: u64,
}

/// A runbook named `name` whose `http` check's `with:` holds `with_body` (lines indented six
/// spaces), followed by `tail`.
fn runbook_text(name: &str, with_body: &str, tail: &str) -> String {
    format!(
        "runbook: {name}\ntitle: Broken on purpose\nseverity: P1\nchecks:\n  - id: healthz\n    \
         probe: http\n    with:\n      url: \"http://127.0.0.1:8001/healthz\"\n{with_body}    \
         expect: \"status == 200\"\n{tail}"
    )
}

/// Ten levels of ten aliases: 10^10 nodes if expanded.
fn billion_laughs() -> String {
    let mut body =
        String::from("      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        let _ = writeln!(body, "      l{i}: &l{i} [{refs}]");
    }
    body
}

/// Ten levels of mappings, each merging (`<<: *prev`) the previous level ten times.
fn merge_bomb() -> String {
    let mut body = String::from(
        "      m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}\n",
    );
    for i in 1..10 {
        let keys: Vec<String> = (0..10)
            .map(|k| format!("k{k}: {{<<: *m{}}}", i - 1))
            .collect();
        let _ = writeln!(body, "      m{i}: &m{i} {{{}}}", keys.join(", "));
    }
    body
}

fn deep_flow() -> String {
    format!("      deep: {}{}\n", "[".repeat(10_000), "]".repeat(10_000))
}

/// `- - - … x`: 10,000 nested block sequences on one line (indented lines would be 100 MB).
fn deep_block() -> String {
    format!("      deep:\n        {}x\n", "- ".repeat(10_000))
}

fn many_documents() -> String {
    (0..10_000).fold(String::new(), |mut s, i| {
        let _ = write!(s, "---\nrunbook: doc{i}\ntitle: t\nseverity: P1\n");
        s
    })
}

fn write_bomb(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write bomb");
    path
}

/// A runbook whose `title` is a 100 MB scalar, written in 1 MiB chunks.
fn write_huge_scalar(dir: &Path) -> PathBuf {
    let path = dir.join("huge-scalar.yaml");
    let mut out = BufWriter::new(File::create(&path).expect("create"));
    write_huge_scalar_to(&mut out).expect("write huge scalar");
    out.flush().expect("flush");
    path
}

fn write_huge_scalar_to(out: &mut impl Write) -> std::io::Result<()> {
    let chunk = vec![b'x'; 1024 * 1024];
    out.write_all(b"runbook: huge-scalar\nseverity: P1\ntitle: \"")?;
    for _ in 0..HUGE_SCALAR_BYTES / chunk.len() {
        out.write_all(&chunk)?;
    }
    out.write_all(b"\"\n")
}

/// Run the binary with `args`, feeding `stdin` (if any) from a thread, and measure its peak RSS.
fn run(args: &[&str], env_dir: &Path, stdin: Option<fn(&mut dyn Write)>) -> Outcome {
    let bin = env!("CARGO_BIN_EXE_runbook");
    let timed = Path::new(GNU_TIME).is_file();
    let rss_file = env_dir.join("rss.txt");
    let mut cmd = if timed {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .env("RUNBOOK_DB", env_dir.join("audit.db"))
        .env("XDG_STATE_HOME", env_dir)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn runbook");
    let feeder = stdin.map(|feed| {
        let mut pipe = child.stdin.take().expect("stdin");
        // The child stops reading at its limit; the write then fails with a broken pipe.
        std::thread::spawn(move || feed(&mut pipe))
    });
    // `validate` reports on stdout, `plan` and `run` on stderr: read both, concurrently.
    let stdout_pipe = child.stdout.take().expect("stdout");
    let stderr_pipe = child.stderr.take().expect("stderr");
    let out_reader =
        std::thread::spawn(move || std::io::read_to_string(stdout_pipe).unwrap_or_default());
    let err_reader =
        std::thread::spawn(move || std::io::read_to_string(stderr_pipe).unwrap_or_default());
    let mut peak_kib = 0;
    if !timed {
        // Sample VmHWM (the kernel's own high-water mark) until the child exits, bounded.
        for _ in 0..MAX_POLLS {
            if let Some(kib) = vm_hwm_kib(child.id()) {
                peak_kib = peak_kib.max(kib);
            }
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let status = child.wait().expect("wait");
    let mut output = out_reader.join().expect("stdout reader");
    output.push_str(&err_reader.join().expect("stderr reader"));
    if let Some(f) = feeder {
        f.join().expect("stdin feeder");
    }
    if timed {
        let report = std::fs::read_to_string(&rss_file).expect("read /usr/bin/time output");
        // Only GNU time's own lines go to `-o`: a signal shows up here as well as in the status.
        if report.contains("terminated by signal") {
            output.push_str(&report);
        }
        peak_kib = report
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .expect("peak RSS line from /usr/bin/time");
    }
    Outcome {
        status,
        output,
        peak_kib,
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Exit 2, no crash, the wanted fragments in the output, peak RSS under the cap.
fn assert_refused(what: &str, out: &Outcome, wanted: &[&str]) {
    assert!(
        !out.output.contains("panicked") && !out.output.contains("terminated by signal"),
        "{what}: crashed:\n{}",
        out.output
    );
    assert_eq!(
        out.status.code(),
        Some(INVALID),
        "{what}: status {:?}, output:\n{}",
        out.status,
        out.output
    );
    for w in wanted {
        assert!(
            out.output.contains(w),
            "{what}: output lacks `{w}`:\n{}",
            out.output
        );
    }
    assert!(out.peak_kib > 0, "{what}: no peak RSS measured");
    assert!(
        out.peak_kib < MAX_RSS_KIB,
        "{what}: peak RSS {} KiB is over {MAX_RSS_KIB} KiB",
        out.peak_kib
    );
    eprintln!("{what}: exit 2, peak {} KiB", out.peak_kib);
}

/// `validate` on a bomb named `name`: refused with `code`, located at `file:line:col`, with
/// `limit` in the message.
fn validate_bomb(name: &str, body: &str, tail: &str, code: &str, limit: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_bomb(dir.path(), name, &runbook_text(name, body, tail));
    let path_str = path.to_str().expect("utf-8 path");
    let out = run(&["validate", path_str], dir.path(), None);
    let located = format!("{code} {path_str}:");
    assert_refused(name, &out, &[&located, limit]);
}

#[test]
fn billion_laughs_is_refused_as_alias_bomb() {
    validate_bomb(
        "billion-laughs",
        &billion_laughs(),
        "",
        "alias-bomb",
        "alias expansion too large",
    );
    record::row(
        file!(),
        "billion_laughs_is_refused_as_alias_bomb",
        "`validate` a billion-laughs runbook",
        &{
            let text = billion_laughs();
            let levels = text.lines().count();
            let fan_out = text.matches("*l0").count();
            format!("{levels} levels of {fan_out} aliases: {fan_out}^{levels} nodes if expanded")
        },
        "exit 2 `alias-bomb`, located at file:line:col, the limit named; no panic; peak RSS under 64 MiB",
    );
}

#[test]
fn merge_key_bomb_is_refused_as_alias_bomb() {
    validate_bomb(
        "merge-bomb",
        &merge_bomb(),
        "",
        "alias-bomb",
        "alias expansion too large",
    );
    record::row(
        file!(),
        "merge_key_bomb_is_refused_as_alias_bomb",
        "`validate` a merge-key (`<<: *prev`) bomb",
        &{
            let text = merge_bomb();
            let levels = text.lines().count();
            let fan_out = text.matches("*m0").count();
            format!("{levels} levels of mappings, each merging the previous {fan_out} times")
        },
        "exit 2 `alias-bomb`, located at file:line:col, the limit named; no panic; peak RSS under 64 MiB",
    );
}

#[test]
fn deep_flow_nesting_is_refused_as_too_deep() {
    validate_bomb(
        "deep-flow",
        &deep_flow(),
        "",
        "too-deep",
        "nesting too deep: over the limit of 24",
    );
    record::row(
        file!(),
        "deep_flow_nesting_is_refused_as_too_deep",
        "`validate` flow nesting `[[[…]]]`",
        &format!("{} levels", deep_flow().matches('[').count()),
        "exit 2 `too-deep`, located at file:line:col, the limit named; no panic; peak RSS under 64 MiB",
    );
}

#[test]
fn deep_block_nesting_is_refused_as_too_deep() {
    validate_bomb(
        "deep-block",
        &deep_block(),
        "",
        "too-deep",
        "nesting too deep: depth 25 is over the limit of 24",
    );
    record::row(
        file!(),
        "deep_block_nesting_is_refused_as_too_deep",
        "`validate` block nesting `- - - …`",
        &format!("{} levels", deep_block().matches("- ").count()),
        "exit 2 `too-deep`, located at file:line:col, the limit named; no panic; peak RSS under 64 MiB",
    );
}

#[test]
fn ten_thousand_documents_are_refused() {
    validate_bomb(
        "many-documents",
        "",
        &many_documents(),
        "multiple-documents",
        "more than one YAML document in the file",
    );
    record::row(
        file!(),
        "ten_thousand_documents_are_refused",
        "`validate` a file of many YAML documents",
        &format!("{} documents", many_documents().matches("---").count()),
        "exit 2 `multiple-documents`, located at file:line:col, the limit named; no panic; peak RSS under 64 MiB",
    );
}

#[test]
fn huge_scalar_file_is_refused_by_size_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_huge_scalar(dir.path());
    let path_str = path.to_str().expect("utf-8 path");
    let out = run(&["validate", path_str], dir.path(), None);
    let size = format!(
        "`{path_str}` is {} bytes; a runbook file may be at most 1048576 bytes",
        std::fs::metadata(&path).expect("metadata").len()
    );
    assert_refused("huge-scalar", &out, &["file-too-large", &size]);
    record::row(
        file!(),
        "huge_scalar_file_is_refused_by_size_before_reading",
        "`validate` a runbook whose title is one huge scalar",
        &format!("{} MiB file", HUGE_SCALAR_BYTES / (1024 * 1024)),
        "exit 2 `file-too-large` from its size, before reading; peak RSS under 64 MiB",
    );
}

/// A pipe has no length to check first: the loader must stop reading at the limit.
#[test]
fn huge_scalar_through_a_pipe_is_refused_at_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed: fn(&mut dyn Write) = |w| {
        let _ = write_huge_scalar_to(&mut { w });
    };
    let out = run(&["validate", "/dev/stdin"], dir.path(), Some(feed));
    assert_refused(
        "huge-scalar-pipe",
        &out,
        &[
            "file-too-large",
            "`/dev/stdin` is over 1048576 bytes; a runbook file may be at most 1048576 bytes",
        ],
    );
    record::row(
        file!(),
        "huge_scalar_through_a_pipe_is_refused_at_the_limit",
        "the same scalar through a pipe (no size to check first)",
        &format!("{} MiB offered", HUGE_SCALAR_BYTES / (1024 * 1024)),
        "exit 2 `file-too-large` after reading 1 MiB + 1 byte; peak RSS under 64 MiB",
    );
}

/// `plan` and `run` load through the same catalog: a bomb in the runbook dir stops them too.
#[test]
fn plan_and_run_refuse_a_bomb_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rb_dir = dir.path().join("runbooks");
    std::fs::create_dir(&rb_dir).expect("mkdir");
    let name = "billion-laughs";
    let path = write_bomb(&rb_dir, name, &runbook_text(name, &billion_laughs(), ""));
    let located = format!("alias-bomb {}:", path.display());
    let rb_dir = rb_dir.to_str().expect("utf-8 path");
    let runs: [&[&str]; 2] = [
        &["--runbooks", rb_dir, "plan", name],
        &["--runbooks", rb_dir, "run", name, "--dry-run"],
    ];
    for args in runs {
        let out = run(args, dir.path(), None);
        assert_refused(args[2], &out, &[&located, "alias expansion too large"]);
    }
}
