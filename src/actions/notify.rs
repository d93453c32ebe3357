//! `notify`: send a message to a channel of `policy.yaml` (stdout, JSON webhook, Slack-
//! compatible webhook). The only action that does not mutate the host; it runs without
//! `--yes`.
//!
//! A JSON webhook receives `{"runbook": NAME, "message": TEXT, "host": HOSTNAME}`; a Slack
//! webhook `{"text": TEXT}`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::actions::{ActionOutcome, NotifyTarget};
use crate::runbook::raw::SString;

/// `notify:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// A key of `policy.yaml` channels.
    #[schemars(with = "String")]
    pub channel: SString,
    /// The message; may be a template.
    #[schemars(with = "String")]
    pub message: SString,
}

impl RawNotify {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.message]
    }
}

/// Run the action.
pub async fn execute(
    target: &crate::actions::NotifyTarget,
    message: &str,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let (kind, url, payload) = match target {
        // Library code never prints: the executor shows the message through the reporters.
        NotifyTarget::Stdout => {
            let mut detail = Map::new();
            detail.insert("channel".into(), json!("stdout"));
            detail.insert("message".into(), json!(message));
            return ActionOutcome {
                ok: true,
                summary: "notified on stdout".into(),
                detail,
            };
        }
        NotifyTarget::Webhook(url) => (
            "webhook",
            url,
            json!({ "runbook": cx.runbook, "message": message, "host": cx.host.hostname() }),
        ),
        NotifyTarget::Slack(url) => ("slack", url, json!({ "text": message })),
    };
    // Not a mutation of this host: no `permit_mutation`, so a dry run still notifies.
    // A webhook URL is a credential (Slack's are): it never appears in the outcome.
    let send = cx
        .host
        .http_for_text(url, false)
        .post(url.as_str())
        .timeout(cx.timeout)
        .json(&payload)
        .send();
    let mut detail = Map::new();
    detail.insert("channel".into(), json!(kind));
    detail.insert("message".into(), json!(message));
    let response = match tokio::time::timeout(cx.timeout, send).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return ActionOutcome {
                ok: false,
                summary: format!("{kind} notification failed: {}", e.without_url()),
                detail,
            };
        }
        Err(_) => {
            return ActionOutcome {
                ok: false,
                summary: format!(
                    "{kind} notification timed out after {} ms",
                    cx.timeout.as_millis()
                ),
                detail,
            };
        }
    };
    let status = response.status();
    detail.insert("status".into(), json!(status.as_u16()));
    ActionOutcome {
        ok: status.is_success(),
        summary: format!("{kind} notification answered {}", status.as_u16()),
        detail,
    }
}
