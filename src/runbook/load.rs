//! Reading files: size and encoding checks, then serde-saphyr under a tight budget.
//!
//! A runbook is small. Anything over [`MAX_FILE_BYTES`], nested deeper than [`MAX_DEPTH`],
//! with alias expansion beyond a few thousand events, or with more than one document is
//! rejected before or while parsing, fast, with a located diagnostic.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_saphyr::Error as YamlError;
use serde_saphyr::budget::BudgetBreach;

use crate::runbook::diagnostic::{Diagnostic, SourceFile, Span};

/// Largest runbook file accepted.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 24;

/// Read a file into a [`SourceFile`], refusing what is too large or not UTF-8.
///
/// # Errors
/// `io-error`, `file-too-large`, `not-utf8`.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let name = path.display().to_string();
    let io =
        |e: std::io::Error| Diagnostic::error("io-error", format!("cannot read `{name}`: {e}"));
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(&name, Some(meta.len())));
    }
    // A pipe (`validate <(gen)`) reports length 0 and a file may grow after `metadata`: read at
    // most one byte past the limit so memory stays bounded whatever the length claimed.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(&name, None));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let src = SourceFile::new(name.clone(), text);
            let span = crate::runbook::diagnostic::Span { offset, len: 1 };
            Err(
                Diagnostic::error("not-utf8", format!("`{name}` is not valid UTF-8"))
                    .at(&src, span)
                    .label("invalid byte"),
            )
        }
    }
}

/// `len` is `None` when the file was read only up to the limit (a pipe).
fn too_large(name: &str, len: Option<u64>) -> Diagnostic {
    let size = len.map_or_else(
        || format!("over {MAX_FILE_BYTES} bytes"),
        |len| format!("{len} bytes"),
    );
    Diagnostic::error(
        "file-too-large",
        format!("`{name}` is {size}; a runbook file may be at most {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
    .help("split it into several runbooks")
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            // The scanner refuses `[[[…` itself, ahead of the depth budget: cap it at the same
            // depth (its default is 255) so both limits say the same thing.
            flow_nesting_limit: MAX_DEPTH,
            max_documents: 2,
            max_nodes: 100_000,
            max_events: 400_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_total_scalar_bytes: 2 * 1024 * 1024,
            max_recorded_anchor_events: 20_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 20_000,
            max_replay_stack_depth: 8,
        },
    }
}

/// Parse a source file into `T`.
///
/// # Errors
/// One located diagnostic for the first problem (serde stops at the first).
pub fn parse<T: DeserializeOwned>(src: &Arc<SourceFile>) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options::<T>(&src.text, options())
        .map_err(|e| yaml_diagnostic(src, &e))
}

/// Turn a serde-saphyr error into a diagnostic with a stable code.
#[must_use]
pub fn yaml_diagnostic(src: &Arc<SourceFile>, err: &YamlError) -> Diagnostic {
    let err = err.without_snippet();
    let code = code_of(err);
    let mut message = err.to_string();
    // serde-saphyr appends " at line N, column M"; the snippet already shows it.
    if let Some((head, tail)) = message.rsplit_once(" at line ")
        && tail
            .split(", column ")
            .all(|p| p.trim().chars().all(|c| c.is_ascii_digit()))
    {
        message = head.to_owned();
    }
    let message = humanize(code, &message);
    let mut d = Diagnostic::error(code, message).in_file(src);
    if let Some(loc) = err.location() {
        let span = src.span_of(loc);
        d = match code {
            // The parser reports a missing key at the mapping's last key; point at the start of
            // the mapping that lacks it instead.
            "missing-key" => d
                .at(src, mapping_start(src, span))
                .label("this mapping lacks it"),
            "unknown-anchor" => {
                let name: String = src.text[span.offset..]
                    .trim_start_matches('*')
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !",]}".contains(*c))
                    .collect();
                d.message = format!("unknown anchor `{name}`");
                d.at(src, span)
                    .help("define it with `&name` before using `*name`")
            }
            _ => d.at(src, span),
        };
    }
    match code {
        "unknown-key" => d.label("not a known key"),
        "too-deep" => d.help(format!("runbooks nest at most {MAX_DEPTH} levels")),
        "alias-bomb" => {
            d.help("anchors and aliases may not expand into more than a few thousand nodes")
        }
        "multiple-documents" => d.help("one runbook per file; remove the `---` separator"),
        _ => d,
    }
}

