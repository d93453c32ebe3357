//! Checking a [`RawScenarioFile`] against its runbook: the runbook exists and compiles; every
//! check, cause, symptom, action and level id names one of the runbook's; every given result
//! fits its check's probe; parameters fit their types. Every problem of the file at once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::runbook::Catalog;
use crate::runbook::compile::suggest;
use crate::runbook::diagnostic::{Diagnostic, SourceFile};
use crate::runbook::model::Runbook;
use crate::runbook::node::Node;
use crate::runbook::raw::SString;
use crate::scenario::given::Given;
use crate::scenario::raw::{ActionList, IdMap, RawExpect, RawScenario, RawScenarioFile};
use crate::scenario::scenario_file::{Expect, Scenario, ScenarioFile};

/// What the executor escalates to when the runbook has no ladder.
const DEFAULT_LEVEL: &str = "L1";

/// Check `raw` (read from `src`) against the runbooks of `cat`.
///
/// # Errors
/// Every problem found, each located in `src`.
pub fn compile(
    src: &Arc<SourceFile>,
    raw: &RawScenarioFile,
    cat: &Catalog,
) -> Result<ScenarioFile, Vec<Diagnostic>> {
    let name = &raw.runbook;
    let Some(rb) = cat.find(&name.value) else {
        return Err(vec![unknown_runbook(src, name, cat)]);
    };
    let cx = Cx {
        src,
        rb,
        levels: levels(cat, rb),
    };
    let mut errors = Vec::new();
    let mut baseline = HashMap::new();
    for (id, node) in &raw.baseline.0 {
        if let Some(check) = cx.check(id, &mut errors)
            && let Some(g) = cx.given(node, check, &mut errors)
        {
            baseline.insert(id.value.clone(), g);
        }
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut scenarios = Vec::new();
    for s in &raw.scenarios {
        let (line, column) = src.line_col(src.span_of(s.name.referenced).offset);
        if let Some(first) = names.insert(&s.name.value, line) {
            errors.push(
                Diagnostic::error(
                    "duplicate-scenario",
                    format!("scenario `{}` is also named on line {first}", s.name.value),
                )
                .at(src, src.span_of(s.name.referenced)),
            );
        }
        if let Some(sc) = cx.scenario(s, &baseline, (line, column), &mut errors) {
            scenarios.push(sc);
        }
    }
    if errors.is_empty() {
        Ok(ScenarioFile {
            source: Arc::clone(src),
            runbook: rb.name.clone(),
            scenarios,
        })
    } else {
        Err(errors)
    }
}

/// The escalation level ids a run of `rb` can name, lowest first.
#[must_use]
pub fn levels(cat: &Catalog, rb: &Runbook) -> Vec<String> {
    let levels: Vec<String> = cat
        .policy
        .as_ref()
        .map(|p| p.ladder_levels(rb))
        .unwrap_or_default()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if levels.is_empty() {
        vec![DEFAULT_LEVEL.to_owned()]
    } else {
        levels
    }
}

fn unknown_runbook(src: &Arc<SourceFile>, name: &SString, cat: &Catalog) -> Diagnostic {
    let span = src.span_of(name.referenced);
    let broken = cat.diagnostics.iter().any(|d| {
        d.severity == crate::runbook::diagnostic::Severity::Error
            && d.source.as_ref().is_some_and(|s| {
                std::path::Path::new(&s.name)
                    .file_stem()
                    .is_some_and(|st| *st == *name.value)
            })
    });
    if broken {
        return Diagnostic::error(
            "invalid-runbook",
            format!("runbook `{}` does not compile", name.value),
        )
        .at(src, span)
        .help("see `runbook validate`");
    }
    let hint = suggest(&name.value, cat.runbooks.iter().map(|r| r.name.as_str()))
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    let dir = cat
        .files
        .first()
        .and_then(|f| f.parent())
        .map_or_else(String::new, |d| format!(" in `{}`", d.display()));
    Diagnostic::error(
        "unknown-runbook",
        format!("no runbook `{}`{dir}{hint}", name.value),
    )
    .at(src, span)
    .help("a scenario file in a `tests/` directory drives the runbooks of the directory above it; elsewhere, those of `--runbooks`")
}

struct Cx<'a> {
    src: &'a Arc<SourceFile>,
    rb: &'a Runbook,
    levels: Vec<String>,
}

