//! `runbook replay`: a runbook (as it is now, or an edited version) re-decided against the
//! probe results a past run recorded, with no host access, and the decisions compared.
//!
//! The recorded run answers through [`RecordedOracle`], the same door `runbook test` uses:
//!
//! - a check gets the result the run recorded for it (its probe's fields; `error`, `unknown`
//!   and unreachable targets as they were), re-judged by the check's `expect` as it is now;
//!   a check the run did not record (new in the edited version, or skipped by its guard then)
//!   is `unknown`, and said so in the notes;
//! - a verification attempt gets the run's verification of that check with the same number;
//!   one it did not make is `unknown`;
//! - an action gets the outcome the run recorded for it (the n-th run of an action, the n-th
//!   recorded); an action the run never ran **would run**: its outcome is unknown, so it is
//!   taken as not succeeded (what follows it is escalation, not a guess at verification) and
//!   shown as `would_run`;
//! - the gates are the run's: its mode (a dry run stays one), the approvals it had (an action
//!   that ran had consent; one that waited for approval waits again; with no action waiting
//!   and one run, `--yes` is assumed), its rate limits (an action it found used up is used up
//!   again); `--yes` assumes consent for all;
//! - its parameters (secrets stay `***`), alert, host name and start time (`now`).
//!
//! `rate_per_s` of a sampled check is recomputed over the time the run measured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::actions::ActionOutcome;
use crate::exec::events::Oracle;
use crate::exec::{Ledger, MemoryLedger, Options, StepKind};
use crate::host::HostMode;
use crate::probes::{ProbeKind, ProbeOutcome};
use crate::runbook::model::Runbook;
use crate::scenario::decision_path::{DecisionPath, WOULD_RUN, kind_name};
use crate::scenario::row::{self, Row};
use crate::scenario::sealed_host::SealedHost;
use crate::scenario::verdict::drive;

/// A past run as the audit trail holds it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRun {
    /// Run id.
    pub id: String,
    /// Runbook name.
    pub runbook: String,
    /// Host name.
    pub host: String,
    /// `real` or `dry_run`.
    pub mode: String,
    /// cli, webhook, tick, ...
    pub trigger: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Parameters, secrets redacted.
    pub params: Value,
    /// The alert context of a server run.
    pub alert: Option<Value>,
    /// How it ended; `None` while running.
    pub outcome: Option<String>,
    /// Its steps, in order.
    pub steps: Vec<RecordedStep>,
}

/// One recorded step.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedStep {
    /// check, symptom, cause, action, verify, rollback, escalation.
    pub kind: String,
    /// The step's id in the runbook.
    pub id: String,
    /// Its status; `None` for an action announced and never finished.
    pub status: Option<String>,
    /// Its result.
    pub result: Option<Value>,
    /// The value that decided it.
    pub decided_by: Option<String>,
}

impl RecordedRun {
    /// The decisions the run took.
    #[must_use]
    pub fn path(&self) -> DecisionPath {
        let mut p = DecisionPath {
            outcome: self
                .outcome
                .clone()
                .unwrap_or_else(|| "(unfinished)".into()),
            ..DecisionPath::default()
        };
        for s in &self.steps {
            p.push(
                &s.kind,
                &s.id,
                s.status.as_deref().unwrap_or("interrupted"),
                s.result.as_ref().unwrap_or(&Value::Null),
            );
        }
        p
    }

    /// A run that only performed rollbacks (`runbook tick` undoing a temporary change):
    /// there is no diagnosis to replay.
    #[must_use]
    pub fn is_revert(&self) -> bool {
        !self.steps.iter().any(|s| s.kind != "rollback") && !self.steps.is_empty()
    }
}

/// A replay's result.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// What the run decided.
    pub recorded: DecisionPath,
    /// What the runbook decides now on the same observations.
    pub replayed: DecisionPath,
    /// Each decision, recorded and replayed.
    pub rows: Vec<Row>,
    /// What the replay could not know, and what it assumed.
    pub notes: Vec<String>,
}

