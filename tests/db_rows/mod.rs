//! [`rows`]: what a query of the audit file returns, every value as text, for tests that
//! compare tables (`tests/escalation.rs`, `tests/recheck.rs`, `tests/clock_jumps.rs`).

use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// Rows of `sql` on the database at `db`, every value as text (`NULL` for null).
pub fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => "NULL".to_owned(),
                    ValueRef::Integer(x) => x.to_string(),
                    v => String::from_utf8_lossy(v.as_bytes().unwrap()).into_owned(),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}
