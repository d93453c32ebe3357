//! A small YAML writer for the files the engine writes for people to keep (a scenario made
//! from a recorded run): block mappings and sequences, flow collections when they fit on a
//! line, comments, and scalars that read back as the value written.
//!
//! A string is written plain only when it is made of letters, digits and a few punctuation
//! marks, starts with a letter, `_` or `/`, and is no word a YAML reader takes for something
//! else (`yes`, `null`, `on`, ...; as a key, only `null`: a key is read as a string); every
//! other string is double-quoted, with the characters a YAML reader would not take literally
//! escaped. Numbers, booleans and null are written as
//! JSON writes them, which YAML reads as the same value.

use std::fmt::Write as _;

use serde_json::Value;

/// The width a flow collection may take on its line.
const WIDTH: usize = 100;

/// Words that a YAML 1.1 or 1.2 reader takes for a boolean, null or a number when plain.
const RESERVED: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "inf", "nan", "infinity",
];

/// A YAML document as it is to be written: ordered mappings with comments, sequences, and
/// JSON values (whose objects are written in their key order).
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// A JSON value: a scalar, or a collection written like the others.
    Json(Value),
    /// A mapping, in order, with comments between its entries.
    Map(Vec<Item>),
    /// A sequence.
    Seq(Vec<Yaml>),
}

/// An entry of a [`Yaml::Map`].
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `key: value`.
    Pair(String, Yaml),
    /// `# text`, on its own line (each line of a text with several).
    Comment(String),
}

impl Item {
    /// `key: value`.
    pub fn pair(key: impl Into<String>, value: impl Into<Yaml>) -> Item {
        Item::Pair(key.into(), value.into())
    }
}

impl From<Value> for Yaml {
    fn from(v: Value) -> Yaml {
        Yaml::Json(v)
    }
}

impl Yaml {
    /// The document as text: `self` should be a mapping (anything else is written as one
    /// line); `header` lines become comments above it.
    #[must_use]
    pub fn render(&self, header: &[String]) -> String {
        let mut out = String::new();
        for text in header {
            comment(&mut out, 0, text);
        }
        match self {
            Yaml::Map(items) => block_map(&mut out, 0, items),
            Yaml::Json(Value::Object(m)) if !m.is_empty() => {
                block_map(&mut out, 0, &json_items(m));
            }
            other => {
                out.push_str(&flow(other));
                out.push('\n');
            }
        }
        out
    }

    fn has_comment(&self) -> bool {
        match self {
            Yaml::Json(_) => false,
            Yaml::Map(items) => items.iter().any(|i| match i {
                Item::Comment(_) => true,
                Item::Pair(_, v) => v.has_comment(),
            }),
            Yaml::Seq(items) => items.iter().any(Yaml::has_comment),
        }
    }

    /// Items of a mapping (its own, or a JSON object's); `None` for anything else.
    fn map_items(&self) -> Option<Vec<Item>> {
        match self {
            Yaml::Map(items) => Some(items.clone()),
            Yaml::Json(Value::Object(m)) => Some(json_items(m)),
            _ => None,
        }
    }

    /// Items of a sequence; `None` for anything else.
    fn seq_items(&self) -> Option<Vec<Yaml>> {
        match self {
            Yaml::Seq(items) => Some(items.clone()),
            Yaml::Json(Value::Array(a)) => Some(a.iter().cloned().map(Yaml::Json).collect()),
            _ => None,
        }
    }

    fn is_empty_collection(&self) -> bool {
        self.map_items().is_some_and(|i| i.is_empty())
            || self.seq_items().is_some_and(|i| i.is_empty())
    }
}

fn json_items(m: &serde_json::Map<String, Value>) -> Vec<Item> {
    m.iter()
        .map(|(k, v)| Item::Pair(k.clone(), Yaml::Json(v.clone())))
        .collect()
}

fn comment(out: &mut String, indent: usize, text: &str) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{:indent$}#", "");
        } else {
            let _ = writeln!(out, "{:indent$}# {line}", "");
        }
    }
}

/// The value on the line of its key or dash, when it goes there: a scalar, an empty
/// collection, or a collection with no comment whose flow form fits in `room` columns.
fn inline(v: &Yaml, room: usize) -> Option<String> {
    let is_collection = v.map_items().is_some() || v.seq_items().is_some();
    if !is_collection || v.is_empty_collection() {
        return Some(flow(v));
    }
    if v.has_comment() {
        return None;
    }
    let s = flow(v);
    (s.len() <= room).then_some(s)
}

