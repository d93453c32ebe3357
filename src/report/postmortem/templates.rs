//! [`Templates`]: the report's minijinja templates — the built-in ones, embedded in the
//! binary, and a directory that overrides any of them by file name.
//!
//! A format has a main template (`report.md.j2`, `report.html.j2`) that includes partials:
//! one per post-mortem section id (`timeline`, `impact`, `root_cause`, `actions`, `lessons`;
//! `<id>.md.j2`, `<id>.html.j2`), `other_section.*.j2` for a section of policy.yaml that has
//! no partial of its own, and for HTML `steps.html.j2` (the collapsible step details) and
//! `report.css.j2` (the inline style sheet). Looking a name up, the override directory comes
//! first, then the built-in set; a directory may also add partials, e.g. for a section id
//! of its own. Only plain file names are looked up: nothing outside the directory.
//!
//! Templates see [`crate::report::postmortem::Report`] as JSON, with strict undefined (a
//! misspelt field is an error, not an empty string). `*.html.j2` is HTML-escaped
//! automatically and has the filter `ticks` (escaped, with the spans between backticks of a
//! summary as `<code>`); `*.md.j2` is not escaped, and has two filters: `code` (a Markdown
//! code span that survives backticks inside) and `cell` (safe in a table cell: `|` escaped,
//! lines joined).
//! Blocks trim their newline (`trim_blocks`, `lstrip_blocks`).

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

/// The built-in templates, by file name.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("report.md.j2", include_str!("../templates/report.md.j2")),
    (
        "timeline.md.j2",
        include_str!("../templates/timeline.md.j2"),
    ),
    ("impact.md.j2", include_str!("../templates/impact.md.j2")),
    (
        "root_cause.md.j2",
        include_str!("../templates/root_cause.md.j2"),
    ),
    ("actions.md.j2", include_str!("../templates/actions.md.j2")),
    ("lessons.md.j2", include_str!("../templates/lessons.md.j2")),
    (
        "other_section.md.j2",
        include_str!("../templates/other_section.md.j2"),
    ),
    (
        "report.html.j2",
        include_str!("../templates/report.html.j2"),
    ),
    ("report.css.j2", include_str!("../templates/report.css.j2")),
    (
        "timeline.html.j2",
        include_str!("../templates/timeline.html.j2"),
    ),
    (
        "impact.html.j2",
        include_str!("../templates/impact.html.j2"),
    ),
    (
        "root_cause.html.j2",
        include_str!("../templates/root_cause.html.j2"),
    ),
    (
        "actions.html.j2",
        include_str!("../templates/actions.html.j2"),
    ),
    (
        "lessons.html.j2",
        include_str!("../templates/lessons.html.j2"),
    ),
    (
        "other_section.html.j2",
        include_str!("../templates/other_section.html.j2"),
    ),
    ("steps.html.j2", include_str!("../templates/steps.html.j2")),
];

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown.
    Markdown,
    /// One self-contained HTML file.
    Html,
}

impl ReportFormat {
    /// The main template's file name.
    #[must_use]
    pub fn main_template(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "report.md.j2",
            ReportFormat::Html => "report.html.j2",
        }
    }
}

/// A template that does not load or render.
#[derive(Debug, thiserror::Error)]
#[error("template `{file}`{}: {message}", line.map_or_else(String::new, |l| format!(" line {l}")))]
pub struct TemplateError {
    /// The file (an override's path) or `built-in NAME`.
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// The templates: the built-in ones, overridden by file name from `dir`.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    dir: Option<PathBuf>,
}

impl Templates {
    /// The built-in templates, overridden by the files of `dir` when given.
    #[must_use]
    pub fn new(dir: Option<&Path>) -> Templates {
        Templates {
            dir: dir.map(Path::to_path_buf),
        }
    }

    /// Render `context` (a report as JSON) in `format`.
    ///
    /// # Errors
    /// A template that cannot be read, does not parse, or fails while rendering: the file
    /// and line are named.
    pub fn render(
        &self,
        format: ReportFormat,
        context: &serde_json::Value,
    ) -> Result<String, TemplateError> {
        let env = environment(self.dir.clone()).map_err(|e| self.error(&e))?;
        let tmpl = env
            .get_template(format.main_template())
            .map_err(|e| self.error(&e))?;
        tmpl.render(Value::from(minijinja::value::Serde(context)))
            .map_err(|e| self.error(&e))
    }

