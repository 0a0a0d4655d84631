//! `society top`: per agent, the CPU and memory of its process, the
//! messages it handled per second, its queue and its spend. A rate needs two
//! samples: [`sample`] twice, then [`rates`]. CPU time and resident memory
//! come from `/proc/<pid>/stat` and `/proc/<pid>/status` (Linux); an agent
//! without a process, or whose entry is gone, has none (`None`, printed
//! `-`). Messages per second are the growth of the `handled` counter its
//! checkpoint keeps; the queue is its inbox after the cursor. The agent
//! process alone is measured: a `command` brain's program runs in a process
//! group of its own and is not counted.

use super::{status, ClientError};
use serde::Serialize;
use society_core::{AgentId, Layout};
use std::time::Instant;

/// What one look at the society saw.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    agents: Vec<Point>,
}

#[derive(Debug, Clone)]
struct Point {
    id: AgentId,
    state: String,
    pid: Option<u32>,
    /// User + system time of the process, in clock ticks.
    cpu_ticks: Option<u64>,
    rss_bytes: Option<u64>,
    handled: u64,
    queue: u64,
    spend_usd: f64,
}

/// `society top -o json`: one refresh.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Time between the two samples the rates come from.
    pub interval_ms: u64,
    pub agents: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: AgentId,
    pub state: String,
    pub pid: Option<u32>,
    /// Share of one CPU over the interval (100 = one core busy); null
    /// without a process in both samples.
    pub cpu_percent: Option<f64>,
    /// Resident memory; null without a process.
    pub rss_bytes: Option<u64>,
    /// Messages handled per second over the interval.
    pub msgs_per_sec: f64,
    /// Messages waiting in its inbox.
    pub queue: u64,
    pub spend_usd: f64,
}

/// Looks at every agent once.
pub fn sample(layout: &Layout) -> Result<Sample, ClientError> {
    let report = status::collect(layout, None)?;
    let at = Instant::now();
    let agents = report
        .agents
        .into_iter()
        .map(|r| Point {
            cpu_ticks: r.pid.and_then(cpu_ticks),
            rss_bytes: r.pid.and_then(rss_bytes),
            id: r.id,
            state: r.state,
            pid: r.pid,
            handled: r.handled,
            queue: r.inbox_pending,
            spend_usd: r.spend_usd,
        })
        .collect();
    Ok(Sample { at, agents })
}

/// The rates between two samples, one row per agent of `after`.
pub fn rates(before: &Sample, after: &Sample) -> Report {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let tick = clock_ticks_per_sec();
    let agents = after
        .agents
        .iter()
        .map(|p| {
            let old = before.agents.iter().find(|o| o.id == p.id);
            let cpu_percent = match (old, p.cpu_ticks) {
                (Some(o), Some(now)) if o.pid == p.pid && secs > 0.0 => o
                    .cpu_ticks
                    .map(|then| round(now.saturating_sub(then) as f64 / tick / secs * 100.0)),
                _ => None,
            };
            let handled = old.map_or(0, |o| p.handled.saturating_sub(o.handled));
            Row {
                id: p.id.clone(),
                state: p.state.clone(),
                pid: p.pid,
                cpu_percent,
                rss_bytes: p.rss_bytes,
                msgs_per_sec: if secs > 0.0 {
                    round(handled as f64 / secs)
                } else {
                    0.0
                },
                queue: p.queue,
                spend_usd: p.spend_usd,
            }
        })
        .collect();
    Report {
        interval_ms: (secs * 1000.0).round() as u64,
        agents,
    }
}

/// Two decimals: enough for a rate, and stable to read in JSON.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses: fields are
/// counted after its last `)`.
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn rss_bytes(pid: u32) -> Option<u64> {
    parse_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `VmRSS:  12345 kB` of `/proc/<pid>/status`.
fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The unit of `/proc` CPU times.
#[allow(unsafe_code)]
fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn proc_files_are_read_past_an_awkward_command_name() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000 200";
        assert_eq!(parse_stat(stat), Some(300));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_rss("Name:\tsociety\nVmRSS:\t    2048 kB\nThreads:\t3\n"),
            Some(2 << 20)
        );
        assert_eq!(parse_rss("Name:\tzombie\n"), None);
    }

    #[test]
    fn rates_are_growth_over_the_interval_and_need_the_same_process() {
        let point = |pid, ticks, handled| Point {
            id: AgentId::new("a").unwrap(),
            state: "running".into(),
            pid,
            cpu_ticks: ticks,
            rss_bytes: pid.map(|_| 4096),
            handled,
            queue: 7,
            spend_usd: 0.5,
        };
        let t0 = Instant::now();
        let before = Sample {
            at: t0,
            agents: vec![point(Some(10), Some(100), 40)],
        };
        let after = Sample {
            at: t0 + Duration::from_secs(2),
            agents: vec![point(
                Some(10),
                Some(100 + clock_ticks_per_sec() as u64),
                100,
            )],
        };
        let r = rates(&before, &after);
        assert_eq!(r.interval_ms, 2000);
        assert_eq!(r.agents[0].msgs_per_sec, 30.0);
        assert_eq!(r.agents[0].cpu_percent, Some(50.0));
        assert_eq!(r.agents[0].queue, 7);
        let restarted = Sample {
            at: t0 + Duration::from_secs(2),
            agents: vec![point(Some(11), Some(5), 100)],
        };
        assert_eq!(rates(&before, &restarted).agents[0].cpu_percent, None);
        let gone = Sample {
            at: t0 + Duration::from_secs(2),
            agents: vec![point(None, None, 100)],
        };
        let r = rates(&before, &gone);
        assert_eq!(
            (r.agents[0].cpu_percent, r.agents[0].rss_bytes),
            (None, None)
        );
    }
}
