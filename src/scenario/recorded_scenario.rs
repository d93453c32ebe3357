//! A recorded run made into a scenario (`runbook replay RUN --emit-scenario`): a real
//! incident's run becomes a regression test of the runbook's decisions.
//!
//! The scenario gives what the run saw, reduced to what a scenario may give, and expects
//! what it decided:
//!
//! - `checks`: each check's first recorded result: its probe's own result fields (no field
//!   the engine computes: `ok`, `state`, `duration_ms`, `delta`, `rate_per_s`, ...; no
//!   `status` the engine filled in with the check's state; no null), `values` for a sampled
//!   check, `{answer: ..}` for a `manual` one, or `{unreachable: reason}`, `{error: reason}`,
//!   `{unknown: reason}` as the run saw them. A check whose `expect` could not be evaluated
//!   gives the fields the probe saw, so today's `expect` judges them. A check its guard
//!   skipped is left out: the probe was not asked.
//! - `after`: each verification attempt's result, the same way (a list when several);
//! - `actions`: the outcome of each action that ran (`ok`, `{failed: reason}`);
//! - `yes` / `approved` / `limits_used`: the run's gates, as a replay sets them up
//!   ([`RecordedGates`]); `set`: the parameters that differ from the runbook's defaults
//!   (so that a changed default is a changed decision), secrets left out (the audit trail
//!   holds them as `***`); `alert`: the run's alert;
//! - `expect`: every decision the run recorded: outcome, symptoms present, causes matched,
//!   ruled out and unknown, each check's status, the actions and rollbacks with their
//!   statuses, every verification, the escalation level.
//!
//! What a scenario cannot say is said in comments above it (see [`RecordedScenario::notes`]).
//! A dry run, an unfinished run and a run that ended in a fault have no scenario.

use serde_json::{Map, Value, json};

use crate::runbook::model::{Check, Runbook};
use crate::runbook::{Catalog, Diagnostic, SourceFile};
use crate::scenario::decision_path::{Decided, DecisionPath};
use crate::scenario::raw::RawScenarioFile;
use crate::scenario::replay::{RecordedGates, RecordedRun, RecordedStep};
use crate::scenario::verdict::{ScenarioResult, run_file};
use crate::scenario::yaml_writer::{Item, Yaml};

/// Fields of a recorded check that a scenario does not give: the engine's verdict and what it
/// computes or measures, and the `unreachable` / `reason` pair a scenario writes as one key.
const NOT_GIVEN: &[&str] = &[
    "ok",
    "failed",
    "error",
    "skipped",
    "unknown",
    "state",
    "duration_ms",
    "delta",
    "rate_per_s",
    "reason",
    "unreachable",
];

/// The action statuses an expectation can name.
const ACTION_STATES: &[&str] = &[
    "ok",
    "failed",
    "error",
    "needs_approval",
    "rate_limited",
    "dry_run",
];

/// A scenario made from a recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedScenario {
    /// The runbook's name.
    pub runbook: String,
    /// The scenario's name.
    pub name: String,
    /// What the scenario cannot reproduce or left out, for the comments above it.
    pub notes: Vec<String>,
    /// The run it was made from.
    run_id: String,
    /// The entry of `scenarios:`.
    scenario: Yaml,
}

