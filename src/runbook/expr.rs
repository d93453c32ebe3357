//! Expressions (`when`, `expect`) and templates (`{{ }}`) are minijinja with strict undefined.
//!
//! The compiler only parses them and lists the variables they reference; rendering and
//! evaluation happen in `plan` (params only) and in the executor.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};

/// The shared environment: strict undefined, no auto-escaping.
#[must_use]
pub fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env
    })
}

/// A parse error with its byte range inside the expression or template.
#[derive(Debug, Clone)]
pub struct ExprError {
    /// minijinja's message.
    pub message: String,
    /// Byte range in the source text, when known.
    pub range: Option<std::ops::Range<usize>>,
}

fn error(e: &minijinja::Error) -> ExprError {
    ExprError {
        message: e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_owned),
        range: e.range(),
    }
}

/// Parse an expression; return the dotted variable paths it reads (`checks.healthz.ok`).
///
/// # Errors
/// The syntax error.
pub fn expression_refs(source: &str) -> Result<BTreeSet<String>, ExprError> {
    let expr = env().compile_expression(source).map_err(|e| error(&e))?;
    Ok(expr.undeclared_variables(true).into_iter().collect())
}

/// Parse a template; return the dotted variable paths it reads.
///
/// # Errors
/// The syntax error.
pub fn template_refs(source: &str) -> Result<BTreeSet<String>, ExprError> {
    let tmpl = env().template_from_str(source).map_err(|e| error(&e))?;
    Ok(tmpl.undeclared_variables(true).into_iter().collect())
}

/// Render a template against a context.
///
/// # Errors
/// An undefined value or a failing filter.
pub fn render(source: &str, ctx: &serde_json::Value) -> Result<String, String> {
    env()
        .render_str(source, minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| e.detail().map_or_else(|| e.to_string(), str::to_owned))
}

/// Evaluate an expression to a boolean (truthiness).
///
/// # Errors
/// An undefined value or a type error.
pub fn eval_bool(source: &str, ctx: &serde_json::Value) -> Result<bool, String> {
    let expr = env()
        .compile_expression(source)
        .map_err(|e| e.to_string())?;
    expr.eval(minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map(|v| v.is_true())
        .map_err(|e| e.detail().map_or_else(|| e.to_string(), str::to_owned))
}
