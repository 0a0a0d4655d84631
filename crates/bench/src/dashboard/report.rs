//! D1 in the report: its rows, its targets, how it was measured.

use super::{Sizes, D1};
use crate::stats::{ms, Summary};
use std::time::Duration;

/// The report's rows: `[id, measure, society, -, peer]`.
pub fn rows(d: &D1, z: &Sizes) -> Vec<[String; 5]> {
    let pp = |s: Summary| format!("p50 {} · p99 {}", ms(s.p50), ms(s.p99));
    let ratio = d.paint.table.p50.as_secs_f64() / d.status.p50.as_secs_f64().max(1e-9);
    let o = &d.soak;
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let bytes = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let n = z.agents;
    vec![
        [
            "D1".into(),
            format!("dashboard `/agents` with {n} agent folders, headless Chromium ({} loads): first-contentful-paint", z.loads),
            pp(d.paint.fcp),
            "-".into(),
            "-".into(),
        ],
        [
            "D1".into(),
            format!("… until the table holds all {n} rows (`view-ready`, from navigation start); within it, `/api/status` asked for at, and its request to last byte"),
            format!("{} · asked at {} · took {}", pp(d.paint.table), pp(d.paint.api_sent), pp(d.paint.api_took)),
            "-".into(),
            format!("`society status --json` (whole process, {} runs): {} · page {ratio:.1}× (p50)", z.loads, pp(d.status)),
        ],
        [
            "D1".into(),
            format!("inbox append (as `send`) → the row's queue cell changed in the page's DOM (n={}, one at a time)", z.events),
            pp(d.latency.queue),
            "-".into(),
            format!("activity append → `society logs -f --agent` printed it: {}", pp(d.latency.logs_follow)),
        ],
        [
            "D1".into(),
            format!("activity append → the row re-rendered in the page (the peer's event; n={})", z.events),
            pp(d.latency.row),
            "-".into(),
            format!("(page clock − harness clock {:+.2} ms ± {:.2})", d.skew.0, d.skew.1),
        ],
        [
            "D1".into(),
            format!(
                "{:.0} s of inbox appends at {:.0}/s round-robin over the {n} agents ({} appends): append → queue cell, under that load",
                o.secs, z.soak_rate, o.appends
            ),
            format!("{} ({} never shown)", o.latency.map_or("none seen".into(), pp), o.unseen),
            "-".into(),
            format!(
                "of which append → the row's event out of the server (read by the harness): {} · the append's write itself: {}",
                o.server.map_or("none heard".into(), pp),
                pp(o.write)
            ),
        ],
        [
            "D1".into(),
            "… start → end: the page's JS heap after `gc()`, its DOM elements, the renderer process's RSS, full refetches of the view; the dashboard server's RSS".into(),
            format!(
                "heap {} → {} · {} → {} elements · renderer {} → {} · {} refetches · server {} → {}",
                bytes(o.heap.0),
                bytes(o.heap.1),
                o.nodes.0,
                o.nodes.1,
                mib(o.renderer_rss_kib.0),
                mib(o.renderer_rss_kib.1),
                o.refetches,
                mib(o.server_rss_kib.0),
                mib(o.server_rss_kib.1)
            ),
            "-".into(),
            "-".into(),
        ],
        [
            "D1".into(),
            format!("… after the last append: every one of the {n} rows shows the queue `status --json` reports"),
            match o.caught_up {
                Some(t) => format!("yes, within {}", ms(t)),
                None => format!("**no**: {} rows still differ after 10 s", o.stale),
            },
            "-".into(),
            "-".into(),
        ],
        [
            "D1".into(),
            "the machine meanwhile (shared with other work): 1-min load average, CPU and I/O pressure (`some`, avg60), at D1's start → end".into(),
            format!("{} → {}", d.load.0, d.load.1),
            "-".into(),
            "-".into(),
        ],
    ]
}

