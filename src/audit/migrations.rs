//! The schema as ordered migrations. `PRAGMA user_version` counts the migrations applied; a
//! migration is never edited once released, a change is a new entry at the end.

use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` (0-based) takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, steps, the hash chain, limits, locks, and empty tables for the server.
    r"
    CREATE TABLE runs (
        id             TEXT PRIMARY KEY,
        runbook        TEXT NOT NULL,
        runbook_sha256 TEXT NOT NULL,
        trigger        TEXT NOT NULL,
        params         TEXT NOT NULL,          -- JSON, secrets redacted
        host           TEXT NOT NULL,
        user           TEXT NOT NULL,
        mode           TEXT NOT NULL,
        pid            INTEGER NOT NULL,       -- the process running it
        pid_start      INTEGER,                -- its start time (/proc/PID/stat field 22)
        started_at     TEXT NOT NULL,          -- RFC 3339 UTC
        finished_at    TEXT,
        outcome        TEXT,                   -- healthy, remediated, problem_remains, fault, interrupted
        exit_code      INTEGER
    ) STRICT;
    CREATE INDEX runs_by_runbook ON runs (runbook, started_at);

    CREATE TABLE steps (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT NOT NULL REFERENCES runs (id),
        seq         INTEGER NOT NULL,          -- order within the run, from 1
        kind        TEXT NOT NULL,
        step_id     TEXT NOT NULL,
        state       TEXT NOT NULL,             -- intent (action announced, no result yet) | done
        status      TEXT,
        inputs      TEXT NOT NULL,             -- JSON
        result      TEXT,                      -- JSON
        decided_by  TEXT,
        guidance    TEXT,
        started_at  TEXT NOT NULL,
        duration_ms INTEGER,
        UNIQUE (run_id, seq)
    ) STRICT;

    CREATE TABLE audit_chain (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl       TEXT NOT NULL,               -- runs | steps
        row_id    TEXT NOT NULL,
        op        TEXT NOT NULL,               -- insert | update
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_chain_by_row ON audit_chain (tbl, row_id);

    CREATE TABLE action_limits (
        key     TEXT NOT NULL,
        used_at INTEGER NOT NULL               -- unix milliseconds
    ) STRICT;
    CREATE INDEX action_limits_by_key ON action_limits (key, used_at);

    CREATE TABLE run_locks (
        runbook   TEXT PRIMARY KEY,
        run_id    TEXT NOT NULL,
        pid       INTEGER NOT NULL,
        pid_start INTEGER,
        taken_at  TEXT NOT NULL
    ) STRICT;

    CREATE TABLE alerts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        source      TEXT NOT NULL,
        dedup_key   TEXT NOT NULL UNIQUE,
        runbook     TEXT,
        payload     TEXT NOT NULL,             -- JSON, secrets redacted
        run_id      TEXT
    ) STRICT;

    CREATE TABLE incidents (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        runbook          TEXT NOT NULL,
        dedup_key        TEXT,
        status           TEXT NOT NULL,        -- open | acked | resolved
        opened_at        TEXT NOT NULL,
        escalation_level INTEGER NOT NULL DEFAULT 0,
        next_due_at      TEXT,
        acked_by         TEXT,
        acked_at         TEXT,
        resolved_at      TEXT,
        last_run_id      TEXT
    ) STRICT;

    CREATE TABLE notifications (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER,
        run_id      TEXT,
        channel     TEXT NOT NULL,
        target      TEXT NOT NULL,
        sent_at     TEXT NOT NULL,
        status      TEXT NOT NULL,
        detail      TEXT
    ) STRICT;

    CREATE TABLE tail_positions (
        path       TEXT PRIMARY KEY,
        inode      INTEGER,
        byte_offset INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    ",
    // 2: temporary changes (`revert_after`) waiting to be undone by `tick` or `serve`.
    r"
    CREATE TABLE pending_reverts (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id            TEXT NOT NULL REFERENCES runs (id),  -- the run that made the change
        runbook           TEXT NOT NULL,
        runbook_file      TEXT NOT NULL,
        runbook_sha256    TEXT NOT NULL,
        action_id         TEXT NOT NULL,       -- the action that made the change
        rollback          TEXT NOT NULL,       -- JSON array of the action ids that undo it
        params            TEXT NOT NULL,       -- JSON, secrets redacted (re-resolved when due)
        due_at            TEXT NOT NULL,       -- RFC 3339 UTC with milliseconds: text order is time order
        state             TEXT NOT NULL,       -- pending | running | done | failed | cancelled
        created_at        TEXT NOT NULL,
        claimed_pid       INTEGER,             -- the tick performing it (state running)
        claimed_pid_start INTEGER,
        revert_run_id     TEXT,                -- the run that performed it
        done_at           TEXT,
        result            TEXT                 -- JSON
    ) STRICT;
    CREATE INDEX pending_reverts_due ON pending_reverts (state, due_at);
    ",
    // 3: read positions of `incremental` probes, one per reader (runbook/check) and path; a
    // file is known by device + inode + a checksum of its first bytes. The table of migration
    // 1 was never written.
    r"
    DROP TABLE tail_positions;
    CREATE TABLE tail_positions (
        reader      TEXT NOT NULL,     -- runbook/check, or `probe` for `runbook probe`
        path        TEXT NOT NULL,
        dev         INTEGER NOT NULL,
        inode       INTEGER NOT NULL,
        fp_len      INTEGER NOT NULL,  -- leading bytes the fingerprint covers (<= 4096)
        fingerprint TEXT NOT NULL,     -- SHA-256 hex of those bytes
        byte_offset INTEGER NOT NULL,  -- after the last complete line read
        size        INTEGER NOT NULL,  -- the file's size when read
        line        INTEGER NOT NULL,  -- complete lines before byte_offset
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (reader, path)
    ) STRICT;
    ",
    // 4: escalation timers (`crate::escalation`). The `incidents` table of migration 1 was
    // never written: recreated with the severity's deadlines and the ladder it climbs. One
    // `escalations` row per level reached, UNIQUE per incident and level, so no level fires
    // twice whatever the number of processes. Both tables are hash-chained.
    r"
    DROP TABLE incidents;
    CREATE TABLE incidents (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        runbook            TEXT NOT NULL,
        dedup_key          TEXT NOT NULL,      -- the runbook name (CLI), an alert fingerprint
        severity           TEXT NOT NULL,
        ladder             TEXT,               -- the ladder's name in policy.yaml
        levels             TEXT NOT NULL,      -- JSON [{id, name, after_ms, notify}], fixed at open
        status             TEXT NOT NULL,      -- open | acked | resolved
        opened_at          TEXT NOT NULL,      -- RFC 3339 UTC with milliseconds: text order is time order
        escalation_level   INTEGER NOT NULL DEFAULT 0,  -- levels reached (1 = the first)
        next_due_at        TEXT,               -- when the next level fires; NULL: none left, acked, resolved
        response_due_at    TEXT NOT NULL,
        resolution_due_at  TEXT NOT NULL,
        after_action_unresolved_ms INTEGER,    -- the runbook's `escalation.after_action_unresolved`
        recheck_due_at     TEXT,               -- last run + that: when `serve` re-runs the checks
        acked_by           TEXT,
        acked_at           TEXT,
        resolved_at        TEXT,
        first_run_id       TEXT,
        last_run_id        TEXT,
        updated_at         TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX incidents_one_open ON incidents (runbook, dedup_key)
        WHERE status IN ('open', 'acked');
    CREATE INDEX incidents_due ON incidents (status, next_due_at);

    CREATE TABLE escalations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        level       INTEGER NOT NULL,          -- 1-based position in the ladder
        level_id    TEXT NOT NULL,             -- L2
        level_name  TEXT NOT NULL,
        due_at      TEXT NOT NULL,
        state       TEXT NOT NULL,             -- firing (claimed) | fired | skipped (passed over)
        claimed_at  TEXT NOT NULL,
        claimed_pid INTEGER,
        fired_at    TEXT,
        result      TEXT,                      -- JSON: each channel and how it answered
        UNIQUE (incident_id, level)
    ) STRICT;

    ALTER TABLE notifications ADD COLUMN escalation_id INTEGER;
    ",
    // 5: what `serve` keeps between restarts: the last cron slot run per scheduled runbook (a
    // slot missed while down runs once at start), approvals of single actions of a run (with
    // an expiry), and the alert and key a server run was for (so an approved re-run is for the
    // same alert and incident).
    r"
    CREATE TABLE schedule_slots (
        runbook    TEXT PRIMARY KEY,
        slot       TEXT NOT NULL,              -- RFC 3339 UTC with milliseconds: the slot claimed last
        claimed_at TEXT NOT NULL
    ) STRICT;

    CREATE TABLE approvals (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id       TEXT NOT NULL REFERENCES runs (id),  -- the run that ended needs_approval
        action_id    TEXT NOT NULL,
        approved_by  TEXT NOT NULL,
        approved_at  TEXT NOT NULL,
        expires_at   TEXT NOT NULL,            -- RFC 3339 UTC with milliseconds
        state        TEXT NOT NULL,            -- pending | used | expired
        used_at      TEXT,
        rerun_id     TEXT                      -- the run that performed it
    ) STRICT;
    CREATE INDEX approvals_pending ON approvals (state, expires_at);

    CREATE TABLE run_context (
        run_id  TEXT PRIMARY KEY REFERENCES runs (id),
        key     TEXT NOT NULL,                 -- the alert fingerprint, `schedule`, ...
        alert   TEXT                           -- JSON: the `alert` context of the run
    ) STRICT;
    ",
    // 6: deliveries know their group, and a dedup key may repeat: a delivery is a duplicate of
    // its group's last one (a retry), while the same bytes after another delivery of the group
    // (an alert that fired, resolved and fired again, merged by Alertmanager with its first
    // start) are a new episode.
    r"
    CREATE TABLE alerts_v6 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        source      TEXT NOT NULL,
        group_key   TEXT,
        dedup_key   TEXT NOT NULL,
        runbook     TEXT,
        payload     TEXT NOT NULL,             -- JSON as received
        run_id      TEXT
    ) STRICT;
    INSERT INTO alerts_v6 (id, received_at, source, dedup_key, runbook, payload, run_id)
        SELECT id, received_at, source, dedup_key, runbook, payload, run_id FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_v6 RENAME TO alerts;
    CREATE INDEX alerts_dedup ON alerts (dedup_key);
    CREATE INDEX alerts_group ON alerts (source, group_key, id);
    ",
    // 7: a delivery's `run_id` is set once its run ends, and a restart queues again the
    // deliveries with runbooks but no run. Deliveries recorded before this version are taken
    // as done (`''`), so an upgrade re-runs nothing.
    r"
    UPDATE alerts SET run_id = '' WHERE run_id IS NULL;
    CREATE INDEX alerts_pending ON alerts (id) WHERE runbook IS NOT NULL AND run_id IS NULL;
    ",
    // 8: approvals join the hash chain (who approved which action is evidence); the rows
    // already there are chained as they are (`adopt`) by `migrate` right after this version.
    r"
    SELECT 1;
    ",
    // 9: the claimed schedule slots (they decide whether a scheduled runbook runs) and the
    // context of server runs (an approved re-run is for its key and alert) join the hash
    // chain; the rows already there are adopted like the approvals of version 8.
    r"
    SELECT 1;
    ",
];

/// The versions from which tables are chained: the rows a file already has then are chained
/// as they are (`adopt`) right after that version's migration, in the same transaction.
const ADOPT: &[(i64, &[&str])] = &[(8, &["approvals"]), (9, &["schedule_slots", "run_context"])];

/// The schema version this build writes.
#[must_use]
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// `SQLite` refused.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A newer `runbook` wrote this file.
    #[error("schema version {found} is newer than this build knows ({known}); upgrade `runbook`")]
    TooNew {
        /// On disk.
        found: i64,
        /// Known here.
        known: i64,
    },
}

/// Apply the migrations not yet applied, in order, in one `IMMEDIATE` transaction so two
/// processes opening a new file at once do not both migrate.
///
/// # Errors
/// When `SQLite` fails or the file is from a newer build.
pub fn migrate(conn: &mut Connection) -> Result<i64, MigrateError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == latest() {
        return Ok(current);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > latest() {
        return Err(MigrateError::TooNew {
            found: current,
            known: latest(),
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        for (_, tables) in ADOPT.iter().filter(|(v, _)| *v == version) {
            for table in *tables {
                for key in super::chain::keys(&tx, table)? {
                    super::chain::append(&tx, table, &key, "adopt")?;
                }
            }
        }
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(latest())
}
