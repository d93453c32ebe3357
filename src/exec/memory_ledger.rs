//! An in-memory [`Ledger`] for tests: the same contract as the audit store, nothing durable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exec::events::{
    Ledger, LedgerError, NewRevert, Outcome, RevertRow, RevertState, RunInfo, StepRecord,
};

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
    reverts: Vec<(RevertRow, Option<String>, Value)>,
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

    /// Reverts recorded so far, with the run that settled each and its result.
    #[must_use]
    pub fn reverts(&self) -> Vec<(RevertRow, Option<String>, Value)> {
        self.lock_inner().reverts.clone()
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

    fn add_revert(&self, revert: &NewRevert) -> Result<i64, LedgerError> {
        let mut g = self.lock_inner();
        let id = i64::try_from(g.reverts.len() + 1).unwrap_or(i64::MAX);
        g.reverts.push((
            RevertRow {
                id,
                revert: revert.clone(),
                state: RevertState::Pending,
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
            None,
            Value::Null,
        ));
        Ok(id)
    }

    fn due_reverts(&self, now: &str) -> Result<Vec<RevertRow>, LedgerError> {
        let mut due: Vec<RevertRow> = self
            .lock_inner()
            .reverts
            .iter()
            .map(|(r, _, _)| r)
            .filter(|r| r.state == RevertState::Pending && r.revert.due_at.as_str() <= now)
            .cloned()
            .collect();
        due.sort_by(|a, b| (&a.revert.due_at, a.id).cmp(&(&b.revert.due_at, b.id)));
        Ok(due)
    }

    fn claim_revert(&self, id: i64, now: &str) -> Result<bool, LedgerError> {
        let mut g = self.lock_inner();
        let Some((row, _, _)) = g.reverts.iter_mut().find(|(r, _, _)| r.id == id) else {
            return Ok(false);
        };
        if row.state != RevertState::Pending || row.revert.due_at.as_str() > now {
            return Ok(false);
        }
        row.state = RevertState::Running;
        Ok(true)
    }

    fn settle_revert(
        &self,
        id: i64,
        state: RevertState,
        run_id: Option<&str>,
        result: &Value,
    ) -> Result<(), LedgerError> {
        let mut g = self.lock_inner();
        // As in the store: a settled revert stays settled.
        let Some(entry) = g.reverts.iter_mut().find(|(r, _, _)| {
            r.id == id && matches!(r.state, RevertState::Pending | RevertState::Running)
        }) else {
            return Err(LedgerError(format!("no pending or running revert {id}")));
        };
        entry.0.state = state;
        entry.1 = run_id.map(str::to_owned);
        entry.2 = result.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revert(due_at: &str) -> NewRevert {
        NewRevert {
            run_id: "mem-1".into(),
            runbook: "rb".into(),
            runbook_file: "rb.yaml".into(),
            runbook_sha256: String::new(),
            action_id: "shrink".into(),
            rollback: vec!["restore".into()],
            params: Value::Null,
            due_at: due_at.into(),
        }
    }

    #[test]
    fn a_revert_is_due_claimed_once_and_settled_once() {
        let l = MemoryLedger::new();
        let early = l.add_revert(&revert("2025-01-01T00:00:00.000Z")).unwrap();
        let late = l.add_revert(&revert("2025-01-01T02:00:00.000Z")).unwrap();
        let now = "2025-01-01T01:00:00.000Z";
        let due: Vec<i64> = l.due_reverts(now).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(due, vec![early]);
        assert!(!l.claim_revert(late, now).unwrap(), "claimed before due");
        assert!(l.claim_revert(early, now).unwrap());
        assert!(!l.claim_revert(early, now).unwrap(), "claimed twice");
        assert!(l.due_reverts(now).unwrap().is_empty());
        l.settle_revert(early, RevertState::Done, Some("mem-2"), &Value::Null)
            .unwrap();
        assert!(
            l.settle_revert(early, RevertState::Pending, None, &Value::Null)
                .is_err(),
            "a done revert was reopened"
        );
    }
}
