//! The society's shared context (`.society-agent/shared/`: the bible, the
//! style guide, schedules), readable by every agent, written only by
//! `society shared put`. Brain key `shared = true` offers the `read_shared`
//! tool; `shared_in_prompt = true` also lists the files (names and sizes) in
//! the system prompt.
//!
//! A name must be relative, without `..`, without a part starting with `.`
//! (`shared put`'s own bookkeeping, `.versions.jsonl` and `.history/`), and
//! must resolve (symlinks followed) inside `shared/`. Nothing here writes:
//! an agent writes only inside its own folder.

use society_core::Layout;
use std::path::{Component, Path, PathBuf};

/// Longest text handed back to the model by `read_shared`.
pub const READ_LIMIT: usize = 64 * 1024;
/// Most files listed in the system prompt.
const LIST_LIMIT: usize = 100;

/// `.society-agent/shared/` of the society holding agent folder `folder`.
pub fn dir(folder: &Path) -> PathBuf {
    let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
    let root = folder
        .parent()
        .and_then(Path::parent)
        .unwrap_or(&folder)
        .to_path_buf();
    Layout::at(root).shared_dir()
}

/// The text of shared file `name`, or why not.
pub fn read(shared: &Path, name: &str) -> Result<String, String> {
    let path = resolve(shared, name)?;
    // At most what is shown: a huge file is not read whole.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(&path).map_err(|e| format!("cannot read shared {name}: {e}"))?,
            READ_LIMIT as u64 + 4,
        ),
        &mut bytes,
    )
    .map_err(|e| format!("cannot read shared {name}: {e}"))?;
    Ok(super::tools::truncate(
        &String::from_utf8_lossy(&bytes),
        READ_LIMIT,
    ))
}

fn resolve(shared: &Path, name: &str) -> Result<PathBuf, String> {
    let p = Path::new(name);
    if name.trim().is_empty() {
        return Err("empty name: give a file name from shared/".into());
    }
    if p.is_absolute() {
        return Err(format!(
            "{name}: absolute paths are refused; give a name relative to shared/"
        ));
    }
    for c in p.components() {
        match c {
            Component::Normal(part) if part.to_string_lossy().starts_with('.') => {
                return Err(format!("{name}: hidden names are refused"))
            }
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("{name}: `..` is refused; stay inside shared/"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{name}: not a relative path"))
            }
        }
    }
    let root = shared
        .canonicalize()
        .map_err(|_| format!("no shared file {name}: shared/ is empty"))?;
    let real = shared
        .join(p)
        .canonicalize()
        .map_err(|_| format!("no shared file {name}"))?;
    if !real.starts_with(&root) {
        return Err(format!(
            "{name}: leads outside shared/ through a symlink; refused"
        ));
    }
    if !real.is_file() {
        return Err(format!("{name} is not a file"));
    }
    Ok(real)
}

/// `(name, bytes)` of every visible file in `shared/`, sorted by name.
pub fn list(shared: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    walk(shared, "", &mut out);
    out.sort();
    out
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || out.len() >= LIST_LIMIT {
            continue;
        }
        let rel = format!("{prefix}{name}");
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), &format!("{rel}/"), out),
            Ok(t) if t.is_file() => out.push((rel, e.metadata().map_or(0, |m| m.len()))),
            _ => {}
        }
    }
}

/// The system prompt's section listing the shared files.
pub fn prompt_section(shared: &Path) -> String {
    let files = list(shared);
    if files.is_empty() {
        return "Shared context (read with `read_shared`): none yet.".into();
    }
    let mut text =
        String::from("Shared context every agent may read (call `read_shared` with a name):");
    for (name, size) in files {
        text.push_str(&format!("\n- {name} ({size} bytes)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_inside_shared_and_lists_visible_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(shared.join("style")).expect("mkdir");
        std::fs::write(shared.join("bible.md"), "dragons are blue").expect("write");
        std::fs::write(shared.join("style/guide.md"), "short").expect("write");
        std::fs::write(shared.join(".versions.jsonl"), "{}").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), shared.join("leak"))
            .expect("symlink");
        assert_eq!(read(&shared, "bible.md").expect("read"), "dragons are blue");
        assert_eq!(read(&shared, "style/guide.md").expect("read"), "short");
        for (bad, why) in [
            ("../secret", "`..` is refused"),
            ("/etc/passwd", "absolute paths are refused"),
            ("leak", "through a symlink"),
            (".versions.jsonl", "hidden names"),
            ("nope.md", "no shared file nope.md"),
            ("style", "not a file"),
        ] {
            let e = read(&shared, bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(
            list(&shared),
            vec![
                ("bible.md".to_string(), 16),
                ("style/guide.md".to_string(), 5)
            ],
            "hidden files and symlinks are not listed"
        );
        let section = prompt_section(&shared);
        assert!(section.contains("- bible.md (16 bytes)"), "{section}");
    }
}
