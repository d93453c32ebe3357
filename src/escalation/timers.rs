//! The incident state machine over the audit file: open or update when a run leaves a
//! problem, resolve when one ends well, fire due levels (claim, send, settle), acknowledge,
//! list. Every write is one `IMMEDIATE` transaction (module doc of [`crate::escalation`]).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use crate::actions::NotifyTarget;
use crate::audit::{AuditError, AuditStore, WriteTx};
use crate::escalation::incident::{Incident, IncidentStatus, LevelSpec, Spec, fmt, parse, plus};
use crate::escalation::notifier::{Notifier, target_label};
use crate::exec::{Outcome, RunResult};
use crate::runbook::policy::Policy;

/// The `incidents` columns [`incident`] reads, in order.
pub(crate) const COLUMNS: &str = "id, runbook, dedup_key, severity, ladder, levels, status, opened_at, \
                       escalation_level, next_due_at, response_due_at, resolution_due_at, \
                       after_action_unresolved_ms, recheck_due_at, acked_by, acked_at, \
                       resolved_at, first_run_id, last_run_id, updated_at";

/// What a run's end did to its incident.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", content = "incident", rename_all = "snake_case")]
pub enum Change {
    /// A new incident (its first level is fired by [`after_run`] when due at once).
    Opened(Incident),
    /// The open (or acknowledged) incident of the same runbook and key, now naming this run.
    Updated(Incident),
    /// The open incident, resolved by a run that ended well.
    Resolved(Incident),
    /// Nothing: a healthy run with no incident, or an engine fault.
    Unchanged,
}

/// What `ack` found.
#[derive(Debug, Clone)]
pub enum AckOutcome {
    /// Acknowledged now: no further level fires.
    Acked(Incident),
    /// Someone acknowledged it before (unchanged).
    AlreadyAcked(Incident),
    /// It is over already (unchanged).
    Resolved(Incident),
    /// No incident has this id.
    NotFound,
}

/// One channel of a fired level.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    /// The policy's channel name.
    pub channel: String,
    /// Its kind and origin (`webhook http://127.0.0.1:9097`), never a webhook's path.
    pub target: String,
    /// Delivered (2xx, or shown on stdout).
    pub ok: bool,
    /// How it went.
    pub detail: String,
}

/// One level fired.
#[derive(Debug, Clone, Serialize)]
pub struct Fired {
    /// The incident.
    pub incident_id: i64,
    /// Its runbook.
    pub runbook: String,
    /// Its severity.
    pub severity: String,
    /// The level's position, from 1.
    pub level: u32,
    /// `L2`.
    pub level_id: String,
    /// `Senior Engineer`.
    pub level_name: String,
    /// When it was due.
    pub due_at: String,
    /// When it fired (the caller's clock).
    pub fired_at: String,
    /// Levels passed over because a later one was due as well (recorded `skipped`).
    pub skipped: Vec<String>,
    /// What was sent.
    pub message: String,
    /// Each channel and how it answered.
    pub sent: Vec<Sent>,
    /// When the next level is due, if one is left.
    pub next_due_at: Option<String>,
    /// The recheck run that found the symptom persisting after a remediation, when this level
    /// was fired by it (`after_action_unresolved`) rather than by its time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck_run_id: Option<String>,
    /// When this is a level sent again: the claim of the process that stopped before
    /// recording its delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resent_after_crash: Option<Resent>,
}

/// The claim a level was sent again after: the process that took it stopped (killed, host
/// rebooted) before recording its delivery, so whether its page went out is unknown, and a
/// duplicate page is better than a lost one.
#[derive(Debug, Clone, Serialize)]
pub struct Resent {
    /// The process that claimed the level.
    pub claimed_pid: Option<i64>,
    /// When it did.
    pub claimed_at: String,
}

/// What [`after_run`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RunEscalation {
    /// The incident's change.
    pub change: Change,
    /// Levels fired now (the first level of a new incident).
    pub fired: Vec<Fired>,
}

/// An `incidents` row selected as [`COLUMNS`] as an [`Incident`].
pub(crate) fn incident(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let levels: String = r.get(5)?;
    let status: String = r.get(6)?;
    Ok(Incident {
        id: r.get(0)?,
        runbook: r.get(1)?,
        dedup_key: r.get(2)?,
        severity: r.get(3)?,
        ladder: r.get(4)?,
        levels: serde_json::from_str(&levels).unwrap_or_default(),
        status: IncidentStatus::from_name(&status),
        opened_at: r.get(7)?,
        level: u32::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        next_due_at: r.get(9)?,
        response_due_at: r.get(10)?,
        resolution_due_at: r.get(11)?,
        after_action_unresolved_ms: r.get(12)?,
        recheck_due_at: r.get(13)?,
        acked_by: r.get(14)?,
        acked_at: r.get(15)?,
        resolved_at: r.get(16)?,
        first_run_id: r.get(17)?,
        last_run_id: r.get(18)?,
        updated_at: r.get(19)?,
    })
}

fn load(conn: &Connection, id: i64) -> rusqlite::Result<Incident> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1"),
        [id],
        incident,
    )
}

fn find(conn: &Connection, id: i64) -> rusqlite::Result<Option<Incident>> {
    load(conn, id).optional()
}

