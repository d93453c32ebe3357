//! The audit file is private to the user who runs the engine: it holds every run's resolved
//! inputs, outputs and the alerts that started them (secrets are redacted, but hostnames,
//! paths, labels and command output are not). A new database is created `0600` in a
//! directory created `0700`; `SQLite` gives its `-wal` and `-shm` files the database's own
//! mode. An existing file keeps the mode its owner gave it.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Create `path`'s missing directories (`0700`) and the file itself (`0600`, empty: `SQLite`
/// takes an empty file for a new database), unless it exists.
pub(super) fn create_private(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::create_private;
    use crate::audit::AuditStore;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_its_wal_and_its_directory_are_private_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state/runbook/audit.db");
        let store = AuditStore::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // The migrations wrote: the WAL and its index exist while the store is open.
        for side in ["audit.db-wal", "audit.db-shm"] {
            assert_eq!(mode(&path.with_file_name(side)), 0o600, "{side}");
        }
        drop(store);
    }

    #[test]
    fn an_existing_file_keeps_its_mode_and_its_content() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_private(&path).unwrap();
        assert_eq!(mode(&path), 0o640);
        let store = AuditStore::open(&path).unwrap();
        drop(store);
        assert_eq!(mode(&path), 0o640);
    }
}
