//! Property tests of the JSONL byte-cursor reader (DESIGN.md "Records and the
//! append protocol"; STYLE.md "Tests"): truncate or corrupt a file at any byte,
//! and the reader never returns a wrong record and never loses a good one.
//!
//! Every case writes real envelopes through [`Appender`], damages the file on
//! disk, and reads it back with [`read_lines`] the way a consumer does: from a
//! byte cursor, batch after batch, with several window sizes. Windows below the
//! reader's 4 KiB floor and records above it (long bodies) exercise the path
//! that widens the window until one long line fits.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngAlgorithm;
use serde_json::json;
use society_core::jsonl::{read_lines, Appender, Durability, Line};
use society_core::{CaseId, Envelope, MsgId, Party, DEFAULT_MAX_RECORD};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Cases per property; `PROPTEST_CASES` raises it for a deeper run.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(CASES),
        // ChaCha (the default) dominates the run time in debug builds.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

/// Characters that stress JSON escaping and UTF-8: control characters (escaped
/// as `\n`, `\u0000`, ...), quotes, backslashes, multi-byte and astral chars.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        3 => prop::sample::select(vec![
            '\n', '\r', '\t', '"', '\\', '/', '\u{0}', '\u{1f}', '\u{7f}', 'é', '€', '\u{2028}',
            '\u{feff}', '𝄞', '😀',
        ]),
        2 => any::<char>(),
    ]
}

fn short_text() -> impl Strategy<Value = String> {
    prop::collection::vec(text_char(), 0..48).prop_map(String::from_iter)
}

/// A body text longer than the reader's minimum window (4 KiB), so reading it
/// takes the widening path.
fn long_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(text_char(), 1..12),
        4_100usize..20_000,
    )
        .prop_map(|(unit, target)| {
            let unit = String::from_iter(unit);
            let mut text = String::with_capacity(target + unit.len());
            while text.len() < target {
                text.push_str(&unit);
            }
            text
        })
}

fn body_text() -> impl Strategy<Value = String> {
    prop_oneof![9 => short_text(), 1 => long_text()]
}

fn records() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(body_text(), 1..40)
}

/// Window sizes for `max_bytes`: tiny (below the 4 KiB floor), around one long
/// line, and larger than any file here.
fn window() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..64, 64usize..8_192, 8_192usize..200_000]
}

/// Bytes that can never appear at any place in a valid JSON text encoded as
/// UTF-8: C0 controls other than tab, newline and carriage return (JSON
/// whitespace; the others are rejected inside strings too), and bytes that
/// never occur in UTF-8 at all (0xC0, 0xC1, 0xF5..=0xFF). Continuation bytes
/// (0x80..=0xBF) are left out: one could replace another and keep the UTF-8
/// valid, and the line with it.
fn bad_byte() -> impl Strategy<Value = u8> {
    let bytes: Vec<u8> = (0x00u8..=0xff)
        .filter(|b| {
            (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
                || matches!(b, 0xc0 | 0xc1 | 0xf5..=0xff)
        })
        .collect();
    prop::sample::select(bytes)
}

/// A byte position in a written file: any byte, or (often enough to matter)
/// the newline of a record or the first byte after it.
#[derive(Debug, Clone)]
enum Position {
    Anywhere(Index),
    Newline(Index),
    AfterNewline(Index),
}

impl Position {
    /// The position in `f`; `Anywhere` includes the end of the file if `eof`.
    fn resolve(&self, f: &Written, eof: bool) -> u64 {
        match self {
            Position::Anywhere(i) => i.index(f.len as usize + usize::from(eof)) as u64,
            Position::Newline(i) => f.lines[i.index(f.lines.len())].end - 1,
            Position::AfterNewline(i) => f.lines[i.index(f.lines.len())].end,
        }
    }
}

/// Where to cut a file: anywhere from 0 to its length inclusive.
fn cut_position() -> impl Strategy<Value = Position> {
    prop_oneof![
        4 => any::<Index>().prop_map(Position::Anywhere),
        1 => any::<Index>().prop_map(Position::Newline),
        1 => any::<Index>().prop_map(Position::AfterNewline),
    ]
}

/// Which byte to corrupt.
fn corrupt_position() -> impl Strategy<Value = Position> {
    prop_oneof![
        3 => any::<Index>().prop_map(Position::Anywhere),
        1 => any::<Index>().prop_map(Position::Newline),
    ]
}

fn envelope(i: usize, text: &str) -> Envelope {
    let to: Party = "research-1".parse().expect("valid party");
    let mut env = Envelope::new(
        Party::Orchestrator,
        to,
        "task",
        json!({"i": i, "text": text}),
    );
    if i % 3 == 1 {
        env.case = Some(CaseId::generate());
        env.reply_to = Some(MsgId::generate());
        env.gen = i as u64;
    }
    env
}

/// A file written through the append protocol, and what it must read back as.
struct Written {
    _dir: tempfile::TempDir,
    path: PathBuf,
    envs: Vec<Envelope>,
    lines: Vec<Line>,
    len: u64,
}

/// Appends `texts` as envelopes, alternating single appends and group commits.
fn write_file(texts: &[String]) -> Written {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("inbox.jsonl");
    let envs: Vec<Envelope> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| envelope(i, t))
        .collect();
    let lines = append_envelopes(&path, &envs, 0);
    let len = lines.last().map_or(0, |l| l.end);
    Written {
        _dir: dir,
        path,
        envs,
        lines,
        len,
    }
}

