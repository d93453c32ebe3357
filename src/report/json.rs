//! The JSON reporter: collects the run's events and writes one JSON document at its end.

use std::io::Write;

use serde_json::{Value, json};

use crate::exec::{Reporter, RunEvent};

/// Writes one document per run.
pub struct JsonReporter<W: Write + Send> {
    out: W,
    doc: serde_json::Map<String, Value>,
    steps: Vec<Value>,
    messages: Vec<String>,
}

impl<W: Write + Send> JsonReporter<W> {
    /// A reporter writing to `out`.
    pub fn new(out: W) -> Self {
        JsonReporter {
            out,
            doc: serde_json::Map::new(),
            steps: Vec::new(),
            messages: Vec::new(),
        }
    }
}

impl<W: Write + Send> Reporter for JsonReporter<W> {
    fn event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { run_id, info } => {
                self.doc.insert("run_id".into(), json!(run_id));
                self.doc.insert(
                    "run".into(),
                    serde_json::to_value(info).unwrap_or(Value::Null),
                );
            }
            RunEvent::StepStarted { .. } => {}
            RunEvent::StepFinished(s) => self
                .steps
                .push(serde_json::to_value(s).unwrap_or(Value::Null)),
            RunEvent::Message { text } => self.messages.push(text.clone()),
            RunEvent::RunFinished {
                outcome,
                exit_code,
                duration_ms,
                ..
            } => {
                self.doc.insert(
                    "outcome".into(),
                    serde_json::to_value(outcome).unwrap_or(Value::Null),
                );
                self.doc.insert("exit_code".into(), json!(exit_code));
                self.doc.insert("duration_ms".into(), json!(duration_ms));
                self.doc.insert(
                    "steps".into(),
                    Value::Array(std::mem::take(&mut self.steps)),
                );
                self.doc
                    .insert("messages".into(), json!(std::mem::take(&mut self.messages)));
                let _ = serde_json::to_writer_pretty(
                    &mut self.out,
                    &Value::Object(std::mem::take(&mut self.doc)),
                );
                let _ = writeln!(self.out);
            }
        }
    }
}
