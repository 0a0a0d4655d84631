//! Moving a fully consumed live file into the archive.

use super::{archive_dir_of, exists, live_seq, segment_path, stem_of, sync_dir, Segment};
use crate::error::{io, IoError};
use crate::layout::Layout;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Renames `live` to its next segment, `<stem>.<seq>.jsonl`, if it is exactly
/// `expected_len` bytes long (the caller's cursor: everything consumed).
///
/// Returns `Ok(None)`, rotating nothing, when the file is missing or empty,
/// when its length is not `expected_len` (an append raced in: consume it
/// first), or when the file at `live` is no longer the one this call opened
/// (it was rotated meanwhile). The next append creates a new live file.
///
/// The check and the rename happen under the live file's `flock`, the lock
/// every [`Appender`](crate::jsonl::Appender) append takes, so no record can
/// land in the file between them; an appender that was waiting for the lock
/// reopens the path and appends to the new live file. The data is fsynced
/// before the rename (records appended as `Flushed` may still be only in
/// memory, and the caller is about to forget them), and both directories
/// after it, so a returned segment survives a power cut.
pub fn rotate(layout: &Layout, live: &Path, expected_len: u64) -> Result<Option<Segment>, IoError> {
    rotate_if(layout, live, expected_len, || true)
}

/// [`rotate`], if `may()` — asked while the live file's lock is held, so
/// that a writer that takes the same lock to record a position in the file
/// (an agent saving where its outbox ended before it runs a message) is
/// either seen by `may` or sees the rotation.
pub fn rotate_if(
    layout: &Layout,
    live: &Path,
    expected_len: u64,
    may: impl FnOnce() -> bool,
) -> Result<Option<Segment>, IoError> {
    let file = match crate::confine::open(live, nix::fcntl::OFlag::O_RDONLY, 0) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoError::new("open", live, e)),
    };
    file.lock().map_err(io("lock", live))?;
    let result = if may() {
        rotate_locked(layout, live, &file, expected_len)
    } else {
        Ok(None)
    };
    let unlocked = file.unlock().map_err(io("unlock", live));
    let rotated = result?;
    unlocked?;
    Ok(rotated)
}

fn rotate_locked(
    layout: &Layout,
    live: &Path,
    file: &File,
    expected_len: u64,
) -> Result<Option<Segment>, IoError> {
    let ours = file.metadata().map_err(io("stat", live))?;
    // Another rotation may have taken the file while we waited for its lock:
    // our descriptor would then be a segment, and `live` a newer file.
    match std::fs::metadata(live) {
        Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoError::new("stat", live, e)),
    }
    if ours.len() != expected_len {
        tracing::debug!(
            path = %live.display(),
            len = ours.len(),
            expected_len,
            "not rotating: the file is not exactly as long as consumed"
        );
        return Ok(None);
    }
    if expected_len == 0 {
        // An empty segment would only cost a number and a file.
        return Ok(None);
    }
    file.sync_all().map_err(io("fsync", live))?;
    let dir = archive_dir_of(layout, live);
    create_dir_durable(&dir)?;
    // Rotations of one file are serialised by its lock (and the identity
    // check above), so the number is free until the rename takes it.
    let seq = live_seq(layout, live)?;
    let path = segment_path(&dir, stem_of(live)?, seq, false);
    rename_noreplace(live, &path)?;
    sync_dir(&dir)?;
    if let Some(parent) = live.parent() {
        sync_dir(parent)?;
    }
    tracing::debug!(path = %live.display(), seq, "rotated into the archive");
    Ok(Some(Segment {
        seq,
        path,
        compressed: false,
    }))
}

/// `create_dir_all`, fsyncing the parent of every directory it creates, so a
/// segment renamed into a new directory is not lost with the directory.
fn create_dir_durable(dir: &Path) -> Result<(), IoError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    create_dir_durable(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(IoError::new("create directory", dir, e)),
    }
}

/// `rename(2)` that refuses to replace an existing segment: a numbering
/// mistake must fail loudly rather than destroy archived records.
fn rename_noreplace(from: &Path, to: &Path) -> Result<(), IoError> {
    let err = |e: std::io::Error| IoError::new("rotate the live file into", to, e);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            // The filesystem does not support the flag: fall back below.
            Err(Errno::EINVAL | Errno::ENOSYS) => {}
            Err(e) => return Err(err(e.into())),
        }
    }
    // Without the flag, a check then a plain rename; only other rotations of
    // this file create these names, and they wait for the lock we hold.
    if exists(to)? {
        return Err(err(std::io::ErrorKind::AlreadyExists.into()));
    }
    std::fs::rename(from, to).map_err(err)
}