/// Appends `envs` with a fresh [`Appender`] (as a new process would) to a file
/// whose next record is expected at `start`; returns the lines written.
fn append_envelopes(path: &Path, envs: &[Envelope], start: u64) -> Vec<Line> {
    let mut appender =
        Appender::open(path, Durability::Flushed, DEFAULT_MAX_RECORD).expect("open appender");
    let mut lines = Vec::with_capacity(envs.len());
    let mut at = start;
    // Chunks of 1, 2, 3, 1, 2, 3, ...: both `append` and `append_batch`.
    let mut rest = envs;
    let mut size = 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        let bytes: Vec<Vec<u8>> = chunk.iter().map(Envelope::to_line).collect();
        let offset = if bytes.len() == 1 {
            appender.append(&bytes[0]).expect("append")
        } else {
            appender.append_batch(&bytes).expect("append batch")
        };
        assert_eq!(offset, at, "append returns where its first record starts");
        for b in bytes {
            let end = at + b.len() as u64 + 1;
            lines.push(Line {
                offset: at,
                end,
                bytes: b,
            });
            at = end;
        }
        rest = tail;
        size = size % 3 + 1;
    }
    lines
}

/// Reads the whole file as a consumer does: from cursor 0, batch after batch,
/// with `window` as `max_bytes`. Checks the batch invariants on the way and
/// returns the lines, the final cursor and the last file length seen.
fn read_all(path: &Path, window: usize) -> (Vec<Line>, u64, u64) {
    let mut cursor = 0u64;
    let mut out = Vec::new();
    loop {
        let batch = read_lines(path, cursor, window).expect("read_lines");
        let mut at = cursor;
        for line in &batch.lines {
            assert_eq!(line.offset, at, "lines are contiguous from the cursor");
            assert_eq!(
                line.end,
                line.offset + line.bytes.len() as u64 + 1,
                "end is past the newline"
            );
            assert!(
                !line.bytes.contains(&b'\n'),
                "a line never contains a newline"
            );
            at = line.end;
        }
        assert_eq!(batch.next, at, "next is the end of the last line returned");
        assert!(
            batch.next <= batch.len,
            "the cursor never passes the file length"
        );
        if batch.lines.is_empty() {
            return (out, batch.next, batch.len);
        }
        cursor = batch.next;
        out.extend(batch.lines);
    }
}

/// Reads with every window size and checks each read gives `expected`, stops
/// at `next` and saw a file of `len` bytes.
fn assert_reads(path: &Path, windows: &[usize], expected: &[Line], next: u64, len: u64) {
    for &w in windows {
        let (got, got_next, got_len) = read_all(path, w);
        assert_eq!(got.len(), expected.len(), "line count with window {w}");
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert_eq!(g, e, "line {i} with window {w}");
        }
        assert_eq!(got_next, next, "final cursor with window {w}");
        assert_eq!(got_len, len, "file length seen with window {w}");
    }
}

