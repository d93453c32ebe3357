//! What an action gets and gives back.

use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::host::Host;

/// What an action may use.
pub struct ActionContext<'a> {
    /// The runbook the action belongs to (named in notifications).
    pub runbook: &'a str,
    /// The door to the machine; every mutation goes through it.
    pub host: &'a dyn Host,
    /// The action's timeout.
    pub timeout: Duration,
    /// Environment for `run` / `shell` (rendered).
    pub env: &'a IndexMap<String, String>,
    /// Working directory for `run` / `shell` (rendered).
    pub cwd: Option<&'a str>,
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    /// It did what it was asked (exit 0, 2xx, file written...).
    pub ok: bool,
    /// One line for people.
    pub summary: String,
    /// Details for the audit trail (exit code, stdout, backup path, previous value...).
    pub detail: Map<String, Value>,
}

impl ActionOutcome {
    /// A failure with a message.
    #[must_use]
    pub fn failed(summary: impl Into<String>) -> Self {
        ActionOutcome {
            ok: false,
            summary: summary.into(),
            detail: Map::new(),
        }
    }
}

/// Where a notification goes (the policy's channel, resolved by the executor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// Shown to the operator through the reporters.
    Stdout,
    /// POST `{"runbook", "message", "host"}` as JSON.
    Webhook(String),
    /// POST a Slack-compatible `{"text": ...}`.
    Slack(String),
}

impl NotifyTarget {
    /// The targets of a policy's channels, by channel name (none without a policy).
    #[must_use]
    pub fn from_policy(
        policy: Option<&crate::runbook::policy::Policy>,
    ) -> std::collections::HashMap<String, NotifyTarget> {
        use crate::runbook::policy::ChannelKind;
        let mut out = std::collections::HashMap::new();
        for (name, ch) in policy.map(|p| &p.channels).into_iter().flatten() {
            let target = match (ch.kind, &ch.url) {
                (ChannelKind::Webhook, Some(u)) => NotifyTarget::Webhook(u.clone()),
                (ChannelKind::Slack, Some(u)) => NotifyTarget::Slack(u.clone()),
                _ => NotifyTarget::Stdout,
            };
            out.insert(name.clone(), target);
        }
        out
    }
}
