//! What the executor tells the world: [`RunEvent`]s for reporters (console, JSON, metrics),
//! and the [`Ledger`] it must write to before it acts (the audit store implements it).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// The kind of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A check of the plan.
    Check,
    /// A symptom evaluated from the checks.
    Symptom,
    /// A cause evaluated from the checks.
    Cause,
    /// A remedy action.
    Action,
    /// A check re-run after a remedy.
    Verify,
    /// An action run to undo another.
    Rollback,
    /// Escalation to a level of the ladder.
    Escalation,
}

/// The status of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Check looked and `expect` held; action succeeded.
    Ok,
    /// Check looked and `expect` did not hold (or the target refused / timed out); action failed.
    Failed,
    /// Could not look (tool missing, permission denied, a value that did not render).
    Error,
    /// Guard (`when`) false.
    Skipped,
    /// Nobody could answer (`manual` with no terminal); a cause that cannot be decided.
    Unknown,
    /// Symptom present / cause matched.
    Matched,
    /// Cause ruled out (every check it reads looked).
    RuledOut,
    /// Symptom absent.
    Absent,
    /// Mutating action not run: no `--yes` (or approval declined / timed out).
    NeedsApproval,
    /// Mutating action not run: its `limit` is used up.
    RateLimited,
    /// Mutating action not run: dry run.
    DryRun,
}

/// One finished step, as reporters and the audit trail see it. Secrets are already redacted.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Kind.
    pub kind: StepKind,
    /// Step id (check, cause, action id).
    pub id: String,
    /// Status.
    pub status: StepStatus,
    /// Resolved inputs (rendered parameters, argv, ...).
    pub inputs: Value,
    /// The result (probe fields, exit code, ...).
    pub result: Value,
    /// The value that decided the status, for one-line display.
    pub decided_by: Option<String>,
    /// The seed's words for a person.
    pub guidance: Option<String>,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check ok, no cause matched.
    Healthy,
    /// A cause matched, its remedy ran and verification passed.
    Remediated,
    /// A problem remains (cause matched without fix, verification failed, checks failing).
    ProblemRemains,
    /// The engine could not do its job (audit not writable, ...).
    Fault,
}

impl Outcome {
    /// The process exit code (design §6).
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Healthy | Outcome::Remediated => crate::exit::OK,
            Outcome::ProblemRemains => crate::exit::PROBLEM,
            Outcome::Fault => crate::exit::FAULT,
        }
    }
}

/// Facts about a run, fixed at its start.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// Runbook name.
    pub runbook: String,
    /// SHA-256 of the runbook file.
    pub runbook_sha256: String,
    /// cli, webhook, schedule.
    pub trigger: String,
    /// Parameters, secrets redacted.
    pub params: Value,
    /// Host name.
    pub host: String,
    /// User running it.
    pub user: String,
    /// `real` or `dry_run`.
    pub mode: String,
    /// What a server run is for, recorded in the run's own transaction.
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// What a run started by `serve` is for: its key (the alert's fingerprint, `schedule`, ...),
/// the alert, and the delivery it answers. Written with the run's row in one transaction, so
/// a delivery is marked as having its run exactly when the run exists (a restart re-queues
/// only deliveries with no run) and an approval can re-run the run with the same context.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// One run at a time per runbook and key.
    pub key: String,
    /// The `alert` context.
    pub alert: Option<Value>,
    /// The `alerts` row that started the run, if one did.
    pub delivery: Option<i64>,
}

/// Where a [`RevertRow`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevertState {
    /// Waiting for its due time (or for approval at a later `tick`).
    Pending,
    /// Claimed by a `tick` that is performing it now.
    Running,
    /// The rollback ran and succeeded.
    Done,
    /// The rollback failed, or could not be run (runbook or action gone, tick interrupted).
    Failed,
    /// Not needed any more: the run that made the change already rolled it back.
    Cancelled,
}

