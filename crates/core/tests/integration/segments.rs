//! Rotation of live JSONL files into archived segments (`society_core::segments`):
//! naming and listing, rotation racing real appenders (threads and processes),
//! compression crash windows, and reading everything back in order.
//!
//! Records are `{"w":writer,"s":seq,"pad":"..."}` whose exact bytes follow
//! from `(writer, seq)`, so every line read back is checked byte for byte.
//! The writer processes are this test binary, re-executed to run only the
//! ignored test `segments_child_entry`.

use serde_json::Value;
use society_core::jsonl::{read_lines, Appender, Durability};
use society_core::segments::{
    self, compress, list, live_seq, read_objects_all, read_segment, rotate, Segment,
};
use society_core::{Layout, DEFAULT_MAX_RECORD};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

fn society() -> (tempfile::TempDir, Layout, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = Layout::at(dir.path());
    let live = layout.state_dir().join("agent-e1").join("inbox.jsonl");
    std::fs::create_dir_all(live.parent().expect("parent")).expect("agent dir");
    (dir, layout, live)
}

fn rec(writer: u32, seq: u64) -> Vec<u8> {
    // The length depends on `seq` only: two writers' records of one `seq`
    // are equally long (a test needs that).
    let pad = "x".repeat((seq * 37 % 200) as usize);
    format!(r#"{{"w":{writer},"s":{seq},"pad":"{pad}"}}"#).into_bytes()
}

/// `(writer, seq)` of a record line, after checking it is exactly that record.
fn ws(line: &[u8]) -> (u32, u64) {
    let v: Value = serde_json::from_slice(line).expect("a record line is JSON");
    let (w, s) = ws_of(&v);
    assert_eq!(
        line,
        rec(w, s),
        "the line is exactly record {s} of writer {w}"
    );
    (w, s)
}

/// `(writer, seq)` of a parsed record, after checking it is that record.
fn ws_of(v: &Value) -> (u32, u64) {
    let w = v["w"].as_u64().expect("w") as u32;
    let s = v["s"].as_u64().expect("s");
    let want: Value = serde_json::from_slice(&rec(w, s)).expect("JSON");
    assert_eq!(*v, want, "the object is exactly record {s} of writer {w}");
    (w, s)
}

fn all_ws(layout: &Layout, live: &Path) -> Vec<(u32, u64)> {
    let objects = read_objects_all(layout, live).expect("read_objects_all");
    objects.iter().map(ws_of).collect()
}

fn append(live: &Path, lines: &[&[u8]]) {
    let mut a = Appender::open(live, Durability::Flushed, DEFAULT_MAX_RECORD).expect("open");
    a.append_batch(lines).expect("append");
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Is some `flock` request waiting on inode `ino` (`/proc/locks`: `1: -> FLOCK ...`)?
fn lock_waited_on(ino: u64) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").expect("read /proc/locks");
    let suffix = format!(":{ino}");
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        matches!(f.as_slice(), [_, "->", "FLOCK", _, _, _, dev_ino, ..] if dev_ino.ends_with(&suffix))
    })
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ------------------------------------------------------------ naming, list

#[test]
fn list_and_live_seq_follow_the_archive() {
    let (_d, layout, live) = society();
    assert_eq!(list(&layout, &live).expect("list"), []);
    assert_eq!(live_seq(&layout, &live).expect("live_seq"), 0);
    assert!(read_objects_all(&layout, &live).expect("read").is_empty());
    let dir = segments::archive_dir_of(&layout, &live);
    assert_eq!(dir, layout.archive_dir().join("agent-e1"));
    std::fs::create_dir_all(&dir).expect("archive dir");
    for name in [
        "inbox.000000.jsonl.zst",
        "inbox.000001.jsonl",
        "inbox.000001.jsonl.zst",
        "inbox.000002.jsonl",
        "inbox.000002.jsonl.zst.tmp",
        "inbox.0000003.jsonl",
        "outbox.000005.jsonl",
        "notes.txt",
    ] {
        File::create(dir.join(name)).expect("create");
    }
    let want = [(0, true), (1, true), (2, false)].map(|(seq, compressed)| Segment {
        seq,
        compressed,
        path: dir.join(format!(
            "inbox.{seq:06}.jsonl{}",
            if compressed { ".zst" } else { "" }
        )),
    });
    assert_eq!(list(&layout, &live).expect("list"), want);
    assert_eq!(live_seq(&layout, &live).expect("live_seq"), 3);
}

