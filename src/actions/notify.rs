//! `notify`: send a message to a channel of `policy.yaml` (stdout, JSON webhook, Slack-
//! compatible webhook). The only action that does not mutate the host; it runs without
//! `--yes`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::runbook::raw::SString;

/// `notify:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// A key of `policy.yaml` channels.
    #[schemars(with = "String")]
    pub channel: SString,
    /// The message; may be a template.
    #[schemars(with = "String")]
    pub message: SString,
}

impl RawNotify {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.message]
    }
}
