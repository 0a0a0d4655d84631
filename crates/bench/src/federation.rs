//! F1: two societies linked through a real `nats-server` (JetStream, file
//! storage, `sync_interval: always`, on loopback): `north` runs an `echo`
//! agent, `south` none. South's orchestrator sends to `echo@north` the way
//! `society send` forwards (one durable append to south's supervisor inbox);
//! the reply travels back through both bridges into south's orchestrator
//! inbox. Beside it, in the same run, the local figure: north's
//! orchestrator sends to the same echo agent in its own society (B1's
//! method, one durable append to the agent's inbox), through the same
//! supervisor.
//!
//! A separate traced pass polls the length of every file the message
//! passes through on its way, so the report can say where a cross-society
//! round trip's time goes; it is not the latency figure (polling seven
//! files costs CPU the societies share). A traced burst does the same for
//! throughput.

mod report;

pub use report::{rows, METHOD};

use crate::dashboard::machine_load;
use crate::peers::Nats;
use crate::society::{file_len, wait_idle, LineCounter};
use crate::stats::{median, summarize, Summary};
use serde_json::json;
use society_core::jsonl::{append_one, read_lines, Appender, Durability};
use society_core::{Envelope, Layout, Party};
use society_testkit::{wait_until, Society};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const WARM_UP: usize = 20;

pub struct Sizes {
    /// Round trips one at a time, each way (after [`WARM_UP`]).
    pub latency: usize,
    /// Round trips of the traced pass.
    pub traced: usize,
    /// Messages sent at once, and how many times (the median is kept).
    pub burst: usize,
    pub runs: usize,
}

/// F1 in numbers.
pub struct F1 {
    pub cross: Summary,
    pub local: Summary,
    /// Messages per second, all replies in.
    pub cross_rate: f64,
    pub local_rate: f64,
    /// The traced pass: each hop's share of a cross round trip, in order.
    pub hops: Vec<(&'static str, Summary)>,
    /// The traced pass's whole round trips (with the polling's cost).
    pub traced: Summary,
    /// A traced burst: when each file on the way got its first and its
    /// last line, from the client's append.
    pub timeline: Vec<(&'static str, [Duration; 2])>,
    /// The machine's load at F1's start and end (it may be shared).
    pub load: (String, String),
}

fn federated(name: &str, url: &str, agents: &str) -> String {
    format!(
        "[society]\nname = \"{name}\"\n\n[federation]\nnats_url = \"{url}\"\n\n[defaults]\ndurability = \"durable\"\nidle_exit = \"10m\"\n{agents}"
    )
}

/// A task with a body of its own: north's guard treats `orchestrator@south`
/// as any sender, and refuses a fourth identical message within its flood
/// window (then blocks the sender), so no two bodies in a run are alike.
fn task(to: &str) -> Envelope {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    Envelope::new(
        Party::Orchestrator,
        to.parse().expect("a valid address"),
        "task",
        json!({"n": SEQ.fetch_add(1, Ordering::Relaxed)}),
    )
}

/// Whether a society's bridge says it is connected (`federation.json`).
fn connected(layout: &Layout) -> bool {
    std::fs::read(layout.federation_state())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["connected"] == true)
}

/// Sequential round trips: `send` appends one envelope (the clock starts
/// before it), the reply's line in `replies` stops it. Returns the
/// summary and the ids sent.
fn round_trips(
    n: usize,
    replies: &Path,
    mut send: impl FnMut(&Envelope),
    to: &str,
) -> (Summary, Vec<String>) {
    let mut samples = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n + WARM_UP);
    for i in 0..n + WARM_UP {
        let env = task(to);
        ids.push(env.id.to_string());
        let before = file_len(replies);
        let t = Instant::now();
        send(&env);
        let deadline = t + T;
        while file_len(replies) <= before {
            assert!(Instant::now() < deadline, "no reply from {to}");
            std::thread::sleep(Duration::from_micros(20));
        }
        if i >= WARM_UP {
            samples.push(t.elapsed());
        }
    }
    (summarize(samples), ids)
}

/// `n` messages appended in one write to `inbox`; messages per second
/// until `n` more lines are in `replies`.
fn burst(n: usize, inbox: &Path, replies: &Path, to: &str) -> (f64, Vec<String>) {
    let batch: Vec<Envelope> = (0..n).map(|_| task(to)).collect();
    let lines: Vec<Vec<u8>> = batch.iter().map(Envelope::to_line).collect();
    let mut counter = LineCounter::new(replies.to_path_buf());
    let t = Instant::now();
    Appender::open(inbox, Durability::Durable, usize::MAX)
        .expect("open the inbox")
        .append_batch(&lines)
        .expect("append");
    counter.wait_for(n);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    (rate, batch.iter().map(|e| e.id.to_string()).collect())
}

