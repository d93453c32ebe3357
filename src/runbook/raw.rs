//! The runbook file as written: serde types deserialized straight from YAML, with spans.
//!
//! Nothing here is checked beyond shape: ids may dangle, templates may not parse. The
//! compiler (`compile.rs`) turns a [`RawRunbook`] into a [`crate::runbook::Runbook`].
//! Unknown keys are errors everywhere (`deny_unknown_fields`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::actions::{
    RawBackup, RawHttpAction, RawNotify, RawRestore, RawSetEnv, RawSystemdAction,
};
use crate::runbook::node::Node;
use crate::runbook::value::IdList;

/// A string with its location.
pub type SString = Spanned<String>;

/// One runbook file (format v1).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "runbook", description = "A runbook-as-code file (format v1).")]
pub struct RawRunbook {
    /// The runbook's name; must equal the file name without `.yaml`.
    #[schemars(with = "String")]
    pub runbook: SString,
    /// One line for people.
    pub title: String,
    /// The service this runbook is about.
    #[serde(default)]
    pub service: Option<String>,
    /// A key of `policy.yaml` severities (P0–P3).
    #[schemars(with = "String")]
    pub severity: SString,
    /// Where in the seed document this procedure comes from (`file.md#anchor`).
    #[serde(default)]
    pub source: Option<String>,
    /// Free text shown with the runbook.
    #[serde(default)]
    pub description: Option<String>,
    /// What starts this runbook besides the CLI.
    #[serde(default)]
    pub triggers: RawTriggers,
    /// Typed parameters, set by `--set k=v`, alert labels or defaults.
    #[serde(default)]
    pub params: IndexMap<String, RawParam>,
    /// What a person sees; a symptom with `when` is evaluated from the checks.
    #[serde(default)]
    pub symptoms: Vec<RawSymptom>,
    /// Read-only observations.
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    /// Likely causes, in order.
    #[serde(default)]
    pub causes: Vec<RawCause>,
    /// Fixes and notifications.
    #[serde(default)]
    pub actions: Vec<RawAction>,
    /// The escalation ladder to climb when the problem remains.
    #[serde(default)]
    pub escalation: Option<RawEscalation>,
}

/// What starts a runbook.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTriggers {
    /// `alertname` values that start this runbook.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// Label matchers an alert must also satisfy.
    #[serde(default, rename = "match")]
    pub matchers: IndexMap<String, String>,
    /// A 5-field cron expression, run by `runbook serve`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub schedule: Option<SString>,
}

/// A typed parameter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    /// string, int, float, bool, duration, url, path, name or list.
    #[serde(rename = "type")]
    #[schemars(with = "ParamTypeName")]
    pub ty: SString,
    /// The value when nothing else sets it.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<Spanned<Node>>,
    /// Never shown, stored or logged: redacted to `***`.
    #[serde(default)]
    pub secret: bool,
    /// Alert field that sets it, e.g. `alert.labels.instance`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub from: Option<SString>,
    /// The hosts a value from outside the runbook (an alert, `--set`, a generic delivery) may
    /// name: a `url`'s host, or a `name`/`string` value itself. Exact names or addresses, or
    /// `*.example.com` for any name under `example.com`. A value naming another host is
    /// refused (an alert's: the default stays).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub hosts: Option<Vec<SString>>,
    /// For people.
    #[serde(default)]
    pub description: Option<String>,
}

/// The names of parameter types (for the JSON Schema only).
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "exists only to describe the schema")]
enum ParamTypeName {
    String,
    Int,
    Float,
    Bool,
    Duration,
    Url,
    Path,
    Name,
    List,
}

/// A symptom a person reports or a check reveals.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSymptom {
    /// Unique id.
    #[schemars(with = "String")]
    pub id: SString,
    /// What it looks like.
    pub text: String,
    /// Expression that says the symptom is present.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<SString>,
}

/// A read-only observation made by a probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Unique id.
    #[schemars(with = "String")]
    pub id: SString,
    /// For people.
    #[serde(default)]
    pub title: Option<String>,
    /// The probe kind (`http`, `file`, ...).
    #[schemars(with = "String")]
    pub probe: SString,
    /// The probe's parameters; strings may be templates.
    #[serde(default, rename = "with")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub with: Option<Spanned<Node>>,
    /// Expression over the probe's result fields: true means ok.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub expect: Option<SString>,
    /// Guard: the check runs only when this is true.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<SString>,
    /// Checks that must run first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub after: Vec<SString>,
    /// How long the probe may take (default 10s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<SString>,
    /// Run the probe several times and record each value.
    #[serde(default)]
    pub sample: Option<RawSample>,
    /// The seed's words for a person.
    #[serde(default)]
    pub guidance: Option<String>,
}

