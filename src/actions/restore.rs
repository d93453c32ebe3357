//! `restore`: copy back from the newest backup in `from` (or the one named by `backup`) into
//! `to` (like `cp /opt/aurora/logs.backup.latest/* /opt/aurora/logs/`). Mutating.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::raw::SString;

/// `restore:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRestore {
    /// The directory holding backups.
    #[schemars(with = "String")]
    pub from: SString,
    /// Where to restore to.
    #[schemars(with = "String")]
    pub to: SString,
    /// A backup's name; default the newest.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub backup: Option<SString>,
}

impl RawRestore {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        let mut out = vec![&self.from, &self.to];
        out.extend(self.backup.iter());
        out
    }
}
