//! Byte-cursor reading of complete lines.
//!
//! Every read holds a bounded amount of any one line: a line longer than
//! the reader's `max_line` comes back *cut* — its first `max_line` bytes, with
//! its real extent in `offset..end` — and the rest of it is only scanned for
//! its newline, a chunk at a time. A 200 MB line appended by hand costs a
//! consumer `max_line` bytes of memory, and is dead-lettered (or skipped) by
//! its size ([`Line::oversize`]), never parsed.

use crate::error::{io, IoError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Opens a JSONL file for reading, never through a symbolic link below the
/// state directory (`confine`): lines of a file outside the society never
/// enter it as messages or dead letters.
/// Opens a JSONL file to read. Anything but a regular file in its place (a
/// directory put there for a while) is an I/O error its reader retries, not
/// a file of another length: a consumer's cursor is never judged against it.
fn open(path: &Path) -> std::io::Result<File> {
    let file = crate::confine::open(path, nix::fcntl::OFlag::O_RDONLY, 0)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// One complete line: its bytes (without `\n`) and where it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the first byte of the line.
    pub offset: u64,
    /// Byte offset just past its `\n`: the cursor after consuming it.
    pub end: u64,
    /// The line's bytes, or only the first `max_line` of them if it is longer
    /// (see [`Line::is_cut`]).
    pub bytes: Vec<u8>,
}

impl Line {
    /// Bytes the line takes in the file, its newline included (what a
    /// writer compares with `max_record`).
    pub fn size(&self) -> u64 {
        self.end - self.offset
    }

    /// Is `bytes` only the head of a line longer than the reader's bound?
    pub fn is_cut(&self) -> bool {
        (self.bytes.len() as u64) < self.size().saturating_sub(1)
    }

    /// Why the line is refused if it is over `max_record` (newline
    /// included, as writers count): its consumer dead-letters it without
    /// parsing it.
    pub fn oversize(&self, max_record: usize) -> Option<String> {
        (self.size() > max_record as u64 || self.is_cut()).then(|| {
            format!(
                "line of {} bytes exceeds max_record ({max_record} bytes)",
                self.size()
            )
        })
    }
}

/// How much of an oversized line's tail is read at once while looking for
/// its newline (the buffer is reused: the tail is never held).
const SKIP_CHUNK: usize = 256 * 1024;

/// The complete lines found after a cursor.
#[derive(Debug, Default)]
pub struct ReadBatch {
    pub lines: Vec<Line>,
    /// Cursor after the last complete line returned (unchanged if none).
    pub next: u64,
    /// File length seen; `> next` means a partial line (or more than `max_bytes`) waits.
    pub len: u64,
}

/// Reads complete lines from `offset`, at most about `max_bytes` of them (always
/// at least one line if one is complete, however long). A trailing line
/// without `\n` is not yet written and is left for a later read. A missing file
/// reads as empty. A line longer than [`MAX_RECORD_LIMIT`](crate::MAX_RECORD_LIMIT),
/// which no writer accepts, comes back cut (see [`read_lines_bounded`]).
pub fn read_lines(path: &Path, offset: u64, max_bytes: usize) -> Result<ReadBatch, IoError> {
    read_lines_bounded(path, offset, max_bytes, crate::MAX_RECORD_LIMIT)
}

/// [`read_lines`] holding at most `max_line` bytes of any line: a longer one
/// comes back cut ([`Line::is_cut`]) after a scan for its end that reads its
/// tail in chunks and keeps none of it. Consumers that know their file's
/// `max_record` pass it, and refuse what [`Line::oversize`] says.
pub fn read_lines_bounded(
    path: &Path,
    offset: u64,
    max_bytes: usize,
    max_line: usize,
) -> Result<ReadBatch, IoError> {
    match open(path) {
        Ok(f) => read_from(&f, path, offset, max_bytes, max_line),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ReadBatch {
            lines: Vec::new(),
            next: offset,
            len: 0,
        }),
        Err(e) => Err(IoError::new("open", path, e)),
    }
}

/// [`read_lines_bounded`] for a consumer whose cursor must still fit the file
/// (see [`check_cursor`]): one open for both. Lines are read only when it fits.
pub fn read_lines_checked(
    path: &Path,
    offset: u64,
    max_bytes: usize,
    max_line: usize,
) -> Result<(CursorCheck, ReadBatch), IoError> {
    let empty = |len| ReadBatch {
        lines: Vec::new(),
        next: offset,
        len,
    };
    let file = match open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let check = if offset == 0 {
                CursorCheck::Ok
            } else {
                CursorCheck::Shrunk { len: 0 }
            };
            return Ok((check, empty(0)));
        }
        Err(e) => return Err(IoError::new("open", path, e)),
    };
    let check = fits(&file, path, offset)?;
    if check != CursorCheck::Ok {
        return Ok((
            check,
            empty(file.metadata().map_err(io("stat", path))?.len()),
        ));
    }
    Ok((check, read_from(&file, path, offset, max_bytes, max_line)?))
}