    /// The innermost error that names its template (an included one fails inside the
    /// include), with the file it came from.
    fn error(&self, e: &minijinja::Error) -> TemplateError {
        let mut inner = e;
        let mut cur: &dyn std::error::Error = e;
        // Bounded: a chain of includes is as deep as minijinja's recursion limit at most.
        for _ in 0..64 {
            let Some(next) = cur.source() else { break };
            if let Some(m) = next.downcast_ref::<minijinja::Error>() {
                if m.name().is_some() {
                    inner = m;
                }
            }
            cur = next;
        }
        let name = inner.name().or(e.name());
        let file = match name {
            Some(n) => match self.dir.as_deref().map(|d| d.join(n)) {
                Some(p) if is_plain(n) && p.is_file() => p.display().to_string(),
                _ => format!("built-in {n}"),
            },
            None => "(no template)".to_owned(),
        };
        let message = match inner.detail() {
            Some(d) => format!("{}: {d}", inner.kind()),
            None => inner.kind().to_string(),
        };
        TemplateError {
            file,
            line: inner.line().or(e.line()),
            message,
        }
    }
}

/// The environment the templates render in, loading from `dir` first.
fn environment(dir: Option<PathBuf>) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_loader(move |name| load(dir.as_deref(), name));
    env.add_filter("code", code);
    env.add_filter("cell", cell);
    env.add_filter("ticks", ticks);
    Ok(env)
}

/// A plain file name: no directory part, not hidden, not `..`.
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && Path::new(name).file_name().is_some_and(|f| f == name)
}

fn load(dir: Option<&Path>, name: &str) -> Result<Option<String>, minijinja::Error> {
    if !is_plain(name) {
        return Ok(None);
    }
    if let Some(dir) = dir {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("cannot read `{}`: {e}", path.display()),
                ));
            }
        }
    }
    Ok(BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| (*text).to_owned()))
}

fn text(v: &Value) -> String {
    if v.is_undefined() || v.is_none() {
        String::new()
    } else {
        v.to_string()
    }
}

/// A Markdown code span around `v`, its fence longer than any run of backticks inside.
fn code(v: &Value) -> String {
    let s = text(v);
    if s.is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// `v` made safe for a Markdown table cell: `|` escaped, line breaks as spaces.
fn cell(v: &Value) -> String {
    text(v)
        .replace('|', "\\|")
        .replace("\r\n", " ")
        .replace(['\n', '\r'], " ")
}

/// HTML: `v` escaped, its spans between backticks (`touch` exited 0) as `<code>`.
fn ticks(v: &Value) -> Value {
    let escaped = minijinja::HtmlEscape(&text(v)).to_string();
    if escaped.matches('`').count() % 2 != 0 {
        return Value::from_safe_string(escaped);
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    for (i, part) in escaped.split('`').enumerate() {
        if i > 0 {
            out.push_str(if i % 2 == 1 { "<code>" } else { "</code>" });
        }
        out.push_str(part);
    }
    Value::from_safe_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks_and_cells_survive_pipes() {
        assert_eq!(code(&Value::from("a")), "`a`");
        assert_eq!(code(&Value::from("`touch` ok")), "`` `touch` ok ``");
        assert_eq!(code(&Value::from(())), "");
        assert_eq!(cell(&Value::from("a | b\nc")), "a \\| b c");
    }

    #[test]
    fn ticks_escape_first_then_mark_code() {
        assert_eq!(
            ticks(&Value::from("`<touch>` exited & `0`")).to_string(),
            "<code>&lt;touch&gt;</code> exited &amp; <code>0</code>"
        );
        assert_eq!(
            ticks(&Value::from("odd ` <b>")).to_string(),
            "odd ` &lt;b&gt;"
        );
    }

    #[test]
    fn only_plain_names_are_looked_up() {
        assert!(is_plain("report.md.j2"));
        for bad in ["", "../x", "a/b", ".hidden", "..", "/etc/passwd"] {
            assert!(!is_plain(bad), "{bad}");
        }
        assert!(load(None, "report.md.j2").unwrap().is_some());
        assert!(load(None, "../report.md.j2").unwrap().is_none());
    }

    #[test]
    fn every_built_in_template_parses() {
        let env = environment(None).unwrap();
        for (name, _) in BUILT_IN {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
