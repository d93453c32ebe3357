//! The audit trail (design §5): a `SQLite` file that records every run and every step, the
//! rate limits and per-runbook locks that must hold across processes, and a hash chain that
//! `runbook audit verify` recomputes.
//!
//! What lives where:
//! - `store`: [`AuditStore`], the connection, the [`crate::exec::Ledger`] implementation and
//!   the read side (`history`, `show`, `export`). Every write is one `IMMEDIATE` transaction
//!   on a WAL database with `synchronous=NORMAL`; an intent row, an action's result, a
//!   pending revert and the end of a run are *durable*: the call returns once an `fdatasync`
//!   of the WAL begun after the commit has returned, so an intent row (and every row before
//!   it) is on disk before the action it announces starts. A check's row is atomic and
//!   reaches the disk with the next durable commit.
//! - `sync`: the group commit behind durable commits (syncs outside the write lock, shared
//!   by the commits of the moment).
//! - `migrations`: the schema, as ordered migrations counted by `PRAGMA user_version`.
//! - `chain`: the hash chain over `runs`, `steps`, `pending_reverts`, `incidents`,
//!   `escalations`, `approvals`, `schedule_slots` and `run_context`, and its verification.
//! - `redact`: [`redact()`], applied to everything before it is written (the executor redacts
//!   too; this is defence in depth).
//!
//! # Chain scheme
//!
//! The chain is a separate table, `audit_chain(seq, tbl, row_id, op, prev_hash, hash)`, one
//! global sequence over the chained tables. Each write to a `runs`, `steps`, `pending_reverts`,
//! `incidents`, `escalations` (these two written by [`crate::escalation`]), `approvals`,
//! `schedule_slots` (the slot a schedule claimed) or `run_context` (a server run's key and
//! alert) row (insert, or an update such as finishing a run or completing an intent; `adopt`
//! for the approvals a file had before version 8, and its slots and run contexts before
//! version 9) appends one entry in the same transaction; "id" is the row's key (`runbook`
//! for `schedule_slots`, `run_id` for `run_context`):
//!
//! ```text
//! hash = hex(sha256(prev_hash_hex || canonical_json({"table", "id", "op", "row": {every column}})))
//! ```
//!
//! where `prev_hash` is the hash of the entry before it (64 zeros for the first) and the row
//! object is the full row *as stored after the write*, keys sorted. History is never rewritten:
//! an update appends an entry for the row's new state. `verify` walks the chain in order and
//! checks that each entry links to the previous one, and that the *latest* entry of each row
//! recomputes from the row as it is now (an earlier entry of an updated row is checked through
//! the link only: its state no longer exists). The first failure names its table and row id;
//! a row missing from the chain (inserted behind the store's back) is reported after that.
//! Truncating the tail of both chain and rows cannot be detected without an external anchor:
//! `verify` reports the head hash so it can be shipped elsewhere.

mod chain;
mod migrations;
mod perms;
mod redact;
mod store;
mod sync;

pub use chain::{Altered, VerifyReport};
pub use redact::{redact, redact_str};
pub use store::{
    Approval, ApprovalUse, AuditError, AuditStore, RunSummary, StepRow, WriteTx, wait_when_busy,
};
pub(crate) use store::{run_summary, step_row};
