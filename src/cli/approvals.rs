//! `society approvals [-o FORMAT]`, `approve ID [--note]`, `reject ID
//! --feedback`. `approvals` is a list: `-o json` is an array of the pending
//! requests, oldest first.
//!
//! Requests live in `orchestrator/inbox.jsonl`, answers in
//! `supervisor/inbox.jsonl` (see `society_runtime::approvals`). Answering only
//! appends a `decide` request: durable whether or not the supervisor runs, and
//! delivered by it. The CLI never starts the supervisor for this — answering
//! is not a reason to wake a stopped society.
//!
//! A request whose case is closed is refused: the case log is final, and the
//! requester's work in it is over.

use super::exit::{coded, Code};
use super::output::{self, OutputArgs, Table};
use super::table;
use serde_json::Value;
use society_core::{Layout, MsgId};
use society_runtime::approvals::{self, Approval, Kind};
use society_runtime::client::answers;
use society_runtime::client::supervisor::supervisor_pid;
use society_runtime::control::How;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// Request id (the approval_request message id).
    id: String,
    /// A note for the requester.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// Request id (the approval_request message id).
    id: String,
    /// What to change: the requester revises its plan with this.
    #[arg(long, value_name = "TEXT", required = true)]
    feedback: String,
}

#[derive(Debug, clap::Args)]
pub struct OverrideArgs {
    /// Request id (the approval_request message id).
    id: String,
    /// The plan to carry out instead of the requester's.
    #[arg(long, value_name = "TEXT", required = true)]
    plan: String,
    /// Why, for the requester.
    #[arg(long, value_name = "TEXT")]
    feedback: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ChooseArgs {
    /// Request id (the approval_request message id).
    id: String,
    /// Which of the request's alternatives (1 = the first listed).
    #[arg(long, value_name = "N", required = true)]
    option: usize,
    /// Why, for the requester.
    #[arg(long, value_name = "TEXT")]
    feedback: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AlternativesArgs {
    /// Request id (the approval_request message id).
    id: String,
    /// What the alternatives should consider.
    #[arg(long, value_name = "TEXT")]
    feedback: Option<String>,
}

/// `society override ID --plan TEXT`: go ahead, with this plan instead.
pub fn override_plan(layout: &Layout, args: OverrideArgs) -> anyhow::Result<Code> {
    if args.plan.trim().is_empty() {
        return Err(coded(
            Code::Invalid,
            "--plan is empty: say what to do instead",
        ));
    }
    let how = How::Override { plan: args.plan };
    answer(layout, &args.id, true, args.feedback, how)
}

/// `society choose ID --option N`: go ahead with one of the alternatives.
pub fn choose(layout: &Layout, args: ChooseArgs) -> anyhow::Result<Code> {
    let how = How::Choose {
        option: args.option,
        plan: String::new(),
    };
    answer(layout, &args.id, true, args.feedback, how)
}

/// `society alternatives ID`: ask the requester for alternatives first.
pub fn alternatives(layout: &Layout, args: AlternativesArgs) -> anyhow::Result<Code> {
    let note = args
        .feedback
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "propose alternatives before anything is decided".into());
    answer(layout, &args.id, false, Some(note), How::Alternatives)
}

fn answer(
    layout: &Layout,
    id: &str,
    approve: bool,
    note: Option<String>,
    how: How,
) -> anyhow::Result<Code> {
    let id: MsgId = id.parse()?;
    let name = how.decision();
    let note = note.filter(|n| !n.trim().is_empty());
    let request = answers::answer(layout, &id, approve, note, Some(how))?;
    let to = requester(&request);
    if supervisor_pid(layout).is_some() {
        outln!("{name}; the supervisor delivers the answer to {to}");
    } else {
        outln!(
            "{name}; recorded in {}; the supervisor is not running and delivers the answer to {to} when it starts (`society up`)",
            layout.supervisor_inbox().display()
        );
    }
    Ok(Code::Ok)
}

pub fn list(layout: &Layout, args: ListArgs) -> anyhow::Result<Code> {
    let pending = approvals::pending(layout)?;
    let format = args.output.format();
    if args.output.is_json() {
        output::list(&pending, format)?;
        return Ok(Code::Ok);
    }
    if pending.is_empty() {
        outln!("no pending approvals");
        return Ok(Code::Ok);
    }
    // In an organisation, where each request waits (a lead, or the orchestrator).
    let org = pending.iter().any(|a| a.at.is_some());
    let mut heads = vec!["ID", "AGE", "FROM", "CASE", "REV", "PLAN"];
    if org {
        heads.insert(3, "AT");
    }
    let mut t = Table::new(&heads, format);
    // The id is what `approve` and `reject` take: never cut. A case id
    // (28 characters) and the revision show with `-o wide`.
    t.keep(0, 26).keep(2, 20);
    if org {
        t.wide_only(&[4, 5]);
    } else {
        t.wide_only(&[3, 4]);
    }
    for a in &pending {
        let mut row = vec![
            a.id.to_string(),
            table::age(&a.ts),
            requester(a),
            a.case.as_ref().map_or("-".into(), ToString::to_string),
            a.revision.map_or("-".into(), |r| r.to_string()),
            a.plan.clone(),
        ];
        if org {
            row.insert(
                3,
                format!("at: {}", a.at.as_deref().unwrap_or("orchestrator")),
            );
        }
        t.row(row);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}

pub fn approve(layout: &Layout, args: ApproveArgs) -> anyhow::Result<Code> {
    let note = args.note.filter(|n| !n.trim().is_empty());
    decide(layout, &args.id, true, note)
}

pub fn reject(layout: &Layout, args: RejectArgs) -> anyhow::Result<Code> {
    if args.feedback.trim().is_empty() {
        return Err(coded(
            Code::Invalid,
            "--feedback is empty: say what the requester should change",
        ));
    }
    decide(layout, &args.id, false, Some(args.feedback))
}

fn decide(layout: &Layout, id: &str, approve: bool, note: Option<String>) -> anyhow::Result<Code> {
    let id: MsgId = id.parse()?;
    let request = answers::decide(layout, &id, approve, note)?;
    let how = if approve { "approved" } else { "rejected" };
    let effect = effect(&request, approve);
    if supervisor_pid(layout).is_some() {
        outln!("{how}; the supervisor {effect}");
    } else {
        outln!(
            "{how}; recorded in {}; the supervisor is not running and {effect} when it starts (`society up`)",
            layout.supervisor_inbox().display()
        );
    }
    Ok(Code::Ok)
}

/// FROM column: the agent that asked (a debate's proposer), or
/// `sender→recipient` of a held message.
fn requester(a: &Approval) -> String {
    match (a.kind, held_route(a), a.proposer()) {
        (Kind::Route, Some(route), _) => route,
        (Kind::Debate | Kind::Gate, _, Some(agent)) => agent.to_string(),
        _ => a.from.to_string(),
    }
}

/// What the supervisor does with the answer.
fn effect(a: &Approval, approve: bool) -> String {
    match (a.kind, held_route(a)) {
        (Kind::Route, Some(route)) if approve => format!("delivers the held message {route}"),
        (Kind::Route, Some(route)) => format!("blocks the held message {route}"),
        (Kind::Debate, _) => format!(
            "delivers the answer to {}",
            a.proposer().unwrap_or("the debate's proposer")
        ),
        (Kind::Gate, _) if approve => format!(
            "opens the gate: the answer goes to {}",
            a.proposer().unwrap_or("the agent at the gate")
        ),
        (Kind::Gate, _) => format!(
            "delivers the answer to {} and the notes to {}",
            a.proposer().unwrap_or("the agent at the gate"),
            a.body
                .get("revise_to")
                .map_or("nobody".into(), |v| v.to_string())
        ),
        _ => format!("delivers the answer to {}", a.from),
    }
}

fn held_route(a: &Approval) -> Option<String> {
    let held = a.held()?;
    let s = |k: &str| held.get(k).and_then(Value::as_str).unwrap_or("?");
    Some(format!("{}→{}", s("from"), s("to")))
}
