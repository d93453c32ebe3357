//! A model test of incremental reading (`read_incremental`, positions carried in memory):
//! random sequences of writes, rotations and reads on a real file in a temp dir, against a
//! model that says which sequence numbers must have been read after each read (all complete
//! lines written so far, each exactly once) and whether that read must report a rotation.
//!
//! The generator keeps to what can be read at all (see the limits in `tail.rs`'s doc):
//! - the first operation is a read: a file renamed away before any read is unknown;
//! - a read comes between two rotations: after two, the middle file is not read by design;
//! - a read comes right before a truncate or delete: what was not read is gone;
//! - rotations finish a partial line first (a writer rotates between lines); a truncate or
//!   delete drops it (that line was never complete, so it must never be read).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use runbook::probes::TailPosition;
use runbook::probes::jsonl::{Opts, read_incremental};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Append this many complete lines.
    Append(u8),
    /// Append the first half of a line.
    Partial,
    /// Append the rest of the partial line.
    Complete,
    /// Rename to `app.jsonl.N`, create an empty `app.jsonl`.
    Rename,
    /// Copy to `app.jsonl.N`, then truncate (no write in between).
    CopyTruncate,
    /// Truncate to nothing.
    Truncate,
    /// Delete and create again at once (the inode may be reused).
    Recreate,
    /// An incremental read.
    Read,
}

impl Op {
    fn is_rotation(self) -> bool {
        matches!(
            self,
            Op::Rename | Op::CopyTruncate | Op::Truncate | Op::Recreate
        )
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..5).prop_map(Op::Append),
        1 => Just(Op::Partial),
        1 => Just(Op::Complete),
        1 => Just(Op::Rename),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::Truncate),
        1 => Just(Op::Recreate),
        3 => Just(Op::Read),
    ]
}

/// The generated operations with the reads the module doc asks for, and a last read.
fn schedule(ops: &[Op]) -> Vec<Op> {
    let mut out = vec![Op::Read];
    let mut read_since_rotation = true;
    for &op in ops {
        let needs_read = match op {
            Op::Truncate | Op::Recreate => out.last() != Some(&Op::Read),
            Op::Rename | Op::CopyTruncate => !read_since_rotation,
            _ => false,
        };
        if needs_read {
            out.push(Op::Read);
        }
        out.push(op);
        if op.is_rotation() {
            read_since_rotation = false;
        } else if op == Op::Read {
            read_since_rotation = true;
        }
    }
    out.push(Op::Read);
    out
}

/// Whether the next read must report a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    No,
    Yes,
    /// Deleted and recreated before anything was read: if the inode is reused, nothing
    /// tells the new file from the old one (and nothing was lost).
    Either,
}

struct World {
    _dir: tempfile::TempDir,
    path: PathBuf,
    next: u64,
    /// The sequence number of the half-written line and its second half.
    partial: Option<(u64, String)>,
    rotated: u32,
    /// Complete lines written: each must be read exactly once.
    written: Vec<u64>,
    seen: BTreeMap<u64, u32>,
    position: Option<TailPosition>,
    expect: Expect,
    opts: Opts,
}