/// `sample: {times, every}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSample {
    /// How many samples (2..=100).
    #[schemars(with = "u32")]
    pub times: Spanned<u32>,
    /// Interval between samples.
    #[schemars(with = "String")]
    pub every: SString,
}

/// A likely cause.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCause {
    /// Unique id.
    #[schemars(with = "String")]
    pub id: SString,
    /// For people.
    pub title: String,
    /// Expression: the cause is matched when true.
    #[schemars(with = "String")]
    pub when: SString,
    /// Actions to run, in order, when matched.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub remedy: Vec<SString>,
    /// Checks that must pass again after the remedy.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub verify: Vec<SString>,
    /// The seed's words for a person.
    #[serde(default)]
    pub guidance: Option<String>,
    /// Jump straight to this escalation level when matched (e.g. `L2`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub escalate: Option<SString>,
}

/// An action: exactly one of the forms `run`, `shell`, `http`, `systemd`, `set_env`,
/// `backup`, `restore`, `notify`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    /// Unique id.
    #[schemars(with = "String")]
    pub id: SString,
    /// For people.
    #[serde(default)]
    pub title: Option<String>,
    /// Argv; each element may be a template; no shell.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub run: Option<Spanned<Vec<SString>>>,
    /// A shell script; no `{{ }}` inside, dynamic values only through `env`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub shell: Option<SString>,
    /// Working directory for `run` / `shell` (a template allowed); default `/`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub cwd: Option<SString>,
    /// Environment for `run` / `shell`; values may be templates.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub env: IndexMap<String, SString>,
    /// An HTTP request.
    #[serde(default)]
    #[schemars(with = "Option<RawHttpAction>")]
    pub http: Option<Spanned<RawHttpAction>>,
    /// `systemctl <op> <unit>`.
    #[serde(default)]
    #[schemars(with = "Option<RawSystemdAction>")]
    pub systemd: Option<Spanned<RawSystemdAction>>,
    /// Atomic edit of a `KEY=value` environment file, backup kept.
    #[serde(default)]
    #[schemars(with = "Option<RawSetEnv>")]
    pub set_env: Option<Spanned<RawSetEnv>>,
    /// Timestamped copy of a file or directory.
    #[serde(default)]
    #[schemars(with = "Option<RawBackup>")]
    pub backup: Option<Spanned<RawBackup>>,
    /// Copy back from the newest (or a named) backup.
    #[serde(default)]
    #[schemars(with = "Option<RawRestore>")]
    pub restore: Option<Spanned<RawRestore>>,
    /// A message to a notification channel (not mutating).
    #[serde(default)]
    #[schemars(with = "Option<RawNotify>")]
    pub notify: Option<Spanned<RawNotify>>,
    /// Checks that must pass after this action.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub verify: Vec<SString>,
    /// Re-verification attempts with backoff.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// At most `max` runs `per` period, persisted across processes.
    #[serde(default)]
    pub limit: Option<RawLimit>,
    /// Action(s) that undo this one, run in order when verification fails or after
    /// `revert_after` (e.g. restore the old value, then restart the service).
    #[serde(default)]
    #[schemars(with = "Option<IdList>")]
    pub rollback: Option<Spanned<IdList>>,
    /// A temporary change: run `rollback` after this long.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub revert_after: Option<SString>,
    /// Ask a person before running.
    #[serde(default)]
    pub approve: Option<RawApprove>,
    /// How long the action may take (default 60s).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<SString>,
    /// The seed's words for a person.
    #[serde(default)]
    pub guidance: Option<String>,
}

/// `retry: {attempts, backoff}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Verification attempts (1..=20).
    #[schemars(with = "u32")]
    pub attempts: Spanned<u32>,
    /// Wait between attempts.
    #[schemars(with = "String")]
    pub backoff: SString,
}

/// `limit: {max, per}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// Runs allowed per period.
    #[schemars(with = "u32")]
    pub max: Spanned<u32>,
    /// The period.
    #[schemars(with = "String")]
    pub per: SString,
}

/// `approve: {prompt, timeout}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApprove {
    /// The question; may be a template.
    #[schemars(with = "String")]
    pub prompt: SString,
    /// How long to wait for an answer (default 5m).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<SString>,
}

/// `escalation: {ladder, after_action_unresolved}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// A key of `policy.yaml` ladders; default from the severity.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ladder: Option<SString>,
    /// The symptom persists this long after remediation: next level.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub after_action_unresolved: Option<SString>,
    /// Notification channel for escalations (a key of policy channels).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub channel: Option<SString>,
}
