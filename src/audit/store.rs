//! [`AuditStore`]: the `SQLite` audit trail, the [`Ledger`] the executor writes before it acts,
//! and the read side for `history`, `show`, `audit verify` and `audit export`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::chain::{self, VerifyReport};
use crate::audit::migrations::{self, MigrateError};
use crate::audit::redact::{redact, redact_str};
use crate::audit::sync::Syncer;
use crate::exec::events::{
    Ledger, LedgerError, NewRevert, Outcome, RevertRow, RevertState, RunInfo, StepRecord,
};
use crate::probes::TailPosition;

/// A failure of the audit store.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file or its directory could not be created or opened.
    #[error("cannot open audit database `{}`: {source}", path.display())]
    Open {
        /// The database path.
        path: PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A newer build wrote the schema, or a migration failed.
    #[error("audit database `{}`: {source}", path.display())]
    Migrate {
        /// The database path.
        path: PathBuf,
        /// Why.
        source: MigrateError,
    },
    /// `SQLite` refused a statement.
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Writing an export failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// A durable commit could not be synced to disk: it may not survive a power cut.
    #[error("cannot sync the audit database `{}` to disk: {source}", path.display())]
    Sync {
        /// The database path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A run id prefix matched more than one run.
    #[error("run id `{prefix}` is ambiguous: {count} runs start with it")]
    AmbiguousRun {
        /// What was given.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// `record` named an intent row that is not an open intent of that run.
    #[error("no open intent row {intent} in run `{run}`")]
    NoIntent {
        /// The run.
        run: String,
        /// The step row id.
        intent: i64,
    },
}

/// One run, as `history` and `show` list it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
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
    /// User.
    pub user: String,
    /// `real` or `dry_run`.
    pub mode: String,
    /// The process that ran it.
    pub pid: i64,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339; `None` while running.
    pub finished_at: Option<String>,
    /// healthy, remediated, `problem_remains`, fault, interrupted; `None` while running.
    pub outcome: Option<String>,
    /// Exit code; `None` while running or when interrupted.
    pub exit_code: Option<i64>,
    /// Wall time, when finished (not for an interrupted run: its end is unknown).
    pub duration_ms: Option<i64>,
}

/// One step row, as `show` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    /// Row id.
    pub id: i64,
    /// Order within the run, from 1.
    pub seq: i64,
    /// check, cause, action, ...
    pub kind: String,
    /// The step's id in the runbook.
    pub step_id: String,
    /// `intent` (announced, no result: the run stopped while it ran) or `done`.
    pub state: String,
    /// Status, once done.
    pub status: Option<String>,
    /// Resolved inputs.
    pub inputs: Value,
    /// The result, once done.
    pub result: Option<Value>,
    /// The deciding value.
    pub decided_by: Option<String>,
    /// Words for a person.
    pub guidance: Option<String>,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Wall time.
    pub duration_ms: Option<i64>,
}

/// The `SQLite` audit trail. One connection behind a mutex; safe to share between threads,
/// and several processes may open the same file (WAL, `IMMEDIATE` transactions, busy timeout).
#[derive(Debug)]
pub struct AuditStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    secrets: Mutex<Vec<String>>,
    /// The file's group committer (shared by the stores of this process).
    sync: Arc<Syncer>,
}

/// When another connection holds the write lock, retry every 50 µs (then every 500 µs after
/// 50 tries) for up to `limit`, then fail with `SQLITE_BUSY`. `SQLite`'s own `busy_timeout`
/// sleeps 1, 2, 5, 10 … 100 ms between tries: under a steady stream of short commits (a
/// server recording thousands of deliveries a second) a run's writer kept losing the race
/// and slept tens of milliseconds per row.
///
/// # Errors
/// When `SQLite` refuses the handler.
pub fn wait_when_busy(conn: &mut Connection, limit: Duration) -> rusqlite::Result<()> {
    let mut since = std::time::Instant::now();
    conn.busy_handler(Some(move |tries: i32| {
        if tries == 0 {
            since = std::time::Instant::now();
        }
        if since.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(if tries < 50 { 50 } else { 500 }));
        true
    }))
}

const RUN_COLUMNS: &str = "id, runbook, runbook_sha256, trigger, params, host, user, mode, pid, \
                           started_at, finished_at, outcome, exit_code";
const STEP_COLUMNS: &str = "id, seq, kind, step_id, state, status, inputs, result, decided_by, \
                            guidance, started_at, duration_ms";
const REVERT_COLUMNS: &str = "id, run_id, runbook, runbook_file, runbook_sha256, action_id, \
                              rollback, params, due_at, state, created_at";

