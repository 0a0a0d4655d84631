//! D1 latency: one file change at a time → the page's DOM shows it; and
//! the CLI's peer, `logs -f`, printing an appended activity record.

use super::{epoch_ms, from_ms, Killed, Sizes};
use crate::browser::Browser;
use crate::stats::{summarize, Summary};
use anyhow::Context;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{Envelope, Party};
use society_testkit::Society;
use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Latency {
    /// Inbox append → the row's queue cell shows the new count.
    pub queue: Summary,
    /// Activity append → the row re-rendered.
    pub row: Summary,
    /// Activity append → `logs -f` printed the record.
    pub logs_follow: Summary,
}

/// How long one event may take before the run fails.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Between events, so that one event's burst is over before the next.
const GAP: Duration = Duration::from_millis(50);

/// Installed once per page: records when the armed change shows.
const OBSERVE: &str = r#"
window.__d1 = null;
new MutationObserver((records) => {
  const w = window.__d1;
  if (!w || w.at !== null) return;
  const now = performance.timeOrigin + performance.now();
  if (w.kind === 'queue') {
    const td = document.querySelector(`tr[data-agent="${CSS.escape(w.id)}"] td[data-col="queue"]`);
    if (td && td.textContent === w.want) w.at = now;
  } else if (records.some((r) => r.target.dataset && r.target.dataset.agent === w.id)) {
    w.at = now;
  }
}).observe(document.getElementById('view'), {childList: true, subtree: true});
"#;

/// Arms the observer for one agent; returns the queue it shows now.
const ARM: &str = r#"
const [kind, id] = arguments;
const td = document.querySelector(`tr[data-agent="${CSS.escape(id)}"] td[data-col="queue"]`);
if (!td) return null;
window.__d1 = {kind, id, want: String(Number(td.textContent) + 1), at: null};
return Number(td.textContent);
"#;

/// Resolves with the armed change's time, or null after the limit.
const AWAIT: &str = r#"
const done = arguments[arguments.length - 1];
const limit = performance.now() + arguments[0];
(function poll() {
  const w = window.__d1;
  if (w.at !== null) return done(w.at);
  if (performance.now() > limit) return done(null);
  setTimeout(poll, 2);
})();
"#;

pub fn envelope(to: &str, n: usize) -> Vec<u8> {
    Envelope::new(
        Party::Orchestrator,
        to.parse().expect("agent ids a0.. are valid"),
        "task",
        json!({"n": n}),
    )
    .to_line()
}

fn probe(agent: &str, seq: i64) -> Vec<u8> {
    json!({"ts": society_core::time::now_rfc3339(), "event": "bench_probe", "agent": agent, "seq": seq})
        .to_string()
        .into_bytes()
}

#[derive(Clone, Copy)]
enum Kind {
    Queue,
    Row,
}

/// The page's two latencies; `logs_follow` was measured before.
pub async fn page(
    b: &Browser,
    s: &Society,
    z: &Sizes,
    logs_follow: Summary,
) -> anyhow::Result<Latency> {
    b.run(OBSERVE, vec![]).await?;
    let queue = events(b, s, z, Kind::Queue, 0).await?;
    // Other agents than the queue's, so that no row is changed twice.
    let row = events(b, s, z, Kind::Row, z.events).await?;
    Ok(Latency {
        queue,
        row,
        logs_follow,
    })
}

async fn events(
    b: &Browser,
    s: &Society,
    z: &Sizes,
    kind: Kind,
    first: usize,
) -> anyhow::Result<Summary> {
    let mut samples = Vec::with_capacity(z.events);
    for i in 0..z.events {
        let id = format!("a{}", (first + i) % z.agents);
        let name = match kind {
            Kind::Queue => "queue",
            Kind::Row => "row",
        };
        let shown = b.run(ARM, vec![json!(name), json!(id)]).await?;
        anyhow::ensure!(!shown.is_null(), "no row for {id} in the page");
        let paths = s.agent(&id);
        let t0 = epoch_ms();
        match kind {
            Kind::Queue => append_one(
                &paths.inbox(),
                &envelope(&id, i),
                Durability::Durable,
                1 << 20,
            )?,
            Kind::Row => append_one(
                &paths.activity(),
                &probe(&id, i as i64),
                Durability::Durable,
                1 << 20,
            )?,
        };
        let at = b
            .wait(AWAIT, vec![json!(GIVE_UP.as_millis() as u64)])
            .await?;
        let at = at.as_f64().with_context(|| {
            format!("the page did not show the change to {id} within {GIVE_UP:?}")
        })?;
        samples.push(from_ms(at - t0));
        tokio::time::sleep(GAP).await;
    }
    Ok(summarize(samples))
}

/// `society logs -f --agent ID`: append an activity record → its line.
pub fn logs_follow(s: &Society, id: &str, n: usize) -> anyhow::Result<Summary> {
    let activity = s.agent(id).activity();
    // It watches files that exist: create the log first.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&activity)?;
    let mut child = Killed(
        s.command(&["logs", "-f", "--agent", id, "-n", "0", "-o", "jsonl"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start society logs -f")?,
    );
    let stdout = child.0.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel::<(Instant, Value)>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let at = Instant::now();
            let Ok(line) = line else { return };
            let v = serde_json::from_str(&line).unwrap_or_default();
            if tx.send((at, v)).is_err() {
                return;
            }
        }
    });
    // Until one record comes through, it may still be setting up its watch.
    let mut seq = -1;
    loop {
        append_one(&activity, &probe(id, seq), Durability::Durable, 1 << 20)?;
        if rx.recv_timeout(Duration::from_secs(2)).is_ok() {
            break;
        }
        seq -= 1;
        anyhow::ensure!(seq > -10, "logs -f printed nothing");
    }
    while rx.try_recv().is_ok() {}
    let warm_up = 5;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + warm_up {
        std::thread::sleep(GAP);
        let t = Instant::now();
        append_one(
            &activity,
            &probe(id, i as i64),
            Durability::Durable,
            1 << 20,
        )?;
        let at = loop {
            let (at, v) = rx
                .recv_timeout(GIVE_UP)
                .with_context(|| format!("logs -f did not print record {i}"))?;
            if v["seq"] == json!(i) {
                break at;
            }
        };
        if i >= warm_up {
            samples.push(at - t);
        }
    }
    Ok(summarize(samples))
}