impl RevertState {
    /// The lowercase name stored in the ledger.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RevertState::Pending => "pending",
            RevertState::Running => "running",
            RevertState::Done => "done",
            RevertState::Failed => "failed",
            RevertState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            RevertState::Pending,
            RevertState::Running,
            RevertState::Done,
            RevertState::Failed,
            RevertState::Cancelled,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// A temporary change (`revert_after`) to undo later, as the executor records it right after
/// the change succeeded.
#[derive(Debug, Clone, Serialize)]
pub struct NewRevert {
    /// The run that made the change.
    pub run_id: String,
    /// Runbook name.
    pub runbook: String,
    /// The runbook file as it was loaded (for people; `tick` finds the runbook by name).
    pub runbook_file: String,
    /// SHA-256 of the runbook file at the time of the change.
    pub runbook_sha256: String,
    /// The action that made the change.
    pub action_id: String,
    /// The actions that undo it, in order.
    pub rollback: Vec<String>,
    /// The run's parameters with secret values redacted: `tick` takes secret parameters from
    /// their definitions again, so a secret never rests in the ledger.
    pub params: Value,
    /// When it is due, RFC 3339 UTC with milliseconds (so that text order is time order).
    pub due_at: String,
}

/// A recorded revert, as `tick` reads it.
#[derive(Debug, Clone, Serialize)]
pub struct RevertRow {
    /// Row id.
    pub id: i64,
    /// What was recorded.
    pub revert: NewRevert,
    /// Where it stands.
    pub state: RevertState,
    /// When it was recorded, RFC 3339.
    pub created_at: String,
}

/// What reporters receive, in order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run began.
    RunStarted {
        /// Run id.
        run_id: String,
        /// Facts.
        info: RunInfo,
    },
    /// A step began (for live progress).
    StepStarted {
        /// Kind.
        kind: StepKind,
        /// Id.
        id: String,
    },
    /// A step finished.
    StepFinished(StepRecord),
    /// A message for people (notify to stdout, approval prompts answered, ...).
    Message {
        /// The text.
        text: String,
    },
    /// The run ended.
    RunFinished {
        /// Run id.
        run_id: String,
        /// Outcome.
        outcome: Outcome,
        /// Exit code.
        exit_code: u8,
        /// Wall time in milliseconds.
        duration_ms: u64,
    },
}

/// Receives events; console, JSON and metrics reporters implement it. Never fails the run.
pub trait Reporter: Send {
    /// Handle one event.
    fn event(&mut self, event: &RunEvent);
}

/// Answers in place of the host, for runs that must not touch it (`runbook test`: results
/// given by a scenario; `runbook replay`: results recorded by a past run). With an oracle the
/// executor runs no probe and no action, never sleeps (sampling, verification backoff), and
/// reads `now` from here; every decision (guards, `expect`, causes, gates, verification,
/// rollbacks, escalation) is still its own.
pub trait Oracle: Send + Sync {
    /// The outcome of check `id`'s `sample`-th probe (from 0; 0 alone when the check does not
    /// sample). `kind` is [`StepKind::Check`], or [`StepKind::Verify`] for each verification
    /// attempt after a remedy.
    fn probe(&self, kind: StepKind, id: &str, sample: u32) -> crate::probes::ProbeOutcome;

    /// The outcome of action `id` (`kind`: [`StepKind::Action`] or [`StepKind::Rollback`]),
    /// asked only once the action passed every gate (dry run, approval, limit, intent row).
    fn action(&self, kind: StepKind, id: &str) -> crate::actions::ActionOutcome;

    /// The time expressions see as `now`, RFC 3339.
    fn now(&self) -> String;

    /// The time a sampled check took, for `rate_per_s`: by default `nominal`, the sampling
    /// interval times the samples taken less one.
    fn sampling_time(&self, kind: StepKind, id: &str, nominal: Duration) -> Duration {
        let _ = (kind, id);
        nominal
    }
}

/// A failure of the ledger: the run must stop acting (no audit, no action).
#[derive(Debug, thiserror::Error)]
#[error("audit trail: {0}")]
pub struct LedgerError(pub String);

/// The durable record the executor writes *before* it acts: run rows, intent rows, rate
/// limits and the per-runbook lock. Implemented by the `SQLite` audit store, and by
/// [`crate::exec::MemoryLedger`] for tests.
pub trait Ledger: Send + Sync {
    /// Where `incremental` probes keep read positions (the audit DB); `None` by default.
    fn positions(&self) -> Option<&dyn crate::probes::PositionStore> {
        None
    }