impl AuditStore {
    /// Open (creating it and its directory if needed) and migrate the database, then mark runs
    /// whose process is gone as `interrupted`.
    ///
    /// # Errors
    /// When the file cannot be created or opened, or its schema is newer than this build.
    pub fn open(path: &Path) -> Result<AuditStore, AuditError> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| AuditError::Open {
            path: path.to_owned(),
            source: e,
        };
        super::perms::create_private(path).map_err(|e| open_err(e.into()))?;
        let mut conn = Connection::open(path).map_err(|e| open_err(e.into()))?;
        wait_when_busy(&mut conn, Duration::from_secs(5)).map_err(|e| open_err(e.into()))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_err(e.into()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(
                format!("cannot switch to WAL (journal mode is `{mode}`)").into(),
            ));
        }
        // NORMAL: a commit is atomic and consistent, and reaches the disk at the next fsync of
        // the WAL. Commits that must be durable before the engine goes on (an intent row before
        // its action, the end of a run) then wait for a sync of the WAL (`durably`, group commit),
        // which covers them and every commit before them, in order.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_err(e.into()))?;
        // The WAL is checkpointed by SQLite's own autocheckpoint (every 1000 pages) during a
        // commit, not at every close: a short `runbook run` then costs no checkpoint fsyncs.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| open_err(e.into()))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| open_err(e.into()))?;
        migrations::migrate(&mut conn).map_err(|e| AuditError::Migrate {
            path: path.to_owned(),
            source: e,
        })?;
        let store = AuditStore {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            secrets: Mutex::new(Vec::new()),
            sync: Syncer::of(path),
        };
        store.mark_interrupted()?;
        Ok(store)
    }

    /// The database path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Add secret values to redact from everything written from now on.
    pub fn add_secrets<I: IntoIterator<Item = String>>(&self, secrets: I) {
        let mut g = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        g.extend(secrets.into_iter().filter(|s| !s.is_empty()));
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `f`, which commits, then return once its commit is on disk (and with it every
    /// commit before it in the WAL): the connection is released first, and the sync is shared
    /// with the other durable commits of the moment ([`Syncer`], group commit).
    fn durably<T>(
        &self,
        mut conn: MutexGuard<'_, Connection>,
        f: impl FnOnce(&mut Connection) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let out = f(&mut conn)?;
        drop(conn);
        self.sync.sync().map_err(|source| AuditError::Sync {
            path: self.path.clone(),
            source,
        })?;
        Ok(out)
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn redacted_json(&self, v: &Value) -> String {
        let mut v = v.clone();
        redact(&mut v, &self.secrets());
        v.to_string()
    }

    fn redacted_opt(&self, s: Option<&str>) -> Option<String> {
        s.map(|s| redact_str(s, &self.secrets()).unwrap_or_else(|| s.to_owned()))
    }

    /// Mark runs left unfinished by a process that is gone as `interrupted`; returns how many.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn mark_interrupted(&self) -> Result<usize, AuditError> {
        let mut conn = self.conn();
        let open: Vec<(String, i64, Option<i64>)> = conn
            .prepare("SELECT id, pid, pid_start FROM runs WHERE finished_at IS NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        if open
            .iter()
            .all(|(_, pid, start)| process_alive(*pid, *start))
        {
            return Ok(0);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_rfc3339();
        let mut n = 0;
        for (id, pid, start) in open {
            if process_alive(pid, start) {
                continue;
            }
            // Re-check under the write lock: another process may have marked it already.
            let changed = tx.execute(
                "UPDATE runs SET finished_at = ?2, outcome = 'interrupted' \
                 WHERE id = ?1 AND finished_at IS NULL",
                params![id, now],
            )?;
            if changed > 0 {
                chain::append(&tx, "runs", &id, "update")?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Recompute the hash chain and report the first altered row.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        Ok(chain::verify(&mut self.conn())?)
    }

    /// Runs, newest first, optionally of one runbook.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn history(
        &self,
        runbook: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunSummary>, AuditError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE ?1 IS NULL OR runbook = ?1 \
             ORDER BY started_at DESC, rowid DESC LIMIT ?2"
        );
        let runs = conn
            .prepare(&sql)?
            .query_map(params![runbook, i64::from(limit)], run_summary)?
            .collect::<Result<_, _>>()?;
        Ok(runs)
    }

    /// One run and its steps; `run` is an id or a unique prefix of one.
    ///
    /// # Errors
    /// When `SQLite` fails or the prefix is ambiguous.
    pub fn show(&self, run: &str) -> Result<Option<(RunSummary, Vec<StepRow>)>, AuditError> {
        let conn = self.conn();
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let mut found: Option<RunSummary> = conn.query_row(&sql, [run], run_summary).optional()?;
        if found.is_none() {
            let escaped = run
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE id LIKE ?1 || '%' ESCAPE '\\' LIMIT 10"
            );
            let mut matches: Vec<RunSummary> = conn
                .prepare(&sql)?
                .query_map([escaped], run_summary)?
                .collect::<Result<_, _>>()?;
            if matches.len() > 1 {
                return Err(AuditError::AmbiguousRun {
                    prefix: run.to_owned(),
                    count: matches.len(),
                });
            }
            found = matches.pop();
        }
        let Some(summary) = found else {
            return Ok(None);
        };
        let steps = steps_of(&conn, &summary.id)?;
        Ok(Some((summary, steps)))
    }

    /// Write every run and its steps as JSON lines (`{"type": "run"|"step"|"pending_revert",
    /// ...columns, "chain_seq", "prev_hash", "hash"}`), runs in the order they were written,
    /// each followed by its steps, then the pending reverts. The hashes are those of the row's
    /// latest chain entry.
    ///
    /// # Errors
    /// When `SQLite` or the writer fails.
    pub fn export(&self, w: &mut dyn Write) -> Result<(), AuditError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let run_ids: Vec<String> = tx
            .prepare("SELECT id FROM runs ORDER BY rowid")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for run in run_ids {
            export_row(&tx, w, "run", "runs", &run)?;
            let step_ids: Vec<i64> = tx
                .prepare_cached("SELECT id FROM steps WHERE run_id = ?1 ORDER BY seq")?
                .query_map([&run], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for step in step_ids {
                export_row(&tx, w, "step", "steps", &step.to_string())?;
            }
        }
        let revert_ids: Vec<i64> = tx
            .prepare("SELECT id FROM pending_reverts ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in revert_ids {
            export_row(&tx, w, "pending_revert", "pending_reverts", &id.to_string())?;
        }
        w.flush()?;
        Ok(())
    }

    /// An action's intent row, on disk before the action starts (durable).
    fn insert_intent(
        &self,
        run_id: &str,
        action_id: &str,
        inputs: &Value,
    ) -> Result<i64, AuditError> {
        let conn = self.conn();
        self.durably(conn, |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id =
                self.insert_step_in(&tx, run_id, "action", action_id, "intent", None, inputs)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// Insert a step row (next `seq` of the run) and its chain entry in `tx`.
    #[allow(clippy::too_many_arguments)]
    fn insert_step_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        run_id: &str,
        kind: &str,
        step_id: &str,
        state: &str,
        step: Option<&StepRecord>,
        inputs: &Value,
    ) -> Result<i64, AuditError> {
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO steps (run_id, seq, kind, step_id, state, status, inputs, result, \
             decided_by, guidance, started_at, duration_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                run_id,
                seq,
                kind,
                redact_str(step_id, &self.secrets()).unwrap_or_else(|| step_id.to_owned()),
                state,
                step.map(|s| enum_name(&s.status)),
                self.redacted_json(inputs),
                step.map(|s| self.redacted_json(&s.result)),
                self.redacted_opt(step.and_then(|s| s.decided_by.as_deref())),
                self.redacted_opt(step.and_then(|s| s.guidance.as_deref())),
                step.map_or_else(now_rfc3339, |s| s.started_at.clone()),
                step.map(|s| i64::try_from(s.duration_ms).unwrap_or(i64::MAX)),
            ],
        )?;
        let id = tx.last_insert_rowid();
        chain::append(tx, "steps", &id.to_string(), "insert")?;
        Ok(id)
    }

    /// Finished steps that are not actions' intents, in order, in one transaction.
    fn insert_steps(&self, run_id: &str, steps: &[StepRecord]) -> Result<(), AuditError> {
        if steps.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for s in steps {
            self.insert_done(&tx, run_id, s)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A finished step that is not an action's intent, in `tx`.
    fn insert_done(
        &self,
        tx: &rusqlite::Transaction<'_>,
        run_id: &str,
        step: &StepRecord,
    ) -> Result<i64, AuditError> {
        let kind = enum_name(&step.kind);
        self.insert_step_in(
            tx,
            run_id,
            &kind,
            &step.id,
            "done",
            Some(step),
            &step.inputs,
        )
    }

    fn complete_intent(
        &self,
        run_id: &str,
        intent: i64,
        step: &StepRecord,
    ) -> Result<(), AuditError> {
        let conn = self.conn();
        // An action's result is as durable as its intent (design §5).
        self.durably(conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx.execute(
            "UPDATE steps SET kind = ?3, step_id = ?4, state = 'done', status = ?5, inputs = ?6, \
             result = ?7, decided_by = ?8, guidance = ?9, started_at = ?10, duration_ms = ?11 \
             WHERE id = ?1 AND run_id = ?2 AND state = 'intent'",
            params![
                intent,
                run_id,
                enum_name(&step.kind),
                redact_str(&step.id, &self.secrets()).unwrap_or_else(|| step.id.clone()),
                enum_name(&step.status),
                self.redacted_json(&step.inputs),
                self.redacted_json(&step.result),
                self.redacted_opt(step.decided_by.as_deref()),
                self.redacted_opt(step.guidance.as_deref()),
                step.started_at,
                i64::try_from(step.duration_ms).unwrap_or(i64::MAX),
            ],
        )?;
            if changed == 0 {
                return Err(AuditError::NoIntent {
                    run: run_id.to_owned(),
                    intent,
                });
            }
            chain::append(&tx, "steps", &intent.to_string(), "update")?;
            tx.commit()?;
            Ok(())
        })
    }

    fn begin(&self, info: &RunInfo) -> Result<String, AuditError> {
        self.mark_interrupted()?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Utc::now();
        let pid = std::process::id();
        let id = loop {
            let id = new_run_id(now);
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)",
                [&id],
                |r| r.get(0),
            )?;
            if !taken {
                break id;
            }
        };
        let secrets = self.secrets();
        let clean = |s: &str| redact_str(s, &secrets).unwrap_or_else(|| s.to_owned());
        tx.execute(
            "INSERT INTO runs (id, runbook, runbook_sha256, trigger, params, host, user, mode, \
             pid, pid_start, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                id,
                clean(&info.runbook),
                info.runbook_sha256,
                clean(&info.trigger),
                self.redacted_json(&info.params),
                clean(&info.host),
                clean(&info.user),
                info.mode,
                i64::from(pid),
                proc_start_time(pid),
                now.to_rfc3339_opts(SecondsFormat::Millis, true),
            ],
        )?;
        chain::append(&tx, "runs", &id, "insert")?;
        if let Some(o) = &info.origin {
            // The run id is new, so a row it replaces was written outside the store: the
            // chain records this one as the row's next state (`update`), not as a first one.
            let replaced: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM run_context WHERE run_id = ?1)",
                [&id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO run_context (run_id, key, alert) VALUES (?1, ?2, ?3)",
                params![id, o.key, o.alert.as_ref().map(|a| self.redacted_json(a))],
            )?;
            let op = if replaced { "update" } else { "insert" };
            chain::append(&tx, "run_context", &id, op)?;
            if let Some(delivery) = o.delivery {
                // The delivery has its run: a restart will not start it again.
                tx.execute(
                    "UPDATE alerts SET run_id = ?1 WHERE id = ?2 AND run_id IS NULL",
                    params![id, delivery],
                )?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// The steps held back by the executor, then the end of the run: one durable transaction.
    fn finish(
        &self,
        run_id: &str,
        steps: &[StepRecord],
        outcome: Outcome,
        exit_code: u8,
    ) -> Result<(), AuditError> {
        let conn = self.conn();
        self.durably(conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for s in steps {
                self.insert_done(&tx, run_id, s)?;
            }
            let changed = tx.execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, exit_code = ?4 WHERE id = ?1",
                params![run_id, now_rfc3339(), enum_name(&outcome), exit_code],
            )?;
            if changed == 0 {
                return Err(rusqlite::Error::QueryReturnedNoRows.into());
            }
            chain::append(&tx, "runs", run_id, "update")?;
            tx.commit()?;
            Ok(())
        })
    }

    fn take(&self, key: &str, max: u32, per: Duration) -> Result<bool, AuditError> {
        let mut conn = self.conn();
        // IMMEDIATE: the count and the insert happen under the database write lock, so two
        // processes cannot both see room for the last use.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Utc::now().timestamp_millis();
        let since = now.saturating_sub(i64::try_from(per.as_millis()).unwrap_or(i64::MAX));
        tx.execute(
            "DELETE FROM action_limits WHERE key = ?1 AND used_at <= ?2",
            params![key, since],
        )?;
        let used: i64 = tx.query_row(
            "SELECT COUNT(*) FROM action_limits WHERE key = ?1 AND used_at > ?2",
            params![key, since],
            |r| r.get(0),
        )?;
        if used >= i64::from(max) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO action_limits (key, used_at) VALUES (?1, ?2)",
            params![key, now],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn take_lock(&self, runbook: &str, run_id: &str) -> Result<bool, AuditError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holder: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT run_id, pid, pid_start FROM run_locks WHERE runbook = ?1",
                [runbook],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        if let Some((holder, pid, start)) = holder {
            if holder == run_id {
                return Ok(true);
            }
            if process_alive(pid, start) {
                return Ok(false);
            }
            // The holder's process is gone: the lock is stale, take it over.
        }
        let pid = std::process::id();
        tx.execute(
            "INSERT OR REPLACE INTO run_locks (runbook, run_id, pid, pid_start, taken_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                runbook,
                run_id,
                i64::from(pid),
                proc_start_time(pid),
                now_rfc3339()
            ],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn release_lock(&self, runbook: &str, run_id: &str) -> Result<(), AuditError> {
        self.conn().execute(
            "DELETE FROM run_locks WHERE runbook = ?1 AND run_id = ?2",
            params![runbook, run_id],
        )?;
        Ok(())
    }
}

/// A write transaction handed to a module that owns tables of this file (the escalation
/// timers): `IMMEDIATE`, so what it reads it also holds until commit, and able to chain the
/// rows it writes.
pub struct WriteTx<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl WriteTx<'_> {
    /// Append the hash-chain entry of `table`/`id` as the row now is (`op`: insert or update).
    ///
    /// # Errors
    /// When `SQLite` fails or the row does not exist.
    pub fn chain(&self, table: &str, id: &str, op: &str) -> rusqlite::Result<()> {
        chain::append(&self.tx, table, id, op).map(|_| ())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.tx
    }
}