/// The lines expected after more records were appended to a file whose tail
/// (`pending`: offset and bytes of a line without its `\n`) a writer left torn.
fn with_appended(
    mut lines: Vec<Line>,
    pending: Option<(u64, Vec<u8>)>,
    appended: &[Line],
) -> Vec<Line> {
    assert!(
        !appended.is_empty(),
        "a torn tail is ended by the next append"
    );
    if let Some((offset, bytes)) = pending {
        let end = offset + bytes.len() as u64 + 1;
        lines.push(Line { offset, end, bytes });
    }
    lines.extend_from_slice(appended);
    lines
}

fn parses_as(line: &Line, env: &Envelope) {
    match Envelope::parse(&line.bytes) {
        Ok(got) => assert_eq!(
            &got, env,
            "line at {} parses as the record written there",
            line.offset
        ),
        Err(e) => panic!("line at {} should parse: {e}", line.offset),
    }
}

fn is_dead_letter(line: &Line) {
    assert!(
        serde_json::from_slice::<serde_json::Value>(&line.bytes).is_err(),
        "damaged line at {} must not be valid JSON: {:?}",
        line.offset,
        String::from_utf8_lossy(&line.bytes)
    );
    assert!(
        Envelope::parse(&line.bytes).is_err(),
        "damaged line at {} must fail Envelope::parse",
        line.offset
    );
}

