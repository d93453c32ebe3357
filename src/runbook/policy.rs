//! `policy.yaml`: what both seed documents share — severities with response and resolution
//! times, escalation ladders, notification channels, auto-remediation per severity, and the
//! post-mortem template. It sits beside the runbooks; the compiler checks runbooks against it.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runbook::diagnostic::{Diagnostic, SourceFile};
use crate::runbook::value::{DurationParam, parse_duration};

/// The policy file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Severity levels by key (`P0`..`P3`).
    pub severities: IndexMap<String, SeverityDef>,
    /// Escalation ladders by name (`p3d`, `p3e`).
    pub ladders: IndexMap<String, Ladder>,
    /// Notification channels by name.
    #[serde(default)]
    pub channels: IndexMap<String, Channel>,
    /// Severities whose mutating remedies `runbook serve` may run without a person
    /// (actions with `approve:` always wait for one).
    #[serde(default)]
    pub auto_remediation: IndexMap<String, bool>,
    /// The post-mortem template.
    #[serde(default)]
    pub postmortem: Option<Postmortem>,
    /// People and rotations to reach.
    #[serde(default)]
    pub contacts: IndexMap<String, serde_json::Value>,
}

/// One severity.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityDef {
    /// Name (`Critical`).
    pub name: String,
    /// Time to first response.
    pub response: DurationParam,
    /// Time to resolution.
    pub resolution: DurationParam,
    /// The impact that defines it.
    #[serde(default)]
    pub impact: Option<String>,
    /// Examples.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Default escalation ladder.
    #[serde(default)]
    pub ladder: Option<String>,
}

/// An escalation ladder.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    /// For people.
    #[serde(default)]
    pub title: Option<String>,
    /// Where it comes from.
    #[serde(default)]
    pub source: Option<String>,
    /// Levels, lowest first.
    pub levels: Vec<Level>,
}

/// One level of a ladder.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Id (`L1`).
    pub id: String,
    /// Who (`Ops Team`).
    pub name: String,
    /// Reached when the previous level has left the problem unresolved this long
    /// (`0m` for the first level: immediate).
    #[serde(default)]
    pub after: Option<DurationParam>,
    /// What this level does.
    #[serde(default)]
    pub duties: Vec<String>,
    /// Channels notified on reaching this level.
    #[serde(default)]
    pub notify: Vec<String>,
}

/// A notification channel.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// stdout, webhook (JSON) or slack (Slack-compatible webhook).
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// Where to post (webhook, slack).
    #[serde(default)]
    pub url: Option<String>,
    /// The Slack channel name, for `slack`.
    #[serde(default)]
    pub channel: Option<String>,
    /// For people.
    #[serde(default)]
    pub description: Option<String>,
}

/// Kinds of notification channel.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Print to standard output.
    Stdout,
    /// POST a JSON document.
    Webhook,
    /// POST a Slack-compatible `{"text": ...}` payload.
    Slack,
}

/// The post-mortem template.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Postmortem {
    /// Sections in order.
    pub sections: Vec<PostmortemSection>,
    /// Follow-up items.
    #[serde(default)]
    pub follow_up: Vec<String>,
}

/// One post-mortem section.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostmortemSection {
    /// Id (`timeline`).
    pub id: String,
    /// Heading (`Timeline`).
    pub title: String,
    /// What goes in it.
    #[serde(default)]
    pub prompt: Option<String>,
}

impl Policy {
    /// Parse and check a policy file: durations, ladders and channels.
    ///
    /// # Errors
    /// Every problem found.
    pub fn load(src: &Arc<SourceFile>) -> Result<Policy, Vec<Diagnostic>> {
        let policy: Policy = crate::runbook::load::parse(src).map_err(|d| vec![d])?;
        let mut diags = Vec::new();
        for (key, sev) in &policy.severities {
            if let Some(ladder) = &sev.ladder
                && !policy.ladders.contains_key(ladder)
            {
                diags.push(
                    Diagnostic::error(
                        "unknown-ladder",
                        format!("severity `{key}` names unknown ladder `{ladder}`"),
                    )
                    .in_file(src),
                );
            }
        }
        for (name, ladder) in &policy.ladders {
            if ladder.levels.is_empty() {
                diags.push(
                    Diagnostic::error("empty-ladder", format!("ladder `{name}` has no levels"))
                        .in_file(src),
                );
            }
            for level in &ladder.levels {
                for ch in &level.notify {
                    if !policy.channels.contains_key(ch) {
                        diags.push(
                            Diagnostic::error(
                                "unknown-channel",
                                format!(
                                    "level `{}` of ladder `{name}` notifies unknown channel `{ch}`",
                                    level.id
                                ),
                            )
                            .in_file(src),
                        );
                    }
                }
            }
        }
        for key in policy.auto_remediation.keys() {
            if !policy.severities.contains_key(key) {
                diags.push(
                    Diagnostic::error(
                        "unknown-severity",
                        format!("`auto_remediation` names unknown severity `{key}`"),
                    )
                    .in_file(src),
                );
            }
        }
        for (name, ch) in &policy.channels {
            if ch.kind != ChannelKind::Stdout && ch.url.is_none() {
                diags.push(
                    Diagnostic::error("missing-key", format!("channel `{name}` needs a `url`"))
                        .in_file(src),
                );
            }
        }
        if diags.is_empty() {
            Ok(policy)
        } else {
            Err(diags)
        }
    }

    /// The levels `(id, name)` of the ladder `rb` climbs, lowest first (none without one).
    #[must_use]
    pub fn ladder_levels(&self, rb: &crate::runbook::model::Runbook) -> Vec<(String, String)> {
        self.ladder_for(
            rb.escalation.as_ref().and_then(|e| e.ladder.as_deref()),
            &rb.severity,
        )
        .map(|(_, l)| {
            l.levels
                .iter()
                .map(|lv| (lv.id.clone(), lv.name.clone()))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The ladder a runbook escalates on: its own `escalation.ladder`, else its severity's.
    #[must_use]
    pub fn ladder_for(&self, explicit: Option<&str>, severity: &str) -> Option<(&str, &Ladder)> {
        let name = explicit.or_else(|| self.severities.get(severity)?.ladder.as_deref())?;
        self.ladders
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }
}

impl Level {
    /// How long the previous level may leave the problem unresolved.
    #[must_use]
    pub fn after(&self) -> Duration {
        match &self.after {
            Some(DurationParam::Fixed(d)) => *d,
            Some(DurationParam::Template(t)) => parse_duration(t).unwrap_or_default(),
            None => Duration::ZERO,
        }
    }
}
