//! File tools confined to the agent's `workspace/`.
//!
//! A path must be relative, without `..`, and every part of it that exists
//! must resolve (symlinks followed) inside the workspace. Writes go through a
//! temp file and a rename, which replaces a symlink at the last component
//! instead of following it. The workspace belongs to this agent alone, so
//! the check-then-use window is not a concern between cooperating writers.

use std::path::{Component, Path, PathBuf};

/// Largest file `read_file` opens.
const MAX_READ: u64 = 16 * 1024 * 1024;

pub fn read(ws: &Path, rel: &str) -> Result<String, String> {
    let path = resolve(ws, rel)?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{rel} is not a file"));
    }
    if meta.len() > MAX_READ {
        return Err(format!(
            "{rel} is {} bytes, more than read_file opens ({MAX_READ})",
            meta.len()
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn write(ws: &Path, rel: &str, content: &str) -> Result<(), String> {
    let path = resolve(ws, rel)?;
    if path.is_dir() {
        return Err(format!("{rel} is a directory"));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the folder of {rel}: {e}"))?;
        // The parent was checked part by part, but create_dir_all may have
        // created parts: check again before writing into it.
        inside(ws, parent, rel)?;
    }
    society_core::atomic::write_bytes(&path, content.as_bytes(), false)
        .map_err(|e| format!("cannot write {rel}: {e}"))
}

/// The absolute path of `rel` inside `ws`, or why it is refused.
pub fn resolve(ws: &Path, rel: &str) -> Result<PathBuf, String> {
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
    std::fs::create_dir_all(ws).map_err(|e| format!("cannot create workspace/: {e}"))?;
    let mut probe = ws.to_path_buf();
    for c in p.components() {
        probe.push(c);
        if std::fs::symlink_metadata(&probe).is_ok() {
            inside(ws, &probe, rel)?;
        }
    }
    Ok(ws.join(p))
}

fn inside(ws: &Path, path: &Path, rel: &str) -> Result<(), String> {
    let root = ws
        .canonicalize()
        .map_err(|e| format!("cannot resolve workspace/: {e}"))?;
    match path.canonicalize() {
        Ok(real) if real.starts_with(&root) => Ok(()),
        Ok(_) => Err(format!(
            "{rel}: leads outside workspace/ through a symlink; refused"
        )),
        // A dangling symlink: where it points is outside anything we can check.
        Err(_) => Err(format!("{rel}: a dangling symlink; refused")),
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
        assert_eq!(read(&ws, "in/a.md").expect("symlink inside"), "hello");
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
        assert!(write(&ws, "out/new", "x").is_err());
        assert!(!outside.join("new").exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("secret")).expect("read"),
            "s"
        );
    }
}
