//! Parameter values: checking defaults against a type, and parsing `--set k=v`.

use serde_json::Value;

use crate::runbook::model::ParamType;
use crate::runbook::node::Node;
use crate::runbook::value::parse_duration;

/// Check a YAML default against a type; return it as JSON.
///
/// # Errors
/// A message naming the expected type.
pub fn from_node(ty: ParamType, node: &Node) -> Result<Value, String> {
    match (ty, node) {
        (ParamType::Int, Node::Int(i)) => Ok(Value::from(*i)),
        (ParamType::Float, Node::Int(i)) => Ok(Value::from(*i as f64)),
        (ParamType::Float, Node::Float(f)) => Ok(Value::from(*f)),
        (ParamType::Bool, Node::Bool(b)) => Ok(Value::Bool(*b)),
        (ParamType::List, Node::Seq(items)) => items
            .iter()
            .map(|i| match &i.value {
                Node::Str(s) => Ok(Value::String(s.clone())),
                Node::Int(n) => Ok(Value::String(n.to_string())),
                other => Err(format!("a list holds strings, found {}", other.kind())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (
            ParamType::String
            | ParamType::Duration
            | ParamType::Url
            | ParamType::Path
            | ParamType::Name,
            Node::Str(s),
        ) => parse(ty, s),
        (_, other) => Err(format!("expected {}, found {}", describe(ty), other.kind())),
    }
}

/// Parse a value given as text (`--set k=v`, an alert label).
///
/// # Errors
/// A message naming the expected type.
pub fn parse(ty: ParamType, text: &str) -> Result<Value, String> {
    if text.contains('\0') {
        return Err("a value may not contain NUL".into());
    }
    let bad = || format!("expected {}, found `{text}`", describe(ty));
    match ty {
        ParamType::String => Ok(Value::String(text.to_owned())),
        ParamType::Int => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad()),
        ParamType::Float => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(bad),
        ParamType::Bool => match text.trim() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        ParamType::Duration => parse_duration(text).map(|_| Value::String(text.trim().to_owned())),
        ParamType::Url => {
            let rest = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("https://"))
                .ok_or_else(bad)?;
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(bad())
            } else {
                Ok(Value::String(text.to_owned()))
            }
        }
        ParamType::Path => {
            if text.is_empty() || text.contains('\n') {
                Err(bad())
            } else {
                Ok(Value::String(text.to_owned()))
            }
        }
        ParamType::Name => {
            if !text.is_empty()
                && !text.starts_with('-')
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
            {
                Ok(Value::String(text.to_owned()))
            } else {
                Err(bad())
            }
        }
        ParamType::List => Ok(Value::Array(
            text.split(',')
                .map(|s| Value::String(s.trim().to_owned()))
                .filter(|v| v.as_str() != Some(""))
                .collect(),
        )),
    }
}

fn describe(ty: ParamType) -> &'static str {
    match ty {
        ParamType::String => "a string",
        ParamType::Int => "an integer",
        ParamType::Float => "a number",
        ParamType::Bool => "true or false",
        ParamType::Duration => "a duration such as `5s` or `10m`",
        ParamType::Url => "an http:// or https:// URL",
        ParamType::Path => "a path",
        ParamType::Name => "a name (letters, digits, `@._:-`, not starting with `-`)",
        ParamType::List => "a list of strings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_type_and_refuses_bad_values() {
        assert_eq!(parse(ParamType::Int, "42").unwrap(), Value::from(42));
        assert!(parse(ParamType::Int, "4x").is_err());
        assert!(parse(ParamType::Float, "NaN").is_err());
        assert_eq!(parse(ParamType::Bool, "yes").unwrap(), Value::Bool(true));
        assert!(parse(ParamType::Duration, "5 parsecs").is_err());
        assert!(parse(ParamType::Url, "ftp://x").is_err());
        assert!(parse(ParamType::Url, "http://").is_err());
        assert!(parse(ParamType::Url, "http://127.0.0.1:8001/x").is_ok());
        assert!(parse(ParamType::Name, "--help").is_err());
        assert!(parse(ParamType::Name, "aurora-live-feed.service").is_ok());
        assert!(parse(ParamType::String, "a\0b").is_err());
        assert_eq!(
            parse(ParamType::List, "a, b,").unwrap(),
            serde_json::json!(["a", "b"])
        );
    }
}
