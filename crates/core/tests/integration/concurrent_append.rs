//! Many real processes appending to one JSONL file at once, some of them killed
//! with SIGKILL at the worst moments (DESIGN.md "Records and the append
//! protocol"; STYLE.md "Tests").
//!
//! The writer processes are this test binary itself: each test re-executes
//! `current_exe()` to run only the ignored test [`append_child_entry`], which
//! reads what to do from `SOCIETY_TEST_CHILD_*` environment variables. Every
//! record is a JSON object `{"pad": ..., "s": seq, "w": writer}` whose exact bytes
//! follow from `(writer, seq)`, so every line read back can be checked against
//! what its writer must have written.

use society_core::jsonl::{read_lines, Appender, Durability};
use society_core::DEFAULT_MAX_RECORD;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const CHILD_TEST: &str = "concurrent_append::append_child_entry";
const ENV_PATH: &str = "SOCIETY_TEST_CHILD_PATH";
const ENV_WRITER: &str = "SOCIETY_TEST_CHILD_WRITER";
/// Records to append; `forever` appends until killed.
const ENV_COUNT: &str = "SOCIETY_TEST_CHILD_COUNT";
/// Start only once this file exists, so all writers contend from the start.
const ENV_GO: &str = "SOCIETY_TEST_CHILD_GO";
/// If set: after the records, take the lock, write half of the next record,
/// create this file, and hang until killed.
const ENV_TEAR_READY: &str = "SOCIETY_TEST_CHILD_TEAR_READY";

/// How long any phase may take before the test fails (a bound, not a pace).
const DEADLINE: Duration = Duration::from_secs(60);
/// A child that outlives this (its parent died without killing it) stops.
const CHILD_LIFETIME: Duration = Duration::from_secs(300);
const SIGKILL: i32 = 9;

// ---------------------------------------------------------------- records

/// SplitMix64: a tiny deterministic generator, the same in every process.
struct Rng(u64);

