//! Actions: what a runbook may do to the host, one file per form, and their registry.
//!
//! Every form except `notify` mutates and is gated (`--yes`, approval, `limit`). The compiler
//! reads the form's params straight from YAML (with spans); running them is the executor's job.

mod action_kind;
pub mod backup;
pub mod http;
pub mod notify;
mod outcome;
pub mod restore;
pub mod run;
pub mod set_env;
pub mod shell;
pub mod systemd;

pub use action_kind::ActionKind;
pub use backup::RawBackup;
pub use http::RawHttpAction;
pub use notify::RawNotify;
pub use outcome::{ActionContext, ActionOutcome, NotifyTarget};
pub use restore::RawRestore;
pub use set_env::RawSetEnv;
pub use systemd::{RawSystemdAction, SystemdOp};