impl Replay {
    /// True when a decision differs.
    #[must_use]
    pub fn differs(&self) -> bool {
        self.rows.iter().any(|r| !r.same)
    }
}

/// Re-decide `run` with `rb`; `levels` are its escalation levels, lowest first, `ladder` the
/// policy's levels (id, name); `assume_yes` assumes consent to every mutating action.
///
/// # Errors
/// The executor failed (as text).
pub fn replay(
    rt: &tokio::runtime::Runtime,
    rb: &Runbook,
    ladder: Vec<(String, String)>,
    levels: &[String],
    run: &RecordedRun,
    assume_yes: bool,
) -> Result<Replay, String> {
    let mut params = Map::new();
    for p in &rb.params {
        let recorded = run.params.get(&p.name).filter(|v| !v.is_null());
        if let Some(v) = recorded.or(p.default.as_ref()) {
            params.insert(p.name.clone(), v.clone());
        }
    }
    let gates = RecordedGates::of(rb, run, assume_yes);
    let yes = gates.yes;
    let ledger = MemoryLedger::new();
    for id in &gates.used_up {
        if let Some(limit) = rb.action(id).and_then(|a| a.limit) {
            let key = format!("{}/{id}", rb.name);
            for _ in 0..limit.max {
                let _ = ledger.take_limit(&key, limit.max, limit.per);
            }
        }
    }
    let oracle = Arc::new(RecordedOracle::new(rb, run));
    let opts = Options {
        yes,
        trigger: "replay".into(),
        alert: run.alert.clone(),
        ladder,
        approved: gates.approved.into_iter().collect(),
        oracle: Some(Arc::clone(&oracle) as Arc<dyn Oracle>),
        ..Options::default()
    };
    let mode = if run.mode == "dry_run" {
        HostMode::DryRun
    } else {
        HostMode::Real
    };
    let host = SealedHost::new(run.host.clone(), mode);
    let replayed = drive(rt, rb, &host, &ledger, params, opts)?;
    let recorded = run.path();
    let mut notes = oracle.notes();
    if !yes {
        for a in replayed
            .actions
            .iter()
            .filter(|a| a.status == "needs_approval")
        {
            if !recorded.actions.iter().any(|r| r.id == a.id) {
                notes.push(format!(
                    "action `{}` waits for approval: the recorded run ran no mutating action, so the replay assumes it had no `--yes` (pass `--yes` to assume it had)",
                    a.id
                ));
            }
        }
    }
    if replayed.actions.iter().any(|a| a.status == WOULD_RUN) {
        notes.push(
            "an action that would run has no recorded outcome: it is taken as not succeeded, so what follows it (verification, escalation, outcome) is what happens if it fails".into(),
        );
    }
    let rows = row::replay(&recorded, &replayed, levels);
    Ok(Replay {
        recorded,
        replayed,
        rows,
        notes,
    })
}

/// The gates a recorded run's actions passed, set up again for a replay (or a scenario made
/// from the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedGates {
    /// Consent to every mutating action, as `--yes`: assumed, or the run ran a mutating
    /// action and none waited for approval.
    pub yes: bool,
    /// The mutating actions the run ran (they had consent), in the order first run.
    pub approved: Vec<String>,
    /// The actions the run found rate-limited (their limit is used up again), in order.
    pub used_up: Vec<String>,
}

