//! The compiled runbook: ids resolved, templates and expressions parsed, durations typed.
//!
//! A [`Runbook`] is only ever built by the compiler, so holding one means it passed every
//! check of `compile.rs`. Locations are dropped here; the executor does not need them.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use crate::actions::{ActionKind, SystemdOp};
use crate::probes::ProbeKind;
use crate::runbook::diagnostic::SourceFile;

/// A compiled runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// Name (= file name).
    pub name: String,
    /// For people.
    pub title: String,
    /// Service it concerns.
    pub service: Option<String>,
    /// A key of policy severities.
    pub severity: String,
    /// Seed section it was written from.
    pub source: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The file it came from.
    pub file: Arc<SourceFile>,
    /// What starts it.
    pub triggers: Triggers,
    /// Parameters in declaration order.
    pub params: Vec<Param>,
    /// Symptoms.
    pub symptoms: Vec<Symptom>,
    /// Checks in source order.
    pub checks: Vec<Check>,
    /// Causes in order.
    pub causes: Vec<Cause>,
    /// Actions.
    pub actions: Vec<Action>,
    /// Escalation.
    pub escalation: Option<Escalation>,
}

impl Runbook {
    /// A check by id.
    #[must_use]
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
    /// An action by id.
    #[must_use]
    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.id == id)
    }
    /// A cause by id.
    #[must_use]
    pub fn cause(&self, id: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.id == id)
    }
    /// A param by name.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// What starts a runbook.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Triggers {
    /// alertname values.
    pub alerts: Vec<String>,
    /// Label matchers.
    #[serde(rename = "match")]
    pub matchers: IndexMap<String, String>,
    /// Cron expression.
    pub schedule: Option<String>,
}

/// Parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Any text.
    String,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// true / false.
    Bool,
    /// `5s`, `10m`.
    Duration,
    /// `http://` or `https://` URL.
    Url,
    /// A filesystem path.
    Path,
    /// A unit / host / identifier name: letters, digits, `@._:-`.
    Name,
    /// A list of strings.
    List,
}

impl ParamType {
    /// Every type, for messages.
    pub const ALL: &'static [(&'static str, ParamType)] = &[
        ("string", ParamType::String),
        ("int", ParamType::Int),
        ("float", ParamType::Float),
        ("bool", ParamType::Bool),
        ("duration", ParamType::Duration),
        ("url", ParamType::Url),
        ("path", ParamType::Path),
        ("name", ParamType::Name),
        ("list", ParamType::List),
    ];

    /// Look a type up by name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The type's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A typed parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Default value, already checked against the type.
    pub default: Option<serde_json::Value>,
    /// Redact everywhere.
    pub secret: bool,
    /// Alert field that sets it.
    pub from: Option<String>,
    /// The hosts a value from outside the runbook may name (empty: any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// For people.
    pub description: Option<String>,
}

/// A symptom.
#[derive(Debug, Clone, Serialize)]
pub struct Symptom {
    /// Id.
    pub id: String,
    /// Text.
    pub text: String,
    /// Expression.
    pub when: Option<String>,
}

/// `sample: {times, every}`.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Number of samples.
    pub times: u32,
    /// Interval: a duration, or a template (`{{ params.sustain_every }}`) rendered when the
    /// check runs.
    pub every: crate::runbook::value::DurationParam,
}

/// A check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Id.
    pub id: String,
    /// For people.
    pub title: Option<String>,
    /// Probe kind.
    #[serde(serialize_with = "ser_probe")]
    pub probe: ProbeKind,
    /// Probe parameters (strings may be templates).
    #[serde(rename = "with")]
    pub with: serde_json::Value,
    /// Expectation.
    pub expect: Option<String>,
    /// Guard.
    pub when: Option<String>,
    /// Explicit ordering.
    pub after: Vec<String>,
    /// Timeout.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Sampling.
    pub sample: Option<Sample>,
    /// Words for people.
    pub guidance: Option<String>,
    /// Checks this one depends on (references and `after`), in source order.
    pub deps: Vec<String>,
}

/// A cause.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    /// Id.
    pub id: String,
    /// For people.
    pub title: String,
    /// Expression.
    pub when: String,
    /// Actions in order.
    pub remedy: Vec<String>,
    /// Checks re-run after the remedy.
    pub verify: Vec<String>,
    /// Words for people.
    pub guidance: Option<String>,
    /// Escalation level to jump to.
    pub escalate: Option<String>,
    /// Checks the `when` refers to.
    pub checks: Vec<String>,
}

/// `retry:`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Retry {
    /// Attempts.
    pub attempts: u32,
    /// Backoff.
    #[serde(serialize_with = "ser_duration")]
    pub backoff: Duration,
}

/// `limit:`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limit {
    /// Max runs.
    pub max: u32,
    /// Per period.
    #[serde(serialize_with = "ser_duration")]
    pub per: Duration,
}

/// `approve:`.
#[derive(Debug, Clone, Serialize)]
pub struct Approve {
    /// Question (template).
    pub prompt: String,
    /// Wait.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
}

/// What an action does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionForm {
    /// argv.
    Run(Vec<String>),
    /// script.
    Shell(String),
    /// HTTP request.
    Http(crate::actions::http::HttpRequest),
    /// systemctl.
    Systemd {
        /// Unit.
        unit: String,
        /// Operation.
        #[serde(serialize_with = "ser_op")]
        op: SystemdOp,
        /// The program in place of `systemctl`.
        #[serde(skip_serializing_if = "Option::is_none")]
        systemctl: Option<String>,
    },
    /// Env file edit.
    SetEnv {
        /// File.
        file: String,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Timestamped copy.
    Backup {
        /// Source.
        from: String,
        /// Destination directory.
        to: String,
    },
    /// Copy back.
    Restore {
        /// Backup directory.
        from: String,
        /// Destination.
        to: String,
        /// A named backup.
        backup: Option<String>,
    },
    /// Message.
    Notify {
        /// Channel.
        channel: String,
        /// Message.
        message: String,
    },
}

/// An action.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Id.
    pub id: String,
    /// For people.
    pub title: Option<String>,
    /// Form.
    #[serde(skip)]
    pub kind: ActionKind,
    /// Parameters.
    pub form: ActionForm,
    /// Working directory for run/shell.
    pub cwd: Option<String>,
    /// Environment for run/shell.
    pub env: IndexMap<String, String>,
    /// Checks after this action.
    pub verify: Vec<String>,
    /// Retry.
    pub retry: Option<Retry>,
    /// Rate limit.
    pub limit: Option<Limit>,
    /// Undo action.
    pub rollback: Vec<String>,
    /// Temporary change.
    #[serde(serialize_with = "ser_opt_duration")]
    pub revert_after: Option<Duration>,
    /// Approval gate.
    pub approve: Option<Approve>,
    /// Timeout.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Words for people.
    pub guidance: Option<String>,
}

impl Action {
    /// True unless it only notifies.
    #[must_use]
    pub fn mutating(&self) -> bool {
        self.kind.mutating()
    }
}

/// Escalation.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    /// Ladder name.
    pub ladder: Option<String>,
    /// Next level when the problem persists this long after remediation.
    #[serde(serialize_with = "ser_opt_duration")]
    pub after_action_unresolved: Option<Duration>,
    /// Channel.
    pub channel: Option<String>,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::runbook::value::format_duration(*d))
}

#[expect(clippy::ref_option, reason = "serde's serialize_with signature")]
fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn ser_probe<S: serde::Serializer>(p: &ProbeKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn ser_op<S: serde::Serializer>(p: &SystemdOp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.verb())
}