/// The first key of the block mapping holding the key at `span` (a `- ` item or a parent key).
fn mapping_start(src: &SourceFile, span: Span) -> Span {
    let text = &src.text;
    let line_start = text[..span.offset].rfind('\n').map_or(0, |p| p + 1);
    let indent = span.offset - line_start;
    let line = &text[line_start..];
    // Inside a flow mapping (`{ a: 1 }`) or at the top level: keep the parser's place.
    if indent == 0 || !line[..indent].chars().all(|c| c == ' ' || c == '-') {
        return span;
    }
    let mut start = line_start;
    let mut first_key = span.offset;
    while start > 0 {
        let prev_start = text[..start - 1].rfind('\n').map_or(0, |p| p + 1);
        let prev = &text[prev_start..start - 1];
        let trimmed = prev.trim_start();
        let prev_indent = prev.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            start = prev_start;
            continue;
        }
        if prev_indent + 2 == indent && trimmed.starts_with("- ") {
            first_key = prev_start + prev_indent + 2;
            break;
        }
        if prev_indent < indent {
            break;
        }
        if prev_indent == indent {
            first_key = prev_start + prev_indent;
        }
        start = prev_start;
    }
    let key_len = text[first_key..].find([':', '\n']).unwrap_or(0);
    Span {
        offset: first_key,
        len: key_len,
    }
}

fn humanize(code: &str, message: &str) -> String {
    // serde-saphyr's texts name its own options and Debug forms; say it for a runbook author.
    let message = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(message)
        .split(" (defined at")
        .next()
        .unwrap_or(message)
        .split(" at line ")
        .next()
        .unwrap_or(message);
    let number = message
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap_or("?");
    match code {
        "too-deep" if number == "?" => format!("nesting too deep: over the limit of {MAX_DEPTH}"),
        "too-deep" => format!("nesting too deep: depth {number} is over the limit of {MAX_DEPTH}"),
        "alias-bomb" => format!(
            "alias expansion too large: {number} exceeds the budget for anchors and aliases"
        ),
        "multiple-documents" => "more than one YAML document in the file".to_owned(),
        "unknown-value" => message.replace("unknown variant", "unknown value"),
        "missing-key" => message.replace("missing field", "missing key"),
        "wrong-type" if message.starts_with("expected ") => {
            let what = match message {
                "expected sequence start" => "expected a list (`[a, b]`, or `- a` lines)",
                "expected mapping start" => "expected a mapping (`key: value` lines)",
                "expected string scalar" => "expected a string",
                other => other,
            };
            format!("wrong type: {what}")
        }
        _ => message.to_owned(),
    }
}

fn code_of(err: &YamlError) -> &'static str {
    match err {
        YamlError::AliasError { error, .. } => match code_of(error) {
            "yaml-syntax" | "budget-exceeded" => "alias-bomb",
            other => other,
        },
        YamlError::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => "too-deep",
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => "alias-bomb",
            BudgetBreach::Documents { .. } => "multiple-documents",
            _ => "budget-exceeded",
        },
        YamlError::AliasReplayCounterOverflow { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => "alias-bomb",
        YamlError::MultipleDocuments { .. } => "multiple-documents",
        YamlError::SerdeUnknownField { .. } => "unknown-key",
        YamlError::SerdeMissingField { .. } => "missing-key",
        YamlError::DuplicateMappingKey { .. } => "duplicate-key",
        YamlError::SerdeUnknownVariant { .. } => "unknown-value",
        YamlError::Unexpected { .. }
        | YamlError::SerdeInvalidType { .. }
        | YamlError::SerdeInvalidValue { .. }
        | YamlError::SerdeInvalidLength { .. }
        | YamlError::InvalidScalar { .. }
        | YamlError::InvalidBooleanStrict { .. }
        | YamlError::NullIntoString { .. }
        | YamlError::NonFiniteFloat { .. }
        | YamlError::Message { .. } => "wrong-type",
        YamlError::UnknownAnchor { .. } => "unknown-anchor",
        // The scanner's flow-nesting cap (`flow_nesting_limit`), hit before `max_depth`.
        YamlError::ExternalMessage { msg, .. } if msg == "recursion limit exceeded" => "too-deep",
        _ => "yaml-syntax",
    }
}
