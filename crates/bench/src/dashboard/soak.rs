//! D1 soak: the page open on `/agents` while the inboxes grow at a steady
//! rate; every update it shows is logged, its heap read at both ends, and
//! at the end it must show what `status --json` says.

use super::latency::envelope;
use super::sse::Listener;
use super::{epoch_ms, from_ms, paint, Server, Sizes};
use crate::browser::Browser;
use crate::stats::{summarize, Summary};
use anyhow::Context;
use serde_json::Value;
use society_core::jsonl::{append_one, Durability};
use society_testkit::Society;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub struct Soak {
    pub secs: f64,
    pub appends: usize,
    /// Append → its count in the row's queue cell, over every append seen.
    pub latency: Option<Summary>,
    /// Appends whose count the page never showed.
    pub unseen: usize,
    /// Append → the row's event read from the server by the harness (a
    /// second subscriber): the server's share of `latency`.
    pub server: Option<Summary>,
    /// `usedJSHeapSize` after `gc()`, bytes: (start, end).
    pub heap: (u64, u64),
    /// Elements in the document: (start, end).
    pub nodes: (u64, u64),
    /// Full refetches of the view during the soak (`view-ready` marks).
    pub refetches: u64,
    pub server_rss_kib: (u64, u64),
    pub renderer_rss_kib: (u64, u64),
    /// How long each append's `write` took (no fsync: see [`soak`]).
    pub write: Summary,
    /// From the last append until every row matched `status --json` (when
    /// the last row's final update was drawn).
    pub caught_up: Option<Duration>,
    /// Rows that still differed when it gave up.
    pub stale: usize,
}

/// Logs `[agent, queue, time]` for every row the view (re)draws.
const RECORD: &str = r#"
window.__d1seen = [];
new MutationObserver((records) => {
  const now = performance.timeOrigin + performance.now();
  for (const r of records) {
    const rows = r.target.dataset && r.target.dataset.agent ? [r.target]
      : r.target.id === 'view' ? [...document.querySelectorAll('table#agents tbody tr')] : [];
    for (const tr of rows) {
      const td = tr.querySelector('td[data-col="queue"]');
      if (td) window.__d1seen.push([tr.dataset.agent, td.textContent, now]);
    }
  }
}).observe(document.getElementById('view'), {childList: true, subtree: true});
"#;

const DRAIN: &str = "const s = window.__d1seen; window.__d1seen = []; return s;";

const HEAP: &str = r#"
if (typeof gc !== 'function') return null;
gc(); gc();
return {heap: performance.memory.usedJSHeapSize, nodes: document.getElementsByTagName('*').length,
  marks: performance.getEntriesByName('view-ready').length};
"#;

const QUEUES: &str = r#"
const o = {};
for (const tr of document.querySelectorAll('table#agents tbody tr'))
  o[tr.dataset.agent] = tr.querySelector('td[data-col="queue"]').textContent;
return o;
"#;

type Seen = HashMap<(String, String), f64>;
/// `(agent, the queue it should show, when it was appended)` per append.
type Sent = Vec<(String, u64, f64)>;

async fn drain(b: &Browser, seen: &mut Seen) -> anyhow::Result<()> {
    let v = b.run(DRAIN, vec![]).await?;
    for e in v.as_array().into_iter().flatten() {
        if let (Some(id), Some(q), Some(at)) = (e[0].as_str(), e[1].as_str(), e[2].as_f64()) {
            seen.entry((id.into(), q.into())).or_insert(at);
        }
    }
    Ok(())
}

async fn heap(b: &Browser) -> anyhow::Result<(u64, u64, u64)> {
    let v = b.run(HEAP, vec![]).await?;
    anyhow::ensure!(
        !v.is_null(),
        "no gc() in the page (Chromium without --js-flags=--expose-gc?)"
    );
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok((n("heap"), n("nodes"), n("marks")))
}

/// The page's queue column: agent → text.
async fn page_queues(b: &Browser) -> anyhow::Result<BTreeMap<String, String>> {
    let v = b.run(QUEUES, vec![]).await?;
    Ok(serde_json::from_value(v)?)
}

/// `society status --json`: agent → inbox_pending.
fn status_queues(s: &Society) -> anyhow::Result<BTreeMap<String, String>> {
    let out = s.command(&["status", "--json"]).output()?;
    anyhow::ensure!(out.status.success(), "society status failed");
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["agents"]
        .as_array()
        .context("no agents in status --json")?
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["inbox_pending"].to_string(),
            )
        })
        .collect())
}