/// Who holds a claim (the escalation timers' `firing` levels): the same liveness test as the
/// runs and pending reverts of this file, for modules that keep their own claims.
impl AuditStore {
    /// This process as a claim names it: its pid and its start time (`/proc/PID/stat` field
    /// 22; `None` where there is no `/proc`).
    #[must_use]
    pub fn claimant() -> (i64, Option<i64>) {
        let pid = std::process::id();
        (i64::from(pid), proc_start_time(pid))
    }

    /// Whether the process `pid` (started at `start`, when known) still runs: `false` for a
    /// pid that is gone, a zombie, or reused by a process that started at another time.
    #[must_use]
    pub fn claimant_alive(pid: i64, start: Option<i64>) -> bool {
        process_alive(pid, start)
    }
}

/// Access for modules that own tables of the audit file (`crate::escalation`): their SQL
/// stays with them, the connection, its locking and durability stay here.
impl AuditStore {
    /// Run `f` in one `IMMEDIATE` transaction and commit what it wrote when it returns `Ok`
    /// (roll back on `Err`). `durable`: returns once the commit is on disk (group commit).
    ///
    /// # Errors
    /// When `SQLite` fails or `f` does.
    pub fn write<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&WriteTx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, AuditError> {
        let mut conn = self.conn();
        let body = |conn: &mut Connection| -> Result<T, AuditError> {
            let tx = WriteTx {
                tx: conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
            };
            let out = f(&tx)?;
            tx.tx.commit()?;
            Ok(out)
        };
        if durable {
            self.durably(conn, body)
        } else {
            body(&mut conn)
        }
    }

