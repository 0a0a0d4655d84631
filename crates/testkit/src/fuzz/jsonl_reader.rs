//! `jsonl_reader`: byte-cursor reading (`read_lines`, `read_lines_checked`,
//! `check_cursor`, `read_objects`) of a file whose tail may be torn, against
//! a model that splits the bytes at `\n` by hand.
//!
//! The input is a small recipe, so that short inputs make long lines:
//! two bytes (LE) for `max_bytes / 8`, two for the start cursor, one for
//! where the writer stopped (the file is first read with only that prefix
//! written, then read on after the rest is appended, as a reader racing a
//! writer does), then the content, in which `0xFF n` repeats the byte
//! before it `64 * (n + 1)` times.

use society_core::jsonl::{self, CursorCheck, Line};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Expanded content stops growing here: a few lines past any window.
const MAX_CONTENT: usize = 64 << 10;

pub fn check(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let max_bytes = usize::from(u16::from_le_bytes([byte(0), byte(1)])) * 8;
    let start = u64::from(u16::from_le_bytes([byte(2), byte(3)]));
    let content = expand(data.get(5..).unwrap_or_default());
    let cut = content.len() * usize::from(byte(4)) / 255;
    // Up to one past the end: a cursor beyond a file that shrank.
    let start = start % (cut as u64 + 2);

    SCRATCH.with(|scratch| {
        let (file, path) = scratch;
        write(file, &content[..cut]);
        let written = &content[..cut];

        let batch = jsonl::read_lines(path, start, max_bytes).expect("read_lines");
        check_batch(written, start, max_bytes, &batch);
        assert_cursor(
            written,
            start,
            jsonl::check_cursor(path, start).expect("check"),
        );
        let (fits, checked) =
            jsonl::read_lines_checked(path, start, max_bytes, society_core::MAX_RECORD_LIMIT)
                .expect("read_lines_checked");
        assert_cursor(written, start, fits);
        // Holding at most `max_line` bytes of a line: the same lines, cut.
        let max_line = 1 + usize::from(byte(5)) % 64;
        let bounded = jsonl::read_lines_bounded(path, start, max_bytes, max_line)
            .expect("read_lines_bounded");
        for (cut, whole) in bounded.lines.iter().zip(&batch.lines) {
            assert!(
                cut.bytes.len() <= max_line,
                "a line held whole past max_line"
            );
            assert_eq!(
                (cut.offset, cut.end),
                (whole.offset, whole.end),
                "bounded read moved"
            );
            assert!(
                whole.bytes.starts_with(&cut.bytes),
                "bounded read changed bytes"
            );
        }
        if fits == CursorCheck::Ok {
            assert_eq!(checked.lines, batch.lines, "read_lines_checked differs");
        }
        if start > written.len() as u64 {
            return;
        }
        let mut cursor = start;
        let mut seen = drain(path, &mut cursor, max_bytes);
        assert_eq!(seen, model(written, start), "lines lost or invented");
        let mut objects_cursor = start;
        let objects = jsonl::read_objects(path, &mut objects_cursor).expect("read_objects");
        assert_eq!(objects_cursor, cursor, "read_objects stopped elsewhere");
        let want: Vec<serde_json::Value> = seen
            .iter()
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(&l.bytes).ok())
            .filter(serde_json::Value::is_object)
            .collect();
        assert_eq!(objects, want, "read_objects differs from the lines");

        // The writer finishes: the torn line comes whole, once.
        file.write_all_at(&content[cut..], cut as u64)
            .expect("append to the scratch file");
        seen.extend(drain(path, &mut cursor, max_bytes));
        assert_eq!(
            seen,
            model(&content, start),
            "lines lost or repeated across the torn tail"
        );
    });
}

