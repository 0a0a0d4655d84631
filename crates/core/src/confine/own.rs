//! The society's own files: no symbolic link below `.society-agent/`.

use super::Symlinked;
use crate::layout::{AgentPaths, STATE_DIR};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The state directory `path` belongs to — the nearest of its ancestors
/// (itself included) named `.society-agent` — and the path below it.
fn anchor(path: &Path) -> Option<(&Path, &Path)> {
    let state = path
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == STATE_DIR))?;
    Some((state, path.strip_prefix(state).ok()?))
}

/// Opens `path` (`open(2)` flags and mode) with no symbolic link below the
/// society's state directory on the way, the file itself included. A link
/// is refused with [`Symlinked`] inside the returned error
/// ([`Symlinked::of`]); other failures are the usual ones (`NotFound`, …).
pub fn open(path: &Path, flags: OFlag, mode: u32) -> std::io::Result<File> {
    let flags = flags | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(mode);
    let Some((state, rel)) = anchor(path) else {
        return match fcntl::open(path, flags | OFlag::O_NOFOLLOW, mode) {
            Ok(fd) => Ok(File::from(fd)),
            // ENOTDIR: `O_DIRECTORY` with `O_NOFOLLOW` on a link.
            Err(Errno::ELOOP | Errno::ENOTDIR) if is_link(path) => {
                Err(Symlinked::at(path, None).into_io())
            }
            Err(e) => Err(e.into()),
        };
    };
    if rel.as_os_str().is_empty() {
        // The state directory itself: the user's to place.
        return Ok(File::from(fcntl::open(path, flags, mode)?));
    }
    // The usual case first, in one call: no link anywhere on the path.
    let how = OpenHow::new()
        .flags(flags)
        .mode(if flags.contains(OFlag::O_CREAT) {
            mode
        } else {
            Mode::empty()
        })
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    match fcntl::openat2(fcntl::AT_FDCWD, path, how) {
        Ok(fd) => return Ok(File::from(fd)),
        // A link somewhere — above the state directory it is the user's
        // choice, below it a refusal — or no openat2: look closer.
        Err(Errno::ELOOP | Errno::ENOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = open_dir(state)?;
    open_below(dir.as_fd(), state, state, rel, flags, mode).map(File::from)
}

/// Creates `path` and the folders above it that are missing, below the
/// state directory one component at a time, each checked to be a folder
/// and no link before the next is made in it. `mode` as for `mkdir(2)`.
pub fn create_dir_all(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some((state, rel)) = anchor(path) else {
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path);
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(state)?;
    let mut dir = open_dir(state)?;
    let mut walked = state.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            if c == Component::CurDir {
                continue;
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} climbs out of {}", path.display(), state.display()),
            ));
        };
        match nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let next = open_below(
            dir.as_fd(),
            &walked,
            state,
            Path::new(name),
            flags,
            Mode::empty(),
        )?;
        walked.push(name);
        dir = next;
    }
    Ok(())
}

/// The first symbolic link on the way to `path` below its state directory
/// (`path` itself included), if there is one. Without a state directory
/// above it, only `path` itself is looked at.
pub fn check(path: &Path) -> Result<(), Symlinked> {
    match anchor(path) {
        Some((state, rel)) => match first_link(state, rel) {
            Some(link) => Err(link),
            None => Ok(()),
        },
        None if is_link(path) => Err(Symlinked::at(path, None)),
        None => Ok(()),
    }
}

/// An agent's folder and every file and folder in it that society uses:
/// none may be a symbolic link (what a folder holds below those — a
/// workspace's files — is the folder's own business).
pub fn check_folder(paths: &AgentPaths) -> Result<(), Symlinked> {
    check(&paths.dir)?;
    let state = anchor(&paths.dir).map(|(s, _)| s);
    for entry in paths.own_entries() {
        if is_link(&entry) {
            return Err(Symlinked::at(&entry, state));
        }
    }
    Ok(())
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(fcntl::open(dir, flags, Mode::empty())?)
}

/// Opens `rel` below the directory `dir` (at `dir_path`, below or at the
/// state directory `state`), no component a link.
fn open_below(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    state: &Path,
    rel: &Path,
    flags: OFlag,
    mode: Mode,
) -> std::io::Result<OwnedFd> {
    // openat2 refuses a mode with nothing to create.
    let mode = if flags.contains(OFlag::O_CREAT) {
        mode
    } else {
        Mode::empty()
    };
    let how = OpenHow::new()
        .flags(flags)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let below = || {
        let full = dir_path.join(rel);
        full.strip_prefix(state)
            .map(Path::to_path_buf)
            .unwrap_or(full)
    };
    match fcntl::openat2(dir, rel, how) {
        Ok(fd) => Ok(fd),
        Err(e @ (Errno::ELOOP | Errno::EXDEV)) => match first_link(state, &below()) {
            Some(link) => Err(link.into_io()),
            None => Err(e.into()),
        },
        // No openat2 (Linux < 5.6): look first, then open without following
        // the last component.
        Err(Errno::ENOSYS) => {
            if let Some(link) = first_link(state, &below()) {
                return Err(link.into_io());
            }
            fcntl::openat(dir, rel, flags | OFlag::O_NOFOLLOW, mode).map_err(|e| {
                match first_link(state, &below()) {
                    Some(link) => link.into_io(),
                    None => e.into(),
                }
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The first component of `rel` below `state` that is a symbolic link.
fn first_link(state: &Path, rel: &Path) -> Option<Symlinked> {
    let mut walked: PathBuf = state.to_path_buf();
    for c in rel.components() {
        walked.push(c);
        if is_link(&walked) {
            return Some(Symlinked::at(&walked, Some(state)));
        }
    }
    None
}