fn read_from(
    file: &File,
    path: &Path,
    offset: u64,
    max_bytes: usize,
    max_line: usize,
) -> Result<ReadBatch, IoError> {
    let len = file.metadata().map_err(io("stat", path))?.len();
    let mut batch = ReadBatch {
        lines: Vec::new(),
        next: offset,
        len,
    };
    if len <= offset {
        return Ok(batch);
    }
    let max_line = max_line.max(1);
    let avail = usize::try_from(len - offset).unwrap_or(usize::MAX);
    let mut want = avail.min(max_bytes.max(4096));
    loop {
        let mut buf = vec![0u8; want];
        let n = read_full_at(file, &mut buf, offset).map_err(io("read", path))?;
        buf.truncate(n);
        let mut start = 0usize;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            // A line longer than the bound is kept as its head only.
            let keep = (end - start).min(max_line);
            batch.lines.push(Line {
                offset: offset + start as u64,
                end: offset + end as u64 + 1,
                bytes: buf[start..start + keep].to_vec(),
            });
            start = end + 1;
        }
        batch.next = offset + start as u64;
        // Lines found, the file's end reached, or the file shrank under us.
        if !batch.lines.is_empty() || n < want || want == avail {
            return Ok(batch);
        }
        if n >= max_line {
            // No newline in the first `max_line` bytes: the line is over the
            // bound whatever follows. Keep its head; find its end without
            // holding the rest. Not complete yet: it waits, as any partial line.
            buf.truncate(max_line);
            if let Some(newline) = find_newline(file, path, offset + n as u64)? {
                batch.lines.push(Line {
                    offset,
                    end: newline + 1,
                    bytes: buf,
                });
                batch.next = newline + 1;
            }
            return Ok(batch);
        }
        // One line longer than the window: widen, up to the bound.
        want = (want * 2).min(avail).min(max_line);
    }
}

/// The offset of the first newline at or after `from`, reading a chunk at a
/// time into one reused buffer; `None` if the file ends first.
fn find_newline(file: &File, path: &Path, from: u64) -> Result<Option<u64>, IoError> {
    let mut chunk = vec![0u8; SKIP_CHUNK];
    let mut at = from;
    loop {
        let n = read_full_at(file, &mut chunk, at).map_err(io("read", path))?;
        if let Some(pos) = chunk[..n].iter().position(|b| *b == b'\n') {
            return Ok(Some(at + pos as u64));
        }
        if n < chunk.len() {
            return Ok(None);
        }
        at += n as u64;
    }
}

/// Every complete line after `*cursor` that is a JSON object, in order, and
/// the cursor moved past them. Other lines — a line too long to have been
/// written by any writer among them — are skipped: consumers of message
/// files dead-letter them and `fsck` reports them; readers of logs move on.
pub fn read_objects(path: &Path, cursor: &mut u64) -> Result<Vec<serde_json::Value>, IoError> {
    let mut out = Vec::new();
    loop {
        let batch = read_lines(path, *cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            return Ok(out);
        }
        out.extend(
            batch
                .lines
                .iter()
                .filter(|l| !l.is_cut())
                .filter_map(|l| serde_json::from_slice::<serde_json::Value>(&l.bytes).ok())
                .filter(serde_json::Value::is_object),
        );
        *cursor = batch.next;
    }
}

/// Does a file still match a consumer's cursor into it?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorCheck {
    Ok,
    /// The file is shorter than the cursor: it was truncated (or replaced).
    Shrunk {
        len: u64,
    },
    /// The byte before the cursor is not a newline: the file was rewritten
    /// below the cursor, which now points into the middle of a line.
    OffBoundary {
        len: u64,
    },
}

/// Checks that `cursor` still fits `path`: within its length, and right
/// after a newline (consumers only ever stop after one). Costs a `stat` and
/// a one-byte read. A missing file fits only a cursor of 0.
pub fn check_cursor(path: &Path, cursor: u64) -> Result<CursorCheck, IoError> {
    match open(path) {
        Ok(f) => fits(&f, path, cursor),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(if cursor == 0 {
            CursorCheck::Ok
        } else {
            CursorCheck::Shrunk { len: 0 }
        }),
        Err(e) => Err(IoError::new("open", path, e)),
    }
}

fn fits(file: &File, path: &Path, cursor: u64) -> Result<CursorCheck, IoError> {
    let len = file.metadata().map_err(io("stat", path))?.len();
    if len < cursor {
        return Ok(CursorCheck::Shrunk { len });
    }
    if cursor == 0 {
        return Ok(CursorCheck::Ok);
    }
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, cursor - 1)
        .map_err(io("read", path))?;
    Ok(if byte[0] == b'\n' {
        CursorCheck::Ok
    } else {
        CursorCheck::OffBoundary { len }
    })
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