// ------------------------------------------------------------ rotate

#[test]
fn rotate_moves_a_consumed_file_and_the_next_append_starts_afresh() {
    let (_d, layout, live) = society();
    let mut a = Appender::open(&live, Durability::Durable, DEFAULT_MAX_RECORD).expect("open");
    a.append_batch(&[rec(0, 0), rec(0, 1)]).expect("append");
    let seg = rotate(&layout, &live, len(&live))
        .expect("rotate")
        .expect("rotated");
    assert_eq!(seg.seq, 0);
    assert_eq!(
        seg.path,
        layout.archive_dir().join("agent-e1/inbox.000000.jsonl")
    );
    assert!(
        !seg.compressed && !live.exists(),
        "the live file is gone until the next append"
    );
    a.append(&rec(0, 2)).expect("append after rotation");
    assert_eq!(
        std::fs::read(&live).expect("live"),
        [rec(0, 2), b"\n".to_vec()].concat()
    );
    assert_eq!(live_seq(&layout, &live).expect("live_seq"), 1);
    let seg1 = rotate(&layout, &live, len(&live))
        .expect("rotate")
        .expect("rotated");
    assert_eq!(seg1.seq, 1);
    append(&live, &[&rec(0, 3)]);
    assert_eq!(all_ws(&layout, &live), [(0, 0), (0, 1), (0, 2), (0, 3)]);
}

#[test]
fn rotate_refuses_a_length_that_moved_and_empty_or_missing_files() {
    let (_d, layout, live) = society();
    assert_eq!(rotate(&layout, &live, 0).expect("missing"), None);
    File::create(&live).expect("create");
    assert_eq!(rotate(&layout, &live, 0).expect("empty"), None);
    append(&live, &[&rec(0, 0), &rec(0, 1)]);
    let n = len(&live);
    for wrong in [n - 1, n + 1, 0] {
        assert_eq!(
            rotate(&layout, &live, wrong).expect("rotate"),
            None,
            "{wrong} of {n}"
        );
    }
    assert_eq!(len(&live), n, "the live file is untouched");
    assert_eq!(list(&layout, &live).expect("list"), []);
}

/// An appender holds the lock when rotate starts; rotate must wait for it
/// and then see that the length moved.
#[test]
fn rotate_waits_for_an_append_in_progress_then_refuses() {
    let (_d, layout, live) = society();
    append(&live, &[&rec(0, 0)]);
    let consumed = len(&live);
    let mut holder = OpenOptions::new().append(true).open(&live).expect("open");
    holder.lock().expect("lock");
    let rotator = {
        let (layout, live) = (layout.clone(), live.clone());
        std::thread::spawn(move || rotate(&layout, &live, consumed).expect("rotate"))
    };
    let ino = std::fs::metadata(&live).expect("stat").ino();
    wait_for("rotate to wait for the lock", || lock_waited_on(ino));
    holder
        .write_all(&[rec(0, 1), b"\n".to_vec()].concat())
        .expect("write");
    holder.unlock().expect("unlock");
    assert_eq!(rotator.join().expect("rotator thread"), None);
    assert_eq!(list(&layout, &live).expect("list"), []);
    assert_eq!(all_ws(&layout, &live), [(0, 0), (0, 1)]);
}

/// Rotate waits for the lock of a file that another rotation archives
/// meanwhile; a new live file of the very same length must not be taken.
#[test]
fn rotate_refuses_a_file_that_was_rotated_while_it_waited() {
    let (_d, layout, live) = society();
    append(&live, &[&rec(1, 0)]);
    let consumed = len(&live);
    let holder = File::open(&live).expect("open");
    holder.lock().expect("lock");
    let rotator = {
        let (layout, live) = (layout.clone(), live.clone());
        std::thread::spawn(move || rotate(&layout, &live, consumed).expect("rotate"))
    };
    let ino = std::fs::metadata(&live).expect("stat").ino();
    wait_for("rotate to wait for the lock", || lock_waited_on(ino));
    let seg0 = segments::archive_dir_of(&layout, &live).join("inbox.000000.jsonl");
    std::fs::create_dir_all(seg0.parent().expect("dir")).expect("archive dir");
    std::fs::rename(&live, &seg0).expect("the other rotation");
    append(&live, &[&rec(2, 0)]);
    assert_eq!(
        len(&live),
        consumed,
        "the new live file has the same length"
    );
    holder.unlock().expect("unlock");
    assert_eq!(rotator.join().expect("rotator thread"), None);
    assert_eq!(live_seq(&layout, &live).expect("live_seq"), 1);
    assert_eq!(all_ws(&layout, &live), [(1, 0), (2, 0)]);
}