/// Every id in `sent` has its reply (`reply_to`) in `inbox`: the lines
/// counted were the replies, not something else.
fn all_answered(inbox: &Path, sent: &[String]) {
    let lines = read_lines(inbox, 0, usize::MAX >> 1).expect("read the orchestrator inbox");
    let records: Vec<serde_json::Value> = lines
        .lines
        .iter()
        .filter_map(|l| serde_json::from_slice(&l.bytes).ok())
        .collect();
    let answered: HashSet<&str> = records
        .iter()
        .filter(|v| v["type"] == "reply")
        .filter_map(|v| v["reply_to"].as_str())
        .collect();
    let missing: Vec<&String> = sent
        .iter()
        .filter(|id| !answered.contains(id.as_str()))
        .collect();
    let other = records.iter().find(|v| v["type"] != "reply");
    assert!(
        missing.is_empty(),
        "{} of {} messages have no reply in {} ({} lines; the first missing {:?}; a line that is no reply: {other:?})",
        missing.len(),
        sent.len(),
        inbox.display(),
        records.len(),
        missing.first()
    );
}

/// The files a cross-society round trip passes through, in order, each
/// named by the hop that ends when it grows.
fn path_of_a_message(south: &Layout, north: &Layout) -> Vec<(&'static str, PathBuf)> {
    let echo = north.agent(&"echo".parse().expect("id"));
    vec![
        ("south router → outbound.jsonl", south.federation_outbound()),
        (
            "publish → north's bridge → north supervisor inbox",
            north.supervisor_inbox(),
        ),
        ("north router → echo's inbox", echo.inbox()),
        ("echo agent → its outbox", echo.outbox()),
        ("north router → outbound.jsonl", north.federation_outbound()),
        (
            "publish → south's bridge → south supervisor inbox",
            south.supervisor_inbox(),
        ),
        (
            "south router → orchestrator inbox",
            south.orchestrator_inbox(),
        ),
    ]
}

