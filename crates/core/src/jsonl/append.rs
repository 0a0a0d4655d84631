//! The multi-writer-safe append protocol.

use crate::error::{io, FormatError, IoError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How hard an append tries to reach the disk before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `fdatasync` before unlocking: inboxes, outboxes, case logs.
    Durable,
    /// Written to the kernel (survives a process crash, not a power cut): activity logs.
    Flushed,
}

/// An open JSONL file that appends whole records under the protocol.
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    file: File,
    durability: Durability,
    max_record: usize,
}

impl Appender {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path, durability: Durability, max_record: usize) -> Result<Self, IoError> {
        let file = open_append(path)?;
        Ok(Appender {
            path: path.to_path_buf(),
            file,
            durability,
            max_record,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (without newline). Returns the byte offset where it starts.
    pub fn append(&mut self, record: &[u8]) -> Result<u64, FormatError> {
        self.append_batch(&[record])
    }

    /// Appends several records with one `write(2)` and one fsync (group commit).
    /// Returns the byte offset where the first record starts.
    pub fn append_batch<R: AsRef<[u8]>>(&mut self, records: &[R]) -> Result<u64, FormatError> {
        let mut buf =
            Vec::with_capacity(records.iter().map(|r| r.as_ref().len() + 1).sum::<usize>() + 1);
        for r in records {
            let r = r.as_ref();
            if r.len() + 1 > self.max_record {
                return Err(FormatError::RecordTooLarge {
                    path: self.path.clone(),
                    size: r.len() + 1,
                    max: self.max_record,
                });
            }
            debug_assert!(!r.contains(&b'\n'), "records are single lines");
            buf.extend_from_slice(r);
            buf.push(b'\n');
        }
        loop {
            self.file.lock().map_err(io("lock", &self.path))?;
            // The file may have been rotated into archive/ (renamed) while we
            // waited for the lock: our descriptor then points at the archived
            // segment. Append to the live file, never to the segment.
            match self.same_file() {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.file.unlock();
                    self.reopen()?;
                    continue;
                }
                Err(e) => {
                    let _ = self.file.unlock();
                    return Err(e.into());
                }
            }
            let result = self.write_locked(&mut buf);
            let unlocked = self.file.unlock().map_err(io("unlock", &self.path));
            let start = result?;
            unlocked?;
            return Ok(start);
        }
    }

    /// The append proper, under the lock. A write or fsync that fails is
    /// undone (the file is cut back to its length before it), so a failed
    /// append — a full disk, an I/O error — leaves no half record behind and
    /// the caller's retry writes it once.
    fn write_locked(&mut self, buf: &mut Vec<u8>) -> Result<u64, IoError> {
        let path = &self.path;
        let len = self.file.metadata().map_err(io("stat", path))?.len();
        let mut start = len;
        if len > 0 {
            let mut last = [0u8; 1];
            self.file
                .read_exact_at(&mut last, len - 1)
                .map_err(io("read tail of", path))?;
            if last[0] != b'\n' {
                // A writer died mid-line: end its fragment so it stays one bad line.
                buf.insert(0, b'\n');
                start += 1;
            }
        }
        let written = self.file.write_all(buf).and_then(|()| {
            if self.durability == Durability::Durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Undo whatever part reached the file (shrinking needs no space).
            let _ = self.file.set_len(len);
            return Err(IoError::new("append to", path, e));
        }
        Ok(start)
    }

    /// Does our descriptor still name the file at `path`?
    fn same_file(&self) -> Result<bool, IoError> {
        use std::os::unix::fs::MetadataExt;
        let ours = self.file.metadata().map_err(io("stat", &self.path))?;
        match std::fs::metadata(&self.path) {
            Ok(theirs) => Ok(ours.ino() == theirs.ino() && ours.dev() == theirs.dev()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(IoError::new("stat", &self.path, e)),
        }
    }

    fn reopen(&mut self) -> Result<(), IoError> {
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, IoError> {
    OpenOptions::new()
        .append(true)
        .read(true)
        .create(true)
        .open(path)
        .map_err(io("open for append", path))
}

/// Opens, appends one record, closes. For occasional writers (CLI, registry).
pub fn append_one(
    path: &Path,
    record: &[u8],
    durability: Durability,
    max_record: usize,
) -> Result<u64, FormatError> {
    Appender::open(path, durability, max_record)?.append(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appender_follows_the_file_after_a_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("inbox.jsonl");
        let mut a = Appender::open(&live, Durability::Flushed, 1024).expect("open");
        a.append(b"{\"n\":1}").expect("append");
        let segment = dir.path().join("inbox.000000.jsonl");
        std::fs::rename(&live, &segment).expect("rotate");
        a.append(b"{\"n\":2}").expect("append after rotation");
        assert_eq!(std::fs::read(&segment).expect("segment"), b"{\"n\":1}\n");
        assert_eq!(std::fs::read(&live).expect("live"), b"{\"n\":2}\n");
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        // /dev/full accepts the open and refuses every write with ENOSPC.
        let mut a = Appender::open(Path::new("/dev/full"), Durability::Flushed, 1024)
            .expect("open /dev/full");
        let err = a
            .append(b"{}")
            .expect_err("a full device refuses the write");
        assert!(err.to_string().contains("append to"), "{err}");
    }
}
