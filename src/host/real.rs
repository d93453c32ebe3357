//! The real host.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use async_trait::async_trait;

use crate::host::api::{Host, HostError, HostMode, Intent, ProcOutput, ProcSpec};
use crate::host::process::run_process;

/// The machine this process runs on.
#[derive(Debug, Default)]
pub struct RealHost {
    secure: OnceLock<reqwest::Client>,
    insecure: OnceLock<reqwest::Client>,
    /// For `http://` URLs: no root certificates loaded.
    plain: OnceLock<reqwest::Client>,
}

impl RealHost {
    /// A new real host.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

pub(crate) fn client(insecure: bool) -> reqwest::Client {
    builder()
        .tls_danger_accept_invalid_certs(insecure)
        .build()
        .unwrap_or_default()
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
}

/// A client for plain `http://`: it trusts no certificate (an empty root store), so building
/// it skips reading the system's roots; it would refuse any `https://` peer.
fn plain_client() -> reqwest::Client {
    builder()
        .tls_certs_only([])
        .build()
        .unwrap_or_else(|_| client(false))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[async_trait]
impl Host for RealHost {
    fn mode(&self) -> HostMode {
        HostMode::Real
    }

    fn hostname(&self) -> String {
        hostname()
    }

    fn http(&self, insecure: bool) -> reqwest::Client {
        let cell = if insecure {
            &self.insecure
        } else {
            &self.secure
        };
        cell.get_or_init(|| client(insecure)).clone()
    }

    fn http_for(&self, url: &reqwest::Url, insecure: bool) -> reqwest::Client {
        if url.scheme() == "http" {
            self.plain.get_or_init(plain_client).clone()
        } else {
            self.http(insecure)
        }
    }

    fn permit_mutation(&self, _what: &str) -> Result<(), HostError> {
        Ok(())
    }

    async fn spawn(&self, spec: &ProcSpec, _intent: Intent) -> Result<ProcOutput, HostError> {
        run_process(spec).await
    }

    async fn write_atomic(
        &self,
        path: &Path,
        contents: &[u8],
    ) -> Result<Option<PathBuf>, HostError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S%.3f");
        let backup = if tokio::fs::try_exists(path).await? {
            let b = dir.join(format!("{name}.{stamp}.bak"));
            tokio::fs::copy(path, &b).await?;
            Some(b)
        } else {
            None
        };
        let tmp = dir.join(format!(".{name}.{stamp}.tmp"));
        let contents = contents.to_vec();
        let (tmp2, path2, dir2) = (tmp.clone(), path.to_path_buf(), dir.to_path_buf());
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            // `create_new`: never write through a symlink or a file someone else prepared.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp2)?;
            if let Ok(meta) = std::fs::metadata(&path2) {
                f.set_permissions(meta.permissions())?;
            }
            f.write_all(&contents)?;
            f.sync_all()?;
            std::fs::rename(&tmp2, &path2)?;
            // The rename is durable only once the directory is synced; the file is already
            // in place, so a failure here is not a failed write.
            let _ = std::fs::File::open(&dir2).and_then(|d| d.sync_all());
            Ok(())
        })
        .await
        .map_err(|e| HostError::Io(std::io::Error::other(e)))?;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(HostError::Io(e));
        }
        Ok(backup)
    }

    async fn copy_tree(&self, from: &Path, to: &Path) -> Result<u64, HostError> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        tokio::task::spawn_blocking(move || copy_tree(&from, &to))
            .await
            .map_err(|e| HostError::Io(std::io::Error::other(e)))?
            .map_err(HostError::Io)
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    // The top level is followed like `cp -r src dst` does: backing up `/opt/app/logs` when it
    // is a symlink copies the logs, not the link.
    let meta = std::fs::metadata(from)?;
    copy_entry(from, to, &meta)
}

fn copy_entry(from: &Path, to: &Path, meta: &std::fs::Metadata) -> std::io::Result<u64> {
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        let mut n = 0;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            n += copy_entry(&entry.path(), &to.join(entry.file_name()), &meta)?;
        }
        // Set last, so a read-only directory still received its contents.
        std::fs::set_permissions(to, meta.permissions())?;
        return Ok(n);
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Never write through a symlink already at the destination (a restore over a tree an
    // attacker could have prepared): replace it.
    if std::fs::symlink_metadata(to).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(to)?;
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        if std::fs::symlink_metadata(to).is_ok() {
            std::fs::remove_file(to)?;
        }
        std::os::unix::fs::symlink(target, to)?;
        Ok(0)
    } else if meta.is_file() {
        std::fs::copy(from, to)
    } else {
        // Sockets, fifos and devices are not data to back up.
        Ok(0)
    }
}
