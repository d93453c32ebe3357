//! The executor: runs a compiled runbook against a [`Host`], wave by wave.
//!
//! 1. checks, each wave concurrently (bounded), each with its guard, rendered parameters,
//!    timeout and sampling; `expect` decides `ok` / `failed`;
//! 2. symptoms and causes, in order: matched, ruled out (every check it reads looked), or
//!    unknown;
//! 3. remedies of matched causes, in cause order, each mutating action gated (dry run,
//!    `--yes` / approval, rate limit) and preceded by a committed intent row; then the cause's
//!    verification with retry; a failed verification runs the actions' rollbacks;
//!    a temporary change (`revert_after`) is recorded as a pending revert as soon as it
//!    succeeded, before its result row (a crash in between leaves the revert, never a change
//!    recorded as made with nothing to undo it), and cancelled again when the same run rolls
//!    it back;
//! 4. escalation for what remains; the outcome and its exit code.
//!
//! [`Executor::revert`] is the other kind of run: a due pending revert's rollback actions
//! (`runbook tick`), through the same gates.
//!
//! Every step is reported as a [`RunEvent`] and written to the [`Ledger`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::actions::{self, ActionContext, ActionOutcome, NotifyTarget};
use crate::exec::events::{
    Ledger, LedgerError, NewRevert, Oracle, Origin, Outcome, Reporter, RevertState, RunEvent,
    RunInfo, StepKind, StepRecord, StepStatus,
};
use crate::host::{Host, HostMode};
use crate::probes::{PositionStore, ProbeContext, ProbeOutcome, TailPosition};
use crate::runbook::expr;
use crate::runbook::model::{Action, ActionForm, Check, Runbook};
use crate::runbook::value::{DurationParam, is_template, parse_duration};

/// Shown instead of a secret.
pub const REDACTED: &str = "***";
/// How many checks of one wave run at once.
pub const CONCURRENCY: usize = 8;

/// Asks a person whether a mutating action may run.
pub trait Approver: Send + Sync {
    /// `true` to run it. `timeout` bounds the wait; no answer means no.
    fn approve(&self, prompt: &str, timeout: Duration) -> bool;
}

/// How to run.
pub struct Options {
    /// Run mutating actions without asking.
    pub yes: bool,
    /// A person is at a terminal (approval prompts, `manual` probes).
    pub interactive: bool,
    /// cli, webhook, schedule.
    pub trigger: String,
    /// The alert that started the run, as the `alert` context (`labels`, `annotations`, ...).
    pub alert: Option<Value>,
    /// Asks for approval when interactive.
    pub approver: Option<Box<dyn Approver>>,
    /// Notification channels by name.
    pub channels: HashMap<String, NotifyTarget>,
    /// Escalation ladder levels (id, name), lowest first.
    pub ladder: Vec<(String, String)>,
    /// Wait this long for another run of the same runbook to finish.
    pub lock_wait: Duration,
    /// Mutating actions a person approved beforehand (`runbook approve`, `POST
    /// /api/runs/ID/approve`): they run without `yes` or a prompt; the others are still gated.
    pub approved: HashSet<String>,
    /// A server run's key (the alert's fingerprint, `schedule`, ...): recorded with the run's
    /// row, with `alert` and `delivery` ([`Origin`]).
    pub key: Option<String>,
    /// The `alerts` row (a webhook delivery) this run answers.
    pub delivery: Option<i64>,
    /// Answers to `manual` checks given beforehand (`runbook run --answer ID=yes`), by check
    /// id: those checks take them without asking.
    pub answers: HashMap<String, bool>,
    /// Answers in place of the host (`runbook test`, `runbook replay`): no probe, no action,
    /// no sleep runs; see [`Oracle`].
    pub oracle: Option<std::sync::Arc<dyn Oracle>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            yes: false,
            interactive: false,
            trigger: "cli".into(),
            alert: None,
            approver: None,
            channels: HashMap::new(),
            ladder: Vec::new(),
            lock_wait: Duration::from_secs(10),
            approved: HashSet::new(),
            key: None,
            delivery: None,
            answers: HashMap::new(),
            oracle: None,
        }
    }
}

impl Options {
    /// Whether a diagnosis run of `rb` with these options may change the host: the runbook
    /// has a mutating action and something consents to one (`yes`, a prompt, an approval).
    /// Only such runs take the per-runbook lock.
    #[must_use]
    pub fn may_change(&self, rb: &Runbook) -> bool {
        rb.actions.iter().any(Action::mutating)
            && (self.yes || self.interactive || !self.approved.is_empty())
    }
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Run id in the ledger.
    pub run_id: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Exit code.
    pub exit_code: u8,
}

/// What a revert run ended with.
#[derive(Debug, Clone)]
pub struct RevertResult {
    /// The run.
    pub run: RunResult,
    /// Each rollback action attempted, in order, with its status; the run stops at the first
    /// that did not succeed.
    pub actions: Vec<(String, StepStatus)>,
}

/// What a run does once it holds the lock.
enum Body<'b> {
    /// Checks, causes, remedies, verification, escalation.
    Diagnose,
    /// Only these actions, as rollbacks.
    Revert(&'b [String]),
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The ledger failed: no audit, no action.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Another run of the same runbook holds the lock.
    #[error("another run of `{0}` is in progress; try again when it ends")]
    Locked(String),
}

