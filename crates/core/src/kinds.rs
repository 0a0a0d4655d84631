//! The names of the records the runtime gives meaning to.
//!
//! A kind is written by one process and read back by another (the
//! supervisor folds what agents write, `fsck` and the CLI read what both
//! write), often from another crate. A misspelt literal on either side would
//! not fail to compile: it would silently stop matching. So every name that
//! more than one place writes or reads is a constant here, and writers and
//! readers use the same one.
//!
//! Only names the runtime itself acts on live here. Message types and case
//! events are open sets — an agent may send a `draft` or record a
//! `stage_two` — and those stay the agents' business.

/// Envelope `type`s (`"type"` of every inbox, outbox and mirror record).
pub mod message {
    /// An agent's record for its case's log, addressed to the supervisor;
    /// the body's `event` names it (see [`super::case_log`]).
    pub const CASE_EVENT: &str = "case_event";
    /// An agent asks the orchestrator to approve a plan.
    pub const APPROVAL_REQUEST: &str = "approval_request";
    /// The orchestrator's decision on an approval request, delivered to
    /// the agent that asked.
    pub const APPROVAL_RESPONSE: &str = "approval_response";
    /// An agent hands a problem up to the supervisor.
    pub const ESCALATE: &str = "escalate";
    /// The supervisor tells the orchestrator about a problem (an agent's
    /// `escalate`, a dead letter, an overdue case).
    pub const ESCALATION: &str = "escalation";
    /// An agent reports a message it dead-lettered to the supervisor.
    pub const DEAD_LETTER: &str = "dead_letter";
    /// A request from the orchestrator (the CLI) to the supervisor.
    pub const CONTROL: &str = "control";
    /// An agent's answer to the message it is handling, unless its brain
    /// names another type.
    pub const REPLY: &str = "reply";
    /// The supervisor tells a sender that its message was blocked or could
    /// not be delivered.
    pub const MESSAGE_BLOCKED: &str = "message_blocked";
    /// An agent asks the supervisor to moderate a debate on a collaborative
    /// decision (body: the decision, its plan, participants, limits, and
    /// the parked message with the outputs to release on consensus).
    pub const DEBATE_REQUEST: &str = "debate_request";
    /// The supervisor asks a debate participant for its position.
    pub const ROUND_REQUEST: &str = "round_request";
    /// A participant's position in a debate round (a reply to a
    /// `round_request`; body `{position: {key: value}}`).
    pub const PERSPECTIVE: &str = "perspective";
    /// The supervisor tells the proposer how its debate ended: consensus
    /// (with the agreed plan) or expiry (escalated for approval).
    pub const DEBATE_RESULT: &str = "debate_result";
    /// The orchestrator's verdict on a decision taken autonomously
    /// (`society review`; body `{decision, ok, feedback, quality}`), handled
    /// by the agent's runtime, which logs it in `decisions.jsonl`.
    pub const DECISION_REVIEW: &str = "decision_review";
    /// The orchestrator's notes on a milestone gate it rejected, to each
    /// agent the gate names in `revise_to` (body `{gate, notes, request}`).
    pub const GATE_NOTES: &str = "gate_notes";
    /// The orchestrator assigns a reused or new folder its purpose (`society
    /// spawn --purpose`; body `{purpose, tags, n}`). Consumed by the agent's
    /// runtime, not its brain; its unconsumed line is what makes a folder
    /// just claimed no longer dormant.
    pub const PURPOSE: &str = "purpose";
}

/// `event`s of case-log records (`supervisor/cases/case-<id>.jsonl`) that
/// move a case or that the runtime writes itself. Any other name an agent
/// reports is recorded as [`AGENT_REPORT`] with the name in `report`.
pub mod case_log {
    pub const CREATED: &str = "created";
    /// The first owner of a case.
    pub const ASSIGNED: &str = "assigned";
    /// A case message to an agent other than the owner.
    pub const HANDOFF: &str = "handoff";
    /// A routed message that belongs to the case.
    pub const MESSAGE: &str = "message";
    /// An agent's own case event whose name the runtime does not know.
    pub const AGENT_REPORT: &str = "agent_report";
    /// An explicit status change (`to` names the status).
    pub const STATUS: &str = "status";
    pub const APPROVAL_REQUESTED: &str = "approval_requested";
    pub const APPROVED: &str = "approved";
    pub const REJECTED: &str = "rejected";
    pub const ESCALATED: &str = "escalated";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
    pub const CLOSED: &str = "closed";
    /// Most of the case's time is used (written once).
    pub const DUE_SOON: &str = "due_soon";
    /// The case is past due (written once, with an escalation).
    pub const OVERDUE: &str = "overdue";
    /// A debate's case opened (plan, participants, limits).
    pub const DEBATE_OPENED: &str = "debate_opened";
    /// A round request went to a participant.
    pub const ROUND_REQUEST: &str = "round_request";
    /// A participant's position, as recorded from its reply.
    pub const PERSPECTIVE: &str = "perspective";
    /// The debate reached consensus (agreed plan, duration, iterations).
    pub const CONSENSUS: &str = "consensus";
    /// The debate's time ran out without consensus; it escalates.
    pub const DEBATE_EXPIRED: &str = "debate_expired";
    /// A case reached a milestone gate (`[[routing.gate]]`): it waits for
    /// the orchestrator (`gate`, `agent`, `request`).
    pub const AWAITING_GATE: &str = "awaiting_gate";
}

