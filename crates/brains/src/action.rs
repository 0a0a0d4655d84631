//! What a brain asks the runtime to do.

use serde::{Deserialize, Serialize};
use society_core::{CaseId, MsgId, Party};

/// Serializable, because a decision's `then` actions wait in an approval
/// request or a debate until the decision is carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
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
        /// Capabilities a `role:<r>` recipient must have (`Envelope::needs`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        needs: Vec<String>,
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
    /// Propose a decision instead of acting (see `society_core::governance`).
    /// The runtime scores it and picks the level: `autonomous` runs `then`
    /// at once; `requires_approval` asks the orchestrator and runs `then`
    /// when approved; `collaborative` opens a debate and runs `then` (with the
    /// agreed plan) on consensus, or asks the orchestrator when it expires.
    /// A rejection with feedback comes back to the brain as an
    /// `approval_response`, to propose a revision.
    Decide {
        proposal: serde_json::Value,
        #[serde(default)]
        then: Vec<Action>,
    },
}
