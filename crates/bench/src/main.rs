//! `society-bench`: measures society against peers on the same machine in
//! the same run, and writes BENCHMARKS.md. Run through `scripts/bench.sh`,
//! which installs the peers (Redis, s6, NATS) and builds in release mode.
//! D1 (the dashboard) needs Chromium and chromedriver; without them its
//! rows say why. F1 (federation) needs `nats-server`.

mod browser;
mod dashboard;
mod federation;
mod machine;
mod peers;
mod society;
mod stats;

use clap::Parser;
use peers::Worker;
use stats::{ms, rate, Summary};
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// The society binary (default: next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Smaller sizes, for a quick look (the report says so).
    #[arg(long)]
    quick: bool,
    /// The command line to print in the report.
    #[arg(long, default_value = "scripts/bench.sh")]
    command: String,
    /// Run only these benchmarks (`B1,B2,...,R1,D1,F1`); the report then holds only them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The `nats-server` binary of the JetStream peer.
    #[arg(long, env = "NATS_SERVER", default_value = "nats-server")]
    nats_server: PathBuf,
}

struct Sizes {
    latency: usize,
    burst: usize,
    runs: usize,
    kills: usize,
    s6_kills: usize,
    agents: usize,
    idle: Duration,
    folders: [usize; 2],
    growth: [usize; 2],
    retention: usize,
    /// D1's soak: how long the page watches the inboxes grow.
    soak: Duration,
    /// F1: round trips one at a time each way, and messages sent at once.
    federation: [usize; 2],
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match args.bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("society"),
    };
    anyhow::ensure!(
        bin.exists(),
        "no society binary at {} (build it, or pass --bin)",
        bin.display()
    );
    let z = if args.quick {
        Sizes {
            latency: 200,
            burst: 2_000,
            runs: 3,
            kills: 30,
            s6_kills: 5,
            agents: 200,
            idle: Duration::from_secs(5),
            folders: [1_000, 10_000],
            growth: [1_000, 100_000],
            retention: 100_000,
            soak: Duration::from_secs(30),
            federation: [100, 1_000],
        }
    } else {
        Sizes {
            latency: 1_000,
            burst: 20_000,
            runs: 3,
            kills: 100,
            s6_kills: 20,
            agents: 1_000,
            idle: Duration::from_secs(10),
            folders: [1_000, 10_000],
            growth: [1_000, 1_000_000],
            retention: 1_000_000,
            soak: Duration::from_secs(180),
            federation: [300, 5_000],
        }
    };
    let step = |name: &str| eprintln!("· {name}");
    // (target, measured, met? — None when a peer it compares with is missing)
    let mut targets: Vec<(String, String, Option<bool>)> = Vec::new();
    let ms_of = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut row = |id: &str, what: String, durable: String, fast: String, peer: String| {
        rows.push([id.into(), what, durable, fast, peer])
    };

    let want =
        |id: &str| args.only.is_empty() || args.only.iter().any(|o| o.eq_ignore_ascii_case(id));
    let pp = |s: Summary| format!("p50 {} · p99 {}", ms(s.p50), ms(s.p99));
    // The peers of B1 and B2, started once for both. Err holds why one is
    // missing; the report shows it in place of the peer's figures.
    let peers_on = want("B1") || want("B2");
    let redis_always = if peers_on {
        available("Redis always", peers::Redis::start("always"))
    } else {
        Err("not run".into())
    };
    let redis_everysec = if peers_on {
        available("Redis everysec", peers::Redis::start("everysec"))
    } else {
        Err("not run".into())
    };
    let nats = if peers_on {
        available("NATS JetStream", peers::Nats::start(&args.nats_server))
    } else {
        Err("not run".into())
    };
    let secs = |x: f64| ms(Duration::from_secs_f64(x));

    if want("B1") {
        step("B1 round-trip latency");
        let b1d = society::b1(&bin, "durable", z.latency);
        let b1f = society::b1(&bin, "flushed", z.latency);
        let ra = measure(&redis_always, |r| r.latency(z.latency));
        let re = measure(&redis_everysec, |r| r.latency(z.latency));
        let js = measure(&nats, |n| n.latency(z.latency));
        targets.push(versus(
            "B1 durable p50 ≤ Redis always round trip",
            b1d.p50.as_secs_f64(),
            &ra.as_ref()
                .map(|s| s.p50.as_secs_f64())
                .map_err(Clone::clone),
            secs,
            Goal::NoSlowerThan,
        ));
        targets.push((
            "B1 durable p99 ≤ 2 ms".into(),
            ms(b1d.p99),
            Some(ms_of(b1d.p99) <= 2.0),
        ));
        let peer = |r: &Result<Summary, String>| r.as_ref().map_or_else(Clone::clone, |s| pp(*s));
        row(
            "B1",
            format!(
                "round trip orchestrator → echo → orchestrator, one at a time (n={})",
                z.latency
            ),
            pp(b1d),
            pp(b1f),
            format!(
                "Redis always: {} · Redis everysec: {} · NATS JetStream: {}",
                peer(&ra),
                peer(&re),
                peer(&js)
            ),
        );
    }

    if want("G1") {
        step("G1 governance overhead");
        let (plain, decider) = society::g1(&bin, z.latency);
        let ratio = plain_ratio(decider.p50, plain.p50);
        targets.push((
            "G1 autonomous decision ≤ 2× a plain message (p50)".into(),
            format!("{ratio:.2}×"),
            Some(ratio <= 2.0),
        ));
        row(
            "G1",
            format!(
                "round trip to a script agent, one at a time (n={}): a plain reply vs an autonomous decision whose `then` replies (durable)",
                z.latency
            ),
            format!("plain {} / decision {}", pp(plain), pp(decider)),
            format!("{ratio:.2}× (p50)"),
            "—".into(),
        );
    }

    if want("B2") {
        step("B2 throughput");
        let b2d = society::b2(&bin, "durable", 1, z.burst, z.runs);
        let b2f = society::b2(&bin, "flushed", 1, z.burst, z.runs);
        let runs = z.runs;
        let single = measure(&redis_always, |r| {
            median_of(runs, || r.throughput(z.burst, Worker::OneAtATime))
        });
        let batching = measure(&redis_always, |r| {
            median_of(runs, || r.throughput(z.burst, Worker::Batching))
        });
        let everysec_batching = measure(&redis_everysec, |r| {
            median_of(runs, || r.throughput(z.burst, Worker::Batching))
        });
        let js = measure(&nats, |n| median_of(runs, || n.throughput(z.burst)));
        let b2d100 = society::b2(&bin, "durable", 100, z.burst, z.runs);
        let b2f100 = society::b2(&bin, "flushed", 100, z.burst, z.runs);
        for (agents, ours, factor) in [("one agent", b2d, 1.0), ("100 agents", b2d100, 1.5)] {
            targets.push(versus(
                format!("B2 durable, {agents} ≥ {factor:.1}× Redis always (batching worker)"),
                ours,
                &batching,
                rate,
                Goal::AtLeastTimes(factor),
            ));
            targets.push(versus(
                format!("B2 durable, {agents} ≥ {factor:.1}× NATS JetStream (batching worker)"),
                ours,
                &js,
                rate,
                Goal::AtLeastTimes(factor),
            ));
        }
        let peer = |r: &Result<f64, String>| r.as_ref().map_or_else(Clone::clone, |x| rate(*x));
        row(
            "B2",
            format!(
                "{} messages in flight to one echo agent (median of {})",
                z.burst, z.runs
            ),
            rate(b2d),
            rate(b2f),
            format!(
                "Redis always, one at a time: {} · Redis always, batching: {} · Redis everysec, batching: {} · NATS JetStream, batching: {}",
                peer(&single),
                peer(&batching),
                peer(&everysec_batching),
                peer(&js)
            ),
        );
        row(
            "B2",
            format!(
                "{} messages in flight over 100 echo agents (median of {})",
                z.burst, z.runs
            ),
            rate(b2d100),
            rate(b2f100),
            "compared with the single batching worker above".into(),
        );
    }

    drop((redis_always, redis_everysec, nats));

    if want("B3") {
        step("B3 recovery");
        let b3d = society::b3(&bin, "durable", z.kills);
        let b3f = society::b3(&bin, "flushed", z.kills);
        for (name, s) in [("durable", b3d), ("flushed", b3f)] {
            targets.push((
                format!("B3 p50 ≤ 20 ms ({name})"),
                ms(s.p50),
                Some(ms_of(s.p50) <= 20.0),
            ));
        }
        let s6 = peers::s6_restart(z.s6_kills);
        row(
            "B3",
            format!(
                "SIGKILL under load → next message handled by the new process ({} kills)",
                z.kills
            ),
            pp(b3d),
            pp(b3f),
            format!(
                "s6-supervise restart ({} kills): {}",
                z.s6_kills,
                s6.map(pp)
                    .unwrap_or_else(|| "n/a (s6 not installed)".into())
            ),
        );
    }

    if want("B4") {
        step("B4 start-up");
        let b4 = society::b4(&bin, z.agents, z.idle);
        targets.push((
            format!("B4 {} agents ready ≤ 5 s", z.agents),
            format!("{:.2} s", b4.ready.as_secs_f64()),
            Some(b4.ready <= Duration::from_secs(5)),
        ));
        targets.push((
            "B4 ≤ 5 MiB RSS per idle agent".into(),
            format!(
                "{:.1} MiB (PSS {:.1} MiB)",
                b4.rss_kib_per_agent / 1024.0,
                b4.pss_kib_per_agent / 1024.0
            ),
            Some(b4.rss_kib_per_agent <= 5.0 * 1024.0),
        ));
        targets.push((
            format!("B4 ≤ 2 % of one core with {} idle agents", z.agents),
            format!("{:.1} %", b4.idle_cpu_percent),
            Some(b4.idle_cpu_percent <= 2.0),
        ));
        row(
            "B4",
            format!("{} keep-alive agents: start to all idle", z.agents),
            format!("{:.2} s", b4.ready.as_secs_f64()),
            "-".into(),
            "-".into(),
        );
        row(
            "B4",
            "memory per idle agent: RSS (PSS, shared pages split)".into(),
            format!(
                "{:.1} MiB ({:.1} MiB)",
                b4.rss_kib_per_agent / 1024.0,
                b4.pss_kib_per_agent / 1024.0
            ),
            "-".into(),
            "-".into(),
        );
        row(
            "B4",
            format!(
                "CPU of supervisor + {} idle agents ({}s window)",
                z.agents,
                z.idle.as_secs()
            ),
            format!("{:.1} % of one core", b4.idle_cpu_percent),
            "-".into(),
            "-".into(),
        );
    }

    if want("B4h") {
        step("B4h start-up in an organisation");
        let h = society::b4_hierarchy(&bin, z.agents, z.idle);
        row(
            "B4h",
            format!(
                "{} keep-alive agents in a 3-level hierarchy: start to all idle",
                z.agents
            ),
            format!("{:.2} s", h.ready.as_secs_f64()),
            "-".into(),
            "-".into(),
        );
        row(
            "B4h",
            "memory per idle agent in the hierarchy: RSS (PSS)".into(),
            format!(
                "{:.1} MiB ({:.1} MiB)",
                h.rss_kib_per_agent / 1024.0,
                h.pss_kib_per_agent / 1024.0
            ),
            "-".into(),
            "-".into(),
        );
        row(
            "B4h",
            format!(
                "CPU of supervisor + {} idle agents in the hierarchy ({}s window)",
                z.agents,
                z.idle.as_secs()
            ),
            format!("{:.1} % of one core", h.idle_cpu_percent),
            "-".into(),
            "-".into(),
        );
    }

    if want("B5") {
        step("B5 status");
        for n in z.folders {
            let b5 = society::b5(&bin, n, 10);
            let limit = if n <= 1_000 { 100.0 } else { 1_000.0 };
            targets.push((
                format!("B5 status ≤ {limit} ms at {n} folders"),
                ms(b5.p50),
                Some(ms_of(b5.p50) <= limit),
            ));
            row(
                "B5",
                format!("`society status --json` with {n} agent folders (10 runs)"),
                pp(b5),
                "-".into(),
                "-".into(),
            );
        }
    }

    if want("B6") {
        step("B6 growth");
        let mut growth = Vec::new();
        for n in z.growth {
            let b6 = society::b6(&bin, n, z.latency / 2);
            growth.push(b6.p50);
            row(
                "B6",
                format!("round trip with {n} consumed lines in the inbox"),
                pp(b6),
                "-".into(),
                "-".into(),
            );
        }

        if let [small, large] = growth[..] {
            let ratio = ms_of(large) / ms_of(small);
            targets.push((
                "B6 flat (p50 with the large inbox ≤ 1.25 × the small)".into(),
                format!("× {ratio:.2}"),
                Some(ratio <= 1.25),
            ));
        }
    }

    if want("R1") {
        step("R1 retention");
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        let off = society::r1(&bin, z.retention, 20_000, false);
        let on = society::r1(&bin, z.retention, 20_000, true);
        row(
        "R1",
        format!(
            "live bytes on disk after {} messages through one echo agent (bursts of 20,000): retention off → at its defaults (64 MiB / 1 M lines)",
            z.retention
        ),
        format!(
            "{} (largest {} {}) → {} (largest {} {}; archive/ {} compressed)",
            mib(off.live),
            off.largest.0,
            mib(off.largest.1),
            mib(on.live),
            on.largest.0,
            mib(on.largest.1),
            mib(on.archive)
        ),
        "-".into(),
        format!("{:.0} → {:.0} msg/s over the run", off.rate, on.rate),
    );
        targets.push((
            format!(
                "R1 every live file under 100 MiB after {} messages",
                z.retention
            ),
            format!("largest {} ({})", mib(on.largest.1), on.largest.0),
            Some(on.largest.1 < 100 << 20),
        ));
    }

    if want("D1") {
        step("D1 dashboard");
        let d = dashboard::Sizes {
            agents: 1_000,
            loads: 10,
            events: 100,
            soak: z.soak,
            soak_rate: 50.0,
        };
        match dashboard::d1(&bin, &d) {
            Ok(m) => {
                rows.extend(dashboard::rows(&m, &d));
                targets.extend(dashboard::targets(&m, &d));
            }
            Err(e) => {
                eprintln!("  D1 failed: {e:#}");
                row(
                    "D1",
                    "dashboard in headless Chromium".into(),
                    format!("n/a ({e:#})"),
                    "-".into(),
                    "-".into(),
                );
                targets.push(("D1 dashboard".into(), format!("n/a ({e:#})"), None));
            }
        }
    }

    if want("F1") {
        step("F1 federation");
        let f = federation::Sizes {
            latency: z.federation[0],
            traced: 100,
            burst: z.federation[1],
            runs: z.runs,
        };
        match federation::f1(&bin, &args.nats_server, &f) {
            Ok(m) => rows.extend(federation::rows(&m, &f)),
            Err(e) => {
                eprintln!("  F1 failed: {e:#}");
                rows.push([
                    "F1".into(),
                    "round trip to an agent of another society over NATS JetStream".into(),
                    format!("n/a ({e:#})"),
                    "-".into(),
                    "-".into(),
                ]);
            }
        }
    }

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Produced by `{}`{} — one run, peers measured in the same run on the same machine.\n",
        args.command,
        if args.quick { " (quick sizes)" } else { "" }
    )?;
    writeln!(md, "## Machine\n")?;
    for (k, v) in machine::facts(&args.nats_server) {
        writeln!(md, "- {k}: {v}")?;
    }
    writeln!(md, "\n## Results\n")?;
    writeln!(md, "`durable` is society's default (fsync of inboxes, outboxes, the settled checkpoints and the router's); `flushed` its fastest safe setting (`durability = \"flushed\"`: safe against any process crash, not against power loss).\n")?;
    writeln!(
        md,
        "| | measure | society durable | society flushed | peer |\n|---|---|---|---|---|"
    )?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4]
        )?;
    }
    writeln!(md, "\n## Targets\n")?;
    writeln!(md, "| target | measured | |\n|---|---|---|")?;
    for (t, m, ok) in &targets {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        writeln!(md, "| {t} | {m} | {verdict} |")?;
    }
    writeln!(md, "\nWhere the time goes: a durable round trip pays three fsyncs in sequence — the sender's inbox append, the agent's outbox append (the commit point of its outputs; its checkpoint goes to `checkpoint.live.json` without fsync and to the fsynced `checkpoint.json` when it settles), the router's append to the orchestrator inbox (no write-ahead record of its own: its destinations' lengths are in the saved checkpoint, `ahead`, and its cursor is saved within 50 ms) — where it paid about ten before format 2; Redis `always` pays one per pass of its event loop (one per command one at a time, one per pipeline under load), and JetStream with `sync_interval: always` one per stored message. Under load (B2) society is CPU-bound: every message is a JSON envelope parsed and written by the agent, parsed, planned and written again by the router, with an activity record on each side; a Redis worker's batch of 256 is one pipelined command stream into one process. RSS counts the pages of the shared binary each process has mapped: an agent idle for a second gives its mapped file pages back (`MADV_DONTNEED` on its code and never-written read-only mappings; they stay in the page cache, shared), so RSS is what the idle loop touches again; PSS splits the shared pages between the processes.")?;
    writeln!(md, "\n## Method\n")?;
    writeln!(md, "- Peers, each started by the bench on a free 127.0.0.1 port with a temp dir, removed afterwards. Redis: `redis-server` with the append-only file on and `appendfsync always` (fsync before replying, once per pass of the event loop) or `appendfsync everysec`; requests on the list `req`, replies on `resp`; client and worker each on one connection (crate `redis`). NATS: `nats-server -c` with JetStream on, `store_dir` in the temp dir and `sync_interval: always` (the bench checks `/varz` reports `sync_always`); requests on subject `req` stored in stream `REQ`, replies on `resp` stored in stream `RESP`, both file storage, so that both directions are on disk before they are acknowledged, as society keeps the request in the agent's inbox and the reply in the orchestrator inbox. The NATS worker is a durable pull consumer on `REQ` (ack policy all) pulling up to 256 at a time; it takes what has arrived (blocking for the first, up to 256), publishes every reply with a JetStream publish, awaits their acks, then acks the batch's last request; the client reads `RESP` with an ordered consumer (ephemeral, no acks; a reply is delivered only once stored). Client and worker each have their own connection (crate `async-nats`, one two-thread tokio runtime); the streams are created empty for each run.")?;
    writeln!(md, "- B1/B6: the client appends one envelope to the agent's inbox (as `society send` does) and polls the orchestrator inbox's length every 20 µs; the first 20 round trips are warm-up. Redis: the client LPUSHes one request to `req` and BRPOPs `resp`; the worker BRPOPs `req` and LPUSHes the reply to `resp`. NATS: the client publishes one request and awaits its ack, the worker handles it (a batch of one), the client receives the reply. Same count and warm-up for the peers.")?;
    writeln!(md, "- B2: the messages are appended to the inbox(es) in one write; the clock stops when every reply is in the orchestrator inbox. Redis: the client sends every request as one pipeline of LPUSH. \"One at a time\": the B1 worker, and the client BRPOPs the replies one by one. \"Batching\": the worker BLMPOPs `req` (RIGHT, COUNT 256, blocking for the first) and LPUSHes the batch's replies in one pipeline; the client drains `resp` with BLMPOP COUNT 256. NATS: the client publishes every request back to back with all of their acks in flight (`max_ack_inflight` = the burst), awaits the acks while it reads every reply, and the clock stops at the last reply. The 100-agent society figures are compared with the same single-worker peer figures (one Redis list or one JetStream consumer, one batching worker), not with 100 peer workers.")?;
    writeln!(md, "- B3: a keep-alive agent whose brain takes 2 ms per message, 30 messages queued before each kill; SIGKILL while it reports `running`; the clock stops at the first `message_handled` of a newer generation (restart + resume of the in-flight message). Restart policy for the run: `backoff_initial = 1ms`, `burst = 100000` (a measurement of restart speed, not of the crash-loop rule). s6: `s6-supervise` on a `sleep` service, from SIGKILL to the new pid in `s6-svstat`.")?;
    writeln!(md, "- B4: CPU is utime+stime of the supervisor and every agent over the window, after a 2 s settle. Memory is sampled at the end of the window, every agent idle since start-up (well over the second after which it gives back its mapped file pages): RSS is the sum of `VmRSS` of the agent processes divided by their number, PSS from `smaps_rollup` (which splits the shared pages between the processes that share them). Before format 2 it was sampled as the last agent turned idle.")?;
    writeln!(md, "- B5: dormant folders (config + checkpoint); wall time of the whole `society status --json` process.")?;
    writeln!(md, "- R1: bursts of 20,000 envelopes appended to one echo agent's inbox, each waited for in the orchestrator inbox (followed across its rotations); after the last, 2.5 s for the supervisor's scans, then the apparent size of every file under `.society-agent/` outside `archive/` (live) and inside it (segments, zstd level 3). \"Off\" sets `rotate_bytes` and `rotate_lines` out of reach. B6 runs with retention off, since it measures reading past a long consumed prefix.")?;
    writeln!(md, "{}", dashboard::METHOD)?;
    writeln!(md, "{}", federation::METHOD)?;
    std::fs::write(&args.out, md)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// A started peer, or why it is missing (also said on stderr at once).
