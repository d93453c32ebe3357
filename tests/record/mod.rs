//! A row of `docs/reliability.md`, written by the test that earns it, when it passes.
//!
//! Each reliability test ends with [`row`]: what it tried, at what scale (counted by the code
//! that did it, not typed into the doc) and what held. `cargo test` leaves the rows in
//! `target/tmp/reliability/`; `scripts/reliability.py` renders them into the table and, with
//! `--check` (in `.ci/run`, after the tests), fails when the committed table differs from what
//! the tests just did, or names a test that no longer exists.

use std::path::Path;

/// Record the row of `test` (a `#[test]` fn in `file`, from `file!()`): what was `tried`, how
/// many times or at what scale, and what `held`.
pub fn row(file: &str, test: &str, tried: &str, scale: &str, held: &str) {
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("a test file");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).expect("target/tmp/reliability");
    let row = serde_json::json!({
        "file": file,
        "test": test,
        "tried": tried,
        "scale": scale,
        "held": held,
        "command": format!("cargo test --test {stem} {test}"),
    });
    std::fs::write(
        dir.join(format!("{stem}__{test}.json")),
        serde_json::to_vec_pretty(&row).expect("json"),
    )
    .expect("write the row");
}
