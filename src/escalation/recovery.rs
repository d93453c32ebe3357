//! Runs whose incident was never recorded: a run's end is committed by the executor, and its
//! incident opened afterwards ([`super::after_run`]), so a process killed in between leaves
//! a finished `problem_remains` run with no incident and no page. The next `tick` (and a
//! server's timers, when they call [`recover_runs`]) finds such runs and opens the incident
//! they should have opened, claiming its due level in the same durable transaction, then
//! sends it: the page comes late rather than never.
//!
//! The durable marker is the incidents themselves. A run is *unhandled* when it is the latest
//! run of its runbook and key that decides an incident (a real run by `cli`, `webhook`,
//! `approval` or `schedule` that ended `healthy`, `remediated` or `problem_remains`; the key
//! is the run's `run_context.key`, else the runbook name, as [`super::after_run`] is given),
//! it ended `problem_remains`, and no incident of that runbook and key is open or
//! acknowledged, names it (`first_run_id`, `last_run_id`), or changed at or after its end (a
//! `resolved` alert, a recheck). A run superseded by a later one needs nothing: the later
//! run's end decided the incident. Recording the incident names the run, so it is handled
//! once, whichever process gets there first (the test is made again under the write lock).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::audit::{AuditError, AuditStore};
use crate::escalation::incident::{Spec, parse};
use crate::escalation::notifier::Notifier;
use crate::escalation::timers::{
    Change, RunEscalation, claim_in, fire_incident, is_constraint, open_in, send,
};
use crate::runbook::catalog::Catalog;

/// Finished runs whose incident was never recorded. `?1`: a runbook to look at (NULL: all),
/// `?2`: one run (NULL: all). The window picks the latest incident-deciding run per key; the
/// incidents are summed up per key once (no index per key is needed).
const UNHANDLED: &str = "
    WITH latest AS (
        SELECT id, runbook, key, outcome, finished_at, pid, pid_start FROM (
            SELECT r.id, r.runbook, COALESCE(c.key, r.runbook) AS key, r.outcome,
                   r.finished_at, r.pid, r.pid_start,
                   ROW_NUMBER() OVER (PARTITION BY r.runbook, COALESCE(c.key, r.runbook)
                                      ORDER BY r.finished_at DESC, r.rowid DESC) AS n
            FROM runs r LEFT JOIN run_context c ON c.run_id = r.id
            WHERE r.finished_at IS NOT NULL AND r.mode = 'real'
              AND r.trigger IN ('cli', 'webhook', 'approval', 'schedule')
              AND r.outcome IN ('healthy', 'remediated', 'problem_remains')
              AND (?1 IS NULL OR r.runbook = ?1))
        WHERE n = 1 AND outcome = 'problem_remains'),
    keyed AS (
        SELECT runbook, dedup_key, MAX(status IN ('open', 'acked')) AS open,
               MAX(updated_at) AS changed
        FROM incidents WHERE (?1 IS NULL OR runbook = ?1) GROUP BY runbook, dedup_key)
    SELECT l.id, l.runbook, l.key, l.finished_at, l.pid, l.pid_start FROM latest l
    LEFT JOIN keyed k ON k.runbook = l.runbook AND k.dedup_key = l.key
    WHERE (?2 IS NULL OR l.id = ?2)
      AND (k.runbook IS NULL OR (k.open = 0 AND k.changed < l.finished_at))
      AND l.id NOT IN (
          SELECT first_run_id FROM incidents WHERE first_run_id IS NOT NULL
          UNION SELECT last_run_id FROM incidents WHERE last_run_id IS NOT NULL)
    ORDER BY l.finished_at, l.id";

/// A finished run whose incident was never recorded.
#[derive(Debug, Clone, Serialize)]
pub struct UnhandledRun {
    /// The run.
    pub run_id: String,
    /// Its runbook.
    pub runbook: String,
    /// Its incident's key (the runbook name for CLI runs, the alert fingerprint for alerts).
    pub key: String,
    /// When it ended.
    pub finished_at: String,
}

