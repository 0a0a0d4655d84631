//! "One process per folder", by `flock`.
//!
//! A process takes an exclusive, non-blocking lock on `process.lock` (or
//! `supervisor.lock`) first thing and holds it until it exits; the kernel drops
//! it when the process dies, however it dies. Liveness is "the lock is held",
//! never "the pid exists" (pids are reused). The file's content — pid, start
//! time, generation — is informational, for `status` and signalling.

use crate::error::{io, IoError};
use serde::{Deserialize, Serialize};
use std::fs::{File, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the holder writes into its lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub started: String,
    #[serde(default)]
    pub gen: u64,
    /// The holder's start time in clock ticks since boot (`/proc/PID/stat`
    /// field 22): with the pid, it names one process, so a signaller can
    /// check that the pid was not reused before signalling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
}

impl LockInfo {
    /// Info describing the calling process.
    pub fn me(started: String, gen: u64) -> LockInfo {
        let pid = std::process::id();
        LockInfo {
            pid,
            started,
            gen,
            start: process_start(pid),
        }
    }

    /// Is the process this info describes alive, and the same one (its pid
    /// not reused since)? Info without a start time is trusted on its pid.
    pub fn is_alive(&self) -> bool {
        if self.pid == 0 {
            return false;
        }
        match (self.start, process_start(self.pid)) {
            (_, None) => false,
            (Some(recorded), Some(now)) => recorded == now,
            (None, Some(_)) => true,
        }
    }
}

/// Start time of a process in clock ticks since boot, from `/proc/PID/stat`
/// (`comm` may hold spaces and parentheses, so fields are counted after its
/// closing parenthesis).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // After comm: state is field 3; starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Lock files hold their info padded to this many bytes, so that rewriting
/// it is one positioned write a reader sees whole (never an empty file).
const INFO_WIDTH: usize = 255;

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
        // Never through a symbolic link (`confine`): the lock info would be
        // written into whatever it points at.
        let file = crate::confine::open(
            path,
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CREAT,
            crate::layout::FILE_MODE,
        )
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

    /// Records who holds the lock (informational). Written in place with one
    /// positioned write of a fixed width, so a reader never finds the file
    /// empty or half old, half new.
    pub fn write_info(&mut self, info: &LockInfo) -> Result<(), IoError> {
        use std::os::unix::fs::FileExt;
        let mut bytes = serde_json::to_vec(info)
            .map_err(|e| IoError::new("serialise", &self.path, e.into()))?;
        if bytes.len() < INFO_WIDTH {
            bytes.resize(INFO_WIDTH, b' ');
        }
        bytes.push(b'\n');
        self.file
            .write_all_at(&bytes, 0)
            .map_err(io("write", &self.path))?;
        self.file
            .set_len(bytes.len() as u64)
            .map_err(io("truncate", &self.path))
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
    let file = match crate::confine::open(path, nix::fcntl::OFlag::O_RDONLY, 0) {
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
    crate::confine::open(path, nix::fcntl::OFlag::O_RDONLY, 0)
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
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
            start: None,
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

    #[test]
    fn info_names_one_process() {
        let me = LockInfo::me("now".into(), 1);
        assert!(me.is_alive(), "the calling process is alive");
        let reused = LockInfo {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert!(
            !reused.is_alive(),
            "same pid, other start time: another process"
        );
        let nobody = LockInfo {
            pid: 0,
            ..me.clone()
        };
        assert!(!nobody.is_alive());
        // Rewriting the info never shrinks the file to nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("process.lock");
        let mut held = HeldLock::try_acquire(&p).expect("lock");
        held.write_info(&me).expect("info");
        held.write_info(&LockInfo {
            gen: 2,
            ..me.clone()
        })
        .expect("info");
        assert_eq!(read_info(&p).map(|i| i.gen), Some(2));
    }
}
