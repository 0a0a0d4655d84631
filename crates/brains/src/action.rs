//! What a brain asks the runtime to do.

use society_core::{CaseId, Party};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a new message. `case: None` inherits the inbound message's case.
    Send {
        to: Party,
        kind: String,
        body: serde_json::Value,
        case: Option<CaseId>,
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
}