impl Cx<'_> {
    fn unknown<'c>(
        &self,
        code: &'static str,
        what: &str,
        id: &SString,
        candidates: impl Iterator<Item = &'c str>,
    ) -> Diagnostic {
        let hint = suggest(&id.value, candidates)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Diagnostic::error(
            code,
            format!(
                "runbook `{}` has no {what} `{}`{hint}",
                self.rb.name, id.value
            ),
        )
        .at(self.src, self.src.span_of(id.referenced))
    }

    fn check(
        &self,
        id: &SString,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<&crate::runbook::model::Check> {
        let c = self.rb.check(&id.value);
        if c.is_none() {
            errors.push(self.unknown(
                "unknown-check",
                "check",
                id,
                self.rb.checks.iter().map(|c| c.id.as_str()),
            ));
        }
        c
    }

    fn action(
        &self,
        id: &SString,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<&crate::runbook::model::Action> {
        let a = self.rb.action(&id.value);
        if a.is_none() {
            errors.push(self.unknown(
                "unknown-action",
                "action",
                id,
                self.rb.actions.iter().map(|a| a.id.as_str()),
            ));
        }
        a
    }

    fn causes(
        &self,
        ids: Option<&Vec<SString>>,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Vec<String>> {
        let ids = ids?;
        for id in ids {
            if self.rb.cause(&id.value).is_none() {
                errors.push(self.unknown(
                    "unknown-cause",
                    "cause",
                    id,
                    self.rb.causes.iter().map(|c| c.id.as_str()),
                ));
            }
        }
        Some(ids.iter().map(|i| i.value.clone()).collect())
    }

    fn given(
        &self,
        node: &Spanned<Node>,
        check: &crate::runbook::model::Check,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Given> {
        match Given::parse(self.src, node, check) {
            Ok(g) => Some(g),
            Err(es) => {
                errors.extend(es);
                None
            }
        }
    }

    fn scenario(
        &self,
        s: &RawScenario,
        baseline: &HashMap<String, Given>,
        (line, column): (usize, usize),
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Scenario> {
        let before = errors.len();
        let src = self.src;
        let sets = self.sets(&s.set, errors);
        let alert = s.alert.as_ref().and_then(|a| {
            let v = a.value.to_json();
            if v.is_object() {
                Some(v)
            } else {
                errors.push(
                    Diagnostic::error(
                        "wrong-type",
                        "`alert` is a mapping (`labels`, `annotations`, `status`, ...)",
                    )
                    .at(src, src.span_of(a.referenced)),
                );
                None
            }
        });
        let mut checks = baseline.clone();
        for (id, node) in &s.checks.0 {
            if let Some(check) = self.check(id, errors)
                && let Some(g) = self.given(node, check, errors)
            {
                checks.insert(id.value.clone(), g);
            }
        }
        let mut after = HashMap::new();
        for (id, node) in &s.after.0 {
            let Some(check) = self.check(id, errors) else {
                continue;
            };
            let nodes: Vec<&Spanned<Node>> = match &node.value {
                Node::Seq(items) => items.iter().collect(),
                _ => vec![node],
            };
            if nodes.is_empty() {
                errors.push(
                    Diagnostic::error("bad-result", "an empty list gives no verification result")
                        .at(src, src.span_of(node.referenced)),
                );
            }
            let given: Vec<Given> = nodes
                .into_iter()
                .filter_map(|n| self.given(n, check, errors))
                .collect();
            after.insert(id.value.clone(), given);
        }
        let mut actions = HashMap::new();
        for (id, result) in &s.actions.0 {
            if self.action(id, errors).is_some() {
                actions.insert(id.value.clone(), result.clone());
            }
        }
        let mut approved = HashSet::new();
        for id in &s.approved {
            if self.action(id, errors).is_some() {
                approved.insert(id.value.clone());
            }
        }
        let mut limits_used = Vec::new();
        for (id, n) in &s.limits_used.0 {
            if let Some(a) = self.action(id, errors) {
                if a.limit.is_none() {
                    errors.push(
                        Diagnostic::error(
                            "bad-limit",
                            format!("action `{}` has no `limit` to use up", a.id),
                        )
                        .at(src, src.span_of(id.referenced)),
                    );
                }
                limits_used.push((id.value.clone(), n.value));
            }
        }
        let expect = self.expect(&s.expect, errors);
        if errors.len() > before {
            return None;
        }
        Some(Scenario {
            name: s.name.value.clone(),
            span: src.span_of(s.name.referenced),
            line,
            column,
            sets,
            alert,
            checks,
            after,
            actions,
            yes: s.yes,
            approved,
            limits_used,
            expect,
        })
    }

    fn sets(&self, set: &IdMap<Spanned<Node>>, errors: &mut Vec<Diagnostic>) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &set.0 {
            let text = match &v.value {
                Node::Str(s) => s.clone(),
                Node::Bool(b) => b.to_string(),
                Node::Int(i) => i.to_string(),
                Node::Float(f) => f.to_string(),
                other => {
                    errors.push(
                        Diagnostic::error(
                            "wrong-type",
                            format!(
                                "param `{}`: expected a scalar, found {}",
                                k.value,
                                other.kind()
                            ),
                        )
                        .at(self.src, self.src.span_of(v.referenced)),
                    );
                    continue;
                }
            };
            let one = format!("{}={text}", k.value);
            match crate::plan::resolve_params(self.rb, std::slice::from_ref(&one)) {
                Ok(_) => out.push(one),
                Err(e) => {
                    let code = if self.rb.param(&k.value).is_none() {
                        "unknown-param"
                    } else {
                        "bad-param"
                    };
                    errors.push(
                        Diagnostic::error(code, e.to_string())
                            .at(self.src, self.src.span_of(k.referenced)),
                    );
                }
            }
        }
        out
    }

    fn expect(&self, e: &RawExpect, errors: &mut Vec<Diagnostic>) -> Expect {
        let rb = self.rb;
        let symptoms = e.symptoms.as_ref().map(|ids| {
            for id in ids {
                if !rb.symptoms.iter().any(|s| s.id == id.value) {
                    errors.push(self.unknown(
                        "unknown-symptom",
                        "symptom",
                        id,
                        rb.symptoms.iter().map(|s| s.id.as_str()),
                    ));
                }
            }
            ids.iter().map(|i| i.value.clone()).collect()
        });
        let matched = self.causes(e.matched.as_ref(), errors);
        let ruled_out = self.causes(e.ruled_out.as_ref(), errors);
        let unknown = self.causes(e.unknown.as_ref(), errors);
        let mut checks = Vec::new();
        for (id, st) in &e.checks.0 {
            if self.check(id, errors).is_some() {
                checks.push((id.value.clone(), *st));
            }
        }
        let mut actions_of = |m: Option<&ActionList>| {
            m.map(|m| {
                m.0.iter()
                    .filter(|(id, _)| self.action(id, errors).is_some())
                    .map(|(id, st)| (id.value.clone(), *st))
                    .collect::<Vec<_>>()
            })
        };
        let actions = actions_of(e.actions.as_ref());
        let rollbacks = actions_of(e.rollbacks.as_ref());
        let mut verify = Vec::new();
        for (id, v) in &e.verify.0 {
            if self.check(id, errors).is_some() {
                verify.push((id.value.clone(), v.clone()));
            }
        }
        let escalation = e.escalation.as_ref().map(|lv| {
            if lv.value != "none" && !self.levels.contains(&lv.value) {
                let hint = suggest(&lv.value, self.levels.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                errors.push(
                    Diagnostic::error(
                        "unknown-level",
                        format!(
                            "runbook `{}` escalates on levels {}; no level `{}`{hint}",
                            rb.name,
                            self.levels.join(", "),
                            lv.value
                        ),
                    )
                    .at(self.src, self.src.span_of(lv.referenced))
                    .help("write a level id, or `none`"),
                );
            }
            lv.value.clone()
        });
        Expect {
            outcome: e.outcome,
            symptoms,
            matched,
            ruled_out,
            unknown,
            checks,
            actions,
            rollbacks,
            verify,
            escalation,
        }
    }
}

/// Read and parse a scenario file (under the runbook loader's budget).
///
/// # Errors
/// The first problem, located.
pub fn read(path: &Path) -> Result<(Arc<SourceFile>, RawScenarioFile), Diagnostic> {
    let src = crate::runbook::load::read_source(path)?;
    let raw = crate::runbook::load::parse::<RawScenarioFile>(&src)?;
    Ok((src, raw))
}

/// Where the runbooks of a scenario file are: the directory holding its `tests/` directory,
/// else `fallback` (the runbook dir).
#[must_use]
pub fn runbooks_dir(file: &Path, fallback: &Path) -> PathBuf {
    match file.parent() {
        Some(tests) if tests.file_name().is_some_and(|n| n == "tests") => tests
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        _ => fallback.to_path_buf(),
    }
}

/// The scenario files `paths` name: a file as is; a directory's `tests/*.yaml` when it has a
/// `tests/` directory (a runbook dir), else its own `*.yaml`. Sorted within a directory.
/// A path that does not exist or cannot be read is a diagnostic beside the files found.
#[must_use]
pub fn scenario_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            let dir = if path.join("tests").is_dir() {
                path.join("tests")
            } else {
                path.clone()
            };
            match crate::runbook::catalog::runbook_files(&dir) {
                Ok(found) => files.extend(found),
                Err(e) => errors.push(Diagnostic::error(
                    "io-error",
                    format!("cannot read directory `{}`: {e}", dir.display()),
                )),
            }
        } else if path.exists() {
            files.push(path.clone());
        } else {
            errors.push(Diagnostic::error(
                "io-error",
                format!("`{}` does not exist", path.display()),
            ));
        }
    }
    (files, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::raw::{ActionState, CheckState, RawActionResult, VerifyExpect};

    const RUNBOOK: &str = r#"runbook: t
title: T
severity: P1
params:
  port: { type: int, default: 1 }
checks:
  - id: up
    probe: tcp
    with: { host: 127.0.0.1, port: 1 }
    expect: open
  - id: rate
    probe: prometheus
    with: { url: "http://127.0.0.1:1/metrics", metric: m }
    sample: { times: 2, every: 5s }
    expect: delta > 0
causes:
  - id: down
    title: Down
    when: checks.up.failed
    remedy: [fix]
    verify: [up]
actions:
  - id: fix
    run: ["true"]
    limit: { max: 1, per: 1h }
"#;

    fn catalog() -> Catalog {
        crate::scenario::test_catalog(RUNBOOK)
    }

    fn load(yaml: &str) -> Result<ScenarioFile, Vec<Diagnostic>> {
        let src = SourceFile::new("s.yaml", yaml);
        let raw: RawScenarioFile = crate::runbook::load::parse(&src).map_err(|d| vec![d])?;
        compile(&src, &raw, &catalog())
    }

    /// Code and `line:col` of every problem.
    fn problems(yaml: &str) -> Vec<(&'static str, usize, usize)> {
        match load(yaml) {
            Ok(_) => Vec::new(),
            Err(ds) => ds
                .iter()
                .map(|d| {
                    let (_, l, c) = d.position().expect("located");
                    (d.code, l, c)
                })
                .collect(),
        }
    }

    #[test]
    fn a_full_scenario_reads_into_its_parts() {
        let f = load(
            r"runbook: t
baseline:
  up: { open: true, connect_ms: 3 }
  rate: { values: [1, 2] }
scenarios:
  - name: down
    set: { port: 8 }
    checks: { up: { unreachable: refused } }
    after: { up: [{ open: false }, { open: true }] }
    actions: { fix: { failed: boom } }
    yes: true
    limits_used: { fix: 1 }
    expect:
      outcome: problem_remains
      matched: [down]
      actions: [{ fix: failed }]
      verify: { up: [failed, ok] }
      escalation: L1
",
        )
        .expect("valid");
        let sc = &f.scenarios[0];
        assert_eq!((sc.line, sc.column), (6, 11));
        assert_eq!(sc.sets, ["port=8"]);
        assert_eq!(sc.checks["up"], Given::Unreachable("refused".into()));
        assert!(
            matches!(&sc.checks["rate"], Given::Observed { values: Some(v), .. } if v.len() == 2)
        );
        assert_eq!(sc.after["up"].len(), 2);
        assert_eq!(sc.actions["fix"], RawActionResult::Failed("boom".into()));
        assert_eq!(sc.limits_used, [("fix".to_owned(), 1)]);
        assert_eq!(
            sc.expect.actions,
            Some(vec![("fix".to_owned(), ActionState::Failed)])
        );
        assert_eq!(
            sc.expect.verify[0].1,
            VerifyExpect::Each(vec![CheckState::Failed, CheckState::Ok])
        );
        assert_eq!(sc.expect.escalation.as_deref(), Some("L1"));
    }

    #[test]
    fn every_unknown_id_is_reported_where_it_is_written() {
        let p = problems(
            r"runbook: t
scenarios:
  - name: x
    checks: { upp: { open: true } }
    actions: { fixx: ok }
    expect:
      outcome: healthy
      matched: [dwn]
      escalation: L7
",
        );
        assert_eq!(
            p,
            [
                ("unknown-check", 4, 15),
                ("unknown-action", 5, 16),
                ("unknown-cause", 8, 17),
                ("unknown-level", 9, 19),
            ]
        );
    }

    #[test]
    fn result_fields_are_checked_against_the_probe() {
        let p = problems(
            r"runbook: t
scenarios:
  - name: x
    checks:
      up: { opne: true, ok: true }
      rate: { values: [1, 2, 3] }
    expect: { outcome: healthy }
",
        );
        assert_eq!(
            p,
            [
                ("unknown-field", 5, 13),
                ("computed-field", 5, 25),
                ("bad-result", 6, 23)
            ]
        );
        let p = problems(
            r"runbook: t
scenarios:
  - name: x
    checks:
      up: { values: [1], error: x }
    expect: { outcome: healthy }
",
        );
        let codes: Vec<&str> = p.iter().map(|x| x.0).collect();
        assert_eq!(codes, ["bad-result", "bad-result"]);
    }

    #[test]
    fn format_errors_are_located() {
        let p = problems("runbook: t\nscenarios:\n  - name: x\n    expct: { outcome: healthy }\n");
        assert_eq!(p[0].0, "unknown-key");
        assert_eq!(p[0].1, 4);
        let p = problems("runbook: t\nscenarios:\n  - name: x\n    expect: { outcome: fine }\n");
        assert_eq!(p[0].0, "unknown-value");
        let p = problems("runbook: nope\nscenarios: []\n");
        assert_eq!(p, [("unknown-runbook", 1, 10)]);
        let p = problems(
            "runbook: t\nscenarios:\n  - name: x\n    expect: { outcome: healthy }\n  - name: x\n    expect: { outcome: healthy }\n",
        );
        assert_eq!(p, [("duplicate-scenario", 5, 11)]);
        let p = problems(
            "runbook: t\nscenarios:\n  - name: x\n    set: { port: eight }\n    expect: { outcome: healthy }\n",
        );
        assert_eq!(p, [("bad-param", 4, 12)]);
    }

    #[test]
    fn a_scenario_dir_is_found_beside_the_runbooks() {
        assert_eq!(
            runbooks_dir(Path::new("rb/tests/x.yaml"), Path::new("other")),
            PathBuf::from("rb")
        );
        assert_eq!(
            runbooks_dir(Path::new("tests/x.yaml"), Path::new("other")),
            PathBuf::from(".")
        );
        assert_eq!(
            runbooks_dir(Path::new("fixtures/x.yaml"), Path::new("other")),
            PathBuf::from("other")
        );
    }
}
