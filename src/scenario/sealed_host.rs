//! The host of a scenario or a replay: a door that opens on nothing. The oracle answers for
//! every probe and action, so nothing should ever knock; if something did, it is refused
//! here rather than reaching the machine or the network.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::host::{Host, HostError, HostMode, Intent, ProcOutput, ProcSpec};

/// Refuses every process, write and copy; its HTTP client sends to a proxy that does not
/// exist (port 9 of an address that routes nowhere), so not even a read leaves the process.
#[derive(Debug, Clone)]
pub struct SealedHost {
    hostname: String,
    mode: HostMode,
}

impl SealedHost {
    /// A sealed host named `hostname` that the executor treats as `mode` (real: actions pass
    /// their gates to the oracle; dry run: they stop at the door, as in a dry run).
    #[must_use]
    pub fn new(hostname: impl Into<String>, mode: HostMode) -> Self {
        SealedHost {
            hostname: hostname.into(),
            mode,
        }
    }
}

fn refused(what: &str) -> HostError {
    HostError::Io(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!("no host access in a scenario or replay: refused to {what}"),
    ))
}

#[async_trait]
impl Host for SealedHost {
    fn mode(&self) -> HostMode {
        self.mode
    }

    fn hostname(&self) -> String {
        self.hostname.clone()
    }

    fn http(&self, _insecure: bool) -> reqwest::Client {
        // Never used (the oracle answers for every probe and action); should it be, every
        // request goes to a proxy on a reserved address and fails.
        let mut b = reqwest::Client::builder().timeout(std::time::Duration::from_millis(1));
        if let Ok(p) = reqwest::Proxy::all("http://192.0.2.1:9") {
            b = b.proxy(p);
        }
        b.build().unwrap_or_default()
    }

    fn http_for(&self, _url: &reqwest::Url, insecure: bool) -> reqwest::Client {
        self.http(insecure)
    }

    fn permit_mutation(&self, what: &str) -> Result<(), HostError> {
        Err(refused(what))
    }

    async fn spawn(&self, spec: &ProcSpec, _intent: Intent) -> Result<ProcOutput, HostError> {
        Err(refused(&format!(
            "run `{}`",
            spec.argv.first().map_or("", String::as_str)
        )))
    }

    async fn write_atomic(
        &self,
        path: &Path,
        _contents: &[u8],
    ) -> Result<Option<PathBuf>, HostError> {
        Err(refused(&format!("write `{}`", path.display())))
    }

    async fn copy_tree(&self, from: &Path, _to: &Path) -> Result<u64, HostError> {
        Err(refused(&format!("copy `{}`", from.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_mutation_is_refused() {
        let h = SealedHost::new("h", HostMode::Real);
        assert!(h.permit_mutation("x").is_err());
        let spec = ProcSpec {
            argv: vec!["true".into()],
            env: indexmap::IndexMap::new(),
            cwd: None,
            timeout: std::time::Duration::from_secs(1),
            output_cap: 10,
        };
        assert!(h.spawn(&spec, Intent::Observe).await.is_err());
        assert!(h.write_atomic(Path::new("/tmp/x"), b"").await.is_err());
        assert!(
            h.copy_tree(Path::new("/tmp/x"), Path::new("/tmp/y"))
                .await
                .is_err()
        );
        assert_eq!(h.hostname(), "h");
    }
}