/// State of one check as expressions see it (`checks.<id>`).
fn check_view(
    check: &Check,
    fields: Option<&Map<String, Value>>,
    state: StepStatus,
    reason: Option<&str>,
) -> Value {
    let mut m = Map::new();
    for f in check.probe.fields() {
        m.insert((*f).to_owned(), Value::Null);
    }
    if let Some(fields) = fields {
        for (k, v) in fields {
            m.insert(k.clone(), v.clone());
        }
    }
    let state_name = status_name(state);
    m.insert("ok".into(), Value::Bool(state == StepStatus::Ok));
    m.insert("failed".into(), Value::Bool(state == StepStatus::Failed));
    m.insert("error".into(), Value::Bool(state == StepStatus::Error));
    m.insert("skipped".into(), Value::Bool(state == StepStatus::Skipped));
    m.insert("unknown".into(), Value::Bool(state == StepStatus::Unknown));
    m.insert("state".into(), Value::String(state_name.into()));
    if m.get("status").is_none_or(Value::is_null) {
        m.insert("status".into(), Value::String(state_name.into()));
    }
    m.entry("value").or_insert(Value::Null);
    m.entry("duration_ms").or_insert(Value::Null);
    if let Some(r) = reason {
        m.insert("reason".into(), Value::String(r.into()));
    } else {
        m.entry("reason").or_insert(Value::Null);
    }
    for f in crate::probes::SAMPLE_FIELDS {
        m.entry(*f).or_insert(Value::Null);
    }
    Value::Object(m)
}

/// The lowercase name of a status.
#[must_use]
pub fn status_name(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Ok => "ok",
        StepStatus::Failed => "failed",
        StepStatus::Error => "error",
        StepStatus::Skipped => "skipped",
        StepStatus::Unknown => "unknown",
        StepStatus::Matched => "matched",
        StepStatus::RuledOut => "ruled_out",
        StepStatus::Absent => "absent",
        StepStatus::NeedsApproval => "needs_approval",
        StepStatus::RateLimited => "rate_limited",
        StepStatus::DryRun => "dry_run",
    }
}

/// Replace every secret value inside strings of `v` with `***`.
pub fn redact(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) => {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), REDACTED);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, secrets)),
        Value::Object(m) => m.values_mut().for_each(|i| redact(i, secrets)),
        _ => {}
    }
}

