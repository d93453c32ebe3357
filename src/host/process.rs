//! Running a child process: own process group, timeout, capped output, no zombies.
//!
//! This file owns the life of one child: the values that may cross into it (argv and env
//! elements are passed byte for byte; NUL and newline are refused), reading its stdout and
//! stderr concurrently under a cap, and ending it. On timeout the whole process group gets
//! SIGTERM, then SIGKILL after [`KILL_GRACE`]; the leader is always reaped, and pipes held open
//! by a grandchild are abandoned once the group has been killed, so the call returns within
//! `timeout + KILL_GRACE` plus a little slack whatever the child does.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::host::api::{HostError, ProcOutput, ProcSpec};

/// Default cap on captured stdout and stderr, each.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;
/// Time between SIGTERM and SIGKILL on timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How often the group is looked at while it has [`KILL_GRACE`] to go away.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// After the group is killed: how long the pipes may still deliver what is buffered.
const PIPE_SLACK: Duration = Duration::from_millis(100);
/// After SIGKILL: how long to wait for the leader to be reaped (it only stalls in `D` state).
const REAP_SLACK: Duration = Duration::from_secs(1);

/// Run a process to completion or timeout.
///
/// # Errors
/// [`HostError::BadValue`] for an empty argv or a NUL or newline in argv or env (and `=` in an
/// env name); [`HostError::Spawn`] when the program cannot be started.
pub async fn run_process(spec: &ProcSpec) -> Result<ProcOutput, HostError> {
    check_values(spec)?;
    let program = &spec.argv[0];
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&spec.argv[1..])
        .envs(&spec.env)
        .current_dir(spec.cwd.as_deref().unwrap_or(std::path::Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own group: a timeout kills the child and everything it started, and a Ctrl-C at
        // the operator's terminal does not reach it behind our back.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| HostError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    // If the caller drops this future half way, the group must not outlive it.
    let mut guard = GroupGuard { pgid, armed: true };

    let mut out = Capture::new(spec.output_cap);
    let mut err = Capture::new(spec.output_cap);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // A timeout too large to add means "no timeout" in practice.
    let deadline = started
        .checked_add(spec.timeout)
        .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 24 * 3600));
    let mut status: Option<ExitStatus> = None;
    let mut timed_out = false;
    {
        let pipes = async {
            tokio::join!(drain(stdout, &mut out), drain(stderr, &mut err));
        };
        tokio::pin!(pipes);
        let mut pipes_done = false;

        // Until the leader has exited and both pipes are closed, or the deadline.
        while !(pipes_done && status.is_some()) {
            tokio::select! {
                () = &mut pipes, if !pipes_done => pipes_done = true,
                s = child.wait(), if status.is_none() => status = Some(s?),
                () = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    break;
                }
            }
        }

        if timed_out {
            if let Some(pgid) = pgid {
                signal_group(pgid, Signal::SIGTERM);
            }
            // Keep draining while the group winds down, so a child writing on its way out
            // does not block on a full pipe.
            let kill_at = Instant::now() + KILL_GRACE;
            loop {
                if status.is_none() {
                    status = child.try_wait()?;
                }
                let group_gone = pgid.is_none_or(|p| !group_alive(p));
                if status.is_some() && group_gone {
                    break;
                }
                if Instant::now() >= kill_at {
                    if let Some(pgid) = pgid {
                        signal_group(pgid, Signal::SIGKILL);
                    }
                    break;
                }
                tokio::select! {
                    () = &mut pipes, if !pipes_done => pipes_done = true,
                    () = tokio::time::sleep(GROUP_POLL) => {}
                }
            }
            if status.is_none() {
                status = tokio::time::timeout(REAP_SLACK, child.wait())
                    .await
                    .ok()
                    .transpose()?;
            }
            // A grandchild outside the group (it called setsid) may still hold the pipes:
            // take what is buffered, then stop reading.
            if !pipes_done {
                let _ = tokio::time::timeout(PIPE_SLACK, &mut pipes).await;
            }
        }
    }
    guard.armed = false;

    Ok(ProcOutput {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        truncated: out.truncated || err.truncated,
        stdout: String::from_utf8_lossy(&out.buf).into_owned(),
        stderr: String::from_utf8_lossy(&err.buf).into_owned(),
        timed_out,
        duration: started.elapsed(),
    })
}

/// Refuse values that cannot cross into a process unchanged, or that would be read as
/// several values by whatever logs or re-parses them (newline).
fn check_values(spec: &ProcSpec) -> Result<(), HostError> {
    if spec.argv.is_empty() {
        return Err(HostError::BadValue("empty argv".into()));
    }
    if spec.argv[0].is_empty() {
        return Err(HostError::BadValue("empty program name".into()));
    }
    for (i, arg) in spec.argv.iter().enumerate() {
        if let Some(what) = forbidden(arg) {
            return Err(HostError::BadValue(format!("argument {i} contains {what}")));
        }
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains('=') {
            return Err(HostError::BadValue(format!(
                "environment name `{}` is empty or contains `=`",
                key.escape_debug()
            )));
        }
        if let Some(what) = forbidden(key) {
            return Err(HostError::BadValue(format!(
                "environment name `{}` contains {what}",
                key.escape_debug()
            )));
        }
        if let Some(what) = forbidden(value) {
            return Err(HostError::BadValue(format!(
                "environment variable `{key}` contains {what}"
            )));
        }
    }
    if let Some(cwd) = &spec.cwd {
        if let Some(what) = forbidden(&cwd.to_string_lossy()) {
            return Err(HostError::BadValue(format!(
                "working directory contains {what}"
            )));
        }
    }
    Ok(())
}

fn forbidden(s: &str) -> Option<&'static str> {
    if s.contains('\0') {
        Some("NUL")
    } else if s.contains('\n') || s.contains('\r') {
        Some("a newline")
    } else {
        None
    }
}

/// At most `cap` bytes of one stream.
struct Capture {
    buf: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Capture {
            buf: Vec::new(),
            cap,
            truncated: false,
        }
    }
}

/// Read a pipe to its end, keeping the first `cap` bytes and draining the rest, so a child
/// never blocks on a full pipe and our memory stays bounded.
async fn drain<R: AsyncRead + Unpin>(reader: Option<R>, into: &mut Capture) {
    let Some(mut reader) = reader else { return };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = into.cap.saturating_sub(into.buf.len());
                let keep = n.min(room);
                into.buf.extend_from_slice(&chunk[..keep]);
                if keep < n {
                    into.truncated = true;
                }
            }
        }
    }
}

fn signal_group(pgid: Pid, signal: Signal) {
    // ESRCH: the group is already gone, which is what we want.
    let _ = killpg(pgid, signal);
}

/// Whether a live process is still in the group. Zombies do not count: an orphaned
/// grandchild is reaped by init (or, in some containers, never), and it runs nothing.
fn group_alive(pgid: Pid) -> bool {
    if matches!(killpg(pgid, None), Err(Errno::ESRCH)) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let Some(proc_id) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{proc_id}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|s| s.parse::<i32>().ok());
        pgrp == Some(pgid.as_raw()) && state != Some("Z") && state != Some("X")
    })
}

/// Kills the group with SIGKILL if the run is abandoned (its future dropped) before it ended.
struct GroupGuard {
    pgid: Option<Pid>,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Some(pgid) = self.pgid {
                signal_group(pgid, Signal::SIGKILL);
            }
        }
    }
}
