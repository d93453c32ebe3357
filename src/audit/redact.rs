//! Secret redaction: every occurrence of a secret string becomes `***`.

use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Replace every occurrence of every secret in `value` (strings at any depth, and object
/// keys) with `***`. Empty secrets are ignored: they would match everywhere.
pub fn redact(value: &mut Value, secrets: &[String]) {
    if secrets.iter().all(String::is_empty) {
        return;
    }
    match value {
        Value::String(s) => {
            if let Some(r) = redact_str(s, secrets) {
                *s = r;
            }
        }
        Value::Array(items) => {
            for v in items {
                redact(v, secrets);
            }
        }
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                redact(&mut v, secrets);
                let k = redact_str(&k, secrets).unwrap_or(k);
                map.insert(k, v);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `s` with every secret replaced by `***`, or `None` when it holds none.
#[must_use]
pub fn redact_str(s: &str, secrets: &[String]) -> Option<String> {
    let mut out: Option<String> = None;
    // Longest first, so a secret that contains another is masked whole.
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in sorted {
        let cur = out.as_deref().unwrap_or(s);
        if cur.contains(secret.as_str()) {
            out = Some(cur.replace(secret.as_str(), MASK));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_keys_and_substrings() {
        let secrets = vec!["hunter2".to_owned(), String::new()];
        let mut v = json!({
            "argv": ["curl", "-u", "admin:hunter2"],
            "env": {"hunter2": "x", "n": 1},
            "deep": [{"a": "hunter2hunter2"}]
        });
        redact(&mut v, &secrets);
        assert_eq!(
            v,
            json!({
                "argv": ["curl", "-u", "admin:***"],
                "env": {"***": "x", "n": 1},
                "deep": [{"a": "******"}]
            })
        );
    }

    #[test]
    fn longest_secret_first() {
        let secrets = vec!["abc".to_owned(), "abcdef".to_owned()];
        assert_eq!(redact_str("xabcdefx", &secrets).as_deref(), Some("x***x"));
        assert_eq!(redact_str("nothing", &secrets), None);
    }
}
