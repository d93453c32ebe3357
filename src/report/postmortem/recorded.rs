//! [`Recorded`]: what the audit database holds about one run or one incident, read through a
//! read-only connection: the runs with their steps and alert context, the incident, the
//! escalation levels it climbed and the notifications they sent.
//!
//! Nothing is written: not the migration nor the marking of interrupted runs that
//! [`crate::audit::AuditStore::open`] performs. A database from an older build lacks some
//! tables; what is missing reads as empty.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;

use crate::audit::{RunSummary, StepRow, run_summary, step_row};
use crate::escalation::{INCIDENT_COLUMNS, Incident, incident_row};

/// Why the record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No run with that id or prefix.
    #[error("no run `{0}`")]
    NoRun(String),
    /// Several runs start with the prefix.
    #[error("run id `{prefix}` is ambiguous: {count} runs start with it")]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// How many matched (at most 10 are counted).
        count: usize,
    },
    /// No incident with that id.
    #[error("no incident #{0}")]
    NoIncident(i64),
    /// The database could not be opened or read.
    #[error("cannot read the audit database: {0}")]
    Db(#[from] rusqlite::Error),
}

/// The delivery (an `alerts` row) that started a run.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When the server received it.
    pub received_at: String,
    /// `alertmanager`, `grafana`, `generic`.
    pub source: String,
}

/// One run as recorded.
#[derive(Debug, Clone)]
pub struct RecordedRun {
    /// The `runs` row.
    pub summary: RunSummary,
    /// Its steps, in order.
    pub steps: Vec<StepRow>,
    /// The `alert` context of a server run (labels, annotations, `starts_at`, fingerprint).
    pub alert: Option<Value>,
    /// The delivery that started it, for a run started by an alert.
    pub delivery: Option<Delivery>,
}

/// One level of an incident's ladder reached (an `escalations` row).
#[derive(Debug, Clone)]
pub struct LevelFired {
    /// Position in the ladder, from 1.
    pub level: i64,
    /// `L2`.
    pub level_id: String,
    /// `Senior Engineer`.
    pub level_name: String,
    /// When it was due.
    pub due_at: String,
    /// `firing` (claimed, not settled), `fired`, `skipped` (passed over).
    pub state: String,
    /// When it was claimed.
    pub claimed_at: String,
    /// When it was sent.
    pub fired_at: Option<String>,
    /// The recheck run that fired it, when a recheck did.
    pub recheck_run_id: Option<String>,
}

/// One notification sent for a level (a `notifications` row).
#[derive(Debug, Clone)]
pub struct Notification {
    /// The policy's channel name.
    pub channel: String,
    /// Its kind and origin (`webhook http://127.0.0.1:9097`).
    pub target: String,
    /// When.
    pub sent_at: String,
    /// `ok` or `failed`.
    pub status: String,
    /// How it went.
    pub detail: Option<String>,
    /// The incident's last run when it was sent.
    pub run_id: Option<String>,
    /// The level (position) it was sent for.
    pub level: Option<i64>,
}

/// What the audit database holds about a run or an incident.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The runs, oldest first: the one run asked for, or every run of the incident.
    pub runs: Vec<RecordedRun>,
    /// The incident: the one asked for, or the one the run opened, updated or resolved.
    pub incident: Option<Incident>,
    /// The incident's levels reached, in order.
    pub levels: Vec<LevelFired>,
    /// The notifications its levels sent, in order.
    pub notifications: Vec<Notification>,
    /// For one run of an incident that had later runs: when the next one started. What the
    /// incident did from then on belongs to that run's story.
    pub until: Option<String>,
}

const RUN_COLUMNS: &str = "r.id, r.runbook, r.runbook_sha256, r.trigger, r.params, r.host, \
                           r.user, r.mode, r.pid, r.started_at, r.finished_at, r.outcome, \
                           r.exit_code";
const STEP_COLUMNS: &str = "id, seq, kind, step_id, state, status, inputs, result, decided_by, \
                            guidance, started_at, duration_ms";

/// The database, open read-only.
struct Db {
    conn: Connection,
    /// `run_context` exists (schema 5+).
    has_context: bool,
    /// `incidents` has the escalation timers' schema (4+).
    has_incidents: bool,
}

