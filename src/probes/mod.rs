//! Probes: read-only observations of the host, one file each, and their registry.
//!
//! Each probe file holds its params struct (unknown keys rejected), the names of its result
//! fields, and its documentation in the module doc (`runbook probe --help KIND` prints it).
//! The closed enum [`ProbeKind`] is the registry the compiler asks to check parameters.

pub mod command;
pub mod config;
mod context;
pub mod dns;
pub mod file;
pub mod http;
pub mod journal;
pub mod jq;
pub mod json_strict;
pub mod jsonl;
pub mod manual;
mod probe_kind;
pub mod process;
pub mod prometheus;
mod readfile;
pub mod sse;
pub mod system;
pub mod systemd;
pub mod tcp;
pub mod time_sync;
pub mod tls_cert;

pub use context::{PositionStore, ProbeContext, ProbeOutcome, TailPosition};
pub use probe_kind::{COMMON_FIELDS, ProbeKind, SAMPLE_FIELDS};
