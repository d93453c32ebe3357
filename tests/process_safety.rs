//! The process runner against real processes: hostile argv arrives byte for byte, values that
//! cannot cross are refused, timeouts kill the whole group (escalating to SIGKILL), nothing is
//! left behind, and output is capped with bounded memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use runbook::host::{DEFAULT_OUTPUT_CAP, HostError, KILL_GRACE, ProcOutput, ProcSpec, run_process};

/// Slack on top of `timeout + KILL_GRACE` for a killed run to return.
const SLACK: Duration = Duration::from_millis(500);

fn spec(argv: &[&str], timeout: Duration) -> ProcSpec {
    ProcSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: IndexMap::new(),
        cwd: None,
        timeout,
        output_cap: DEFAULT_OUTPUT_CAP,
    }
}

fn sh(script: &str, timeout: Duration) -> ProcSpec {
    spec(&["/bin/sh", "-c", script], timeout)
}

/// A fake program that writes each argument it received to `$ARGV_OUT/<index>`, untouched.
fn fake_program(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("print-argv");
    std::fs::write(
        &path,
        "#!/bin/sh\ni=0\nfor a in \"$@\"; do printf '%s' \"$a\" > \"$ARGV_OUT/$i\"; i=$((i+1)); done\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `(pid, state)` of every process in group `pgid`.
fn group_members(pgid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(member) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{member}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields[2].parse::<i32>().ok() == Some(pgid) {
            out.push((member, fields[0].to_owned()));
        }
    }
    out
}

/// Nothing of the group runs any more, and our own child (the leader) was reaped. Orphaned
/// grandchildren belong to init once the leader is gone; in a container whose init does not
/// reap they stay zombies, which run nothing and are not ours.
fn assert_group_gone(pgid: i32) {
    // SIGKILL is delivered at once but a process takes a moment to exit: look again for up
    // to a second (bounded) before calling it a survivor.
    let mut members = group_members(pgid);
    for _ in 0..50 {
        if members.iter().all(|(_, state)| state == "Z") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        members = group_members(pgid);
    }
    let live: Vec<_> = members.iter().filter(|(_, state)| state != "Z").collect();
    assert!(
        live.is_empty(),
        "live processes left in group {pgid}: {live:?}"
    );
    assert!(
        !members.iter().any(|(pid, _)| *pid == pgid),
        "the leader {pgid} was not reaped: {members:?}"
    );
}

fn leader_pid(out: &ProcOutput) -> i32 {
    out.stdout
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in stdout: {out:?}"))
}

#[tokio::test]
async fn hostile_argv_arrives_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_program(dir.path());
    let argv_out = dir.path().join("argv");
    std::fs::create_dir(&argv_out).unwrap();
    let canary = dir.path().join("pwned");
    let canary_s = canary.display().to_string();

    let chunk: String = "0123456789abcdef".repeat(4 * 1024); // 64 KiB
    let mut hostile: Vec<String> = vec![
        format!("; touch {canary_s}"),
        format!("&& touch {canary_s}"),
        format!("| touch {canary_s}"),
        format!("$(touch {canary_s})"),
        format!("`touch {canary_s}`"),
        "$(id)".into(),
        "`id`".into(),
        "${HOME}".into(),
        "$HOME".into(),
        "'single' \"double\" \\backslash".into(),
        "\"unterminated".into(),
        "--help".into(),
        "-rf".into(),
        "/".into(),
        "-rf /".into(),
        "*".into(),
        "~".into(),
        String::new(),
        " leading and trailing ".into(),
        "\ttab".into(),
        "\u{202e}txt.exe\u{202c} RTL override".into(),
        "שלום עולם".into(),
        "مرحبا".into(),
        "emoji 🚀 ünïcödé 日本語".into(),
        "%s%n%x".into(),
        "\u{1b}[31mred\u{1b}[0m".into(),
    ];
    // 1 MiB in all, in arguments under Linux's 128 KiB limit for a single one.
    hostile.extend(std::iter::repeat_n(chunk, 16));

    let mut argv = vec![program.display().to_string()];
    argv.extend(hostile.iter().cloned());
    let mut spec = spec(&[], Duration::from_secs(30));
    spec.argv = argv;
    spec.env
        .insert("ARGV_OUT".into(), argv_out.display().to_string());
    let out = run_process(&spec).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{out:?}");

    for (i, expected) in hostile.iter().enumerate() {
        let got = std::fs::read(argv_out.join(i.to_string())).unwrap();
        assert_eq!(got, expected.as_bytes(), "argument {i} changed on the way");
    }
    assert!(
        !argv_out.join(hostile.len().to_string()).exists(),
        "an argument was split"
    );
    assert!(!canary.exists(), "an argument was interpreted by a shell");
}

#[tokio::test]
async fn an_argument_over_the_kernel_limit_is_a_clean_error() {
    let big = "x".repeat(1024 * 1024);
    let err = run_process(&spec(&["/bin/echo", &big], Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Spawn { .. }), "{err:?}");
}

