//! Atomic replacement of JSON state files (`status.json`, `checkpoint.json`,
//! `config.json`): write a temp file in the same directory, fsync it, rename it
//! over the target, fsync the directory. A reader sees the old or the new
//! document, never a mix, whatever dies when.

use crate::error::{io, FormatError, IoError};
use serde::{de::DeserializeOwned, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Replaces `path` with `value` as pretty JSON. `durable = false` skips both
/// fsyncs: the rename is still atomic for readers and across process crashes,
/// only a power cut may bring back the previous version. Used for heartbeats.
pub fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<(), IoError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| IoError::new("serialise JSON for", path, std::io::Error::other(e)))?;
    bytes.push(b'\n');
    write_bytes(path, &bytes, durable)
}

pub fn write_bytes(path: &Path, bytes: &[u8], durable: bool) -> Result<(), IoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("create temp file", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        if durable {
            f.sync_all().map_err(io("fsync", &tmp))?;
        }
        std::fs::rename(&tmp, path).map_err(io("rename temp file onto", path))
    })();
    if let Err(e) = written {
        // A full disk: leave no half-written temp file taking space.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if durable {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", dir))?;
    }
    Ok(())
}

/// Reads a JSON document; `Ok(None)` if the file does not exist.
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, FormatError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IoError::new("read", path, e).into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| FormatError::Json {
            what,
            path: path.to_path_buf(),
            source,
        })
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
        assert_eq!(read_json::<u32>(&p, "x").expect("read"), Some(8));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }
}
