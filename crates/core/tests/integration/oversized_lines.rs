//! Lines longer than a reader's bound (FORMAT.md "Limits"): the reader holds
//! at most `max_line` bytes of any line — a longer one comes back cut, with
//! its real extent — and every line before and after it is read exactly as
//! if the long one were short. A long line without its newline is not yet
//! written, like any other, and waits.

use proptest::prelude::*;
use proptest::test_runner::RngAlgorithm;
use society_core::jsonl::{read_lines_bounded, read_objects, Line};
use std::io::Write;
use std::path::Path;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(128),
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

/// Reads the whole file from cursor 0 with `read_lines_bounded`, batch after
/// batch; checks the batch invariants and returns the lines and the cursor.
fn read_all(path: &Path, window: usize, max_line: usize) -> (Vec<Line>, u64) {
    let mut cursor = 0;
    let mut out = Vec::new();
    loop {
        let batch = read_lines_bounded(path, cursor, window, max_line).expect("read");
        let mut at = cursor;
        for line in &batch.lines {
            assert_eq!(line.offset, at, "lines are contiguous from the cursor");
            assert!(line.bytes.len() <= max_line, "at most max_line bytes held");
            at = line.end;
        }
        assert_eq!(batch.next, at);
        if batch.lines.is_empty() {
            return (out, cursor);
        }
        cursor = batch.next;
        out.extend(batch.lines);
    }
}

/// A line of `len` bytes that names its index in its first bytes, so a cut
/// head still shows which line it is.
fn line_of(index: usize, len: usize) -> Vec<u8> {
    let mut bytes = format!("{index:06}-").into_bytes();
    bytes.resize(len.max(bytes.len()), b'a' + (index % 26) as u8);
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn long_lines_come_back_cut_and_the_others_whole(
        lens in prop::collection::vec(prop_oneof![3 => 7usize..64, 1 => 64usize..20_000], 1..12),
        torn in prop::option::of(1usize..20_000),
        window in 1usize..10_000,
        max_line in 16usize..6_000,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.jsonl");
        let mut file = std::fs::File::create(&path).expect("create");
        let mut expected = Vec::new();
        let mut at = 0u64;
        for (i, len) in lens.iter().enumerate() {
            let bytes = line_of(i, *len);
            file.write_all(&bytes).and_then(|()| file.write_all(b"\n")).expect("write");
            let end = at + bytes.len() as u64 + 1;
            expected.push((at, end, bytes));
            at = end;
        }
        if let Some(t) = torn {
            // A writer still writing (or dead mid-line): no newline yet.
            file.write_all(&line_of(99, t)).expect("write torn tail");
        }
        drop(file);

        let (lines, next) = read_all(&path, window, max_line);
        prop_assert_eq!(next, at, "the cursor stops before the torn tail, never in a line");
        prop_assert_eq!(lines.len(), expected.len());
        for (line, (offset, end, bytes)) in lines.iter().zip(&expected) {
            prop_assert_eq!(line.offset, *offset);
            prop_assert_eq!(line.end, *end);
            prop_assert_eq!(line.size(), bytes.len() as u64 + 1);
            let keep = bytes.len().min(max_line);
            prop_assert_eq!(&line.bytes[..], &bytes[..keep], "the head of the line, or all of it");
            prop_assert_eq!(line.is_cut(), bytes.len() > max_line);
            prop_assert_eq!(line.oversize(max_line).is_some(), bytes.len() + 1 > max_line);
        }
    }
}

#[test]
fn an_oversized_line_is_skipped_to_its_end_and_the_next_line_read_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    let long = vec![b'x'; 3 << 20];
    let mut bytes = b"{\"n\":1}\n".to_vec();
    bytes.extend_from_slice(&long);
    bytes.extend_from_slice(b"\n{\"n\":2}\n");
    std::fs::write(&path, &bytes).expect("write");

    let batch = read_lines_bounded(&path, 8, 4096, 1024).expect("read");
    assert_eq!(
        batch.lines.len(),
        1,
        "the long line alone: nothing after it was in the window"
    );
    let cut = &batch.lines[0];
    assert_eq!((cut.offset, cut.end), (8, 8 + (3 << 20) + 1));
    assert_eq!(cut.bytes.len(), 1024);
    assert!(cut.is_cut());
    assert_eq!(
        cut.oversize(1024).as_deref(),
        Some("line of 3145729 bytes exceeds max_record (1024 bytes)")
    );
    let after = read_lines_bounded(&path, batch.next, 4096, 1024).expect("read on");
    assert_eq!(after.lines.len(), 1);
    assert_eq!(after.lines[0].bytes, b"{\"n\":2}");

    // Consumers that skip bad lines skip a cut one, whatever its head says.
    let mut cursor = 0;
    let objects = read_objects(&path, &mut cursor).expect("read objects");
    assert_eq!(objects.len(), 2);
    assert_eq!(cursor, bytes.len() as u64);
}

/// A valid object padded with blanks past the bound parses as that object in
/// full and in its head alike: only its size refuses it.
#[test]
fn a_cut_line_is_refused_by_its_size_not_by_what_its_head_parses_as() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.jsonl");
    let mut bytes = b"{\"n\":1}".to_vec();
    bytes.resize(10_000, b' ');
    bytes.push(b'x');
    bytes.push(b'\n');
    std::fs::write(&path, &bytes).expect("write");
    let batch = read_lines_bounded(&path, 0, 4096, 64).expect("read");
    assert!(serde_json::from_slice::<serde_json::Value>(&batch.lines[0].bytes).is_ok());
    assert!(batch.lines[0].oversize(64).is_some());
    let mut cursor = 0;
    let read = society_core::jsonl::read_objects(&path, &mut cursor).expect("read objects");
    assert_eq!(read.len(), 0, "an unparseable line is skipped");
}
