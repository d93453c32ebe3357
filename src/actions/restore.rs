//! `restore`: copy back from the newest backup in `from` (or the one named by `backup`) into
//! `to` (like `cp /opt/aurora/logs.backup.latest/* /opt/aurora/logs/`). Mutating.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::NaiveDateTime;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::actions::backup::STAMP_FORMAT;
use crate::actions::run::host_refusal;
use crate::actions::{ActionContext, ActionOutcome};
use crate::runbook::raw::SString;

/// `restore:` action parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRestore {
    /// The directory holding backups.
    #[schemars(with = "String")]
    pub from: SString,
    /// Where to restore to.
    #[schemars(with = "String")]
    pub to: SString,
    /// A backup's name; default the newest.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub backup: Option<SString>,
}

impl RawRestore {
    /// Strings that may be templates.
    #[must_use]
    pub fn templates(&self) -> Vec<&SString> {
        let mut out = vec![&self.from, &self.to];
        out.extend(self.backup.iter());
        out
    }
}

/// Run the action.
pub async fn execute(
    from: &str,
    to: &str,
    backup: Option<&str>,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let label = format!("restore `{to}` from `{from}`");
    if let Err(e) = cx.host.permit_mutation(&label) {
        return host_refusal(&label, &e);
    }
    let work = restore(Path::new(from), Path::new(to), backup, cx);
    match tokio::time::timeout(cx.timeout, work).await {
        Ok(outcome) => outcome,
        Err(_) => ActionOutcome::failed(format!(
            "{label}: timed out after {} ms",
            cx.timeout.as_millis()
        )),
    }
}

async fn restore(
    from: &Path,
    to: &Path,
    backup: Option<&str>,
    cx: &ActionContext<'_>,
) -> ActionOutcome {
    let label = format!("restore `{}` from `{}`", to.display(), from.display());
    let chosen = match backup {
        Some(name) => {
            // A name inside `from`, not a path that could reach elsewhere.
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return ActionOutcome::failed(format!(
                    "{label}: `{}` is not a backup name",
                    name.escape_debug()
                ));
            }
            from.join(name)
        }
        None => match newest(from, to).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return ActionOutcome::failed(format!("{label}: no backup of `{}` found", {
                    to.file_name().unwrap_or_default().to_string_lossy()
                }));
            }
            Err(e) => return ActionOutcome::failed(format!("{label}: {e}")),
        },
    };
    let meta = match tokio::fs::metadata(&chosen).await {
        Ok(m) => m,
        Err(e) => {
            return ActionOutcome::failed(format!("{label}: `{}`: {e}", chosen.display()));
        }
    };
    let mut bytes = 0;
    if meta.is_dir() {
        // `cp backup/* to/`: the backup's entries land in `to`; other files there stay.
        let mut entries = match tokio::fs::read_dir(&chosen).await {
            Ok(e) => e,
            Err(e) => return ActionOutcome::failed(format!("{label}: {e}")),
        };
        loop {
            let entry = match entries.next_entry().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => return ActionOutcome::failed(format!("{label}: {e}")),
            };
            match cx
                .host
                .copy_tree(&entry.path(), &to.join(entry.file_name()))
                .await
            {
                Ok(n) => bytes += n,
                Err(e) => return host_refusal(&label, &e),
            }
        }
    } else {
        match cx.host.copy_tree(&chosen, to).await {
            Ok(n) => bytes = n,
            Err(e) => return host_refusal(&label, &e),
        }
    }
    let mut detail = Map::new();
    detail.insert("backup".into(), json!(chosen.display().to_string()));
    detail.insert("path".into(), json!(to.display().to_string()));
    detail.insert("bytes".into(), json!(bytes));
    ActionOutcome {
        ok: true,
        summary: format!(
            "restored `{}` from `{}` ({bytes} bytes)",
            to.display(),
            chosen.display()
        ),
        detail,
    }
}

/// The newest entry of `dir` named `<basename of to>.<...>`: by the timestamp the `backup`
/// action puts in the name, then by modification time (backups made some other way).
async fn newest(dir: &Path, to: &Path) -> std::io::Result<Option<PathBuf>> {
    let Some(base) = to.file_name().map(|b| b.to_string_lossy().into_owned()) else {
        return Ok(None);
    };
    let prefix = format!("{base}.");
    let mut best: Option<(Option<NaiveDateTime>, SystemTime, String)> = None;
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let stamp = rest
            .get(..15)
            .and_then(|s| NaiveDateTime::parse_from_str(s, STAMP_FORMAT).ok());
        let mtime = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let key = (stamp, mtime, name);
        if best.as_ref().is_none_or(|b| key > *b) {
            best = Some(key);
        }
    }
    Ok(best.map(|(_, _, name)| dir.join(name)))
}