impl RecordedScenario {
    /// The scenario of `run` for runbook `rb` (`levels`: its escalation levels, lowest
    /// first), named `name` or `run <id>: <outcome>`; `assume_yes` gives it `yes: true` as
    /// `runbook replay --yes` assumes consent.
    ///
    /// # Errors
    /// The run has no scenario: a dry run, unfinished, ended in a fault, or a step status a
    /// scenario cannot expect.
    pub fn new(
        rb: &Runbook,
        levels: &[String],
        run: &RecordedRun,
        name: Option<&str>,
        assume_yes: bool,
    ) -> Result<Self, String> {
        let outcome = match run.outcome.as_deref() {
            Some(o @ ("healthy" | "remediated" | "problem_remains")) => o,
            Some(o) => {
                return Err(format!(
                    "run `{}` ended in `{o}`: a scenario expects `healthy`, `remediated` or `problem_remains`",
                    run.id
                ));
            }
            None => {
                return Err(format!(
                    "run `{}` has not finished: it has no outcome to expect",
                    run.id
                ));
            }
        };
        if run.mode == "dry_run" {
            return Err(format!(
                "run `{}` was a dry run: a scenario decides as a real run, so its actions would not be `dry_run`",
                run.id
            ));
        }
        let mut b = Builder {
            rb,
            run,
            notes: Vec::new(),
        };
        let name = name.map_or_else(|| format!("run {}: {outcome}", run.id), str::to_owned);
        let mut items = vec![
            Item::pair("name", json!(name)),
            Item::pair(
                "description",
                json!(format!(
                    "recorded run {} on {}, started {}, trigger {}",
                    run.id, run.host, run.started_at, run.trigger
                )),
            ),
        ];
        items.extend(b.set());
        if let Some(alert) = &run.alert {
            items.push(Item::pair("alert", alert.clone()));
        }
        items.push(Item::pair("checks", Yaml::Map(b.checks())));
        let after = b.after();
        if !after.is_empty() {
            items.push(Item::pair("after", Yaml::Map(after)));
        }
        items.push(Item::pair("actions", Yaml::Map(b.actions())));
        items.extend(b.gates(assume_yes));
        items.push(Item::pair(
            "expect",
            Yaml::Map(expect(&run.path(), outcome, levels)?),
        ));
        Ok(RecordedScenario {
            runbook: rb.name.clone(),
            name,
            notes: b.notes,
            run_id: run.id.clone(),
            scenario: Yaml::Map(items),
        })
    }

    /// The scenario file: `runbook:` and `scenarios:` with this one scenario, comments on
    /// top saying where it comes from and what it could not say.
    #[must_use]
    pub fn to_yaml(&self) -> String {
        let mut header = vec![
            format!(
                "Made by `runbook replay {} --emit-scenario` from the results",
                self.run_id
            ),
            "the run recorded, with the decisions it took as what to expect. Keep it in".into(),
            format!(
                "runbooks/tests/ (as {}.yaml, or add the scenario to that file):",
                self.runbook
            ),
            "`runbook test` fails when the runbook decides otherwise.".into(),
        ];
        for n in &self.notes {
            header.push(format!("note: {n}"));
        }
        Yaml::Map(vec![
            Item::pair("runbook", json!(self.runbook)),
            Item::pair("scenarios", Yaml::Seq(vec![self.scenario.clone()])),
        ])
        .render(&header)
    }
}

/// Run the scenario file `text` against the runbooks of `cat`, as `runbook test` does.
///
/// # Errors
/// The file does not load or does not fit its runbook (every problem, located in `text`).
pub fn try_scenario(
    rt: &tokio::runtime::Runtime,
    cat: &Catalog,
    text: &str,
) -> Result<Vec<ScenarioResult>, Vec<Diagnostic>> {
    let max = crate::runbook::load::MAX_FILE_BYTES;
    if text.len() as u64 > max {
        return Err(vec![Diagnostic::error(
            "file-too-large",
            format!(
                "the scenario is {} bytes; a scenario file may have {max}",
                text.len()
            ),
        )]);
    }
    let src = SourceFile::new("(emitted scenario)", text);
    let raw: RawScenarioFile = crate::runbook::load::parse(&src).map_err(|d| vec![d])?;
    let file = crate::scenario::compile::compile(&src, &raw, cat)?;
    Ok(run_file(rt, &file, cat))
}

/// Builds the given part of the scenario, collecting notes.
struct Builder<'a> {
    rb: &'a Runbook,
    run: &'a RecordedRun,
    notes: Vec<String>,
}

impl<'a> Builder<'a> {
    fn note(&mut self, text: String) {
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }

