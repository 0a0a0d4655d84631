//! The supervisor's two JSON documents. `checkpoint.json` is durable state
//! (router cursors, per-agent holds and failures, its inbox cursor) and is the
//! only thing a restarted supervisor needs. `status.json` is its heartbeat and
//! a snapshot of what it is doing, for `society status`.

use serde::{Deserialize, Serialize};
use society_core::AgentId;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SupervisorCheckpoint {
    /// Per-outbox byte cursors of the router.
    #[serde(default)]
    pub cursors: BTreeMap<AgentId, u64>,
    /// A routing batch that was being written when the supervisor last stopped.
    #[serde(default)]
    pub pending: Option<PendingBatch>,
    /// Cursor in `supervisor/inbox.jsonl`.
    #[serde(default)]
    pub inbox_offset: u64,
    #[serde(default)]
    pub agents: BTreeMap<AgentId, AgentRecord>,
}

/// Write-ahead record of one batch: lines `[from, to)` of `agent`'s outbox
/// (or of the supervisor's inbox), and the length of every destination before the batch was appended.
/// Recovery re-plans the batch and skips records already present after those
/// lengths, so a crash mid-batch neither loses nor duplicates a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingBatch {
    /// Whose outbox the batch came from; `None`: the supervisor's own inbox.
    #[serde(default)]
    pub agent: Option<AgentId>,
    pub from: u64,
    pub to: u64,
    pub sizes: BTreeMap<PathBuf, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Starts that followed a failure.
    #[serde(default)]
    pub restarts: u32,
    /// Crash-looped past the burst rule; no restarts until `society restart`.
    #[serde(default)]
    pub failed: bool,
    /// Stopped by `society stop`; not started until `spawn` or `restart`.
    #[serde(default)]
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorStatus {
    pub pid: u32,
    pub started: String,
    /// Heartbeat.
    pub ts: String,
    /// `running`, or `stopping` during shutdown.
    pub state: String,
    pub agents: BTreeMap<AgentId, SlotStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotStatus {
    /// `down`, `up`, `stopping`, `hung` (being stopped because its heartbeat
    /// went stale), `backoff`, `failed`.
    pub phase: String,
    pub pid: Option<u32>,
    #[serde(default)]
    pub backoff_until: Option<String>,
}
