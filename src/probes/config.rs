//! `config`: read a value from a YAML, JSON or `KEY=value` env file, like
//! `cat /opt/aurora/config/governance.yaml`. `jq` selects the value; without it, the whole
//! document.
//!
//! Result: `value`, `format`, `exists`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `config` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigParams {
    /// The file.
    pub path: String,
    /// jq path of the value.
    #[serde(default)]
    pub jq: Option<String>,
    /// yaml, json or env (default: from the file name).
    #[serde(default)]
    pub format: Option<ConfigFormat>,
}

/// Formats the `config` probe reads.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
    /// `KEY=value` lines (an `EnvironmentFile`).
    Env,
}

/// Result fields of the `config` probe.
pub const FIELDS: &[&str] = &["value", "format", "exists"];
