//! The door to the machine. Everything that changes the host — spawning processes, writing
//! files, sending mutating HTTP requests — goes through the [`Host`] trait, so a dry run is
//! one implementation ([`DryRunHost`]) that refuses every mutation in one place, not
//! `if dry_run` scattered around. Read-only observation (stat, read, sysinfo, connect) is done
//! by the probes themselves; `plan`, `validate` and `test` never construct a host at all.

mod api;
mod dry_run;
mod process;
mod real;

pub use api::{Host, HostError, HostMode, Intent, ProcOutput, ProcSpec};
pub use dry_run::DryRunHost;
pub use process::{DEFAULT_OUTPUT_CAP, KILL_GRACE, run_process};
pub use real::RealHost;