impl Db {
    fn open(path: &Path) -> Result<Db, ReadError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let has = |name: &str| -> rusqlite::Result<bool> {
            conn.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get(0),
            )
        };
        // Reading `sqlite_master` is the first real read: a file that is not a database
        // fails here.
        let has_context = has("run_context")?;
        let has_incidents = has("escalations")?;
        Ok(Db {
            conn,
            has_context,
            has_incidents,
        })
    }

    /// A run by id or unique prefix.
    fn find_run(&self, run: &str) -> Result<RunSummary, ReadError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = ?1");
        if let Some(found) = self.conn.query_row(&sql, [run], run_summary).optional()? {
            return Ok(found);
        }
        let escaped = run
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.id LIKE ?1 || '%' ESCAPE '\\' LIMIT 10"
        );
        let mut matches: Vec<RunSummary> = self
            .conn
            .prepare(&sql)?
            .query_map([escaped], run_summary)?
            .collect::<Result<_, _>>()?;
        match matches.len() {
            0 => Err(ReadError::NoRun(run.to_owned())),
            1 => Ok(matches.remove(0)),
            count => Err(ReadError::Ambiguous {
                prefix: run.to_owned(),
                count,
            }),
        }
    }

    /// The run with its steps, alert context and delivery.
    fn load_run(&self, summary: RunSummary) -> Result<RecordedRun, ReadError> {
        let steps = self
            .conn
            .prepare(&format!(
                "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY seq"
            ))?
            .query_map([&summary.id], step_row)?
            .collect::<Result<_, _>>()?;
        let alert = if self.has_context {
            self.conn
                .query_row(
                    "SELECT alert FROM run_context WHERE run_id = ?1",
                    [&summary.id],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()?
                .flatten()
                .and_then(|a| serde_json::from_str(&a).ok())
        } else {
            None
        };
        let delivery = self
            .conn
            .query_row(
                "SELECT received_at, source FROM alerts WHERE run_id = ?1 ORDER BY id LIMIT 1",
                [&summary.id],
                |r| {
                    Ok(Delivery {
                        received_at: r.get(0)?,
                        source: r.get(1)?,
                    })
                },
            )
            .optional()?;
        Ok(RecordedRun {
            summary,
            steps,
            alert,
            delivery,
        })
    }

    /// The key a run's incident is filed under: the alert fingerprint (or `schedule`, ...)
    /// of a server run, else the runbook name.
    fn key_of(&self, run: &RunSummary) -> Result<String, ReadError> {
        let key = if self.has_context {
            self.conn
                .query_row(
                    "SELECT key FROM run_context WHERE run_id = ?1",
                    [&run.id],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
        } else {
            None
        };
        Ok(key.unwrap_or_else(|| run.runbook.clone()))
    }

    fn incident(&self, id: i64) -> Result<Option<Incident>, ReadError> {
        if !self.has_incidents {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                [id],
                incident_row,
            )
            .optional()?)
    }

    /// The incident a run opened, updated or resolved: of its runbook and key, opened by it,
    /// last updated by it, or open when it started.
    fn incident_of(&self, run: &RunSummary) -> Result<Option<Incident>, ReadError> {
        if !self.has_incidents {
            return Ok(None);
        }
        let key = self.key_of(run)?;
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE runbook = ?1 \
                     AND dedup_key = ?2 AND (first_run_id = ?3 OR last_run_id = ?3 \
                     OR (opened_at <= ?4 AND (resolved_at IS NULL OR resolved_at >= ?4))) \
                     ORDER BY id DESC LIMIT 1"
                ),
                params![run.runbook, key, run.id, run.started_at],
                incident_row,
            )
            .optional()?)
    }

    /// Every run of an incident, oldest first: of its runbook and key, from its first run
    /// to its resolution.
    fn incident_runs(&self, inc: &Incident) -> Result<Vec<RunSummary>, ReadError> {
        let first_start: Option<String> = match &inc.first_run_id {
            Some(id) => self
                .conn
                .query_row("SELECT started_at FROM runs WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?,
            None => None,
        };
        let from = first_start.unwrap_or_else(|| inc.opened_at.clone());
        let key = if self.has_context {
            "COALESCE((SELECT c.key FROM run_context c WHERE c.run_id = r.id), r.runbook)"
        } else {
            "r.runbook"
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.runbook = ?1 AND {key} = ?2 \
             AND r.started_at >= ?3 AND (?4 IS NULL OR r.started_at <= ?4) \
             ORDER BY r.started_at, r.rowid"
        );
        let mut runs: Vec<RunSummary> = self
            .conn
            .prepare(&sql)?
            .query_map(
                params![inc.runbook, inc.dedup_key, from, inc.resolved_at],
                run_summary,
            )?
            .collect::<Result<_, _>>()?;
        // The runs the incident names are its runs whatever their times say.
        for id in [&inc.first_run_id, &inc.last_run_id].into_iter().flatten() {
            if !runs.iter().any(|r| &r.id == id) {
                if let Ok(r) = self.find_run(id) {
                    runs.push(r);
                }
            }
        }
        runs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        Ok(runs)
    }

    fn levels(&self, incident: i64) -> Result<Vec<LevelFired>, ReadError> {
        let rows = self
            .conn
            .prepare(
                "SELECT level, level_id, level_name, due_at, state, claimed_at, fired_at, result \
                 FROM escalations WHERE incident_id = ?1 ORDER BY level, id",
            )?
            .query_map([incident], |r| {
                let result: Option<String> = r.get(7)?;
                let recheck_run_id = result
                    .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                    .and_then(|v| v.get("recheck_run_id")?.as_str().map(str::to_owned));
                Ok(LevelFired {
                    level: r.get(0)?,
                    level_id: r.get(1)?,
                    level_name: r.get(2)?,
                    due_at: r.get(3)?,
                    state: r.get(4)?,
                    claimed_at: r.get(5)?,
                    fired_at: r.get(6)?,
                    recheck_run_id,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn notifications(&self, incident: i64) -> Result<Vec<Notification>, ReadError> {
        let rows = self
            .conn
            .prepare(
                "SELECT n.channel, n.target, n.sent_at, n.status, n.detail, n.run_id, e.level \
                 FROM notifications n LEFT JOIN escalations e ON e.id = n.escalation_id \
                 WHERE n.incident_id = ?1 ORDER BY n.sent_at, n.id",
            )?
            .query_map([incident], |r| {
                Ok(Notification {
                    channel: r.get(0)?,
                    target: r.get(1)?,
                    sent_at: r.get(2)?,
                    status: r.get(3)?,
                    detail: r.get(4)?,
                    run_id: r.get(5)?,
                    level: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn with_incident(
        &self,
        runs: Vec<RecordedRun>,
        incident: Option<Incident>,
    ) -> Result<Recorded, ReadError> {
        let (levels, notifications) = match &incident {
            Some(inc) => (self.levels(inc.id)?, self.notifications(inc.id)?),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Recorded {
            runs,
            incident,
            levels,
            notifications,
            until: None,
        })
    }
}

impl Recorded {
    /// One run (an id or a unique prefix) and the incident it opened, updated or resolved.
    ///
    /// # Errors
    /// No such run, an ambiguous prefix, or a database that cannot be read.
    pub fn run(db: &Path, run: &str) -> Result<Recorded, ReadError> {
        let db = Db::open(db)?;
        let summary = db.find_run(run)?;
        let incident = db.incident_of(&summary)?;
        let until = match &incident {
            Some(inc) => db
                .incident_runs(inc)?
                .into_iter()
                .find(|r| r.id != summary.id && r.started_at > summary.started_at)
                .map(|r| r.started_at),
            None => None,
        };
        let run = db.load_run(summary)?;
        let mut rec = db.with_incident(vec![run], incident)?;
        rec.until = until;
        Ok(rec)
    }

    /// Incident `id` and every run of it, oldest first.
    ///
    /// # Errors
    /// No such incident, or a database that cannot be read.
    pub fn incident(db: &Path, id: i64) -> Result<Recorded, ReadError> {
        let db = Db::open(db)?;
        let inc = db.incident(id)?.ok_or(ReadError::NoIncident(id))?;
        let runs = db
            .incident_runs(&inc)?
            .into_iter()
            .map(|r| db.load_run(r))
            .collect::<Result<Vec<_>, _>>()?;
        db.with_incident(runs, Some(inc))
    }
}

impl Recorded {
    /// Whether an event of the incident at `t` belongs to this record: from the first run's
    /// start, and before the next run's start for a run of an incident that had more.
    #[must_use]
    pub fn in_window(&self, t: DateTime<Utc>) -> bool {
        let parse = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        let from = self.runs.first().and_then(|r| parse(&r.summary.started_at));
        let until = self.until.as_deref().and_then(parse);
        from.is_none_or(|f| t >= f) && until.is_none_or(|u| t < u)
    }
}
