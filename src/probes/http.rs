//! `http`: one HTTP request (GET, HEAD, POST, ...), like `curl [-k] [-I] URL | jq PATH`.
//!
//! A bearer token can come from a secret file (`token_file`), never from the runbook text.
//! `insecure: true` skips TLS verification like `curl -k`. `jq` extracts `value` from a JSON
//! body. A refused connection or a timeout is an observation: the check is `failed` with a
//! `reason`, not an `error`.
//!
//! Result: `status` (HTTP code), `headers` (lowercase names), `body` (capped), `json`
//! (parsed body when JSON), `value` (the `jq` result), `reason`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the `http` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// The URL; may be a template.
    pub url: String,
    /// GET (default), HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
    #[serde(default)]
    pub method: Option<HttpMethod>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// jq path applied to the JSON body; its result becomes `value`.
    #[serde(default)]
    pub jq: Option<String>,
    /// Skip TLS verification (`curl -k`).
    #[serde(default)]
    pub insecure: Option<bool>,
    /// File holding a bearer token (secret: never stored).
    #[serde(default)]
    pub token_file: Option<String>,
    /// Follow redirects (default false).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
}

/// HTTP methods a probe may use.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
}

/// Result fields of the `http` probe.
pub const FIELDS: &[&str] = &["status", "headers", "body", "json", "value", "reason"];
