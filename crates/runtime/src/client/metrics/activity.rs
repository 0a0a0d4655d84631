//! The metrics of the other logs: approval requests and answers, debate and
//! work case logs, the message mirror, tool calls and model costs.

use super::{percentile, ratio, Latency};
use crate::approvals;
use crate::client::{cases, ClientError};
use serde::Serialize;
use serde_json::Value;
use society_core::kinds::{case_log, ledger, tool_log};
use society_core::time::parse_rfc3339;
use society_core::Layout;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Debates, from the case logs holding a `debate_opened` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Debate {
    /// Debates opened.
    pub count: u64,
    /// Still running (neither consensus nor expiry yet).
    pub open: u64,
    pub consensus: u64,
    pub expired: u64,
    /// consensus / (consensus + expired): of the debates that ended.
    pub consensus_rate: Option<f64>,
    /// Mean `duration_ms` of the ended debates, in seconds.
    pub avg_duration_s: Option<f64>,
    /// Mean `iterations` of the ended debates.
    pub avg_iterations: Option<f64>,
}

fn since_ok(ts: Option<&str>, since: Option<SystemTime>) -> bool {
    since.is_none_or(|s| ts.and_then(parse_rfc3339).is_some_and(|t| t >= s))
}

/// The latency of answered requests, and how many requests wait.
pub(super) fn approvals(
    layout: &Layout,
    since: Option<SystemTime>,
) -> Result<(Latency, u64), ClientError> {
    let decided = approvals::decisions(layout)?;
    let mut waits = Vec::new();
    let mut pending = 0;
    for r in approvals::requests(layout)? {
        if !since_ok(Some(&r.ts), since) {
            continue;
        }
        let Some(d) = decided.get(&r.id) else {
            pending += 1;
            continue;
        };
        if let (Some(asked), Some(answered)) = (parse_rfc3339(&r.ts), parse_rfc3339(&d.ts)) {
            let s = answered
                .duration_since(asked)
                .unwrap_or_default()
                .as_secs_f64();
            waits.push(society_core::governance::round9(s));
        }
    }
    let latency = Latency {
        answered: waits.len() as u64,
        p50: percentile(&waits, 0.5),
        max: percentile(&waits, 1.0),
    };
    Ok((latency, pending))
}

/// Debates, and `completed` events by UTC hour, from every case log (open
/// and archived).
pub(super) fn debates_and_cases(
    layout: &Layout,
    since: Option<SystemTime>,
) -> Result<(Debate, BTreeMap<String, u64>), ClientError> {
    let mut d = Debate::default();
    let (mut durations, mut iterations) = (Vec::new(), Vec::new());
    let mut completed: BTreeMap<String, u64> = BTreeMap::new();
    for id in cases::all_ids(layout)? {
        let Some(loaded) = cases::load(layout, &id)? else {
            continue;
        };
        let event = |r: &Value| r["event"].as_str().unwrap_or_default().to_string();
        let opened = loaded
            .records
            .iter()
            .find(|r| event(r) == case_log::DEBATE_OPENED);
        if opened.is_some_and(|o| since_ok(o["ts"].as_str(), since)) {
            d.count += 1;
            let end = loaded.records.iter().find(|r| {
                let e = event(r);
                e == case_log::CONSENSUS || e == case_log::DEBATE_EXPIRED
            });
            match end {
                None => d.open += 1,
                Some(end) => {
                    if event(end) == case_log::CONSENSUS {
                        d.consensus += 1;
                    } else {
                        d.expired += 1;
                    }
                    durations.extend(end["duration_ms"].as_f64());
                    iterations.extend(end["iterations"].as_f64());
                }
            }
        }
        for r in &loaded.records {
            let ts = r["ts"].as_str().and_then(parse_rfc3339);
            if event(r) == case_log::COMPLETED && since_ok(r["ts"].as_str(), since) {
                if let Some(t) = ts {
                    let hour = &society_core::time::format_rfc3339(t)[..13];
                    *completed.entry(format!("{hour}:00Z")).or_default() += 1;
                }
            }
        }
    }
    let ended = (d.consensus + d.expired) as f64;
    d.consensus_rate = ratio(d.consensus as f64, ended);
    let mean = |v: &[f64]| ratio(v.iter().sum(), v.len() as f64);
    d.avg_duration_s = mean(&durations).map(|ms| society_core::governance::round9(ms / 1000.0));
    d.avg_iterations = mean(&iterations);
    Ok((d, completed))
}

/// `[from][to]` counts of the message mirror (its archived segments too).
pub(super) fn messages_by_pair(
    layout: &Layout,
    since: Option<SystemTime>,
) -> Result<BTreeMap<String, BTreeMap<String, u64>>, ClientError> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let live = layout.agent_to_agent();
    for m in society_core::segments::read_objects_all(layout, &live)? {
        let (Some(from), Some(to)) = (m["from"].as_str(), m["to"].as_str()) else {
            continue;
        };
        if since_ok(m["ts"].as_str(), since) {
            *out.entry(from.to_string())
                .or_default()
                .entry(to.to_string())
                .or_default() += 1;
        }
    }
    Ok(out)
}

/// `tool_call` records per agent (segments too); agents without one are left out.
pub(super) fn tool_calls(
    layout: &Layout,
    since: Option<SystemTime>,
) -> Result<BTreeMap<String, u64>, ClientError> {
    let mut out = BTreeMap::new();
    for id in layout.agent_ids()? {
        let path = layout.agent(&id).tools();
        let n = society_core::segments::read_objects_all(layout, &path)?
            .iter()
            .filter(|r| r["event"] == tool_log::TOOL_CALL && since_ok(r["ts"].as_str(), since))
            .count() as u64;
        if n > 0 {
            out.insert(id.to_string(), n);
        }
    }
    Ok(out)
}

/// `[agent]["provider/model"]` USD of the `usage` records.
pub(super) fn costs(
    layout: &Layout,
    since: Option<SystemTime>,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>, ClientError> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for id in layout.agent_ids()? {
        let path = layout.agent(&id).costs();
        for r in society_core::jsonl::read_objects(&path, &mut 0)? {
            if r["event"] != ledger::USAGE || !since_ok(r["ts"].as_str(), since) {
                continue;
            }
            let api = format!(
                "{}/{}",
                r["provider"].as_str().unwrap_or("-"),
                r["model"].as_str().unwrap_or("-")
            );
            let usd = out
                .entry(id.to_string())
                .or_default()
                .entry(api)
                .or_insert(0.0);
            *usd = society_core::governance::round9(*usd + r["usd"].as_f64().unwrap_or(0.0));
        }
    }
    Ok(out)
}
