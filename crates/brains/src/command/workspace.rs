//! `write_file`: the one side effect the command brain performs itself, and
//! only inside the agent's `workspace/`.
//!
//! A path is refused if it is absolute, holds `..`, or reaches outside the
//! workspace through a symlink; `workspace/` itself must be no symlink (it
//! is one of society's own folders). Every path is checked before any file
//! is written (the deepest folder on the way that exists is opened below
//! the workspace), and each write is again opened below the workspace in
//! one step (`society_core::confine`): a symlink is followed only while it
//! stays inside. The file is written to a fresh temp file beside the target
//! and renamed over it: a rename replaces a symlink at the target instead of
//! following it, so the last component cannot escape either.

use crate::BrainError;
use society_core::confine::{self, BeneathError, Symlinked};
use std::fs::File;
use std::path::{Component, Path, PathBuf};

/// A checked destination.
pub(crate) struct Target {
    /// As the program wrote it, for messages.
    given: String,
    workspace: PathBuf,
    /// Normal components only, relative to the workspace.
    rel: PathBuf,
}

impl Target {
    pub(crate) fn check(workspace: &Path, given: &str) -> Result<Target, BrainError> {
        let refuse = |reason: &str| BrainError::WriteRefused {
            path: given.to_string(),
            reason: reason.to_string(),
        };
        if given.is_empty() {
            return Err(refuse("the path is empty"));
        }
        if given.contains('\0') {
            return Err(refuse("the path holds a NUL byte"));
        }
        let mut rel = PathBuf::new();
        for c in Path::new(given).components() {
            match c {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(refuse(
                        "the path holds `..`; paths are relative to workspace/",
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse(
                        "the path is absolute; paths are relative to workspace/",
                    ))
                }
            }
        }
        if rel.file_name().is_none() {
            return Err(refuse("the path names the workspace itself"));
        }
        let target = Target {
            given: given.to_string(),
            workspace: workspace.to_path_buf(),
            rel,
        };
        // The deepest folder on the way that already exists must lie inside.
        let base = target.base()?;
        let mut existing = target.rel.parent().unwrap_or(Path::new(""));
        loop {
            let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY;
            match confine::open_beneath(&base, workspace, existing, flags, existing) {
                Ok(_) => return Ok(target),
                Err(BeneathError::Missing { .. }) if !existing.as_os_str().is_empty() => {
                    existing = existing.parent().unwrap_or(Path::new(""));
                }
                Err(e) => return Err(target.refusal(e)),
            }
        }
    }

    /// The workspace, opened: refused if it is a symlink.
    fn base(&self) -> Result<File, BrainError> {
        confine::open(
            &self.workspace,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            0,
        )
        .map_err(|e| match Symlinked::of(&e) {
            Some(link) => BrainError::WriteRefused {
                path: self.given.clone(),
                reason: format!("workspace/ cannot be used: {link}"),
            },
            None => BrainError::WriteFailed {
                path: self.workspace.clone(),
                source: e,
            },
        })
    }

    fn refusal(&self, e: BeneathError) -> BrainError {
        let refused = |reason: String| BrainError::WriteRefused {
            path: self.given.clone(),
            reason,
        };
        match e {
            BeneathError::Outside { resolved, .. } => refused(format!(
                "it leads outside the workspace through a symlink{}",
                resolved
                    .map(|r| format!(" (to {})", r.display()))
                    .unwrap_or_default()
            )),
            BeneathError::IsADirectory { .. } => refused("the path names a folder".into()),
            BeneathError::NotAFile { .. } => refused("the path names no regular file".into()),
            BeneathError::Missing { .. } => BrainError::WriteFailed {
                path: self.workspace.join(&self.rel),
                source: std::io::ErrorKind::NotFound.into(),
            },
            BeneathError::TooBig { .. } => refused("the file is too big".into()),
            BeneathError::Io { source, .. } => BrainError::WriteFailed {
                path: self.workspace.join(&self.rel),
                source,
            },
        }
    }

    pub(crate) fn write(&self, content: &[u8]) -> Result<(), BrainError> {
        let base = self.base()?;
        confine::write_beneath(&base, &self.workspace, &self.rel, content, &self.rel)
            .map_err(|e| self.refusal(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(ws: &Path, path: &str) -> String {
        match Target::check(ws, path) {
            Err(BrainError::WriteRefused { reason, .. }) => reason,
            Err(e) => panic!("{path}: expected a refusal, got {e}"),
            Ok(_) => panic!("{path}: expected a refusal, got a target"),
        }
    }

    #[test]
    fn escapes_are_refused_and_nothing_is_written_outside() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("workspace");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("link")).unwrap();
        assert!(refused(&ws, "../x").contains("`..`"));
        assert!(refused(&ws, "a/../../x").contains("`..`"));
        assert!(refused(&ws, "/etc/x").contains("absolute"));
        assert!(refused(&ws, "").contains("empty"));
        assert!(refused(&ws, ".").contains("workspace itself"));
        assert!(refused(&ws, "link/x").contains("symlink"));
        assert!(refused(&ws, "link/deeper/x").contains("symlink"));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_workspace_that_is_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let ws = dir.path().join("workspace");
        std::os::unix::fs::symlink(&outside, &ws).unwrap();
        assert!(refused(&ws, "x").contains("is a symbolic link"));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn writes_inside_replace_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("workspace");
        std::fs::create_dir_all(&ws).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, ws.join("out.txt")).unwrap();
        Target::check(&ws, "out.txt")
            .unwrap()
            .write(b"new")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(ws.join("out.txt")).unwrap(), "new");
        Target::check(&ws, "./output/deep/r.md")
            .unwrap()
            .write(b"# r")
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.join("output/deep/r.md")).unwrap(),
            "# r"
        );
    }
}
