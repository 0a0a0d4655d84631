//! JSON state documents shared between processes: an agent's `config.json`
//! (written by the CLI or supervisor, read by the agent), `checkpoint.json`
//! (written only by the agent) and `status.json` (the agent's heartbeat).

use crate::id::{AgentId, CaseId, MsgId};
use crate::jsonl::Durability;
use crate::time::duration_str;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many handled message ids a checkpoint remembers for duplicate dropping.
pub const RECENT_IDS: usize = 1024;

/// `agent-<id>/config.json`: everything the agent process needs, fully resolved
/// (defaults from `society.toml` already applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub id: AgentId,
    pub role: String,
    /// `{"kind": "echo" | "script", ...}`; interpreted by the brains crate.
    pub brain: serde_json::Value,
    #[serde(default)]
    pub keep_alive: bool,
    #[serde(default)]
    pub policy: Policy,
    /// What the agent can do (`capabilities = [...]`): a `role:<r>` message
    /// that `needs` some goes only to an agent of the role that has them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Where the agent stands in the organisation (`reports_to`, ...).
    #[serde(default, skip_serializing_if = "crate::org::Org::is_default")]
    pub org: crate::org::Org,
}

/// Per-agent timing, retry and durability settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// An idle agent without `keep_alive` exits after this long.
    #[serde(with = "duration_str")]
    pub idle_exit: Duration,
    /// How often the agent's main loop rewrites `status.json` when idle.
    #[serde(with = "duration_str")]
    pub heartbeat: Duration,
    /// A live agent whose heartbeat is older than this is hung and killed.
    #[serde(with = "duration_str")]
    pub hang_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping an agent.
    #[serde(with = "duration_str")]
    pub grace: Duration,
    /// A message that fails this many times is dead-lettered.
    pub max_attempts: u32,
    /// Largest record (bytes, including newline) the agent writes.
    pub max_record: usize,
    /// `durable` fsyncs inbox/outbox appends and checkpoints; `flushed` is the
    /// fast setting (safe against process crashes, not power loss).
    pub durability: Durability,
    #[serde(with = "duration_str")]
    pub backoff_initial: Duration,
    #[serde(with = "duration_str")]
    pub backoff_max: Duration,
    /// More than `burst` failures within `window` puts the agent in `failed`.
    pub burst: u32,
    #[serde(with = "duration_str")]
    pub window: Duration,
    /// Rejected approval requests an agent may revise before its case escalates.
    pub max_revisions: u32,
    /// Receiver protection: message types accepted (empty: all).
    pub accept_types: Vec<String>,
    /// Receiver protection: senders accepted, as parties (`research`,
    /// `role:review`, `orchestrator`; empty: all).
    pub accept_from: Vec<String>,
    /// Receiver protection: largest accepted body, in bytes of JSON.
    pub max_body: usize,
    /// Receiver protection: a token bucket per (sender, receiver) pair that
    /// refills at `rate_per_sec` up to `rate_burst` messages. A sender over
    /// it is paced, not refused: the router holds its further messages until
    /// the bucket has room (backpressure), so the defaults never cost a
    /// well-behaved pipeline a message.
    pub rate_per_sec: f64,
    pub rate_burst: u32,
    /// Deprecated (format 1 before the token bucket): messages per sender
    /// per minute. When set it wins: `rate_burst = N`, `rate_per_sec = N/60`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// A message more than this many agent hops from the orchestrator (or a
    /// timer) that started its conversation is dead-lettered and escalated:
    /// no loop between agents outlives it.
    pub max_hops: u32,
    /// Receiver protection: more than this many identical bodies within
    /// `flood_window` are refused (stops two agents looping on each other).
    pub flood_threshold: u32,
    #[serde(with = "duration_str")]
    pub flood_window: Duration,
    /// Retention: a live JSONL file is rotated into `archive/` as a
    /// numbered, compressed segment once its consumed part holds this many
    /// bytes or `rotate_lines` lines (logs without a consumer: bytes).
    pub rotate_bytes: u64,
    pub rotate_lines: u64,
    /// The agent may publish shared context (a `shared_put` message to the
    /// supervisor); otherwise only the orchestrator's `society shared put`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared_write: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            idle_exit: Duration::from_secs(60),
            heartbeat: Duration::from_secs(2),
            hang_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            max_attempts: 3,
            max_record: crate::DEFAULT_MAX_RECORD,
            durability: Durability::Durable,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(30),
            burst: 5,
            window: Duration::from_secs(60),
            max_revisions: 2,
            accept_types: Vec::new(),
            accept_from: Vec::new(),
            max_body: crate::DEFAULT_MAX_RECORD,
            rate_per_sec: 1000.0,
            rate_burst: 10_000,
            rate_limit: None,
            max_hops: 50,
            flood_threshold: 3,
            flood_window: Duration::from_secs(300),
            rotate_bytes: 64 << 20,
            rotate_lines: 1_000_000,
            shared_write: false,
        }
    }
}

