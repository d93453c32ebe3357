//! `file`: stat a file or directory, like `ls -la PATH`. With `secret: true` the contents are
//! never read into the result, stored or shown; only whether it is non-empty.
//!
//! For a directory, `entries` counts its entries (like `ls DIR | wc -l`).
//!
//! Result: `exists`, `kind`, `mode` (octal string), `owner`, `group`, `size`, `age_s`, `entries`.

use schemars::JsonSchema;
use serde::Deserialize;

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
    "exists", "kind", "mode", "owner", "group", "size", "age_s", "entries",
];
