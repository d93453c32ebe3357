//! jq paths (`.current_metrics.circuit_breaker`, `.items[] | .name`, `keys | length`) over
//! JSON values, evaluated with jaq (a jq clone) and its standard library.
//!
//! This module owns the bridge between `serde_json` values and jaq's: probes (`http`,
//! `config`, `jsonl`) call [`eval`]; the compiler calls [`check`] to reject a broken path at
//! `validate` time.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Check the syntax of a jq path (and that the functions it names exist).
///
/// # Errors
/// A message naming the first problem and its byte offset in `path`.
pub fn check(path: &str) -> Result<(), String> {
    let arena = Arena::default();
    compile(path, &arena).map(|_| ())
}

/// Evaluate `path` over `input`. One result is returned as is; several results become a JSON
/// array; no result is `null`.
///
/// # Errors
/// A syntax error in `path`, or a runtime error (`.a` on a number, ...).
pub fn eval(path: &str, input: &Value) -> Result<Value, String> {
    Program::new(path)?.eval(input)
}

/// A jq path compiled once, for evaluating over many values (every line of a file).
pub struct Program {
    path: String,
    filter: Filter,
}

impl Program {
    /// Compile `path`.
    ///
    /// # Errors
    /// A message naming the first problem and its byte offset in `path`.
    pub fn new(path: &str) -> Result<Program, String> {
        let arena = Arena::default();
        let filter = compile(path, &arena)?;
        Ok(Program {
            path: path.to_owned(),
            filter,
        })
    }

    /// Evaluate over `input`, like [`eval`].
    ///
    /// # Errors
    /// A runtime error (`.a` on a number, ...).
    pub fn eval(&self, input: &Value) -> Result<Value, String> {
        let input = to_val(input)?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut results = Vec::new();
        for out in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let v = out.map_err(|e| format!("jq `{}`: {e}", self.path))?;
            results.push(from_val(&v));
        }
        Ok(match results.len() {
            0 => Value::Null,
            1 => results.pop().unwrap_or(Value::Null),
            _ => Value::Array(results),
        })
    }
}

fn compile<'a>(path: &'a str, arena: &'a Arena) -> Result<Filter, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let program = File {
        code: path,
        path: (),
    };
    let offset = |rest: &str| path.len().saturating_sub(rest.len());
    let modules = loader.load(arena, program).map_err(|errs| {
        let mut msgs = Vec::new();
        for (_, err) in errs {
            match err {
                jaq_core::load::Error::Io(v) => {
                    msgs.extend(v.into_iter().map(|(_, m)| m));
                }
                jaq_core::load::Error::Lex(v) => msgs.extend(v.into_iter().map(|(exp, at)| {
                    format!("expected {} at offset {}", exp.as_str(), offset(at))
                })),
                jaq_core::load::Error::Parse(v) => msgs.extend(v.into_iter().map(|(exp, at)| {
                    format!("expected {} at offset {}", exp.as_str(), offset(at))
                })),
            }
        }
        format!("invalid jq path `{path}`: {}", msgs.join("; "))
    })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let msgs: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, v)| v)
                .map(|(name, undef)| format!("undefined {} `{name}`", undef.as_str()))
                .collect();
            format!("invalid jq path `{path}`: {}", msgs.join("; "))
        })
}

fn to_val(v: &Value) -> Result<Val, String> {
    let text = serde_json::to_string(v).map_err(|e| e.to_string())?;
    jaq_json::read::parse_single(text.as_bytes()).map_err(|e| format!("jq input: {e}"))
}

fn from_val(v: &Val) -> Value {
    // jaq prints JSON; a value JSON cannot hold (NaN, a byte string) falls back to its text.
    let text = v.to_string();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "sse_clients": {"active": 3, "max": 100},
            "tailer_stats": {"file_positions": {"/var/log/a.jsonl": 10, "/var/log/b.jsonl": 20}},
            "items": [{"name": "a"}, {"name": "b"}],
            "current_metrics": {"circuit_breaker": "closed"},
        })
    }

    #[test]
    fn paths() {
        let d = doc();
        assert_eq!(eval(".sse_clients.active", &d).unwrap(), json!(3));
        assert_eq!(eval(".items[0].name", &d).unwrap(), json!("a"));
        assert_eq!(eval(".[\"sse_clients\"].max", &d).unwrap(), json!(100));
        assert_eq!(eval(".items[] | .name", &d).unwrap(), json!(["a", "b"]));
        assert_eq!(
            eval(".tailer_stats.file_positions | length", &d).unwrap(),
            json!(2)
        );
        assert_eq!(
            eval(".sse_clients | keys", &d).unwrap(),
            json!(["active", "max"])
        );
        assert_eq!(eval(".missing", &d).unwrap(), Value::Null);
        assert_eq!(eval("empty", &d).unwrap(), Value::Null);
        assert_eq!(eval(".sse_clients.active > 2", &d).unwrap(), json!(true));
        assert_eq!(
            eval(".items | map(.name) | join(\",\")", &d).unwrap(),
            json!("a,b")
        );
        assert_eq!(eval("[1.5, 2] | add", &d).unwrap(), json!(3.5));
    }

    #[test]
    fn errors() {
        assert!(check(".a.b").is_ok());
        assert!(check(".a[").unwrap_err().contains("invalid jq path"));
        assert!(check("nosuchfn").unwrap_err().contains("nosuchfn"));
        assert!(eval(".a.b", &json!({"a": 5})).is_err());
    }
}
