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
//! round trip's time goes; it is not the latency figure (polling eight
//! files costs CPU the societies share).

mod report;

pub use report::{rows, METHOD};

use crate::peers::Nats;
use crate::society::{file_len, wait_idle, LineCounter};
use crate::stats::{median, summarize, Summary};
use serde_json::json;
use society_core::jsonl::{append_one, read_lines, Appender, Durability};
use society_core::{Envelope, Layout, Party};
use society_testkit::{wait_until, Society};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
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
}

fn federated(name: &str, url: &str, agents: &str) -> String {
    format!(
        "[society]\nname = \"{name}\"\n\n[federation]\nnats_url = \"{url}\"\n\n[defaults]\ndurability = \"durable\"\nidle_exit = \"10m\"\n{agents}"
    )
}

fn task(to: &str, n: usize) -> Envelope {
    Envelope::new(
        Party::Orchestrator,
        to.parse().expect("a valid address"),
        "task",
        json!({"n": n}),
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
        let env = task(to, i);
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
    let batch: Vec<Envelope> = (0..n).map(|i| task(to, i)).collect();
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
    let answered: HashSet<String> = lines
        .lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(&l.bytes).ok())
        .filter(|v| v["type"] == "reply")
        .filter_map(|v| v["reply_to"].as_str().map(String::from))
        .collect();
    let missing = sent.iter().filter(|id| !answered.contains(*id)).count();
    assert!(
        missing == 0,
        "{missing} of {} messages have no reply in {}",
        sent.len(),
        inbox.display()
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
        let env = task("echo@north", i);
        let t = Instant::now();
        append_one(
            &south.supervisor_inbox(),
            &env.to_line(),
            Durability::Durable,
            1 << 20,
        )
        .expect("append");
        let appended = t.elapsed();
        // Taken after the append, so that south's supervisor inbox grows
        // for this stage only with the reply.
        let base: Vec<u64> = stages.iter().map(|(_, p)| file_len(p)).collect();
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
            let at = at.expect("every file grew before the last");
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

/// F1: cross-society round trips and throughput through `nats-server`
/// (the binary `server`), beside the same in one society.
pub fn f1(bin: &Path, server: &Path, z: &Sizes) -> anyhow::Result<F1> {
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
    })
}
