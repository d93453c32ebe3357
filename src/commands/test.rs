//! `runbook test [PATH...] [--junit FILE]`: scenario tests. Each scenario gives probe results
//! and action outcomes and expects a decision path; the real executor decides with no host
//! access (see [`crate::scenario`]). Exit 0 all pass, 1 a scenario failed, 2 a scenario file
//! (or a scenario) is invalid — the other files still run and are reported.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::Format;
use crate::commands::Ctx;
use crate::commands::common::print_json;
use crate::exit;
use crate::runbook::{Catalog, Diagnostic};
use crate::scenario::compile::{self, runbooks_dir, scenario_files};
use crate::scenario::junit::{self, Case, Suite};
use crate::scenario::row::render;
use crate::scenario::{ScenarioResult, Verdict};

/// One scenario file's results.
struct FileReport {
    file: String,
    runbook: Option<String>,
    /// The file could not be loaded or checked.
    errors: Vec<Diagnostic>,
    results: Vec<ScenarioResult>,
}

/// Run the verb.
pub fn run(ctx: &Ctx, paths: &[PathBuf], junit_file: Option<&Path>) -> u8 {
    let format = match ctx.format_in("test", &[Format::Human, Format::Json], Format::Human) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let paths = if paths.is_empty() {
        vec![ctx.dir.join("tests")]
    } else {
        paths.to_vec()
    };
    let (files, path_errors) = scenario_files(&paths);
    if files.is_empty() && path_errors.is_empty() {
        eprintln!(
            "error: no scenario files (`*.yaml`) in {}",
            paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        eprintln!("hint: scenarios live beside the runbooks, in `runbooks/tests/<runbook>.yaml`");
        return exit::INVALID;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::FAULT;
        }
    };
    let reports = run_files(ctx, &rt, &files);
    let count = |f: fn(&Verdict) -> bool| {
        reports
            .iter()
            .flat_map(|r| &r.results)
            .filter(|s| f(&s.verdict))
            .count()
    };
    let passed = count(|v| matches!(v, Verdict::Passed { .. }));
    let failed = count(|v| matches!(v, Verdict::Failed { .. }));
    let invalid_scenarios = count(|v| matches!(v, Verdict::Invalid { .. }));
    let invalid_files = reports.iter().filter(|r| !r.errors.is_empty()).count();
    if format == Format::Json {
        print_json(&json!({
            "ok": failed + invalid_scenarios + invalid_files + path_errors.len() == 0,
            "files": reports.iter().map(|r| json!({
                "file": r.file,
                "runbook": r.runbook,
                "errors": r.errors.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
                "scenarios": r.results,
            })).collect::<Vec<_>>(),
            "errors": path_errors.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
            "scenarios": passed + failed + invalid_scenarios,
            "passed": passed,
            "failed": failed,
            "invalid": invalid_scenarios + invalid_files,
        }));
    } else {
        let mut out = std::io::stdout().lock();
        for d in &path_errors {
            let _ = write!(out, "{}", d.render(ctx.color));
        }
        for r in &reports {
            let _ = write!(out, "{}", human(r, ctx.color));
        }
        let _ = writeln!(
            out,
            "{} scenario(s) in {} file(s): {passed} passed, {failed} failed, {invalid_scenarios} invalid{}",
            passed + failed + invalid_scenarios,
            reports.len(),
            if invalid_files == 0 {
                String::new()
            } else {
                format!("; {invalid_files} file(s) invalid")
            }
        );
    }
    if let Some(path) = junit_file {
        let xml = junit::render(&suites(&reports));
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!(
                "error: cannot write the JUnit report `{}`: {e}",
                path.display()
            );
            return exit::INVALID;
        }
    }
    if invalid_files + invalid_scenarios + path_errors.len() > 0 {
        exit::INVALID
    } else if failed > 0 {
        exit::PROBLEM
    } else {
        exit::OK
    }
}