/// The per-minute `rate_limit` every `config.json` of format 1 carried
/// before the token bucket, because it was the default: read as unset, so an
/// upgraded society gets the bucket's defaults rather than 1 message a second.
const OLD_DEFAULT_RATE_LIMIT: u32 = 60;

impl Policy {
    /// The token bucket in force: `(refill per second, burst)`.
    pub fn rate(&self) -> (f64, u32) {
        match self.rate_limit.filter(|n| *n != OLD_DEFAULT_RATE_LIMIT) {
            Some(per_minute) => (f64::from(per_minute) / 60.0, per_minute),
            None => (self.rate_per_sec, self.rate_burst),
        }
    }

    /// Values a policy cannot hold: a rate that would stall a sender for
    /// ever, a hop limit that would refuse every agent message, a record
    /// limit past what every reader bounds a line at.
    pub fn check(&self) -> Result<(), String> {
        if self.rate_limit == Some(0) {
            return Err("rate_limit must be at least 1 (messages per minute)".into());
        }
        if self.rate_per_sec.is_nan() || self.rate_per_sec <= 0.0 || self.rate_per_sec.is_infinite()
        {
            return Err(format!(
                "rate_per_sec must be a positive number, not {}",
                self.rate_per_sec
            ));
        }
        if self.rate_burst == 0 {
            return Err("rate_burst must be at least 1".into());
        }
        if self.max_hops == 0 {
            return Err("max_hops must be at least 1".into());
        }
        if self.max_record == 0 || self.max_record > crate::MAX_RECORD_LIMIT {
            return Err(format!(
                "max_record must be between 1 and {} bytes (64 MiB), not {}; bigger payloads go to files in workspace/",
                crate::MAX_RECORD_LIMIT,
                self.max_record
            ));
        }
        if self.rotate_bytes == 0 || self.rotate_lines == 0 {
            return Err("rotate_bytes and rotate_lines must be at least 1".into());
        }
        Ok(())
    }
}

/// Counts of the ids in `AgentCheckpoint::recent`, kept by `remember`.
/// Equal to any other: it is derived, not state.
#[derive(Debug, Clone, Default)]
pub struct RecentIndex {
    counts: std::collections::HashMap<MsgId, u32>,
    total: usize,
}

impl RecentIndex {
    fn add(&mut self, id: MsgId) {
        *self.counts.entry(id).or_default() += 1;
        self.total += 1;
    }

    fn remove(&mut self, id: MsgId) {
        if let std::collections::hash_map::Entry::Occupied(mut e) = self.counts.entry(id) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
            self.total -= 1;
        }
    }
}

impl PartialEq for RecentIndex {
    fn eq(&self, _: &RecentIndex) -> bool {
        true
    }
}

/// `agent-<id>/checkpoint.json`: where the agent is in its inbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentCheckpoint {
    /// Incremented by every process start.
    pub generation: u64,
    /// Byte cursor: everything before it is handled (or dead-lettered).
    pub inbox_offset: u64,
    /// Which segment of the inbox the cursor is in: the number of times the
    /// inbox was rotated into `archive/` (see `society_core::segments`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inbox_seg: u64,
    /// Lines consumed in the live inbox (for `rotate_lines`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inbox_lines: u64,
    /// The message being handled, if a process died while handling it.
    pub in_flight: Option<InFlight>,
    /// Recently handled ids, newest last, at most [`RECENT_IDS`].
    #[serde(default)]
    pub recent: VecDeque<MsgId>,
    /// `recent` as counts by id, for `seen` (a message at a time, against
    /// 1,024 ids). Not written.
    #[serde(skip)]
    pub recent_index: RecentIndex,
    /// Messages handled successfully.
    #[serde(default)]
    pub handled: u64,
    /// Inbox lines quarantined in `deadletter.jsonl` (not in `handled`).
    #[serde(default)]
    pub dead_lettered: u64,
    /// A group-committed batch interrupted by a crash, being replayed one line
    /// at a time until the cursor passes `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
    /// The inbox stopped matching `inbox_offset` (truncated or rewritten
    /// below it): the agent consumes nothing until `society fsck --repair`
    /// has moved the cursor to what the files prove was handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// What the agent has handled, by type (`society_core::reuse`): counted
    /// in the same write that consumes each message, never reset by reuse.
    #[serde(default, skip_serializing_if = "crate::reuse::Experience::is_empty")]
    pub experience: crate::reuse::Experience,
    /// Counts every write of the agent's state (live or fsynced): the
    /// newer of the two files has the greater `seq`. Absent in format 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// The outbox's length when this checkpoint was written: outputs found
    /// after it belong to messages this checkpoint does not count handled
    /// (by a process whose live checkpoint a power cut lost), and a new
    /// attempt skips them. Absent in format 1: nothing is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_end: Option<u64>,
}

