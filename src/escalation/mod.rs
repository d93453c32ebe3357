//! Escalation timers (design §2 "escalation", issue 6 point 5): a run that leaves a problem
//! opens an *incident*, which climbs its ladder of policy.yaml on the severity's clock until
//! it is acknowledged or resolved.
//!
//! What lives where:
//! - `incident`: [`Incident`] as stored, [`Spec`] (what a runbook and the policy say about
//!   one: severity, deadlines, ladder), [`LevelSpec`].
//! - `timers`: the state machine over the audit file — [`open_or_update`], [`resolve`],
//!   [`due`], [`fire_due`] / [`fire_incident`], [`ack`], [`list`], [`due_rechecks`], and
//!   [`after_run`], which `runbook run` and `serve` call when a run ends.
//! - `recheck`: [`Recheck`], [`recheck_due`] — `after_action_unresolved` acted on (below);
//!   `runbook tick` and `serve`'s background thread call it.
//! - `recovery`: [`unhandled_runs`], [`recover_runs`] — runs whose end was recorded and their
//!   incident not (the process stopped in between); `runbook tick` calls it.
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
//! Firing a level is three steps. (1) *Claim*, in one durable `IMMEDIATE` transaction (on disk
//! before anything is sent): the incident is re-read under the write lock and must still be `open`
//! with `next_due_at <= now`; the level's `escalations` row is inserted (`UNIQUE (incident_id,
//! level)` is the backstop if two writers ever got that far) and the incident moves to the level
//! and its next due time. Of two `tick`s, or a tick and a server, only one claims. (2) *Send*
//! to each channel of the level; a channel that fails is recorded `failed` and does not stop
//! the others. (3) *Settle*: the `notifications` rows, and the escalation row `fired` with each
//! channel's answer.
//!
//! A process killed between claim and settle leaves the row `firing`: whether its page went
//! out is unknown. The claim names its process (`claimed_pid`, and the process's start time
//! in the row's `result` until it is settled, which tells it from a reused pid), so the next
//! [`fire_due`] (`tick`, a server's timers) finds claims whose process is gone and takes each
//! over in one `IMMEDIATE` transaction (the row must still hold the claim it saw; the new one
//! names a live process, so of several processes one takes it), then sends and settles it
//! with `resent_after_crash` (the lost claim) in its result and its message: a level is sent
//! **at least once**, a duplicate page being better than a lost one. A lost claim of an
//! incident acknowledged or resolved since is recorded `skipped` with the reason, not sent.
//!
//! The same holds for a run's end: the executor commits it, then [`after_run`] records the
//! incident. A run killed in between is found by the next `tick` ([`recover_runs`],
//! `recovery`'s module doc has the test) and its incident opened then, as of the run's end.
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
//! # `after_action_unresolved`: the recheck
//!
//! "Symptom persists this long after remediation → next level" (design §2). The clock starts
//! at a *remediation*: a run (CLI or alert) that completed one of the runbook's mutating
//! actions as a remedy step (`ok`, not held back by dry run, approval or limit; a `notify` is
//! no remediation). Such a run that leaves the problem sets `recheck_due_at` to its end +
//! `after_action_unresolved`; a later remediation moves it on, a run that changed nothing
//! leaves it as it was, and a run that ends well resolves the incident (the recheck goes with
//! it). A runbook that only diagnoses never rechecks: its ladder's times are the escalation.
//!
//! When `recheck_due_at` has passed, [`recheck_due`] (by `runbook tick` and `serve`):
//!
//! 1. *claims* it — `recheck_due_at` cleared in one `IMMEDIATE` transaction under which the
//!    incident must still be open or acknowledged and due — so a recheck runs once however
//!    many ticks and servers look;
//! 2. re-runs the runbook's checks as a *read-only diagnosis*: the executor on a dry-run host
//!    (probes look, no mutating action runs), trigger `recheck`, recorded in the audit like
//!    any run, with the parameters (secrets from their definitions) and the alert context of
//!    the incident's last run. No notification channel is given to it: a `notify` remedy is
//!    recorded in the run, not sent — the level fired is the page;
//! 3. *ends* it in a second `IMMEDIATE` transaction: checks healthy → the incident is resolved
//!    by the recheck run (the path of a good run); the problem remains (a cause matched, or a
//!    check failed or could not look: not proven healthy) → the incident names the recheck
//!    run and moves to its next level *now*, claimed there as a timed level is (its
//!    `escalations` row `firing`, `UNIQUE (incident_id, level)` as the backstop), then sent
//!    and settled like one; the row's result and the message name the recheck run. The level
//!    after it keeps its time on the ladder.
//!
//! A recheck is one look: `recheck_due_at` stays cleared after it, and is set again only by
//! another remediation (a recheck run never remediates). Special cases: an *acknowledged*
//! incident still gets its recheck — a healthy one resolves it, a persisting one does not
//! climb (someone has it; the acknowledgement stopped the ladder) and the recheck run is its
//! last run; an incident at the top of its ladder has no level left; an incident that climbed
//! by its time between claim and end is not climbed twice. A recheck that could not run (the
//! runbook gone, the store failing) is reported `failed` and not retried — the ladder's times
//! still apply; one whose runbook does not compile, or with no policy.yaml, is left due.
//! `tick --dry-run` lists due rechecks and runs nothing.

mod incident;
mod notifier;
mod recheck;
mod recovery;
mod timers;

pub(crate) use timers::{COLUMNS as INCIDENT_COLUMNS, incident as incident_row};

pub use incident::{Incident, IncidentStatus, LevelSpec, Spec};
pub use notifier::{Delivery, HostNotifier, Notifier, target_label};
pub use recheck::{Recheck, TRIGGER as RECHECK_TRIGGER, recheck_due};
pub use recovery::{Recovered, UnhandledRun, recover_runs, unhandled_runs};
pub use timers::{
    AckOutcome, Change, Fired, Resent, RunEscalation, Sent, ack, after_run, due, due_rechecks,
    fire_due, fire_incident, list, open_or_update, orphaned_claims, resolve,
};