/// Load, check and run each scenario file; a file's problems stay with it.
fn run_files(ctx: &Ctx, rt: &tokio::runtime::Runtime, files: &[PathBuf]) -> Vec<FileReport> {
    let mut catalogs: HashMap<PathBuf, Catalog> = HashMap::new();
    let mut reports = Vec::new();
    for file in files {
        let mut report = FileReport {
            file: file.display().to_string(),
            runbook: None,
            errors: Vec::new(),
            results: Vec::new(),
        };
        match compile::read(file) {
            Err(d) => report.errors.push(d),
            Ok((src, raw)) => {
                report.runbook = Some(raw.runbook.value.clone());
                let dir = runbooks_dir(file, &ctx.dir);
                let cat = catalogs
                    .entry(dir.clone())
                    .or_insert_with(|| Catalog::load(std::slice::from_ref(&dir), &dir));
                match compile::compile(&src, &raw, cat) {
                    Err(ds) => report.errors = ds,
                    Ok(sf) => report.results = crate::scenario::verdict::run_file(rt, &sf, cat),
                }
            }
        }
        reports.push(report);
    }
    reports
}

const TITLES: (&str, &str) = ("expected", "actual");
const INDENT: &str = "        ";

fn human(r: &FileReport, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}{}",
        r.file,
        r.runbook
            .as_ref()
            .map(|n| format!("  (runbook {n})"))
            .unwrap_or_default()
    );
    for d in &r.errors {
        out.push_str(&d.render(color));
    }
    for s in &r.results {
        let at = format!("{}:{}:{}", r.file, s.line, s.column);
        match &s.verdict {
            Verdict::Passed { .. } => {
                let _ = writeln!(out, "  ok      {}", s.name);
            }
            Verdict::Failed { rows, .. } => {
                let _ = writeln!(out, "  FAIL    {}  ({at})", s.name);
                out.push_str(&render(rows, TITLES, true, INDENT));
            }
            Verdict::Invalid { diagnostic } => {
                let _ = writeln!(out, "  INVALID {}  ({at})", s.name);
                out.push_str(&diagnostic.render(color));
            }
        }
    }
    out
}

fn suites(reports: &[FileReport]) -> Vec<Suite> {
    reports
        .iter()
        .map(|r| {
            let classname = r.runbook.clone().unwrap_or_else(|| r.file.clone());
            let mut cases: Vec<Case> = r
                .results
                .iter()
                .map(|s| {
                    let mut case = Case {
                        name: s.name.clone(),
                        classname: classname.clone(),
                        line: Some(s.line),
                        failure: None,
                        error: None,
                    };
                    match &s.verdict {
                        Verdict::Passed { .. } => {}
                        Verdict::Failed { rows, .. } => {
                            let differ: Vec<&str> = rows
                                .iter()
                                .filter(|r| !r.same)
                                .map(|r| r.what.as_str())
                                .collect();
                            case.failure = Some((
                                format!("decisions differ: {}", differ.join(", ")),
                                render(rows, TITLES, true, ""),
                            ));
                        }
                        Verdict::Invalid { diagnostic } => {
                            case.error =
                                Some((diagnostic.message.clone(), diagnostic.render(false)));
                        }
                    }
                    case
                })
                .collect();
            if !r.errors.is_empty() {
                let first = &r.errors[0];
                let at = first
                    .position()
                    .map(|(f, l, c)| format!("{f}:{l}:{c}: "))
                    .unwrap_or_default();
                cases.push(Case {
                    name: "(scenario file)".into(),
                    classname: classname.clone(),
                    line: first.position().map(|p| p.1),
                    failure: None,
                    error: Some((
                        format!("{at}{}", first.message),
                        r.errors.iter().map(|d| d.render(false)).collect(),
                    )),
                });
            }
            Suite {
                name: r.file.clone(),
                cases,
            }
        })
        .collect()
}