/// A file found not to match a consumer's cursor into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub file: std::path::PathBuf,
    /// `truncated` (the file is shorter than the cursor) or `off_boundary`
    /// (the byte before the cursor is not a newline: rewritten below it).
    pub kind: String,
    pub cursor: u64,
    /// The file's length when it was noticed.
    pub len: u64,
    pub ts: String,
    /// The id of the escalation that reported it (written once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<MsgId>,
}

impl Incident {
    /// One line for `status` and escalations.
    pub fn describe(&self) -> String {
        let name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        match self.kind.as_str() {
            "truncated" => format!(
                "{name} is {} bytes long, shorter than the cursor at {}: truncated or replaced",
                self.len, self.cursor
            ),
            _ => format!(
                "{name} was rewritten below the cursor at {} (the byte before it is not a newline)",
                self.cursor
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// Inbox offset just past the interrupted batch.
    pub end: u64,
    /// Outbox length when the batch began: its outputs may be anywhere after it.
    pub outbox_offset: u64,
}

impl AgentCheckpoint {
    /// The agent's state as its next process would resume it: the newer
    /// (by `seq`) of `checkpoint.json` and `checkpoint.live.json`; `Ok(None)`
    /// if there is no `checkpoint.json`.
    ///
    /// The agent writes its state after every step into the live file,
    /// without fsync (it survives a killed process, not a power cut), and
    /// the fsynced `checkpoint.json` when it settles: caught up for a moment,
    /// after a second of continuous work, and when it stops. After a power
    /// cut the live file may be older than `checkpoint.json`, or unreadable:
    /// then `checkpoint.json` stands, the messages after its cursor are
    /// handled again, and their outputs, already in the outbox after
    /// `outbox_end`, are not written twice.
    pub fn read(paths: &crate::AgentPaths) -> Result<Option<AgentCheckpoint>, crate::FormatError> {
        let Some(durable) =
            crate::atomic::read_json::<AgentCheckpoint>(&paths.checkpoint(), "agent checkpoint")?
        else {
            return Ok(None);
        };
        let live = crate::atomic::read_json::<AgentCheckpoint>(
            &paths.live_checkpoint(),
            "live agent checkpoint",
        )
        .ok()
        .flatten()
        .filter(|l| l.seq > durable.seq);
        Ok(Some(live.unwrap_or(durable)))
    }

    /// Writes `checkpoint.json` (fsynced) for a writer other than the agent
    /// (`spawn`, `fsck --repair`), and removes the live file, which would
    /// otherwise stand over it.
    pub fn write_durable(&self, paths: &crate::AgentPaths) -> Result<(), crate::IoError> {
        // Newer than either file, so a live file left behind (a crash
        // before its removal) cannot stand over it.
        let seq_of = |path: &std::path::Path| {
            crate::atomic::read_json::<AgentCheckpoint>(path, "agent checkpoint")
                .ok()
                .flatten()
                .map_or(0, |c| c.seq)
        };
        let mut ckpt = self.clone();
        ckpt.seq = ckpt
            .seq
            .max(seq_of(&paths.checkpoint()))
            .max(seq_of(&paths.live_checkpoint()))
            + 1;
        crate::atomic::write_json(&paths.checkpoint(), &ckpt, true)?;
        match std::fs::remove_file(paths.live_checkpoint()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(crate::IoError::new("remove", paths.live_checkpoint(), e))
            }
            _ => Ok(()),
        }
    }

    pub fn remember(&mut self, id: MsgId) {
        if !self.index_current() {
            self.recent_index = RecentIndex::default();
            for id in self.recent.clone() {
                self.recent_index.add(id);
            }
        }
        self.recent.push_back(id);
        self.recent_index.add(id);
        while self.recent.len() > RECENT_IDS {
            if let Some(old) = self.recent.pop_front() {
                self.recent_index.remove(old);
            }
        }
    }
    pub fn seen(&self, id: &MsgId) -> bool {
        if self.index_current() {
            self.recent_index.counts.contains_key(id)
        } else {
            self.recent.contains(id)
        }
    }

    /// Does `recent_index` count exactly `recent`? (Not after `recent` was
    /// read from disk or built directly: then `remember` rebuilds it.)
    fn index_current(&self) -> bool {
        self.recent_index.total == self.recent.len() && !self.recent.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub id: MsgId,
    pub attempt: u32,
    pub started: String,
    /// Inbox offset of the message's line.
    pub offset: u64,
    /// Outbox length when the first attempt started: a retry skips outputs
    /// already written after it.
    pub outbox_offset: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Set when the record covers a group-committed batch: inbox lines
    /// `[offset, batch_end)` were being handled together. After a crash they
    /// are replayed one by one, each checked against outputs already written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_end: Option<u64>,
    /// The message was deferred (a provider's `Retry-After`): no attempt
    /// starts before this time (RFC 3339), in this process or the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
}

/// What a live agent process says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveState {
    Starting,
    Running,
    Idle,
    Stopping,
}

/// `agent-<id>/status.json`, rewritten from the agent's main loop (the heartbeat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub agent: AgentId,
    pub pid: u32,
    pub gen: u64,
    pub state: LiveState,
    /// Heartbeat time.
    pub ts: String,
    /// When the current state began.
    pub since: String,
    pub current: Option<CurrentMessage>,
    pub handled: u64,
    /// Process group of a tool the agent is running (the `command` brain's
    /// program). A new generation SIGKILLs a group left here by a dead one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_pgid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentMessage {
    pub id: MsgId,
    #[serde(rename = "type")]
    pub kind: String,
    pub case: Option<CaseId>,
    pub attempt: u32,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_durations_are_human_strings() {
        let json = serde_json::to_value(Policy::default()).expect("serialise");
        assert_eq!(json["idle_exit"], "1m");
        let p: Policy =
            serde_json::from_value(serde_json::json!({"hang_timeout": "2s 500ms"})).expect("parse");
        assert_eq!(p.hang_timeout, Duration::from_millis(2500));
        assert_eq!(p.max_attempts, 3);
        assert!(
            serde_json::from_value::<Policy>(serde_json::json!({"hang_timeot": "1s"})).is_err()
        );
    }

    #[test]
    fn seen_agrees_with_recent_through_rollover_and_repeats() {
        let mut c = AgentCheckpoint::default();
        let ids: Vec<MsgId> = (0..RECENT_IDS + 10).map(|_| MsgId::generate()).collect();
        c.remember(ids[0]);
        c.remember(ids[0]);
        for id in &ids[1..] {
            c.remember(*id);
        }
        for id in &ids {
            assert_eq!(c.seen(id), c.recent.contains(id), "{id}");
        }
        assert!(!c.seen(&ids[0]), "rolled out, both copies");
        assert!(c.seen(ids.last().unwrap()));
        // Read back from disk: the index is rebuilt, the answers the same.
        let mut back: AgentCheckpoint =
            serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert!(back.seen(&ids[20]));
        back.remember(MsgId::generate());
        assert!(back.seen(&ids[20]) && !back.seen(&ids[0]));
    }

    #[test]
    fn a_checkpoint_written_by_another_writer_stands_over_the_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::AgentPaths::new(dir.path().to_path_buf());
        let live = AgentCheckpoint {
            seq: 7,
            inbox_offset: 99,
            ..AgentCheckpoint::default()
        };
        crate::atomic::write_json(&paths.checkpoint(), &AgentCheckpoint::default(), false).unwrap();
        crate::atomic::write_json(&paths.live_checkpoint(), &live, false).unwrap();
        assert_eq!(
            AgentCheckpoint::read(&paths).unwrap().unwrap().inbox_offset,
            99
        );
        // A rebuilt checkpoint (seq 0) is written newer than both.
        AgentCheckpoint::default().write_durable(&paths).unwrap();
        let back = AgentCheckpoint::read(&paths).unwrap().unwrap();
        assert_eq!(back.inbox_offset, 0);
        assert!(back.seq > 7, "{}", back.seq);
        assert!(!paths.live_checkpoint().exists());
    }

    #[test]
    fn recent_ids_are_bounded() {
        let mut c = AgentCheckpoint::default();
        let first = MsgId::generate();
        c.remember(first);
        for _ in 0..RECENT_IDS {
            c.remember(MsgId::generate());
        }
        assert_eq!(c.recent.len(), RECENT_IDS);
        assert!(!c.seen(&first));
    }
}
