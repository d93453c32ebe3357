//! Parameter values: checking defaults against a type, and parsing `--set k=v`.

use serde_json::Value;

use crate::runbook::model::{Param, ParamType};
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

/// Parse a value given from outside the runbook (`--set`, an alert label, a generic
/// delivery's params) for `p`: its type, then its `hosts`.
///
/// # Errors
/// A message naming the expected type, or the host that is not allowed.
pub fn admit(p: &Param, text: &str) -> Result<Value, String> {
    let v = parse(p.ty, text)?;
    if let Some(s) = v.as_str() {
        check_host(p.ty, s, &p.hosts)?;
    }
    Ok(v)
}

/// Whether `value` names one of `hosts` (none: any): a `url` by its host, any other type by
/// the value itself.
///
/// # Errors
/// A message naming the host and the allowed ones.
pub fn check_host(ty: ParamType, value: &str, hosts: &[String]) -> Result<(), String> {
    if hosts.is_empty() {
        return Ok(());
    }
    let host = if ty == ParamType::Url {
        // The parser reqwest uses: the host the request would go to, whatever userinfo,
        // backslashes or percent-encoding the text holds.
        let url = reqwest::Url::parse(value).map_err(|e| format!("`{value}`: {e}"))?;
        url.host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .ok_or_else(|| format!("`{value}` names no host"))?
    } else {
        value.to_owned()
    };
    if hosts.iter().any(|pat| host_matches(pat, &host)) {
        Ok(())
    } else {
        Err(format!(
            "host `{host}` is not one this param may name ({})",
            hosts.join(", ")
        ))
    }
}

/// `example.com` matches itself (any case); `*.example.com` matches any name below it.
#[must_use]
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1 && {
                let (head, tail) = host.split_at(host.len() - suffix.len());
                head.ends_with('.') && tail.eq_ignore_ascii_case(suffix)
            }
        }
        None => pattern.eq_ignore_ascii_case(host),
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

    #[test]
    fn hosts_pin_a_url_by_the_host_it_would_reach() {
        let hosts = [
            "127.0.0.1".to_owned(),
            "::1".into(),
            "*.aurora.example".into(),
        ];
        let ok = |v: &str| check_host(ParamType::Url, v, &hosts).is_ok();
        assert!(ok("http://127.0.0.1:8001/sse"));
        assert!(ok("http://[::1]:8001/"));
        assert!(ok("https://feed.aurora.example/healthz"));
        assert!(ok("https://A.B.AURORA.EXAMPLE./"));
        // Userinfo, backslashes and encodings do not fool it: the host is reqwest's.
        assert!(!ok("http://127.0.0.1@evil.example/"));
        assert!(!ok("http://127.0.0.1.evil.example/"));
        assert!(!ok("http://evil.example\\@127.0.0.1/"));
        assert!(!ok("http://aurora.example/"));
        assert!(!ok("http://evilaurora.example/"));
        assert!(!ok("http://169.254.169.254/latest/meta-data/"));
        assert!(ok("http://%31%32%37.0.0.1/"));
        let err = check_host(ParamType::Url, "http://evil.example:8001/", &hosts).unwrap_err();
        assert!(
            err.contains("`evil.example`") && err.contains("*.aurora.example"),
            "{err}"
        );
        // A name is its own host; no hosts: anything goes.
        assert!(check_host(ParamType::Name, "db.aurora.example", &hosts).is_ok());
        assert!(check_host(ParamType::Name, "evil.example", &hosts).is_err());
        assert!(check_host(ParamType::Url, "http://evil.example/", &[]).is_ok());
    }
}