    /// Run `f` on the connection in one (deferred, read) transaction: a consistent snapshot.
    ///
    /// # Errors
    /// When `SQLite` fails or `f` does.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AuditError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.finish()?;
        Ok(out)
    }
}

/// Pending reverts (`revert_after`): recorded by the executor, claimed and settled by `tick`.
impl AuditStore {
    fn insert_revert(&self, r: &NewRevert) -> Result<i64, AuditError> {
        let conn = self.conn();
        // Durable: a lost row would leave a temporary change in place for good.
        self.durably(conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO pending_reverts (run_id, runbook, runbook_file, runbook_sha256, \
                 action_id, rollback, params, due_at, state, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
                params![
                    r.run_id,
                    r.runbook,
                    r.runbook_file,
                    r.runbook_sha256,
                    r.action_id,
                    Value::from(r.rollback.clone()).to_string(),
                    self.redacted_json(&r.params),
                    r.due_at,
                    now_rfc3339(),
                ],
            )?;
            let id = tx.last_insert_rowid();
            chain::append(&tx, "pending_reverts", &id.to_string(), "insert")?;
            tx.commit()?;
            Ok(id)
        })
    }

    fn due(&self, now: &str) -> Result<Vec<RevertRow>, AuditError> {
        let mut conn = self.conn();
        let running: Vec<(i64, Option<i64>, Option<i64>)> = conn
            .prepare(
                "SELECT id, claimed_pid, claimed_pid_start FROM pending_reverts \
                 WHERE state = 'running'",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let stale: Vec<i64> = running
            .into_iter()
            .filter(|(_, pid, start)| !pid.is_some_and(|p| process_alive(p, *start)))
            .map(|(id, _, _)| id)
            .collect();
        if !stale.is_empty() {
            // Whether the rollback ran before the process stopped is unknown: not retried
            // blindly, left for a person (the interrupted run's intent rows tell how far it got).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let result = serde_json::json!({
                "reason": "interrupted: the `tick` performing it stopped; check the host and \
                           run the rollback by hand"
            });
            for id in stale {
                let changed = tx.execute(
                    "UPDATE pending_reverts SET state = 'failed', done_at = ?2, result = ?3, \
                     claimed_pid = NULL, claimed_pid_start = NULL \
                     WHERE id = ?1 AND state = 'running'",
                    params![id, now_rfc3339(), result.to_string()],
                )?;
                if changed > 0 {
                    chain::append(&tx, "pending_reverts", &id.to_string(), "update")?;
                }
            }
            tx.commit()?;
        }
        let sql = format!(
            "SELECT {REVERT_COLUMNS} FROM pending_reverts \
             WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at, id"
        );
        let rows = conn
            .prepare(&sql)?
            .query_map([now], revert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn claim(&self, id: i64, now: &str) -> Result<bool, AuditError> {
        let mut conn = self.conn();
        // IMMEDIATE: the state test and the update happen under the write lock, so of two
        // processes only one sees the row still pending.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pid = std::process::id();
        let changed = tx.execute(
            "UPDATE pending_reverts SET state = 'running', claimed_pid = ?3, \
             claimed_pid_start = ?4 WHERE id = ?1 AND state = 'pending' AND due_at <= ?2",
            params![id, now, i64::from(pid), proc_start_time(pid)],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        chain::append(&tx, "pending_reverts", &id.to_string(), "update")?;
        tx.commit()?;
        Ok(true)
    }

    fn settle(
        &self,
        id: i64,
        state: RevertState,
        run_id: Option<&str>,
        result: &Value,
    ) -> Result<(), AuditError> {
        let conn = self.conn();
        self.durably(conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done_at = match state {
                RevertState::Pending | RevertState::Running => None,
                RevertState::Done | RevertState::Failed | RevertState::Cancelled => {
                    Some(now_rfc3339())
                }
            };
            // A settled revert stays settled: only a pending or running one changes.
            let changed = tx.execute(
                "UPDATE pending_reverts SET state = ?2, revert_run_id = COALESCE(?3, revert_run_id), \
                 result = ?4, done_at = ?5, claimed_pid = NULL, claimed_pid_start = NULL \
                 WHERE id = ?1 AND state IN ('pending', 'running')",
                params![id, state.name(), run_id, self.redacted_json(result), done_at],
            )?;
            if changed == 0 {
                return Err(rusqlite::Error::QueryReturnedNoRows.into());
            }
            chain::append(&tx, "pending_reverts", &id.to_string(), "update")?;
            tx.commit()?;
            Ok(())
        })
    }
}