/// The targets: (target, measured, met).
pub fn targets(d: &D1, z: &Sizes) -> Vec<(String, String, Option<bool>)> {
    let ms_of = |t: Duration| t.as_secs_f64() * 1000.0;
    let n = z.agents;
    let o = &d.soak;
    let growth = o.heap.1 as f64 / (o.heap.0 as f64).max(1.0);
    vec![
        (
            format!("D1 first-contentful-paint ≤ 200 ms with {n} agents (p50)"),
            ms(d.paint.fcp.p50),
            Some(ms_of(d.paint.fcp.p50) <= 200.0),
        ),
        (
            format!("D1 all {n} rows shown ≤ 500 ms (p50)"),
            ms(d.paint.table.p50),
            Some(ms_of(d.paint.table.p50) <= 500.0),
        ),
        (
            "D1 file change → page ≤ 100 ms (p50), ≤ 250 ms (p99)".into(),
            format!("{} / {}", ms(d.latency.queue.p50), ms(d.latency.queue.p99)),
            Some(ms_of(d.latency.queue.p50) <= 100.0 && ms_of(d.latency.queue.p99) <= 250.0),
        ),
        (
            format!(
                "D1 under {:.0} changes/s: p99 ≤ 250 ms, none lost, caught up ≤ 1 s after the last",
                z.soak_rate
            ),
            format!(
                "p99 {} · {} never shown · {}",
                o.latency.map_or("–".into(), |s| ms(s.p99)),
                o.unseen,
                o.caught_up.map_or("not caught up".into(), ms)
            ),
            Some(
                o.latency.is_some_and(|s| ms_of(s.p99) <= 250.0)
                    && o.unseen == 0
                    && o.caught_up.is_some_and(|t| t <= Duration::from_secs(1)),
            ),
        ),
        (
            format!(
                "D1 JS heap after {:.0} s of changes ≤ 1.5× its start (after `gc()`)",
                o.secs
            ),
            format!("× {growth:.2}"),
            Some(growth <= 1.5),
        ),
    ]
}

pub const METHOD: &str = "- D1: the society of B5 (dormant folders, no supervisor: only the harness writes) with `society dashboard --listen 127.0.0.1:0`, and Chromium (headless, `--js-flags=--expose-gc --enable-precise-memory-info`, a fresh profile) driven by chromedriver through WebDriver (crate `fantoccini`). First paint: `about:blank`, then `/agents`, one warm-up load then the counted ones; first-contentful-paint from `performance.getEntriesByType('paint')`, the table from the page's `performance.mark('view-ready')` (set where `load()` sets `body[data-ready]`, after the view rendered every row), both from navigation start; the peer is the wall time of a whole `society status --json` process over the same folders. Latency: with the page open and its event stream connected, a MutationObserver on `#view` records `performance.timeOrigin + performance.now()` when the armed agent's row shows the new queue (or, for the activity event, when its `<tr>` gets new cells); the clock starts at the harness's `SystemTime` just before `append_one` (durable, as `society send` appends), one event at a time, each on another agent, 50 ms apart. The page's and the harness's readings of the clock are compared by bracketing one with the other (the row says by how much they differ). `logs -f` runs alone before the dashboard starts: `society logs -f --agent a0 -n 0 -o jsonl`, an activity record appended (durable) to `a0/activity.jsonl`, the clock stops when its line is read from the pipe; 5 warm-up records. `logs -f` does not show inbox appends, so its event is an activity append; the page's row answers both (its queue cell shows the inbox, and any change in the folder re-renders the row). Soak: a fresh load of `/agents`; appends to the inboxes on a fixed schedule, round-robin over every agent, written without fsync (the page reacts to the write; fsyncs on a shared disk would make the appender miss its schedule); the observer logs every row update (drained every 2 s), matched to the appends; a second subscriber to `/api/events` in the harness (plain HTTP/1.1) stamps each row event as it leaves the server, the server's share; heap is `performance.memory.usedJSHeapSize` after two `gc()`; renderer RSS is the largest Chromium renderer process (the tab's); at the end the page's queue column is compared with `society status --json` every 20 ms for up to 10 s, and the catch-up time is when the last row's final update was drawn.";
