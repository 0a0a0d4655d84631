//! `society approvals`, `approve ID [--note]`, `reject ID --feedback`.
//!
//! Requests live in `orchestrator/inbox.jsonl`, answers in
//! `supervisor/inbox.jsonl` (see `society_runtime::approvals`). Answering only
//! appends a `decide` request: durable whether or not the supervisor runs, and
//! delivered by it. The CLI never starts the supervisor for this — answering
//! is not a reason to wake a stopped society.
//!
//! A request whose case is closed is refused: the case log is final, and the
//! requester's work in it is over.

use super::exit::{coded, coded_hint, Code};
use super::table;
use serde_json::Value;
use society_core::case::{CaseStatus, CaseSummary};
use society_core::{CaseId, Layout, MsgId};
use society_runtime::approvals::{self, Approval, Kind};
use society_runtime::client::supervisor::supervisor_pid;
use society_runtime::control::{self, Request};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array of pending requests.
    #[arg(long)]
    json: bool,
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

pub fn list(layout: &Layout, args: ListArgs) -> anyhow::Result<Code> {
    let pending = approvals::pending(layout)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&pending)?);
        return Ok(Code::Ok);
    }
    if pending.is_empty() {
        println!("no pending approvals");
        return Ok(Code::Ok);
    }
    let rows: Vec<[String; 6]> = pending
        .iter()
        .map(|a| {
            [
                a.id.to_string(),
                table::age(&a.ts),
                requester(a),
                a.case.as_ref().map_or("-".into(), ToString::to_string),
                a.revision.map_or("-".into(), |r| r.to_string()),
                table::truncate(&a.plan, 60),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            ["ID", "AGE", "FROM", "CASE", "REV", "PLAN"],
            &rows,
            |_, _| { None }
        )
    );
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
    let Some(request) = approvals::requests(layout)?
        .into_iter()
        .find(|a| a.id == id)
    else {
        return Err(coded_hint(
            Code::NotFound,
            format!(
                "no approval request {id} in {}",
                layout.orchestrator_inbox().display()
            ),
            "`society approvals` lists pending requests",
        ));
    };
    if let Some(d) = approvals::decisions(layout)?.get(&id) {
        let how = if d.approve { "approved" } else { "rejected" };
        let note = d
            .note
            .as_deref()
            .map_or(String::new(), |n| format!(" with the note {n:?}"));
        return Err(coded(
            Code::Conflict,
            format!("request {id} was already {how} at {}{note}", d.ts),
        ));
    }
    if let Some(case) = &request.case {
        if let Some(ended) = ended(layout, case)? {
            let how = if approve { "approve" } else { "reject" };
            return Err(coded_hint(
                Code::Conflict,
                format!("cannot {how} request {id}: its case {case} is {ended}"),
                format!(
                    "`society case show {case}` shows its timeline; open a new case for new work"
                ),
            ));
        }
    }
    control::send(
        layout,
        &Request::Decide {
            request: id,
            approve,
            note,
        },
    )?;
    let how = if approve { "approved" } else { "rejected" };
    let effect = effect(&request, approve);
    if supervisor_pid(layout).is_some() {
        println!("{how}; the supervisor {effect}");
    } else {
        println!(
            "{how}; recorded in {}; the supervisor is not running and {effect} when it starts (`society up`)",
            layout.supervisor_inbox().display()
        );
    }
    Ok(Code::Ok)
}

/// How a case ended — "closed" (its log archived, or its fold says so) or
/// "cancelled" — or `None` while it is open or if it has no log. The lookup
/// is `case show`'s: the open log in `supervisor/cases/`, else the archive
/// pointer a close leaves there, else `archive/*/` itself.
fn ended(layout: &Layout, case: &CaseId) -> anyhow::Result<Option<&'static str>> {
    let open = layout.case_log(case);
    // A close moves the log while we read: look again where it went.
    for _ in 0..3 {
        if !open.is_file() {
            break;
        }
        let records = society_core::jsonl::read_objects(&open, &mut 0)?;
        if records.is_empty() && !open.exists() {
            continue;
        }
        let status = CaseSummary::fold(case.as_str(), &records).status;
        return Ok(status.is_final().then(|| status.as_str()));
    }
    let pointer = layout.case_pointer(case);
    let name = society_core::layout::case_log_name(case);
    let archived = pointer.is_file()
        || std::fs::read_dir(layout.archive_dir())
            .into_iter()
            .flatten()
            .flatten()
            .any(|day| day.path().join(&name).is_file());
    Ok(archived.then_some(CaseStatus::Closed.as_str()))
}

/// FROM column: the agent that asked, or `sender→recipient` of a held message.
fn requester(a: &Approval) -> String {
    match (a.kind, held_route(a)) {
        (Kind::Route, Some(route)) => route,
        _ => a.from.to_string(),
    }
}

/// What the supervisor does with the answer.
fn effect(a: &Approval, approve: bool) -> String {
    match (a.kind, held_route(a)) {
        (Kind::Route, Some(route)) if approve => format!("delivers the held message {route}"),
        (Kind::Route, Some(route)) => format!("blocks the held message {route}"),
        _ => format!("delivers the answer to {}", a.from),
    }
}

fn held_route(a: &Approval) -> Option<String> {
    let held = a.held()?;
    let s = |k: &str| held.get(k).and_then(Value::as_str).unwrap_or("?");
    Some(format!("{}→{}", s("from"), s("to")))
}