fn render_tree(v: &Value, ctx: &Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if is_template(s) => Value::String(expr::render(s, ctx)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_tree(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render_tree(v, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The executor for one run.
pub struct Executor<'a> {
    rb: &'a Runbook,
    host: &'a dyn Host,
    ledger: &'a dyn Ledger,
    reporters: Vec<Box<dyn Reporter + 'a>>,
    opts: Options,
    params: Value,
    redacted_params: Value,
    secrets: Vec<String>,
    run_id: String,
    /// Read once: every step's context carries it.
    hostname: String,
    checks: Map<String, Value>,
    causes: Map<String, Value>,
    symptoms: Map<String, Value>,
    /// Statuses of the actions of a revert run.
    reverted: Vec<(String, StepStatus)>,
    /// Finished steps not yet written: written together before the run next waits on the
    /// outside world (a wave of probes, an action, a verification) or with its end.
    held: Vec<StepRecord>,
    /// Saved read positions (`jsonl` with `incremental`); read-only in a dry run.
    positions: Option<Positions<'a>>,
}

/// The ledger's read positions as the probes see them: a dry run reads them and saves none.
enum Positions<'a> {
    ReadWrite(&'a dyn PositionStore),
    ReadOnly(&'a dyn PositionStore),
}

impl PositionStore for Positions<'_> {
    fn load_positions(&self, reader: &str) -> Result<Vec<TailPosition>, String> {
        match self {
            Positions::ReadWrite(s) | Positions::ReadOnly(s) => s.load_positions(reader),
        }
    }

    fn save_positions(&self, reader: &str, positions: &[TailPosition]) -> Result<(), String> {
        match self {
            Positions::ReadWrite(s) => s.save_positions(reader, positions),
            Positions::ReadOnly(_) => Ok(()),
        }
    }
}

/// What a check's probe runs with: the host, a person at the terminal, saved positions.
#[derive(Clone, Copy)]
struct Probing<'x> {
    host: &'x dyn Host,
    interactive: bool,
    positions: Option<&'x dyn PositionStore>,
    runbook: &'x str,
    /// Answers to `manual` checks given beforehand, by check id.
    answers: &'x HashMap<String, bool>,
    /// Answers in place of the probes.
    oracle: Option<&'x dyn Oracle>,
}

impl<'a> Executor<'a> {
    fn probing(&self) -> Probing<'_> {
        Probing {
            host: self.host,
            interactive: self.opts.interactive,
            positions: self.positions.as_ref().map(|p| p as &dyn PositionStore),
            runbook: &self.rb.name,
            answers: &self.opts.answers,
            oracle: self.opts.oracle.as_deref(),
        }
    }

    /// Prepare a run with resolved parameters (`params`: name → value) and the names of the
    /// secret ones.
    pub fn new(
        rb: &'a Runbook,
        host: &'a dyn Host,
        ledger: &'a dyn Ledger,
        params: Map<String, Value>,
        opts: Options,
    ) -> Self {
        let mut secrets = Vec::new();
        let mut redacted = params.clone();
        for p in rb.params.iter().filter(|p| p.secret) {
            if let Some(v) = params.get(&p.name) {
                secrets.push(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                redacted.insert(p.name.clone(), Value::String(REDACTED.into()));
            }
        }
        let causes = rb
            .causes
            .iter()
            .map(|c| (c.id.clone(), json!({"matched": false, "ruled_out": false, "unknown": true, "status": "pending"})))
            .collect();
        let symptoms = rb
            .symptoms
            .iter()
            .map(|s| (s.id.clone(), json!({"present": false})))
            .collect();
        let checks = rb
            .checks
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    check_view(c, None, StepStatus::Skipped, Some("not run yet")),
                )
            })
            .collect();
        Executor {
            rb,
            host,
            ledger,
            reporters: Vec::new(),
            opts,
            params: Value::Object(params),
            redacted_params: Value::Object(redacted),
            secrets,
            run_id: String::new(),
            hostname: host.hostname(),
            checks,
            causes,
            symptoms,
            reverted: Vec::new(),
            held: Vec::new(),
            positions: ledger.positions().map(|p| {
                if host.mode() == HostMode::DryRun {
                    Positions::ReadOnly(p)
                } else {
                    Positions::ReadWrite(p)
                }
            }),
        }
    }

    /// Add a reporter.
    pub fn reporter(&mut self, r: Box<dyn Reporter + 'a>) {
        self.reporters.push(r);
    }

    fn emit(&mut self, e: &RunEvent) {
        for r in &mut self.reporters {
            r.event(e);
        }
    }

    fn context(&self, redacted: bool) -> Value {
        let alert = self
            .opts
            .alert
            .clone()
            .unwrap_or_else(|| json!({"labels": {}, "annotations": {}, "status": null}));
        json!({
            "params": if redacted { &self.redacted_params } else { &self.params },
            "checks": self.checks,
            "causes": self.causes,
            "symptoms": self.symptoms,
            "alert": alert,
            "host": self.hostname,
            "now": self.opts.oracle.as_ref().map_or_else(now_rfc3339, |o| o.now()),
        })
    }

    fn finish_step(&mut self, mut step: StepRecord, intent: Option<i64>) -> Result<(), ExecError> {
        redact(&mut step.inputs, &self.secrets);
        redact(&mut step.result, &self.secrets);
        if let Some(d) = &mut step.decided_by {
            let mut v = Value::String(std::mem::take(d));
            redact(&mut v, &self.secrets);
            v.as_str().unwrap_or_default().clone_into(d);
        }
        if let Some(intent) = intent {
            self.write_held()?;
            self.ledger.record(&self.run_id, Some(intent), &step)?;
            self.emit(&RunEvent::StepFinished(step));
        } else {
            self.emit(&RunEvent::StepFinished(step.clone()));
            self.held.push(step);
        }
        Ok(())
    }

    /// Write the steps held back, in order, before the run waits on the outside world or
    /// writes any other row.
    fn write_held(&mut self) -> Result<(), ExecError> {
        if !self.held.is_empty() {
            self.ledger.record_steps(&self.run_id, &self.held)?;
            self.held.clear();
        }
        Ok(())
    }

    /// Run everything; the outcome decides the exit code.
    ///
    /// # Errors
    /// The ledger failed, or another run holds the runbook's lock.
    pub async fn run(&mut self) -> Result<RunResult, ExecError> {
        self.drive(Body::Diagnose).await
    }

    /// Run `actions` (the rollback of a due temporary change) as a run of its own: no checks,
    /// each action through every gate of a remedy (dry run, `--yes` / approval, limit, intent
    /// row), in order, stopping at the first that does not succeed. The outcome is
    /// `remediated` when every one succeeded, else `problem_remains`.
    ///
    /// # Errors
    /// The ledger failed, or another run holds the runbook's lock.
    pub async fn revert(&mut self, actions: &[String]) -> Result<RevertResult, ExecError> {
        self.reverted.clear();
        let run = self.drive(Body::Revert(actions)).await?;
        Ok(RevertResult {
            run,
            actions: std::mem::take(&mut self.reverted),
        })
    }

    async fn drive(&mut self, body: Body<'_>) -> Result<RunResult, ExecError> {
        let started = Instant::now();
        let info = RunInfo {
            runbook: self.rb.name.clone(),
            runbook_sha256: sha256_hex(self.rb.file.text.as_bytes()),
            trigger: self.opts.trigger.clone(),
            params: self.redacted_params.clone(),
            host: self.hostname.clone(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            mode: match self.host.mode() {
                HostMode::Real => "real".into(),
                HostMode::DryRun => "dry_run".into(),
            },
            origin: self.opts.key.clone().map(|key| Origin {
                key,
                alert: self.opts.alert.clone(),
                delivery: self.opts.delivery,
            }),
        };
        self.run_id = self.ledger.begin_run(&info)?;
        // The per-runbook lock keeps two runs from changing the host at once. A run that
        // cannot change anything (a dry run, a runbook with no mutating action, or no consent:
        // no `--yes`, no prompt, nothing approved) takes none, so diagnoses run side by side.
        let locked = self.host.mode() == HostMode::Real
            && match body {
                Body::Revert(_) => true,
                Body::Diagnose => self.opts.may_change(self.rb),
            };
        if locked {
            let deadline = Instant::now() + self.opts.lock_wait;
            let mut pause = Duration::from_millis(5);
            while !self.ledger.lock(&self.rb.name, &self.run_id)? {
                if Instant::now() >= deadline {
                    self.ledger
                        .finish_run(&self.run_id, Outcome::Fault, crate::exit::FAULT)?;
                    return Err(ExecError::Locked(self.rb.name.clone()));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
        self.emit(&RunEvent::RunStarted {
            run_id: self.run_id.clone(),
            info,
        });
        let result = match body {
            Body::Diagnose => self.run_locked().await,
            Body::Revert(actions) => self.revert_locked(actions).await,
        };
        let unlock = if locked {
            self.ledger.unlock(&self.rb.name, &self.run_id)
        } else {
            Ok(())
        };
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                let held = std::mem::take(&mut self.held);
                let _ = self.ledger.finish_run_with(
                    &self.run_id,
                    &held,
                    Outcome::Fault,
                    crate::exit::FAULT,
                );
                return Err(e);
            }
        };
        unlock?;
        let exit_code = outcome.exit_code();
        let held = std::mem::take(&mut self.held);
        self.ledger
            .finish_run_with(&self.run_id, &held, outcome, exit_code)?;
        self.emit(&RunEvent::RunFinished {
            run_id: self.run_id.clone(),
            outcome,
            exit_code,
            duration_ms: ms(started.elapsed()),
        });
        Ok(RunResult {
            run_id: self.run_id.clone(),
            outcome,
            exit_code,
        })
    }

    async fn revert_locked(&mut self, actions: &[String]) -> Result<Outcome, ExecError> {
        let rb = self.rb;
        for id in actions {
            let Some(action) = rb.action(id) else {
                // The caller checks the ids against the runbook first; a gone one is a failure.
                self.reverted.push((id.clone(), StepStatus::Error));
                return Ok(Outcome::ProblemRemains);
            };
            let (status, ok, _) = self.run_action(action, StepKind::Rollback).await?;
            self.reverted.push((id.clone(), status));
            if !ok {
                return Ok(Outcome::ProblemRemains);
            }
        }
        Ok(Outcome::Remediated)
    }

    /// Record a pending revert for a temporary change that just succeeded; returns its id and
    /// due time.
    fn record_revert(
        &mut self,
        action: &Action,
        after: Duration,
    ) -> Result<(i64, String), ExecError> {
        self.write_held()?;
        let now = chrono::Utc::now();
        // An absurd `revert_after` means "never", not a panic; and a four-digit year, so
        // that the text order of `due_at` stays the time order.
        let never = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
            .map_or(now, |t| t.and_utc());
        let due = chrono::Duration::from_std(after)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .map_or(never, |d| d.min(never));
        let revert = NewRevert {
            run_id: self.run_id.clone(),
            runbook: self.rb.name.clone(),
            runbook_file: self.rb.file.name.clone(),
            runbook_sha256: sha256_hex(self.rb.file.text.as_bytes()),
            action_id: action.id.clone(),
            rollback: action.rollback.clone(),
            params: self.redacted_params.clone(),
            due_at: due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let id = self.ledger.add_revert(&revert)?;
        Ok((id, revert.due_at))
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the run's phases in order; split when escalation grows"
    )]
    async fn run_locked(&mut self) -> Result<Outcome, ExecError> {
        let rb = self.rb;
        // 1. checks, wave by wave.
        let mut any_failed = false;
        for wave in crate::plan::waves(&rb.checks) {
            self.write_held()?;
            let ctx = self.context(false);
            let rctx = self.context(true);
            for c in &wave {
                self.emit(&RunEvent::StepStarted {
                    kind: StepKind::Check,
                    id: c.id.clone(),
                });
            }
            let probing = self.probing();
            let results: Vec<(usize, StepRecord, Value)> =
                futures::stream::iter(wave.iter().enumerate())
                    .map(|(i, c)| {
                        let (ctx, rctx) = (&ctx, &rctx);
                        async move {
                            let (step, view) =
                                run_check(c, probing, ctx, rctx, StepKind::Check).await;
                            (i, step, view)
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
            let mut results = results;
            results.sort_by_key(|(i, _, _)| *i);
            for (_, step, view) in results {
                // A check that could not look leaves health unproven: not healthy.
                any_failed |= matches!(
                    step.status,
                    StepStatus::Failed | StepStatus::Error | StepStatus::Unknown
                );
                self.checks.insert(step.id.clone(), view);
                self.finish_step(step, None)?;
            }
        }

        // 2. symptoms.
        for s in &rb.symptoms {
            let Some(when) = &s.when else { continue };
            let started = now_rfc3339();
            let (status, decided) = match expr::eval_bool(when, &self.context(false)) {
                Ok(true) => (StepStatus::Matched, "present".to_owned()),
                Ok(false) => (StepStatus::Absent, "absent".to_owned()),
                Err(e) => (StepStatus::Unknown, e),
            };
            self.symptoms.insert(
                s.id.clone(),
                json!({"present": status == StepStatus::Matched}),
            );
            self.finish_step(
                StepRecord {
                    kind: StepKind::Symptom,
                    id: s.id.clone(),
                    status,
                    inputs: json!({"when": when, "text": s.text}),
                    result: json!({"present": status == StepStatus::Matched}),
                    decided_by: Some(decided),
                    guidance: None,
                    started_at: started,
                    duration_ms: 0,
                },
                None,
            )?;
        }

        // 3. causes in order.
        let mut matched: Vec<&crate::runbook::model::Cause> = Vec::new();
        for c in &rb.causes {
            let started = now_rfc3339();
            let ctx = self.context(false);
            let (status, decided) = match expr::eval_bool(&c.when, &ctx) {
                Ok(true) => (StepStatus::Matched, format!("{} is true", c.when)),
                Ok(false) => {
                    let all_looked =
                        c.checks
                            .iter()
                            .filter(|x| !x.starts_with("causes."))
                            .all(|id| {
                                self.checks
                                    .get(id)
                                    .is_some_and(|v| v["ok"] == true || v["failed"] == true)
                            });
                    if all_looked {
                        (
                            StepStatus::RuledOut,
                            "every check it reads looked".to_owned(),
                        )
                    } else {
                        (
                            StepStatus::Unknown,
                            "a check it reads could not look".to_owned(),
                        )
                    }
                }
                Err(e) => (StepStatus::Unknown, e),
            };
            self.causes.insert(
                c.id.clone(),
                json!({
                    "matched": status == StepStatus::Matched,
                    "ruled_out": status == StepStatus::RuledOut,
                    "unknown": status == StepStatus::Unknown,
                    "status": status_name(status),
                }),
            );
            if status == StepStatus::Matched {
                matched.push(c);
            }
            self.finish_step(
                StepRecord {
                    kind: StepKind::Cause,
                    id: c.id.clone(),
                    status,
                    inputs: json!({"when": c.when, "title": c.title}),
                    result: self.causes[&c.id].clone(),
                    decided_by: Some(decided),
                    guidance: if status == StepStatus::Matched {
                        c.guidance.clone()
                    } else {
                        None
                    },
                    started_at: started,
                    duration_ms: 0,
                },
                None,
            )?;
        }

        // 4. remedies and verification.
        let mut unresolved: Vec<(&crate::runbook::model::Cause, String)> = Vec::new();
        let mut remediated = false;
        for cause in matched {
            let mut ran: Vec<&Action> = Vec::new();
            // Pending reverts recorded in this cause, by action id.
            let mut reverts: HashMap<&str, i64> = HashMap::new();
            let mut blocked = None;
            let mut mutated = false;
            for id in &cause.remedy {
                let Some(action) = rb.action(id) else {
                    continue;
                };
                let (status, ok, revert) = self.run_action(action, StepKind::Action).await?;
                if ok {
                    // Recorded by `run_action` before the action's result, so before
                    // verification: a run that stops from here on still leaves the change to
                    // be undone when due.
                    if let Some((id, due)) = revert {
                        reverts.insert(&action.id, id);
                        self.emit(&RunEvent::Message {
                            text: format!(
                                "temporary change `{}`: `{}` due at {due} (performed by `runbook tick`)",
                                action.id,
                                action.rollback.join("`, `")
                            ),
                        });
                    }
                    ran.push(action);
                    mutated |= action.mutating();
                } else {
                    blocked = Some(format!("action `{}` {}", action.id, status_name(status)));
                    break;
                }
            }
            if let Some(why) = blocked {
                unresolved.push((cause, why));
                continue;
            }
            if !mutated {
                unresolved.push((cause, "no automatic fix".into()));
                continue;
            }
            let mut verify: Vec<String> = cause.verify.clone();
            for a in &ran {
                for v in &a.verify {
                    if !verify.contains(v) {
                        verify.push(v.clone());
                    }
                }
            }
            let retry = ran.iter().rev().find_map(|a| a.retry);
            let attempts = retry.map_or(1, |r| r.attempts.max(1));
            let backoff = retry.map_or(Duration::ZERO, |r| r.backoff);
            let mut passed = verify.is_empty();
            for attempt in 1..=attempts {
                if attempt > 1 && self.opts.oracle.is_none() {
                    tokio::time::sleep(backoff).await;
                }
                passed = self.verify(&verify).await?;
                if passed {
                    break;
                }
            }
            if passed {
                remediated = true;
            } else {
                for a in ran.iter().rev() {
                    let mut undone = true;
                    for rid in &a.rollback {
                        if let Some(rba) = rb.action(rid) {
                            undone &= self.run_action(rba, StepKind::Rollback).await?.1;
                        } else {
                            undone = false;
                        }
                    }
                    // Undone already: nothing left to revert. A rollback that did not
                    // succeed leaves the revert pending, so `tick` tries again when due.
                    if let Some(id) = reverts.get(a.id.as_str())
                        && undone
                    {
                        self.write_held()?;
                        self.ledger.settle_revert(
                            *id,
                            RevertState::Cancelled,
                            Some(&self.run_id),
                            &json!({"reason": "rolled back in the same run after verification failed"}),
                        )?;
                    }
                }
                unresolved.push((cause, "verification failed".into()));
            }
        }

        // 5. escalation.
        for (cause, why) in &unresolved {
            let level = cause
                .escalate
                .clone()
                .or_else(|| self.opts.ladder.first().map(|(id, _)| id.clone()))
                .unwrap_or_else(|| "L1".into());
            let name = self
                .opts
                .ladder
                .iter()
                .find(|(id, _)| *id == level)
                .map(|(_, n)| n.clone());
            let ladder = rb.escalation.as_ref().and_then(|e| e.ladder.clone());
            self.finish_step(
                StepRecord {
                    kind: StepKind::Escalation,
                    id: cause.id.clone(),
                    status: StepStatus::Matched,
                    inputs: json!({"cause": cause.id, "ladder": ladder, "level": level}),
                    result: json!({"level": level, "name": name, "why": why}),
                    decided_by: Some(format!(
                        "{level}{}: {why}",
                        name.map(|n| format!(" ({n})")).unwrap_or_default()
                    )),
                    guidance: cause.guidance.clone(),
                    started_at: now_rfc3339(),
                    duration_ms: 0,
                },
                None,
            )?;
        }

        Ok(if !unresolved.is_empty() {
            Outcome::ProblemRemains
        } else if remediated {
            Outcome::Remediated
        } else if any_failed {
            Outcome::ProblemRemains
        } else {
            Outcome::Healthy
        })
    }

    async fn verify(&mut self, ids: &[String]) -> Result<bool, ExecError> {
        let mut all_ok = true;
        for id in ids {
            let Some(check) = self.rb.check(id) else {
                continue;
            };
            self.write_held()?;
            self.emit(&RunEvent::StepStarted {
                kind: StepKind::Verify,
                id: id.clone(),
            });
            let (ctx, rctx) = (self.context(false), self.context(true));
            let (step, view) =
                run_check(check, self.probing(), &ctx, &rctx, StepKind::Verify).await;
            all_ok &= step.status == StepStatus::Ok;
            self.checks.insert(id.clone(), view);
            self.finish_step(step, None)?;
        }
        Ok(all_ok)
    }

    /// Run one action with every gate; returns its status, whether it succeeded and, for a
    /// temporary change of a remedy that succeeded, its pending revert (id, due time).
    #[expect(clippy::too_many_lines, reason = "the gates in the order they apply")]
    async fn run_action(
        &mut self,
        action: &Action,
        kind: StepKind,
    ) -> Result<(StepStatus, bool, Option<(i64, String)>), ExecError> {
        self.write_held()?;
        self.emit(&RunEvent::StepStarted {
            kind,
            id: action.id.clone(),
        });
        let started_at = now_rfc3339();
        let t0 = Instant::now();
        let ctx = self.context(false);
        let rctx = self.context(true);
        let form_json = serde_json::to_value(&action.form).unwrap_or(Value::Null);
        let env_json = serde_json::to_value(&action.env).unwrap_or(Value::Null);
        let inputs = json!({
            "form": render_tree(&form_json, &rctx).unwrap_or(form_json.clone()),
            "env": render_tree(&env_json, &rctx).unwrap_or(env_json.clone()),
            "cwd": action.cwd,
        });
        let record = |status: StepStatus, result: Value, decided: String| StepRecord {
            kind,
            id: action.id.clone(),
            status,
            inputs: inputs.clone(),
            result,
            decided_by: Some(decided),
            guidance: action.guidance.clone(),
            started_at: started_at.clone(),
            duration_ms: ms(t0.elapsed()),
        };
        let rendered = match (render_tree(&form_json, &ctx), render_tree(&env_json, &ctx)) {
            (Ok(f), Ok(e)) => (f, e),
            (Err(e), _) | (_, Err(e)) => {
                self.finish_step(
                    record(
                        StepStatus::Error,
                        json!({"error": e}),
                        format!("could not render: {e}"),
                    ),
                    None,
                )?;
                return Ok((StepStatus::Error, false, None));
            }
        };
        if action.mutating() {
            if self.host.mode() == HostMode::DryRun {
                self.finish_step(
                    record(
                        StepStatus::DryRun,
                        Value::Null,
                        "dry run: not executed".into(),
                    ),
                    None,
                )?;
                return Ok((StepStatus::DryRun, false, None));
            }
            if !self.opts.yes && !self.opts.approved.contains(&action.id) {
                let prompt = action.approve.as_ref().map_or_else(
                    || format!("run `{}` ({})?", action.id, action.kind.name()),
                    |a| expr::render(&a.prompt, &ctx).unwrap_or_else(|_| a.prompt.clone()),
                );
                let wait = action
                    .approve
                    .as_ref()
                    .map_or(Duration::from_secs(300), |a| a.timeout);
                let approved = self.opts.interactive
                    && self
                        .opts
                        .approver
                        .as_ref()
                        .is_some_and(|ap| ap.approve(&prompt, wait));
                if !approved {
                    let why = if self.opts.interactive {
                        "declined"
                    } else {
                        "skipped: needs approval (--yes)"
                    };
                    self.finish_step(
                        record(
                            StepStatus::NeedsApproval,
                            json!({"prompt": prompt}),
                            why.into(),
                        ),
                        None,
                    )?;
                    return Ok((StepStatus::NeedsApproval, false, None));
                }
            }
            if let Some(limit) = action.limit {
                let key = format!("{}/{}", self.rb.name, action.id);
                if !self.ledger.take_limit(&key, limit.max, limit.per)? {
                    let why = format!(
                        "limit of {} per {} used up",
                        limit.max,
                        crate::runbook::value::format_duration(limit.per)
                    );
                    self.finish_step(record(StepStatus::RateLimited, Value::Null, why), None)?;
                    return Ok((StepStatus::RateLimited, false, None));
                }
            }
        }
        let intent = if action.mutating() {
            let mut redacted_inputs = inputs.clone();
            redact(&mut redacted_inputs, &self.secrets);
            Some(
                self.ledger
                    .intent(&self.run_id, &action.id, &redacted_inputs)?,
            )
        } else {
            None
        };
        let form = match render_form(&action.form, &ctx) {
            Ok(f) => f,
            Err(e) => {
                self.finish_step(
                    record(
                        StepStatus::Error,
                        json!({"error": e}),
                        format!("could not render: {e}"),
                    ),
                    intent,
                )?;
                return Ok((StepStatus::Error, false, None));
            }
        };
        let env: indexmap::IndexMap<String, String> =
            serde_json::from_value(rendered.1).unwrap_or_default();
        let cwd = action
            .cwd
            .as_ref()
            .map(|c| expr::render(c, &ctx).unwrap_or_else(|_| c.clone()));
        let acx = ActionContext {
            runbook: &self.rb.name,
            host: self.host,
            timeout: action.timeout,
            env: &env,
            cwd: cwd.as_deref(),
        };
        let outcome = if let Some(oracle) = &self.opts.oracle {
            oracle.action(kind, &action.id)
        } else {
            match tokio::time::timeout(
                action.timeout + Duration::from_secs(5),
                execute_form(&form, &acx, &self.opts.channels),
            )
            .await
            {
                Ok(o) => o,
                Err(_) => ActionOutcome::failed(format!(
                    "timed out after {}",
                    crate::runbook::value::format_duration(action.timeout)
                )),
            }
        };
        if let ActionForm::Notify { channel, message } = &form
            && matches!(
                self.opts.channels.get(channel),
                None | Some(NotifyTarget::Stdout)
            )
        {
            let mut text = Value::String(format!("[{channel}] {message}"));
            redact(&mut text, &self.secrets);
            self.emit(&RunEvent::Message {
                text: text.as_str().unwrap_or_default().to_owned(),
            });
        }
        let status = if outcome.ok {
            StepStatus::Ok
        } else {
            StepStatus::Failed
        };
        // A temporary change that was made gets its pending revert before its result row:
        // a process killed between the two leaves the revert (and an intent with no result),
        // never a change marked done with nothing to undo it.
        let revert = match action.revert_after {
            Some(after)
                if outcome.ok && kind == StepKind::Action && !action.rollback.is_empty() =>
            {
                Some(self.record_revert(action, after)?)
            }
            _ => None,
        };
        self.finish_step(
            record(
                status,
                Value::Object(outcome.detail.clone()),
                outcome.summary.clone(),
            ),
            intent,
        )?;
        Ok((status, outcome.ok, revert))
    }
}

/// Render every template of an action form.
fn render_form(form: &ActionForm, ctx: &Value) -> Result<ActionForm, String> {
    let r = |s: &String| -> Result<String, String> {
        if is_template(s) {
            expr::render(s, ctx)
        } else {
            Ok(s.clone())
        }
    };
    let ro =
        |s: &Option<String>| -> Result<Option<String>, String> { s.as_ref().map(r).transpose() };
    Ok(match form {
        ActionForm::Run(argv) => ActionForm::Run(argv.iter().map(r).collect::<Result<_, _>>()?),
        ActionForm::Shell(script) => ActionForm::Shell(script.clone()),
        ActionForm::Http(req) => ActionForm::Http(actions::http::HttpRequest {
            url: r(&req.url)?,
            headers: req
                .headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), r(v)?)))
                .collect::<Result<_, String>>()?,
            body: ro(&req.body)?,
            token_file: ro(&req.token_file)?,
            ..req.clone()
        }),
        ActionForm::Systemd {
            unit,
            op,
            systemctl,
        } => ActionForm::Systemd {
            unit: r(unit)?,
            op: *op,
            systemctl: ro(systemctl)?,
        },
        ActionForm::SetEnv { file, key, value } => ActionForm::SetEnv {
            file: r(file)?,
            key: r(key)?,
            value: r(value)?,
        },
        ActionForm::Backup { from, to } => ActionForm::Backup {
            from: r(from)?,
            to: r(to)?,
        },
        ActionForm::Restore { from, to, backup } => ActionForm::Restore {
            from: r(from)?,
            to: r(to)?,
            backup: ro(backup)?,
        },
        ActionForm::Notify { channel, message } => ActionForm::Notify {
            channel: channel.clone(),
            message: r(message)?,
        },
    })
}

