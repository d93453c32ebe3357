//! `manual`: ask the operator a yes/no question at a terminal (e.g. "is the dashboard sending
//! the token? check browser dev tools -> Network"). `unknown` when nobody is at a terminal.
//!
//! The default is no; no answer within the step's timeout is `unknown`.
//!
//! An answer given beforehand (`runbook run --answer ID=yes|no`) is taken without asking, at a
//! terminal or not, with a `reason` saying so: how a script, CI or a demo answers the question.
//!
//! Result: `answer` (true / false), also `value`; `reason` when answered beforehand.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::probes::{ProbeContext, ProbeOutcome};
use crate::runbook::value::format_duration;

/// Parameters of the `manual` probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualParams {
    /// The yes/no question.
    pub question: String,
}

/// Result fields of the `manual` probe.
pub const FIELDS: &[&str] = &["answer"];

/// Run the probe: ask on stderr, read one line from stdin, within the step's timeout.
pub async fn probe(params: ManualParams, cx: &ProbeContext<'_>) -> ProbeOutcome {
    if let Some(answer) = cx.answer {
        let said = if answer { "yes" } else { "no" };
        return ProbeOutcome::observed([
            ("value", json!(answer)),
            ("answer", json!(answer)),
            (
                "reason",
                json!(format!("answered `{said}` on the command line (--answer)")),
            ),
        ]);
    }
    if !cx.interactive {
        return ProbeOutcome::Unknown("no terminal to ask".into());
    }
    // The one place library code talks to a person directly: the question is the probe.
    let mut err = tokio::io::stderr();
    let prompt = format!("\n? {} [y/N] ", params.question.trim());
    if err.write_all(prompt.as_bytes()).await.is_err() || err.flush().await.is_err() {
        return ProbeOutcome::Unknown("cannot write the question to the terminal".into());
    }
    // A line is read on a blocking thread; on timeout that thread is left waiting on stdin,
    // which is harmless for a CLI run and cannot be cancelled portably.
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| (n, line))
    });
    match tokio::time::timeout(cx.timeout, read).await {
        Err(_) => {
            ProbeOutcome::Unknown(format!("no answer within {}", format_duration(cx.timeout)))
        }
        Ok(Err(e)) => ProbeOutcome::Error(format!("cannot read the answer: {e}")),
        Ok(Ok(Err(e))) => ProbeOutcome::Error(format!("cannot read the answer: {e}")),
        Ok(Ok(Ok((0, _)))) => ProbeOutcome::Unknown("stdin closed before an answer".into()),
        Ok(Ok(Ok((_, line)))) => {
            let answer = parse_answer(&line);
            ProbeOutcome::observed([("value", json!(answer)), ("answer", json!(answer))])
        }
    }
}

/// `y`/`yes` (any case) is yes; anything else, including an empty line, is the default no.
fn parse_answer(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
