//! `set_env`: set `KEY=value` in an `EnvironmentFile` (e.g. `/etc/default/aurora-runner`)
//! atomically (write a temp file, fsync, rename), keeping a backup of the previous file.
//! This is how the seed's `export KELLY_MULTIPLIER=0.5; systemctl restart aurora-runner`
//! becomes durable. Mutating; usually paired with `rollback` + `revert_after`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::raw::SString;

/// `set_env:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSetEnv {
    /// The environment file.
    #[schemars(with = "String")]
    pub file: SString,
    /// The variable name.
    #[schemars(with = "String")]
    pub key: SString,
    /// The new value; may be a template.
    #[schemars(with = "String")]
    pub value: SString,
}

impl RawSetEnv {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.file, &self.key, &self.value]
    }
}
