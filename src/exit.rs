//! Exit codes, in one place (design §6).

/// Healthy, or remediated and verified.
pub const OK: u8 = 0;
/// A problem remains: a cause matched or checks failing; escalated.
pub const PROBLEM: u8 = 1;
/// Invalid input: usage, runbook.
pub const INVALID: u8 = 2;
/// Engine fault, e.g. the audit trail is not writable.
pub const FAULT: u8 = 3;