/// `event`s of log records: `registry.jsonl`, `activity.jsonl`,
/// `system-events.jsonl` and dead-letter files.
pub mod event {
    /// In the registry: an agent was provisioned (with its role).
    pub const CREATED: &str = "created";
    /// In the registry: `society rm` moved the agent's folder into
    /// `archive/` (with `archive`, the path, and `request`).
    pub const REMOVED: &str = "removed";
    /// The system event of a removal.
    pub const AGENT_REMOVED: &str = "agent_removed";
    /// In an agent's activity log: `society spawn --purpose` reused the
    /// folder (`previous`, `new`, `skills_preserved`, `state_reset`, `archive`).
    pub const PURPOSE_TRANSITION: &str = "purpose_transition";
    /// In the registry: `society retire` retired the agent (with `reason`).
    pub const RETIRED: &str = "retired";
    pub const MESSAGE_RECEIVED: &str = "message_received";
    pub const MESSAGE_HANDLED: &str = "message_handled";
    /// A message whose id the agent had already handled.
    pub const DUPLICATE_DROPPED: &str = "duplicate_dropped";
    /// A message waits (a provider's `Retry-After`) without counting an attempt.
    pub const MESSAGE_DEFERRED: &str = "message_deferred";
    /// An attempt at a message failed; it will be tried again.
    pub const MESSAGE_FAILED: &str = "message_failed";
    /// In an agent's activity log: it dead-lettered an inbox line.
    pub const MESSAGE_DEAD_LETTERED: &str = "message_dead_lettered";
    /// A dead-letter file's record (`deadletter.jsonl`).
    pub const DEAD_LETTERED: &str = "dead_lettered";
    /// In an agent's dead-letter file: `society deadletter retry` put the
    /// dead-lettered message back into its inbox (same id).
    pub const DEAD_LETTER_RETRIED: &str = "dead_letter_retried";
    /// In the receiver's dead-letter file: a message its protection refused.
    pub const REFUSED: &str = "refused";
    /// The system event of a refused message.
    pub const MESSAGE_REFUSED: &str = "message_refused";
    /// An outbox line the supervisor could not deliver (dead-letter record
    /// and system event).
    pub const UNDELIVERABLE: &str = "undeliverable";
    /// A message the routing policy blocked.
    pub const MESSAGE_BLOCKED: &str = "message_blocked";
    /// A log record over `max_record` was refused; this short one says so
    /// in its place (`refused`: the event's name, `bytes`, `max`).
    pub const RECORD_REFUSED: &str = "record_refused";
    /// An agent's last words before exiting on an error: the supervisor
    /// reads them back to tell a broken agent from a crashing one.
    pub const EXIT_ERROR: &str = "exit_error";
    /// A fully consumed live file was rotated into a segment.
    pub const ROTATED: &str = "rotated";
    /// The supervisor handed a problem to the orchestrator.
    pub const ESCALATED: &str = "escalated";
    pub const AGENT_STARTED: &str = "agent_started";
    pub const AGENT_EXITED: &str = "agent_exited";
    /// An agent that cannot run until its folder is repaired.
    pub const AGENT_BROKEN: &str = "agent_broken";
    pub const AGENT_BACKOFF: &str = "agent_backoff";
    pub const AGENT_HUNG: &str = "agent_hung";
    /// A running agent found by a supervisor that (re)started.
    pub const AGENT_ADOPTED: &str = "agent_adopted";
    /// Too many failures within the restart window: not restarted until
    /// `society restart`.
    pub const AGENT_FAILED: &str = "agent_failed";
    pub const AGENT_SPAWN_FAILED: &str = "agent_spawn_failed";
    pub const AGENT_CONFIG_INVALID: &str = "agent_config_invalid";
    /// A file the supervisor consumes no longer matches its cursor.
    pub const CURSOR_INCIDENT: &str = "cursor_incident";
    /// Receiver protection blocked a sender for a while (or until lifted).
    pub const SENDER_SANCTIONED: &str = "sender_sanctioned";
    /// A message in a case already closed or cancelled was delivered; its
    /// case log, final, got no record of it.
    pub const CASE_ENDED_MESSAGE: &str = "case_ended_message";
}

