//! What a brain asks the runtime to do.

use society_core::{CaseId, MsgId, Party};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a new message. `case: None` inherits the inbound message's case.
    Send {
        to: Party,
        kind: String,
        body: serde_json::Value,
        case: Option<CaseId>,
        /// The message this answers, when it is not the inbound one (a reply
        /// to a parked message, sent while handling its approval).
        reply_to: Option<MsgId>,
    },
    /// Reply to the inbound message's sender (sets `reply_to`).
    Reply {
        kind: String,
        body: serde_json::Value,
    },
    /// Append an event to the case log (written by the supervisor).
    CaseEvent {
        event: String,
        fields: serde_json::Value,
    },
    /// A line in the agent's `activity.jsonl`.
    Log { message: String },
    /// Ask the orchestrator to approve a plan. The message being handled is
    /// parked: the answer arrives later as an `approval_response` message
    /// that carries it back, and the agent needs no process meanwhile.
    RequestApproval {
        plan: String,
        rationale: String,
        alternatives: Vec<String>,
    },
    /// Hand a problem up: agent → supervisor → orchestrator.
    Escalate {
        reason: String,
        context: serde_json::Value,
    },
}
