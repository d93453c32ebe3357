//! The step graph: checks in topological waves (each wave can run concurrently), then
//! symptoms, causes in order with their remedies, verification and escalation. Templates
//! are rendered with the parameters; whatever needs the host or an alert stays a template,
//! marked "at run time". Building a plan touches no host.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::runbook::expr;
use crate::runbook::model::{Action, ActionForm, Check, Runbook};
use crate::runbook::param;
use crate::runbook::policy::Policy;
use crate::runbook::value::{DurationParam, format_duration, is_template};

/// Shown instead of a secret value.
pub const REDACTED: &str = "***";

/// Where a parameter's value came from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParamSource {
    /// The runbook's default.
    Default,
    /// `--set`.
    Set,
    /// Filled from the alert at run time.
    Alert,
    /// Nothing sets it.
    Unset,
}

/// A parameter as the plan sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedParam {
    /// Name.
    pub name: String,
    /// Value (redacted when secret); null when unset.
    pub value: Value,
    /// Source.
    pub source: ParamSource,
    /// Secret.
    pub secret: bool,
}

/// A check in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCheck {
    /// Id.
    pub id: String,
    /// Probe name.
    pub probe: &'static str,
    /// Parameters, rendered where possible.
    #[serde(rename = "with")]
    pub with: Value,
    /// Guard.
    pub when: Option<String>,
    /// Expectation.
    pub expect: Option<String>,
    /// Timeout.
    pub timeout: String,
    /// Sampling, as `times × every`.
    pub sample: Option<String>,
    /// Checks it waits for.
    pub after: Vec<String>,
    /// Some value can only be rendered at run time.
    pub at_run_time: bool,
    /// Words for people.
    pub guidance: Option<String>,
}

/// An action in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedAction {
    /// Id.
    pub id: String,
    /// Form.
    pub kind: &'static str,
    /// Changes the host.
    pub mutating: bool,
    /// What it will do, rendered.
    pub summary: String,
    /// Some value can only be rendered at run time.
    pub at_run_time: bool,
    /// Needs approval (`approve:` prompt).
    pub approve: Option<String>,
    /// Rate limit.
    pub limit: Option<String>,
    /// Retry.
    pub retry: Option<String>,
    /// Checks after this action.
    pub verify: Vec<String>,
    /// Undo action.
    pub rollback: Vec<PlannedAction>,
    /// Temporary change: reverted after this long.
    pub revert_after: Option<String>,
    /// Words for people.
    pub guidance: Option<String>,
}

/// A cause in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCause {
    /// Id.
    pub id: String,
    /// For people.
    pub title: String,
    /// Expression.
    pub when: String,
    /// Remedy, in order.
    pub remedy: Vec<PlannedAction>,
    /// Checks re-run after the remedy.
    pub verify: Vec<String>,
    /// Level to jump to.
    pub escalate: Option<String>,
    /// Words for people.
    pub guidance: Option<String>,
}

/// A level of the escalation ladder.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedLevel {
    /// Id.
    pub id: String,
    /// Who.
    pub name: String,
    /// After how long unresolved at the previous level.
    pub after_unresolved: String,
}

/// Escalation in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedEscalation {
    /// Ladder name.
    pub ladder: Option<String>,
    /// Levels.
    pub levels: Vec<PlannedLevel>,
    /// Next level when the problem persists this long after remediation.
    pub after_action_unresolved: Option<String>,
}

/// A symptom in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedSymptom {
    /// Id.
    pub id: String,
    /// Text.
    pub text: String,
    /// Expression.
    pub when: Option<String>,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Runbook name.
    pub runbook: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// Service.
    pub service: Option<String>,
    /// Seed section.
    pub source: Option<String>,
    /// Parameters.
    pub params: Vec<PlannedParam>,
    /// Checks in waves.
    pub waves: Vec<Vec<PlannedCheck>>,
    /// Symptoms.
    pub symptoms: Vec<PlannedSymptom>,
    /// Causes in order.
    pub causes: Vec<PlannedCause>,
    /// Escalation.
    pub escalation: Option<PlannedEscalation>,
}

/// Why a plan cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `--set` names a param the runbook does not have.
    #[error("runbook `{runbook}` has no param `{name}`{hint}")]
    UnknownParam {
        /// Runbook.
        runbook: String,
        /// Param.
        name: String,
        /// Suggestion.
        hint: String,
    },
    /// `--set` value does not fit the type.
    #[error("param `{name}`: {message}")]
    BadValue {
        /// Param.
        name: String,
        /// Why.
        message: String,
    },
    /// `--set` without `=`.
    #[error("`--set {0}`: write `--set name=value`")]
    BadSet(String),
}

