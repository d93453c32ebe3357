//! `config`: read a value from a YAML, JSON or `KEY=value` env file, like
//! `cat /opt/aurora/config/governance.yaml`. `jq` selects the value; without it, the whole
//! document. Without `format`, `.json` is JSON, `.yaml`/`.yml` YAML, any other name `KEY=value`
//! (env values stay strings). A missing file is an observation: `exists: false`, `value: null`.
//! Only a regular file is read, up to 4 MiB: a FIFO, a device or a socket is an `error`
//! (`not a regular file (a fifo)`), never waited on.
//!
//! Result: `value`, `format`, `exists`.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::probes::{ProbeContext, ProbeOutcome, jq, readfile};

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

/// A config file larger than this is refused (real ones are kilobytes; the cap keeps a
/// runaway or hostile file from filling memory).
const CONFIG_CAP: u64 = 4 << 20;

/// Run the probe: read, parse, select.
pub async fn probe(params: ConfigParams, _cx: &ProbeContext<'_>) -> ProbeOutcome {
    let format = params.format.unwrap_or_else(|| guess(&params.path));
    let name = format_name(format);
    // A FIFO or a device (`/dev/zero`) is refused before any read: a blocking read of one
    // would outlive the step's timeout, and the process with it.
    let path = params.path.clone();
    let read = tokio::task::spawn_blocking(move || readfile::read_regular_file(&path, CONFIG_CAP));
    let bytes = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if e.is_not_found() => {
            return ProbeOutcome::observed([
                ("exists", Value::Bool(false)),
                ("format", json!(name)),
                ("value", Value::Null),
            ]);
        }
        Ok(Err(e)) => return ProbeOutcome::Error(format!("cannot read `{}`: {e}", params.path)),
        Err(e) => return ProbeOutcome::Error(format!("read task failed: {e}")),
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return ProbeOutcome::Error(format!("`{}` is not UTF-8 text", params.path));
    };
    let doc = match parse(format, &text) {
        Ok(d) => d,
        Err(e) => {
            return ProbeOutcome::Error(format!("`{}` is not valid {name}: {e}", params.path));
        }
    };
    let value = match &params.jq {
        Some(path) => match jq::eval(path, &doc) {
            Ok(v) => v,
            Err(e) => return ProbeOutcome::Error(e),
        },
        None => doc,
    };
    ProbeOutcome::observed([
        ("exists", Value::Bool(true)),
        ("format", json!(name)),
        ("value", value),
    ])
}

/// The format from the file name: `.json`, `.yaml`/`.yml`, anything else is `KEY=value`.
fn guess(path: &str) -> ConfigFormat {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => ConfigFormat::Json,
        Some("yaml" | "yml") => ConfigFormat::Yaml,
        _ => ConfigFormat::Env,
    }
}

fn format_name(f: ConfigFormat) -> &'static str {
    match f {
        ConfigFormat::Yaml => "yaml",
        ConfigFormat::Json => "json",
        ConfigFormat::Env => "env",
    }
}

fn parse(format: ConfigFormat, text: &str) -> Result<Value, String> {
    match format {
        ConfigFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        ConfigFormat::Yaml if text.trim().is_empty() => Ok(Value::Null),
        ConfigFormat::Yaml => serde_saphyr::from_str(text).map_err(|e| e.to_string()),
        ConfigFormat::Env => Ok(Value::Object(parse_env(text))),
    }
}

/// `KEY=value` lines as systemd's `EnvironmentFile` reads them: `#` comments, optional
/// `export `, one pair of surrounding quotes stripped. Values stay strings.
fn parse_env(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        out.insert(key.trim().to_owned(), Value::String(unquoted.to_owned()));
    }
    out
}