fn unhandled_in(
    conn: &Connection,
    runbook: Option<&str>,
    run_id: Option<&str>,
) -> rusqlite::Result<Vec<UnhandledRun>> {
    // A run whose process still lives is that process's to finish: its incident is being
    // recorded right now (a `serve` worker hands it to the escalation thread; `runbook run`
    // records it after the run's end). Only a run whose process is gone was cut short.
    let rows = conn
        .prepare(UNHANDLED)?
        .query_map(params![runbook, run_id], |r| {
            Ok((
                UnhandledRun {
                    run_id: r.get(0)?,
                    runbook: r.get(1)?,
                    key: r.get(2)?,
                    finished_at: r.get(3)?,
                },
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, pid, start)| !pid.is_some_and(|p| AuditStore::claimant_alive(p, *start)))
        .map(|(run, _, _)| run)
        .collect())
}

/// Finished runs that left a problem and whose incident was never recorded (module doc),
/// oldest first; `runbook`: of that runbook only.
///
/// # Errors
/// When the audit store fails.
pub fn unhandled_runs(
    store: &AuditStore,
    runbook: Option<&str>,
) -> Result<Vec<UnhandledRun>, AuditError> {
    store.read(|c| unhandled_in(c, runbook, None))
}

/// What became of one unhandled run.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    /// The run.
    pub run: UnhandledRun,
    /// `recorded` (its incident opened now), `skipped` (another process recorded it first),
    /// `dry_run` (listed, not recorded).
    pub result: &'static str,
    /// What its end did to the incident, and the level fired, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<RunEscalation>,
}

/// Record the incident of every unhandled run (module doc): open it as of the run's end
/// (its ladder counts from then) and fire the level due by `now`, as [`super::after_run`]
/// would have. A run whose runbook `catalog` does not have, or that opens no incident (no
/// policy, a severity the policy lacks: `runbook run` opened none either), is left out.
/// `dry_run`: list them, record nothing.
///
/// # Errors
/// When the audit store fails (runs recorded before stay recorded).
pub async fn recover_runs(
    store: &AuditStore,
    catalog: &Catalog,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
    dry_run: bool,
) -> Result<Vec<Recovered>, AuditError> {
    let mut out = Vec::new();
    for run in unhandled_runs(store, None)? {
        let spec = catalog.policy.as_ref().and_then(|policy| {
            let rb = catalog.runbooks.iter().find(|rb| rb.name == run.runbook)?;
            Some((policy, Spec::new(policy, rb)?))
        });
        let Some((policy, spec)) = spec else {
            continue;
        };
        if dry_run {
            out.push(Recovered {
                run,
                result: "dry_run",
                escalation: None,
            });
            continue;
        }
        let escalation = recover_one(store, policy, &spec, &run, now, notifier).await?;
        out.push(Recovered {
            result: if escalation.is_some() {
                "recorded"
            } else {
                "skipped"
            },
            run,
            escalation,
        });
    }
    Ok(out)
}