#[tokio::test]
async fn nul_and_newline_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let touch = format!("touch {}", canary.display());
    for bad in ["a\0b", "a\nb", "a\rb", "\n", "\0"] {
        let err = run_process(&spec(
            &["/bin/sh", "-c", &touch, bad],
            Duration::from_secs(5),
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, HostError::BadValue(_)), "{bad:?}: {err:?}");

        let mut with_env = sh(&touch, Duration::from_secs(5));
        with_env.env.insert("V".into(), bad.into());
        let err = run_process(&with_env).await.unwrap_err();
        assert!(
            matches!(err, HostError::BadValue(_)),
            "env {bad:?}: {err:?}"
        );
    }
    let mut bad_name = sh(&touch, Duration::from_secs(5));
    bad_name.env.insert("A=B".into(), "x".into());
    assert!(matches!(
        run_process(&bad_name).await.unwrap_err(),
        HostError::BadValue(_)
    ));
    assert!(matches!(
        run_process(&spec(&[], Duration::from_secs(5)))
            .await
            .unwrap_err(),
        HostError::BadValue(_)
    ));
    assert!(!canary.exists(), "a refused command ran");
}

#[tokio::test]
async fn env_values_arrive_unchanged_and_cwd_defaults_to_root() {
    let value = "$(id) `id` ; 'q' \"d\" \u{202e} 🚀";
    let mut s = sh(
        "printf '%s' \"$V\"; printf '|'; pwd",
        Duration::from_secs(5),
    );
    s.env.insert("V".into(), value.into());
    let out = run_process(&s).await.unwrap();
    assert_eq!(out.stdout, format!("{value}|/\n"));

    let dir = tempfile::tempdir().unwrap();
    let mut s = sh("pwd", Duration::from_secs(5));
    s.cwd = Some(dir.path().canonicalize().unwrap());
    let out = run_process(&s).await.unwrap();
    assert_eq!(
        out.stdout.trim(),
        dir.path().canonicalize().unwrap().display().to_string()
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_group_promptly() {
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let out = run_process(&sh("echo $$; sleep 1000 & sleep 1000", timeout))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert!(
        took <= timeout + KILL_GRACE + SLACK,
        "returned after {took:?}"
    );
    assert!(took >= timeout, "returned before the timeout: {took:?}");
    assert_eq!(out.exit_code, None);
    assert_eq!(out.signal, Some(15), "{out:?}");
    assert_group_gone(leader_pid(&out));
    eprintln!(
        "kill latency (SIGTERM honoured): {:?}",
        took.saturating_sub(timeout)
    );
}

#[tokio::test]
async fn a_child_ignoring_sigterm_gets_sigkill() {
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let out = run_process(&sh("trap '' TERM; echo $$; sleep 1000", timeout))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(out.timed_out);
    assert_eq!(out.signal, Some(9), "{out:?}");
    assert!(
        took >= timeout + KILL_GRACE,
        "SIGKILL before the grace: {took:?}"
    );
    assert!(
        took <= timeout + KILL_GRACE + SLACK,
        "returned after {took:?}"
    );
    assert_group_gone(leader_pid(&out));
    eprintln!(
        "kill latency (SIGKILL escalation): {:?}",
        took.saturating_sub(timeout)
    );
}

#[tokio::test]
async fn a_grandchild_holding_the_pipes_does_not_hold_us() {
    // The leader exits at once; a background child keeps stdout open.
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let out = run_process(&sh("echo $$; sleep 1000 & echo started", timeout))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took <= timeout + KILL_GRACE + SLACK,
        "returned after {took:?}"
    );
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(out.timed_out, "the group outlived the timeout: {out:?}");
    assert!(out.stdout.ends_with("started\n"), "{out:?}");
    assert_group_gone(leader_pid(&out));
}

#[tokio::test]
async fn huge_output_is_capped_with_bounded_memory() {
    let before = vm_rss_kib();
    let out = run_process(&sh(
        "yes | head -c 200000000; echo tail >&2",
        Duration::from_secs(120),
    ))
    .await
    .unwrap();
    let after = vm_rss_kib();
    let growth_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("RSS before {before} KiB, after {after} KiB, growth {growth_mib:.1} MiB");
    assert_eq!(out.exit_code, Some(0), "{:?}", out.stderr);
    assert!(!out.timed_out);
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), DEFAULT_OUTPUT_CAP);
    assert!(out.stdout.starts_with("y\ny\n"));
    assert_eq!(out.stderr, "tail\n");
    assert!(growth_mib < 64.0, "RSS grew by {growth_mib:.1} MiB");
}

#[tokio::test]
async fn small_cap_marks_truncation_on_either_stream() {
    let mut s = sh(
        "printf 0123456789; printf abcdefghij >&2",
        Duration::from_secs(5),
    );
    s.output_cap = 4;
    let out = run_process(&s).await.unwrap();
    assert_eq!(out.stdout, "0123");
    assert_eq!(out.stderr, "abcd");
    assert!(out.truncated);

    s.output_cap = 10;
    let out = run_process(&s).await.unwrap();
    assert!(!out.truncated, "{out:?}");
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let t = Duration::from_secs(5);
    let out = run_process(&sh("echo out; echo err >&2; exit 3", t))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.signal, out.timed_out),
        (Some(3), None, false)
    );
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );

    let out = run_process(&sh("kill -USR1 $$", t)).await.unwrap();
    assert_eq!((out.exit_code, out.signal), (None, Some(10)), "{out:?}");

    let out = run_process(&spec(&["/bin/true"], t)).await.unwrap();
    assert_eq!(out.exit_code, Some(0));

    let err = run_process(&spec(&["/nonexistent/program"], t))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Spawn { .. }), "{err:?}");
}

#[tokio::test]
async fn stdin_is_null() {
    let out = run_process(&sh("cat; echo done", Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(out.stdout, "done\n");
    assert!(!out.timed_out);
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
