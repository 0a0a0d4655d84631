//! `society review [--agent A] [-o FORMAT]` lists the autonomous decisions
//! the agents took on their own and the orchestrator has not reviewed;
//! `society review DECISION --ok|--veto [--feedback TEXT] [--quality Q]`
//! sends the verdict to the agent that took it, as a `decision_review`
//! message (see `society_runtime::client::review`). The list is a list:
//! `-o json` is an array, oldest first.
//!
//! Like `approve`, a verdict never starts the supervisor: it waits in the
//! agent's inbox, durable, until the agent runs.

use super::exit::{coded, Code};
use super::output::{self, OutputArgs, Table};
use super::{render, table};
use society_core::{AgentId, Layout};
use society_runtime::client::review::{self, Verdict};
use society_runtime::client::supervisor::supervisor_pid;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("verdict").args(["ok", "veto"]).multiple(false))]
pub struct Args {
    /// The decision to review (its id, from the list). Without it: the list.
    #[arg(requires = "verdict")]
    decision: Option<String>,
    /// The decision was right: the agent learns to take such decisions alone.
    #[arg(long, requires = "decision")]
    ok: bool,
    /// The decision was wrong: the agent learns to ask next time.
    #[arg(long, requires = "decision")]
    veto: bool,
    /// What was right or wrong, for the agent.
    #[arg(long, value_name = "TEXT", requires = "decision")]
    feedback: Option<String>,
    /// The quality of the result, 0 to 1.
    #[arg(long, value_name = "Q", requires = "decision", value_parser = quality)]
    quality: Option<f64>,
    /// List only this agent's decisions.
    #[arg(long, value_name = "A", conflicts_with = "decision")]
    agent: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

fn quality(text: &str) -> Result<f64, String> {
    let q: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number (0 to 1)"))?;
    if (0.0..=1.0).contains(&q) {
        Ok(q)
    } else {
        Err(format!("{q} is out of range (0 to 1)"))
    }
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    match &args.decision {
        Some(d) => send(layout, d, &args),
        None => list(layout, &args),
    }
}

fn list(layout: &Layout, args: &Args) -> anyhow::Result<Code> {
    let agent = args.agent.as_deref().map(AgentId::new).transpose()?;
    let decisions = review::unreviewed(layout, agent.as_ref())?;
    let format = args.output.format();
    if args.output.is_json() {
        output::list(&decisions, format)?;
        return Ok(Code::Ok);
    }
    if decisions.is_empty() {
        outln!("no autonomous decisions awaiting review");
        return Ok(Code::Ok);
    }
    let mut t = Table::new(
        &["DECISION", "AGE", "AGENT", "TYPE", "CASE", "WHEN", "PLAN"],
        format,
    );
    // The id is what `review ID` takes: never cut. The absolute time shows
    // with `-o wide`.
    t.keep(0, 26).keep(2, 20).wide_only(&[5]);
    for d in &decisions {
        t.row(vec![
            d.id.clone(),
            table::age(&d.ts),
            d.agent.clone(),
            d.decision_type.clone(),
            d.case.clone().unwrap_or_else(|| "-".into()),
            super::when::stamp(&d.ts),
            d.plan.clone(),
        ]);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}

fn send(layout: &Layout, decision: &str, args: &Args) -> anyhow::Result<Code> {
    let feedback = args.feedback.clone().filter(|f| !f.trim().is_empty());
    if args.feedback.is_some() && feedback.is_none() {
        return Err(coded(
            Code::Invalid,
            "--feedback is empty: say what was right or wrong, or leave it out",
        ));
    }
    let verdict = Verdict {
        ok: args.ok,
        feedback,
        quality: args.quality,
    };
    let sent = review::review(layout, decision, &verdict)?;
    render::warn(&sent.warnings);
    let how = if verdict.ok { "approved" } else { "vetoed" };
    if args.output.is_json() {
        output::report(&sent, args.output.format())?;
    } else {
        outln!("{}", sent.message);
    }
    if supervisor_pid(layout).is_some() {
        note!(
            "decision {} {how}; the verdict is in {}'s inbox",
            sent.decision,
            sent.agent
        );
    } else {
        note!(
            "decision {} {how}; the verdict waits in {}'s inbox until it runs (`society up`)",
            sent.decision,
            sent.agent
        );
    }
    Ok(Code::Ok)
}