impl RecordedGates {
    /// The gates of `run` for runbook `rb`; `assume_yes` assumes consent to all.
    #[must_use]
    pub fn of(rb: &Runbook, run: &RecordedRun, assume_yes: bool) -> Self {
        let mut approved: Vec<String> = Vec::new();
        let mut used_up: Vec<String> = Vec::new();
        let mut waited = false;
        for s in &run.steps {
            match s.status.as_deref() {
                Some("ok" | "failed" | "error")
                    if matches!(s.kind.as_str(), "action" | "rollback")
                        && rb
                            .action(&s.id)
                            .is_some_and(crate::runbook::model::Action::mutating)
                        && !approved.contains(&s.id) =>
                {
                    approved.push(s.id.clone());
                }
                Some("needs_approval") => waited = true,
                Some("rate_limited") if !used_up.contains(&s.id) => used_up.push(s.id.clone()),
                _ => {}
            }
        }
        RecordedGates {
            yes: assume_yes || (!waited && !approved.is_empty()),
            approved,
            used_up,
        }
    }
}

/// One recorded step's status and result.
#[derive(Debug, Clone)]
struct Rec {
    status: String,
    result: Value,
    decided_by: String,
}

/// Answers from a recorded run.
#[derive(Debug)]
pub struct RecordedOracle {
    run_id: String,
    now: String,
    probes: HashMap<String, ProbeKind>,
    first: HashMap<String, Rec>,
    verify: HashMap<String, Vec<Rec>>,
    actions: HashMap<(String, String), Vec<Rec>>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    attempts: HashMap<String, usize>,
    calls: HashMap<(String, String), usize>,
    notes: Vec<String>,
}

impl RecordedOracle {
    /// The oracle of `run` for runbook `rb`.
    #[must_use]
    pub fn new(rb: &Runbook, run: &RecordedRun) -> Self {
        let mut first = HashMap::new();
        let mut verify: HashMap<String, Vec<Rec>> = HashMap::new();
        let mut actions: HashMap<(String, String), Vec<Rec>> = HashMap::new();
        for s in &run.steps {
            let rec = Rec {
                status: s.status.clone().unwrap_or_else(|| "interrupted".into()),
                result: s.result.clone().unwrap_or(Value::Null),
                decided_by: s.decided_by.clone().unwrap_or_default(),
            };
            match s.kind.as_str() {
                "check" => {
                    first.entry(s.id.clone()).or_insert(rec);
                }
                "verify" => verify.entry(s.id.clone()).or_default().push(rec),
                "action" | "rollback" => actions
                    .entry((s.kind.clone(), s.id.clone()))
                    .or_default()
                    .push(rec),
                _ => {}
            }
        }
        RecordedOracle {
            run_id: run.id.clone(),
            now: run.started_at.clone(),
            probes: rb.checks.iter().map(|c| (c.id.clone(), c.probe)).collect(),
            first,
            verify,
            actions,
            state: Mutex::new(State::default()),
        }
    }

    /// What the replay could not know, in the order met.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        self.state().notes.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note(&self, text: String) {
        let mut st = self.state();
        if !st.notes.contains(&text) {
            st.notes.push(text);
        }
    }

    /// The probe's answer for `sample`, from a recorded check view.
    fn answer(&self, id: &str, rec: &Rec, sample: u32) -> ProbeOutcome {
        let reason = || {
            rec.result
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or(rec.status.as_str())
                .to_owned()
        };
        match rec.status.as_str() {
            "ok" | "failed" => {}
            "error" => return ProbeOutcome::Error(reason()),
            "unknown" => return ProbeOutcome::Unknown(reason()),
            "skipped" => {
                self.note(format!(
                    "check `{id}` was skipped by its guard in run {}: not looked at, so `unknown` now",
                    self.run_id
                ));
                return ProbeOutcome::Unknown("not looked at in the recorded run".into());
            }
            other => return ProbeOutcome::Unknown(format!("recorded as `{other}`")),
        }
        let Value::Object(view) = &rec.result else {
            return ProbeOutcome::Unknown("no result recorded".into());
        };
        let own_status = self
            .probes
            .get(id)
            .is_some_and(|p| p.fields().contains(&"status"));
        let mut fields: Map<String, Value> = view
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "ok" | "failed"
                        | "error"
                        | "skipped"
                        | "unknown"
                        | "state"
                        | "duration_ms"
                        | "values"
                        | "delta"
                        | "rate_per_s"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Without a status of its own, `status` was the check's state: the engine says it again.
        if !own_status {
            fields.remove("status");
        }
        let unreachable = fields.get("unreachable") == Some(&Value::Bool(true));
        if !unreachable || fields.get("reason").is_some_and(Value::is_null) {
            fields.remove("reason");
        }
        if let Some(Value::Array(values)) = view.get("values") {
            let i = sample as usize;
            match values.get(i) {
                Some(v) => {
                    fields.insert("value".into(), v.clone());
                    // The fields kept are the last sample's: an earlier one got an answer.
                    if unreachable && i + 1 < values.len() {
                        fields.remove("unreachable");
                        fields.remove("reason");
                    }
                }
                None if unreachable => {}
                None => {
                    self.note(format!(
                        "check `{id}`: sample {} was not taken in run {}: `unknown`",
                        i + 1,
                        self.run_id
                    ));
                    return ProbeOutcome::Unknown(format!("sample {} not recorded", i + 1));
                }
            }
        }
        ProbeOutcome::Observed(fields)
    }

    fn measured(rec: &Rec) -> Option<Duration> {
        let delta = rec.result.get("delta")?.as_f64()?;
        let rate = rec.result.get("rate_per_s")?.as_f64()?;
        let secs = delta / rate;
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
    }
}

