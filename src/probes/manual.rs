//! `manual`: ask the operator a yes/no question at a terminal (e.g. "is the dashboard sending
//! the token? check browser dev tools -> Network"). `unknown` when nobody is at a terminal.
//!
//! Result: `answer` (true / false).

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `manual` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualParams {
    /// The yes/no question.
    pub question: String,
}

/// Result fields of the `manual` probe.
pub const FIELDS: &[&str] = &["answer"];
