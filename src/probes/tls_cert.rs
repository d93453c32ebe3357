//! `tls_cert`: days until a certificate expires, from a PEM file or a live endpoint, like
//! `openssl x509 -in FILE -noout -dates`.
//!
//! Result: `days_left`, `subject`, `issuer`, `not_before`, `not_after`, `reason`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::value::Tpl;

/// Parameters of the `tls_cert` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCertParams {
    /// A PEM certificate file.
    #[serde(default)]
    pub file: Option<String>,
    /// A host to connect to.
    #[serde(default)]
    pub host: Option<String>,
    /// Its port (default 443).
    #[serde(default)]
    pub port: Option<Tpl<u16>>,
}

impl TlsCertParams {
    /// Either `file` or `host`.
    ///
    /// # Errors
    /// A message when neither or both are given.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.file, &self.host) {
            (Some(_), None) => {
                if self.port.is_some() {
                    Err("`port` goes with `host`, not `file`".into())
                } else {
                    Ok(())
                }
            }
            (None, Some(_)) => Ok(()),
            _ => Err("give exactly one of `file` or `host`".into()),
        }
    }
}

/// Result fields of the `tls_cert` probe.
pub const FIELDS: &[&str] = &[
    "days_left",
    "subject",
    "issuer",
    "not_before",
    "not_after",
    "reason",
];