    /// `set:` with the parameters that differ from their defaults; a comment for secrets.
    fn set(&mut self) -> Vec<Item> {
        let mut set = Vec::new();
        let mut secrets = Vec::new();
        for p in &self.rb.params {
            let Some(v) = self.run.params.get(&p.name).filter(|v| !v.is_null()) else {
                continue;
            };
            if p.secret {
                secrets.push(if p.default.is_some() {
                    format!("`{}`", p.name)
                } else {
                    format!(
                        "`{}` (no default: give a stand-in if a template needs it)",
                        p.name
                    )
                });
                continue;
            }
            if p.default.as_ref() == Some(v) {
                continue;
            }
            let value = match v {
                // A list is set as `a,b`, as `--set` takes it.
                Value::Array(items) => {
                    let texts: Vec<String> = items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect();
                    if texts.iter().any(|t| t.contains(',')) {
                        self.note(format!(
                            "param `{}`: an item holds a comma, which `set:` cannot say: left out",
                            p.name
                        ));
                        continue;
                    }
                    json!(texts.join(","))
                }
                Value::Object(_) => {
                    self.note(format!(
                        "param `{}` is not a scalar: left out of `set:`",
                        p.name
                    ));
                    continue;
                }
                scalar => scalar.clone(),
            };
            set.push(Item::pair(p.name.clone(), value));
        }
        let mut items = Vec::new();
        if !secrets.is_empty() {
            items.push(Item::Comment(format!(
                "secret param(s) left out, as the audit trail holds them redacted (`***`): {}",
                secrets.join(", ")
            )));
        }
        if !set.is_empty() {
            items.push(Item::pair("set", Yaml::Map(set)));
        }
        items
    }

    /// The check of a recorded step, or a note saying why it gives nothing.
    fn check(&mut self, s: &RecordedStep, what: &str) -> Option<&'a Check> {
        let rb: &'a Runbook = self.rb;
        let check = rb.check(&s.id);
        if check.is_none() {
            self.note(format!(
                "{what} `{}` is not in runbook `{}`: left out",
                s.id, self.rb.name
            ));
        }
        check
    }

    /// `checks:`, the first recorded result of each check, in run order.
    fn checks(&mut self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let run = self.run;
        for s in run.steps.iter().filter(|s| s.kind == "check") {
            if seen.contains(&s.id.as_str()) {
                continue;
            }
            seen.push(&s.id);
            if s.status.as_deref() == Some("skipped") {
                items.push(Item::Comment(format!(
                    "`{}`: skipped by its guard, not asked",
                    s.id
                )));
                continue;
            }
            let Some(check) = self.check(s, "check") else {
                continue;
            };
            match given(check, s) {
                Ok(g) => {
                    self.rate_note(check, s);
                    items.push(Item::pair(s.id.clone(), g));
                }
                Err(why) => self.note(format!("check `{}`: {why}: left out", s.id)),
            }
        }
        items
    }

    /// `after:`, every verification attempt's result by check: one, or a list.
    fn after(&mut self) -> Vec<Item> {
        let mut order: Vec<String> = Vec::new();
        let mut by_id: Vec<Vec<Value>> = Vec::new();
        let run = self.run;
        for s in run.steps.iter().filter(|s| s.kind == "verify") {
            // A skipped attempt did not ask the probe; neither will the scenario's.
            if s.status.as_deref() == Some("skipped") {
                continue;
            }
            let Some(check) = self.check(s, "verified check") else {
                continue;
            };
            let g = match given(check, s) {
                Ok(g) => g,
                Err(why) => {
                    self.note(format!("verification of `{}`: {why}: left out", s.id));
                    continue;
                }
            };
            self.rate_note(check, s);
            if let Some(i) = order.iter().position(|id| *id == s.id) {
                by_id[i].push(g);
            } else {
                order.push(s.id.clone());
                by_id.push(vec![g]);
            }
        }
        order
            .into_iter()
            .zip(by_id)
            .map(|(id, mut results)| {
                let v = if results.len() == 1 {
                    results.remove(0)
                } else {
                    Value::Array(results)
                };
                Item::pair(id, v)
            })
            .collect()
    }

    /// `actions:`, the outcome of each action that ran (remedy or rollback).
    fn actions(&mut self) -> Vec<Item> {
        let mut given: Vec<(String, Value)> = Vec::new();
        let run = self.run;
        for s in &run.steps {
            if !matches!(s.kind.as_str(), "action" | "rollback") {
                continue;
            }
            let outcome = match s.status.as_deref() {
                Some("ok") => json!("ok"),
                Some("failed") => json!({ "failed": s.decided_by.as_deref().unwrap_or("failed") }),
                // Not run (gates), or could not be prepared: no outcome to give.
                _ => continue,
            };
            if self.rb.action(&s.id).is_none() {
                self.note(format!(
                    "action `{}` is not in runbook `{}`: left out",
                    s.id, self.rb.name
                ));
                continue;
            }
            match given.iter().find(|(id, _)| *id == s.id) {
                None => given.push((s.id.clone(), outcome)),
                // `ok` is a string, `{failed: reason}` a mapping: reasons aside.
                Some((_, first)) if first.is_string() != outcome.is_string() => self.note(format!(
                    "action `{}` ran more than once with different outcomes; a scenario gives one outcome per action: the first",
                    s.id
                )),
                Some(_) => {}
            }
        }
        given.into_iter().map(|(id, v)| Item::pair(id, v)).collect()
    }

    /// `yes` / `approved` / `limits_used`, as a replay sets the run's gates up.
    fn gates(&self, assume_yes: bool) -> Vec<Item> {
        let gates = RecordedGates::of(self.rb, self.run, assume_yes);
        let mut items = Vec::new();
        if gates.yes {
            items.push(Item::pair("yes", json!(true)));
        } else if !gates.approved.is_empty() {
            items.push(Item::pair("approved", json!(gates.approved)));
        }
        let used: Map<String, Value> = gates
            .used_up
            .iter()
            .filter_map(|id| {
                let limit = self.rb.action(id)?.limit?;
                Some((id.clone(), json!(limit.max)))
            })
            .collect();
        if !used.is_empty() {
            items.push(Item::pair("limits_used", Value::Object(used)));
        }
        items
    }

    /// A note when check `c`'s decisions read `rate_per_s`, which a scenario recomputes over
    /// the nominal sampling time instead of the time the run measured.
    fn rate_note(&mut self, c: &Check, s: &RecordedStep) {
        let result = s.result.as_ref();
        let measured = result
            .and_then(|r| Some(r.get("delta")?.as_f64()? / r.get("rate_per_s")?.as_f64()?))
            .filter(|secs| secs.is_finite() && *secs > 0.0);
        let Some(secs) = measured else {
            return;
        };
        let field = format!("{}.rate_per_s", c.id);
        let read = c
            .expect
            .as_deref()
            .is_some_and(|e| e.contains("rate_per_s"))
            || self.rb.causes.iter().any(|x| x.when.contains(&field))
            || self
                .rb
                .symptoms
                .iter()
                .any(|x| x.when.as_deref().is_some_and(|w| w.contains(&field)));
        if read {
            self.note(format!(
                "check `{}`: `rate_per_s` is recomputed over the nominal sampling time, not the {secs:.3} s the run measured",
                c.id
            ));
        }
    }
}

