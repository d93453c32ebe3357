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