// ------------------------------------------------------------ concurrency

/// Consumes `live` from a cursor and rotates it whenever at least `threshold`
/// bytes are consumed, until `done` was true before a read that found
/// nothing. Returns what it consumed and how often rotate succeeded/refused.
fn consume_and_rotate(
    layout: &Layout,
    live: &Path,
    threshold: u64,
    done: &AtomicBool,
    rotated: &mpsc::Sender<Segment>,
) -> (Vec<(u32, u64)>, u32, u32) {
    let (mut cursor, mut got, mut rotations, mut refusals) = (0, Vec::new(), 0, 0);
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "consumer ran past the deadline");
        let finished = done.load(Ordering::SeqCst);
        let batch = read_lines(live, cursor, 1 << 20).expect("read_lines");
        got.extend(batch.lines.iter().map(|l| ws(&l.bytes)));
        cursor = batch.next;
        if finished && batch.lines.is_empty() {
            return (got, rotations, refusals);
        }
        if cursor >= threshold {
            match rotate(layout, live, cursor).expect("rotate") {
                Some(seg) => {
                    cursor = 0;
                    rotations += 1;
                    rotated.send(seg).expect("compressor alive");
                }
                None => refusals += 1,
            }
        }
    }
}

/// Compresses two segments in three as they come (leaving a mix of forms).
fn compressor(rx: mpsc::Receiver<Segment>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for seg in rx {
            if seg.seq % 3 != 0 {
                compress(&seg).expect("compress");
            }
        }
    })
}

/// Reads snapshots while all this runs: each must hold a gap-free prefix of
/// every writer's records (a snapshot that lost a segment to a rotation
/// would show a gap).
fn snapshot_reader(
    layout: Layout,
    live: PathBuf,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut snapshots = 0;
        while !done.load(Ordering::SeqCst) {
            assert_prefixes(&all_ws(&layout, &live), None);
            snapshots += 1;
            // Leave the (two) cores to the writers and the consumer mostly.
            std::thread::sleep(Duration::from_millis(5));
        }
        snapshots
    })
}

/// Every writer's records are 0..k in order, once each (k = `count` if given).
fn assert_prefixes(records: &[(u32, u64)], count: Option<(u32, u64)>) {
    let mut per: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    records
        .iter()
        .for_each(|(w, s)| per.entry(*w).or_default().push(*s));
    for (w, seqs) in &per {
        let want: Vec<u64> = (0..seqs.len() as u64).collect();
        assert!(
            *seqs == want,
            "writer {w}: not 0..{} exactly once in order",
            seqs.len()
        );
    }
    if let Some((writers, n)) = count {
        assert_eq!(per.len(), writers as usize, "every writer is there");
        assert!(
            per.values().all(|s| s.len() as u64 == n),
            "{n} records of every writer"
        );
    }
}

/// Runs the writers (`run` starts them and returns once all have finished)
/// against a consumer that rotates, a compressor and a snapshot reader, then
/// checks that the consumer saw every record once, in each writer's order,
/// and that segments + live file hold exactly what it saw.
fn race(writers: u32, per_writer: u64, run: impl FnOnce(&Path)) {
    let (_d, layout, live) = society();
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let compressing = compressor(rx);
    let reader = snapshot_reader(layout.clone(), live.clone(), done.clone());
    let consumer = {
        let (layout, live, done) = (layout.clone(), live.clone(), done.clone());
        std::thread::spawn(move || consume_and_rotate(&layout, &live, 4096, &done, &tx))
    };
    run(&live);
    done.store(true, Ordering::SeqCst);
    let (got, rotations, refusals) = consumer.join().expect("consumer");
    compressing.join().expect("compressor");
    let snapshots = reader.join().expect("snapshot reader");
    eprintln!(
        "{rotations} rotations, {refusals} refused (an append raced in), {snapshots} snapshots"
    );
    assert!(
        rotations >= 20,
        "the file was rotated repeatedly: {rotations}"
    );
    assert!(snapshots > 0, "snapshots were read during the run");
    assert_prefixes(&got, Some((writers, per_writer)));
    assert_eq!(
        all_ws(&layout, &live),
        got,
        "the archive + live file hold what was consumed, in order"
    );
    let segs = list(&layout, &live).expect("list");
    assert_eq!(segs.len(), rotations as usize);
    assert!(segs.iter().any(|s| s.compressed) && segs.iter().any(|s| !s.compressed));
}

