//! Shared context (`.society-agent/shared/`, SOCIETY.md O8): the bible, the
//! style guide, schedules — files every agent may read and that change only
//! through [`put`] (`society shared put FILE [--as NAME]`).
//!
//! Theory of operation: every change is a *version*. Under an exclusive
//! lock on `shared/.lock`, a put reads the log (`shared/.versions.jsonl`)
//! for the name's last version `n`, writes the content to
//! `shared/.history/<name>.v<n+1>` (atomic, fsynced), appends the log line
//! — the commit point — and then replaces `shared/<name>` atomically.
//! So concurrent puts (several processes) get distinct, consecutive
//! versions; a crash before the log line leaves no version (the next put
//! reuses the number and overwrites the orphan history file), one after it
//! a live file behind its log, which the next put (of any name) brings up
//! to its latest version from the history first; a reader of
//! `shared/<name>` sees the old or the new content, never a mix. `show`
//! reads the history file of a logged version, so it always agrees with the
//! log. Names starting with `.` are the store's own files and never a
//! shared file's name.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use society_core::jsonl::{append_one, read_objects, Durability};
use society_core::{atomic, time, IoError, Layout};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IoError + 'a {
    move |e| IoError::new(op, path, e)
}

/// Largest shared file: shared context is read by every agent, often into
/// a prompt; bulk data belongs in a workspace.
pub const MAX_SHARED_BYTES: u64 = 16 << 20;

/// One version of one shared file: a line of `shared/.versions.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub name: String,
    pub version: u32,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub bytes: u64,
    /// `orchestrator`, or the agent whose `shared_put` the supervisor applied.
    pub by: String,
    pub ts: String,
    /// What the version was put from: the file given to `shared put`, or
    /// the agent's `shared_put` message id (a replay of it puts nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("invalid shared name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("{} does not exist; nothing was put", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a regular file; nothing was put", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is outside the society at {}{}; nothing was put", path.display(), root.display(),
        if resolved != path { format!(" (it resolves to {})", resolved.display()) } else { String::new() })]
    Outside {
        path: PathBuf,
        resolved: PathBuf,
        root: PathBuf,
    },
    #[error("{} is outside agent {agent}'s folder (it resolves to {}); nothing was put", path.display(), resolved.display())]
    OutsideFolder {
        path: PathBuf,
        resolved: PathBuf,
        agent: String,
    },
    #[error("{} has {bytes} bytes, over the {max} bytes a shared file may have; nothing was put", path.display())]
    TooBig { path: PathBuf, bytes: u64, max: u64 },
    #[error("no shared file {name} in {}", dir.display())]
    NoName { name: String, dir: PathBuf },
    #[error("shared file {name} has no version {version} (latest: {latest})")]
    NoVersion {
        name: String,
        version: u32,
        latest: u32,
    },
    #[error("version {version} of shared file {name} is missing from {}", path.display())]
    LostVersion {
        name: String,
        version: u32,
        path: PathBuf,
    },
    #[error("agent {agent} may not write shared context: its policy has no `shared_write = true`")]
    NotAllowed { agent: String },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Format(#[from] society_core::FormatError),
}

impl SharedError {
    pub fn exit_code(&self) -> crate::exit::Code {
        use crate::exit::Code;
        match self {
            SharedError::NoName { .. } | SharedError::NoVersion { .. } => Code::NotFound,
            SharedError::Missing { .. } => Code::NotFound,
            SharedError::BadName { .. }
            | SharedError::NotAFile { .. }
            | SharedError::Outside { .. }
            | SharedError::OutsideFolder { .. }
            | SharedError::TooBig { .. }
            | SharedError::NotAllowed { .. } => Code::Invalid,
            SharedError::LostVersion { .. } | SharedError::Io(_) => Code::Error,
            SharedError::Format(e) => crate::exit::format_code(e),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            SharedError::Outside { .. } => Some(
                "copy the file into the society (e.g. a workspace) first; shared context is \
                 only published from inside it"
                    .into(),
            ),
            SharedError::NoName { .. } | SharedError::NoVersion { .. } => Some(
                "`society shared list` lists the files, `society shared log` every version".into(),
            ),
            _ => None,
        }
    }
}

