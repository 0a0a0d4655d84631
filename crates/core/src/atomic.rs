//! Atomic replacement of JSON state files (`status.json`, `checkpoint.json`,
//! `config.json`). A reader sees the old or the new document, never a mix,
//! whatever dies when.
//!
//! The new document is written into a scratch file beside the target
//! (`.<name>.tmp`, reused: written in place, never truncated to zero) and
//! swapped in with `renameat2(RENAME_EXCHANGE)`; the scratch name then holds
//! the previous document until the next write. A plain `rename` over the
//! target, or an `O_TRUNC` of the scratch file, makes ext4 (`auto_da_alloc`)
//! flush the file's data on the spot: about 130 µs per write, where the swap
//! costs about 15 µs — and state files are written several times per message.
//! A reader that opened the old version may see the next write into it in
//! progress; `read_json` reads again when the file it read was swapped out.
//! Writers of one file take the scratch file's lock (and check it still is
//! the scratch file after waiting). `durable` adds an `fdatasync` of the
//! scratch file before the swap and an fsync of the directory after.
//!
//! Where the swap is not supported (another filesystem, another libc), a
//! plain rename does the same job more slowly.
//!
//! All of it happens in the target's directory, opened once through
//! `confine` (never through a symbolic link below the state directory) and
//! addressed by descriptor; a document that is itself a link is replaced,
//! never written through, and never read (`read_json` refuses it).

use crate::error::{io, FormatError, IoError};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::{de::DeserializeOwned, Serialize};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// Replaces `path` with `value` as pretty JSON. `durable = false` skips both
/// fsyncs: the swap is still atomic for readers and across process crashes,
/// only a power cut may leave the file unreadable. Used for heartbeats.
pub fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<(), IoError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| IoError::new("serialise JSON for", path, std::io::Error::other(e)))?;
    bytes.push(b'\n');
    write_bytes(path, &bytes, durable)
}

