//! Running a plan against a host: the executor, the events it emits, and the ledger it
//! writes before acting. Probes and actions never import this module.

pub mod events;
mod executor;
mod memory_ledger;

pub use events::{
    Ledger, LedgerError, NewRevert, Origin, Outcome, Reporter, RevertRow, RevertState, RunEvent,
    RunInfo, StepKind, StepRecord, StepStatus,
};
pub use executor::{
    Approver, ExecError, Executor, Options, REDACTED, RevertResult, RunResult, redact, status_name,
};
pub use memory_ledger::MemoryLedger;