/// `event`s of an `llm` agent's ledger (`costs.jsonl`).
pub mod ledger {
    /// One model call and what it cost.
    pub const USAGE: &str = "usage";
    /// The agent asked the orchestrator for more budget.
    pub const BUDGET_REQUESTED: &str = "budget_requested";
    /// The orchestrator granted it.
    pub const BUDGET_EXTENDED: &str = "budget_extended";
    /// A request sent but never answered (a timeout, a cut connection): the
    /// provider may bill it, nobody knows how much.
    pub const UNKNOWN_COST: &str = "unknown_cost";
}

/// `event`s of an agent's decision log (`decisions.jsonl`): one `assessed`
/// per decision, then what became of it. Written by the agent's runtime,
/// folded by `society review` and `society metrics`.
pub mod decision_log {
    /// The runtime scored a proposal and chose its level (the decision's
    /// first record: type, level, rule, scores, case, revision, parent).
    pub const ASSESSED: &str = "assessed";
    /// The decision asked for approval (`request`: the request's id).
    pub const APPROVAL_REQUESTED: &str = "approval_requested";
    /// The decision went to a debate.
    pub const DEBATE_REQUESTED: &str = "debate_requested";
    /// How it ended: `approved`, `approver` (`self` for an autonomous
    /// decision), `outcome`.
    pub const RESOLVED: &str = "resolved";
    /// The orchestrator's after-the-fact verdict (`society review`).
    pub const REVIEWED: &str = "reviewed";
    /// A proposal that could not be parsed (no decision id).
    pub const REFUSED: &str = "refused";
    /// `approver` of a decision the agent took on its own.
    pub const SELF_APPROVER: &str = "self";
}

/// `event`s of an agent's `tools.jsonl`.
pub mod tool_log {
    /// One executed tool call (`tool`, `ok`, `ms`, …).
    pub const TOOL_CALL: &str = "tool_call";
    /// Written before an own or MCP tool runs; the `tool_call` follows.
    pub const TOOL_STARTED: &str = "tool_started";
}

/// Broadcasts with acknowledgement (`society broadcast`): the records of
/// `messages/broadcast.jsonl` and the names the agent runtime and the
/// supervisor share.
pub mod broadcast {
    /// The body field of each copy: `{"id": <broadcast id>, "ack": "auto"|"explicit"}`.
    pub const BODY_FIELD: &str = "broadcast";
    /// The message type of an acknowledgement (an agent to the supervisor;
    /// also what an explicit-ack brain replies with).
    pub const ACK_TYPE: &str = "ack";
    /// `ack` modes of a broadcast: the runtime acknowledges on handling, or
    /// the brain must reply with type [`ACK_TYPE`].
    pub const AUTO: &str = "auto";
    pub const EXPLICIT: &str = "explicit";
    /// `event`s of `messages/broadcast.jsonl`: the broadcast (written before
    /// its copies), the copies delivered, one agent's acknowledgement, the
    /// escalation of the missing ones after the deadline.
    pub const BROADCAST: &str = "broadcast";
    pub const SENT: &str = "sent";
    pub const ACK: &str = "ack";
    pub const ESCALATED: &str = "escalated";
}

/// Shared context (`society shared`).
pub mod shared {
    /// An agent asks to publish a shared file (body `{name, path}`, the
    /// path relative to its folder); allowed by its policy's `shared_write`.
    pub const PUT_TYPE: &str = "shared_put";
    /// The supervisor's answer: `{name, version, sha256}` or `{name, error}`.
    pub const DONE_TYPE: &str = "shared_put_done";
    pub const FAILED_TYPE: &str = "shared_put_failed";
    /// `event`s of `shared/.requests.jsonl`.
    pub const REQUEST: &str = "request";
    pub const ANSWERED: &str = "answered";
}