#[test]
fn threads_appending_while_the_consumer_rotates_lose_and_duplicate_nothing() {
    const WRITERS: u32 = 4;
    const PER_WRITER: u64 = 2_000;
    race(WRITERS, PER_WRITER, |live| {
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let live = live.to_path_buf();
                std::thread::spawn(move || write_records(&live, w, PER_WRITER))
            })
            .collect();
        threads
            .into_iter()
            .for_each(|t| t.join().expect("writer thread"));
    });
}

#[test]
fn processes_appending_while_the_consumer_rotates_lose_and_duplicate_nothing() {
    const WRITERS: u32 = 4;
    const PER_WRITER: u64 = 2_000;
    race(WRITERS, PER_WRITER, |live| {
        let mut kids = Kids(Vec::new());
        for w in 0..WRITERS {
            let child = Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "segments::segments_child_entry",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(ENV_PATH, live)
                .env(ENV_WRITER, w.to_string())
                .env(ENV_COUNT, PER_WRITER.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn writer process");
            kids.0.push(child);
        }
        let deadline = Instant::now() + DEADLINE;
        for kid in &mut kids.0 {
            loop {
                if let Some(status) = kid.try_wait().expect("try_wait") {
                    assert!(status.success(), "writer process failed: {status}");
                    break;
                }
                assert!(Instant::now() < deadline, "writer process still running");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
}

fn write_records(live: &Path, writer: u32, count: u64) {
    let mut a = Appender::open(live, Durability::Flushed, DEFAULT_MAX_RECORD).expect("open");
    for seq in 0..count {
        a.append(&rec(writer, seq)).expect("append");
        // Pauses, so that the consumer catches up now and then: rotation
        // needs a fully consumed file. Pacing only, nothing is timed.
        std::thread::sleep(Duration::from_micros(500));
    }
}

const ENV_PATH: &str = "SOCIETY_SEGMENTS_CHILD_PATH";
const ENV_WRITER: &str = "SOCIETY_SEGMENTS_CHILD_WRITER";
const ENV_COUNT: &str = "SOCIETY_SEGMENTS_CHILD_COUNT";

/// Entry point of the writer processes; without their environment, nothing.
#[test]
#[ignore = "entry point of the writer processes spawned by the test above"]
fn segments_child_entry() {
    let Ok(path) = std::env::var(ENV_PATH) else {
        return;
    };
    let var = |k| std::env::var(k).expect("set for writer processes");
    let writer = var(ENV_WRITER).parse().expect("writer");
    write_records(
        Path::new(&path),
        writer,
        var(ENV_COUNT).parse().expect("count"),
    );
}

/// Writer processes, killed and reaped on drop so a failing test leaves none.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for kid in &mut self.0 {
            if let Ok(None) = kid.try_wait() {
                let _ = kid.kill();
                let _ = kid.wait();
            }
        }
    }
}

// ------------------------------------------------------------ compress, read

/// Rotates `live` after appending `lines`; the segment and its bytes.
fn segment_of(layout: &Layout, live: &Path, lines: &[Vec<u8>]) -> (Segment, Vec<u8>) {
    append(live, &lines.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let bytes = std::fs::read(live).expect("read live");
    let seg = rotate(layout, live, bytes.len() as u64)
        .expect("rotate")
        .expect("rotated");
    (seg, bytes)
}

fn records(writer: u32, seqs: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    seqs.map(|s| rec(writer, s)).collect()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Each state a crash can leave a compression in: the segment is listed
/// once, in the form given, with its bytes; `compress` then finishes it.
#[test]
fn compression_crash_windows_leave_one_readable_segment() {
    type Crash = fn(&Segment, &[u8]);
    let states: [(&str, Crash, bool); 4] = [
        ("before it started", |_, _| {}, false),
        (
            "while writing the .tmp",
            |seg, bytes| {
                let zst = zstd::encode_all(bytes, 3).expect("encode");
                std::fs::write(tmp_of(seg), &zst[..zst.len() / 2]).expect("write tmp");
            },
            false,
        ),
        (
            "after the rename, before removing the .jsonl",
            |seg, bytes| {
                compress(seg).expect("compress");
                std::fs::write(&seg.path, bytes).expect("the .jsonl is still there");
                std::fs::write(tmp_of(seg), b"old").expect("a stale tmp of an earlier try");
            },
            true,
        ),
        (
            "after it finished",
            |seg, _| {
                compress(seg).expect("compress");
            },
            true,
        ),
    ];
    for (when, crash, compressed) in states {
        let (_d, layout, live) = society();
        let (seg, bytes) = segment_of(&layout, &live, &records(3, 0..50));
        crash(&seg, &bytes);
        let listed = list(&layout, &live).expect("list");
        assert_eq!(listed.len(), 1, "{when}: one segment");
        assert_eq!(listed[0].compressed, compressed, "{when}: its form");
        assert_eq!(
            read_segment(&listed[0]).expect("read"),
            bytes,
            "{when}: its bytes"
        );
        let want: Vec<(u32, u64)> = (0..50).map(|s| (3, s)).collect();
        assert_eq!(all_ws(&layout, &live), want, "{when}: every record once");
        let done = compress(&listed[0]).expect("compress");
        assert_eq!(
            read_segment(&done).expect("read"),
            bytes,
            "{when}: compressed bytes"
        );
        let dir = segments::archive_dir_of(&layout, &live);
        assert_eq!(
            dir_names(&dir),
            ["inbox.000000.jsonl.zst"],
            "{when}: only the .zst is left"
        );
    }
}

fn tmp_of(seg: &Segment) -> PathBuf {
    PathBuf::from(format!("{}.zst.tmp", seg.path.display()))
}

#[test]
fn compress_is_idempotent_and_concurrent_calls_agree() {
    let (_d, layout, live) = society();
    let (seg, bytes) = segment_of(&layout, &live, &records(4, 0..2_000));
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let results: Vec<Segment> = (0..4)
        .map(|_| {
            let (seg, barrier) = (seg.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                compress(&seg).expect("compress")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("compressor thread"))
        .collect();
    let done = &results[0];
    assert!(done.compressed && results.iter().all(|r| r == done));
    assert_eq!(compress(done).expect("again"), *done);
    assert_eq!(compress(&seg).expect("with the stale segment"), *done);
    assert_eq!(
        list(&layout, &live).expect("list"),
        std::slice::from_ref(done)
    );
    assert_eq!(read_segment(done).expect("read"), bytes);
    assert!(len(&done.path) < bytes.len() as u64 / 4, "it is compressed");
}

/// A segment listed as `.jsonl` and compressed before it is read is read
/// from its `.zst`, streamed or whole.
#[test]
fn a_segment_compressed_after_listing_is_still_read() {
    let (_d, layout, live) = society();
    let (seg, bytes) = segment_of(&layout, &live, &records(6, 0..100));
    let stale = list(&layout, &live).expect("list").remove(0);
    assert_eq!(stale, seg);
    compress(&seg).expect("compress");
    assert_eq!(read_segment(&stale).expect("read"), bytes);
    let lines: Vec<Vec<u8>> = segments::lines(&stale)
        .expect("lines")
        .map(|l| l.expect("line"))
        .collect();
    assert_eq!(lines, records(6, 0..100));
}

#[test]
fn read_objects_all_reads_three_segments_then_the_live_file() {
    let (_d, layout, live) = society();
    let (seg0, _) = segment_of(&layout, &live, &records(5, 0..3));
    compress(&seg0).expect("compress");
    let mut with_junk = records(5, 3..6);
    with_junk.insert(1, b"not json".to_vec());
    with_junk.insert(3, b"[1,2]".to_vec());
    segment_of(&layout, &live, &with_junk);
    let (seg2, bytes2) = segment_of(&layout, &live, &records(5, 6..9));
    compress(&seg2).expect("compress");
    std::fs::write(&seg2.path, &bytes2).expect("crash window: both forms");
    append(&live, &[&rec(5, 9), &rec(5, 10)]);
    OpenOptions::new()
        .append(true)
        .open(&live)
        .and_then(|mut f| f.write_all(br#"{"w":5,"s":11"#))
        .expect("a partial last line");
    assert_eq!(live_seq(&layout, &live).expect("live_seq"), 3);
    let want: Vec<(u32, u64)> = (0..11).map(|s| (5, s)).collect();
    assert_eq!(all_ws(&layout, &live), want);
}

// ------------------------------------------------------------ figures

/// Ratio and time of compressing a 64 MiB segment of envelope lines, and of
/// reading it back. Figures, not assertions (STYLE.md): run in release,
/// `cargo test -p society-core --release --test integration segments::measure -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; prints figures"]
fn measure_compression() {
    for (corpus, text) in [
        ("body {\"n\":…}", false),
        ("body {\"text\":…} (~40-240 chars)", true),
    ] {
        let (_d, layout, live) = society();
        let bytes = envelopes(64 << 20, text);
        std::fs::write(&live, &bytes).expect("write live");
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        let t = Instant::now();
        let seg = rotate(&layout, &live, bytes.len() as u64)
            .expect("rotate")
            .expect("rotated");
        let rotate_t = t.elapsed();
        let t = Instant::now();
        let done = compress(&seg).expect("compress");
        let compress_t = t.elapsed();
        let zlen = len(&done.path);
        let t = Instant::now();
        let n = segments::lines(&done)
            .expect("lines")
            .inspect(|l| assert!(l.is_ok(), "a line: {l:?}"))
            .count();
        let stream_t = t.elapsed();
        assert_eq!(n, lines);
        let t = Instant::now();
        assert_eq!(read_segment(&done).expect("read").len(), bytes.len());
        let read_t = t.elapsed();
        let mib = bytes.len() as f64 / f64::from(1 << 20);
        eprintln!(
            "{corpus}: {mib:.0} MiB, {lines} lines of {} B avg; rotate {rotate_t:.1?}; \
             compress (level {}) {compress_t:.2?} = {:.0} MiB/s -> {:.2} MiB, ratio {:.1}x; \
             stream lines {stream_t:.2?}; read_segment {read_t:.2?}",
            bytes.len() / lines,
            segments::COMPRESSION_LEVEL,
            mib / compress_t.as_secs_f64(),
            zlen as f64 / f64::from(1 << 20),
            bytes.len() as f64 / zlen as f64,
        );
        for level in [1, 3, 6, 9] {
            let t = Instant::now();
            let z = zstd::encode_all(bytes.as_slice(), level).expect("encode");
            eprintln!(
                "    level {level:>2}: {:.2?}, ratio {:.1}x",
                t.elapsed(),
                bytes.len() as f64 / z.len() as f64
            );
        }
    }
}

/// About `size` bytes of envelope lines: real ULIDs, millisecond timestamps,
/// a dozen parties, one message in three in a case, replies pointing back.
fn envelopes(size: usize, text: bool) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "the", "report", "case", "agent", "review", "draft", "is", "ready", "please", "check",
        "numbers", "for", "Q3", "budget", "and", "send", "summary", "to", "team", "failed",
        "retry", "after", "deploy", "ok",
    ];
    let mut rng = 0x5eed_u64;
    let mut next = move || {
        rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (mut out, mut ms, mut last_id) = (Vec::with_capacity(size + 1024), 0u64, String::new());
    while out.len() < size {
        ms += next() % 40;
        let id = society_core::MsgId::generate().to_string();
        let from = format!("a{}", next() % 12);
        let to = if next() % 3 == 0 {
            "orchestrator".to_string()
        } else {
            format!("a{}", next() % 12)
        };
        let kind = ["request", "reply", "event", "report"][(next() % 4) as usize];
        let case = match next() % 3 {
            0 => format!("\"c-{:06}\"", next() % 5000),
            _ => "null".to_string(),
        };
        let reply_to = if kind == "reply" {
            format!("\"{last_id}\"")
        } else {
            "null".to_string()
        };
        let body = if text {
            let n = 8 + next() % 40;
            let words: Vec<&str> = (0..n).map(|_| WORDS[(next() % 24) as usize]).collect();
            format!("{{\"text\":\"{}\"}}", words.join(" "))
        } else {
            format!("{{\"n\":{}}}", next() % 100_000)
        };
        let (s, m) = (ms / 1000, ms % 1000);
        let line = format!(
            "{{\"v\":1,\"id\":\"{id}\",\"ts\":\"2026-11-30T{:02}:{:02}:{:02}.{m:03}Z\",\"from\":\"{from}\",\"to\":\"{to}\",\"type\":\"{kind}\",\"case\":{case},\"reply_to\":{reply_to},\"gen\":{},\"body\":{body}}}\n",
            12 + s / 3600 % 12, s / 60 % 60, s % 60, 1 + next() % 3
        );
        out.extend_from_slice(line.as_bytes());
        last_id = id;
    }
    out
}
