//! `society metrics [--since TIME] [-o FORMAT]`: the governance and
//! activity metrics (SOCIETY.md §I3) folded from the files
//! (`society_runtime::client::metrics`), written to
//! `supervisor/metrics.json` and printed: a summary and a few small tables,
//! or the same document as the file with `-o json`. A report: `-o json` is
//! one object. Works with the supervisor down.

use super::exit::Code;
use super::output::{self, Format, OutputArgs, Table};
use society_core::Layout;
use society_runtime::client::metrics::{self, Metrics};
use std::collections::BTreeSet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only records at or after this time: 10m (ago), today, 14:05,
    /// 2026-11-30 14:05 (local), or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = super::timespec::parse)]
    since: Option<jiff::Timestamp>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let since = args.since.map(|t| {
        let ms = u64::try_from(t.as_millisecond()).unwrap_or(0);
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    });
    let m = metrics::collect(layout, since)?;
    metrics::write(layout, &m)?;
    let format = args.output.format();
    if args.output.is_json() {
        output::report(&m, format)?;
        return Ok(Code::Ok);
    }
    summary(&m, format)?;
    note!("written to {}", layout.supervisor_metrics().display());
    Ok(Code::Ok)
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.0}%", x * 100.0))
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |x| format!("{x:.digits$}"))
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |s| {
        if s < 60.0 {
            format!("{s:.1}s")
        } else {
            super::table::coarse(std::time::Duration::from_secs_f64(s))
        }
    })
}

fn summary(m: &Metrics, format: Format) -> anyhow::Result<()> {
    let width = output::width(format);
    let line = |text: String| output::fit(&text, width);
    let levels: Vec<String> = m
        .autonomy_distribution
        .iter()
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    outln!(
        "{}",
        line(format!(
            "decisions  {} ({}); {} refused; {} revision(s) per decision",
            m.decisions,
            levels.join(", "),
            m.refused_proposals,
            num(m.revisions_per_decision, 2)
        ))
    );
    let l = &m.approval_latency_s;
    let answered = if l.answered == 0 {
        "none answered".to_string()
    } else {
        format!(
            "{} answered in {} (median), {} at most",
            l.answered,
            secs(l.p50),
            secs(l.max)
        )
    };
    outln!(
        "{}",
        line(format!(
            "approvals  {} pending; {answered}",
            m.pending_approvals
        ))
    );
    let d = &m.debate;
    outln!(
        "{}",
        line(format!(
            "debates    {} ({} consensus, {} expired, {} open); consensus rate {}; {} and {} iteration(s) on average",
            d.count,
            d.consensus,
            d.expired,
            d.open,
            pct(d.consensus_rate),
            secs(d.avg_duration_s),
            num(d.avg_iterations, 1)
        ))
    );
    outln!(
        "{}",
        line(format!(
            "reviews    {} autonomous decision(s) await review (`society review`); {} ok, {} vetoed",
            m.unreviewed_autonomous, m.reviews.ok, m.reviews.vetoed
        ))
    );
    if !m.approval_request_rate_by_case.is_empty() {
        outln!();
        let mut t = Table::new(
            &["CASE", "DECISIONS", "ASKED", "RATE", "CONFIDENCE"],
            format,
        );
        t.keep(0, 28);
        for (r, c) in m
            .approval_request_rate_by_case
            .iter()
            .zip(&m.avg_confidence_by_case)
        {
            t.row(vec![
                r.case.clone().unwrap_or_else(|| "-".into()),
                r.decisions.to_string(),
                r.asked.to_string(),
                pct(Some(r.rate)),
                num(c.avg_confidence, 2),
            ]);
        }
        out!("{}", t.render());
    }
    if !m.approval_counts.is_empty() {
        outln!();
        let mut t = Table::new(&["LEVEL", "TYPE", "RESOLVED", "APPROVED", "RATE"], format);
        for c in &m.approval_counts {
            let rate = metrics_ratio(c.approved, c.resolved);
            t.row(vec![
                c.level.clone(),
                c.decision_type.clone(),
                c.resolved.to_string(),
                c.approved.to_string(),
                pct(rate),
            ]);
        }
        out!("{}", t.render());
    }
    let agents: BTreeSet<&String> = m
        .tool_calls_by_agent
        .keys()
        .chain(m.cost_by_agent_api.keys())
        .chain(m.messages_by_pair.keys())
        .collect();
    if !agents.is_empty() {
        outln!();
        let mut t = Table::new(&["FROM", "SENT", "TOOL CALLS", "USD"], format);
        t.keep(0, 20);
        for a in agents {
            let sent: u64 = m.messages_by_pair.get(a).map_or(0, |to| to.values().sum());
            let usd: f64 = m
                .cost_by_agent_api
                .get(a)
                .map_or(0.0, |apis| apis.values().sum());
            t.row(vec![
                a.clone(),
                sent.to_string(),
                m.tool_calls_by_agent
                    .get(a)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                format!("{usd:.4}"),
            ]);
        }
        out!("{}", t.render());
    }
    if !m.cases_completed_per_hour.is_empty() {
        let hours: Vec<String> = m
            .cases_completed_per_hour
            .iter()
            .map(|(h, n)| format!("{h} {n}"))
            .collect();
        outln!();
        outln!(
            "{}",
            line(format!(
                "cases completed per hour (UTC): {}",
                hours.join(", ")
            ))
        );
    }
    Ok(())
}

fn metrics_ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}
