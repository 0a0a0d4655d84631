//! `write_file`: the one side effect the command brain performs itself, and
//! only inside the agent's `workspace/`.
//!
//! A path is refused if it is absolute, holds `..`, or reaches outside the
//! workspace through a symlink (the deepest existing parent is canonicalised
//! and must lie inside the canonical workspace). The file is written to a
//! fresh temp file beside the target and renamed over it: a rename replaces
//! a symlink at the target instead of following it, so the last component
//! cannot escape either. The program has exited (and its group was killed)
//! before we write, so it cannot race these checks.

use crate::BrainError;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// A checked destination.
pub(crate) struct Target {
    /// As the program wrote it, for messages.
    given: String,
    /// The canonical workspace.
    root: PathBuf,
    /// Normal components only, relative to `root`.
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
        let root = workspace
            .canonicalize()
            .map_err(|source| BrainError::WriteFailed {
                path: workspace.to_path_buf(),
                source,
            })?;
        let target = Target {
            given: given.to_string(),
            root,
            rel,
        };
        // The deepest directory on the way that already exists.
        let mut existing = target.root.join(&target.rel);
        existing.pop();
        while !existing.exists() {
            existing.pop();
        }
        target.inside(&existing)?;
        Ok(target)
    }

    /// Canonicalises `dir` and refuses it unless it lies inside the workspace.
    fn inside(&self, dir: &Path) -> Result<PathBuf, BrainError> {
        let real = dir
            .canonicalize()
            .map_err(|source| BrainError::WriteFailed {
                path: dir.to_path_buf(),
                source,
            })?;
        if !real.starts_with(&self.root) {
            return Err(BrainError::WriteRefused {
                path: self.given.clone(),
                reason: format!(
                    "it leads outside the workspace through a symlink (to {})",
                    real.display()
                ),
            });
        }
        Ok(real)
    }

    pub(crate) fn write(&self, content: &[u8]) -> Result<(), BrainError> {
        let full = self.root.join(&self.rel);
        let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
            return Err(BrainError::WriteRefused {
                path: self.given.clone(),
                reason: "the path names the workspace itself".into(),
            });
        };
        let failed = |path: &Path, source| BrainError::WriteFailed {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
        let dir = self.inside(parent)?;
        let target = dir.join(name);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".society-tmp-{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        // `create_new` never follows a symlink planted at the temp name.
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| failed(&tmp, e))?;
        file.write_all(content).map_err(|e| failed(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &target).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            failed(&target, e)
        })
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
