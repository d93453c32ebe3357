//! The [`Host`] trait and the types that cross it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use indexmap::IndexMap;

/// Real or dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMode {
    /// Probes run, actions run (when approved).
    Real,
    /// Probes run, every mutation is refused.
    DryRun,
}

/// Why a process is started: observing (a `command` probe) or changing the host (an action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Read-only: allowed in a dry run.
    Observe,
    /// Changes the host: refused in a dry run.
    Mutate,
}

/// A process to start: argv (never a shell unless argv says so), environment, directory.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    /// Program and arguments; each element is passed byte for byte.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: IndexMap<String, String>,
    /// Working directory (default `/`).
    pub cwd: Option<PathBuf>,
    /// Kill the process group after this long (SIGTERM, then SIGKILL after [`super::KILL_GRACE`]).
    pub timeout: Duration,
    /// Keep at most this many bytes of stdout and of stderr.
    pub output_cap: usize,
}

/// What a finished (or killed) process left.
#[derive(Debug, Clone, Default)]
pub struct ProcOutput {
    /// Exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Captured stdout (lossy UTF-8), at most `output_cap` bytes.
    pub stdout: String,
    /// Captured stderr (lossy UTF-8), at most `output_cap` bytes.
    pub stderr: String,
    /// Output was longer than the cap.
    pub truncated: bool,
    /// The timeout fired.
    pub timed_out: bool,
    /// Wall time.
    pub duration: Duration,
}

/// Failures at the door.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A dry run refuses every mutation.
    #[error("dry run: refused to {0}")]
    DryRun(String),
    /// A value that may not cross into a process (NUL, newline in argv).
    #[error("refused value: {0}")]
    BadValue(String),
    /// The program is not there or cannot be executed.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// argv[0].
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Any other I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The only door through which the engine changes the machine.
#[async_trait]
pub trait Host: Send + Sync {
    /// Real or dry run.
    fn mode(&self) -> HostMode;

    /// This machine's name (for templates and the audit trail).
    fn hostname(&self) -> String;

    /// An HTTP client; `insecure` skips TLS verification like `curl -k`. Mutating requests
    /// must call [`Host::permit_mutation`] first.
    fn http(&self, insecure: bool) -> reqwest::Client;

    /// An HTTP client for `url`. A plain `http://` URL needs no TLS, so a host may hand out a
    /// client built without the system's root certificates (loading them costs milliseconds
    /// that a loopback probe does not need). Such a client cannot follow a redirect to
    /// `https://` on its own: pick the client again for every hop.
    fn http_for(&self, url: &reqwest::Url, insecure: bool) -> reqwest::Client {
        let _ = url;
        self.http(insecure)
    }

    /// [`Host::http_for`] for a URL as written in a runbook or policy; one that does not
    /// parse gets the general client (the request then reports the URL's error).
    fn http_for_text(&self, url: &str, insecure: bool) -> reqwest::Client {
        reqwest::Url::parse(url)
            .map_or_else(|_| self.http(insecure), |u| self.http_for(&u, insecure))
    }

    /// Refuse (dry run) or allow a mutation described by `what`.
    ///
    /// # Errors
    /// [`HostError::DryRun`] in a dry run.
    fn permit_mutation(&self, what: &str) -> Result<(), HostError>;

    /// Start a process in its own process group and wait for it, with timeout and capped
    /// output. `Intent::Mutate` is refused in a dry run.
    async fn spawn(&self, spec: &ProcSpec, intent: Intent) -> Result<ProcOutput, HostError>;

    /// Replace a file atomically (temp file in the same directory, fsync, rename), keeping
    /// the previous version as `<path>.<timestamp>.bak` when it existed. Returns the backup.
    async fn write_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<Option<PathBuf>, HostError>;

    /// Copy a file or a directory tree (`cp -a`). Returns the bytes copied.
    async fn copy_tree(&self, from: &Path, to: &Path) -> Result<u64, HostError>;
}
