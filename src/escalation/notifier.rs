//! [`Notifier`]: how a level reaches its channels. [`HostNotifier`] goes through the `notify`
//! action ([`crate::actions::notify`]): stdout (shown by the caller), a JSON webhook
//! (`{"runbook", "message", "host"}`) or a Slack-compatible webhook (`{"text"}`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use indexmap::IndexMap;

use crate::actions::{ActionContext, NotifyTarget};
use crate::host::RealHost;

/// How one send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// 2xx, or shown on stdout.
    pub ok: bool,
    /// One line: `webhook notification answered 500`.
    pub summary: String,
}

/// Sends one message to one target. Object-safe, so a server can hold `&dyn Notifier`.
pub trait Notifier: Sync {
    /// Send `message` about `runbook` to `target`. Never fails: a failure is a [`Delivery`].
    fn send<'a>(
        &'a self,
        target: &'a NotifyTarget,
        runbook: &'a str,
        message: &'a str,
    ) -> Pin<Box<dyn Future<Output = Delivery> + Send + 'a>>;
}

/// Sends through the `notify` action on the real host (HTTP with the action's timeout).
/// A stdout target is only acknowledged: library code never prints, the caller shows it.
pub struct HostNotifier {
    host: RealHost,
    timeout: Duration,
    env: IndexMap<String, String>,
}

impl HostNotifier {
    /// A notifier whose webhooks time out after `timeout`.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        HostNotifier {
            host: RealHost::new(),
            timeout,
            env: IndexMap::new(),
        }
    }
}

impl Default for HostNotifier {
    fn default() -> Self {
        HostNotifier::new(Duration::from_secs(10))
    }
}

impl Notifier for HostNotifier {
    fn send<'a>(
        &'a self,
        target: &'a NotifyTarget,
        runbook: &'a str,
        message: &'a str,
    ) -> Pin<Box<dyn Future<Output = Delivery> + Send + 'a>> {
        Box::pin(async move {
            let cx = ActionContext {
                runbook,
                host: &self.host,
                timeout: self.timeout,
                env: &self.env,
                cwd: None,
            };
            let out = crate::actions::notify::execute(target, message, &cx).await;
            Delivery {
                ok: out.ok,
                summary: out.summary,
            }
        })
    }
}

/// What the `notifications` table records as the target: the kind and the URL's origin only.
/// A webhook's path is often its credential (Slack's are), so it is never stored.
#[must_use]
pub fn target_label(target: &NotifyTarget) -> String {
    let origin = |kind: &str, url: &str| {
        let origin = reqwest::Url::parse(url).map_or_else(
            |_| "(invalid url)".to_owned(),
            |u| u.origin().ascii_serialization(),
        );
        format!("{kind} {origin}")
    };
    match target {
        NotifyTarget::Stdout => "stdout".to_owned(),
        NotifyTarget::Webhook(u) => origin("webhook", u),
        NotifyTarget::Slack(u) => origin("slack", u),
    }
}
