//! D1: `society dashboard` over 1,000 agent folders (B5's dormant society)
//! in headless Chromium, each figure beside the CLI doing the same job in
//! the same run:
//!
//! - first paint of `/agents` (first-contentful-paint, and the table holding
//!   every row: the page's `view-ready` mark), beside `status --json`;
//! - a file change → the page's DOM showing it (a MutationObserver records
//!   `performance.timeOrigin + performance.now()`; the harness's
//!   `SystemTime` before the append: one machine clock, whose two readings
//!   are compared once in [`skew`]), beside `logs -f` printing an appended
//!   activity record;
//! - the page over minutes of changes: its JS heap after `gc()`, its DOM,
//!   the server's RSS, and whether it ends showing what the files say.
//!
//! The society has no supervisor: nothing but the harness writes, so every
//! change the page shows is one the harness made.

mod latency;
mod paint;
mod report;
mod soak;
mod sse;

pub use report::{rows, targets, METHOD};

use crate::browser::Browser;
use crate::society;
use crate::stats::Summary;
use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use society_testkit::Society;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Sizes {
    pub agents: usize,
    /// Page loads for first paint (after one warm-up load), and runs of
    /// `status --json`.
    pub loads: usize,
    /// Events, one at a time, for each latency.
    pub events: usize,
    /// How long the soak appends, and how many appends a second.
    pub soak: Duration,
    pub soak_rate: f64,
}

pub struct D1 {
    pub paint: paint::Paint,
    pub status: Summary,
    pub latency: latency::Latency,
    pub soak: soak::Soak,
    /// Page clock − harness clock, in ms, and the bound of that reading.
    pub skew: (f64, f64),
    /// What else the machine was doing, at the start and the end.
    pub load: (String, String),
}

pub fn d1(bin: &Path, z: &Sizes) -> anyhow::Result<D1> {
    let load_before = machine_load();
    let s = society::dormant_society(bin, z.agents);
    let status = society::status_times(&s, z.loads);
    // Alone, before the dashboard and the browser run.
    let logs_follow = latency::logs_follow(&s, "a0", z.events)?;
    let server = Server::start(&s)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    runtime.block_on(async {
        let browser = Browser::start().await?;
        let measured = async {
            let paint = paint::first_paint(&browser, &server.url, z.agents, z.loads).await?;
            let skew = skew(&browser).await?;
            let latency = latency::page(&browser, &s, z, logs_follow).await?;
            let soak = soak::soak(&browser, &s, &server, z).await?;
            anyhow::Ok(D1 {
                paint,
                status,
                latency,
                soak,
                skew,
                load: (load_before, machine_load()),
            })
        }
        .await;
        browser.close().await;
        measured
    })
}

/// `society dashboard --listen 127.0.0.1:0`, killed when dropped.
pub struct Server {
    child: Killed,
    pub url: String,
}

impl Server {
    fn start(s: &Society) -> anyhow::Result<Server> {
        let mut child = Killed(
            s.command(&["dashboard", "--listen", "127.0.0.1:0"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("failed to start society dashboard")?,
        );
        let stdout = child.0.stdout.take().context("no stdout")?;
        let mut first = String::new();
        let mut lines = std::io::BufReader::new(stdout);
        lines.read_line(&mut first)?;
        let url = first
            .trim()
            .strip_prefix("society dashboard: ")
            .with_context(|| format!("unexpected first line {first:?}"))?
            .to_string();
        // Keep reading whatever else it prints, so it never meets a closed pipe.
        std::thread::spawn(move || for _ in lines.lines() {});
        Ok(Server { child, url })
    }

    /// Resident set size of the server process, KiB.
    pub fn rss_kib(&self) -> u64 {
        society::status_kib(self.child.0.id(), "VmRSS:")
    }
}

/// A child process, SIGTERMed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// The 1-minute load average and the CPU and I/O pressure (share of the
/// last minute some task waited), for a shared machine's report.
pub(crate) fn machine_load() -> String {
    let first = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "?".into())
    };
    let pressure = |kind: &str| {
        std::fs::read_to_string(format!("/proc/pressure/{kind}"))
            .ok()
            .and_then(|t| {
                let some = t.lines().find(|l| l.starts_with("some"))?;
                let avg = some
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("avg60="))?;
                Some(format!("{avg} %"))
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "load {} · CPU pressure {} · I/O pressure {}",
        first("/proc/loadavg"),
        pressure("cpu"),
        pressure("io")
    )
}

/// The harness's clock: milliseconds since the Unix epoch.
pub fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A duration from milliseconds; below zero (clock skew) counts as zero.
pub fn from_ms(x: f64) -> Duration {
    Duration::from_secs_f64(x.max(0.0) / 1000.0)
}

/// How far the page's clock (`performance.timeOrigin + performance.now()`)
/// reads from ours: the reading bracketed tightest of 10 by our clock
/// before and after the WebDriver call. (page − ours, ± half the bracket).
async fn skew(b: &Browser) -> anyhow::Result<(f64, f64)> {
    let mut best = (0.0, f64::INFINITY);
    for _ in 0..10 {
        let before = epoch_ms();
        let page = b
            .run("return performance.timeOrigin + performance.now();", vec![])
            .await?
            .as_f64()
            .context("no page clock")?;
        let after = epoch_ms();
        let half = (after - before) / 2.0;
        if half < best.1 {
            best = (page - (before + half), half);
        }
    }
    Ok(best)
}
