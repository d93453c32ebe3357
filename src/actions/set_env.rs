//! `set_env`: set `KEY=value` in an `EnvironmentFile` (e.g. `/etc/default/aurora-runner`)
//! atomically (write a temp file, fsync, rename), keeping a backup of the previous file.
//! This is how the seed's `export KELLY_MULTIPLIER=0.5; systemctl restart aurora-runner`
//! becomes durable. Mutating; usually paired with `rollback` + `revert_after`.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::actions::run::host_refusal;
use crate::actions::{ActionContext, ActionOutcome};
use crate::runbook::raw::SString;

/// `set_env:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSetEnv {
    /// The environment file.
    #[schemars(with = "String")]
    pub file: SString,
    /// The variable name.
    #[schemars(with = "String")]
    pub key: SString,
    /// The new value; may be a template.
    #[schemars(with = "String")]
    pub value: SString,
}

impl RawSetEnv {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.file, &self.key, &self.value]
    }
}

/// Run the action.
pub async fn execute(
    file: &str,
    key: &str,
    value: &str,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let label = format!("set `{key}` in `{file}`");
    if !valid_key(key) {
        return ActionOutcome::failed(format!(
            "{label}: `{}` is not a variable name",
            key.escape_debug()
        ));
    }
    if value.contains(['\0', '\n', '\r']) {
        return ActionOutcome::failed(format!("{label}: the value contains NUL or a newline"));
    }
    if let Err(e) = cx.host.permit_mutation(&label) {
        return host_refusal(&label, &e);
    }
    match tokio::time::timeout(cx.timeout, edit(Path::new(file), key, value, cx)).await {
        Ok(outcome) => outcome,
        Err(_) => ActionOutcome::failed(format!(
            "{label}: timed out after {} ms",
            cx.timeout.as_millis()
        )),
    }
}

async fn edit(path: &Path, key: &str, value: &str, cx: &ActionContext<'_>) -> ActionOutcome {
    let label = format!("set `{key}` in `{}`", path.display());
    let old = match tokio::fs::read(path).await {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => return ActionOutcome::failed(format!("{label}: the file is not UTF-8")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return ActionOutcome::failed(format!("{label}: cannot read: {e}")),
    };
    let (new, previous) = set_line(&old, key, value);
    let mut detail = Map::new();
    detail.insert("file".into(), json!(path.display().to_string()));
    detail.insert("key".into(), json!(key));
    detail.insert("value".into(), json!(value));
    detail.insert("previous".into(), json!(previous));
    if new == old {
        detail.insert("changed".into(), json!(false));
        detail.insert("backup".into(), Value::Null);
        return ActionOutcome {
            ok: true,
            summary: format!("{label}: already set"),
            detail,
        };
    }
    match cx.host.write_atomic(path, new.as_bytes()).await {
        Ok(backup) => {
            let backup = backup.map(|b| b.display().to_string());
            let summary = match &backup {
                Some(b) => format!("{label} (backup `{b}`)"),
                None => format!("{label} (new file)"),
            };
            detail.insert("changed".into(), json!(true));
            detail.insert("backup".into(), json!(backup));
            ActionOutcome {
                ok: true,
                summary,
                detail,
            }
        }
        Err(e) => host_refusal(&label, &e),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what both systemd and a shell accept as a name.
fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The file with `key` set to `value`, and the value it had (the last assignment wins, as in
/// systemd and a shell). The first assignment is replaced in place and later ones dropped;
/// other lines, comments and order stay as they were.
fn set_line(old: &str, key: &str, value: &str) -> (String, Option<String>) {
    let new_line = format!("{key}={}", quote(value));
    let mut previous = None;
    let mut replaced = false;
    let mut lines: Vec<String> = Vec::new();
    for line in old.lines() {
        if let Some(current) = assignment(line, key) {
            previous = Some(unquote(current));
            if !replaced {
                // Keep an `export ` prefix so a file that is also sourced by a shell still works.
                let export = if line.trim_start().starts_with("export ") {
                    "export "
                } else {
                    ""
                };
                lines.push(format!("{export}{new_line}"));
                replaced = true;
            }
            continue;
        }
        lines.push(line.to_owned());
    }
    if !replaced {
        lines.push(new_line);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    (out, previous)
}

/// The raw value of `line` when it assigns `key` (`KEY=v`, `export KEY=v`, spaces allowed).
fn assignment<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let rest = line.strip_prefix(key)?.trim_start();
    rest.strip_prefix('=').map(str::trim)
}

/// Bare when every character is safe everywhere; else double quotes, escaping what both
/// systemd and a shell treat specially inside them.
fn quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_.,:/@%+=-".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_owned();
    }
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    raw.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_in_place_and_keeps_the_rest() {
        let old = "# comment\nA=1\nexport KEY=\"old value\"\n\nB=2\nKEY=later\n";
        let (new, previous) = set_line(old, "KEY", "new value");
        assert_eq!(new, "# comment\nA=1\nexport KEY=\"new value\"\n\nB=2\n");
        assert_eq!(previous.as_deref(), Some("later"));
    }

    #[test]
    fn appends_when_missing_and_quotes_specials() {
        let (new, previous) = set_line("A=1", "KEY", "a\"$b`c\\");
        assert_eq!(new, "A=1\nKEY=\"a\\\"\\$b\\`c\\\\\"\n");
        assert_eq!(previous, None);
        let (_, back) = set_line(&new, "KEY", "x");
        assert_eq!(back.as_deref(), Some("a\"$b`c\\"));
    }

    #[test]
    fn a_prefix_of_the_key_is_another_key() {
        let (new, previous) = set_line("KEY_2=1\n", "KEY", "0.5");
        assert_eq!(new, "KEY_2=1\nKEY=0.5\n");
        assert_eq!(previous, None);
    }

    #[test]
    fn names() {
        assert!(valid_key("P_THRESHOLD"));
        assert!(!valid_key("1A"));
        assert!(!valid_key("A B"));
        assert!(!valid_key(""));
    }
}
