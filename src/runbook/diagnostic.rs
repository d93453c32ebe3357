//! Diagnostics: every problem found in a runbook, with a stable kebab-case code and a span.
//!
//! Rendered three ways: for people (miette, `file:line:col` with the line and a caret), as
//! JSON, and as GitHub workflow commands (`::error file=…,line=…,col=…::…`).

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;
use serde_saphyr::Location;

/// A file as read, kept for rendering snippets.
#[derive(Debug)]
pub struct SourceFile {
    /// The name shown in diagnostics (the path as given).
    pub name: String,
    /// The text.
    pub text: String,
    named: NamedSource<String>,
}

impl SourceFile {
    /// Wrap a file's name and text.
    #[must_use]
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let name = name.into();
        let text = text.into();
        let named = NamedSource::new(name.clone(), text.clone());
        Arc::new(SourceFile { name, text, named })
    }

    /// 1-based line and column (in characters) of a byte offset.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line = before.split(|&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let col = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        (line, col)
    }

    /// The byte offset of a 1-based line and column (in characters).
    #[must_use]
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return offset
                    + l.char_indices()
                        .nth(col.saturating_sub(1))
                        .map_or(l.len(), |(b, _)| b);
            }
            offset += l.len();
        }
        self.text.len()
    }

    /// The byte span of a parser location (start, length); zero-length when unknown.
    #[must_use]
    pub fn span_of(&self, loc: Location) -> Span {
        if loc.line() == 0 {
            return Span { offset: 0, len: 0 };
        }
        let offset = loc.span().byte_offset().map_or_else(
            || {
                self.offset_of(
                    usize::try_from(loc.line()).unwrap_or(usize::MAX),
                    usize::try_from(loc.column()).unwrap_or(usize::MAX),
                )
            },
            |o| usize::try_from(o).unwrap_or(usize::MAX),
        );
        let offset = offset.min(self.text.len());
        let len = loc
            .span()
            .byte_len()
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0)
            .min(self.text.len() - offset);
        Span { offset, len }
    }

    /// The span of the last `needle` before `loc` (a mapping key, whose own location the
    /// parser does not keep), else `loc`'s span.
    #[must_use]
    pub fn span_before(&self, loc: Location, needle: &str) -> Span {
        let at = self.span_of(loc);
        match self.text.get(..at.offset).and_then(|t| t.rfind(needle)) {
            Some(p) if !needle.is_empty() => Span {
                offset: p,
                len: needle.len(),
            },
            _ => at,
        }
    }

    /// The span of `needle` inside the scalar at `loc` (a reference inside an expression),
    /// else the scalar's own span.
    #[must_use]
    pub fn span_within(&self, loc: Location, needle: &str) -> Span {
        let outer = self.span_of(loc);
        let end = (outer.offset + outer.len.max(1)).min(self.text.len());
        // The scalar's own span may stop at its first line for block scalars; look a bit on.
        let search_end = self.text[end..]
            .find("\n\n")
            .map_or(self.text.len(), |p| end + p)
            .min(outer.offset + 4096)
            .min(self.text.len());
        let hay = self.text.get(outer.offset..search_end).unwrap_or("");
        match hay.find(needle) {
            Some(p) if !needle.is_empty() => Span {
                offset: outer.offset + p,
                len: needle.len(),
            },
            _ => outer,
        }
    }
}

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Byte offset.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails validation.
    Error,
    /// Reported, does not fail.
    Warning,
}

/// One problem, located.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable kebab-case code (`unknown-check`, `graph-cycle`, ...).
    pub code: &'static str,
    /// Lowercase fragment; identifiers in backticks.
    pub message: String,
    /// The file it is in.
    pub source: Option<Arc<SourceFile>>,
    /// Where in that file.
    pub span: Option<Span>,
    /// A short label under the caret.
    pub label: Option<String>,
    /// A hint.
    pub help: Option<String>,
    /// Error or warning.
    pub severity: Severity,
}

impl Diagnostic {
    /// A new error.
    #[must_use]
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            source: None,
            span: None,
            label: None,
            help: None,
            severity: Severity::Error,
        }
    }

    /// Attach the file and span.
    #[must_use]
    pub fn at(mut self, source: &Arc<SourceFile>, span: Span) -> Self {
        self.source = Some(Arc::clone(source));
        self.span = Some(span);
        self
    }

    /// Attach a file with no particular span.
    #[must_use]
    pub fn in_file(mut self, source: &Arc<SourceFile>) -> Self {
        self.source = Some(Arc::clone(source));
        self
    }

    /// Attach a label.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Attach a hint.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Make it a warning.
    #[must_use]
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// File name, 1-based line and column.
    #[must_use]
    pub fn position(&self) -> Option<(&str, usize, usize)> {
        let source = self.source.as_ref()?;
        let (line, col) = self.span.map_or((1, 1), |s| source.line_col(s.offset));
        Some((source.name.as_str(), line, col))
    }

    /// Render for people: `file:line:col`, the line, and a caret.
    #[must_use]
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_links(false)
            .with_width(120)
            .with_context_lines(1);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("{self}\n");
        }
        out
    }

    /// One GitHub workflow command.
    #[must_use]
    pub fn render_github(&self) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let message = format!("[{}] {}", self.code, self.message)
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        match self.position() {
            Some((file, line, col)) => {
                let file = file
                    .replace('%', "%25")
                    .replace(',', "%2C")
                    .replace(':', "%3A");
                format!(
                    "::{level} file={file},line={line},col={col},title={}::{message}",
                    self.code
                )
            }
            None => format!("::{level} title={}::{message}", self.code),
        }
    }

    /// As JSON.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let pos = self.position();
        serde_json::json!({
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": pos.map(|p| p.0),
            "line": pos.map(|p| p.1),
            "column": pos.map(|p| p.2),
            "label": self.label,
            "help": self.help,
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let pos = self.position().map(|(f, l, c)| format!(" {f}:{l}:{c}"));
        Some(Box::new(format!(
            "{}{}",
            self.code,
            pos.unwrap_or_default()
        )))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        match (&self.source, self.span) {
            (Some(s), Some(_)) => Some(&s.named as &dyn SourceCode),
            _ => None,
        }
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        self.source.as_ref()?;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some(self.label.clone().unwrap_or_else(|| "here".into())),
            span.offset,
            span.len,
        ))))
    }
}
