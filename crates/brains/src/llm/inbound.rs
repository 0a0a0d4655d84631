//! What an inbound message means to the `llm` brain: which conversation it
//! belongs to, where a reply goes, and whether it answers one of our own
//! budget requests.

use super::ledger::Ledger;
use super::tools::ReplyTo;
use super::LlmError;
use serde_json::Value;
use society_core::kinds::{ledger, message};
use society_core::{Envelope, Party};

pub struct Inbound {
    /// `conversations/<key>.jsonl`: the case, else the (parked) message id.
    pub key: String,
    pub reply_to: ReplyTo,
    /// The case charged in `costs.jsonl`.
    pub case: Option<String>,
    pub budget: Option<BudgetAnswer>,
    /// A text-only answer is sent as a reply (not to agents' replies: two
    /// agents would answer each other forever).
    pub text_replies: bool,
}

/// The orchestrator's answer to a budget request of ours.
pub struct BudgetAnswer {
    pub request: String,
    pub approved: bool,
    pub note: Option<String>,
    /// The `budget_requested` record: scope and amounts.
    pub asked: Value,
}

impl Inbound {
    pub fn of(msg: &Envelope, ledger: &Ledger) -> Result<Inbound, LlmError> {
        let parked = (msg.kind == message::APPROVAL_RESPONSE)
            .then(|| msg.body.get("parked").cloned())
            .flatten()
            .and_then(|p| serde_json::from_value::<Envelope>(p).ok());
        let Some(parked) = parked else {
            return Ok(Inbound {
                key: msg
                    .case
                    .as_ref()
                    .map_or_else(|| msg.id.to_string(), |c| c.to_string()),
                reply_to: ReplyTo::Sender,
                case: msg.case.as_ref().map(|c| c.to_string()),
                budget: None,
                text_replies: !(msg.kind == message::REPLY && matches!(msg.from, Party::Agent(_))),
            });
        };
        let request = msg
            .body
            .get("request")
            .and_then(Value::as_str)
            .unwrap_or("");
        let budget = ledger
            .find(ledger::BUDGET_REQUESTED, request)?
            .map(|asked| BudgetAnswer {
                request: request.to_string(),
                approved: msg.body.get("approved").and_then(Value::as_bool) == Some(true),
                note: msg
                    .body
                    .get("note")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                asked,
            });
        let case = parked.case.clone().or(msg.case.clone());
        Ok(Inbound {
            key: parked
                .case
                .as_ref()
                .map_or_else(|| parked.id.to_string(), |c| c.to_string()),
            reply_to: ReplyTo::Parked {
                id: parked.id,
                to: parked.from.clone(),
                case: case.clone(),
            },
            case: case.map(|c| c.to_string()),
            budget,
            text_replies: true,
        })
    }
}

/// The user turn that shows a message to the model.
pub fn render(msg: &Envelope) -> String {
    let mut body = msg.body.clone();
    if let Some(obj) = body.as_object_mut() {
        // The parked message is already in this conversation.
        obj.remove("parked");
    }
    let text = match body.as_object() {
        Some(o) if o.len() == 1 && o.get("text").is_some_and(Value::is_string) => {
            o["text"].as_str().unwrap_or_default().to_string()
        }
        _ => serde_json::to_string_pretty(&body).unwrap_or_default(),
    };
    let case = msg
        .case
        .as_ref()
        .map(|c| format!(", case {c}"))
        .unwrap_or_default();
    format!(
        "Message {} from {} (type {}{case}):\n{text}",
        msg.id, msg.from, msg.kind
    )
}