    /// Record the start of a run; returns its id. Marks runs left unfinished by a crash as
    /// `interrupted` first.
    ///
    /// # Errors
    /// When the record cannot be written.
    fn begin_run(&self, info: &RunInfo) -> Result<String, LedgerError>;

    /// Take the per-runbook lock; `Ok(false)` when another live run holds it.
    ///
    /// # Errors
    /// When the lock table cannot be written.
    fn lock(&self, runbook: &str, run_id: &str) -> Result<bool, LedgerError>;

    /// Release the lock.
    ///
    /// # Errors
    /// When the lock table cannot be written.
    fn unlock(&self, runbook: &str, run_id: &str) -> Result<(), LedgerError>;

    /// Count one use of `key` against `max` per `per` (persisted across processes);
    /// `Ok(false)` when the limit is used up.
    ///
    /// # Errors
    /// When the limits table cannot be written.
    fn take_limit(&self, key: &str, max: u32, per: Duration) -> Result<bool, LedgerError>;

    /// Commit an intent row for an action about to start; returns its step row id.
    ///
    /// # Errors
    /// When the row cannot be committed: the action must not start.
    fn intent(&self, run_id: &str, action_id: &str, inputs: &Value) -> Result<i64, LedgerError>;

    /// Record a finished step (for an action: completing its intent row `intent`).
    ///
    /// # Errors
    /// When the row cannot be written.
    fn record(
        &self,
        run_id: &str,
        intent: Option<i64>,
        step: &StepRecord,
    ) -> Result<(), LedgerError>;

    /// Record finished steps that are not actions, in order, as one write. The executor holds
    /// such rows back (a symptom, a cause, the checks of a wave) until it is about to wait on
    /// the outside world — the next wave of probes, an action, a verification — or ends the
    /// run: no row waits on I/O, and a run writes a few transactions, not one per step.
    ///
    /// # Errors
    /// When the rows cannot be written.
    fn record_steps(&self, run_id: &str, steps: &[StepRecord]) -> Result<(), LedgerError> {
        steps.iter().try_for_each(|s| self.record(run_id, None, s))
    }

    /// Record the end of a run.
    ///
    /// # Errors
    /// When the row cannot be written.
    fn finish_run(&self, run_id: &str, outcome: Outcome, exit_code: u8) -> Result<(), LedgerError>;

    /// Record the steps held back ([`Ledger::record_steps`]) and the end of the run (one
    /// durable write where the ledger can).
    ///
    /// # Errors
    /// When the rows cannot be written.
    fn finish_run_with(
        &self,
        run_id: &str,
        steps: &[StepRecord],
        outcome: Outcome,
        exit_code: u8,
    ) -> Result<(), LedgerError> {
        self.record_steps(run_id, steps)?;
        self.finish_run(run_id, outcome, exit_code)
    }

    /// Record a pending revert of a temporary change; returns its id.
    ///
    /// # Errors
    /// When the row cannot be written.
    fn add_revert(&self, revert: &NewRevert) -> Result<i64, LedgerError>;

    /// Pending reverts due at `now` (RFC 3339 UTC, milliseconds), oldest due first. Reverts
    /// left `running` by a `tick` whose process is gone are marked `failed` first.
    ///
    /// # Errors
    /// When the table cannot be read or written.
    fn due_reverts(&self, now: &str) -> Result<Vec<RevertRow>, LedgerError>;

    /// Claim a due pending revert for this process (`pending` → `running`), atomically: of
    /// two processes claiming the same row, exactly one gets `Ok(true)`.
    ///
    /// # Errors
    /// When the table cannot be written.
    fn claim_revert(&self, id: i64, now: &str) -> Result<bool, LedgerError>;

    /// Settle a revert: `Pending` hands a claimed one back (not run: approval, lock, rate
    /// limit), `Done`, `Failed` and `Cancelled` end it. `run_id` is the run that performed
    /// it, `result` what happened.
    ///
    /// # Errors
    /// When the row cannot be written.
    fn settle_revert(
        &self,
        id: i64,
        state: RevertState,
        run_id: Option<&str>,
        result: &Value,
    ) -> Result<(), LedgerError>;
}
