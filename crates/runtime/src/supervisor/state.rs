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
    /// Batches whose commit failed part-way (a destination could not be
    /// written: a full disk, a file replaced by a directory). Each is
    /// resumed — its recorded destination lengths tell what already landed —
    /// and never planned afresh, until it lands; its source is not read
    /// further meanwhile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalled: Vec<PendingBatch>,
    /// Sources the router stopped reading because the file no longer
    /// matches the cursor (shorter than it, or the byte before it is not a
    /// newline): keyed by agent id, or `supervisor` for its own inbox.
    /// `society fsck --repair` (with the supervisor stopped) moves the cursor
    /// to what the files prove was routed and clears the incident.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub incidents: BTreeMap<String, Incident>,
    /// Which segment of each outbox its cursor is in (times it was rotated
    /// into `archive/`; absent: 0).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub segs: BTreeMap<AgentId, u64>,
    /// The same for the supervisor's inbox.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inbox_seg: u64,
    /// Lines routed from each source's live file (agent id, or `supervisor`
    /// for its inbox), for `rotate_lines`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lines: BTreeMap<String, u64>,
    /// The length, when this checkpoint was saved, of every destination the
    /// router wrote lately. A batch from an agent's outbox whose records all
    /// go to these needs no write-ahead record of its own: they land after
    /// these lengths, where the next process looks for them (see
    /// `commit.rs`). Format 2.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ahead: BTreeMap<std::path::PathBuf, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub use society_core::state::Incident;

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
    /// When the batch was planned (ms since the epoch): a re-plan after a
    /// crash judges rates and windows at the same instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// A batch with no source lines (an escalation the supervisor raised
    /// itself, an overdue case): the records themselves, so a crash part-way
    /// writes the rest and repeats none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<Redo>,
    /// The agent each `role:<r>` message went to (by message id): a
    /// re-planned batch keeps them, whatever the load is by then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub picks: BTreeMap<String, AgentId>,
}

/// One record of a batch without source lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redo {
    pub dest: PathBuf,
    pub key: String,
    pub durable: bool,
    pub record: String,
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
    /// Writes are failing (a full disk, an unwritable file): what failed,
    /// since when, and how many batches wait. Absent when all is well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trouble: Option<Trouble>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trouble {
    pub since: String,
    pub error: String,
    pub stalled: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotStatus {
    /// `down`, `up`, `stopping`, `hung` (being stopped because its heartbeat
    /// went stale), `backoff`, `failed`, `broken` (cannot run until repaired).
    pub phase: String,
    pub pid: Option<u32>,
    #[serde(default)]
    pub backoff_until: Option<String>,
    /// Why the agent cannot run (`broken`): a corrupt config or checkpoint,
    /// an inbox that no longer matches its cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
