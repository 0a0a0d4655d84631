//! "One process per folder", by `flock`.
//!
//! A process takes an exclusive, non-blocking lock on `process.lock` (or
//! `supervisor.lock`) first thing and holds it until it exits; the kernel drops
//! it when the process dies, however it dies. Liveness is "the lock is held",
//! never "the pid exists" (pids are reused). The file's content — pid, start
//! time, generation — is informational, for `status` and signalling.

use crate::error::{io, IoError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// What the holder writes into its lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub started: String,
    #[serde(default)]
    pub gen: u64,
}

/// A held lock; dropping it (or dying) releases it.
#[derive(Debug)]
pub struct HeldLock {
    file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is held by another process{}", path.display(), holder.as_ref().map(|h| format!(" (pid {})", h.pid)).unwrap_or_default())]
    Held {
        path: PathBuf,
        holder: Option<LockInfo>,
    },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl HeldLock {
    /// Takes the lock without blocking or fails with [`LockError::Held`].
    pub fn try_acquire(path: &Path) -> Result<HeldLock, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("open lock file", path))?;
        match file.try_lock() {
            Ok(()) => Ok(HeldLock {
                file,
                path: path.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held {
                path: path.to_path_buf(),
                holder: read_info(path),
            }),
            Err(TryLockError::Error(e)) => Err(IoError::new("lock", path, e).into()),
        }
    }

    /// Records who holds the lock (informational).
    pub fn write_info(&mut self, info: &LockInfo) -> Result<(), IoError> {
        let mut bytes = serde_json::to_vec(info)
            .map_err(|e| IoError::new("serialise", &self.path, e.into()))?;
        bytes.push(b'\n');
        self.file.set_len(0).map_err(io("truncate", &self.path))?;
        self.file.rewind().map_err(io("seek", &self.path))?;
        self.file.write_all(&bytes).map_err(io("write", &self.path))
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Free,
    Held(Option<LockInfo>),
}

/// Is someone holding the lock? Probes by taking and releasing it at once, so a
/// process starting in that instant may see it busy for a few microseconds;
/// [`HeldLock::try_acquire`] callers that must win retry briefly.
pub fn probe(path: &Path) -> Result<LockState, IoError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
        Err(e) => return Err(IoError::new("open lock file", path, e)),
    };
    match file.try_lock() {
        Ok(()) => {
            drop(file);
            Ok(LockState::Free)
        }
        Err(TryLockError::WouldBlock) => Ok(LockState::Held(read_info(path))),
        Err(TryLockError::Error(e)) => Err(IoError::new("probe lock", path, e)),
    }
}

pub fn read_info(path: &Path) -> Option<LockInfo> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    serde_json::from_str(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_and_release_frees() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("process.lock");
        let mut held = HeldLock::try_acquire(&p).expect("first");
        held.write_info(&LockInfo {
            pid: 42,
            started: "x".into(),
            gen: 3,
        })
        .expect("info");
        match HeldLock::try_acquire(&p) {
            Err(LockError::Held {
                holder: Some(h), ..
            }) => assert_eq!(h.pid, 42),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(matches!(
            probe(&p).expect("probe"),
            LockState::Held(Some(_))
        ));
        drop(held);
        assert_eq!(probe(&p).expect("probe"), LockState::Free);
    }
}
