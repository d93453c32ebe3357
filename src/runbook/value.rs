//! Small typed values shared by the format: durations and "a literal or a template".

use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize};

/// True when a string is a minijinja template (contains `{{` or `{%`).
#[must_use]
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Parse a duration such as `500ms`, `5s`, `10m`, `2h`, `1h 30m`, `1w`.
///
/// # Errors
/// A message for people when the text is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    humantime::parse_duration(t).map_err(|_| {
        format!("invalid duration `{text}`: write a number and a unit, e.g. `500ms`, `5s`, `10m`, `2h`, `1h 30m`")
    })
}

/// Format a duration compactly (`1h30m`, `5s`, `250ms`).
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= secs {
            let _ = write!(out, "{}{unit}", s / secs);
            s %= secs;
        }
    }
    out
}

/// A duration written as text in a probe or action parameter (`5s`); may be a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationParam {
    /// A literal duration.
    Fixed(Duration),
    /// A template rendered at run time.
    Template(String),
}

impl<'de> Deserialize<'de> for DurationParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationParam;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `5s` or `2m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationParam, E> {
                if is_template(v) {
                    Ok(DurationParam::Template(v.to_owned()))
                } else {
                    parse_duration(v)
                        .map(DurationParam::Fixed)
                        .map_err(E::custom)
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for DurationParam {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DurationParam::Fixed(d) => s.serialize_str(&format_duration(*d)),
            DurationParam::Template(t) => s.serialize_str(t),
        }
    }
}

impl JsonSchema for DurationParam {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "a duration such as `500ms`, `5s`, `10m`, `2h`, or a template",
        })
    }
}

/// A typed literal (number, bool) or a template string rendered at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Tpl<T> {
    /// The literal value.
    Lit(T),
    /// A template.
    Template(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Tpl<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: DeserializeOwned> V<T> {
            fn lit<E: de::Error, X: for<'a> IntoDeserializer<'a, E>>(x: X) -> Result<Tpl<T>, E> {
                T::deserialize(x.into_deserializer()).map(Tpl::Lit)
            }
        }
        impl<T: DeserializeOwned> Visitor<'_> for V<T> {
            type Value = Tpl<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a `{{ template }}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tpl<T>, E> {
                if is_template(v) {
                    Ok(Tpl::Template(v.to_owned()))
                } else if let Ok(t) = serde_json::from_str::<T>(v.trim()) {
                    // A rendered template yields text: "8001" is a port, "true" a bool.
                    Ok(Tpl::Lit(t))
                } else {
                    Self::lit(v.to_owned())
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tpl<T>, E> {
                Self::lit(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tpl<T>, E> {
                Self::lit(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tpl<T>, E> {
                Self::lit(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tpl<T>, E> {
                Self::lit(v)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Tpl<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Tpl_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let inner = generator.subschema_for::<T>();
        json_schema!({
            "anyOf": [inner, {"type": "string", "pattern": "\\{[{%]"}],
        })
    }
}

/// One id or a list of ids: `rollback: restore_p` or `rollback: [restore_p, restart_runner]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdList(pub Vec<String>);

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action id or a list of action ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdList, E> {
                Ok(IdList(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<IdList, A::Error> {
                let mut out = Vec::new();
                while let Some(id) = seq.next_element::<String>()? {
                    out.push(id);
                }
                Ok(IdList(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for IdList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IdList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        })
    }
}
