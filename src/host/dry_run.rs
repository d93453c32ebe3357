//! The dry-run host: observes like the real one, refuses every mutation.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::host::RealHost;
use crate::host::api::{Host, HostError, HostMode, Intent, ProcOutput, ProcSpec};

/// Probes run for real; actions are refused here, in one place.
#[derive(Debug, Default)]
pub struct DryRunHost {
    inner: RealHost,
}

impl DryRunHost {
    /// A new dry-run host.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Host for DryRunHost {
    fn mode(&self) -> HostMode {
        HostMode::DryRun
    }

    fn hostname(&self) -> String {
        self.inner.hostname()
    }

    fn http(&self, insecure: bool) -> reqwest::Client {
        self.inner.http(insecure)
    }

    fn http_for(&self, url: &reqwest::Url, insecure: bool) -> reqwest::Client {
        self.inner.http_for(url, insecure)
    }

    fn permit_mutation(&self, what: &str) -> Result<(), HostError> {
        Err(HostError::DryRun(what.to_owned()))
    }

    async fn spawn(&self, spec: &ProcSpec, intent: Intent) -> Result<ProcOutput, HostError> {
        match intent {
            Intent::Observe => self.inner.spawn(spec, intent).await,
            Intent::Mutate => Err(HostError::DryRun(format!("run `{}`", spec.argv.join(" ")))),
        }
    }

    async fn write_atomic(
        &self,
        path: &Path,
        _contents: &[u8],
    ) -> Result<Option<PathBuf>, HostError> {
        Err(HostError::DryRun(format!("write `{}`", path.display())))
    }

    async fn copy_tree(&self, from: &Path, to: &Path) -> Result<u64, HostError> {
        Err(HostError::DryRun(format!(
            "copy `{}` to `{}`",
            from.display(),
            to.display()
        )))
    }
}
