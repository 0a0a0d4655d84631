//! Compressing a rotated segment with zstd, crash-safely.

use super::{exists, sync_dir, with_suffix, Segment};
use crate::error::{io, IoError};
use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::Path;

/// The zstd level segments are written with: zstd's default. On 64 MiB of
/// envelope lines it compresses about 5-6x in well under a second of one
/// core; level 1 is as good on such data and up to twice as fast, level 9
/// buys 10-20 % of ratio for 5-7x the time, level 19 about 40 % for minutes
/// (`measure_compression` in `crates/core/tests/integration/segments.rs`).
pub const COMPRESSION_LEVEL: i32 = 3;

/// Compresses `seg` into `<stem>.<seq>.jsonl.zst` and removes the `.jsonl`.
///
/// Steps: write `.jsonl.zst.tmp`, fsync it, rename it to `.jsonl.zst`, fsync
/// the directory, remove the `.jsonl`. A crash before the rename leaves the
/// `.jsonl` (and a `.tmp` that [`list`](super::list) ignores and the next
/// attempt overwrites); after it, a complete `.zst` that `list` prefers. So
/// at every instant exactly one readable form of the segment is listed.
///
/// Idempotent: for a compressed segment, or if the `.zst` already exists,
/// only the leftovers (`.jsonl`, `.zst.tmp`) are removed. So after a restart,
/// `compress` on every [`list`](super::list)ed segment finishes whatever
/// compression a crash interrupted. Concurrent calls for one segment are
/// serialised by a `flock` on its `.jsonl`; the later ones find the `.zst`
/// and only remove what is left.
pub fn compress(seg: &Segment) -> Result<Segment, IoError> {
    if seg.compressed {
        // A compression that crashed after its rename left these; the `.zst`
        // is complete, so they are only wasted space.
        remove_if_present(&seg.path.with_extension(""))?;
        remove_if_present(&with_suffix(&seg.path, ".tmp"))?;
        return Ok(seg.clone());
    }
    let done = Segment {
        seq: seg.seq,
        path: with_suffix(&seg.path, ".zst"),
        compressed: true,
    };
    let src = match File::open(&seg.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && exists(&done.path)? => {
            return Ok(done)
        }
        Err(e) => return Err(IoError::new("open segment", &seg.path, e)),
    };
    src.lock().map_err(io("lock segment", &seg.path))?;
    let result = compress_locked(&src, seg, &done);
    let unlocked = src.unlock().map_err(io("unlock segment", &seg.path));
    result?;
    unlocked?;
    Ok(done)
}

fn compress_locked(src: &File, seg: &Segment, done: &Segment) -> Result<(), IoError> {
    let tmp = with_suffix(&seg.path, ".zst.tmp");
    if exists(&done.path)? {
        // A previous attempt got as far as the rename; only cleanup is left.
        remove_if_present(&tmp)?;
    } else {
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        zstd::stream::copy_encode(BufReader::new(src), &mut out, COMPRESSION_LEVEL)
            .map_err(io("compress segment into", &tmp))?;
        out.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &done.path)
            .map_err(io("rename compressed segment to", &done.path))?;
        // The `.zst` must be durable before the `.jsonl` may go.
        sync_dir(parent(&done.path))?;
    }
    // No fsync after the removal: should a power cut bring the `.jsonl`
    // back, it sits beside a complete `.zst`, which wins, and the next
    // compress removes it again.
    remove_if_present(&seg.path)
}

fn remove_if_present(path: &Path) -> Result<(), IoError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IoError::new("remove", path, e)),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}
