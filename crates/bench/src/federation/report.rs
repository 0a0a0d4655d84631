//! F1 in the report: its rows and how it was measured.

use super::{Sizes, F1};
use crate::stats::{ms, rate, Summary};

/// The report's rows: `[id, measure, society, -, peer]`.
pub fn rows(f: &F1, z: &Sizes) -> Vec<[String; 5]> {
    let pp = |s: Summary| format!("p50 {} · p99 {}", ms(s.p50), ms(s.p99));
    let slower = f.cross.p50.as_secs_f64() / f.local.p50.as_secs_f64().max(1e-9);
    let share = f.cross_rate / f.local_rate.max(1e-9);
    let hops = f
        .hops
        .iter()
        .map(|(name, s)| format!("{name} {}", pp(*s)))
        .collect::<Vec<_>>()
        .join(" · ");
    vec![
        [
            "F1".into(),
            format!(
                "round trip south's orchestrator → `echo@north` → south's orchestrator through both supervisors' bridges and NATS JetStream, one at a time (n={})",
                z.latency
            ),
            pp(f.cross),
            "-".into(),
            format!(
                "local, north's orchestrator → the same echo agent (B1's round trip): {} · cross {slower:.1}× local (p50)",
                pp(f.local)
            ),
        ],
        [
            "F1".into(),
            format!(
                "{} messages sent at once to `echo@north`, until every reply is in south's orchestrator inbox (median of {})",
                z.burst, z.runs
            ),
            rate(f.cross_rate),
            "-".into(),
            format!(
                "local, to the same echo agent: {} · cross {share:.2}× local",
                rate(f.local_rate)
            ),
        ],
        [
            "F1".into(),
            format!(
                "… where a cross round trip's time goes (a separate pass, n={}, every file on the way polled; the whole round trip then {}): each hop, from the previous file's growth to the next's",
                z.traced,
                pp(f.traced)
            ),
            hops,
            "-".into(),
            "-".into(),
        ],
        [
            "F1".into(),
            format!(
                "… where a burst's time goes (one more burst of {}, every file on the way counted every 1 ms): its first → its last line in each, from the client's append",
                z.burst
            ),
            f.timeline
                .iter()
                .map(|(name, [first, last])| format!("{name} {} → {}", ms(*first), ms(*last)))
                .collect::<Vec<_>>()
                .join(" · "),
            "-".into(),
            "-".into(),
        ],
        [
            "F1".into(),
            "the machine meanwhile (shared with other work): 1-min load average, CPU and I/O pressure (`some`, avg60), at F1's start → end".into(),
            format!("{} → {}", f.load.0, f.load.1),
            "-".into(),
            "-".into(),
        ],
    ]
}

pub const METHOD: &str = "- F1: a `nats-server` of its own (as the NATS peer: JetStream, file storage, `sync_interval: always`, checked in `/varz`, on a free loopback port, its store in a temp dir) and two societies in temp dirs, both `durability = \"durable\"`, with `[society] name` and `[federation] nats_url` pointing at it: `north` with one keep-alive `echo` agent, `south` with none. Every message has a body of its own (north's guard treats `orchestrator@south` as any sender: a fourth identical body within its flood window would be refused, and the sender then blocked). The clock starts before the client's append and stops when south's orchestrator inbox grows (polled every 20 µs, 20 warm-up round trips), as in B1. Cross: the client appends the envelope (orchestrator → `echo@north`) to south's supervisor inbox, durable, as `society send echo@north` forwards it (`client::send::forward`); south's router writes it to `outbound.jsonl`, south's bridge publishes it to `society.north.in` (acknowledged once stored), north's bridge fetches it and appends it to north's supervisor inbox, north's router delivers it to `echo`, whose reply goes the same way back. Local: north's orchestrator to the same agent through the same supervisor, the envelope appended to the agent's inbox (B1's method). Throughput: the messages appended in one write (to south's supervisor inbox, or to the agent's inbox), the clock stopped when as many lines are in the orchestrator inbox, local and cross alternating, median of the runs; at the end every message sent is checked to have its reply (`reply_to`). The traced pass, after the timed ones: the same cross round trips with the length of every file on the message's way polled after the client's append (south's `outbound.jsonl`, north's supervisor inbox, `echo`'s inbox and outbox, north's `outbound.jsonl`, south's supervisor inbox, south's orchestrator inbox); a hop's time is from the previous file's growth to its own.";
