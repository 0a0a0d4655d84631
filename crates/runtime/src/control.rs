//! Requests from the CLI to the supervisor, carried as envelopes of type
//! `control` in `supervisor/inbox.jsonl`. Durable: a request made while the
//! supervisor is down is acted on when it starts.

use serde::{Deserialize, Serialize};
use society_core::jsonl::{append_one, Durability};
use society_core::{AgentId, Envelope, FormatError, Layout, MsgId, Party};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Start the agent now (spawn): clears a stop hold.
    Start,
    /// Stop the agent gracefully and hold it stopped until start/restart.
    Stop,
    /// Clear `failed` (and any hold) and start it.
    Restart,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub op: Op,
    pub agent: AgentId,
}

pub const TYPE: &str = "control";

/// Appends a request; returns its message id.
pub fn send(layout: &Layout, op: Op, agent: &AgentId) -> Result<MsgId, FormatError> {
    let body = serde_json::to_value(Request {
        op,
        agent: agent.clone(),
    })
    .expect("a Request always serialises");
    let env = Envelope::new(Party::Orchestrator, Party::Supervisor, TYPE, body);
    append_one(
        &layout.supervisor_inbox(),
        &env.to_line(),
        Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )?;
    Ok(env.id)
}
