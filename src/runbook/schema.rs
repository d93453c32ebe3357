//! The JSON Schema of the runbook format, for editors' YAML language servers.
//!
//! Derived from the raw types, plus one `if probe == X then with: <X's params>` rule per
//! probe so an editor checks probe parameters too.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::probes::ProbeKind;
use crate::runbook::raw::RawRunbook;

/// The schema as pretty JSON with a trailing newline.
#[must_use]
pub fn runbook_schema() -> String {
    let mut generator = SchemaSettings::draft07().into_generator();
    let mut probe_rules = Vec::new();
    for kind in ProbeKind::ALL {
        let params = kind.params_schema(&mut generator);
        probe_rules.push(json!({
            "if": { "properties": { "probe": { "const": kind.name() } }, "required": ["probe"] },
            "then": { "properties": { "with": params } },
        }));
    }
    let root = generator.into_root_schema_for::<RawRunbook>();
    let mut value: Value = root.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "$id".into(),
            json!("https://runbook.invalid/schema/runbook.schema.json"),
        );
    }
    let names: Vec<&str> = ProbeKind::ALL.iter().map(|k| k.name()).collect();
    let defs_key = if value.get("definitions").is_some() {
        "definitions"
    } else {
        "$defs"
    };
    if let Some(check) = value
        .pointer_mut(&format!("/{defs_key}/RawCheck"))
        .and_then(Value::as_object_mut)
    {
        check.insert("allOf".into(), Value::Array(probe_rules));
        if let Some(probe) = check
            .get_mut("properties")
            .and_then(|p| p.get_mut("probe"))
            .and_then(Value::as_object_mut)
        {
            probe.insert("enum".into(), json!(names));
        }
    }
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}
