//! `backup`: copy a file or directory to `<to>/<name>.<YYYYmmdd_HHMMSS>` (like
//! `cp -r /opt/aurora/logs /opt/aurora/logs.backup.$(date +%Y%m%d_%H%M%S)`). Mutating.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::raw::SString;

/// `backup:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// What to copy.
    #[schemars(with = "String")]
    pub from: SString,
    /// The directory the timestamped copy goes into.
    #[schemars(with = "String")]
    pub to: SString,
}

impl RawBackup {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.from, &self.to]
    }
}
