//! `society metrics`: the source's orchestrator metrics (SOCIETY.md §I3)
//! folded from the files alone — every agent's `decisions.jsonl`,
//! `tools.jsonl` and `costs.jsonl`, the debate case logs, the approval
//! requests and their answers, the message mirror — and written to
//! `supervisor/metrics.json` (atomically: a reader sees the last fold whole).
//!
//! Nothing here is kept between runs: the fold is recomputed from the logs
//! each time, so the figures can never disagree with them, and a metric
//! added later covers the whole history. The arithmetic is in
//! `metrics/decisions.rs` (pure, over folded decisions) and
//! `metrics/activity.rs` (over the other logs); this file puts them together.

mod activity;
mod decisions;

pub use activity::Debate;
pub use decisions::{ApprovalCount, CaseConfidence, CaseRate};

use super::ClientError;
use serde::Serialize;
use society_core::Layout;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The whole report, as `metrics.json` and `society metrics --json` hold it.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// When this fold was made.
    pub generated_at: String,
    /// `--since`: only records from then on count (null: everything).
    pub since: Option<String>,
    /// Decisions assessed (each revision is a decision).
    pub decisions: u64,
    /// Proposals the runtime could not parse (`refused`).
    pub refused_proposals: u64,
    /// Decisions by level (every level present, 0 if none).
    pub autonomy_distribution: BTreeMap<String, u64>,
    /// `[level][decision_type]`: approved / resolved.
    pub approval_rate: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per case, in order of its first decision: the share of decisions
    /// that asked for approval (the per-episode trajectory).
    pub approval_request_rate_by_case: Vec<CaseRate>,
    /// Per case, same order: the mean confidence score.
    pub avg_confidence_by_case: Vec<CaseConfidence>,
    pub debate: Debate,
    pub approval_latency_s: Latency,
    /// Revisions (decisions with a parent) per original decision.
    pub revisions_per_decision: Option<f64>,
    /// Orchestrator reviews of autonomous decisions, logged by the agents.
    pub reviews: Reviews,
    /// `[from][to]`: messages in `messages/agent-to-agent.jsonl`.
    pub messages_by_pair: BTreeMap<String, BTreeMap<String, u64>>,
    /// `tool_call` records per agent.
    pub tool_calls_by_agent: BTreeMap<String, u64>,
    /// `[agent]["provider/model"]`: USD of the `usage` records.
    pub cost_by_agent_api: BTreeMap<String, BTreeMap<String, f64>>,
    /// `completed` case events by UTC hour (`2026-12-01T03:00Z`).
    pub cases_completed_per_hour: BTreeMap<String, u64>,
    /// Approval requests without an answer.
    pub pending_approvals: u64,
    /// Autonomous decisions resolved by the agent itself and not reviewed.
    pub unreviewed_autonomous: u64,
    /// The approved/resolved counts behind `approval_rate` (for tables).
    #[serde(skip)]
    pub approval_counts: Vec<ApprovalCount>,
}

/// Seconds from an approval request to the orchestrator's answer (the
/// `decide` request), over the answered requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub answered: u64,
    /// The median (nearest rank: the lower middle of an even count).
    pub p50: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reviews {
    pub ok: u64,
    pub vetoed: u64,
}

/// Folds every log of the society (records since `since`, if given).
pub fn collect(layout: &Layout, since: Option<SystemTime>) -> Result<Metrics, ClientError> {
    let log = super::decisions::read(layout, since)?;
    let d = decisions::fold(&log.decisions);
    let approvals = activity::approvals(layout, since)?;
    let (debate, completed) = activity::debates_and_cases(layout, since)?;
    Ok(Metrics {
        generated_at: society_core::time::now_rfc3339(),
        since: since.map(society_core::time::format_rfc3339),
        decisions: log.decisions.len() as u64,
        refused_proposals: log.refused,
        autonomy_distribution: d.distribution,
        approval_rate: d.approval_rate,
        approval_request_rate_by_case: d.request_rate_by_case,
        avg_confidence_by_case: d.confidence_by_case,
        debate,
        approval_latency_s: approvals.0,
        revisions_per_decision: d.revisions_per_decision,
        reviews: d.reviews,
        messages_by_pair: activity::messages_by_pair(layout, since)?,
        tool_calls_by_agent: activity::tool_calls(layout, since)?,
        cost_by_agent_api: activity::costs(layout, since)?,
        cases_completed_per_hour: completed,
        pending_approvals: approvals.1,
        unreviewed_autonomous: d.unreviewed_autonomous,
        approval_counts: d.approval_counts,
    })
}

/// Writes `supervisor/metrics.json` (tmp file + rename).
pub fn write(layout: &Layout, m: &Metrics) -> Result<(), ClientError> {
    society_core::atomic::write_json(&layout.supervisor_metrics(), m, false)?;
    Ok(())
}

/// `part / whole`, rounded to 1e-9 (so 0.1 + 0.2 sums print as 0.3); none
/// of an empty whole.
pub(crate) fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| society_core::governance::round9(part / whole))
}

/// The nearest-rank percentile `p` (0 to 1) of unsorted values.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[120.0, 10.0, 30.0], 0.5), Some(30.0));
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 1.0), Some(4.0));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(3.0, 4.0), Some(0.75));
    }
}
