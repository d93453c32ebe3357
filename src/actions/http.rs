//! `http`: send a request (e.g. `curl -X POST http://127.0.0.1:8001/recalibrate`). Mutating.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::raw::SString;

/// `http:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpAction {
    /// The URL; may be a template.
    #[schemars(with = "String")]
    pub url: SString,
    /// POST (default), PUT, PATCH, DELETE, GET.
    #[serde(default)]
    pub method: Option<crate::probes::http::HttpMethod>,
    /// Request headers; values may be templates.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub headers: IndexMap<String, SString>,
    /// Request body; may be a template.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub body: Option<SString>,
    /// File holding a bearer token (secret).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_file: Option<SString>,
    /// Skip TLS verification.
    #[serde(default)]
    pub insecure: bool,
    /// Status codes that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

impl RawHttpAction {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        let mut out = vec![&self.url];
        out.extend(self.headers.values());
        out.extend(self.body.iter());
        out.extend(self.token_file.iter());
        out
    }
}
