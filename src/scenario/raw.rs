//! The scenario file as written: serde types deserialized straight from YAML, with spans.
//!
//! Nothing here is checked against the runbook: ids may dangle and result fields may not be
//! the probe's. `compile.rs` does that and turns a [`RawScenarioFile`] into a
//! [`crate::scenario::ScenarioFile`]. Unknown keys are errors everywhere.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde_saphyr::Spanned;

use crate::runbook::node::Node;
use crate::runbook::raw::SString;

/// One scenario file: the scenarios of one runbook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenarioFile {
    /// The runbook the scenarios drive, by name.
    pub runbook: SString,
    /// Check results shared by every scenario of the file; a scenario's own `checks`
    /// replace them check by check.
    #[serde(default)]
    pub baseline: IdMap<Spanned<Node>>,
    /// The scenarios, run in order.
    pub scenarios: Vec<RawScenario>,
}

/// One scenario: given results, expected decisions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// Unique within the file; names the test case.
    pub name: SString,
    /// For people.
    #[serde(default)]
    pub description: Option<String>,
    /// Parameters, as `--set name=value` would set them.
    #[serde(default)]
    pub set: IdMap<Spanned<Node>>,
    /// The `alert` context (`labels`, `annotations`, `status`, ...), as a webhook gives it.
    #[serde(default)]
    pub alert: Option<Spanned<Node>>,
    /// Each check's probe result, by check id.
    #[serde(default)]
    pub checks: IdMap<Spanned<Node>>,
    /// Results of checks re-run as verification after a remedy: one result, or a list with
    /// one per attempt (the last answers the attempts after it). A verification check not
    /// listed answers as it did before the remedy.
    #[serde(default)]
    pub after: IdMap<Spanned<Node>>,
    /// Outcomes of actions that pass their gates: `ok` (the default) or `{failed: reason}`.
    #[serde(default)]
    pub actions: IdMap<RawActionResult>,
    /// Remediation allowed, like `--yes`.
    #[serde(default)]
    pub yes: bool,
    /// Actions approved beforehand, like `runbook approve`.
    #[serde(default)]
    pub approved: Vec<SString>,
    /// Uses of an action's `limit` already spent in its period when the run starts.
    #[serde(default)]
    pub limits_used: IdMap<Spanned<u32>>,
    /// The decision path expected.
    pub expect: RawExpect,
}

/// What an action that runs gives back in a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawActionResult {
    /// It succeeded.
    Ok,
    /// It failed, for this reason.
    Failed(String),
}

/// The decisions a scenario expects. Only `outcome` is required; a key left out is not
/// compared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// How the run ends.
    pub outcome: ExpectedOutcome,
    /// The symptoms present, exactly.
    #[serde(default)]
    pub symptoms: Option<Vec<SString>>,
    /// The causes matched, exactly and in order.
    #[serde(default)]
    pub matched: Option<Vec<SString>>,
    /// The causes ruled out, exactly.
    #[serde(default)]
    pub ruled_out: Option<Vec<SString>>,
    /// The causes left unknown, exactly.
    #[serde(default)]
    pub unknown: Option<Vec<SString>>,
    /// The status of these checks (the first run, not verification).
    #[serde(default)]
    pub checks: IdMap<CheckState>,
    /// The remedy actions attempted, exactly and in order, with their status; `not_run`
    /// says an action was not attempted. A mapping, or a list of `{action: status}` when an
    /// action runs more than once.
    #[serde(default)]
    pub actions: Option<ActionList>,
    /// The rollback actions attempted, exactly and in order, like `actions`.
    #[serde(default)]
    pub rollbacks: Option<ActionList>,
    /// Verification of these checks: one status (the last attempt's) or a list (every
    /// attempt's, in order; `[]`: not verified).
    #[serde(default)]
    pub verify: IdMap<VerifyExpect>,
    /// The highest escalation level the run asks for, or `none`.
    #[serde(default)]
    pub escalation: Option<SString>,
}

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedOutcome {
    /// Every check ok, no cause matched.
    Healthy,
    /// A cause matched, its remedy ran and verification passed.
    Remediated,
    /// A problem remains.
    ProblemRemains,
}

impl ExpectedOutcome {
    /// The name the engine gives the outcome.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ExpectedOutcome::Healthy => "healthy",
            ExpectedOutcome::Remediated => "remediated",
            ExpectedOutcome::ProblemRemains => "problem_remains",
        }
    }
}

/// A check's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Looked, `expect` held.
    Ok,
    /// Looked, `expect` did not hold (or the target did not answer).
    Failed,
    /// Could not look.
    Error,
    /// Its guard was false.
    Skipped,
    /// Nobody could answer.
    Unknown,
}

impl CheckState {
    /// The engine's name of the status.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CheckState::Ok => "ok",
            CheckState::Failed => "failed",
            CheckState::Error => "error",
            CheckState::Skipped => "skipped",
            CheckState::Unknown => "unknown",
        }
    }
}

/// An action's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Ran and succeeded.
    Ok,
    /// Ran and failed.
    Failed,
    /// Could not be prepared (a template did not render).
    Error,
    /// Not run: no `--yes`, no approval.
    NeedsApproval,
    /// Not run: its `limit` is used up.
    RateLimited,
    /// Not run: dry run.
    DryRun,
    /// Not attempted at all.
    NotRun,
}

impl ActionState {
    /// The engine's name of the status.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ActionState::Ok => "ok",
            ActionState::Failed => "failed",
            ActionState::Error => "error",
            ActionState::NeedsApproval => "needs_approval",
            ActionState::RateLimited => "rate_limited",
            ActionState::DryRun => "dry_run",
            ActionState::NotRun => "not_run",
        }
    }
}

/// The verification expected of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyExpect {
    /// The last attempt's status.
    Last(CheckState),
    /// Every attempt's status, in order.
    Each(Vec<CheckState>),
}

impl<'de> Deserialize<'de> for VerifyExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VerifyExpect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a check status (ok, failed, error, skipped, unknown) or a list of them",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VerifyExpect, E> {
                CheckState::deserialize(v.into_deserializer()).map(VerifyExpect::Last)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<VerifyExpect, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<CheckState>()? {
                    out.push(s);
                }
                Ok(VerifyExpect::Each(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Actions with their status, in order: `{a: ok, b: ok}`, or `[{a: ok}, {b: ok}, {a: ok}]`
/// where an action appears more than once.
#[derive(Debug, Default)]
pub struct ActionList(pub Vec<(SString, ActionState)>);

impl<'de> Deserialize<'de> for ActionList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActionList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of `action: status`, or a list of `{action: status}`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<ActionList, E> {
                Ok(ActionList(Vec::new()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ActionList, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<SString>()? {
                    out.push((key, map.next_value::<ActionState>()?));
                }
                Ok(ActionList(out))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ActionList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<IdMap<ActionState>>()? {
                    if item.0.len() != 1 {
                        return Err(de::Error::custom(
                            "each item of the list is one `{action: status}`",
                        ));
                    }
                    out.extend(item.0);
                }
                Ok(ActionList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping keyed by ids, in source order, each key with its location (an empty value is
/// an empty mapping).
#[derive(Debug)]
pub struct IdMap<T>(pub Vec<(SString, T)>);

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for IdMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = IdMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of ids (`id: value` lines)")
            }
            fn visit_unit<E: de::Error>(self) -> Result<IdMap<T>, E> {
                Ok(IdMap(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<IdMap<T>, E> {
                Ok(IdMap(Vec::new()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<IdMap<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<SString>()? {
                    let value = map.next_value::<T>()?;
                    out.push((key, value));
                }
                Ok(IdMap(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