fn revert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevertRow> {
    let rollback: String = r.get(6)?;
    let state: String = r.get(9)?;
    Ok(RevertRow {
        id: r.get(0)?,
        revert: NewRevert {
            run_id: r.get(1)?,
            runbook: r.get(2)?,
            runbook_file: r.get(3)?,
            runbook_sha256: r.get(4)?,
            action_id: r.get(5)?,
            rollback: serde_json::from_str(&rollback).unwrap_or_default(),
            params: parse_json(r.get(7)?),
            due_at: r.get(8)?,
        },
        state: RevertState::from_name(&state).unwrap_or(RevertState::Failed),
        created_at: r.get(10)?,
    })
}

fn ledger<T>(r: Result<T, AuditError>) -> Result<T, LedgerError> {
    r.map_err(|e| LedgerError(e.to_string()))
}

impl Ledger for AuditStore {
    fn positions(&self) -> Option<&dyn crate::probes::PositionStore> {
        Some(self)
    }

    fn begin_run(&self, info: &RunInfo) -> Result<String, LedgerError> {
        ledger(self.begin(info))
    }

    fn lock(&self, runbook: &str, run_id: &str) -> Result<bool, LedgerError> {
        ledger(self.take_lock(runbook, run_id))
    }

    fn unlock(&self, runbook: &str, run_id: &str) -> Result<(), LedgerError> {
        ledger(self.release_lock(runbook, run_id))
    }