impl Oracle for RecordedOracle {
    fn probe(&self, kind: StepKind, id: &str, sample: u32) -> ProbeOutcome {
        if kind != StepKind::Verify {
            if let Some(rec) = self.first.get(id) {
                return self.answer(id, rec, sample);
            }
            self.note(format!(
                "check `{id}` is not in run {}: `unknown`",
                self.run_id
            ));
            return ProbeOutcome::Unknown("not recorded in the run".into());
        }
        let attempt = {
            let mut st = self.state();
            let n = st.attempts.entry(id.to_owned()).or_insert(0);
            if sample == 0 {
                *n += 1;
            }
            *n
        };
        if let Some(rec) = self.verify.get(id).and_then(|v| v.get(attempt - 1)) {
            return self.answer(id, rec, sample);
        }
        self.note(format!(
            "verification {attempt} of `{id}` was not made in run {}: `unknown`",
            self.run_id
        ));
        ProbeOutcome::Unknown("verification not recorded".into())
    }

    fn action(&self, kind: StepKind, id: &str) -> ActionOutcome {
        let key = (kind_name(kind).to_owned(), id.to_owned());
        let n = {
            let mut st = self.state();
            let n = st.calls.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        match self.actions.get(&key).and_then(|v| v.get(n - 1)) {
            Some(rec) if rec.status == "ok" => ActionOutcome {
                ok: true,
                summary: rec.decided_by.clone(),
                detail: Map::from_iter([("recorded".to_owned(), json!(true))]),
            },
            Some(rec) if matches!(rec.status.as_str(), "failed" | "error") => {
                ActionOutcome::failed(rec.decided_by.clone())
            }
            _ => {
                self.note(format!(
                    "{} `{id}` would run: run {} did not run it, so its outcome is unknown",
                    kind_name(kind),
                    self.run_id
                ));
                ActionOutcome {
                    ok: false,
                    summary: "would run: not run in the recorded run, outcome unknown".into(),
                    detail: Map::from_iter([("would_run".to_owned(), json!(true))]),
                }
            }
        }
    }

    fn now(&self) -> String {
        self.now.clone()
    }

    fn sampling_time(&self, kind: StepKind, id: &str, nominal: Duration) -> Duration {
        let rec = if kind == StepKind::Verify {
            let n = self.state().attempts.get(id).copied().unwrap_or(1);
            self.verify.get(id).and_then(|v| v.get(n.saturating_sub(1)))
        } else {
            self.first.get(id)
        };
        rec.and_then(Self::measured).unwrap_or(nominal)
    }
}
