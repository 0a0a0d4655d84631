//! Requests from the CLI (the orchestrator) to the supervisor, carried as
//! envelopes of type `control` in `supervisor/inbox.jsonl`. Durable: a
//! request made while the supervisor is down — an approval, say — is acted on
//! when it starts. The body is one [`Request`], tagged by `op`.

use serde::{Deserialize, Serialize};
use society_core::jsonl::{append_one, Durability};
use society_core::kinds::message;
use society_core::{AgentId, CaseId, Envelope, FormatError, Layout, MsgId, Party};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the agent now (spawn): clears a stop hold.
    Start { agent: AgentId },
    /// Stop the agent gracefully and hold it stopped until start/restart.
    Stop { agent: AgentId },
    /// Clear `failed` (and any hold) and start it.
    Restart { agent: AgentId },
    /// Open a case (`society case new`). The CLI chooses the id.
    CaseNew {
        case: CaseId,
        purpose: String,
        #[serde(default)]
        assign: Option<Party>,
        #[serde(default)]
        priority: Option<String>,
        /// RFC 3339 due time.
        due: String,
    },
    /// Close a case and archive its log (`society case close`).
    CaseClose {
        case: CaseId,
        #[serde(default)]
        reason: Option<String>,
    },
    /// The orchestrator delivered `message` (which carries a case) to
    /// `delivered_to`: record it in the case log, which only the supervisor writes.
    Reflect {
        message: Box<Envelope>,
        delivered_to: AgentId,
    },
    /// Forget an agent (`society rm`): stop it if it runs, move its folder
    /// into `archive/`, and route to it no more.
    Remove { agent: AgentId },
    /// Lift an agent's sanction (`society unblock`): it may send to agents
    /// again, with its record of refusals cleared.
    Unblock { agent: AgentId },
    /// Read `society.toml` again (`society config reload`): start agents it
    /// adds, restart those whose config it changes, stop those it no longer
    /// declares, and apply its routing and defaults.
    Reload,
    /// Answer an approval request (`society approve` / `reject`).
    Decide {
        request: MsgId,
        approve: bool,
        /// The approver's note, or the feedback of a rejection.
        #[serde(default)]
        note: Option<String>,
        /// More than yes or no (`override`, `choose`, `alternatives`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        how: Option<How>,
    },
}

/// The orchestrator's answers beyond yes and no (the source's Orchestrator
/// role): go ahead with another plan, pick one of the alternatives the
/// request listed, or ask for alternatives first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum How {
    /// Go ahead with this plan instead of the requester's (`approve`: true).
    Override { plan: String },
    /// Go ahead with alternative `option` (1-based) of the request, whose
    /// text is `plan` (`approve`: true).
    Choose { option: usize, plan: String },
    /// Propose alternatives before anything is decided (`approve`: false).
    Alternatives,
}

impl How {
    /// The name the answer carries (`decision` of the response).
    pub fn decision(&self) -> &'static str {
        match self {
            How::Override { .. } => "overridden",
            How::Choose { .. } => "chosen",
            How::Alternatives => "alternatives_requested",
        }
    }
    /// The plan to carry out instead, if any.
    pub fn plan(&self) -> Option<&str> {
        match self {
            How::Override { plan } | How::Choose { plan, .. } => Some(plan),
            How::Alternatives => None,
        }
    }
}

impl Request {
    pub fn name(&self) -> &'static str {
        match self {
            Request::Start { .. } => "start",
            Request::Stop { .. } => "stop",
            Request::Restart { .. } => "restart",
            Request::CaseNew { .. } => "case_new",
            Request::CaseClose { .. } => "case_close",
            Request::Reflect { .. } => "reflect",
            Request::Decide { .. } => "decide",
            Request::Unblock { .. } => "unblock",
            Request::Reload => "reload",
            Request::Remove { .. } => "remove",
        }
    }
}

/// Appends a request to the supervisor's inbox; returns the envelope written.
pub fn send(layout: &Layout, request: &Request) -> Result<Envelope, FormatError> {
    let body = serde_json::to_value(request).expect("a Request always serialises");
    let mut env = Envelope::new(
        Party::Orchestrator,
        Party::Supervisor,
        message::CONTROL,
        body,
    );
    env.case = match request {
        Request::CaseNew { case, .. } | Request::CaseClose { case, .. } => Some(case.clone()),
        Request::Reflect { message, .. } => message.case.clone(),
        _ => None,
    };
    // What the supervisor's inbox reader holds: a `Reflect` carries a
    // message its recipient's `max_record` allowed, which may be over 1 MiB.
    append_one(
        &layout.supervisor_inbox(),
        &env.to_line(),
        Durability::Durable,
        society_core::MAX_RECORD_LIMIT,
    )?;
    Ok(env)
}
