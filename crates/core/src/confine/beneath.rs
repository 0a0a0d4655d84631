//! Paths below a directory whose files are not society's own (a workspace,
//! the society's root for `shared put`): symbolic links are followed while
//! they stay below it, never out of it.

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Why a path below a directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    #[error("{} leads outside {}{}", path.display(), base.display(), resolved.as_ref().map(|r| format!(" (to {})", r.display())).unwrap_or_default())]
    Outside {
        /// As the caller was given it.
        path: PathBuf,
        base: PathBuf,
        /// Where it leads, when that could be found.
        resolved: Option<PathBuf>,
    },
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is a directory", path.display())]
    IsADirectory { path: PathBuf },
    #[error("{} has {bytes} bytes, more than {max}", path.display())]
    TooBig { path: PathBuf, bytes: u64, max: u64 },
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens `rel` below the directory `base` (found at `base_path`): a link is
/// followed while it stays below `base` — a relative one by the kernel
/// (`openat2(RESOLVE_BENEATH)`), an absolute one that leads back inside by
/// its resolved path, opened again with no link allowed on the way, so what
/// is opened is what was checked. `..` that climbs out, a link out, a loop:
/// [`BeneathError::Outside`]. `shown` is what errors call the path.
pub fn open_beneath(
    base: &File,
    base_path: &Path,
    rel: &Path,
    flags: OFlag,
    shown: &Path,
) -> Result<File, BeneathError> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = |resolve| {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(resolve)
    };
    let outside = |resolved| BeneathError::Outside {
        path: shown.to_path_buf(),
        base: base_path.to_path_buf(),
        resolved,
    };
    let beneath = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    match fcntl::openat2(base, rel, how(beneath)) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::EXDEV) => {
            let (real, inner) = resolve(base_path, rel);
            let Some(inner) = inner else {
                return Err(outside(real));
            };
            let exact = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
            match fcntl::openat2(base, &inner, how(exact)) {
                Ok(fd) => Ok(File::from(fd)),
                // Changed since it was resolved.
                Err(Errno::ELOOP | Errno::EXDEV) => Err(outside(real)),
                Err(e) => Err(errno(e, "open", shown)),
            }
        }
        Err(Errno::ELOOP) => Err(outside(None)),
        // No openat2 (Linux < 5.6): resolved by path, then opened without
        // following the last component.
        Err(Errno::ENOSYS) => {
            let (real, inner) = resolve(base_path, rel);
            if real.is_none() {
                return Err(BeneathError::Missing {
                    path: shown.to_path_buf(),
                });
            }
            let Some(inner) = inner else {
                return Err(outside(real));
            };
            fcntl::openat(base, &inner, flags | OFlag::O_NOFOLLOW, Mode::empty())
                .map(File::from)
                .map_err(|e| errno(e, "open", shown))
        }
        Err(e) => Err(errno(e, "open", shown)),
    }
}

/// Reads `rel` below `base` (see [`open_beneath`]): a regular file of at
/// most `max` bytes, read from the descriptor that was checked; a FIFO
/// swapped in does not block (`O_NONBLOCK`).
pub fn read_beneath(
    base: &File,
    base_path: &Path,
    rel: &Path,
    max: u64,
    shown: &Path,
) -> Result<Vec<u8>, BeneathError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let file = open_beneath(base, base_path, rel, flags, shown)?;
    let meta = file.metadata().map_err(|e| io("stat", shown, e))?;
    if meta.is_dir() {
        return Err(BeneathError::IsADirectory {
            path: shown.to_path_buf(),
        });
    }
    if !meta.is_file() {
        return Err(BeneathError::NotAFile {
            path: shown.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io("read", shown, e))?;
    if bytes.len() as u64 > max {
        return Err(BeneathError::TooBig {
            path: shown.to_path_buf(),
            bytes: meta.len().max(bytes.len() as u64),
            max,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` as `rel` below `base` (see [`open_beneath`]), creating
/// the folders on the way (0700): into a fresh temp file in the folder,
/// then renamed over the name — so a link at the last component is
/// replaced, never written through, and a reader sees the old or the new
/// content.
pub fn write_beneath(
    base: &File,
    base_path: &Path,
    rel: &Path,
    bytes: &[u8],
    shown: &Path,
) -> Result<(), BeneathError> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let Some(name) = rel.file_name() else {
        return Err(BeneathError::IsADirectory {
            path: shown.to_path_buf(),
        });
    };
    let dir = folders(
        base,
        base_path,
        rel.parent().unwrap_or(Path::new("")),
        shown,
    )?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".society-tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = unlinkat(&dir, &tmp, UnlinkatFlags::NoRemoveDir);
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(crate::layout::FILE_MODE);
    let mut file = File::from(
        fcntl::openat(&dir, &tmp, flags, mode)
            .map_err(|e| errno(e, "create a temp file for", shown))?,
    );
    let written = file.write_all(bytes).map_err(|e| io("write", shown, e));
    drop(file);
    let renamed = written.and_then(|()| {
        fcntl::renameat(&dir, &tmp, &dir, name).map_err(|e| match e {
            Errno::EISDIR => BeneathError::IsADirectory {
                path: shown.to_path_buf(),
            },
            e => errno(e, "rename a temp file onto", shown),
        })
    });
    if renamed.is_err() {
        let _ = unlinkat(&dir, &tmp, UnlinkatFlags::NoRemoveDir);
    }
    renamed
}

/// The folder `rel` below `base`, created (0700) where missing, each part
/// opened below `base` before the next is made in it.
fn folders(base: &File, base_path: &Path, rel: &Path, shown: &Path) -> Result<File, BeneathError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let mut dir = open_beneath(base, base_path, Path::new("."), flags, shown)?;
    let mut walked = PathBuf::new();
    for c in rel.components() {
        let name = match c {
            Component::Normal(name) => name,
            Component::CurDir => continue,
            _ => {
                return Err(BeneathError::Outside {
                    path: shown.to_path_buf(),
                    base: base_path.to_path_buf(),
                    resolved: None,
                })
            }
        };
        walked.push(name);
        dir = match open_beneath(base, base_path, &walked, flags, shown) {
            Ok(d) => d,
            Err(BeneathError::Missing { .. }) => {
                match nix::sys::stat::mkdirat(
                    &dir,
                    name,
                    Mode::from_bits_truncate(crate::layout::DIR_MODE),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno(e, "create a folder for", shown)),
                }
                open_beneath(base, base_path, &walked, flags, shown)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Where `rel` below `base_path` leads once every link is resolved, and
/// that place relative to `base_path` if it is below it.
fn resolve(base_path: &Path, rel: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let Ok(real) = std::fs::canonicalize(base_path.join(rel)) else {
        return (None, None);
    };
    let inner = std::fs::canonicalize(base_path)
        .ok()
        .and_then(|root| real.strip_prefix(root).ok().map(Path::to_path_buf))
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p
            }
        });
    (Some(real), inner)
}

fn errno(e: Errno, op: &'static str, shown: &Path) -> BeneathError {
    match e {
        Errno::ENOENT => BeneathError::Missing {
            path: shown.to_path_buf(),
        },
        e => io(op, shown, e.into()),
    }
}

fn io(op: &'static str, shown: &Path, source: std::io::Error) -> BeneathError {
    BeneathError::Io {
        op,
        path: shown.to_path_buf(),
        source,
    }
}