/// Checks a shared file's name: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, so no
/// path (`/`), no `..`, no hidden or store file (`.…`).
pub fn validate_name(name: &str) -> Result<(), SharedError> {
    let bad = |why| {
        Err(SharedError::BadName {
            name: name.into(),
            why,
        })
    };
    if name.is_empty() || name.len() > 128 {
        return bad("names have 1 to 128 characters");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("a name is a file name, not a path");
    }
    if name.contains("..") {
        return bad("a name may not contain `..`");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("a name may not start with `.` or `-`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("names use letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

/// Where version `version` of `name` is kept.
pub fn history_path(layout: &Layout, name: &str, version: u32) -> PathBuf {
    layout
        .shared_history_dir()
        .join(format!("{name}.v{version}"))
}

/// Every version, in the order they were put.
pub fn log(layout: &Layout) -> Result<Vec<Version>, SharedError> {
    let mut cursor = 0;
    let lines = match read_objects(&layout.shared_log(), &mut cursor) {
        Ok(l) => l,
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(lines
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// The latest version of every shared file, by name.
pub fn list(layout: &Layout) -> Result<Vec<Version>, SharedError> {
    let mut latest: std::collections::BTreeMap<String, Version> = Default::default();
    for v in log(layout)? {
        let keep = latest
            .get(&v.name)
            .is_none_or(|held| v.version > held.version);
        if keep {
            latest.insert(v.name.clone(), v);
        }
    }
    Ok(latest.into_values().collect())
}

/// A version of `name` (the latest without `version`) and its content.
pub fn show(
    layout: &Layout,
    name: &str,
    version: Option<u32>,
) -> Result<(Version, Vec<u8>), SharedError> {
    validate_name(name)?;
    let versions: Vec<Version> = log(layout)?
        .into_iter()
        .filter(|v| v.name == name)
        .collect();
    let Some(latest) = versions.iter().map(|v| v.version).max() else {
        return Err(SharedError::NoName {
            name: name.into(),
            dir: layout.shared_dir(),
        });
    };
    let want = version.unwrap_or(latest);
    let Some(v) = versions.into_iter().find(|v| v.version == want) else {
        return Err(SharedError::NoVersion {
            name: name.into(),
            version: want,
            latest,
        });
    };
    let path = history_path(layout, name, want);
    match std::fs::read(&path) {
        Ok(bytes) => Ok((v, bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SharedError::LostVersion {
            name: name.into(),
            version: want,
            path,
        }),
        Err(e) => Err(IoError::new("read", &path, e).into()),
    }
}

/// `society shared put FILE [--as NAME]`: publishes a file of the society
/// as the next version of `name` (default: the file's name). The file must
/// be a regular file inside the society's root once symlinks are resolved.
pub fn put(
    layout: &Layout,
    file: &Path,
    name: Option<&str>,
    by: &str,
) -> Result<Version, SharedError> {
    let resolved = inside(layout, file)?;
    let name = match name {
        Some(n) => n.to_string(),
        None => file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string(),
    };
    validate_name(&name)?;
    let root = root(layout)?;
    let rel = resolved
        .strip_prefix(&root)
        .unwrap_or(&resolved)
        .to_path_buf();
    let bytes = read_beneath(&root, &rel, file)?;
    let src = Some(rel.display().to_string());
    put_bytes(layout, &name, &bytes, by, src.as_deref(), false)
}

/// Reads `rel`, a path below the directory `base`, opened in one step below
/// it (`society_core::confine::read_beneath`, `openat2(RESOLVE_BENEATH)`):
/// no component may lead outside `base`, even one swapped for a symlink
/// after the checks that named the file, and a FIFO swapped in does not
/// block. Only a regular file of at most [`MAX_SHARED_BYTES`], read from the
/// descriptor that was checked.
pub(crate) fn read_beneath(base: &Path, rel: &Path, shown: &Path) -> Result<Vec<u8>, SharedError> {
    use society_core::confine::BeneathError as B;
    let dir = std::fs::File::open(base).map_err(io("open", base))?;
    society_core::confine::read_beneath(&dir, base, rel, MAX_SHARED_BYTES, shown).map_err(|e| {
        match e {
            B::Missing { .. } => SharedError::Missing {
                path: shown.to_path_buf(),
            },
            B::Outside { resolved, .. } => SharedError::Outside {
                path: shown.to_path_buf(),
                resolved: resolved.unwrap_or_else(|| base.join(rel)),
                root: base.to_path_buf(),
            },
            B::NotAFile { .. } | B::IsADirectory { .. } => SharedError::NotAFile {
                path: shown.to_path_buf(),
            },
            B::TooBig { bytes, max, .. } => SharedError::TooBig {
                path: shown.to_path_buf(),
                bytes,
                max,
            },
            B::Io { op, source, .. } => IoError::new(op, shown, source).into(),
        }
    })
}

/// The society's root, symlinks resolved.
fn root(layout: &Layout) -> Result<PathBuf, SharedError> {
    std::fs::canonicalize(layout.root())
        .map_err(|e| IoError::new("resolve", layout.root(), e).into())
}

/// `file`, resolved, if it is a regular file inside the society.
fn inside(layout: &Layout, file: &Path) -> Result<PathBuf, SharedError> {
    let resolved = match std::fs::canonicalize(file) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SharedError::Missing {
                path: file.to_path_buf(),
            })
        }
        Err(e) => return Err(IoError::new("resolve", file, e).into()),
    };
    let root = root(layout)?;
    if !resolved.starts_with(&root) {
        return Err(SharedError::Outside {
            path: file.to_path_buf(),
            resolved,
            root,
        });
    }
    if !resolved.is_file() {
        return Err(SharedError::NotAFile {
            path: file.to_path_buf(),
        });
    }
    Ok(resolved)
}

/// Publishes `bytes` as the next version of `name`, under the store's lock.
/// With `once`, a version already logged with the same `src` is returned
/// instead of putting another (an agent's `shared_put` applied again).
pub fn put_bytes(
    layout: &Layout,
    name: &str,
    bytes: &[u8],
    by: &str,
    src: Option<&str>,
    once: bool,
) -> Result<Version, SharedError> {
    validate_name(name)?;
    let dir = layout.shared_dir();
    let history = layout.shared_history_dir();
    std::fs::create_dir_all(&history).map_err(io("create", &history))?;
    let lock_path = dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    lock.lock().map_err(io("lock", &lock_path))?;
    let versions = log(layout)?;
    if once {
        if let Some(done) = versions
            .iter()
            .find(|v| v.name == name && v.src.as_deref() == src && src.is_some())
        {
            return Ok(done.clone());
        }
    }
    let version = versions
        .iter()
        .filter(|v| v.name == name)
        .map(|v| v.version)
        .max()
        .unwrap_or(0)
        + 1;
    // A put cut short by a crash after its log line left the live file
    // behind: make every live file its latest logged version first.
    repair_live(layout, &versions)?;
    atomic::write_bytes(&history_path(layout, name, version), bytes, true)?;
    let record = Version {
        name: name.into(),
        version,
        sha256: sha256_hex(bytes),
        bytes: bytes.len() as u64,
        by: by.into(),
        ts: time::now_rfc3339(),
        src: src.map(String::from),
    };
    let line = serde_json::to_vec(&record)
        .map_err(|e| IoError::new("serialise", layout.shared_log(), std::io::Error::other(e)))?;
    // The log line is the commit point; the live file follows it (a crash
    // in between is repaired by the next put).
    append_one(
        &layout.shared_log(),
        &line,
        Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )?;
    atomic::write_bytes(&dir.join(name), bytes, true)?;
    drop(lock);
    Ok(record)
}

/// Every live shared file whose content is not its latest logged version
/// gets it again from the history (called under the store's lock).
fn repair_live(layout: &Layout, versions: &[Version]) -> Result<(), SharedError> {
    let mut latest: std::collections::BTreeMap<&str, &Version> = Default::default();
    for v in versions {
        latest.insert(v.name.as_str(), v);
    }
    for (name, v) in latest {
        let live = layout.shared_dir().join(name);
        let current = std::fs::read(&live).ok();
        if current.as_deref().map(sha256_hex).as_deref() == Some(v.sha256.as_str()) {
            continue;
        }
        let path = history_path(layout, name, v.version);
        if let Ok(bytes) = std::fs::read(&path) {
            atomic::write_bytes(&live, &bytes, true)?;
        }
    }
    Ok(())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_beneath_refuses_a_way_out_and_does_not_block_on_a_fifo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("agent");
        std::fs::create_dir_all(base.join("workspace")).expect("mkdir");
        std::fs::write(base.join("workspace/ok.md"), "fine").expect("write");
        let outside = dir.path().join("secret");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("key"), "secret").expect("write");
        // What a swap after the checks would leave: a symlink leading out.
        std::os::unix::fs::symlink(&outside, base.join("workspace/d")).expect("symlink");
        nix::unistd::mkfifo(&base.join("workspace/pipe"), nix::sys::stat::Mode::S_IRWXU)
            .expect("mkfifo");
        let read = |rel: &str| read_beneath(&base, Path::new(rel), Path::new(rel));
        assert_eq!(read("workspace/ok.md").expect("inside"), b"fine");
        assert!(matches!(
            read("workspace/d/key"),
            Err(SharedError::Outside { .. })
        ));
        assert!(matches!(
            read("../secret/key"),
            Err(SharedError::Outside { .. })
        ));
        assert!(matches!(
            read("workspace/pipe"),
            Err(SharedError::NotAFile { .. })
        ));
        assert!(matches!(
            read("workspace/none"),
            Err(SharedError::Missing { .. })
        ));
    }

    #[test]
    fn a_put_cut_after_its_log_line_is_finished_by_the_next_put() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::at(dir.path());
        layout.create().expect("layout");
        put_bytes(&layout, "bible.md", b"one", "orchestrator", None, false).expect("v1");
        put_bytes(&layout, "bible.md", b"two", "orchestrator", None, false).expect("v2");
        // As if v2 was logged and the process died before the live file.
        let live = layout.shared_dir().join("bible.md");
        std::fs::write(&live, "one").expect("write");
        put_bytes(&layout, "style.md", b"terse", "orchestrator", None, false).expect("other");
        assert_eq!(std::fs::read(&live).expect("read"), b"two");
    }

    #[test]
    fn names_that_are_paths_or_store_files_are_refused() {
        for bad in [
            "",
            "../x",
            "a/b",
            "/etc/passwd",
            "..",
            ".versions.jsonl",
            "-x",
            "a b",
            "a..b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["bible.md", "style-guide.txt", "schedule_2026.json", "A1"] {
            validate_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn puts_make_versions_and_show_gives_each_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::at(dir.path());
        layout.create().expect("layout");
        let f = dir.path().join("bible.md");
        std::fs::write(&f, "one").expect("write");
        let v1 = put(&layout, &f, None, "orchestrator").expect("v1");
        std::fs::write(&f, "two!").expect("write");
        let v2 = put(&layout, &f, None, "orchestrator").expect("v2");
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_eq!(show(&layout, "bible.md", Some(1)).expect("v1").1, b"one");
        assert_eq!(show(&layout, "bible.md", None).expect("v2").1, b"two!");
        assert_eq!(
            std::fs::read(layout.shared_dir().join("bible.md")).expect("live"),
            b"two!"
        );
        assert_eq!(list(&layout).expect("list").len(), 1);
        assert!(matches!(
            show(&layout, "bible.md", Some(3)),
            Err(SharedError::NoVersion { latest: 2, .. })
        ));
        let again = put_bytes(&layout, "x", b"a", "w1", Some("m1"), true).expect("x");
        let replay = put_bytes(&layout, "x", b"a", "w1", Some("m1"), true).expect("x again");
        assert_eq!(again, replay, "a replayed agent put is not a new version");
    }
}
