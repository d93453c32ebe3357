//! `backup`: copy a file or directory to `<to>/<name>.<YYYYmmdd_HHMMSS>` (like
//! `cp -r /opt/aurora/logs /opt/aurora/logs.backup.$(date +%Y%m%d_%H%M%S)`). Mutating.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::actions::run::host_refusal;
use crate::actions::{ActionContext, ActionOutcome};
use crate::runbook::raw::SString;

/// `backup:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// What to copy.
    #[schemars(with = "String")]
    pub from: SString,
    /// The directory the timestamped copy goes into.
    #[schemars(with = "String")]
    pub to: SString,
}

impl RawBackup {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        vec![&self.from, &self.to]
    }
}

/// The timestamp in a backup's name; [`crate::actions::restore`] parses it back.
pub(crate) const STAMP_FORMAT: &str = "%Y%m%d_%H%M%S";

/// Run the action.
pub async fn execute(
    from: &str,
    to: &str,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let label = format!("back up `{from}` into `{to}`");
    if let Err(e) = cx.host.permit_mutation(&label) {
        return host_refusal(&label, &e);
    }
    match tokio::time::timeout(cx.timeout, copy(Path::new(from), Path::new(to), cx)).await {
        Ok(outcome) => outcome,
        Err(_) => ActionOutcome::failed(format!(
            "{label}: timed out after {} ms",
            cx.timeout.as_millis()
        )),
    }
}

async fn copy(from: &Path, to: &Path, cx: &ActionContext<'_>) -> ActionOutcome {
    let label = format!("back up `{}` into `{}`", from.display(), to.display());
    let Some(name) = from.file_name() else {
        return ActionOutcome::failed(format!("{label}: `from` has no file name"));
    };
    if let Err(e) = tokio::fs::metadata(from).await {
        return ActionOutcome::failed(format!("{label}: {e}"));
    }
    let stamp = chrono::Local::now().format(STAMP_FORMAT).to_string();
    let base = format!("{}.{stamp}", name.to_string_lossy());
    // Two backups within one second must not merge into one.
    let mut dest = to.join(&base);
    let mut n = 1;
    while tokio::fs::symlink_metadata(&dest).await.is_ok() {
        dest = to.join(format!("{base}_{n}"));
        n += 1;
    }
    match cx.host.copy_tree(from, &dest).await {
        Ok(bytes) => {
            let mut detail = Map::new();
            detail.insert("from".into(), json!(from.display().to_string()));
            detail.insert("path".into(), json!(dest.display().to_string()));
            detail.insert("bytes".into(), json!(bytes));
            ActionOutcome {
                ok: true,
                summary: format!(
                    "backed up `{}` to `{}` ({bytes} bytes)",
                    from.display(),
                    dest.display()
                ),
                detail,
            }
        }
        Err(e) => host_refusal(&label, &e),
    }
}
