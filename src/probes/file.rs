//! `file`: stat a file or directory, like `ls -la PATH`. With `secret: true` the contents are
//! never read into the result, stored or shown; only whether it is non-empty.
//!
//! For a directory, `entries` counts its entries (like `ls DIR | wc -l`).
//!
//! Result: `exists`, `kind`, `mode` (octal string), `owner`, `group`, `size`, `age_s`, `entries`,
//! `non_empty` (with `secret`); `value` is `exists`. A missing path is an observation
//! (`exists: false`), not an error.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::{ProbeContext, ProbeOutcome};

/// Parameters of the `file` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileParams {
    /// The path (a template allowed).
    pub path: String,
    /// The file holds a secret: never read its contents.
    #[serde(default)]
    pub secret: Option<bool>,
}

/// Result fields of the `file` probe.
pub const FIELDS: &[&str] = &[
    "exists",
    "kind",
    "mode",
    "owner",
    "group",
    "size",
    "age_s",
    "entries",
    "non_empty",
];

/// Run the probe: `lstat` the path (a symlink is reported as one), never open a secret.
pub async fn probe(params: FileParams, _cx: &ProbeContext<'_>) -> ProbeOutcome {
    let secret = params.secret.unwrap_or(false);
    let path = PathBuf::from(&params.path);
    match tokio::task::spawn_blocking(move || stat(&path, secret)).await {
        Ok(outcome) => outcome,
        Err(e) => ProbeOutcome::Error(format!("stat task failed: {e}")),
    }
}

fn stat(path: &Path, secret: bool) -> ProbeOutcome {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return ProbeOutcome::observed([
                ("exists", Value::Bool(false)),
                ("value", Value::Bool(false)),
            ]);
        }
        Err(e) => {
            return ProbeOutcome::Error(format!("cannot stat `{}`: {e}", path.display()));
        }
    };
    let kind = if meta.file_type().is_symlink() {
        "symlink"
    } else if meta.is_dir() {
        "dir"
    } else if meta.is_file() {
        "file"
    } else {
        "other"
    };
    let age_s = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let mut out = Map::new();
    out.insert("exists".into(), Value::Bool(true));
    out.insert("value".into(), Value::Bool(true));
    out.insert("kind".into(), json!(kind));
    out.insert(
        "mode".into(),
        json!(format!("{:04o}", meta.mode() & 0o7777)),
    );
    out.insert("owner".into(), json!(name_of("/etc/passwd", meta.uid())));
    out.insert("group".into(), json!(name_of("/etc/group", meta.gid())));
    out.insert("size".into(), json!(meta.len()));
    out.insert("age_s".into(), json!((age_s * 1000.0).round() / 1000.0));
    if meta.is_dir() {
        // Counting entries reads names, not contents, so it is fine for a secret directory.
        match std::fs::read_dir(path) {
            Ok(rd) => {
                out.insert("entries".into(), json!(rd.count()));
            }
            Err(e) => {
                return ProbeOutcome::Error(format!("cannot list `{}`: {e}", path.display()));
            }
        }
    }
    if secret {
        // Contents are never read; only whether there is something there.
        out.insert("non_empty".into(), Value::Bool(meta.len() > 0));
    }
    ProbeOutcome::Observed(out)
}

/// The name for a numeric id from `/etc/passwd` or `/etc/group`, else the number as text.
fn name_of(db: &str, id: u32) -> String {
    let wanted = id.to_string();
    std::fs::read_to_string(db)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut parts = line.split(':');
                let name = parts.next()?;
                let _password = parts.next()?;
                (parts.next()? == wanted).then(|| name.to_owned())
            })
        })
        .unwrap_or(wanted)
}