fn available<P>(name: &str, started: anyhow::Result<P>) -> Result<P, String> {
    started.map_err(|e| {
        eprintln!("  {name} unavailable: {e:#}");
        format!("n/a ({e:#})")
    })
}

/// One figure from a peer, or why there is none.
fn measure<P, T>(
    peer: &Result<P, String>,
    run: impl FnOnce(&P) -> anyhow::Result<T>,
) -> Result<T, String> {
    let peer = peer.as_ref().map_err(Clone::clone)?;
    run(peer).map_err(|e| {
        eprintln!("  peer measurement failed: {e:#}");
        format!("failed ({e:#})")
    })
}

/// Median of `runs` throughput measurements.
fn median_of(runs: usize, mut run: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    Ok(stats::median(
        (0..runs).map(|_| run()).collect::<anyhow::Result<_>>()?,
    ))
}

/// What a target asks of society's figure against a peer's.
enum Goal {
    /// A time no longer than the peer's.
    NoSlowerThan,
    /// A rate at least this many times the peer's.
    AtLeastTimes(f64),
}

/// A target row comparing society (`ours`) with a peer: both figures and
/// their ratio, ours / theirs; "not measured" when the peer is missing.
fn versus(
    target: impl Into<String>,
    ours: f64,
    theirs: &Result<f64, String>,
    unit: impl Fn(f64) -> String,
    goal: Goal,
) -> (String, String, Option<bool>) {
    match theirs {
        Ok(theirs) => {
            let ratio = ours / theirs;
            let met = match goal {
                Goal::NoSlowerThan => ours <= *theirs,
                Goal::AtLeastTimes(factor) => ratio >= factor,
            };
            (
                target.into(),
                format!("{} vs {} ({ratio:.2}×)", unit(ours), unit(*theirs)),
                Some(met),
            )
        }
        Err(why) => (target.into(), format!("{} vs {why}", unit(ours)), None),
    }
}

/// `a / b` of two durations.
fn plain_ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