thread_local! {
    /// An anonymous in-memory file per thread, reached by its /proc path:
    /// nothing is left on disk, and `cargo test` threads do not share it.
    // A real file (the reader refuses symbolic links, `/proc/self/fd/N`
    // included), in memory where there is a tmpfs; removed with the thread.
    static SCRATCH: (File, tempfile::TempPath) = {
        let shm = std::path::Path::new("/dev/shm");
        let named = if shm.is_dir() {
            tempfile::Builder::new().prefix("society-fuzz-jsonl").tempfile_in(shm)
        } else {
            tempfile::Builder::new().prefix("society-fuzz-jsonl").tempfile()
        }
        .expect("a scratch file");
        named.into_parts()
    };
}

fn write(file: &File, bytes: &[u8]) {
    file.set_len(0).expect("truncate the scratch file");
    file.write_all_at(bytes, 0).expect("write the scratch file");
}

fn expand(recipe: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(recipe.len());
    let mut bytes = recipe.iter();
    while let Some(&b) = bytes.next() {
        if out.len() >= MAX_CONTENT {
            break;
        }
        match (b, bytes.clone().next()) {
            (0xFF, Some(&n)) => {
                bytes.next();
                let last = out.last().copied().unwrap_or(b'x');
                let n = (64 * (usize::from(n) + 1)).min(MAX_CONTENT - out.len());
                out.resize(out.len() + n, last);
            }
            _ => out.push(b),
        }
    }
    out
}

/// The complete lines of `content` from `start`, split by hand.
fn model(content: &[u8], start: u64) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut at = start as usize;
    while let Some(pos) = content[at..].iter().position(|b| *b == b'\n') {
        lines.push(Line {
            offset: at as u64,
            end: (at + pos + 1) as u64,
            bytes: content[at..at + pos].to_vec(),
        });
        at += pos + 1;
    }
    lines
}

/// Reads on from `cursor` until no complete line is left.
fn drain(path: &std::path::Path, cursor: &mut u64, max_bytes: usize) -> Vec<Line> {
    let mut all = Vec::new();
    loop {
        let batch = jsonl::read_lines(path, *cursor, max_bytes).expect("read_lines");
        if batch.lines.is_empty() {
            assert_eq!(batch.next, *cursor, "no line read, yet the cursor moved");
            return all;
        }
        *cursor = batch.next;
        all.extend(batch.lines);
    }
}

fn check_batch(content: &[u8], start: u64, max_bytes: usize, batch: &jsonl::ReadBatch) {
    let len = content.len() as u64;
    assert_eq!(batch.len, len, "the length seen is not the file's");
    if start >= len {
        assert!(batch.lines.is_empty(), "lines read past the end");
        assert_eq!(batch.next, start);
        return;
    }
    let want = model(content, start);
    assert!(
        batch.lines.len() <= want.len() && batch.lines[..] == want[..batch.lines.len()],
        "the lines read are not the file's first complete lines"
    );
    assert_eq!(
        batch.next,
        batch.lines.last().map_or(start, |l| l.end),
        "the cursor is not past the last line returned"
    );
    if let Some(first) = want.first() {
        assert!(
            !batch.lines.is_empty(),
            "a complete line was there and none came back"
        );
        // About `max_bytes` (at least 4096) per read, unless one line is
        // longer: then the window doubles until that line fits.
        let window = (len - start).min(max_bytes.max(4096) as u64);
        let bound = window.max(2 * (first.end - first.offset));
        assert!(
            batch.next - start <= bound,
            "read {} bytes of lines, over the bound of {bound}",
            batch.next - start
        );
    }
}

fn assert_cursor(content: &[u8], cursor: u64, got: CursorCheck) {
    let len = content.len() as u64;
    let want = if cursor > len {
        CursorCheck::Shrunk { len }
    } else if cursor > 0 && content[cursor as usize - 1] != b'\n' {
        CursorCheck::OffBoundary { len }
    } else {
        CursorCheck::Ok
    };
    assert_eq!(got, want, "cursor check at {cursor} of {len} bytes");
}