    fn take_limit(&self, key: &str, max: u32, per: Duration) -> Result<bool, LedgerError> {
        ledger(self.take(key, max, per))
    }

    fn intent(&self, run_id: &str, action_id: &str, inputs: &Value) -> Result<i64, LedgerError> {
        ledger(self.insert_intent(run_id, action_id, inputs))
    }

    fn record(
        &self,
        run_id: &str,
        intent: Option<i64>,
        step: &StepRecord,
    ) -> Result<(), LedgerError> {
        ledger(match intent {
            Some(i) => self.complete_intent(run_id, i, step),
            None => self.insert_steps(run_id, std::slice::from_ref(step)),
        })
    }

    fn record_steps(&self, run_id: &str, steps: &[StepRecord]) -> Result<(), LedgerError> {
        ledger(self.insert_steps(run_id, steps))
    }

    fn finish_run(&self, run_id: &str, outcome: Outcome, exit_code: u8) -> Result<(), LedgerError> {
        ledger(self.finish(run_id, &[], outcome, exit_code))
    }

    fn finish_run_with(
        &self,
        run_id: &str,
        steps: &[StepRecord],
        outcome: Outcome,
        exit_code: u8,
    ) -> Result<(), LedgerError> {
        ledger(self.finish(run_id, steps, outcome, exit_code))
    }

    fn add_revert(&self, revert: &NewRevert) -> Result<i64, LedgerError> {
        ledger(self.insert_revert(revert))
    }

    fn due_reverts(&self, now: &str) -> Result<Vec<RevertRow>, LedgerError> {
        ledger(self.due(now))
    }

    fn claim_revert(&self, id: i64, now: &str) -> Result<bool, LedgerError> {
        ledger(self.claim(id, now))
    }

    fn settle_revert(
        &self,
        id: i64,
        state: RevertState,
        run_id: Option<&str>,
        result: &Value,
    ) -> Result<(), LedgerError> {
        ledger(self.settle(id, state, run_id, result))
    }
}

/// A `runs` row selected as `RUN_COLUMNS` (any table alias) as a [`RunSummary`].
pub(crate) fn run_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    let params: String = r.get(4)?;
    let started_at: String = r.get(9)?;
    let finished_at: Option<String> = r.get(10)?;
    let outcome: Option<String> = r.get(11)?;
    // An interrupted run was marked when a later process noticed, not when it stopped.
    let ended = finished_at
        .as_deref()
        .filter(|_| outcome.as_deref() != Some("interrupted"));
    let duration_ms = ended.and_then(|f| {
        let a = DateTime::parse_from_rfc3339(&started_at).ok()?;
        let b = DateTime::parse_from_rfc3339(f).ok()?;
        Some((b - a).num_milliseconds())
    });
    Ok(RunSummary {
        id: r.get(0)?,
        runbook: r.get(1)?,
        runbook_sha256: r.get(2)?,
        trigger: r.get(3)?,
        params: serde_json::from_str(&params).unwrap_or(Value::String(params)),
        host: r.get(5)?,
        user: r.get(6)?,
        mode: r.get(7)?,
        pid: r.get(8)?,
        started_at,
        finished_at,
        outcome,
        exit_code: r.get(12)?,
        duration_ms,
    })
}

fn parse_json(s: String) -> Value {
    serde_json::from_str(&s).unwrap_or(Value::String(s))
}

fn steps_of(conn: &Connection, run: &str) -> rusqlite::Result<Vec<StepRow>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY seq");
    conn.prepare(&sql)?.query_map([run], step_row)?.collect()
}

/// A `steps` row selected as `STEP_COLUMNS` as a [`StepRow`].
pub(crate) fn step_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StepRow> {
    Ok(StepRow {
        id: r.get(0)?,
        seq: r.get(1)?,
        kind: r.get(2)?,
        step_id: r.get(3)?,
        state: r.get(4)?,
        status: r.get(5)?,
        inputs: parse_json(r.get(6)?),
        result: r.get::<_, Option<String>>(7)?.map(parse_json),
        decided_by: r.get(8)?,
        guidance: r.get(9)?,
        started_at: r.get(10)?,
        duration_ms: r.get(11)?,
    })
}