fn block_map(out: &mut String, indent: usize, items: &[Item]) {
    for item in items {
        match item {
            Item::Comment(text) => comment(out, indent, text),
            Item::Pair(k, v) => {
                let key = key_str(k);
                let room = WIDTH.saturating_sub(indent + key.len() + 2);
                if let Some(s) = inline(v, room) {
                    let _ = writeln!(out, "{:indent$}{key}: {s}", "");
                } else if let Some(m) = v.map_items() {
                    let _ = writeln!(out, "{:indent$}{key}:", "");
                    block_map(out, indent + 2, &m);
                } else if let Some(s) = v.seq_items() {
                    let _ = writeln!(out, "{:indent$}{key}:", "");
                    block_seq(out, indent + 2, &s);
                }
            }
        }
    }
}

fn block_seq(out: &mut String, indent: usize, items: &[Yaml]) {
    for item in items {
        if let Some(s) = inline(item, WIDTH.saturating_sub(indent + 2)) {
            let _ = writeln!(out, "{:indent$}- {s}", "");
            continue;
        }
        let mut inner = String::new();
        if let Some(m) = item.map_items() {
            // A dash cannot share its line with a comment that opens the mapping.
            if matches!(m.first(), Some(Item::Comment(_))) {
                let _ = writeln!(out, "{:indent$}-", "");
                block_map(out, indent + 2, &m);
                continue;
            }
            block_map(&mut inner, indent + 2, &m);
        } else if let Some(s) = item.seq_items() {
            block_seq(&mut inner, indent + 2, &s);
        }
        // The first line's indentation becomes the dash.
        let _ = write!(out, "{:indent$}- {}", "", &inner[indent + 2..]);
    }
}

/// The value in flow style, on one line.
fn flow(v: &Yaml) -> String {
    match v {
        Yaml::Json(Value::Object(m)) => flow_map(m.iter().map(|(k, v)| (k, flow_json(v)))),
        Yaml::Json(Value::Array(a)) => flow_seq(a.iter().map(flow_json)),
        Yaml::Json(scalar) => scalar_json(scalar),
        Yaml::Map(items) => flow_map(items.iter().filter_map(|i| match i {
            Item::Pair(k, v) => Some((k, flow(v))),
            Item::Comment(_) => None,
        })),
        Yaml::Seq(items) => flow_seq(items.iter().map(flow)),
    }
}

fn flow_json(v: &Value) -> String {
    match v {
        Value::Object(m) => flow_map(m.iter().map(|(k, v)| (k, flow_json(v)))),
        Value::Array(a) => flow_seq(a.iter().map(flow_json)),
        scalar => scalar_json(scalar),
    }
}

fn flow_map<'a>(entries: impl Iterator<Item = (&'a String, String)>) -> String {
    let parts: Vec<String> = entries
        .map(|(k, v)| format!("{}: {v}", key_str(k)))
        .collect();
    if parts.is_empty() {
        "{}".into()
    } else {
        format!("{{ {} }}", parts.join(", "))
    }
}