fn line(seq: u64) -> String {
    format!("{{\"seq\":{seq}}}\n")
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.jsonl");
        File::create(&path).unwrap();
        World {
            _dir: dir,
            path,
            next: 0,
            partial: None,
            rotated: 0,
            written: Vec::new(),
            seen: BTreeMap::new(),
            position: None,
            expect: Expect::No,
            opts: Opts {
                keep_last: 1 << 20,
                max_line_bytes: 1 << 20,
                ..Opts::default()
            },
        }
    }

    fn append(&self, text: &str) {
        let mut f = OpenOptions::new().append(true).open(&self.path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn complete(&mut self) {
        if let Some((seq, rest)) = self.partial.take() {
            self.append(&rest);
            self.written.push(seq);
        }
    }

    fn rotated_name(&mut self) -> PathBuf {
        self.rotated += 1;
        self.path.with_extension(format!("jsonl.{}", self.rotated))
    }

    /// The saved offset: a rotation is only visible once something was read.
    fn offset(&self) -> u64 {
        self.position.as_ref().map_or(0, |p| p.offset)
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Append(k) => {
                self.complete();
                for _ in 0..k {
                    self.append(&line(self.next));
                    self.written.push(self.next);
                    self.next += 1;
                }
            }
            Op::Partial => {
                if self.partial.is_none() {
                    let l = line(self.next);
                    let (head, tail) = l.split_at(l.len() / 2);
                    self.append(head);
                    self.partial = Some((self.next, tail.to_owned()));
                    self.next += 1;
                }
            }
            Op::Complete => self.complete(),
            Op::Rename => {
                self.complete();
                let to = self.rotated_name();
                std::fs::rename(&self.path, to).unwrap();
                File::create(&self.path).unwrap();
                self.expect = Expect::Yes;
            }
            Op::CopyTruncate => {
                self.complete();
                // Lines appended to a file of which nothing was read yet, then copied away
                // and truncated: the file looks like one that is still empty. Nothing can
                // tell, so read them first (the model's one concession).
                if self.offset() == 0 && std::fs::metadata(&self.path).unwrap().len() > 0 {
                    self.apply(Op::Read)?;
                }
                let to = self.rotated_name();
                std::fs::copy(&self.path, to).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                self.expect = if self.offset() > 0 {
                    Expect::Yes
                } else {
                    Expect::No
                };
            }
            Op::Truncate => {
                self.partial = None;
                OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                self.expect = if self.offset() > 0 {
                    Expect::Yes
                } else {
                    Expect::No
                };
            }
            Op::Recreate => {
                self.partial = None;
                std::fs::remove_file(&self.path).unwrap();
                File::create(&self.path).unwrap();
                self.expect = if self.offset() > 0 {
                    Expect::Yes
                } else {
                    Expect::Either
                };
            }
            Op::Read => self.read()?,
        }
        Ok(())
    }

    fn read(&mut self) -> Result<(), TestCaseError> {
        let r = read_incremental(&self.path, self.position.as_ref(), &self.opts).unwrap();
        let mut values = Vec::new();
        let mut lines = r.tally.lines;
        if let Some((_, rest)) = &r.rest {
            values.extend(rest.last.iter().cloned());
            lines += rest.lines;
            prop_assert_eq!(rest.malformed, 0, "rest of {:?}", r.rest);
        }
        values.extend(r.tally.last.iter().cloned());
        prop_assert_eq!(r.tally.malformed, 0, "{:?}", r.tally);
        prop_assert_eq!(lines, values.len() as u64);
        for v in &values {
            let seq = v["seq"].as_u64();
            prop_assert!(seq.is_some(), "not one of ours: {}", v);
            *self.seen.entry(seq.unwrap()).or_default() += 1;
        }
        match self.expect {
            Expect::Yes => prop_assert!(r.change.is_rotation(), "missed: {:?}", r.change),
            Expect::No => prop_assert!(!r.change.is_rotation(), "invented: {:?}", r.change),
            Expect::Either => {}
        }
        self.expect = Expect::No;
        self.position = Some(r.position);
        // After every read, everything complete so far was read once.
        let want: BTreeMap<u64, u32> = self.written.iter().map(|&s| (s, 1)).collect();
        prop_assert_eq!(&self.seen, &want);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_complete_line_is_read_exactly_once(ops in prop::collection::vec(op(), 1..32)) {
        let mut w = World::new();
        for op in schedule(&ops) {
            w.apply(op)?;
        }
    }
}

/// The generator's constraints, spelled out on one sequence.
#[test]
fn schedule_puts_a_read_between_rotations_and_before_data_is_destroyed() {
    use Op::{Append, Read, Rename, Truncate};
    assert_eq!(
        schedule(&[Append(1), Rename, Append(2), Rename, Truncate]),
        vec![
            Read,
            Append(1),
            Rename,
            Append(2),
            Read,
            Rename,
            Read,
            Truncate,
            Read
        ]
    );
}
