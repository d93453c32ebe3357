//! What a probe gets (a host, a timeout, whether a person is at a terminal) and what it
//! gives back.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::host::Host;

/// What a probe may use.
pub struct ProbeContext<'a> {
    /// The door to the machine (HTTP clients, process spawning).
    pub host: &'a dyn Host,
    /// The step's timeout; the executor also enforces it from outside.
    pub timeout: Duration,
    /// A person is at a terminal (the `manual` probe may ask).
    pub interactive: bool,
    /// Where read positions live between runs (`jsonl` with `incremental`): the audit DB's
    /// `tail_positions`. `None`: every run starts from the beginning.
    pub positions: Option<&'a dyn PositionStore>,
    /// Who reads (`runbook/check`): each reader of a file keeps its own position.
    pub reader: &'a str,
    /// The operator's answer given beforehand (`runbook run --answer ID=yes`): the `manual`
    /// probe takes it without asking.
    pub answer: Option<bool>,
}

impl<'a> ProbeContext<'a> {
    /// A context with no saved positions.
    #[must_use]
    pub fn new(host: &'a dyn Host, timeout: Duration, interactive: bool) -> Self {
        ProbeContext {
            host,
            timeout,
            interactive,
            positions: None,
            reader: "probe",
            answer: None,
        }
    }
}

/// Where a file was read to, and how to know it is still the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailPosition {
    /// The path as globbed.
    pub path: String,
    /// Device of the file read.
    pub dev: u64,
    /// Inode of the file read.
    pub inode: u64,
    /// How many leading bytes the fingerprint covers (at most 4 KiB, never past `offset`).
    pub fp_len: u64,
    /// SHA-256 (hex) of those bytes.
    pub fingerprint: String,
    /// The offset after the last complete line read.
    pub offset: u64,
    /// The file's size when it was read.
    pub size: u64,
    /// Complete lines before `offset` since the file began (line numbers go on from here).
    pub line: u64,
}

/// Saved read positions (implemented by the audit store).
pub trait PositionStore: Send + Sync {
    /// The positions `reader` saved, by path.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn load_positions(&self, reader: &str) -> Result<Vec<TailPosition>, String>;

    /// Replace the positions of these paths for `reader`, in one transaction.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn save_positions(&self, reader: &str, positions: &[TailPosition]) -> Result<(), String>;
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome {
    /// The probe looked. The map holds its result fields (`status`, `value`, its own fields);
    /// a target that refused, reset or timed out is an observation too, with a `reason`
    /// field: the executor then marks the check `failed` without evaluating `expect`.
    Observed(Map<String, Value>),
    /// The probe could not look: tool missing, permission denied, bad rendered parameter,
    /// `unavailable` (no systemd, no journal). The check is `error`.
    Error(String),
    /// Nobody could answer (the `manual` probe with no terminal). The check is `unknown`.
    Unknown(String),
}

impl ProbeOutcome {
    /// An observation from `(field, value)` pairs.
    #[must_use]
    pub fn observed<I: IntoIterator<Item = (&'static str, Value)>>(fields: I) -> Self {
        ProbeOutcome::Observed(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// The target did not answer as a target should (refused, reset, timed out): an
    /// observation with a `reason`, so the check is `failed`.
    #[must_use]
    pub fn unreachable(reason: impl Into<String>) -> Self {
        let mut m = Map::new();
        m.insert("reason".into(), Value::String(reason.into()));
        m.insert("unreachable".into(), Value::Bool(true));
        ProbeOutcome::Observed(m)
    }
}
