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
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .create(true)
            .open(path)
            .map_err(io("open for append", path))?;
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
        let path = &self.path;
        self.file.lock().map_err(io("lock", path))?;
        let result = (|| -> Result<u64, IoError> {
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
            self.file.write_all(&buf).map_err(io("append to", path))?;
            if self.durability == Durability::Durable {
                self.file.sync_data().map_err(io("fsync", path))?;
            }
            Ok(start)
        })();
        let unlocked = self.file.unlock().map_err(io("unlock", path));
        let start = result?;
        unlocked?;
        Ok(start)
    }
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