proptest! {
    #![proptest_config(config())]

    /// Cut the file at any byte: the reader returns exactly the complete lines
    /// before the cut, byte-identical and in order, and never the partial one.
    #[test]
    fn truncated_file_yields_exactly_the_complete_lines(
        texts in records(),
        cut in cut_position(),
        w1 in window(),
        w2 in window(),
    ) {
        let f = write_file(&texts);
        let on_disk = std::fs::read(&f.path).expect("read file");
        let expected_bytes: Vec<u8> = f.lines.iter().flat_map(|l| {
            l.bytes.iter().copied().chain(std::iter::once(b'\n'))
        }).collect();
        prop_assert_eq!(&on_disk, &expected_bytes, "the appender writes exactly the records");

        let cut = cut.resolve(&f, true);
        OpenOptions::new().write(true).open(&f.path).expect("open").set_len(cut).expect("truncate");

        let complete: Vec<Line> = f.lines.iter().filter(|l| l.end <= cut).cloned().collect();
        let next = complete.last().map_or(0, |l| l.end);
        assert_reads(&f.path, &[1, 4096, w1, w2, usize::MAX], &complete, next, cut);
        for (line, env) in complete.iter().zip(&f.envs) {
            parses_as(line, env);
        }
    }

    /// A writer died mid-line (the file is cut at any byte), then writers carry
    /// on: the torn fragment becomes exactly one line that fails to parse, and
    /// every record appended afterwards reads back intact.
    ///
    /// One cut is different: just before a record's newline. Then the whole
    /// record was written and only its `\n` is missing; the repair newline
    /// completes it and it reads back as exactly that record. That is not a
    /// wrong message: its writer died before its append returned and will send
    /// it again, which at-least-once delivery and deterministic ids absorb.
    #[test]
    fn torn_tail_becomes_one_bad_line_and_later_records_survive(
        texts in records(),
        cut in cut_position(),
        more in prop::collection::vec(body_text(), 1..8),
        w in window(),
    ) {
        let f = write_file(&texts);
        let cut = cut.resolve(&f, true);
        OpenOptions::new().write(true).open(&f.path).expect("open").set_len(cut).expect("truncate");

        let complete: Vec<Line> = f.lines.iter().filter(|l| l.end <= cut).cloned().collect();
        let fragment_start = complete.last().map_or(0, |l| l.end);
        let pending = (fragment_start < cut).then(|| {
            let line = &f.lines[complete.len()];
            (fragment_start, line.bytes[..(cut - fragment_start) as usize].to_vec())
        });

        let later: Vec<Envelope> = more.iter().enumerate().map(|(i, t)| envelope(1000 + i, t)).collect();
        let start = cut + u64::from(pending.is_some());
        let appended = append_envelopes(&f.path, &later, start);
        let len = appended.last().map_or(start, |l| l.end);

        let expected = with_appended(complete.clone(), pending.clone(), &appended);
        assert_reads(&f.path, &[1, w, usize::MAX], &expected, len, len);
        for (line, env) in complete.iter().zip(&f.envs) {
            parses_as(line, env);
        }
        if let Some((_, fragment)) = &pending {
            let torn = complete.len();
            if fragment.len() == f.lines[torn].bytes.len() {
                parses_as(&expected[torn], &f.envs[torn]);
            } else {
                is_dead_letter(&expected[torn]);
            }
        }
        for (line, env) in appended.iter().zip(&later) {
            parses_as(line, env);
        }
    }

    /// Overwrite one byte anywhere with a byte that is never valid JSON text:
    /// every other line reads back intact, the damaged line fails to parse (it
    /// is dead-lettered), and no line ever parses into a different record.
    ///
    /// A flip that keeps the line valid JSON (one letter inside a string, one
    /// digit of `gen`) cannot be detected without a per-line checksum, which the
    /// v1 format does not have; so this property corrupts only with bytes that
    /// are invalid wherever they land.
    #[test]
    fn corrupt_byte_costs_one_dead_line_never_a_wrong_record(
        texts in records(),
        pos in corrupt_position(),
        bad in bad_byte(),
        more in prop::collection::vec(body_text(), 1..4),
        w in window(),
    ) {
        let f = write_file(&texts);
        let pos = pos.resolve(&f, false);
        let k = f.lines.iter().position(|l| l.offset <= pos && pos < l.end).expect("pos is in a line");
        let file = OpenOptions::new().write(true).open(&f.path).expect("open");
        file.write_at(&[bad], pos).expect("corrupt one byte");
        drop(file);

        let mut lines = f.lines.clone();
        let mut pending = None;
        let damaged_offset = lines[k].offset;
        if pos + 1 < lines[k].end {
            // Inside a record: the line keeps its place and length.
            let at = (pos - lines[k].offset) as usize;
            lines[k].bytes[at] = bad;
        } else if k + 1 < lines.len() {
            // The newline between records k and k+1: they merge into one line,
            // which fails to parse, so neither record is misread.
            let next = lines.remove(k + 1);
            let line = &mut lines[k];
            line.bytes.push(bad);
            line.bytes.extend_from_slice(&next.bytes);
            line.end = next.end;
        } else {
            // The final newline: the last record is now an unterminated tail,
            // left unread until a writer ends it.
            let mut tail = lines.pop().expect("k is the last line");
            tail.bytes.push(bad);
            pending = Some((tail.offset, tail.bytes));
        }
        let tail_torn = pending.is_some();
        let next = if tail_torn { damaged_offset } else { f.len };
        assert_reads(&f.path, &[1, w, usize::MAX], &lines, next, f.len);

        // Writers carry on; a torn tail is ended first, so it stays one bad line.
        let later: Vec<Envelope> = more.iter().enumerate().map(|(i, t)| envelope(1000 + i, t)).collect();
        let start = f.len + u64::from(tail_torn);
        let appended = append_envelopes(&f.path, &later, start);
        let len = appended.last().map_or(start, |l| l.end);
        let expected = with_appended(lines, pending, &appended);
        assert_reads(&f.path, &[1, w, usize::MAX], &expected, len, len);

        let mut dead = 0;
        for line in &expected {
            if line.offset == damaged_offset {
                is_dead_letter(line);
                dead += 1;
            } else if let Some(i) = f.lines.iter().position(|l| l.offset == line.offset) {
                parses_as(line, &f.envs[i]);
            } else {
                let i = appended.iter().position(|l| l.offset == line.offset).expect("an appended line");
                parses_as(line, &later[i]);
            }
        }
        prop_assert_eq!(dead, 1, "exactly one dead line");
    }
}

/// One line far longer than the window comes back whole, from any window.
#[test]
fn a_line_longer_than_the_window_is_returned_whole() {
    let texts = vec!["x".repeat(300_000), "short".to_string(), "y".repeat(9_000)];
    let f = write_file(&texts);
    assert_reads(
        &f.path,
        &[0, 1, 4096, 4097, 100_000, usize::MAX],
        &f.lines,
        f.len,
        f.len,
    );
    // A window that ends one byte short of a line's newline, and a file cut one
    // byte short of it: the line is not yet written.
    let cut = f.lines[0].end - 1;
    OpenOptions::new()
        .write(true)
        .open(&f.path)
        .expect("open")
        .set_len(cut)
        .expect("truncate");
    assert_reads(&f.path, &[1, usize::MAX], &[], 0, cut);
}