pub fn write_bytes(path: &Path, bytes: &[u8], durable: bool) -> Result<(), IoError> {
    let dir_path = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp_name = format!(".{name}.tmp");
    let tmp = dir_path.join(&tmp_name);
    // Everything below happens in this directory, opened once and never
    // through a symbolic link below the state directory (`confine`).
    let dir = crate::confine::open(dir_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
        .map_err(io("open directory", dir_path))?;
    let scratch = open_scratch(&dir, &tmp_name, &tmp)?;
    let written = (|| {
        scratch.write_all_at(bytes, 0).map_err(io("write", &tmp))?;
        scratch
            .set_len(bytes.len() as u64)
            .map_err(io("write", &tmp))?;
        if durable {
            scratch.sync_data().map_err(io("fsync", &tmp))?;
        }
        swap(&dir, &tmp_name, name, path)
    })();
    if let Err(e) = written {
        // A full disk: leave no half-written scratch file taking space.
        let _ = unlinkat(&dir, tmp_name.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    drop(scratch);
    if durable {
        dir.sync_all().map_err(io("fsync directory", dir_path))?;
    }
    Ok(())
}

/// The scratch file `name` in `dir`, locked. Another writer may have
/// swapped it in while we waited for the lock (our descriptor then names
/// the live document): open the scratch name again.
fn open_scratch(dir: &File, name: &str, tmp: &Path) -> Result<File, IoError> {
    for _ in 0..SCRATCH_TRIES {
        let opened = openat(
            dir,
            name,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(crate::layout::FILE_MODE),
        );
        let file = match opened {
            Ok(fd) => File::from(fd),
            // A symlink in the scratch file's place (a state file that was
            // one, swapped out): never written through; removed.
            Err(Errno::ELOOP) => {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| IoError::new("remove symlink", tmp, e.into()))?;
                continue;
            }
            Err(e) => return Err(IoError::new("create temp file", tmp, e.into())),
        };
        file.lock().map_err(io("lock", tmp))?;
        let ours = file.metadata().map_err(io("stat", tmp))?;
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(m) if m.st_ino == ours.ino() && m.st_dev == ours.dev() => return Ok(file),
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(IoError::new("stat", tmp, e.into())),
        }
    }
    Err(IoError::new(
        "lock temp file",
        tmp,
        std::io::Error::other("it kept being replaced while waiting for its lock"),
    ))
}

/// Times a writer opens the scratch file again after finding it replaced.
const SCRATCH_TRIES: u32 = 100;

/// Puts `tmp` in place of `name` in `dir` (`path`, for errors): swapped
/// when it exists (the old document goes to `tmp`), renamed when it does
/// not.
fn swap(dir: &File, tmp: &str, name: &str, path: &Path) -> Result<(), IoError> {
    // A swap would trade places with a directory where `rename` refuses.
    let is_dir = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|m| SFlag::from_bits_truncate(m.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
    if is_dir {
        return Err(IoError::new(
            "replace",
            path,
            std::io::ErrorKind::IsADirectory.into(),
        ));
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{renameat2, RenameFlags};
        match renameat2(dir, tmp, dir, name, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => return Ok(()),
            // No target yet, or a filesystem without the swap: rename.
            Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS) => {}
            Err(e) => {
                return Err(IoError::new(
                    "swap temp file with",
                    path,
                    std::io::Error::from(e),
                ))
            }
        }
    }
    nix::fcntl::renameat(dir, tmp, dir, name)
        .map_err(|e| IoError::new("rename temp file onto", path, e.into()))
}

/// Reads a JSON document; `Ok(None)` if the file does not exist.
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, FormatError> {
    let mut tries = 0;
    loop {
        let (bytes, swapped) = match read_whole(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IoError::new("read", path, e).into()),
        };
        match serde_json::from_slice(&bytes) {
            // Read from a file swapped out meanwhile: it may have become the
            // scratch file and been rewritten under the read (a mix of two
            // versions can parse). Read the new one.
            Ok(_) if swapped && tries < READ_RETRIES => tries += 1,
            Ok(v) => return Ok(Some(v)),
            // A reader that opened the file just before a swap and read it
            // after the next write began may see that write in progress (the
            // scratch inode is rewritten in place): read again.
            Err(_) if tries < READ_RETRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(source) => {
                return Err(FormatError::Json {
                    what,
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Reads of a document that does not parse, before it is called corrupt.
const READ_RETRIES: u32 = 3;

/// The file's bytes, and whether the path named another file once they were
/// read (a writer swapped a new version in meanwhile).
fn read_whole(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    // Never through a symbolic link below the state directory (`confine`).
    let mut file = crate::confine::open(path, OFlag::O_RDONLY, 0)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let ours = file.metadata()?;
    let swapped =
        std::fs::metadata(path).map_or(true, |m| m.ino() != ours.ino() || m.dev() != ours.dev());
    Ok((bytes, swapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.json");
        assert_eq!(read_json::<u32>(&p, "x").expect("read"), None);
        write_json(&p, &7u32, true).expect("write");
        write_json(&p, &8u32, false).expect("write");
        write_json(&p, &9u32, false).expect("write");
        assert_eq!(read_json::<u32>(&p, "x").expect("read"), Some(9));
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        assert_eq!(names, [".x.json.tmp", "x.json"], "one scratch file, reused");
        let previous = std::fs::read_to_string(dir.path().join(".x.json.tmp")).expect("scratch");
        assert_eq!(
            previous.trim(),
            "8",
            "the scratch file holds the previous document"
        );
    }

    #[test]
    fn a_symlinked_document_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside.json");
        std::fs::write(&outside, b"1\n").expect("outside");
        let p = dir.path().join("x.json");
        std::os::unix::fs::symlink(&outside, &p).expect("symlink");
        // The first write swaps the link out to the scratch name; the
        // second must not follow it (nor spin on it).
        write_json(&p, &2u32, false).expect("write");
        write_json(&p, &3u32, false).expect("write again");
        assert_eq!(read_json::<u32>(&p, "x").expect("read"), Some(3));
        assert!(!std::fs::symlink_metadata(&p).expect("stat").is_symlink());
        assert_eq!(std::fs::read(&outside).expect("outside"), b"1\n");
    }

    #[test]
    fn no_document_is_written_or_read_through_a_linked_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("outside");
        std::fs::write(outside.join("status.json"), b"1\n").expect("outside doc");
        let state = dir.path().join(crate::layout::STATE_DIR);
        std::fs::create_dir(&state).expect("state");
        std::os::unix::fs::symlink(&outside, state.join("agent-ghost")).expect("symlink");
        let doc = state.join("agent-ghost/status.json");
        let e = write_json(&doc, &2u32, true).expect_err("written through a link");
        assert_eq!(
            e.symlinked().map(|l| l.link.clone()),
            Some(state.join("agent-ghost")),
            "{e}"
        );
        assert!(read_json::<u32>(&doc, "x")
            .expect_err("read through a link")
            .symlinked()
            .is_some());
        let names: Vec<_> = std::fs::read_dir(&outside).expect("ls").flatten().collect();
        assert_eq!(names.len(), 1, "no scratch file outside");
        assert_eq!(
            std::fs::read(outside.join("status.json")).expect("outside"),
            b"1\n"
        );
    }

    #[test]
    fn concurrent_writers_never_show_a_reader_a_mix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.json");
        write_json(&p, &vec![0u32; 10], false).expect("write");
        let writers: Vec<_> = (1..=2u32)
            .map(|w| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..300u32 {
                        // Documents of different lengths: a mix would not parse.
                        let doc = vec![w * 1000 + i; (i % 7 + 1) as usize * 40];
                        write_json(&p, &doc, false).expect("write");
                    }
                })
            })
            .collect();
        let mut reads = 0;
        while writers.iter().any(|w| !w.is_finished()) {
            let doc: Vec<u32> = read_json(&p, "s")
                .expect("a whole document")
                .expect("exists");
            assert!(doc.iter().all(|x| *x == doc[0]), "one write's document");
            reads += 1;
        }
        for w in writers {
            w.join().expect("writer");
        }
        assert!(reads > 0);
    }
}
