//! Budget extensions: asking the orchestrator when a budget leaves no room
//! for the next call, and recording the answer.
//!
//! The request is an ordinary `approval_request` (the message is parked in
//! it). It is recognised when its answer comes back by the
//! `budget_requested` record written to `costs.jsonl` *before* the request
//! is emitted, keyed by the request's id — which the runtime derives from
//! the message id and the action's index (FORMAT.md), so the brain knows it
//! in advance. A model's own `request_approval` has no such record, so it can
//! never be mistaken for a budget request, whatever its plan says.

use super::budget::{self, Exceeded};
use super::inbound::{BudgetAnswer, Inbound};
use super::ledger::Ledger;
use super::LlmError;
use crate::{Action, Context};
use serde_json::json;
use society_core::kinds::ledger;
use society_core::{Envelope, MsgId};

/// Records the request (so the answer is recognised) and builds it. Its id
/// will be output `index` of `msg`.
pub fn request(
    ledger: &Ledger,
    msg: &Envelope,
    inbound: &Inbound,
    ex: &Exceeded,
    index: usize,
    ctx: &Context<'_>,
) -> Result<Action, LlmError> {
    let request = MsgId::derive(&msg.id, index as u32).to_string();
    let scope = ex.scope;
    let (tokens, usd) = if matches!(scope.kind, budget::Kind::UsdPerDay | budget::Kind::UsdTotal) {
        (0, ex.extend_by)
    } else {
        (ex.extend_by as u64, 0.0)
    };
    ledger.once(
        ledger::BUDGET_REQUESTED,
        &request,
        json!({"scope": scope.name(), "spent": ex.spent, "limit": ex.limit,
        "tokens": tokens, "usd": usd, "id": msg.id, "case": inbound.case}),
    )?;
    let what = scope.describe(ctx.agent.as_str());
    Ok(Action::RequestApproval {
        plan: format!("extend the {what} by {}", scope.amount(ex.extend_by)),
        rationale: format!(
            "{} spent of {} ({}): the next model call would exceed it. Approving adds {} and resumes the parked message; rejecting ends it.",
            scope.amount(ex.spent), scope.amount(ex.limit), scope.name(), scope.amount(ex.extend_by)
        ),
        alternatives: vec![
            "reject: the message ends without another model call".into(),
            format!("raise the limit in society.toml ({})", scope.name()),
        ],
    })
}

pub fn approved(ledger: &Ledger, a: &BudgetAnswer) -> Result<(), LlmError> {
    ledger.once(
        ledger::BUDGET_EXTENDED,
        &a.request,
        json!({"scope": a.asked["scope"], "tokens": a.asked["tokens"],
        "usd": a.asked["usd"], "by": "orchestrator", "note": a.note, "id": a.asked["id"]}),
    )
}

pub fn rejected(ledger: &Ledger, a: &BudgetAnswer) -> Result<(), LlmError> {
    ledger.once(
        "budget_rejected",
        &a.request,
        json!({"scope": a.asked["scope"], "by": "orchestrator",
        "note": a.note, "id": a.asked["id"]}),
    )
}
