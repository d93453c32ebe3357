//! A set of runbooks loaded from files or directories, with the `policy.yaml` beside them.
//!
//! Every file is loaded and compiled even when others fail, so `validate` reports every
//! problem in every file at once.

use std::path::{Path, PathBuf};

use crate::runbook::compile::{self, Context};
use crate::runbook::diagnostic::{Diagnostic, Severity};
use crate::runbook::load;
use crate::runbook::model::Runbook;
use crate::runbook::policy::Policy;
use crate::runbook::raw::RawRunbook;

/// The policy file's name.
pub const POLICY_FILE: &str = "policy.yaml";

/// Loaded runbooks and everything wrong with them.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The policy, if one was found.
    pub policy: Option<Policy>,
    /// Runbooks that compiled.
    pub runbooks: Vec<Runbook>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Files read (runbooks and policy).
    pub files: Vec<PathBuf>,
}

impl Catalog {
    /// Load runbooks from `paths` (files, or directories whose `*.yaml` files are read).
    /// The policy is `policy.yaml` in the first directory given or holding a given file,
    /// else in `fallback_dir`.
    #[must_use]
    pub fn load(paths: &[PathBuf], fallback_dir: &Path) -> Catalog {
        let mut cat = Catalog::default();
        let mut files = Vec::new();
        let mut policy_dirs = Vec::new();
        for path in paths {
            if path.is_dir() {
                policy_dirs.push(path.clone());
                match runbook_files(path) {
                    Ok(found) => files.extend(found),
                    Err(e) => cat.diagnostics.push(Diagnostic::error(
                        "io-error",
                        format!("cannot read directory `{}`: {e}", path.display()),
                    )),
                }
            } else if path.exists() {
                if let Some(parent) = path.parent() {
                    policy_dirs.push(if parent.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        parent.to_path_buf()
                    });
                }
                if path.file_name().is_some_and(|n| n == POLICY_FILE) {
                    continue;
                }
                files.push(path.clone());
            } else {
                cat.diagnostics.push(Diagnostic::error(
                    "io-error",
                    format!("`{}` does not exist", path.display()),
                ));
            }
        }
        policy_dirs.push(fallback_dir.to_path_buf());
        if let Some(policy_path) = policy_dirs
            .iter()
            .map(|d| d.join(POLICY_FILE))
            .find(|p| p.is_file())
        {
            match load::read_source(&policy_path) {
                Ok(src) => match Policy::load(&src) {
                    Ok(p) => cat.policy = Some(p),
                    Err(ds) => cat.diagnostics.extend(ds),
                },
                Err(d) => cat.diagnostics.push(d),
            }
            cat.files.push(policy_path);
        }
        for file in files {
            cat.load_file(&file);
            cat.files.push(file);
        }
        let mut seen = std::collections::HashMap::new();
        for rb in &cat.runbooks {
            if let Some(first) = seen.insert(rb.name.clone(), rb.file.name.clone()) {
                cat.diagnostics.push(
                    Diagnostic::error(
                        "duplicate-runbook",
                        format!(
                            "runbook `{}` is defined in `{first}` and again here",
                            rb.name
                        ),
                    )
                    .in_file(&rb.file),
                );
            }
        }
        cat
    }

    fn load_file(&mut self, path: &Path) {
        let src = match load::read_source(path) {
            Ok(s) => s,
            Err(d) => {
                self.diagnostics.push(d);
                return;
            }
        };
        let raw: RawRunbook = match load::parse(&src) {
            Ok(r) => r,
            Err(d) => {
                self.diagnostics.push(d);
                return;
            }
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
        let cx = Context {
            policy: self.policy.as_ref(),
            expected_name: stem.as_deref(),
        };
        let (runbook, diags) = compile::compile(&src, &raw, cx);
        self.diagnostics.extend(diags);
        if let Some(rb) = runbook {
            self.runbooks.push(rb);
        }
    }

    /// True when any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// A runbook by name.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.name == name)
    }
}

/// The runbook files of a directory: `*.yaml` / `*.yml` except `policy.yaml`, sorted.
///
/// # Errors
/// When the directory cannot be read.
pub fn runbook_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if path.is_file() && is_yaml && path.file_name().is_some_and(|n| n != POLICY_FILE) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