/// A recorded check result as a scenario gives it; `Err` says why there is none.
fn given(check: &Check, s: &RecordedStep) -> Result<Value, String> {
    let status = s.status.as_deref().unwrap_or("interrupted");
    let result = s.result.as_ref().unwrap_or(&Value::Null);
    let reason = || {
        result
            .get("reason")
            .and_then(Value::as_str)
            .or(s.decided_by.as_deref())
            .unwrap_or(status)
            .to_owned()
    };
    // An `expect` that could not be evaluated: the probe answered, today's `expect` judges.
    let judged = s
        .decided_by
        .as_deref()
        .is_some_and(|d| d.starts_with("expect: "));
    match status {
        "ok" | "failed" => {}
        "error" if judged => {}
        "error" => return Ok(json!({ "error": reason() })),
        "unknown" => return Ok(json!({ "unknown": reason() })),
        other => return Err(format!("recorded as `{other}`")),
    }
    let Value::Object(view) = result else {
        return Err("no result recorded".into());
    };
    if view.get("unreachable") == Some(&Value::Bool(true)) {
        return Ok(json!({ "unreachable": reason() }));
    }
    let sampled = check.sample.is_some();
    // Without a `status` of its own, or with none given, the check's view holds its state
    // there; the engine fills it in again.
    let own_status = check.probe.fields().contains(&"status")
        && view
            .get("status")
            .is_some_and(|st| Some(st) != view.get("state"));
    // The manual probe answers in `answer` and `value`; a scenario gives `answer`.
    let answered = check.probe == crate::probes::ProbeKind::Manual
        && view.get("answer").is_some_and(|a| !a.is_null());
    let fields: Map<String, Value> = view
        .iter()
        .filter(|(k, v)| {
            !v.is_null()
                && match k.as_str() {
                    k if NOT_GIVEN.contains(&k) => false,
                    "status" => own_status,
                    "value" => !sampled && !answered,
                    k => check.probe.has_field(k, sampled),
                }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Value::Object(fields))
}

/// The expectation: every decision of `path`.
fn expect(path: &DecisionPath, outcome: &str, levels: &[String]) -> Result<Vec<Item>, String> {
    let mut checks: Vec<Item> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in &path.checks {
        if !seen.contains(&c.id.as_str()) {
            seen.push(&c.id);
            checks.push(Item::pair(c.id.clone(), json!(c.status)));
        }
    }
    let mut verified: Vec<&str> = Vec::new();
    for v in &path.verifications {
        if !verified.contains(&v.id.as_str()) {
            verified.push(&v.id);
        }
    }
    let verify = verified
        .into_iter()
        .map(|id| Item::pair(id, json!(path.verified(id))))
        .collect();
    Ok(vec![
        Item::pair("outcome", json!(outcome)),
        Item::pair("symptoms", json!(path.symptoms_present())),
        Item::pair("matched", json!(path.causes_with("matched"))),
        Item::pair("ruled_out", json!(path.causes_with("ruled_out"))),
        Item::pair("unknown", json!(path.causes_with("unknown"))),
        Item::pair("checks", Yaml::Map(checks)),
        Item::pair("actions", action_list("action", &path.actions)?),
        Item::pair("verify", Yaml::Map(verify)),
        Item::pair("rollbacks", action_list("rollback", &path.rollbacks)?),
        Item::pair("escalation", json!(path.escalation(levels))),
    ])
}

/// `{a: ok, b: failed}`, or `[{a: ok}, {b: ok}, {a: ok}]` when an action ran more than once.
fn action_list(label: &str, actions: &[Decided]) -> Result<Yaml, String> {
    if let Some(a) = actions
        .iter()
        .find(|a| !ACTION_STATES.contains(&a.status.as_str()))
    {
        return Err(format!(
            "{label} `{}` is recorded as `{}`, which a scenario cannot expect",
            a.id, a.status
        ));
    }
    let repeated = actions
        .iter()
        .enumerate()
        .any(|(i, a)| actions[..i].iter().any(|b| b.id == a.id));
    let pair = |a: &Decided| Item::pair(a.id.clone(), json!(a.status));
    Ok(if repeated {
        Yaml::Seq(actions.iter().map(|a| Yaml::Map(vec![pair(a)])).collect())
    } else {
        Yaml::Map(actions.iter().map(pair).collect())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::exec::{MemoryLedger, Options, status_name};
    use crate::host::HostMode;
    use crate::scenario::decision_path::kind_name;
    use crate::scenario::given_oracle::GivenOracle;
    use crate::scenario::sealed_host::SealedHost;
    use crate::scenario::verdict::{Verdict, drive};

    const RUNBOOK: &str = r#"runbook: t
title: T
severity: P1
params:
  hosts: { type: list, default: [a] }
  key: { type: string, secret: true }
checks:
  - id: up
    probe: tcp
    with: { host: 127.0.0.1, port: 1 }
    expect: open
  - id: asked
    probe: manual
    with: { question: "is it up?" }
    expect: "not answer"
  - id: rate
    probe: prometheus
    with: { url: "http://127.0.0.1:1/metrics", metric: m }
    sample: { times: 2, every: 5s }
    expect: delta > 0
  - id: odd
    probe: prometheus
    with: { url: "http://127.0.0.1:1/metrics", metric: q }
    expect: "value.x > 1"
  - id: guarded
    probe: tcp
    when: checks.up.ok
    with: { host: 127.0.0.1, port: 2 }
    expect: open
causes:
  - id: down
    title: Down
    when: checks.up.failed
    remedy: [fix]
    verify: [up]
  - id: slow
    title: Slow
    when: checks.rate.failed
    escalate: L1
actions:
  - id: fix
    run: ["true"]
    retry: { attempts: 2, backoff: 1s }
    limit: { max: 3, per: 1h }
"#;

    fn catalog() -> Catalog {
        crate::scenario::test_catalog(RUNBOOK)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// A run of the one scenario in `yaml`, recorded as the audit trail holds it (the secret
    /// `key` redacted, `hosts` set to `a,b`).
    fn record(cat: &Catalog, yaml: &str) -> RecordedRun {
        let src = SourceFile::new("s.yaml", yaml);
        let raw: RawScenarioFile = crate::runbook::load::parse(&src).expect("scenario parses");
        let file = crate::scenario::compile::compile(&src, &raw, cat).expect("scenario compiles");
        let sc = &file.scenarios[0];
        let rb = &cat.runbooks[0];
        let ledger = MemoryLedger::new();
        let oracle = Arc::new(GivenOracle::new(rb, sc));
        let opts = Options {
            yes: sc.yes,
            oracle: Some(oracle as Arc<dyn crate::exec::events::Oracle>),
            ..Options::default()
        };
        let host = SealedHost::new("h", HostMode::Real);
        let params = crate::plan::resolve_params(rb, &sc.sets).expect("params");
        let path = drive(&rt(), rb, &host, &ledger, params, opts).expect("run");
        RecordedRun {
            id: "20250101T000000Z-abcdef".into(),
            runbook: "t".into(),
            host: "h".into(),
            mode: "real".into(),
            trigger: "cli".into(),
            started_at: "2025-01-01T00:00:00.000Z".into(),
            params: json!({ "hosts": ["a", "b"], "key": "***" }),
            alert: Some(json!({ "labels": { "alertname": "Down: now" } })),
            outcome: Some(path.outcome),
            steps: ledger
                .steps()
                .into_iter()
                .map(|s| RecordedStep {
                    kind: kind_name(s.kind).into(),
                    id: s.id,
                    status: Some(status_name(s.status).into()),
                    result: Some(s.result),
                    decided_by: s.decided_by,
                })
                .collect(),
        }
    }

    /// The scenario of `run`, which must pass against the runbook it was recorded with.
    fn emit_and_pass(cat: &Catalog, run: &RecordedRun) -> String {
        let rb = &cat.runbooks[0];
        let sc = RecordedScenario::new(rb, &["L1".into()], run, None, false).expect("a scenario");
        let text = sc.to_yaml();
        let results = try_scenario(&rt(), cat, &text)
            .unwrap_or_else(|ds| panic!("{:?}\n{text}", ds[0].message));
        assert_eq!(results.len(), 1);
        assert!(
            matches!(results[0].verdict, Verdict::Passed { .. }),
            "{:?}\n{text}",
            results[0].verdict
        );
        text
    }

    #[test]
    fn recorded_results_are_given_as_a_scenario_gives_them_and_pass() {
        let cat = catalog();
        let run = record(
            &cat,
            r"runbook: t
scenarios:
  - name: x
    checks:
      up: { unreachable: connection refused }
      asked: { answer: false }
      rate: { values: [1, 2] }
      odd: { value: 3 }
    after: { up: [{ open: false, connect_ms: 2 }, { open: true, connect_ms: 1 }] }
    yes: true
    expect: { outcome: remediated }
",
        );
        let text = emit_and_pass(&cat, &run);
        for line in [
            "      up: { unreachable: connection refused }\n",
            // The manual probe's `value` is its `answer`: given once.
            "      asked: { answer: false }\n",
            // No `status`: the prometheus probe has one, but the engine filled this one in.
            "      rate: { values: [1, 2] }\n",
            "      # `guarded`: skipped by its guard, not asked\n",
            // Each verification attempt's own result; the first did not see the port open.
            "    after: { up: [{ connect_ms: 2, open: false }, { connect_ms: 1, open: true }] }\n",
            "    actions: { fix: ok }\n",
            "    yes: true\n",
            "    set: { hosts: \"a,b\" }\n",
            "    alert: { labels: { alertname: \"Down: now\" } }\n",
            "      checks: { up: failed, asked: ok, rate: ok, odd: error, guarded: skipped }\n",
            "      verify: { up: [failed, ok] }\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        // A secret without a default is left out, and the comment says what to do.
        assert!(
            text.contains("`key` (no default: give a stand-in"),
            "{text}"
        );
        assert!(!text.contains("***\""), "{text}");
    }

    #[test]
    fn errors_unknowns_and_a_failed_remedy_pass_too() {
        let cat = catalog();
        let run = record(
            &cat,
            r"runbook: t
scenarios:
  - name: x
    checks:
      up: { open: false, connect_ms: 3 }
      rate: { error: 'no route: ''m''' }
      odd: { value: 3 }
    actions: { fix: { failed: exit 1 } }
    yes: true
    expect: { outcome: problem_remains }
",
        );
        let text = emit_and_pass(&cat, &run);
        for line in [
            // A tcp check has no `status` of its own: the engine's is not given back.
            "      up: { connect_ms: 3, open: false }\n",
            "      asked: { unknown: no terminal to ask }\n",
            "      rate: { error: \"no route: 'm'\" }\n",
            "    actions: { fix: { failed: exit 1 } }\n",
            // Its `expect` could not be evaluated: the probe's answer is given, to be judged.
            "      odd: { value: 3 }\n",
            "      escalation: L1\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn runs_with_nothing_to_expect_have_no_scenario() {
        let cat = catalog();
        let rb = &cat.runbooks[0];
        let run = RecordedRun {
            id: "r".into(),
            runbook: "t".into(),
            host: "h".into(),
            mode: "real".into(),
            trigger: "cli".into(),
            started_at: "2025-01-01T00:00:00.000Z".into(),
            params: json!({}),
            alert: None,
            outcome: Some("fault".into()),
            steps: Vec::new(),
        };
        let err = |run: &RecordedRun| RecordedScenario::new(rb, &[], run, None, false).unwrap_err();
        assert!(err(&run).contains("ended in `fault`"));
        let unfinished = RecordedRun {
            outcome: None,
            ..run.clone()
        };
        assert!(err(&unfinished).contains("has not finished"));
        let dry = RecordedRun {
            mode: "dry_run".into(),
            outcome: Some("problem_remains".into()),
            ..run
        };
        assert!(err(&dry).contains("dry run"));
    }

    #[test]
    fn an_action_run_twice_is_expected_as_a_list_and_one_outcome_is_given() {
        let cat = catalog();
        let rb = &cat.runbooks[0];
        let step = |kind: &str, id: &str, status: &str| RecordedStep {
            kind: kind.into(),
            id: id.into(),
            status: Some(status.into()),
            result: Some(json!({})),
            decided_by: Some(format!("{status} here")),
        };
        let run = RecordedRun {
            id: "r".into(),
            runbook: "t".into(),
            host: "h".into(),
            mode: "real".into(),
            trigger: "cli".into(),
            started_at: "2025-01-01T00:00:00.000Z".into(),
            params: json!({}),
            alert: None,
            outcome: Some("problem_remains".into()),
            steps: vec![
                step("action", "fix", "failed"),
                step("rollback", "fix", "ok"),
                step("action", "fix", "ok"),
            ],
        };
        let sc = RecordedScenario::new(rb, &[], &run, Some("twice"), false).expect("a scenario");
        let text = sc.to_yaml();
        assert!(text.contains("  - name: twice\n"), "{text}");
        assert!(
            text.contains("    actions: { fix: { failed: failed here } }\n"),
            "{text}"
        );
        assert!(
            text.contains("      actions: [{ fix: failed }, { fix: ok }]\n"),
            "{text}"
        );
        assert!(text.contains("      rollbacks: { fix: ok }\n"), "{text}");
        assert_eq!(sc.notes.len(), 1, "{:?}", sc.notes);
        assert!(sc.notes[0].contains("different outcomes"), "{:?}", sc.notes);
        assert!(
            text.contains("# note: action `fix` ran more than once"),
            "{text}"
        );
        // Failures for different reasons are one outcome.
        let mut again = step("action", "fix", "failed");
        again.decided_by = Some("another reason".into());
        let run = RecordedRun {
            steps: vec![step("action", "fix", "failed"), again],
            ..run
        };
        let sc = RecordedScenario::new(rb, &[], &run, None, false).expect("a scenario");
        assert!(sc.notes.is_empty(), "{:?}", sc.notes);
    }
}