fn flow_seq(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

fn scalar_json(v: &Value) -> String {
    match v {
        Value::String(s) => scalar_str(s),
        // null, booleans and numbers read back the same in YAML as in JSON.
        other => other.to_string(),
    }
}

/// A string as a YAML scalar: plain when that reads back as the same string, else
/// double-quoted.
#[must_use]
pub fn scalar_str(s: &str) -> String {
    if plain(s) { s.to_owned() } else { quoted(s) }
}

/// A mapping key as YAML: like [`scalar_str`], except that a word YAML 1.1 takes for a
/// boolean or a number stays plain, as the formats' own keys are written (`yes: true`): a
/// key is read as a string. `null` is not: it is no key at all.
#[must_use]
pub fn key_str(s: &str) -> String {
    if plain_chars(s) && !s.eq_ignore_ascii_case("null") {
        s.to_owned()
    } else {
        quoted(s)
    }
}

fn plain(s: &str) -> bool {
    plain_chars(s) && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// Starts with a letter, `_` or `/`; letters, digits and `_-./@()+=` and inner spaces.
fn plain_chars(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && !s.ends_with(' ')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./@()+=".contains(c))
}

/// `s` double-quoted: `"` and `\` escaped, and every character a YAML reader would fold,
/// drop or refuse (controls, line and paragraph separators, the byte order mark) as `\uXXXX`.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::diagnostic::SourceFile;
    use crate::runbook::node::Node;
    use proptest::prelude::*;
    use serde_json::json;

    /// `doc` written, then read back by the loader the scenario files go through.
    fn read_back(doc: &Yaml) -> Value {
        let text = doc.render(&["a comment".into()]);
        let src = SourceFile::new("t.yaml", text.clone());
        let node: Node = crate::runbook::load::parse(&src)
            .unwrap_or_else(|d| panic!("{}\n---\n{text}", d.message));
        node.to_json()
    }

    #[test]
    fn tricky_strings_are_quoted_and_read_back() {
        let tricky = [
            "",
            " ",
            "yes",
            "No",
            "ON",
            "null",
            "~",
            "true",
            "1",
            "0x1F",
            "1e3",
            "1_000",
            "12:30",
            ".inf",
            "-",
            "- a",
            "a: b",
            "a #b",
            "#a",
            "[a]",
            "{a}",
            "a,b",
            "*x",
            "&x",
            "!x",
            "|",
            ">",
            "%x",
            "@x",
            "`x`",
            "'q'",
            "\"q\"",
            "a\nb",
            "tab\there",
            "trailing ",
            " leading",
            "ünï",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "\u{7}",
            "back\\slash",
            "http://127.0.0.1:8080/x?y=1#z",
            "connection refused: os error 111",
            "?",
            "? x",
            "=",
            "<<",
            "...",
            "---",
            "y",
            "n",
            "Inf",
            ".NaN",
            "+1",
            "-1",
            "0o17",
            "08",
        ];
        for s in tricky {
            let doc = Yaml::Map(vec![
                Item::pair(s, json!(s)),
                Item::pair("flow", json!({ "k": s, "l": [s, s] })),
                Item::pair("seq", Yaml::Seq(vec![json!(s).into()])),
            ]);
            let expected = json!({ s: s, "flow": { "k": s, "l": [s, s] }, "seq": [s] });
            assert_eq!(read_back(&doc), expected, "{s:?}");
        }
    }

    #[test]
    fn plain_words_stay_plain_and_layout_follows_width() {
        let doc = Yaml::Map(vec![
            Item::Comment("about x\n\nsecond line".into()),
            Item::pair("x", json!({ "status": 200, "body": "ok" })),
            Item::pair("long", json!({ "a": "x".repeat(60), "b": "y".repeat(60) })),
            Item::pair(
                "items",
                Yaml::Seq(vec![Yaml::Map(vec![
                    Item::pair("name", json!("first one")),
                    Item::Comment("inside".into()),
                    Item::pair("count", json!(1.5)),
                ])]),
            ),
            Item::pair("none", json!({})),
            Item::pair("empty", Yaml::Seq(vec![])),
        ]);
        let text = doc.render(&[]);
        let a = "x".repeat(60);
        let b = "y".repeat(60);
        assert_eq!(
            text,
            format!(
                "# about x\n#\n# second line\nx: {{ body: ok, status: 200 }}\nlong:\n  a: {a}\n  b: {b}\nitems:\n  - name: first one\n    # inside\n    count: 1.5\nnone: {{}}\nempty: []\n"
            )
        );
        assert_eq!(read_back(&doc)["items"][0]["count"], json!(1.5));
        // A one-letter `n` is a boolean to a YAML 1.1 reader: quoted as a value, not as a key.
        assert_eq!(scalar_str("n"), "\"n\"");
        let yes = Yaml::Map(vec![
            Item::pair("yes", json!("yes")),
            Item::pair("null", json!(null)),
        ]);
        assert_eq!(yes.render(&[]), "yes: \"yes\"\n\"null\": null\n");
        assert_eq!(read_back(&yes), json!({ "yes": "yes", "null": null }));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[a-z0-9 :#,.\\-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z:# ]{0,6}|\\PC{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_value_reads_back_as_written(v in json_value()) {
            let doc = Yaml::Map(vec![Item::pair("v", v.clone())]);
            prop_assert_eq!(read_back(&doc), json!({ "v": v }));
        }
    }
}
