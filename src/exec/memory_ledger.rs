//! An in-memory [`Ledger`] for tests: the same contract as the audit store, nothing durable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exec::events::{Ledger, LedgerError, Outcome, RunInfo, StepRecord};

/// Rows kept in memory.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<Inner>,
}

type RunRow = (String, RunInfo, Option<(Outcome, u8)>);

#[derive(Debug, Default)]
struct Inner {
    runs: Vec<RunRow>,
    steps: Vec<(String, Option<i64>, StepRecord)>,
    intents: Vec<(String, String, Value)>,
    locks: HashMap<String, String>,
    limits: HashMap<String, Vec<Instant>>,
}

impl MemoryLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Steps recorded so far.
    #[must_use]
    pub fn steps(&self) -> Vec<StepRecord> {
        self.lock_inner()
            .steps
            .iter()
            .map(|(_, _, s)| s.clone())
            .collect()
    }

    /// Intent rows (run id, action id, inputs).
    #[must_use]
    pub fn intents(&self) -> Vec<(String, String, Value)> {
        self.lock_inner().intents.clone()
    }

    fn lock_inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Ledger for MemoryLedger {
    fn begin_run(&self, info: &RunInfo) -> Result<String, LedgerError> {
        let mut g = self.lock_inner();
        let id = format!("mem-{}", g.runs.len() + 1);
        g.runs.push((id.clone(), info.clone(), None));
        Ok(id)
    }

    fn lock(&self, runbook: &str, run_id: &str) -> Result<bool, LedgerError> {
        let mut g = self.lock_inner();
        if g.locks.contains_key(runbook) {
            return Ok(false);
        }
        g.locks.insert(runbook.to_owned(), run_id.to_owned());
        Ok(true)
    }

    fn unlock(&self, runbook: &str, run_id: &str) -> Result<(), LedgerError> {
        let mut g = self.lock_inner();
        if g.locks.get(runbook).is_some_and(|r| r == run_id) {
            g.locks.remove(runbook);
        }
        Ok(())
    }

    fn take_limit(&self, key: &str, max: u32, per: Duration) -> Result<bool, LedgerError> {
        let mut g = self.lock_inner();
        let uses = g.limits.entry(key.to_owned()).or_default();
        let now = Instant::now();
        uses.retain(|t| now.duration_since(*t) < per);
        if uses.len() >= max as usize {
            return Ok(false);
        }
        uses.push(now);
        Ok(true)
    }

    fn intent(&self, run_id: &str, action_id: &str, inputs: &Value) -> Result<i64, LedgerError> {
        let mut g = self.lock_inner();
        g.intents
            .push((run_id.to_owned(), action_id.to_owned(), inputs.clone()));
        Ok(i64::try_from(g.intents.len()).unwrap_or(i64::MAX))
    }

    fn record(
        &self,
        run_id: &str,
        intent: Option<i64>,
        step: &StepRecord,
    ) -> Result<(), LedgerError> {
        self.lock_inner()
            .steps
            .push((run_id.to_owned(), intent, step.clone()));
        Ok(())
    }

    fn finish_run(&self, run_id: &str, outcome: Outcome, exit_code: u8) -> Result<(), LedgerError> {
        let mut g = self.lock_inner();
        if let Some(r) = g.runs.iter_mut().find(|r| r.0 == run_id) {
            r.2 = Some((outcome, exit_code));
        }
        Ok(())
    }
}
