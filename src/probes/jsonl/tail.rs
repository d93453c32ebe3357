//! Incremental reading that survives rotation.
//!
//! A saved position names a file by device + inode + a SHA-256 of its first bytes (up to
//! 4 KiB, never past what was read). At the next read of the same path:
//!
//! | what is there now | what happened | what is read |
//! |---|---|---|
//! | same inode, same first bytes, size ≥ offset | nothing, or appended | from the offset |
//! | same inode, size < offset | truncated (plain, or `copytruncate`) | the copy's rest, then from 0 |
//! | same inode, other first bytes | truncated and rewritten larger; deleted and recreated with the inode reused | the copy's rest if any, then from 0 |
//! | another inode | renamed and recreated (`create`), or deleted and recreated | the renamed file's rest, then from 0 |
//!
//! "The rest" is read from the saved offset to the end of the old file, found beside the path:
//! the file with the saved device + inode and first bytes (renamed), else the newest file with
//! the same first bytes and at least the saved size (the copy `copytruncate` made). A last
//! line without `\n` is left for the next read, except in the old file, which is finished.
//!
//! Limits, also in the README: lines a writer appends between `copytruncate`'s copy and its
//! truncate are in neither file (its documented race); if a file rotates twice between two
//! reads, the middle file is not read; a rotated file already compressed cannot be read.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::scan::{Opts, Partial, Tally, scan};
use crate::probes::TailPosition;

/// The most leading bytes a fingerprint covers.
const FP_MAX: u64 = 4096;

/// What happened to a file since its saved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// No saved position: read from the start.
    New,
    /// The same file: read what was appended.
    Same,
    /// Same inode, shorter than the saved offset.
    Truncated,
    /// Same inode, other first bytes.
    Rewritten,
    /// Another inode at the path.
    Replaced,
}

impl Change {
    /// Name for results.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Same => "same",
            Change::Truncated => "truncated",
            Change::Rewritten => "rewritten",
            Change::Replaced => "replaced",
        }
    }

    /// A rotation (counted in `rotations`).
    #[must_use]
    pub fn is_rotation(self) -> bool {
        matches!(
            self,
            Change::Truncated | Change::Rewritten | Change::Replaced
        )
    }
}

/// One incremental read of one path.
#[derive(Debug)]
pub struct Read {
    /// What happened since the saved position.
    pub change: Change,
    /// The rotated file whose rest was read, and what it held.
    pub rest: Option<(PathBuf, Tally)>,
    /// What the current file held from `from` to the new position.
    pub tally: Tally,
    /// Where reading started in the current file.
    pub from: u64,
    /// The position to save.
    pub position: TailPosition,
    /// Line number (from 1) of the first line read in the current file.
    pub first_line: u64,
}

/// SHA-256 (hex) of the first `len` bytes of `file`; `None` when it is shorter.
fn fingerprint(file: &File, len: u64) -> io::Result<Option<String>> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut got = 0;
    while got < buf.len() {
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[got..], got as u64)?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    Ok(Some(hex::encode(Sha256::digest(&buf))))
}

/// Read what is new at `path` since `saved`.
///
/// # Errors
/// When the file cannot be opened or read.
pub fn read(path: &Path, saved: Option<&TailPosition>, opts: &Opts) -> io::Result<Read> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let (dev, inode, len) = (meta.dev(), meta.ino(), meta.len());
    let mut rest = None;
    let (change, from, lines_before) = match saved {
        None => (Change::New, 0, 0),
        Some(s) => {
            let same_inode = dev == s.dev && inode == s.inode;
            let same_start = fingerprint(&file, s.fp_len)?.as_deref() == Some(&s.fingerprint);
            if same_inode && same_start && len >= s.offset {
                (Change::Same, s.offset, s.line)
            } else {
                let change = match (same_inode, len < s.offset) {
                    (true, true) => Change::Truncated,
                    (true, false) => Change::Rewritten,
                    (false, _) => Change::Replaced,
                };
                if let Some(old) = find_rotated(path, s, (dev, inode))? {
                    let f = File::open(&old)?;
                    let old_len = f.metadata()?.len();
                    let (t, _) = scan(&f, s.offset, old_len, u64::MAX, Partial::Count, opts)?;
                    rest = Some((old, t));
                }
                (change, 0, 0)
            }
        }
    };
    let (tally, end) = scan(&file, from, len, len, Partial::Leave, opts)?;
    let fp_len = end.min(FP_MAX);
    let fp = match saved {
        Some(s) if change == Change::Same && s.fp_len == fp_len => s.fingerprint.clone(),
        _ => fingerprint(&file, fp_len)?.unwrap_or_default(),
    };
    let position = TailPosition {
        path: path.display().to_string(),
        dev,
        inode,
        fp_len,
        fingerprint: fp,
        offset: end,
        size: len,
        line: lines_before + tally.lines,
    };
    Ok(Read {
        change,
        rest,
        tally,
        from,
        position,
        first_line: lines_before + 1,
    })
}

/// The rotated file holding the rest of what `saved` was reading: beside `path`, with the
/// saved inode and first bytes (renamed), else the newest with the same first bytes and at
/// least the saved offset (a copy). Never the file now at `path` (`current`).
fn find_rotated(
    path: &Path,
    saved: &TailPosition,
    current: (u64, u64),
) -> io::Result<Option<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut by_content: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in entries.flatten() {
        let p = entry.path();
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        if !m.is_file() || (m.dev(), m.ino()) == current || m.len() < saved.offset {
            continue;
        }
        let renamed = (m.dev(), m.ino()) == (saved.dev, saved.inode);
        // Nothing was read yet: only the renamed file itself can hold the rest.
        if !renamed && saved.fp_len == 0 {
            continue;
        }
        let Ok(f) = File::open(&p) else {
            continue;
        };
        if fingerprint(&f, saved.fp_len)?.as_deref() != Some(&saved.fingerprint) {
            continue;
        }
        if renamed {
            return Ok(Some(p));
        }
        let mtime = m.modified().unwrap_or(std::time::UNIX_EPOCH);
        if by_content.as_ref().is_none_or(|(t, _)| mtime > *t) {
            by_content = Some((mtime, p));
        }
    }
    Ok(by_content.map(|(_, p)| p))
}
