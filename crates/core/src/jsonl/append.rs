//! The multi-writer-safe append protocol.

use crate::error::{io, FormatError, IoError};
use std::fs::File;
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
            let len = match self.live_len() {
                Ok(Some(len)) => len,
                Ok(None) => {
                    let _ = self.file.unlock();
                    self.reopen()?;
                    continue;
                }
                Err(e) => {
                    let _ = self.file.unlock();
                    return Err(e.into());
                }
            };
            let result = self.write_locked(&mut buf, len);
            let unlocked = self.file.unlock().map_err(io("unlock", &self.path));
            let start = result?;
            unlocked?;
            return Ok(start);
        }
    }

    /// The append proper, under the lock, at the file's length `len`.
    ///
    /// A write that fails part-way — a full disk — is cut back to the end of
    /// the last whole record it wrote: no half record is left behind, and
    /// the whole ones stay (a reader may have consumed them already; the
    /// caller's retry of the batch finds them by their keys, as after a
    /// crash). A failed fsync leaves the records in place for the same
    /// reason, and reports the failure.
    fn write_locked(&mut self, buf: &mut Vec<u8>, len: u64) -> Result<u64, IoError> {
        let path = &self.path;
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
        let mut done = 0;
        while done < buf.len() {
            let err = match self.file.write(&buf[done..]) {
                Ok(0) => std::io::Error::from(std::io::ErrorKind::WriteZero),
                Ok(n) => {
                    done += n;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            let whole = buf[..done]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            // Shrinking needs no space.
            let _ = self.file.set_len(len + whole as u64);
            return Err(IoError::new("append to", path, err));
        }
        if self.durability == Durability::Durable {
            self.file.sync_data().map_err(io("fsync", path))?;
        }
        Ok(start)
    }

    /// The file's length if our descriptor still names the file at `path`,
    /// `None` if the path names another file (or none) now.
    fn live_len(&self) -> Result<Option<u64>, IoError> {
        use std::os::unix::fs::MetadataExt;
        let ours = self.file.metadata().map_err(io("stat", &self.path))?;
        match std::fs::metadata(&self.path) {
            Ok(theirs) if ours.ino() == theirs.ino() && ours.dev() == theirs.dev() => {
                Ok(Some(ours.len()))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IoError::new("stat", &self.path, e)),
        }
    }

    fn reopen(&mut self) -> Result<(), IoError> {
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, IoError> {
    use nix::fcntl::OFlag;
    // Never through a symbolic link (`confine`): an inbox linked to a file
    // outside the society is refused, not appended to.
    crate::confine::open(
        path,
        OFlag::O_RDWR | OFlag::O_APPEND | OFlag::O_CREAT,
        // The owner's alone, whatever the umask (FORMAT.md, private files).
        crate::layout::FILE_MODE,
    )
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
