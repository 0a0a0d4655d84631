//! Reading the archived segments of a file, then its live part.

use super::{list, live_seq, with_suffix, Segment};
use crate::error::{io, IoError};
use crate::layout::Layout;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The complete lines of one segment, streamed (decompressed on the fly):
/// a 64 MiB segment is never held in memory whole. Lines come without their
/// `\n`; a last fragment without `\n` is not a line (the same rule as
/// [`read_lines`](crate::jsonl::read_lines)). Stops after the first error.
pub struct SegmentLines {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    failed: bool,
}

impl std::fmt::Debug for SegmentLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentLines")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Iterator for SegmentLines {
    type Item = Result<Vec<u8>, IoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                Some(Ok(line))
            }
            Ok(_) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(IoError::new("read segment", &self.path, e)))
            }
        }
    }
}

/// Streams the lines of `seg`. A segment listed as `.jsonl` that is
/// compressed meanwhile is read from its `.zst`.
pub fn lines(seg: &Segment) -> Result<SegmentLines, IoError> {
    let (path, reader) = open(seg)?;
    Ok(SegmentLines {
        path,
        reader,
        failed: false,
    })
}

/// The bytes of `seg`, decompressed.
pub fn read_segment(seg: &Segment) -> Result<Vec<u8>, IoError> {
    let (path, mut reader) = open(seg)?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(io("read segment", &path))?;
    Ok(bytes)
}

/// Every complete line of `live`'s segments, then of `live` itself, that is
/// a JSON object, in order. Other lines are skipped, as
/// [`read_objects`](crate::jsonl::read_objects) does.
///
/// A consistent snapshot even while the file is rotated: the live file is
/// read after the segments and the listing is checked again afterwards. If
/// a rotation slipped in, what was read as live may now be a segment, so the
/// new segments are read and the live file again (segments already read are
/// immutable and kept).
pub fn read_objects_all(layout: &Layout, live: &Path) -> Result<Vec<serde_json::Value>, IoError> {
    let mut out = Vec::new();
    // The first segment number not read yet.
    let mut next = 0;
    loop {
        let first = next;
        for seg in list(layout, live)?.into_iter().filter(|s| s.seq >= first) {
            for line in lines(&seg)? {
                push_object(&mut out, &line?);
            }
            next = seg.seq + 1;
        }
        let tail = read_live(live)?;
        // `<`: only if segments were deleted meanwhile; nothing to add then.
        if live_seq(layout, live)? <= next {
            tail.split(|b| *b == b'\n')
                .for_each(|line| push_object(&mut out, line));
            return Ok(out);
        }
        tracing::debug!(path = %live.display(), "rotated while being read; reading on");
    }
}

fn push_object(out: &mut Vec<serde_json::Value>, line: &[u8]) {
    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_slice(line) {
        out.push(v);
    }
}

/// The complete lines of the live file, read through one descriptor (a
/// rotation between two reads of the path would mix two files).
fn read_live(live: &Path) -> Result<Vec<u8>, IoError> {
    let mut file = match crate::confine::open(live, nix::fcntl::OFlag::O_RDONLY, 0) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoError::new("open", live, e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read", live))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(complete);
    Ok(bytes)
}

fn open(seg: &Segment) -> Result<(PathBuf, Box<dyn BufRead + Send>), IoError> {
    let mut path = seg.path.clone();
    if !seg.compressed {
        match File::open(&path) {
            Ok(f) => return Ok((path, Box::new(BufReader::with_capacity(1 << 16, f)))),
            // Compressed since it was listed: the `.zst` is in place.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                path = with_suffix(&path, ".zst");
            }
            Err(e) => return Err(IoError::new("open segment", &path, e)),
        }
    }
    let file = File::open(&path).map_err(io("open segment", &path))?;
    let decoder = zstd::stream::read::Decoder::new(file).map_err(io("decompress", &path))?;
    Ok((path, Box::new(BufReader::with_capacity(1 << 16, decoder))))
}