/// The open or acknowledged incident of a runbook and key (at most one: a partial UNIQUE index).
fn find_open(conn: &Connection, runbook: &str, key: &str) -> rusqlite::Result<Option<Incident>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM incidents WHERE runbook = ?1 AND dedup_key = ?2 \
             AND status IN ('open', 'acked')"
        ),
        params![runbook, key],
        incident,
    )
    .optional()
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Record the end of a run of `spec.runbook` for `key` (the runbook name for CLI runs, the
/// alert fingerprint for alerts): `problem_remains` opens an incident, or updates the open one
/// with `run_id`; `healthy` or `remediated` resolves the open one; a fault changes nothing.
/// A new incident's first level is not fired here: see [`after_run`] and [`fire_incident`].
///
/// When the runbook has `after_action_unresolved` and the run performed a remediation (one of
/// `spec.mutating_actions` ended `ok` as a remedy step of `run_id`), the recheck is due that
/// long from `now`; a run that changed nothing leaves the recheck as it was.
///
/// # Errors
/// When the audit store fails.
pub fn open_or_update(
    store: &AuditStore,
    spec: &Spec,
    key: &str,
    run_id: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<Change, AuditError> {
    match outcome {
        Outcome::ProblemRemains => open(store, spec, key, run_id, now),
        Outcome::Healthy | Outcome::Remediated => {
            Ok(resolve_with(store, &spec.runbook, key, Some(run_id), now)?
                .map_or(Change::Unchanged, Change::Resolved))
        }
        Outcome::Fault => Ok(Change::Unchanged),
    }
}

fn open(
    store: &AuditStore,
    spec: &Spec,
    key: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> Result<Change, AuditError> {
    store.write(true, |tx| open_in(tx, spec, key, run_id, now))
}

/// [`open`] in the caller's transaction.
pub(super) fn open_in(
    tx: &WriteTx<'_>,
    spec: &Spec,
    key: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Change> {
    let now_s = fmt(now);
    let recheck = match spec.after_action_unresolved {
        Some(d) if remediated(tx, run_id, &spec.mutating_actions)? => {
            Some(fmt(plus(now, millis(d))))
        }
        _ => None,
    };
    if let Some(inc) = find_open(tx, &spec.runbook, key)? {
        tx.execute(
            "UPDATE incidents SET last_run_id = ?2, \
             recheck_due_at = COALESCE(?3, recheck_due_at), updated_at = ?4 WHERE id = ?1",
            params![inc.id, run_id, recheck, now_s],
        )?;
        tx.chain("incidents", &inc.id.to_string(), "update")?;
        return Ok(Change::Updated(load(tx, inc.id)?));
    }
    let next_due = spec.levels.first().map(|l| fmt(plus(now, l.after_ms)));
    tx.execute(
        "INSERT INTO incidents (runbook, dedup_key, severity, ladder, levels, status, \
         opened_at, escalation_level, next_due_at, response_due_at, resolution_due_at, \
         after_action_unresolved_ms, recheck_due_at, first_run_id, last_run_id, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, 0, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?6)",
        params![
            spec.runbook,
            key,
            spec.severity,
            spec.ladder,
            serde_json::to_string(&spec.levels).unwrap_or_else(|_| "[]".into()),
            now_s,
            next_due,
            fmt(plus(now, millis(spec.response))),
            fmt(plus(now, millis(spec.resolution))),
            spec.after_action_unresolved
                .map(|d| i64::try_from(millis(d)).unwrap_or(i64::MAX)),
            recheck,
            run_id,
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.chain("incidents", &id.to_string(), "insert")?;
    Ok(Change::Opened(load(tx, id)?))
}

/// Whether run `run_id` performed a remediation: one of `mutating` (the runbook's mutating
/// action ids) ran to `ok` as a remedy step. A `notify`, an action held back (dry run,
/// approval, limit) or one that failed changed nothing.
fn remediated(conn: &Connection, run_id: &str, mutating: &[String]) -> rusqlite::Result<bool> {
    if mutating.is_empty() {
        return Ok(false);
    }
    let done: Vec<String> = conn
        .prepare(
            "SELECT DISTINCT step_id FROM steps WHERE run_id = ?1 AND kind = 'action' \
             AND state = 'done' AND status = 'ok'",
        )?
        .query_map([run_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(done.iter().any(|id| mutating.contains(id)))
}

/// Resolve the open (or acknowledged) incident of a runbook and key: its timers stop. `None`
/// when there is none. `serve` calls this for a `resolved` alert.
///
/// # Errors
/// When the audit store fails.
pub fn resolve(
    store: &AuditStore,
    runbook: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, AuditError> {
    resolve_with(store, runbook, key, None, now)
}

fn resolve_with(
    store: &AuditStore,
    runbook: &str,
    key: &str,
    run_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, AuditError> {
    let now_s = fmt(now);
    store.write(true, |tx| {
        let Some(inc) = find_open(tx, runbook, key)? else {
            return Ok(None);
        };
        close(tx, inc.id, run_id, &now_s).map(Some)
    })
}

/// Mark incident `id` resolved (its timers stop), naming `run_id` when a run resolved it.
fn close(
    tx: &WriteTx<'_>,
    id: i64,
    run_id: Option<&str>,
    now_s: &str,
) -> rusqlite::Result<Incident> {
    tx.execute(
        "UPDATE incidents SET status = 'resolved', resolved_at = ?2, next_due_at = NULL, \
         recheck_due_at = NULL, last_run_id = COALESCE(?3, last_run_id), updated_at = ?2 \
         WHERE id = ?1",
        params![id, now_s, run_id],
    )?;
    tx.chain("incidents", &id.to_string(), "update")?;
    load(tx, id)
}

/// Acknowledge incident `id` as `who`: it stops climbing and stays listed until resolved.
///
/// # Errors
/// When the audit store fails.
pub fn ack(
    store: &AuditStore,
    id: i64,
    who: &str,
    now: DateTime<Utc>,
) -> Result<AckOutcome, AuditError> {
    let now_s = fmt(now);
    store.write(true, |tx| {
        let Some(inc) = find(tx, id)? else {
            return Ok(AckOutcome::NotFound);
        };
        match inc.status {
            IncidentStatus::Acked => Ok(AckOutcome::AlreadyAcked(inc)),
            IncidentStatus::Resolved => Ok(AckOutcome::Resolved(inc)),
            IncidentStatus::Open => {
                tx.execute(
                    "UPDATE incidents SET status = 'acked', acked_by = ?2, acked_at = ?3, \
                     next_due_at = NULL, updated_at = ?3 WHERE id = ?1 AND status = 'open'",
                    params![id, who, now_s],
                )?;
                tx.chain("incidents", &id.to_string(), "update")?;
                Ok(AckOutcome::Acked(load(tx, id)?))
            }
        }
    })
}

/// Open incidents with a level due by `now`, soonest first.
///
/// # Errors
/// When the audit store fails.
pub fn due(store: &AuditStore, now: DateTime<Utc>) -> Result<Vec<Incident>, AuditError> {
    let now_s = fmt(now);
    store.read(|c| {
        c.prepare(&format!(
            "SELECT {COLUMNS} FROM incidents WHERE status = 'open' \
             AND next_due_at IS NOT NULL AND next_due_at <= ?1 ORDER BY next_due_at, id"
        ))?
        .query_map([now_s], incident)?
        .collect()
    })
}

/// Open and acknowledged incidents, oldest first.
///
/// # Errors
/// When the audit store fails.
pub fn list(store: &AuditStore) -> Result<Vec<Incident>, AuditError> {
    store.read(|c| {
        c.prepare(&format!(
            "SELECT {COLUMNS} FROM incidents WHERE status IN ('open', 'acked') ORDER BY id"
        ))?
        .query_map([], incident)?
        .collect()
    })
}

/// Fire every level due by `now`, each exactly once across processes.
///
/// # Errors
/// When the audit store fails (levels fired before stay fired).
pub async fn fire_due(
    store: &AuditStore,
    policy: &Policy,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
) -> Result<Vec<Fired>, AuditError> {
    let mut fired = Vec::new();
    // First the levels whose claim outlived its process: they were due before these.
    for claim in reclaim_orphans(store, now)? {
        fired.push(send(store, policy, claim, now, notifier).await?);
    }
    for inc in due(store, now)? {
        if let Some(f) = fire_incident(store, policy, inc.id, now, notifier).await? {
            fired.push(f);
        }
    }
    Ok(fired)
}

/// A level left `firing`: its row, and the claim note its holder recorded ([`claim_note`]).
struct Held {
    escalation_id: i64,
    incident_id: i64,
    level: i64,
    due_at: String,
    claimed_at: String,
    claimed_pid: Option<i64>,
    note: Option<String>,
}

const HELD: &str = "SELECT id, incident_id, level, due_at, claimed_at, claimed_pid, result \
                    FROM escalations WHERE state = 'firing'";

fn held(r: &rusqlite::Row<'_>) -> rusqlite::Result<Held> {
    Ok(Held {
        escalation_id: r.get(0)?,
        incident_id: r.get(1)?,
        level: r.get(2)?,
        due_at: r.get(3)?,
        claimed_at: r.get(4)?,
        claimed_pid: r.get(5)?,
        note: r.get(6)?,
    })
}

impl Held {
    fn note(&self, key: &str) -> Option<serde_json::Value> {
        let note: serde_json::Value = serde_json::from_str(self.note.as_deref()?).ok()?;
        note.get(key).cloned()
    }

    /// Whether the process that claimed the level is gone (a claim with no pid, from before
    /// pids were recorded, has nobody to wait for).
    fn orphaned(&self) -> bool {
        let start = self.note("claimed_pid_start").and_then(|v| v.as_i64());
        !self
            .claimed_pid
            .is_some_and(|pid| AuditStore::claimant_alive(pid, start))
    }
}

fn orphans(conn: &Connection) -> rusqlite::Result<Vec<Held>> {
    Ok(conn
        .prepare(&format!("{HELD} ORDER BY id"))?
        .query_map([], held)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(Held::orphaned)
        .collect())
}

/// How many levels are left `firing` by a process that is gone (killed between claim and
/// settle). [`fire_due`] sends each again.
///
/// # Errors
/// When the audit store fails.
pub fn orphaned_claims(store: &AuditStore) -> Result<usize, AuditError> {
    store.read(orphans).map(|o| o.len())
}

/// Take over the levels left `firing` by a process that is gone, each in its own durable
/// `IMMEDIATE` transaction (of several processes, one takes a level over: the row must still
/// hold the claim seen, and the new claim names a live process). One of an incident that was
/// acknowledged or resolved since is recorded `skipped` with the reason, not sent.
fn reclaim_orphans(store: &AuditStore, now: DateTime<Utc>) -> Result<Vec<Claim>, AuditError> {
    let mut claims = Vec::new();
    for h in store.read(orphans)? {
        if let Some(c) = store.write(true, |tx| reclaim_in(tx, &h, now))? {
            claims.push(c);
        }
    }
    Ok(claims)
}

fn reclaim_in(
    tx: &WriteTx<'_>,
    seen: &Held,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Claim>> {
    let id = seen.escalation_id;
    let Some(h) = tx
        .query_row(&format!("{HELD} AND id = ?1"), [id], held)
        .optional()?
    else {
        return Ok(None);
    };
    if (&h.claimed_pid, &h.claimed_at, &h.note) != (&seen.claimed_pid, &seen.claimed_at, &seen.note)
    {
        // Settled or taken over meanwhile.
        return Ok(None);
    }
    let inc = load(tx, h.incident_id)?;
    let previous = Resent {
        claimed_pid: h.claimed_pid,
        claimed_at: h.claimed_at.clone(),
    };
    let level = usize::try_from(h.level - 1)
        .ok()
        .and_then(|i| inc.levels.get(i))
        .cloned();
    let not_sent = match (inc.status, &level) {
        (IncidentStatus::Resolved, _) => Some("the incident was resolved since"),
        (IncidentStatus::Acked, _) => Some("the incident was acknowledged since"),
        (IncidentStatus::Open, None) => Some("the level is not on the incident's ladder"),
        (IncidentStatus::Open, Some(_)) => None,
    };
    let recheck_run_id = h
        .note("recheck_run_id")
        .and_then(|v| v.as_str().map(str::to_owned));
    if let Some(why) = not_sent {
        let result = json!({ "not_sent": why, "claim_lost": previous });
        tx.execute(
            "UPDATE escalations SET state = 'skipped', result = ?2 WHERE id = ?1 \
             AND state = 'firing'",
            params![id, result.to_string()],
        )?;
        tx.chain("escalations", &id.to_string(), "update")?;
        return Ok(None);
    }
    let Some(level) = level else {
        return Ok(None);
    };
    let (pid, pid_start) = AuditStore::claimant();
    let mut note: serde_json::Value =
        serde_json::from_str(&claim_note(pid_start, recheck_run_id.as_deref())).unwrap_or_default();
    note["resent_after_crash"] = json!(previous);
    tx.execute(
        "UPDATE escalations SET claimed_at = ?2, claimed_pid = ?3, result = ?4 WHERE id = ?1 \
         AND state = 'firing'",
        params![id, fmt(now), pid, note.to_string()],
    )?;
    tx.chain("escalations", &id.to_string(), "update")?;
    Ok(Some(Claim {
        incident: inc,
        escalation_id: id,
        level,
        position: u32::try_from(h.level).unwrap_or(u32::MAX),
        due_at: h.due_at,
        skipped: Vec::new(),
        recheck_run_id,
        resent: Some(previous),
    }))
}

/// A level claimed for sending.
pub(super) struct Claim {
    incident: Incident,
    escalation_id: i64,
    level: LevelSpec,
    position: u32,
    due_at: String,
    skipped: Vec<String>,
    /// The recheck run that fired this level, if a recheck did.
    recheck_run_id: Option<String>,
    /// Set when the level is sent again after a claim left by a process that is gone.
    resent: Option<Resent>,
}

/// Fire the level of incident `id` due by `now`, if any and if no other process claimed it:
/// claim, send to each channel, settle. `None` when nothing was due or another process took it.
///
/// # Errors
/// When the audit store fails.
pub async fn fire_incident(
    store: &AuditStore,
    policy: &Policy,
    id: i64,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
) -> Result<Option<Fired>, AuditError> {
    let Some(claim) = claim(store, id, now)? else {
        return Ok(None);
    };
    send(store, policy, claim, now, notifier).await.map(Some)
}

/// Steps 2 and 3 of firing a claimed level: send to each channel, settle.
pub(super) async fn send(
    store: &AuditStore,
    policy: &Policy,
    claim: Claim,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
) -> Result<Fired, AuditError> {
    let message = message(&claim);
    let targets = NotifyTarget::from_policy(Some(policy));
    let mut sent = Vec::new();
    for channel in &claim.level.notify {
        let s = match targets.get(channel) {
            None => Sent {
                channel: channel.clone(),
                target: "(none)".into(),
                ok: false,
                detail: format!("no channel `{channel}` in policy.yaml"),
            },
            Some(t) => {
                let d = notifier.send(t, &claim.incident.runbook, &message).await;
                Sent {
                    channel: channel.clone(),
                    target: target_label(t),
                    ok: d.ok,
                    detail: d.summary,
                }
            }
        };
        sent.push(s);
    }
    let fired_at = fmt(now);
    settle(store, &claim, &sent, &fired_at)?;
    Ok(Fired {
        incident_id: claim.incident.id,
        runbook: claim.incident.runbook.clone(),
        severity: claim.incident.severity.clone(),
        level: claim.position,
        level_id: claim.level.id.clone(),
        level_name: claim.level.name.clone(),
        due_at: claim.due_at,
        fired_at,
        skipped: claim.skipped,
        message,
        sent,
        next_due_at: claim.incident.next_due_at,
        recheck_run_id: claim.recheck_run_id,
        resent_after_crash: claim.resent,
    })
}

fn message(c: &Claim) -> String {
    let i = &c.incident;
    let mut why = c.recheck_run_id.as_deref().map_or_else(String::new, |run| {
        format!("; the symptom persists after the remediation (recheck run {run})")
    });
    if let Some(r) = &c.resent {
        let _ = write!(
            why,
            "; sent again: the process that took this level at {} stopped before recording \
             its delivery",
            r.claimed_at
        );
    }
    format!(
        "[{}] `{}` unresolved since {}: incident #{} at {} ({}){why}; response due {}, \
         resolution due {}; acknowledge with `runbook ack {}`",
        i.severity,
        i.runbook,
        i.opened_at,
        i.id,
        c.level.id,
        c.level.name,
        i.response_due_at,
        i.resolution_due_at,
        i.id
    )
}

pub(super) fn is_constraint(e: &AuditError) -> bool {
    matches!(e, AuditError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Step 1: under the write lock, take the highest level due by `now` (the ones passed over
/// are recorded `skipped`) and move the incident past it.
fn claim(store: &AuditStore, id: i64, now: DateTime<Utc>) -> Result<Option<Claim>, AuditError> {
    let claimed = store.write(true, |tx| claim_in(tx, id, now));
    match claimed {
        // Another writer inserted the level first: it is theirs to send.
        Err(e) if is_constraint(&e) => Ok(None),
        other => other,
    }
}

/// [`claim`] in the caller's transaction.
pub(super) fn claim_in(
    tx: &WriteTx<'_>,
    id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Claim>> {
    let now_s = fmt(now);
    let (pid, pid_start) = AuditStore::claimant();
    let Some(inc) = find(tx, id)? else {
        return Ok(None);
    };
    if inc.status != IncidentStatus::Open
        || inc.next_due_at.as_deref().is_none_or(|d| parse(d) > now)
    {
        return Ok(None);
    }
    let opened = parse(&inc.opened_at);
    let from = inc.level as usize;
    let top = inc
        .levels
        .iter()
        .enumerate()
        .skip(from)
        .take_while(|(_, l)| plus(opened, l.after_ms) <= now)
        .map(|(i, _)| i)
        .last();
    let Some(top) = top else {
        return Ok(None);
    };
    let mut skipped = Vec::new();
    let mut escalation_id = 0;
    for (i, level) in inc.levels.iter().enumerate().take(top + 1).skip(from) {
        let state = if i == top { "firing" } else { "skipped" };
        let note = (i == top).then(|| claim_note(pid_start, None));
        tx.execute(
            "INSERT INTO escalations (incident_id, level, level_id, level_name, due_at, \
             state, claimed_at, claimed_pid, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                i64::try_from(i + 1).unwrap_or(i64::MAX),
                level.id,
                level.name,
                fmt(plus(opened, level.after_ms)),
                state,
                now_s,
                pid,
                note
            ],
        )?;
        escalation_id = tx.last_insert_rowid();
        tx.chain("escalations", &escalation_id.to_string(), "insert")?;
        if i != top {
            skipped.push(level.id.clone());
        }
    }
    let next_due = inc
        .levels
        .get(top + 1)
        .map(|l| fmt(plus(opened, l.after_ms)));
    let position = u32::try_from(top + 1).unwrap_or(u32::MAX);
    tx.execute(
        "UPDATE incidents SET escalation_level = ?2, next_due_at = ?3, updated_at = ?4 \
         WHERE id = ?1",
        params![id, position, next_due, now_s],
    )?;
    tx.chain("incidents", &id.to_string(), "update")?;
    let level = inc.levels[top].clone();
    Ok(Some(Claim {
        due_at: fmt(plus(opened, level.after_ms)),
        incident: load(tx, id)?,
        escalation_id,
        level,
        position,
        skipped,
        recheck_run_id: None,
        resent: None,
    }))
}

/// The `result` of a level while it is `firing`: what a process needs to take the claim over
/// when its holder is gone (the holder's start time, which tells it from a reused pid; the
/// recheck run that fired it). Settling replaces it with each channel's answer.
fn claim_note(pid_start: Option<i64>, recheck_run_id: Option<&str>) -> String {
    let mut note = json!({ "claimed_pid_start": pid_start });
    if let Some(run) = recheck_run_id {
        note["recheck_run_id"] = json!(run);
    }
    note.to_string()
}

/// Step 3: record each channel's answer and mark the level fired.
fn settle(
    store: &AuditStore,
    claim: &Claim,
    sent: &[Sent],
    fired_at: &str,
) -> Result<(), AuditError> {
    store.write(true, |tx: &WriteTx<'_>| {
        for s in sent {
            tx.execute(
                "INSERT INTO notifications (incident_id, escalation_id, run_id, channel, target, \
                 sent_at, status, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    claim.incident.id,
                    claim.escalation_id,
                    claim.incident.last_run_id,
                    s.channel,
                    s.target,
                    fired_at,
                    if s.ok { "ok" } else { "failed" },
                    s.detail
                ],
            )?;
        }
        let mut result = json!({
            "channels": sent.iter().map(|s| json!({
                "channel": s.channel, "target": s.target, "status": if s.ok { "ok" } else { "failed" },
                "detail": s.detail,
            })).collect::<Vec<_>>(),
        });
        if let Some(run) = &claim.recheck_run_id {
            result["recheck_run_id"] = json!(run);
        }
        if let Some(r) = &claim.resent {
            result["resent_after_crash"] = json!(r);
        }
        let changed = tx.execute(
            "UPDATE escalations SET state = 'fired', fired_at = ?2, result = ?3 \
             WHERE id = ?1 AND state = 'firing'",
            params![claim.escalation_id, fired_at, result.to_string()],
        )?;
        if changed > 0 {
            tx.chain("escalations", &claim.escalation_id.to_string(), "update")?;
        }
        Ok(())
    })
}

/// Where a run ends (`runbook run`, and `serve` for alert-started runs): open, update or
/// resolve the incident of `spec.runbook` and `key`, then fire what is due for it now (the
/// first level of a new incident). `key` is the runbook name for CLI runs, the alert
/// fingerprint for alerts. A run that leaves the problem opens or updates the incident and
/// claims its due level in one durable transaction, then sends.
///
/// # Errors
/// When the audit store fails.
pub async fn after_run(
    store: &AuditStore,
    policy: &Policy,
    spec: &Spec,
    key: &str,
    run: &RunResult,
    now: DateTime<Utc>,
    notifier: &dyn Notifier,
) -> Result<RunEscalation, AuditError> {
    if run.outcome == Outcome::ProblemRemains {
        // Open (or update) and claim the level due now in one durable transaction: a storm of
        // new incidents writes half the transactions, and the claim is as safe as alone.
        let opened = store.write(true, |tx| {
            let change = open_in(tx, spec, key, &run.run_id, now)?;
            let claim = match &change {
                Change::Opened(inc) | Change::Updated(inc) => claim_in(tx, inc.id, now)?,
                Change::Resolved(_) | Change::Unchanged => None,
            };
            Ok((change, claim))
        });
        match opened {
            Ok((change, claim)) => {
                let mut fired = Vec::new();
                if let Some(claim) = claim {
                    fired.push(send(store, policy, claim, now, notifier).await?);
                }
                return Ok(RunEscalation { change, fired });
            }
            // The level is in `escalations` already (another writer; nothing was written):
            // open alone below, the level is theirs to send.
            Err(e) if is_constraint(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let change = open_or_update(store, spec, key, &run.run_id, run.outcome, now)?;
    let mut fired = Vec::new();
    if let Change::Opened(inc) | Change::Updated(inc) = &change
        && let Some(f) = fire_incident(store, policy, inc.id, now, notifier).await?
    {
        fired.push(f);
    }
    Ok(RunEscalation { change, fired })
}

/// Open and acknowledged incidents whose recheck (`after_action_unresolved`) is due by `now`,
/// soonest first.
///
/// # Errors
/// When the audit store fails.
pub fn due_rechecks(store: &AuditStore, now: DateTime<Utc>) -> Result<Vec<Incident>, AuditError> {
    let now_s = fmt(now);
    store.read(|c| {
        c.prepare(&format!(
            "SELECT {COLUMNS} FROM incidents WHERE status IN ('open', 'acked') \
             AND recheck_due_at IS NOT NULL AND recheck_due_at <= ?1 ORDER BY recheck_due_at, id"
        ))?
        .query_map([now_s], incident)?
        .collect()
    })
}

/// Take the recheck of incident `id` due by `now`: under the write lock it must still be open
/// or acknowledged with `recheck_due_at <= now`, and `recheck_due_at` is cleared in the same
/// `IMMEDIATE` transaction, so of several processes exactly one gets it. Returns the incident
/// as it was (with its `recheck_due_at`); `None` when nothing was due or another took it.
pub(super) fn claim_recheck(
    store: &AuditStore,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Incident>, AuditError> {
    let now_s = fmt(now);
    store.write(true, |tx| {
        let Some(inc) = find(tx, id)? else {
            return Ok(None);
        };
        if inc.status == IncidentStatus::Resolved
            || inc.recheck_due_at.as_deref().is_none_or(|d| parse(d) > now)
        {
            return Ok(None);
        }
        tx.execute(
            "UPDATE incidents SET recheck_due_at = NULL, updated_at = ?2 WHERE id = ?1",
            params![id, now_s],
        )?;
        tx.chain("incidents", &id.to_string(), "update")?;
        Ok(Some(inc))
    })
}

/// What the end of a recheck did to its incident.
pub(super) enum RecheckEnd {
    /// The checks pass again: resolved.
    Resolved,
    /// The symptom persists: the next level is claimed, to be sent with [`send`].
    Climbed(Box<Claim>),
    /// The symptom persists and no level fires (why).
    Stays(String),
    /// Resolved meanwhile (an alert `resolved`, a good run): nothing to do.
    Closed,
}

/// Record the end of the recheck run `run_id` of `claimed` (as [`claim_recheck`] returned it):
/// `healthy` resolves the incident; otherwise it names the run and, when the incident is still
/// open at the level it had when the recheck was claimed, moves to the next level in the same
/// `IMMEDIATE` transaction (the `escalations` row `firing`, as a timed level is claimed). An
/// acknowledged incident does not climb; one at the top of its ladder has nowhere to go; one
/// that climbed by its time meanwhile is not climbed twice.
pub(super) fn end_recheck(
    store: &AuditStore,
    claimed: &Incident,
    run_id: &str,
    healthy: bool,
    now: DateTime<Utc>,
) -> Result<RecheckEnd, AuditError> {
    let now_s = fmt(now);
    let (pid, pid_start) = AuditStore::claimant();
    let due_at = claimed
        .recheck_due_at
        .clone()
        .unwrap_or_else(|| now_s.clone());
    let ended = store.write(true, |tx| {
        let Some(inc) = find(tx, claimed.id)? else {
            return Ok(RecheckEnd::Closed);
        };
        if inc.status == IncidentStatus::Resolved {
            return Ok(RecheckEnd::Closed);
        }
        if healthy {
            close(tx, inc.id, Some(run_id), &now_s)?;
            return Ok(RecheckEnd::Resolved);
        }
        let stays = |why: &str| -> rusqlite::Result<RecheckEnd> {
            tx.execute(
                "UPDATE incidents SET last_run_id = ?2, updated_at = ?3 WHERE id = ?1",
                params![inc.id, run_id, now_s],
            )?;
            tx.chain("incidents", &inc.id.to_string(), "update")?;
            Ok(RecheckEnd::Stays(why.to_owned()))
        };
        if inc.status == IncidentStatus::Acked {
            return stays("acknowledged: it climbs no further");
        }
        if inc.level != claimed.level {
            return stays("a level fired by its time meanwhile");
        }
        let from = inc.level as usize;
        let Some(level) = inc.levels.get(from).cloned() else {
            return stays("top of the ladder");
        };
        let position = u32::try_from(from + 1).unwrap_or(u32::MAX);
        tx.execute(
            "INSERT INTO escalations (incident_id, level, level_id, level_name, due_at, state, \
             claimed_at, claimed_pid, result) VALUES (?1, ?2, ?3, ?4, ?5, 'firing', ?6, ?7, ?8)",
            params![
                inc.id,
                position,
                level.id,
                level.name,
                due_at,
                now_s,
                pid,
                claim_note(pid_start, Some(run_id))
            ],
        )?;
        let escalation_id = tx.last_insert_rowid();
        tx.chain("escalations", &escalation_id.to_string(), "insert")?;
        // The level after it keeps its time on the ladder.
        let opened = parse(&inc.opened_at);
        let next_due = inc
            .levels
            .get(from + 1)
            .map(|l| fmt(plus(opened, l.after_ms)));
        tx.execute(
            "UPDATE incidents SET escalation_level = ?2, next_due_at = ?3, last_run_id = ?4, \
             updated_at = ?5 WHERE id = ?1",
            params![inc.id, position, next_due, run_id, now_s],
        )?;
        tx.chain("incidents", &inc.id.to_string(), "update")?;
        Ok(RecheckEnd::Climbed(Box::new(Claim {
            incident: load(tx, inc.id)?,
            escalation_id,
            level,
            position,
            due_at: due_at.clone(),
            skipped: Vec::new(),
            recheck_run_id: Some(run_id.to_owned()),
            resent: None,
        })))
    });
    match ended {
        // The level is in `escalations` already (another writer): it is theirs to send.
        Err(e) if is_constraint(&e) => {
            Ok(RecheckEnd::Stays("that level was claimed elsewhere".into()))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::actions::NotifyTarget;
    use crate::escalation::notifier::Delivery;

    /// Counts sends; fails the JSON webhook.
    #[derive(Default)]
    struct Fake {
        sent: AtomicUsize,
        messages: Mutex<Vec<String>>,
    }

    impl Notifier for Fake {
        fn send<'a>(
            &'a self,
            target: &'a NotifyTarget,
            _runbook: &'a str,
            message: &'a str,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Delivery> + Send + 'a>> {
            self.sent.fetch_add(1, Ordering::SeqCst);
            self.messages.lock().unwrap().push(message.to_owned());
            let ok = !matches!(target, NotifyTarget::Webhook(_));
            Box::pin(async move {
                Delivery {
                    ok,
                    summary: if ok { "sent" } else { "answered 500" }.into(),
                }
            })
        }
    }

    const POLICY: &str = "severities:
  P1: { name: High, response: 15m, resolution: 4h, ladder: p3e }
ladders:
  p3e:
    levels:
      - { id: L1, name: First, after: 0m, notify: [stdout, ops] }
      - { id: L2, name: Senior, after: 30m, notify: [ops, stdout] }
channels:
  stdout: { type: stdout }
  ops: { type: webhook, url: 'http://127.0.0.1:9/hook' }
";

    fn policy() -> Policy {
        let src = crate::runbook::diagnostic::SourceFile::new("policy.yaml", POLICY);
        Policy::load(&src).unwrap()
    }

    fn spec(policy: &Policy) -> Spec {
        let (name, ladder) = policy.ladder_for(None, "P1").unwrap();
        Spec {
            runbook: "rb".into(),
            severity: "P1".into(),
            response: std::time::Duration::from_secs(15 * 60),
            resolution: std::time::Duration::from_secs(4 * 3600),
            ladder: Some(name.to_owned()),
            levels: ladder
                .levels
                .iter()
                .map(|l| LevelSpec {
                    id: l.id.clone(),
                    name: l.name.clone(),
                    after_ms: u64::try_from(l.after().as_millis()).unwrap(),
                    notify: l.notify.clone(),
                })
                .collect(),
            after_action_unresolved: None,
            mutating_actions: Vec::new(),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        parse(s)
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_level_claimed_elsewhere_is_not_sent_and_the_claim_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let policy = policy();
        let open_at = t("2030-01-01T00:00:00Z");
        let inc = opened(&store, &policy, open_at);
        let fake = Fake::default();
        let l1 = block(fire_incident(&store, &policy, inc.id, open_at, &fake))
            .unwrap()
            .unwrap();
        assert_eq!(l1.level_id, "L1");
        assert_eq!(
            l1.sent.iter().map(|s| s.ok).collect::<Vec<_>>(),
            [true, false],
            "a failed webhook is recorded, the others still sent"
        );
        // Another writer got L2 into `escalations` first (the UNIQUE backstop).
        store
            .write(false, |tx| {
                tx.execute(
                    "INSERT INTO escalations (incident_id, level, level_id, level_name, due_at, \
                     state, claimed_at) VALUES (?1, 2, 'L2', 'Senior', 'x', 'firing', 'x')",
                    [inc.id],
                )
            })
            .unwrap();
        let at = t("2030-01-01T00:31:00Z");
        let before = fake.sent.load(Ordering::SeqCst);
        assert!(
            block(fire_incident(&store, &policy, inc.id, at, &fake))
                .unwrap()
                .is_none()
        );
        assert_eq!(fake.sent.load(Ordering::SeqCst), before, "nothing sent");
        let still = list(&store).unwrap().remove(0);
        assert_eq!(
            still.level, 1,
            "the incident did not move: the claim rolled back"
        );
        assert_eq!(due(&store, at).unwrap().len(), 1);
    }

    /// A pid that no process has now: a child that ran and was reaped.
    fn dead_pid() -> i64 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        i64::from(child.id())
    }

    /// The incident `rb`'s `run-1` opens at `open_at` (a problem remains).
    fn opened(store: &AuditStore, policy: &Policy, open_at: DateTime<Utc>) -> Incident {
        let Change::Opened(inc) = open_or_update(
            store,
            &spec(policy),
            "rb",
            "run-1",
            Outcome::ProblemRemains,
            open_at,
        )
        .unwrap() else {
            panic!("not opened");
        };
        inc
    }

    /// An open incident whose L1 was claimed by a process that died before sending it.
    fn with_lost_claim(store: &AuditStore, policy: &Policy) -> (Incident, i64) {
        let open_at = t("2030-01-01T00:00:00Z");
        let inc = opened(store, policy, open_at);
        let claimed = claim(store, inc.id, open_at).unwrap().unwrap();
        assert_eq!(claimed.level.id, "L1");
        assert_eq!(orphaned_claims(store).unwrap(), 0, "this process is alive");
        let pid = dead_pid();
        store
            .write(false, |tx| {
                tx.execute(
                    "UPDATE escalations SET claimed_pid = ?2 WHERE id = ?1",
                    params![claimed.escalation_id, pid],
                )?;
                tx.chain("escalations", &claimed.escalation_id.to_string(), "update")
            })
            .unwrap();
        (inc, pid)
    }

    #[test]
    fn a_level_claimed_by_a_dead_process_is_sent_again_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let policy = policy();
        let (inc, pid) = with_lost_claim(&store, &policy);
        assert_eq!(orphaned_claims(&store).unwrap(), 1);
        let fake = Fake::default();
        let at = t("2030-01-01T00:05:00Z");
        let fired = block(fire_due(&store, &policy, at, &fake)).unwrap();
        assert_eq!(fired.len(), 1, "{fired:?}");
        let f = &fired[0];
        assert_eq!((f.incident_id, f.level_id.as_str()), (inc.id, "L1"));
        let resent = f.resent_after_crash.as_ref().expect("marked as a resend");
        assert_eq!(resent.claimed_pid, Some(pid));
        assert_eq!(resent.claimed_at, "2030-01-01T00:00:00.000Z");
        assert!(f.message.contains("sent again"), "{}", f.message);
        assert_eq!(fake.sent.load(Ordering::SeqCst), 2, "both channels of L1");
        let (state, result): (String, String) = store
            .read(|c| {
                c.query_row("SELECT state, result FROM escalations", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap();
        assert_eq!(state, "fired");
        let result: serde_json::Value = serde_json::from_str(&result).unwrap();
        assert_eq!(result["resent_after_crash"]["claimed_pid"], pid);
        assert_eq!(result["channels"].as_array().unwrap().len(), 2);
        // Settled: nothing left to take over, nothing sent twice more.
        assert_eq!(orphaned_claims(&store).unwrap(), 0);
        assert!(
            block(fire_due(&store, &policy, at, &fake))
                .unwrap()
                .is_empty()
        );
        assert_eq!(fake.sent.load(Ordering::SeqCst), 2);
        assert_eq!(
            list(&store).unwrap()[0].level,
            1,
            "the incident did not move"
        );
        assert!(store.verify().unwrap().is_ok());
    }

    #[test]
    fn a_lost_claim_of_a_resolved_incident_is_recorded_skipped_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let policy = policy();
        with_lost_claim(&store, &policy);
        let at = t("2030-01-01T00:05:00Z");
        assert!(resolve(&store, "rb", "rb", at).unwrap().is_some());
        let fake = Fake::default();
        assert!(
            block(fire_due(&store, &policy, at, &fake))
                .unwrap()
                .is_empty()
        );
        assert_eq!(fake.sent.load(Ordering::SeqCst), 0);
        let (state, result): (String, String) = store
            .read(|c| {
                c.query_row("SELECT state, result FROM escalations", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap();
        assert_eq!(state, "skipped");
        assert!(result.contains("resolved since"), "{result}");
        assert_eq!(orphaned_claims(&store).unwrap(), 0);
        assert!(store.verify().unwrap().is_ok());
    }

    #[test]
    fn ack_stops_the_timers_and_a_good_run_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let policy = policy();
        let s = spec(&policy);
        let open_at = t("2030-01-01T00:00:00Z");
        open_or_update(&store, &s, "fp-1", "r1", Outcome::ProblemRemains, open_at).unwrap();
        // Another key is another incident.
        open_or_update(&store, &s, "fp-2", "r2", Outcome::ProblemRemains, open_at).unwrap();
        assert_eq!(list(&store).unwrap().len(), 2);
        let AckOutcome::Acked(i) = ack(&store, 1, "alice", open_at).unwrap() else {
            panic!("not acked");
        };
        assert_eq!(i.next_due_at, None);
        let later = t("2030-01-01T05:00:00Z");
        assert_eq!(
            due(&store, later)
                .unwrap()
                .iter()
                .map(|i| i.id)
                .collect::<Vec<_>>(),
            [2]
        );
        assert!(matches!(
            open_or_update(&store, &s, "fp-1", "r3", Outcome::Healthy, later).unwrap(),
            Change::Resolved(_)
        ));
        assert!(matches!(
            open_or_update(&store, &s, "fp-1", "r4", Outcome::Healthy, later).unwrap(),
            Change::Unchanged
        ));
        assert!(matches!(
            ack(&store, 1, "bob", later).unwrap(),
            AckOutcome::Resolved(_)
        ));
        assert!(resolve(&store, "rb", "fp-2", later).unwrap().is_some());
        assert!(list(&store).unwrap().is_empty());
        assert!(store.verify().unwrap().is_ok());
    }

    /// An open incident at L1 with a recheck due at `due`.
    fn with_recheck(store: &AuditStore, policy: &Policy, due: &str) -> Incident {
        let open_at = t("2030-01-01T00:00:00Z");
        let inc = opened(store, policy, open_at);
        assert_eq!(inc.recheck_due_at, None, "run-1 performed no remediation");
        let fake = Fake::default();
        block(fire_incident(store, policy, inc.id, open_at, &fake))
            .unwrap()
            .unwrap();
        store
            .write(false, |tx| {
                tx.execute(
                    "UPDATE incidents SET recheck_due_at = ?2 WHERE id = ?1",
                    params![inc.id, due],
                )
            })
            .unwrap();
        list(store).unwrap().remove(0)
    }

    #[test]
    fn a_recheck_is_claimed_once_and_does_not_climb_past_a_level_fired_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let policy = policy();
        let inc = with_recheck(&store, &policy, "2030-01-01T00:10:00.000Z");
        assert!(
            claim_recheck(&store, inc.id, t("2030-01-01T00:09:59Z"))
                .unwrap()
                .is_none(),
            "not due yet"
        );
        let at = t("2030-01-01T00:31:00Z");
        assert_eq!(due_rechecks(&store, at).unwrap().len(), 1);
        let claimed = claim_recheck(&store, inc.id, at).unwrap().unwrap();
        assert_eq!(claimed.level, 1);
        assert!(
            claim_recheck(&store, inc.id, at).unwrap().is_none(),
            "twice"
        );
        assert!(due_rechecks(&store, at).unwrap().is_empty());
        // While the recheck ran, L2 fired by its time.
        let fake = Fake::default();
        let l2 = block(fire_incident(&store, &policy, inc.id, at, &fake))
            .unwrap()
            .unwrap();
        assert_eq!(l2.level_id, "L2");
        let RecheckEnd::Stays(why) = end_recheck(&store, &claimed, "recheck-1", false, at).unwrap()
        else {
            panic!("climbed twice");
        };
        assert!(why.contains("meanwhile"), "{why}");
        let now = list(&store).unwrap().remove(0);
        assert_eq!(now.level, 2);
        assert_eq!(now.last_run_id.as_deref(), Some("recheck-1"));
        let rows: i64 = store
            .read(|c| c.query_row("SELECT COUNT(*) FROM escalations", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(rows, 2, "L1 and L2, once each");
        assert!(store.verify().unwrap().is_ok());
    }

    #[test]
    fn a_recheck_climbs_one_level_keeps_the_ladder_times_and_a_healthy_one_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuditStore::open(&dir.path().join("a.db")).unwrap();
        let policy = policy();
        let inc = with_recheck(&store, &policy, "2030-01-01T00:10:00.000Z");
        let at = t("2030-01-01T00:11:00Z");
        let claimed = claim_recheck(&store, inc.id, at).unwrap().unwrap();
        let RecheckEnd::Climbed(claim) =
            end_recheck(&store, &claimed, "recheck-1", false, at).unwrap()
        else {
            panic!("did not climb");
        };
        let fake = Fake::default();
        let fired = block(send(&store, &policy, *claim, at, &fake)).unwrap();
        assert_eq!((fired.level, fired.level_id.as_str()), (2, "L2"));
        assert_eq!(fired.due_at, "2030-01-01T00:10:00.000Z");
        assert_eq!(fired.recheck_run_id.as_deref(), Some("recheck-1"));
        assert_eq!(fired.next_due_at, None, "L2 is the top of this ladder");
        assert!(
            fake.messages.lock().unwrap()[0].contains("recheck run recheck-1"),
            "the page says why it came early"
        );
        // The ladder's own time for L2 finds it fired.
        assert!(due(&store, t("2030-01-01T00:31:00Z")).unwrap().is_empty());

        // Top of the ladder: another recheck has nowhere to climb; a healthy one resolves.
        store
            .write(false, |tx| {
                tx.execute(
                    "UPDATE incidents SET recheck_due_at = '2030-01-01T00:20:00.000Z'",
                    [],
                )
            })
            .unwrap();
        let later = t("2030-01-01T00:21:00Z");
        let claimed = claim_recheck(&store, inc.id, later).unwrap().unwrap();
        assert!(matches!(
            end_recheck(&store, &claimed, "recheck-2", false, later).unwrap(),
            RecheckEnd::Stays(why) if why == "top of the ladder"
        ));
        let RecheckEnd::Resolved = end_recheck(&store, &claimed, "recheck-3", true, later).unwrap()
        else {
            panic!("not resolved");
        };
        assert!(list(&store).unwrap().is_empty());
        assert!(matches!(
            end_recheck(&store, &claimed, "recheck-4", true, later).unwrap(),
            RecheckEnd::Closed
        ));
        assert!(store.verify().unwrap().is_ok());
    }
}