async fn execute_form(
    form: &ActionForm,
    cx: &ActionContext<'_>,
    channels: &HashMap<String, NotifyTarget>,
) -> ActionOutcome {
    match form {
        ActionForm::Run(argv) => actions::run::execute(argv, cx).await,
        ActionForm::Shell(script) => actions::shell::execute(script, cx).await,
        ActionForm::Http(req) => actions::http::execute(req, cx).await,
        ActionForm::Systemd {
            unit,
            op,
            systemctl,
        } => actions::systemd::execute_with(systemctl.as_deref(), unit, *op, cx).await,
        ActionForm::SetEnv { file, key, value } => {
            actions::set_env::execute(file, key, value, cx).await
        }
        ActionForm::Backup { from, to } => actions::backup::execute(from, to, cx).await,
        ActionForm::Restore { from, to, backup } => {
            actions::restore::execute(from, to, backup.as_deref(), cx).await
        }
        ActionForm::Notify { channel, message } => {
            let target = channels
                .get(channel)
                .cloned()
                .unwrap_or(NotifyTarget::Stdout);
            actions::notify::execute(&target, message, cx).await
        }
    }
}

/// Run one check (guard, render, probe with timeout and sampling, expect).
#[expect(
    clippy::too_many_lines,
    reason = "guard, render, sample, decide: one path"
)]
async fn run_check(
    c: &Check,
    probing: Probing<'_>,
    ctx: &Value,
    rctx: &Value,
    kind: StepKind,
) -> (StepRecord, Value) {
    let started_at = now_rfc3339();
    let t0 = Instant::now();
    let inputs = json!({
        "probe": c.probe.name(),
        "with": render_tree(&c.with, rctx).unwrap_or_else(|_| c.with.clone()),
        "when": c.when, "expect": c.expect,
    });
    let done = |status: StepStatus,
                fields: Option<&Map<String, Value>>,
                reason: Option<&str>,
                decided: String| {
        let view = check_view(c, fields, status, reason);
        let mut result = view.clone();
        if let Value::Object(m) = &mut result {
            m.insert("duration_ms".into(), json!(ms(t0.elapsed())));
        }
        (
            StepRecord {
                kind,
                id: c.id.clone(),
                status,
                inputs: inputs.clone(),
                result,
                decided_by: Some(decided),
                guidance: if matches!(status, StepStatus::Failed | StepStatus::Error) {
                    c.guidance.clone()
                } else {
                    None
                },
                started_at: started_at.clone(),
                duration_ms: ms(t0.elapsed()),
            },
            view,
        )
    };
    if let Some(when) = &c.when {
        match expr::eval_bool(when, ctx) {
            Ok(true) => {}
            Ok(false) => {
                return done(
                    StepStatus::Skipped,
                    None,
                    Some("guard is false"),
                    format!("when {when}: false"),
                );
            }
            Err(e) => return done(StepStatus::Error, None, Some(&e), format!("guard: {e}")),
        }
    }
    let with = match render_tree(&c.with, ctx) {
        Ok(w) => w,
        Err(e) => {
            return done(
                StepStatus::Error,
                None,
                Some(&e),
                format!("could not render: {e}"),
            );
        }
    };
    let reader = format!("{}/{}", probing.runbook, c.id);
    let cx = ProbeContext {
        host: probing.host,
        timeout: c.timeout,
        interactive: probing.interactive,
        positions: probing.positions,
        reader: &reader,
        answer: probing.answers.get(&c.id).copied(),
    };
    let times = c.sample.as_ref().map_or(1, |s| s.times.max(1));
    let every = match c.sample.as_ref().map(|s| &s.every) {
        None => Duration::ZERO,
        Some(DurationParam::Fixed(d)) => *d,
        Some(DurationParam::Template(t)) => {
            match expr::render(t, ctx).and_then(|s| parse_duration(&s)) {
                Ok(d) => d,
                Err(e) => {
                    let e = format!("`sample.every`: {e}");
                    return done(StepStatus::Error, None, Some(&e), e.clone());
                }
            }
        }
    };
    let mut values = Vec::new();
    let mut last = None;
    let sample_start = Instant::now();
    for i in 0..times {
        let outcome = if let Some(oracle) = probing.oracle {
            oracle.probe(kind, &c.id, i)
        } else {
            if i > 0 {
                tokio::time::sleep(every).await;
            }
            match tokio::time::timeout(c.timeout, c.probe.run(&with, &cx)).await {
                Ok(o) => o,
                Err(_) => ProbeOutcome::unreachable(format!(
                    "timed out after {}",
                    crate::runbook::value::format_duration(c.timeout)
                )),
            }
        };
        if let ProbeOutcome::Observed(m) = &outcome {
            values.push(m.get("value").cloned().unwrap_or(Value::Null));
        }
        // An unreachable target will not answer the next sample either.
        let stop = match &outcome {
            ProbeOutcome::Observed(m) => m.get("unreachable") == Some(&Value::Bool(true)),
            _ => true,
        };
        last = Some(outcome);
        if stop {
            break;
        }
    }
    let elapsed = match probing.oracle {
        Some(oracle) => {
            let nominal = every * u32::try_from(values.len().saturating_sub(1)).unwrap_or(0);
            oracle.sampling_time(kind, &c.id, nominal).as_secs_f64()
        }
        None => sample_start.elapsed().as_secs_f64(),
    };
    match last.unwrap_or(ProbeOutcome::Error("no sample taken".into())) {
        ProbeOutcome::Error(e) => done(StepStatus::Error, None, Some(&e), e.clone()),
        ProbeOutcome::Unknown(e) => done(StepStatus::Unknown, None, Some(&e), e.clone()),
        ProbeOutcome::Observed(mut fields) => {
            if c.sample.is_some() {
                let nums: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
                let delta = match (nums.first(), nums.last()) {
                    (Some(a), Some(b)) if nums.len() == values.len() => Some(b - a),
                    _ => None,
                };
                fields.insert("values".into(), Value::Array(values.clone()));
                fields.insert("delta".into(), delta.map_or(Value::Null, |d| json!(d)));
                fields.insert(
                    "rate_per_s".into(),
                    delta
                        .filter(|_| elapsed > 0.0)
                        .map_or(Value::Null, |d| json!(d / elapsed)),
                );
            }
            if fields.get("unreachable") == Some(&Value::Bool(true)) {
                let reason = fields
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("unreachable")
                    .to_owned();
                return done(
                    StepStatus::Failed,
                    Some(&fields),
                    Some(&reason),
                    reason.clone(),
                );
            }
            let Some(expect) = &c.expect else {
                let v = fields
                    .get("value")
                    .map_or_else(String::new, |v| format!("value={v}"));
                return done(StepStatus::Ok, Some(&fields), None, v);
            };
            // Inside `expect`, the probe's fields are top-level beside the run context.
            let mut scope = match ctx {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            let view = check_view(c, Some(&fields), StepStatus::Ok, None);
            if let Value::Object(v) = view {
                for (k, val) in v {
                    if !matches!(
                        k.as_str(),
                        "ok" | "failed" | "error" | "skipped" | "unknown" | "state"
                    ) {
                        scope.insert(k, val);
                    }
                }
            }
            match expr::eval_bool(expect, &Value::Object(scope)) {
                Ok(true) => done(
                    StepStatus::Ok,
                    Some(&fields),
                    None,
                    decided(expect, &fields),
                ),
                Ok(false) => done(
                    StepStatus::Failed,
                    Some(&fields),
                    None,
                    decided(expect, &fields),
                ),
                Err(e) => done(
                    StepStatus::Error,
                    Some(&fields),
                    Some(&e),
                    format!("expect: {e}"),
                ),
            }
        }
    }
}

/// `expect` with the values of the fields it names, for one-line display.
fn decided(expect: &str, fields: &Map<String, Value>) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for word in expect.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(v) = fields.get(word)
            && seen.insert(word)
        {
            let s = v.to_string();
            let s = if s.len() > 60 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            };
            shown.push(format!("{word}={s}"));
        }
    }
    if shown.is_empty() {
        expect.to_owned()
    } else {
        format!("{} ({expect})", shown.join(" "))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
