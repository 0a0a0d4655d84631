//! A batch of appends decided from a range of source lines (an outbox, the
//! supervisor's inbox) or raised by the supervisor itself. Planning
//! (`planner.rs`) changes no state: what a batch decides about cases,
//! approvals and the guard is kept in the [`Plan`] and applied by its commit
//! (`commit.rs`), after it landed.
//!
//! Every record carries a key that identifies it in its destination: its
//! `src` field if it has one, else its `id`.

use super::guard::GuardTxn;
use society_core::case::CaseSummary;
use society_core::jsonl::{read_lines_bounded, read_lines_checked, CursorCheck, Line};
use society_core::{AgentId, CaseId, Envelope, FormatError, MsgId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// Output indexes for messages the supervisor derives from a source message
/// (ids are `MsgId::derive(source, index)`), far from brains' output indexes.
pub(super) const BLOCKED: u32 = 0x7fff_0001;
pub(super) const HELD: u32 = 0x7fff_0002;
/// A milestone gate's approval request (from the case event's id).
pub(super) const GATE: u32 = 0x7fff_0009;
/// First index of a rejected gate's notes (one per `revise_to` party).
pub(super) const GATE_NOTES: u32 = 0x7fff_0100;
pub(super) const ESCALATION: u32 = 0x7fff_0003;
pub(super) const RESPONSE: u32 = 0x7fff_0004;
/// Source of the escalation of a sanction or a hop-limit cut (itself turned
/// into an escalation id by [`ESCALATION`]).
pub(super) const SANCTION: u32 = 0x7fff_0005;
pub(super) const HOP_LIMIT: u32 = 0x7fff_0006;
/// A debate's messages, derived from its `debate_request`: the result to
/// the proposer, the approval request of an expired debate, and the round
/// requests (`DEBATE_ROUND + iteration`, then the participant's index).
pub(super) const DEBATE_RESULT: u32 = 0x7fff_0007;
pub(super) const DEBATE_APPROVAL: u32 = 0x7fff_0008;
pub(super) const DEBATE_ROUND: u32 = 0x7ff0_0000;
/// An escalation's or approval request's message to the n-th node of its
/// chain (`ORG_HOP + n`, from the item's id).
pub(super) const ORG_HOP: u32 = 0x7fe0_0000;

#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub dest: PathBuf,
    pub durable: bool,
    pub key: String,
    pub record: Vec<u8>,
}

/// Work to do once a batch is committed.
#[derive(Debug)]
pub(super) enum After {
    Start(AgentId),
    Stop(AgentId),
    Restart(AgentId),
    Archive(CaseId),
    /// `society config reload`, answered in the supervisor's activity log
    /// under the request's id.
    Reload(MsgId),
    /// Forget the agent and move its folder to `archive` (relative to the
    /// state directory); see `remove.rs`.
    Remove {
        agent: AgentId,
        archive: String,
    },
}

#[derive(Debug, Default)]
pub(super) struct Plan {
    pub deliveries: Vec<Delivery>,
    pub wake: Vec<AgentId>,
    pub after: Vec<After>,
    /// When the batch is judged (ms since the epoch).
    pub now: u64,
    /// Source lines the batch consumes (for `rotate_lines`).
    pub lines: u64,
    /// Cases as this batch leaves them (for the later lines of the batch).
    pub cases: HashMap<CaseId, CaseSummary>,
    /// Approval requests this batch delivers, and requests it answers.
    pub approvals: Vec<Envelope>,
    pub decided: Vec<MsgId>,
    /// Escalations and approvals in the organisation as this batch leaves
    /// them (applied from their log records once the batch landed).
    pub items: HashMap<MsgId, crate::org::Item>,
    /// What the guard decided.
    pub guard: GuardTxn,
    /// Re-planning a batch a crash interrupted: `(dest, key)` of the records
    /// that already landed. A message already in its recipient's inbox was
    /// admitted and is admitted again, whatever the guard says now.
    pub present: Option<HashSet<(PathBuf, String)>>,
    /// Re-planning lines that batches without a write-ahead record may have
    /// delivered (`recover_ahead`), not a recorded batch: a line that did
    /// not land is judged as usual, pacing included (its range is routed
    /// on later).
    pub may_pace: bool,
    /// The agent each `role:<r>` message of the batch goes to, by message
    /// id: saved with the write-ahead record, so that a re-planned batch
    /// places every message where the interrupted one did (load changes).
    pub picks: BTreeMap<String, AgentId>,
    /// Inbox bytes this batch adds per agent (load for the later picks).
    pub load: HashMap<AgentId, u64>,
    /// Each agent's inbox depth, read once per batch when a pick first
    /// needs it.
    pub depths: HashMap<AgentId, u64>,
}

impl Plan {
    pub fn at(now: u64) -> Plan {
        Plan {
            now,
            ..Plan::default()
        }
    }

    pub fn push(&mut self, dest: PathBuf, durable: bool, key: String, record: Vec<u8>) {
        self.deliveries.push(Delivery {
            dest,
            durable,
            key,
            record,
        });
    }

    pub fn landed(&self, dest: &std::path::Path, key: &str) -> bool {
        self.present
            .as_ref()
            .is_some_and(|p| p.contains(&(dest.to_path_buf(), key.to_string())))
    }
}

/// Milliseconds since the epoch, now.
pub(super) fn now_ms() -> u64 {
    society_core::time::unix_ms(std::time::SystemTime::now())
}

/// Most source bytes planned in one batch.
const BATCH_BYTES: usize = 1 << 20;

/// The incident (and line-count) key of the supervisor's own inbox.
pub(super) const INBOX_KEY: &str = "supervisor";

/// The key of a record about a source line: `<source>@<offset>`, with the
/// segment once the source has been rotated (`<source>@<seg>:<offset>`).
pub(crate) fn position_key(source: &str, seg: u64, offset: u64) -> String {
    if seg == 0 {
        format!("{source}@{offset}")
    } else {
        format!("{source}@{seg}:{offset}")
    }
}

/// Complete lines from `from`, up to (not past) `limit` — a batch being
/// resumed, whose range is known. Otherwise the cursor must still fit the
/// file (checked in the same open): `Err(check)` when it does not. At most
/// `max_line` bytes of any line are held (see `Line::oversize`).
pub(super) fn read_range(
    path: &std::path::Path,
    from: u64,
    limit: Option<u64>,
    max_line: usize,
) -> Result<Result<Vec<Line>, CursorCheck>, FormatError> {
    let mut batch = match limit {
        Some(_) => read_lines_bounded(path, from, BATCH_BYTES, max_line)?,
        None => match read_lines_checked(path, from, BATCH_BYTES, max_line)? {
            (CursorCheck::Ok, batch) => batch,
            (check, _) => return Ok(Err(check)),
        },
    };
    if let Some(limit) = limit {
        batch.lines.retain(|l| l.end <= limit);
    }
    Ok(Ok(batch.lines))
}
