//! The hash chain over `runs`, `steps`, `pending_reverts`, `incidents`, `escalations`,
//! `approvals`, `schedule_slots` and `run_context` (scheme in the module doc of
//! [`crate::audit`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chained tables and the column that keys a row of each: the chain names a row by its
/// value (`audit_chain.row_id`). Most tables have an `id`; `schedule_slots` holds one row per
/// runbook and `run_context` one per run.
pub const CHAINED: &[(&str, &str)] = &[
    ("runs", "id"),
    ("steps", "id"),
    ("pending_reverts", "id"),
    ("incidents", "id"),
    ("escalations", "id"),
    ("approvals", "id"),
    ("schedule_slots", "runbook"),
    ("run_context", "run_id"),
];

/// The key column of a chained table; an error for any other table, so a table name that
/// reaches SQL here is always one of [`CHAINED`].
fn key_column(table: &str) -> rusqlite::Result<&'static str> {
    CHAINED
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, key)| *key)
        .ok_or_else(|| rusqlite::Error::InvalidParameterName(format!("unchained table `{table}`")))
}

/// The first altered row `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Altered {
    /// One of [`CHAINED`], or `audit_chain`.
    pub table: String,
    /// The row's key (its `id`, the `runbook` of a `schedule_slots` row, the `run_id` of a
    /// `run_context` row; a chain entry's `seq` for `audit_chain`).
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Rows of the chained tables checked.
    pub rows: u64,
    /// Chain entries walked.
    pub entries: u64,
    /// The hash of the last entry (anchor it elsewhere to detect truncation).
    pub head: String,
    /// The first altered row, if any.
    pub altered: Option<Altered>,
}

impl VerifyReport {
    /// No alteration found.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.altered.is_none()
    }
}

/// Serialize with object keys sorted, no whitespace: the form that is hashed.
#[must_use]
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// The hash of one entry.
#[must_use]
pub fn entry_hash(prev: &str, table: &str, id: &str, op: &str, row: &Value) -> String {
    let body = serde_json::json!({"table": table, "id": id, "op": op, "row": row});
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical_json(&body).as_bytes());
    hex::encode(h.finalize())
}

/// A row as a JSON object of column → value, read back exactly as stored.
fn row_object(row: &rusqlite::Row<'_>, names: &[String]) -> rusqlite::Result<Value> {
    let mut obj = Map::new();
    for (i, name) in names.iter().enumerate() {
        let v = match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::from(n),
            ValueRef::Real(f) => Value::from(f),
            ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::String(hex::encode(b)),
        };
        obj.insert(name.clone(), v);
    }
    Ok(Value::Object(obj))
}

fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One row of a chained table, found by its key (see [`CHAINED`]), as hashed.
///
/// # Errors
/// When `SQLite` fails or `table` is not chained.
pub fn load_row(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<Value>> {
    let key = key_column(table)?;
    let mut stmt = conn.prepare_cached(&format!("SELECT * FROM {table} WHERE {key} = ?1"))?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    // `steps.id` is an INTEGER column: its affinity turns the text `id` into a number.
    let mut rows = stmt.query([id])?;
    rows.next()?.map(|r| row_object(r, &names)).transpose()
}

/// The keys of every row of a chained table, as the chain names them, in insertion order.
///
/// # Errors
/// When `SQLite` fails or `table` is not chained.
pub fn keys(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let key = key_column(table)?;
    let mut stmt = conn.prepare(&format!("SELECT {key} FROM {table} ORDER BY rowid"))?;
    stmt.query_map([], |r| {
        Ok(match r.get_ref(0)? {
            ValueRef::Integer(n) => n.to_string(),
            v => String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned(),
        })
    })?
    .collect()
}

/// Append the entry for `table`/`id` (the row's key) as it now is. Call inside the
/// transaction that wrote it.
///
/// # Errors
/// When `SQLite` fails, the row does not exist or `table` is not chained.
pub fn append(conn: &Connection, table: &str, id: &str, op: &str) -> rusqlite::Result<String> {
    let row = load_row(conn, table, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let prev: String = conn
        .query_row(
            "SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(GENESIS.to_owned()),
            e => Err(e),
        })?;
    let hash = entry_hash(&prev, table, id, op, &row);
    conn.execute(
        "INSERT INTO audit_chain (tbl, row_id, op, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![table, id, op, prev, hash],
    )?;
    Ok(hash)
}

struct Entry {
    seq: i64,
    table: String,
    id: String,
    op: String,
    prev: String,
    hash: String,
}

/// Recompute the chain; report the first altered row. Read in one transaction so a writer
/// cannot interleave.
///
/// # Errors
/// When `SQLite` fails.
pub fn verify(conn: &mut Connection) -> rusqlite::Result<VerifyReport> {
    let tx = conn.transaction()?;
    let rows = all_rows(&tx)?;
    let entries: Vec<Entry> = {
        let mut stmt = tx.prepare(
            "SELECT seq, tbl, row_id, op, prev_hash, hash FROM audit_chain ORDER BY seq",
        )?;
        stmt.query_map([], |r| {
            Ok(Entry {
                seq: r.get(0)?,
                table: r.get(1)?,
                id: r.get(2)?,
                op: r.get(3)?,
                prev: r.get(4)?,
                hash: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?
    };
    let mut latest: HashMap<(&str, &str), i64> = HashMap::new();
    for e in &entries {
        latest.insert((e.table.as_str(), e.id.as_str()), e.seq);
    }
    let mut report = VerifyReport {
        rows: rows.len() as u64,
        entries: entries.len() as u64,
        head: entries
            .last()
            .map_or_else(|| GENESIS.to_owned(), |e| e.hash.clone()),
        altered: None,
    };
    let altered = |table: &str, id: &str, reason: String| {
        Some(Altered {
            table: table.to_owned(),
            id: id.to_owned(),
            reason,
        })
    };
    let mut expected_prev = GENESIS;
    for e in &entries {
        if e.prev != expected_prev {
            report.altered = altered(
                "audit_chain",
                &e.seq.to_string(),
                format!(
                    "does not link to the entry before it (for {} row {}): an entry was deleted or rewritten",
                    e.table, e.id
                ),
            );
            return Ok(report);
        }
        expected_prev = &e.hash;
        if latest.get(&(e.table.as_str(), e.id.as_str())) != Some(&e.seq) {
            continue;
        }
        match rows.get(&(e.table.clone(), e.id.clone())) {
            None => {
                report.altered = altered(&e.table, &e.id, "deleted".to_owned());
                return Ok(report);
            }
            Some(row) => {
                if entry_hash(&e.prev, &e.table, &e.id, &e.op, row) != e.hash {
                    report.altered = altered(
                        &e.table,
                        &e.id,
                        "content does not match its hash".to_owned(),
                    );
                    return Ok(report);
                }
            }
        }
    }
    report.altered = unchained(&tx, &latest)?;
    Ok(report)
}

/// Every row of the chained tables, keyed by table and the row's key.
fn all_rows(conn: &Connection) -> rusqlite::Result<HashMap<(String, String), Value>> {
    let mut rows = HashMap::new();
    for (table, key) in CHAINED {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            let obj = row_object(r, &names)?;
            let id = id_string(&obj[*key]);
            rows.insert(((*table).to_owned(), id), obj);
        }
    }
    Ok(rows)
}

/// The first row the chain never saw (written behind the store's back), in table then
/// insertion order.
fn unchained(
    conn: &Connection,
    latest: &HashMap<(&str, &str), i64>,
) -> rusqlite::Result<Option<Altered>> {
    for (table, _) in CHAINED {
        if let Some(id) = keys(conn, table)?
            .into_iter()
            .find(|id| !latest.contains_key(&(*table, id.as_str())))
        {
            return Ok(Some(Altered {
                table: (*table).to_owned(),
                id,
                reason: "not in the chain (written outside the audit store)".to_owned(),
            }));
        }
    }
    Ok(None)
}
