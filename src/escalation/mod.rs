//! Escalation timers (design §2 "escalation", issue 6 point 5): a run that leaves a problem
//! opens an *incident*, which climbs its ladder of policy.yaml on the severity's clock until
//! it is acknowledged or resolved.
//!
//! What lives where:
//! - `incident`: [`Incident`] as stored, [`Spec`] (what a runbook and the policy say about
//!   one: severity, deadlines, ladder), [`LevelSpec`].
//! - `timers`: the state machine over the audit file — [`open_or_update`], [`resolve`],
//!   [`due`], [`fire_due`] / [`fire_incident`], [`ack`], [`list`], and [`after_run`], which
//!   `runbook run` and `serve` call when a run ends.
//! - `notifier`: [`Notifier`], how a level reaches its channels; [`HostNotifier`] sends through
//!   the `notify` action's machinery (stdout, JSON webhook, Slack-compatible webhook).
//!
//! # The clock
//!
//! Every time is RFC 3339 UTC with milliseconds, so text order is time order, and every entry
//! point takes `now`: the CLI passes the wall clock or `--now`, tests a fixed time. Level *n*
//! is due at `opened_at + after(n)` (P3-E: L2 after 30 min, L3 after 2 h, L4 after 4 h from
//! the open). The state is only in `SQLite`: a process that starts after a restart sees the
//! same `next_due_at` and fires what is due, once.
//!
//! # Firing exactly once: claim, then send
//!
//! Firing a level is three steps. (1) *Claim*, in one `IMMEDIATE` transaction committed with
//! `synchronous=FULL`: the incident is re-read under the write lock and must still be `open`
//! with `next_due_at <= now`; the level's `escalations` row is inserted (`UNIQUE (incident_id,
//! level)` is the backstop if two writers ever got that far) and the incident moves to the level
//! and its next due time. Of two `tick`s, or a tick and a server, only one claims. (2) *Send*
//! to each channel of the level; a channel that fails is recorded `failed` and does not stop
//! the others. (3) *Settle*: the `notifications` rows, and the escalation row `fired` with each
//! channel's answer. A level is therefore sent **at most once**: a process killed between
//! claim and settle leaves the row `firing`, visible to a person, and it is not sent again.
//!
//! When a tick comes late and several levels are due at once (no tick ran for hours), the
//! highest due level fires and the ones passed over are recorded `skipped`: one page to the
//! right people rather than a burst of stale ones.
//!
//! # Acknowledge, resolve
//!
//! An acknowledged incident stops climbing (`next_due_at` cleared) but stays listed until it is
//! resolved; an acknowledgement is the response, so the response deadline is breached only if
//! it came late. A run that ends healthy or remediated resolves the open incident of its
//! runbook and key. A dry run changes no incident.
//!
//! # Audit
//!
//! `incidents` and `escalations` rows are hash-chained like runs and steps (every open, level,
//! acknowledgement and resolution appends a chain entry), rather than written as `escalation`
//! steps of a run: a level fired by `tick` hours later belongs to no run, and a finished run's
//! steps should not grow. `runbook audit verify` covers them.
//!
//! # `after_action_unresolved`
//!
//! The runbook's `escalation.after_action_unresolved` is stored with the incident, and
//! `recheck_due_at` (last run + that duration) is shown by [`list`]. Re-running the checks
//! then is the server's job (it holds the runbooks and the executor); nothing here runs checks.

mod incident;
mod notifier;
mod timers;

pub use incident::{Incident, IncidentStatus, LevelSpec, Spec};
pub use notifier::{Delivery, HostNotifier, Notifier, target_label};
pub use timers::{
    AckOutcome, Change, Fired, RunEscalation, Sent, ack, after_run, due, fire_due, fire_incident,
    list, open_or_update, resolve,
};
