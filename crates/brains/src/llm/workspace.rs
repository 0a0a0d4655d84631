//! File tools confined to the agent's `workspace/`.
//!
//! A path must be relative and without `..`. It is opened below the
//! workspace in one step (`society_core::confine`): a symbolic link in it is
//! followed only while it stays inside the workspace, and `workspace/`
//! itself must be no link (it is one of society's own folders). Writes go
//! through a temp file and a rename, which replaces a link at the last
//! component instead of following it. The check is the open itself, so a
//! link swapped in meanwhile (by a tool or server running beside the
//! brain) cannot lead out either.

use society_core::confine::{self, BeneathError, Symlinked};
use std::fs::File;
use std::path::{Component, Path};

/// Largest file `read_file` opens.
const MAX_READ: u64 = 16 * 1024 * 1024;

pub fn read(ws: &Path, rel: &str) -> Result<String, String> {
    let path = check(rel)?;
    let base = open(ws)?;
    let bytes = confine::read_beneath(&base, ws, path, MAX_READ, path)
        .map_err(|e| refusal(rel, "read", e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn write(ws: &Path, rel: &str, content: &str) -> Result<(), String> {
    let path = check(rel)?;
    let base = open(ws)?;
    confine::write_beneath(&base, ws, path, content.as_bytes(), path)
        .map_err(|e| refusal(rel, "write", e))
}

/// `rel` as a path, if it may name a file of the workspace at all.
fn check(rel: &str) -> Result<&Path, String> {
    let p = Path::new(rel);
    if rel.trim().is_empty() {
        return Err("empty path".into());
    }
    if p.is_absolute() {
        return Err(format!(
            "{rel}: absolute paths are refused; give a path relative to workspace/"
        ));
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("{rel}: `..` is refused; stay inside workspace/"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{rel}: not a relative path"))
            }
        }
    }
    if p.file_name().is_none() {
        return Err(format!("{rel}: names workspace/ itself, not a file"));
    }
    Ok(p)
}

/// The workspace, created if missing; refused if it (or the agent's
/// folder) is a symbolic link.
fn open(ws: &Path) -> Result<File, String> {
    let said = |e: std::io::Error| match Symlinked::of(&e) {
        Some(link) => format!("workspace/ refused: {link}"),
        None => format!("cannot open workspace/: {e}"),
    };
    confine::create_dir_all(ws, society_core::layout::DIR_MODE).map_err(said)?;
    confine::open(
        ws,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        0,
    )
    .map_err(said)
}

/// What the model is told.
fn refusal(rel: &str, op: &str, e: BeneathError) -> String {
    match e {
        BeneathError::Outside { resolved, .. } => format!(
            "{rel}: leads outside workspace/{}; refused",
            resolved
                .map(|r| format!(" (to {})", r.display()))
                .unwrap_or_default()
        ),
        BeneathError::Missing { .. } => format!("cannot {op} {rel}: it does not exist"),
        BeneathError::NotAFile { .. } => format!("{rel} is not a file"),
        BeneathError::IsADirectory { .. } => format!("{rel} is a directory"),
        BeneathError::TooBig { bytes, max, .. } => {
            format!("{rel} is {bytes} bytes, more than read_file opens ({max})")
        }
        BeneathError::Io { source, .. } => format!("cannot {op} {rel}: {source}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confines_reads_and_writes_to_the_workspace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("workspace");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("secret"), "s").expect("write");
        write(&ws, "output/a.md", "hello").expect("write inside");
        assert_eq!(read(&ws, "output/a.md").expect("read"), "hello");
        assert_eq!(read(&ws, "./output/a.md").expect("read"), "hello");
        std::os::unix::fs::symlink(&outside, ws.join("out")).expect("symlink");
        std::os::unix::fs::symlink(ws.join("output"), ws.join("in")).expect("symlink");
        std::os::unix::fs::symlink("output", ws.join("rel")).expect("symlink");
        assert_eq!(read(&ws, "in/a.md").expect("symlink inside"), "hello");
        assert_eq!(read(&ws, "rel/a.md").expect("relative symlink"), "hello");
        for bad in [
            "/etc/passwd",
            "../outside/secret",
            "output/../../outside/secret",
            "out/secret",
            "",
        ] {
            assert!(read(&ws, bad).is_err(), "read {bad}");
            assert!(write(&ws, bad, "x").is_err(), "write {bad}");
        }
        assert!(read(&ws, "out/secret")
            .expect_err("out")
            .contains("leads outside workspace/"));
        assert!(write(&ws, "out/new", "x").is_err());
        assert!(!outside.join("new").exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("secret")).expect("read"),
            "s"
        );
    }

    #[test]
    fn a_workspace_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("secret"), "s").expect("write");
        let ws = dir.path().join("workspace");
        std::os::unix::fs::symlink(&outside, &ws).expect("symlink");
        let e = write(&ws, "new.md", "x").expect_err("linked workspace");
        assert!(e.contains("is a symbolic link"), "{e}");
        let e = read(&ws, "secret").expect_err("linked workspace");
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 1);
    }
}
