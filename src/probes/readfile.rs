//! Reading a small file a runbook names (`config`'s `path`, `http`'s `token_file`,
//! `tls_cert`'s `file`) without ever blocking on it.
//!
//! A blocking read of a FIFO that never gets a writer outlives any step timeout, and a thread
//! stuck in one keeps the process from exiting; reading `/dev/zero` to its end grows memory
//! without bound. So only regular files are read, and never more than a cap. Files the probe
//! follows as logs (`jsonl`) have their own reader; this is for files read whole.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

/// Why a file was not read. Its message leaves out the path: the caller names it.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Opening or reading failed (`NotFound` among others).
    Io(std::io::Error),
    /// A FIFO, a device, a socket or a directory: refused before any read.
    NotRegular(&'static str),
    /// More than the cap, in bytes.
    OverCap(u64),
}

impl ReadError {
    /// The file does not exist (some probes observe that rather than fail).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "not a regular file ({what})"),
            ReadError::OverCap(cap) => write!(f, "over the {} cap", size_label(*cap)),
        }
    }
}

/// Read a small regular file without ever blocking on it: a FIFO, a device (`/dev/zero`,
/// a tty) or a socket is refused before any read, and a file over `cap` bytes is refused
/// after reading `cap + 1` bytes, never read whole. `O_NONBLOCK` keeps the open itself from
/// waiting for a FIFO's writer; on a regular file it changes nothing.
///
/// # Errors
/// `not a regular file (a fifo)`, `over the 64 KiB cap`, or the I/O error.
pub(crate) fn read_regular_file(path: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(ReadError::Io)?;
    // The type of what was opened, not of the name: a symlink to a FIFO is a FIFO.
    let kind = file.metadata().map_err(ReadError::Io)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a fifo"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a directory"
        };
        return Err(ReadError::NotRegular(what));
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::OverCap(cap));
    }
    Ok(bytes)
}

/// A cap in words: `4 MiB`, `64 KiB`, `100 bytes`.
pub(crate) fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// `read_regular_file` on another thread, given 10 s: a read that blocks fails the test
    /// instead of hanging it.
    fn read_within(path: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
        let (tx, rx) = mpsc::channel();
        let path = path.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(read_regular_file(&path, cap));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the read blocked")
    }

    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("never.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for p in [&fifo, &link] {
            let e = read_within(p.to_str().unwrap(), 1024).unwrap_err();
            assert_eq!(e.to_string(), "not a regular file (a fifo)");
            assert!(!e.is_not_found());
        }
    }

    #[test]
    fn a_device_and_a_directory_are_refused() {
        let e = read_within("/dev/zero", 1024).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a device)");
        let dir = tempfile::tempdir().unwrap();
        let e = read_within(dir.path().to_str().unwrap(), 1024).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a directory)");
    }

    #[test]
    fn a_file_at_the_cap_is_read_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("at");
        std::fs::write(&at, vec![b'x'; 64 * 1024]).unwrap();
        assert_eq!(
            read_within(at.to_str().unwrap(), 64 * 1024).unwrap().len(),
            64 * 1024
        );
        let over = dir.path().join("over");
        std::fs::write(&over, vec![b'x'; 64 * 1024 + 1]).unwrap();
        let e = read_within(over.to_str().unwrap(), 64 * 1024).unwrap_err();
        assert_eq!(e.to_string(), "over the 64 KiB cap");
    }

    #[test]
    fn a_missing_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_within(dir.path().join("gone").to_str().unwrap(), 1).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }

    #[test]
    fn caps_read_in_the_largest_whole_unit() {
        assert_eq!(size_label(4 << 20), "4 MiB");
        assert_eq!(size_label(64 << 10), "64 KiB");
        assert_eq!(size_label(1000), "1000 bytes");
    }
}