/// The appends are flushed, not fsynced: the page reacts to the write, and
/// fsyncs on a shared disk would make the appender miss its schedule.
pub async fn soak(b: &Browser, s: &Society, server: &Server, z: &Sizes) -> anyhow::Result<Soak> {
    paint::load(b, &server.url, z.agents).await?;
    b.run(RECORD, vec![]).await?;
    let listener = Listener::start(&server.url)?;
    let (heap0, nodes0, marks0) = heap(b).await?;
    let rss0 = server.rss_kib();
    let renderer0 = b.renderer_rss_kib();
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (id, q) in page_queues(b).await? {
        counts.insert(id, q.parse().context("a queue cell that is no number")?);
    }
    let total = (z.soak.as_secs_f64() * z.soak_rate) as usize;
    let (agents, rate) = (z.agents, z.soak_rate);
    let inboxes: Vec<_> = (0..agents)
        .map(|i| s.agent(&format!("a{i}")).inbox())
        .collect();
    let start = Instant::now();
    let appender = std::thread::spawn(move || -> anyhow::Result<(Sent, Vec<Duration>)> {
        let mut sent = Vec::with_capacity(total);
        let mut writes = Vec::with_capacity(total);
        for k in 0..total {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let id = format!("a{}", k % agents);
            let count = counts
                .get_mut(&id)
                .context("an agent the page did not show")?;
            *count += 1;
            let line = envelope(&id, k);
            let t = Instant::now();
            let t0 = epoch_ms();
            append_one(&inboxes[k % agents], &line, Durability::Flushed, 1 << 20)?;
            writes.push(t.elapsed());
            sent.push((id, *count, t0));
        }
        Ok((sent, writes))
    });
    let mut seen = Seen::new();
    let mut drained = Instant::now();
    while !appender.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if drained.elapsed() >= Duration::from_secs(2) {
            drain(b, &mut seen).await?;
            drained = Instant::now();
        }
    }
    let (sent, writes) = appender
        .join()
        .map_err(|_| anyhow::anyhow!("the appender panicked"))??;
    let secs = start.elapsed().as_secs_f64();
    let last = sent.last().map_or(epoch_ms(), |x| x.2);

    // Caught up: the page's column equals the files' (checked every 20 ms).
    let truth = status_queues(s)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (checked, stale) = loop {
        let page = page_queues(b).await?;
        let stale = truth
            .iter()
            .filter(|(k, v)| page.get(*k) != Some(v))
            .count();
        if stale == 0 {
            break (Some(epoch_ms()), 0);
        }
        if Instant::now() > deadline {
            break (None, stale);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drain(b, &mut seen).await?;
    // When it became so: the last of the rows' final updates, as the
    // observer saw them (the check above only bounds it).
    let caught_up = checked.map(|checked| {
        let finals: HashMap<&str, u64> = sent.iter().map(|(id, c, _)| (id.as_str(), *c)).collect();
        let at = finals
            .iter()
            .map(|(id, c)| seen.get(&(id.to_string(), c.to_string())).copied())
            .collect::<Option<Vec<f64>>>()
            .and_then(|ts| ts.into_iter().reduce(f64::max))
            .unwrap_or(checked);
        from_ms(at - last)
    });
    let mut samples = Vec::new();
    let mut unseen = 0;
    for (id, count, t0) in &sent {
        match seen.get(&(id.clone(), count.to_string())) {
            Some(at) => samples.push(from_ms(at - t0)),
            None => unseen += 1,
        }
    }
    let mut heard = Seen::new();
    for (id, q, at) in listener.take() {
        heard.entry((id, q)).or_insert(at);
    }
    let from_server: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, count, t0)| {
            Some(from_ms(heard.get(&(id.clone(), count.to_string()))? - t0))
        })
        .collect();
    let (heap1, nodes1, marks1) = heap(b).await?;
    let rss1 = server.rss_kib();
    let renderer1 = b.renderer_rss_kib();
    Ok(Soak {
        secs,
        appends: sent.len(),
        latency: (!samples.is_empty()).then(|| summarize(samples)),
        unseen,
        server: (!from_server.is_empty()).then(|| summarize(from_server)),
        heap: (heap0, heap1),
        nodes: (nodes0, nodes1),
        refetches: marks1.saturating_sub(marks0),
        server_rss_kib: (rss0, rss1),
        renderer_rss_kib: (renderer0, renderer1),
        write: summarize(writes),
        caught_up,
        stale,
    })
}