/// Round trips one at a time with every file on the way polled: each
/// hop's time (from the previous file's growth), and the whole.
fn traced(n: usize, south: &Layout, north: &Layout) -> (Vec<(&'static str, Summary)>, Summary) {
    let stages = path_of_a_message(south, north);
    let mut hops: Vec<Vec<Duration>> = vec![Vec::new(); stages.len() + 1];
    let mut whole = Vec::new();
    for i in 0..n + WARM_UP {
        let line = task("echo@north").to_line();
        // Taken before the append (the first hop may be over before the
        // append returns); south's supervisor inbox counts as grown only
        // past the client's own line.
        let base: Vec<u64> = stages
            .iter()
            .map(|(_, p)| {
                file_len(p)
                    + if *p == south.supervisor_inbox() {
                        line.len() as u64 + 1
                    } else {
                        0
                    }
            })
            .collect();
        let t = Instant::now();
        append_one(
            &south.supervisor_inbox(),
            &line,
            Durability::Durable,
            1 << 20,
        )
        .expect("append");
        let appended = t.elapsed();
        let mut seen: Vec<Option<Duration>> = vec![None; stages.len()];
        let deadline = t + T;
        while seen.last().is_some_and(Option::is_none) {
            assert!(Instant::now() < deadline, "no reply in the traced pass");
            for (k, (_, p)) in stages.iter().enumerate() {
                if seen[k].is_none() && file_len(p) > base[k] {
                    seen[k] = Some(t.elapsed());
                }
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        if i < WARM_UP {
            continue;
        }
        let mut previous = appended;
        hops[0].push(appended);
        for (k, at) in seen.iter().enumerate() {
            let Some(at) = *at else {
                panic!(
                    "{} did not grow before the reply came",
                    stages[k].1.display()
                )
            };
            hops[k + 1].push(at.saturating_sub(previous));
            previous = previous.max(at);
        }
        whole.push(previous);
    }
    let mut names = vec!["client's durable append to south supervisor inbox"];
    names.extend(stages.iter().map(|(name, _)| *name));
    let hops = names
        .into_iter()
        .zip(hops)
        .map(|(name, samples)| (name, summarize(samples)))
        .collect();
    (hops, summarize(whole))
}

/// One burst of `n` to `echo@north` with the line count of every file on
/// the way polled every millisecond: when each saw its first and its last
/// (`n`th) line, from the client's append.
fn traced_burst(n: usize, south: &Layout, north: &Layout) -> Vec<(&'static str, [Duration; 2])> {
    let stages = path_of_a_message(south, north);
    let mut counters: Vec<LineCounter> = stages
        .iter()
        .map(|(_, p)| LineCounter::new(p.clone()))
        .collect();
    // South's supervisor inbox holds the client's `n` lines before the replies.
    let skip: Vec<usize> = stages
        .iter()
        .map(|(_, p)| if *p == south.supervisor_inbox() { n } else { 0 })
        .collect();
    let lines: Vec<Vec<u8>> = (0..n).map(|_| task("echo@north").to_line()).collect();
    let mut seen: Vec<[Option<Duration>; 2]> = vec![[None; 2]; stages.len()];
    let t = Instant::now();
    Appender::open(&south.supervisor_inbox(), Durability::Durable, usize::MAX)
        .expect("open the inbox")
        .append_batch(&lines)
        .expect("append");
    while seen.last().is_some_and(|s| s[1].is_none()) {
        assert!(t.elapsed() < T, "the traced burst did not come back");
        for (k, c) in counters.iter_mut().enumerate() {
            let got = c.poll().saturating_sub(skip[k]);
            if got > 0 && seen[k][0].is_none() {
                seen[k][0] = Some(t.elapsed());
            }
            if got >= n && seen[k][1].is_none() {
                seen[k][1] = Some(t.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stages
        .iter()
        .zip(seen)
        .map(|((name, _), [first, last])| {
            let last = last.unwrap_or_default();
            (*name, [first.unwrap_or(last), last])
        })
        .collect()
}

/// F1: cross-society round trips and throughput through `nats-server`
/// (the binary `server`), beside the same in one society.
pub fn f1(bin: &Path, server: &Path, z: &Sizes) -> anyhow::Result<F1> {
    let load = machine_load();
    let nats = Nats::start(server)?;
    let url = nats.url();
    let mut north = Society::new(
        bin,
        &federated(
            "north",
            url,
            "[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n",
        ),
    );
    let mut south = Society::new(bin, &federated("south", url, ""));
    north.start_supervisor();
    south.start_supervisor();
    let (n_layout, s_layout) = (north.layout(), south.layout());
    wait_idle(&north, "echo");
    wait_until(T, "both bridges connected", || {
        (connected(&n_layout) && connected(&s_layout)).then_some(())
    });

    let echo_inbox = north.agent("echo").inbox();
    let local_replies = n_layout.orchestrator_inbox();
    let cross_replies = s_layout.orchestrator_inbox();
    let forward = |env: &Envelope| {
        // `society send echo@north` (client::send::forward): one durable
        // append to the supervisor's inbox.
        append_one(
            &s_layout.supervisor_inbox(),
            &env.to_line(),
            Durability::Durable,
            1 << 20,
        )
        .expect("append to south's supervisor inbox");
    };
    let deliver = |env: &Envelope| {
        append_one(&echo_inbox, &env.to_line(), Durability::Durable, 1 << 20)
            .expect("append to echo's inbox");
    };

    let (local, mut local_sent) = round_trips(z.latency, &local_replies, deliver, "echo");
    let (cross, mut cross_sent) = round_trips(z.latency, &cross_replies, forward, "echo@north");
    let (hops, traced) = traced(z.traced, &s_layout, &n_layout);

    let (mut local_rates, mut cross_rates) = (Vec::new(), Vec::new());
    for _ in 0..z.runs {
        let (r, ids) = burst(z.burst, &echo_inbox, &local_replies, "echo");
        local_rates.push(r);
        local_sent.extend(ids);
        let (r, ids) = burst(
            z.burst,
            &s_layout.supervisor_inbox(),
            &cross_replies,
            "echo@north",
        );
        cross_rates.push(r);
        cross_sent.extend(ids);
    }
    let timeline = traced_burst(z.burst, &s_layout, &n_layout);
    all_answered(&local_replies, &local_sent);
    all_answered(&cross_replies, &cross_sent);
    south.stop_supervisor();
    north.stop_supervisor();
    drop(nats);
    Ok(F1 {
        cross,
        local,
        cross_rate: median(cross_rates),
        local_rate: median(local_rates),
        hops,
        traced,
        timeline,
        load: (load, machine_load()),
    })
}
