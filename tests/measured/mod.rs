//! A `runbook` process run to its end within a limit, with its peak memory: what the tests
//! that throw hostile input at the binary (`tests/hostile_targets.rs`,
//! `tests/giant_inputs.rs`) assert on.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What one bounded `runbook` process gave.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub peak_kib: u64,
    pub elapsed: Duration,
}

/// Run `cmd` to its end within `limit` (else kill its process group and fail), measuring its
/// peak RSS: by `/usr/bin/time -f %M` when present (the kernel's `ru_maxrss`), else by polling
/// `VmHWM` (a high-water mark, so a late poll still sees an earlier peak).
pub fn run_within(cmd: &Command, limit: Duration) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let rss_file = dir.path().join("rss");
    let timer = Path::new("/usr/bin/time");
    let mut full = if timer.exists() {
        let mut c = Command::new(timer);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
        c.arg(cmd.get_program());
        c
    } else {
        Command::new(cmd.get_program())
    };
    full.args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        full.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => full.env(k, v),
            None => full.env_remove(k),
        };
    }
    // Its own process group, so a timeout kills `time` and the binary under it together.
    std::os::unix::process::CommandExt::process_group(&mut full, 0);
    let started = Instant::now();
    let mut child = full
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let pid = child.id();
    let mut polled_kib = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if !timer.exists() {
            polled_kib = polled_kib.max(vm_hwm_kib(pid).unwrap_or(0));
        }
        if started.elapsed() > limit {
            let group = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "{:?} {:?} still running after {limit:?}",
                cmd.get_program(),
                cmd.get_args().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let peak_kib = if timer.exists() {
        let s = std::fs::read_to_string(&rss_file).unwrap();
        // The last line: `time` writes "Command exited with non-zero status N" first.
        s.lines().last().unwrap().trim().parse().unwrap()
    } else {
        polled_kib
    };
    Ran {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        peak_kib,
        elapsed,
    }
}
/// `VmHWM` of a live process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