/// Topological waves of checks: each wave depends only on earlier waves; source order kept.
#[must_use]
pub fn waves(checks: &[Check]) -> Vec<Vec<&Check>> {
    let mut done: HashSet<&str> = HashSet::new();
    let mut left: Vec<&Check> = checks.iter().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let (ready, rest): (Vec<&Check>, Vec<&Check>) = left
            .into_iter()
            .partition(|c| c.deps.iter().all(|d| done.contains(d.as_str())));
        if ready.is_empty() {
            // A cycle: the compiler refuses these, but never loop.
            out.push(rest);
            break;
        }
        done.extend(ready.iter().map(|c| c.id.as_str()));
        out.push(ready);
        left = rest;
    }
    out
}

impl Plan {
    /// Build the plan for a runbook with `--set` overrides.
    ///
    /// # Errors
    /// Unknown params or values that do not fit their type.
    #[expect(clippy::too_many_lines, reason = "one straight pass over the runbook")]
    pub fn build(
        rb: &Runbook,
        policy: Option<&Policy>,
        sets: &[String],
    ) -> Result<Plan, PlanError> {
        let mut values = resolve_params(rb, sets)?;
        let set_names: HashSet<&str> = sets
            .iter()
            .filter_map(|s| s.split_once('=').map(|(k, _)| k))
            .collect();
        let mut params = Vec::new();
        let mut ctx_params = Map::new();
        for p in &rb.params {
            let value = values.remove(&p.name);
            let source = match (&value, &p.from) {
                _ if set_names.contains(p.name.as_str()) => ParamSource::Set,
                (Some(_), _) => ParamSource::Default,
                (None, Some(_)) => ParamSource::Alert,
                (None, None) => ParamSource::Unset,
            };
            if let Some(v) = &value {
                let shown = if p.secret {
                    Value::String(REDACTED.into())
                } else {
                    v.clone()
                };
                ctx_params.insert(p.name.clone(), shown);
            }
            params.push(PlannedParam {
                name: p.name.clone(),
                value: match (&value, p.secret) {
                    (Some(_), true) => Value::String(REDACTED.into()),
                    (Some(v), false) => v.clone(),
                    (None, _) => Value::Null,
                },
                source,
                secret: p.secret,
            });
        }
        let ctx = serde_json::json!({ "params": Value::Object(ctx_params) });
        let render = |s: &str| -> (String, bool) {
            if !is_template(s) {
                return (s.to_owned(), false);
            }
            match expr::render(s, &ctx) {
                Ok(r) => (r, false),
                Err(_) => (s.to_owned(), true),
            }
        };

        let waves = waves(&rb.checks)
            .into_iter()
            .map(|wave| {
                wave.into_iter()
                    .map(|c| {
                        let mut deferred = false;
                        let with = render_json(&c.with, &mut |s| {
                            let (r, d) = render(s);
                            deferred |= d;
                            r
                        });
                        PlannedCheck {
                            id: c.id.clone(),
                            probe: c.probe.name(),
                            with,
                            when: c.when.clone(),
                            expect: c.expect.clone(),
                            timeout: format_duration(c.timeout),
                            sample: c.sample.as_ref().map(|s| {
                                let every = match &s.every {
                                    DurationParam::Fixed(d) => format_duration(*d),
                                    DurationParam::Template(t) => {
                                        let (r, d) = render(t);
                                        deferred |= d;
                                        r
                                    }
                                };
                                format!("{} × every {every}", s.times)
                            }),
                            after: c.deps.clone(),
                            at_run_time: deferred,
                            guidance: c.guidance.clone(),
                        }
                    })
                    .collect()
            })
            .collect();

        let plan_action = |a: &Action| -> PlannedAction { plan_action(rb, a, &render, 0) };
        let causes = rb
            .causes
            .iter()
            .map(|c| PlannedCause {
                id: c.id.clone(),
                title: c.title.clone(),
                when: c.when.clone(),
                remedy: c
                    .remedy
                    .iter()
                    .filter_map(|r| rb.action(r))
                    .map(plan_action)
                    .collect(),
                verify: c.verify.clone(),
                escalate: c.escalate.clone(),
                guidance: c.guidance.clone(),
            })
            .collect();

        let escalation = rb.escalation.as_ref().map(|e| {
            let levels = policy
                .and_then(|p| p.ladder_for(e.ladder.as_deref(), &rb.severity))
                .map(|(_, l)| {
                    l.levels
                        .iter()
                        .map(|lv| PlannedLevel {
                            id: lv.id.clone(),
                            name: lv.name.clone(),
                            after_unresolved: format_duration(lv.after()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            PlannedEscalation {
                ladder: e.ladder.clone().or_else(|| {
                    policy.and_then(|p| p.severities.get(&rb.severity)?.ladder.clone())
                }),
                levels,
                after_action_unresolved: e.after_action_unresolved.map(format_duration),
            }
        });

        Ok(Plan {
            runbook: rb.name.clone(),
            title: rb.title.clone(),
            severity: rb.severity.clone(),
            service: rb.service.clone(),
            source: rb.source.clone(),
            params,
            waves,
            symptoms: rb
                .symptoms
                .iter()
                .map(|s| PlannedSymptom {
                    id: s.id.clone(),
                    text: s.text.clone(),
                    when: s.when.clone(),
                })
                .collect(),
            causes,
            escalation,
        })
    }

    /// Every check in execution order.
    pub fn checks(&self) -> impl Iterator<Item = &PlannedCheck> {
        self.waves.iter().flatten()
    }
}

fn plan_action(
    rb: &Runbook,
    a: &Action,
    render: &dyn Fn(&str) -> (String, bool),
    depth: usize,
) -> PlannedAction {
    let mut deferred = false;
    let mut r = |s: &str| {
        let (out, d) = render(s);
        deferred |= d;
        out
    };
    let summary = match &a.form {
        ActionForm::Run(argv) => argv
            .iter()
            .map(|s| shell_quote(&r(s)))
            .collect::<Vec<_>>()
            .join(" "),
        ActionForm::Shell(script) => {
            let env: Vec<String> = a
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", shell_quote(&r(v))))
                .collect();
            format!(
                "{}sh -c {}",
                if env.is_empty() {
                    String::new()
                } else {
                    env.join(" ") + " "
                },
                shell_quote(script)
            )
        }
        ActionForm::Http(req) => {
            let body = req
                .body
                .as_deref()
                .map(|b| format!(" body={}", r(b)))
                .unwrap_or_default();
            format!("{} {}{body}", req.method.as_reqwest(), r(&req.url))
        }
        ActionForm::Systemd {
            unit,
            op,
            systemctl,
        } => format!(
            "{} {} {}",
            systemctl
                .as_deref()
                .map_or_else(|| "systemctl".to_owned(), &mut r),
            op.verb(),
            r(unit)
        ),
        ActionForm::SetEnv { file, key, value } => {
            format!("set {}={} in {}", r(key), r(value), r(file))
        }
        ActionForm::Backup { from, to } => {
            format!("copy {} to {}/<name>.<timestamp>", r(from), r(to))
        }
        ActionForm::Restore { from, to, backup } => format!(
            "restore {} from {} in {}",
            r(to),
            backup
                .as_deref()
                .map_or_else(|| "the newest backup".to_owned(), &mut r),
            r(from)
        ),
        ActionForm::Notify { channel, message } => format!("notify {channel}: {}", r(message)),
    };
    let rollback = if depth < 2 {
        a.rollback
            .iter()
            .filter_map(|id| rb.action(id))
            .map(|rb_a| plan_action(rb, rb_a, render, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    PlannedAction {
        id: a.id.clone(),
        kind: a.kind.name(),
        mutating: a.mutating(),
        summary,
        at_run_time: deferred,
        approve: a.approve.as_ref().map(|ap| render(&ap.prompt).0),
        limit: a
            .limit
            .map(|l| format!("{} per {}", l.max, format_duration(l.per))),
        retry: a
            .retry
            .map(|rt| format!("{} × {}", rt.attempts, format_duration(rt.backoff))),
        verify: a.verify.clone(),
        rollback,
        revert_after: a.revert_after.map(format_duration),
        guidance: a.guidance.clone(),
    }
}

fn render_json(v: &Value, f: &mut dyn FnMut(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => Value::Array(items.iter().map(|i| render_json(i, f)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), render_json(v, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Quote an argv element for display the way a POSIX shell would read it back.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `5s` style, for callers that have a `Duration`.
#[must_use]
pub fn dur(d: Duration) -> String {
    format_duration(d)
}

/// Parameter values for a run: `--set` over defaults (real values, secrets included).
/// Params with neither are left out; templates that read them fail at run time.
///
/// # Errors
/// Unknown params or values that do not fit their type.
pub fn resolve_params(rb: &Runbook, sets: &[String]) -> Result<Map<String, Value>, PlanError> {
    let mut out = Map::new();
    for p in &rb.params {
        if let Some(d) = &p.default {
            out.insert(p.name.clone(), d.clone());
        }
    }
    for set in sets {
        let (k, v) = set
            .split_once('=')
            .ok_or_else(|| PlanError::BadSet(set.clone()))?;
        let Some(p) = rb.param(k) else {
            let hint =
                crate::runbook::compile::suggest(k, rb.params.iter().map(|p| p.name.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
            return Err(PlanError::UnknownParam {
                runbook: rb.name.clone(),
                name: k.to_owned(),
                hint,
            });
        };
        let value = param::admit(p, v).map_err(|message| PlanError::BadValue {
            name: k.to_owned(),
            message,
        })?;
        out.insert(k.to_owned(), value);
    }
    Ok(out)
}