impl Rng {
    fn new(writer: u32, seq: u64) -> Rng {
        Rng((u64::from(writer) << 40) ^ seq ^ 0x5eed_50c1_e7a1_b2c3)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The end of every record's padding: characters JSON must escape (`"`, `\\`,
/// a newline) and multi-byte UTF-8, then the end of the object.
const TAIL: &str = r#"é😀\"\\\n"}"#;

/// The padding length of record `seq` of `writer` (mostly under 512 bytes, one
/// in sixteen between 4 KiB and 64 KiB), and the generator to fill it from.
fn shape(writer: u32, seq: u64) -> (usize, Rng) {
    let mut rng = Rng::new(writer, seq);
    let pad_len = if rng.next().is_multiple_of(16) {
        4096 + (rng.next() % (64 * 1024 - 4096 - 128)) as usize
    } else {
        (rng.next() % 512) as usize
    };
    (pad_len, rng)
}

fn head(writer: u32, seq: u64) -> String {
    format!(r#"{{"w":{writer},"s":{seq},"pad":""#)
}

/// The exact bytes (without `\n`) of record `seq` of `writer`, a JSON object
/// `{"w":writer,"s":seq,"pad":"<padding>"}`. Built by hand because it is
/// built millions of bytes at a time in debug builds; every reader checks it
/// is valid JSON.
fn record(writer: u32, seq: u64) -> Vec<u8> {
    let (pad_len, mut rng) = shape(writer, seq);
    let head = head(writer, seq);
    let mut line = Vec::with_capacity(head.len() + pad_len + TAIL.len());
    line.extend_from_slice(head.as_bytes());
    let mut left = pad_len;
    while left > 0 {
        let word = rng.next().to_le_bytes();
        let n = left.min(word.len());
        line.extend(word[..n].iter().map(|b| ALPHABET[usize::from(b & 63)]));
        left -= n;
    }
    line.extend_from_slice(TAIL.as_bytes());
    debug_assert_eq!(line.len(), record_len(writer, seq));
    assert!(line.len() < 64 * 1024, "records stay under 64 KiB");
    line
}

/// `record(writer, seq).len()`, without building it.
fn record_len(writer: u32, seq: u64) -> usize {
    head(writer, seq).len() + shape(writer, seq).0 + TAIL.len()
}

/// The hand-built records are the JSON objects they claim to be.
#[test]
fn records_are_valid_json_carrying_writer_and_seq() {
    let mut large = 0;
    for (writer, seq) in (0..4u32).flat_map(|w| (0..200u64).map(move |s| (w, s))) {
        let line = record(writer, seq);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("a record is JSON");
        assert_eq!(v["w"], writer);
        assert_eq!(v["s"], seq);
        let pad = v["pad"].as_str().expect("pad is a string");
        assert!(pad.ends_with("é😀\"\\\n"), "pad ends with the escaped tail");
        assert_ne!(record(writer, seq + 1), line, "records differ");
        large += usize::from(line.len() > 4096);
    }
    assert!(large > 10, "some records are large: {large} of 800");
}

// ---------------------------------------------------------------- the child

/// Entry point of the writer processes. Run directly (`--ignored`) without
/// the environment it does nothing.
#[test]
#[ignore = "entry point of the writer processes spawned by the other tests in this file"]
fn append_child_entry() {
    let Ok(path) = std::env::var(ENV_PATH) else {
        return;
    };
    let born = Instant::now();
    let parent = std::os::unix::process::parent_id();
    let orphaned =
        || std::os::unix::process::parent_id() != parent || born.elapsed() > CHILD_LIFETIME;
    let path = PathBuf::from(path);
    let writer: u32 = env(ENV_WRITER).parse().expect("writer id");
    let count: u64 = match env(ENV_COUNT).as_str() {
        "forever" => u64::MAX,
        n => n.parse().expect("record count"),
    };
    let go = PathBuf::from(env(ENV_GO));
    while !go.exists() {
        assert!(!orphaned(), "writer {writer}: no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }

    let mut appender =
        Appender::open(&path, Durability::Flushed, DEFAULT_MAX_RECORD).expect("open appender");
    for seq in 0..count {
        if orphaned() {
            std::process::exit(2);
        }
        appender.append(&record(writer, seq)).expect("append");
    }

    if let Ok(ready) = std::env::var(ENV_TEAR_READY) {
        // Die mid-line the worst way: holding the lock, half a record written.
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open for tear");
        file.lock().expect("lock");
        let rec = record(writer, count);
        let half = &rec[..rec.len() / 2];
        assert_eq!(
            (&file).write(half).expect("write half"),
            half.len(),
            "one write"
        );
        File::create(&ready).expect("create ready file");
        while !orphaned() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::process::exit(2);
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set for writer processes"))
}

// ---------------------------------------------------------------- the parent

/// Writer processes, killed and reaped on drop so that a failing test leaves
/// no process behind.
struct Writers {
    dir: PathBuf,
    path: PathBuf,
    go: PathBuf,
    kids: Vec<Kid>,
}

struct Kid {
    writer: u32,
    child: Child,
    stderr: PathBuf,
}

enum Count {
    Exactly(u64),
    Forever,
}

impl Writers {
    fn new(dir: &Path) -> Writers {
        Writers {
            dir: dir.to_path_buf(),
            path: dir.join("shared.jsonl"),
            go: dir.join("go"),
            kids: Vec::new(),
        }
    }

    fn spawn(&mut self, writer: u32, count: Count, tear_ready: Option<&Path>) {
        let stderr = self.dir.join(format!("writer-{writer}.stderr"));
        let mut cmd = Command::new(std::env::current_exe().expect("current test binary"));
        cmd.args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_PATH, &self.path)
        .env(ENV_WRITER, writer.to_string())
        .env(
            ENV_COUNT,
            match count {
                Count::Exactly(n) => n.to_string(),
                Count::Forever => "forever".to_string(),
            },
        )
        .env(ENV_GO, &self.go)
        .env_remove(ENV_TEAR_READY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("create stderr file"));
        if let Some(ready) = tear_ready {
            cmd.env(ENV_TEAR_READY, ready);
        }
        let child = cmd.spawn().expect("spawn writer process");
        self.kids.push(Kid {
            writer,
            child,
            stderr,
        });
    }

    fn go(&self) {
        File::create(&self.go).expect("create go file");
    }

    fn kid(&mut self, writer: u32) -> &mut Kid {
        self.kids
            .iter_mut()
            .find(|k| k.writer == writer)
            .expect("known writer")
    }

    /// Waits for `writer` to exit by itself, before the deadline.
    fn wait(&mut self, writer: u32, deadline: Instant) -> ExitStatus {
        let kid = self.kid(writer);
        loop {
            if let Some(status) = kid.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "writer {writer} still running at the deadline; stderr: {}",
                std::fs::read_to_string(&kid.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for `writer` to exit and checks it succeeded.
    fn wait_ok(&mut self, writer: u32, deadline: Instant) {
        let status = self.wait(writer, deadline);
        let kid = self.kid(writer);
        assert!(
            status.success(),
            "writer {writer} failed ({status}); stderr: {}",
            std::fs::read_to_string(&kid.stderr).unwrap_or_default()
        );
    }

    /// SIGKILLs `writer` (which must still be running) and reaps it.
    fn sigkill(&mut self, writer: u32) {
        let kid = self.kid(writer);
        assert!(
            kid.child.try_wait().expect("try_wait").is_none(),
            "writer {writer} must still be running when killed; stderr: {}",
            std::fs::read_to_string(&kid.stderr).unwrap_or_default()
        );
        kid.child.kill().expect("SIGKILL writer");
        let status = self.wait(writer, Instant::now() + DEADLINE);
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "writer {writer} died of SIGKILL"
        );
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        for kid in &mut self.kids {
            if let Ok(None) = kid.child.try_wait() {
                let _ = kid.child.kill();
                let _ = kid.child.wait();
            }
        }
    }
}

/// Polls `cond` every few milliseconds until it holds or the deadline passes.
fn wait_for(what: &str, deadline: Instant, mut cond: impl FnMut() -> bool) {
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The bytes `count` records of `writer` take in the file.
fn bytes_of(writer: u32, count: u64) -> u64 {
    (0..count).map(|s| record_len(writer, s) as u64 + 1).sum()
}

/// One complete line of the shared file, classified.
enum Read {
    Record { writer: u32, seq: u64 },
    Bad { offset: u64, bytes: Vec<u8> },
}

/// Reads the whole file from cursor 0 with `read_lines`, checks it ends in a
/// complete line, and checks every line that parses as JSON is exactly the
/// record its `(w, s)` predicts.
fn read_back(path: &Path) -> Vec<Read> {
    let mut cursor = 0;
    let mut out = Vec::new();
    loop {
        let batch = read_lines(path, cursor, 256 * 1024).expect("read_lines");
        if batch.lines.is_empty() {
            assert_eq!(batch.next, batch.len, "the file ends with a complete line");
            return out;
        }
        for line in batch.lines {
            match serde_json::from_slice::<serde_json::Value>(&line.bytes) {
                Ok(v) => {
                    let writer = v["w"].as_u64().expect("w is a number") as u32;
                    let seq = v["s"].as_u64().expect("s is a number");
                    assert!(
                        line.bytes == record(writer, seq),
                        "line at {} is not exactly record {seq} of writer {writer}",
                        line.offset
                    );
                    out.push(Read::Record { writer, seq });
                }
                Err(_) => out.push(Read::Bad {
                    offset: line.offset,
                    bytes: line.bytes,
                }),
            }
        }
        cursor = batch.next;
    }
}

/// Each writer's sequence numbers, in file order.
fn sequences(reads: &[Read]) -> BTreeMap<u32, Vec<u64>> {
    let mut seqs: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for r in reads {
        if let Read::Record { writer, seq } = r {
            seqs.entry(*writer).or_default().push(*seq);
        }
    }
    seqs
}

/// `writer` wrote records 0..n, each exactly once, in order.
fn assert_complete_sequence(seqs: &BTreeMap<u32, Vec<u64>>, writer: u32, n: u64) {
    let got = seqs.get(&writer).map_or(&[][..], Vec::as_slice);
    let expected: Vec<u64> = (0..n).collect();
    if got != expected.as_slice() {
        let dupes = got.len() - got.iter().collect::<BTreeSet<_>>().len();
        let first_bad = got.iter().zip(&expected).position(|(g, e)| g != e);
        panic!(
            "writer {writer}: {} records read back for {n} written, {dupes} duplicates, first out of place at index {first_bad:?}",
            got.len()
        );
    }
}

/// How many times consecutive records in the file come from different writers.
fn writer_switches(reads: &[Read]) -> usize {
    let writers: Vec<u32> = reads
        .iter()
        .filter_map(|r| match r {
            Read::Record { writer, .. } => Some(*writer),
            Read::Bad { .. } => None,
        })
        .collect();
    writers.windows(2).filter(|w| w[0] != w[1]).count()
}

#[test]
fn eight_processes_append_without_loss_or_interleaving() {
    const WRITERS: u32 = 8;
    const PER_WRITER: u64 = 2_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writers = Writers::new(dir.path());
    for w in 0..WRITERS {
        writers.spawn(w, Count::Exactly(PER_WRITER), None);
    }
    writers.go();
    let deadline = Instant::now() + DEADLINE;
    for w in 0..WRITERS {
        writers.wait_ok(w, deadline);
    }

    let reads = read_back(&writers.path);
    let bad: Vec<u64> = reads
        .iter()
        .filter_map(|r| match r {
            Read::Bad { offset, .. } => Some(*offset),
            Read::Record { .. } => None,
        })
        .collect();
    assert!(
        bad.is_empty(),
        "lines that are not valid JSON at offsets {bad:?}"
    );
    assert_eq!(
        reads.len() as u64,
        u64::from(WRITERS) * PER_WRITER,
        "total records"
    );
    let seqs = sequences(&reads);
    assert_eq!(
        seqs.len(),
        WRITERS as usize,
        "every writer's records are there"
    );
    for w in 0..WRITERS {
        assert_complete_sequence(&seqs, w, PER_WRITER);
    }
    let expected_len: u64 = (0..WRITERS).map(|w| bytes_of(w, PER_WRITER)).sum();
    assert_eq!(
        file_len(&writers.path),
        expected_len,
        "not one byte more or less"
    );
    // Not an assertion about speed: proof the writers really did run at once.
    assert!(
        writer_switches(&reads) >= WRITERS as usize,
        "the writers' records are not interleaved at all: they did not run concurrently"
    );
}

#[test]
fn sigkilled_writers_mid_run_lose_nothing_of_the_others() {
    const SURVIVORS: u32 = 6;
    const PER_WRITER: u64 = 2_000;
    const VICTIMS: [u32; 2] = [100, 101];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writers = Writers::new(dir.path());
    for w in 0..SURVIVORS {
        writers.spawn(w, Count::Exactly(PER_WRITER), None);
    }
    for v in VICTIMS {
        writers.spawn(v, Count::Forever, None);
    }
    writers.go();

    // Kill the victims one after the other while the others are still writing:
    // the file is still shorter than what the survivors alone will write.
    let survivors_bytes: u64 = (0..SURVIVORS).map(|w| bytes_of(w, PER_WRITER)).sum();
    let deadline = Instant::now() + DEADLINE;
    for (victim, percent) in VICTIMS.into_iter().zip([15, 35]) {
        let threshold = survivors_bytes * percent / 100;
        wait_for("the file to grow", deadline, || {
            file_len(&writers.path) >= threshold
        });
        writers.sigkill(victim);
    }
    for w in 0..SURVIVORS {
        writers.wait_ok(w, deadline);
    }

    let reads = read_back(&writers.path);
    let seqs = sequences(&reads);
    for w in 0..SURVIVORS {
        assert_complete_sequence(&seqs, w, PER_WRITER);
    }
    // A victim's records are a gap-free prefix of its sequence; anything else
    // is at most one torn fragment per victim: a prefix of its next record.
    let mut torn: BTreeMap<u32, u64> = BTreeMap::new();
    for v in VICTIMS {
        let n = seqs.get(&v).map_or(0, Vec::len) as u64;
        assert!(n > 0, "victim {v} wrote something before it was killed");
        assert_complete_sequence(&seqs, v, n);
    }
    for r in &reads {
        if let Read::Bad { offset, bytes } = r {
            let owner = VICTIMS.into_iter().find(|v| {
                let next = record(*v, seqs.get(v).map_or(0, Vec::len) as u64);
                !bytes.is_empty() && bytes.len() < next.len() && next.starts_with(bytes)
            });
            let Some(v) = owner else {
                panic!(
                    "line at {offset} is neither a record nor a torn fragment of a victim: {:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                );
            };
            *torn.entry(v).or_default() += 1;
        }
    }
    assert!(
        torn.values().all(|n| *n <= 1),
        "at most one torn fragment per victim: {torn:?}"
    );
    eprintln!("torn fragments left by SIGKILLed writers: {torn:?}");
}

/// The victim holds the lock with half a record written when it is killed;
/// the other writers are blocked on that lock at that moment.
#[test]
fn writer_killed_holding_the_lock_mid_line_leaves_one_bad_line() {
    const SURVIVORS: u32 = 4;
    const PER_WRITER: u64 = 500;
    const VICTIM: u32 = 100;
    const VICTIM_RECORDS: u64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("victim-ready");
    let mut writers = Writers::new(dir.path());
    writers.spawn(VICTIM, Count::Exactly(VICTIM_RECORDS), Some(&ready));
    writers.go();
    let deadline = Instant::now() + DEADLINE;
    wait_for("the victim to hold the lock mid-line", deadline, || {
        ready.exists()
    });

    for w in 0..SURVIVORS {
        writers.spawn(w, Count::Exactly(PER_WRITER), None);
    }
    // Kill the victim only once every survivor is blocked on its lock, seen in
    // /proc/locks as a waiting ("->") FLOCK entry on the file's inode.
    let ino = std::fs::metadata(&writers.path).expect("stat").ino();
    let survivor_pids: BTreeSet<u32> = writers
        .kids
        .iter()
        .filter(|k| k.writer != VICTIM)
        .map(|k| k.child.id())
        .collect();
    while !blocked_on(ino).is_superset(&survivor_pids) {
        for kid in writers.kids.iter_mut().filter(|k| k.writer != VICTIM) {
            if let Some(status) = kid.child.try_wait().expect("try_wait") {
                panic!(
                    "writer {} exited ({status}) while the victim held the lock",
                    kid.writer
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the survivors to block on the lock"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    writers.sigkill(VICTIM);
    for w in 0..SURVIVORS {
        writers.wait_ok(w, deadline);
    }

    let reads = read_back(&writers.path);
    let at = VICTIM_RECORDS as usize;
    for (i, r) in reads[..at].iter().enumerate() {
        assert!(
            matches!(r, Read::Record { writer: VICTIM, seq } if *seq == i as u64),
            "the victim's {VICTIM_RECORDS} records come first"
        );
    }
    let rec = record(VICTIM, VICTIM_RECORDS);
    match &reads[at] {
        Read::Bad { offset, bytes } => {
            assert_eq!(
                *offset,
                bytes_of(VICTIM, VICTIM_RECORDS),
                "the fragment follows them"
            );
            assert_eq!(
                bytes.as_slice(),
                &rec[..rec.len() / 2],
                "the fragment is the half record"
            );
        }
        Read::Record { writer, seq } => {
            panic!("expected the torn fragment, found record {seq} of {writer}")
        }
    }
    let rest = &reads[at + 1..];
    assert!(
        rest.iter()
            .all(|r| matches!(r, Read::Record { writer, .. } if *writer != VICTIM)),
        "after the fragment only the survivors' whole records"
    );
    let seqs = sequences(rest);
    for w in 0..SURVIVORS {
        assert_complete_sequence(&seqs, w, PER_WRITER);
    }
    let expected_len = bytes_of(VICTIM, VICTIM_RECORDS)
        + rec.len() as u64 / 2
        + 1
        + (0..SURVIVORS).map(|w| bytes_of(w, PER_WRITER)).sum::<u64>();
    assert_eq!(
        file_len(&writers.path),
        expected_len,
        "exactly one repair newline was added"
    );
}

/// Pids waiting for a `flock` on inode `ino`, from `/proc/locks`
/// (`1: -> FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<ino> 0 EOF`).
fn blocked_on(ino: u64) -> BTreeSet<u32> {
    let locks = std::fs::read_to_string("/proc/locks").expect("read /proc/locks");
    let suffix = format!(":{ino}");
    locks
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            match fields.as_slice() {
                [_, "->", "FLOCK", _, _, pid, dev_ino, ..] if dev_ino.ends_with(&suffix) => {
                    pid.parse().ok()
                }
                _ => None,
            }
        })
        .collect()
}
