//! A check's result as a scenario gives it, checked against the check's probe, and what the
//! probe would have answered for each sample.

use std::sync::Arc;

use serde_json::{Map, Value};
use serde_saphyr::{Location, Spanned};

use crate::probes::{ProbeKind, ProbeOutcome};
use crate::runbook::diagnostic::{Diagnostic, SourceFile};
use crate::runbook::model::Check;
use crate::runbook::node::Node;

/// Fields the engine computes: a scenario gives the probe's observations, never its verdict.
const COMPUTED: &[(&str, &str)] = &[
    ("ok", "is decided by the check's `expect`"),
    ("failed", "is decided by the check's `expect`"),
    ("skipped", "is decided by the check's `when`"),
    ("state", "is decided by the check's `expect`"),
    ("duration_ms", "is measured by the engine"),
    ("delta", "is computed from `values`"),
    ("rate_per_s", "is computed from `values`"),
    ("reason", "comes with `unreachable`, `error` or `unknown`"),
];

/// What a probe saw, as given.
#[derive(Debug, Clone, PartialEq)]
pub enum Given {
    /// The probe looked: its result fields; `values` (sampled checks) gives each sample's
    /// `value`.
    Observed {
        /// Result fields, the same for every sample.
        fields: Map<String, Value>,
        /// Each sample's `value`, in order.
        values: Option<Vec<Value>>,
    },
    /// The target refused, reset or timed out: the check is `failed` with this reason.
    Unreachable(String),
    /// The probe could not look: the check is `error`.
    Error(String),
    /// Nobody could answer: the check is `unknown`.
    Unknown(String),
}

impl Given {
    /// The probe's answer for sample `sample` (from 0).
    #[must_use]
    pub fn outcome(&self, sample: u32) -> ProbeOutcome {
        match self {
            Given::Observed { fields, values } => {
                let mut m = fields.clone();
                if let Some(values) = values {
                    let i = (sample as usize).min(values.len().saturating_sub(1));
                    if let Some(v) = values.get(i) {
                        m.insert("value".into(), v.clone());
                    }
                }
                ProbeOutcome::Observed(m)
            }
            Given::Unreachable(r) => ProbeOutcome::unreachable(r.clone()),
            Given::Error(e) => ProbeOutcome::Error(e.clone()),
            Given::Unknown(e) => ProbeOutcome::Unknown(e.clone()),
        }
    }

    /// Read a result given for `check`: a mapping of its probe's result fields, or one of
    /// `{unreachable: reason}`, `{error: reason}`, `{unknown: reason}`.
    ///
    /// # Errors
    /// Every problem found, located.
    pub fn parse(
        src: &Arc<SourceFile>,
        node: &Spanned<Node>,
        check: &Check,
    ) -> Result<Given, Vec<Diagnostic>> {
        let Node::Map(entries) = &node.value else {
            return Err(vec![
                Diagnostic::error(
                    "wrong-type",
                    format!(
                        "the result of check `{}` must be a mapping of its result fields, found {}",
                        check.id,
                        node.value.kind()
                    ),
                )
                .at(src, src.span_of(node.referenced))
                .help("e.g. `{ status: 200 }`, `{ unreachable: connection refused }`, `{ error: no systemd }`"),
            ]);
        };
        let mut r = Reader {
            src,
            check,
            alone: entries.len() == 1,
            errors: Vec::new(),
            fields: Map::new(),
            values: None,
            special: None,
        };
        for (key, value) in entries {
            r.entry(key, value);
        }
        r.finish()
    }
}

/// Reads the entries of one given result.
struct Reader<'a> {
    src: &'a Arc<SourceFile>,
    check: &'a Check,
    /// The mapping has one entry.
    alone: bool,
    errors: Vec<Diagnostic>,
    fields: Map<String, Value>,
    values: Option<Vec<Value>>,
    special: Option<(&'static str, String)>,
}

impl Reader<'_> {
    fn error(&mut self, code: &'static str, message: String, at: Location) {
        self.errors
            .push(Diagnostic::error(code, message).at(self.src, self.src.span_of(at)));
    }

    fn entry(&mut self, key: &Spanned<String>, value: &Spanned<Node>) {
        let k = key.value.as_str();
        match k {
            "unreachable" | "error" | "unknown" => self.special(key, value),
            "values" => self.values(key, value),
            _ => {
                if let Some((_, why)) = COMPUTED.iter().find(|(f, _)| *f == k) {
                    self.error(
                        "computed-field",
                        format!("`{k}` {why}; give the probe's own result fields"),
                        key.referenced,
                    );
                } else if self.check.probe.has_field(k, self.check.sample.is_some()) {
                    self.fields.insert(k.to_owned(), value.value.to_json());
                } else {
                    self.errors.push(unknown_field(self.src, key, self.check));
                }
            }
        }
    }

    fn special(&mut self, key: &Spanned<String>, value: &Spanned<Node>) {
        let (name, what) = match key.value.as_str() {
            "unreachable" => ("unreachable", "got no answer"),
            "error" => ("error", "could not look"),
            _ => ("unknown", "got no answer from a person"),
        };
        if !self.alone {
            self.error(
                "bad-result",
                format!("`{name}` stands alone: a probe that {what} has no result fields"),
                key.referenced,
            );
        }
        let reason = match &value.value {
            Node::Null => name.to_owned(),
            other => match other.to_json() {
                Value::String(s) => s,
                v => v.to_string(),
            },
        };
        self.special = Some((name, reason));
    }

    fn values(&mut self, key: &Spanned<String>, value: &Spanned<Node>) {
        let Some(sample) = self.check.sample.as_ref() else {
            self.error(
                "bad-result",
                format!(
                    "check `{}` does not sample: give `value`, not `values`",
                    self.check.id
                ),
                key.referenced,
            );
            return;
        };
        let Node::Seq(items) = &value.value else {
            self.error(
                "wrong-type",
                "`values` is a list, one value per sample".into(),
                value.referenced,
            );
            return;
        };
        if items.len() != sample.times as usize {
            self.error(
                "bad-result",
                format!(
                    "check `{}` takes {} samples; `values` gives {}",
                    self.check.id,
                    sample.times,
                    items.len()
                ),
                value.referenced,
            );
        }
        self.values = Some(items.iter().map(|i| i.value.to_json()).collect());
    }

    fn finish(mut self) -> Result<Given, Vec<Diagnostic>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        Ok(match self.special {
            Some(("unreachable", r)) => Given::Unreachable(r),
            Some(("error", r)) => Given::Error(r),
            Some((_, r)) => Given::Unknown(r),
            None => {
                // The manual probe answers in both fields.
                if self.check.probe == ProbeKind::Manual
                    && let Some(a) = self.fields.get("answer").cloned()
                {
                    self.fields.entry("value").or_insert(a);
                }
                Given::Observed {
                    fields: self.fields,
                    values: self.values,
                }
            }
        })
    }
}

fn unknown_field(src: &Arc<SourceFile>, key: &Spanned<String>, check: &Check) -> Diagnostic {
    let probe = check.probe;
    let mut known: Vec<&str> = probe.fields().to_vec();
    known.extend(["status", "value"]);
    if check.sample.is_some() {
        known.push("values");
    }
    known.extend(["unreachable", "error", "unknown"]);
    let hint = crate::runbook::compile::suggest(&key.value, known.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    Diagnostic::error(
        "unknown-field",
        format!(
            "check `{}` (probe `{}`) has no result field `{}`{hint}",
            check.id,
            probe.name(),
            key.value
        ),
    )
    .at(src, src.span_of(key.referenced))
    .help(format!("its fields: {}", known.join(", ")))
}