fn export_row(
    conn: &Connection,
    w: &mut dyn Write,
    kind: &str,
    table: &str,
    id: &str,
) -> Result<(), AuditError> {
    let Some(Value::Object(mut obj)) = chain::load_row(conn, table, id)? else {
        return Ok(());
    };
    let entry: Option<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT seq, prev_hash, hash FROM audit_chain WHERE tbl = ?1 AND row_id = ?2 \
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([table, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    // JSON columns are exported as JSON, not as strings holding JSON.
    for col in ["params", "inputs", "result", "rollback"] {
        if let Some(Value::String(s)) = obj.get(col) {
            if let Ok(v) = serde_json::from_str::<Value>(s) {
                obj.insert(col.to_owned(), v);
            }
        }
    }
    let mut line = serde_json::Map::new();
    line.insert("type".to_owned(), Value::from(kind));
    line.extend(obj);
    let (seq, prev, hash) = entry.map_or((Value::Null, Value::Null, Value::Null), |(s, p, h)| {
        (Value::from(s), Value::from(p), Value::from(h))
    });
    line.insert("chain_seq".to_owned(), seq);
    line.insert("prev_hash".to_owned(), prev);
    line.insert("hash".to_owned(), hash);
    serde_json::to_writer(&mut *w, &Value::Object(line)).map_err(std::io::Error::from)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// The `snake_case` name serde gives a unit variant.
fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `20250101T120000Z-3fa2c1`: sortable by time, short enough to type, unique with the suffix.
fn new_run_id(now: DateTime<Utc>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}/{}/{}",
        now.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = hex::encode(Sha256::digest(seed.as_bytes()));
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &digest[..6])
}

/// The start time of a process (`/proc/PID/stat` field 22, clock ticks since boot), which
/// tells a live owner from a new process that reused its pid. `None` off Linux.
fn proc_start_time(pid: u32) -> Option<i64> {
    if pid == std::process::id() {
        return own_start_time();
    }
    read_start_time(pid)
}

/// This process's start time, read once: a server begins hundreds of runs a second.
fn own_start_time() -> Option<i64> {
    static OWN: std::sync::OnceLock<Option<i64>> = std::sync::OnceLock::new();
    *OWN.get_or_init(|| read_start_time(std::process::id()))
}

fn read_start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that wrote a row still runs (and is the same process: same start time).
fn process_alive(pid: i64, start: Option<i64>) -> bool {
    let Ok(pid32) = i32::try_from(pid) else {
        return false;
    };
    if pid32 <= 0 {
        return false;
    }
    // This process's own rows (a server's runs in progress): alive, without reading /proc.
    if u32::try_from(pid32).is_ok_and(|p| p == std::process::id())
        && start.is_some()
        && start == own_start_time()
    {
        return true;
    }
    if Path::new("/proc/self/stat").exists() {
        let Ok(proc_stat) = std::fs::read_to_string(format!("/proc/{pid32}/stat")) else {
            return false;
        };
        let Some(rest) = proc_stat.rfind(')').map(|i| &proc_stat[i + 1..]) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        // A zombie has exited; it only waits to be reaped.
        if matches!(fields.next(), Some("Z" | "X")) {
            return false;
        }
        let now_start: Option<i64> = fields.nth(18).and_then(|s| s.parse().ok());
        return match (start, now_start) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid32), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

impl crate::probes::PositionStore for AuditStore {
    fn load_positions(&self, reader: &str) -> Result<Vec<TailPosition>, String> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT path, dev, inode, fp_len, fingerprint, byte_offset, size, line \
                 FROM tail_positions WHERE reader = ?1",
            )
            .and_then(|mut st| {
                st.query_map([reader], |r| {
                    let u = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok(TailPosition {
                        path: r.get(0)?,
                        dev: u(1)?,
                        inode: u(2)?,
                        fp_len: u(3)?,
                        fingerprint: r.get(4)?,
                        offset: u(5)?,
                        size: u(6)?,
                        line: u(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
            });
        rows.map_err(|e| e.to_string())
    }

    fn save_positions(&self, reader: &str, positions: &[TailPosition]) -> Result<(), String> {
        let mut conn = self.conn();
        let save = |conn: &mut Connection| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_rfc3339();
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO tail_positions (reader, path, dev, inode, fp_len, fingerprint, \
                     byte_offset, size, line, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT (reader, path) DO UPDATE SET dev = ?3, inode = ?4, \
                     fp_len = ?5, fingerprint = ?6, byte_offset = ?7, size = ?8, line = ?9, \
                     updated_at = ?10",
                )?;
                let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                for p in positions {
                    st.execute(params![
                        reader,
                        p.path,
                        i(p.dev),
                        i(p.inode),
                        i(p.fp_len),
                        p.fingerprint,
                        i(p.offset),
                        i(p.size),
                        i(p.line),
                        now,
                    ])?;
                }
            }
            tx.commit()
        };
        save(&mut conn).map_err(|e| e.to_string())
    }
}

/// An approval of one action of a run (`runbook approve`, `POST /api/runs/ID/approve`).
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// Row id.
    pub id: i64,
    /// The run whose action waited for approval.
    pub run_id: String,
    /// The approved action.
    pub action_id: String,
    /// Who approved.
    pub approved_by: String,
    /// When.
    pub approved_at: String,
    /// After this it is refused.
    pub expires_at: String,
    /// pending (not yet taken by a re-run), used, expired.
    pub state: String,
    /// The run that performed it.
    pub rerun_id: Option<String>,
}

/// What taking an approval for a re-run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalUse {
    /// Taken now: the re-run may go.
    Taken,
    /// Its time ran out (it is marked expired).
    Expired,
    /// Taken before, or gone.
    Gone,
}

const APPROVAL_COLUMNS: &str =
    "id, run_id, action_id, approved_by, approved_at, expires_at, state, rerun_id";

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        id: r.get(0)?,
        run_id: r.get(1)?,
        action_id: r.get(2)?,
        approved_by: r.get(3)?,
        approved_at: r.get(4)?,
        expires_at: r.get(5)?,
        state: r.get(6)?,
        rerun_id: r.get(7)?,
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What `serve` keeps between restarts (migration 5): the last cron slot run per scheduled
/// runbook, approvals of single actions, and the alert and key each server run was for.
impl AuditStore {
    /// The last slot claimed for `runbook`'s schedule.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn last_slot(&self, runbook: &str) -> Result<Option<String>, AuditError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT slot FROM schedule_slots WHERE runbook = ?1",
                [runbook],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Claim `slot` of `runbook`'s schedule: `true` when no later or equal slot was claimed
    /// before (by this process or another), so each slot runs at most once.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn claim_slot(
        &self,
        runbook: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, AuditError> {
        let conn = self.conn();
        self.durably(conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claimed_before: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM schedule_slots WHERE runbook = ?1)",
                [runbook],
                |r| r.get(0),
            )?;
            let changed = tx.execute(
                "INSERT INTO schedule_slots (runbook, slot, claimed_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (runbook) DO UPDATE SET slot = excluded.slot, \
                 claimed_at = excluded.claimed_at WHERE schedule_slots.slot < excluded.slot",
                params![runbook, rfc3339(slot), rfc3339(now)],
            )?;
            // A refused claim (an equal or later slot was claimed) wrote nothing to chain.
            if changed > 0 {
                let op = if claimed_before { "update" } else { "insert" };
                chain::append(&tx, "schedule_slots", runbook, op)?;
            }
            tx.commit()?;
            Ok(changed > 0)
        })
    }

    /// Record an approval of `action_id` of run `run_id`, valid until `now + ttl`.
    ///
    /// # Errors
    /// When `SQLite` fails (the run must exist).
    pub fn add_approval(
        &self,
        run_id: &str,
        action_id: &str,
        by: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Approval, AuditError> {
        let expires = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        let conn = self.conn();
        self.durably(conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO approvals (run_id, action_id, approved_by, approved_at, expires_at, \
                 state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                params![run_id, action_id, by, rfc3339(now), rfc3339(expires)],
            )?;
            let id = tx.last_insert_rowid();
            chain::append(&tx, "approvals", &id.to_string(), "insert")?;
            let a = tx.query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                approval_row,
            )?;
            tx.commit()?;
            Ok(a)
        })
    }

    /// Take a pending approval for its re-run, or mark it expired when `now` is past its
    /// expiry. One `IMMEDIATE` transaction: of two takers, one wins.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn use_approval(&self, id: i64, now: DateTime<Utc>) -> Result<ApprovalUse, AuditError> {
        let now = rfc3339(now);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = tx.execute(
            "UPDATE approvals SET state = 'used', used_at = ?2 \
             WHERE id = ?1 AND state = 'pending' AND expires_at > ?2",
            params![id, now],
        )?;
        let out = if taken > 0 {
            ApprovalUse::Taken
        } else if tx.execute(
            "UPDATE approvals SET state = 'expired' WHERE id = ?1 AND state = 'pending'",
            [id],
        )? > 0
        {
            ApprovalUse::Expired
        } else {
            ApprovalUse::Gone
        };
        if out != ApprovalUse::Gone {
            chain::append(&tx, "approvals", &id.to_string(), "update")?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Approvals not yet taken by a re-run, oldest first.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn pending_approvals(&self) -> Result<Vec<Approval>, AuditError> {
        let conn = self.conn();
        let rows = conn
            .prepare(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE state = 'pending' ORDER BY id"
            ))?
            .query_map([], approval_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Name the run that performed an approval.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn approval_rerun(&self, id: i64, rerun_id: &str) -> Result<(), AuditError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute(
            "UPDATE approvals SET rerun_id = ?2 WHERE id = ?1",
            params![id, rerun_id],
        )? > 0
        {
            chain::append(&tx, "approvals", &id.to_string(), "update")?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The key and `alert` context a server run was for, if it was one.
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn run_context(&self, run_id: &str) -> Result<Option<(String, Option<Value>)>, AuditError> {
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT key, alert FROM run_context WHERE run_id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.map(|(k, a)| (k, a.and_then(|a| serde_json::from_str(&a).ok()))))
    }
}
