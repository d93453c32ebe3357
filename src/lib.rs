//! `runbook`: runbook-as-code. Operations runbooks become YAML files that are compiled into a
//! step graph, planned and validated with no host access, and (next) run against a host with
//! native probes and an audit trail.
//!
//! Layers, bottom to top (a module imports only from layers below it): `probes`/`actions`
//! (parameter types and registries) → `runbook` (format, compiler) → `plan` → `report` →
//! `commands` → the binary.

pub mod actions;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod escalation;
pub mod exec;
pub mod exit;
#[doc(hidden)]
pub mod fuzz;
pub mod host;
pub mod plan;
pub mod probes;
pub mod report;
pub mod revert;
pub mod runbook;
pub mod scenario;
pub mod serve;
pub mod sim;
pub mod triage;