/// Open the incident of `run` and claim its due level in one durable transaction, if the run
/// is still unhandled under the write lock; then send.
async fn recover_one(
    store: &AuditStore,
    policy: &crate::runbook::policy::Policy,
    spec: &Spec,
    run: &UnhandledRun,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
) -> Result<Option<RunEscalation>, AuditError> {
    let ended = parse(&run.finished_at);
    let still = |tx: &Connection| -> rusqlite::Result<bool> {
        Ok(!unhandled_in(tx, Some(&run.runbook), Some(&run.run_id))?.is_empty())
    };
    let opened = store.write(true, |tx| {
        if !still(tx)? {
            return Ok(None);
        }
        let change = open_in(tx, spec, &run.key, &run.run_id, ended)?;
        let claim = match &change {
            Change::Opened(inc) | Change::Updated(inc) => claim_in(tx, inc.id, now)?,
            Change::Resolved(_) | Change::Unchanged => None,
        };
        Ok(Some((change, claim)))
    });
    let change = match opened {
        Ok(None) => return Ok(None),
        Ok(Some((change, claim))) => {
            let mut fired = Vec::new();
            if let Some(claim) = claim {
                fired.push(send(store, policy, claim, now, notifier).await?);
            }
            return Ok(Some(RunEscalation { change, fired }));
        }
        // A level is in `escalations` already (another writer; nothing was written): open
        // alone, the level is theirs to send.
        Err(e) if is_constraint(&e) => store.write(true, |tx| {
            if !still(tx)? {
                return Ok(None);
            }
            open_in(tx, spec, &run.key, &run.run_id, ended).map(Some)
        })?,
        Err(e) => return Err(e),
    };
    let Some(change) = change else {
        return Ok(None);
    };
    let mut fired = Vec::new();
    if let Change::Opened(inc) | Change::Updated(inc) = &change
        && let Some(f) = fire_incident(store, policy, inc.id, now, notifier).await?
    {
        fired.push(f);
    }
    Ok(Some(RunEscalation { change, fired }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished run as the executor records it (`key`: a server run's `run_context` key).
    fn run(store: &AuditStore, id: &str, trigger: &str, mode: &str, outcome: &str, at: &str) {
        run_keyed(store, id, trigger, mode, outcome, at, None);
    }

    fn run_keyed(
        store: &AuditStore,
        id: &str,
        trigger: &str,
        mode: &str,
        outcome: &str,
        at: &str,
        key: Option<&str>,
    ) {
        store
            .write(false, |tx| {
                tx.execute(
                    "INSERT INTO runs (id, runbook, runbook_sha256, trigger, params, host, user, \
                     mode, pid, started_at, finished_at, outcome, exit_code) \
                     VALUES (?1, 'rb', 'x', ?2, '{}', 'h', 'u', ?3, 999999999, ?4, ?4, ?5, 1)",
                    params![id, trigger, mode, at, outcome],
                )?;
                tx.chain("runs", id, "insert")?;
                if let Some(k) = key {
                    tx.execute(
                        "INSERT INTO run_context (run_id, key) VALUES (?1, ?2)",
                        params![id, k],
                    )?;
                    tx.chain("run_context", id, "insert")?;
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_run_whose_process_still_lives_is_left_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&tmp.path().join("a.db")).unwrap();
        run(
            &store,
            "gone",
            "cli",
            "real",
            "problem_remains",
            "2026-11-24T00:00:00Z",
        );
        assert_eq!(ids(&store).len(), 1);
        // The same run, but its process (this one) still runs: its own `after_run` is coming.
        store
            .write(false, |tx| {
                tx.execute(
                    "UPDATE runs SET pid = ?1 WHERE id = 'gone'",
                    params![i64::from(std::process::id())],
                )?;
                tx.chain("runs", "gone", "update")?;
                Ok(())
            })
            .unwrap();
        assert!(ids(&store).is_empty());
    }

    fn ids(store: &AuditStore) -> Vec<(String, String)> {
        unhandled_runs(store, None)
            .unwrap()
            .into_iter()
            .map(|u| (u.run_id, u.key))
            .collect()
    }

    fn incident(store: &AuditStore, key: &str, status: &str, run: &str, updated: &str) {
        store
            .write(false, |tx| {
                tx.execute(
                    "INSERT INTO incidents (runbook, dedup_key, severity, levels, status, \
                     opened_at, response_due_at, resolution_due_at, first_run_id, last_run_id, \
                     updated_at) VALUES ('rb', ?1, 'P1', '[]', ?2, ?4, ?4, ?4, ?3, ?3, ?4)",
                    params![key, status, run, updated],
                )?;
                tx.chain("incidents", &tx.last_insert_rowid().to_string(), "insert")
            })
            .unwrap();
    }

    #[test]
    fn only_the_latest_deciding_run_of_a_key_without_its_incident_is_unhandled() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let t = |m: u32| format!("2030-01-01T00:{m:02}:00.000Z");
        run(&store, "cli-1", "cli", "real", "problem_remains", &t(1));
        assert_eq!(ids(&store), [("cli-1".to_owned(), "rb".to_owned())]);
        // Runs that decide nothing do not supersede it: a fault, a dry run, a recheck.
        run(&store, "cli-2", "cli", "real", "fault", &t(2));
        run(&store, "cli-3", "cli", "dry_run", "healthy", &t(3));
        run(&store, "re-1", "recheck", "dry_run", "healthy", &t(4));
        assert_eq!(ids(&store), [("cli-1".to_owned(), "rb".to_owned())]);
        // A later run that ended well decided the key: nothing is owed.
        run(&store, "cli-4", "cli", "real", "healthy", &t(5));
        assert!(ids(&store).is_empty());

        // An alert's run, keyed by its fingerprint; recorded: handled.
        run_keyed(
            &store,
            "hook-1",
            "webhook",
            "real",
            "problem_remains",
            &t(6),
            Some("fp"),
        );
        assert_eq!(ids(&store), [("hook-1".to_owned(), "fp".to_owned())]);
        incident(&store, "fp", "open", "hook-1", &t(6));
        assert!(ids(&store).is_empty());
        // Its alert resolved after the run ended: nothing to reopen.
        run_keyed(
            &store,
            "hook-2",
            "webhook",
            "real",
            "problem_remains",
            &t(7),
            Some("fp2"),
        );
        incident(&store, "fp2", "resolved", "hook-0", &t(8));
        assert!(ids(&store).is_empty());
        // A resolution from before the run's end does not count for it.
        run_keyed(
            &store,
            "hook-3",
            "webhook",
            "real",
            "problem_remains",
            &t(9),
            Some("fp2"),
        );
        assert_eq!(ids(&store), [("hook-3".to_owned(), "fp2".to_owned())]);
        assert_eq!(unhandled_runs(&store, Some("other")).unwrap().len(), 0);
        assert!(store.verify().unwrap().is_ok());
    }
}
