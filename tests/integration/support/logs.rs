//! Reading a society's files: state documents, the system log, replies.

use super::SOON;
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::path::Path;

/// A JSON document on disk (a checkpoint, a status file); `None` while it is
/// missing or not (yet) valid.
pub fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// An agent's state as its next process would resume it: the newer of
/// `checkpoint.json` and `checkpoint.live.json` (FORMAT.md).
pub fn agent_state(agent: &society_core::AgentPaths) -> Option<Value> {
    let ckpt = society_core::state::AgentCheckpoint::read(agent).ok()??;
    serde_json::to_value(ckpt).ok()
}

/// Records of `messages/system-events.jsonl` whose `event` is `event`, in order.
pub fn system_events(s: &Society, event: &str) -> Vec<Value> {
    records(&s.layout().system_events())
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

/// Replies in the orchestrator's inbox to message `id`.
pub fn replies_to(s: &Society, id: &str) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["reply_to"] == id)
        .collect()
}

/// Waits (up to [`SOON`]) for the first reply in the orchestrator's inbox to message `id`.
pub fn wait_reply(s: &Society, id: &str) -> Value {
    wait_until(SOON, &format!("a reply to {id}"), || {
        replies_to(s, id).into_iter().next()
    })
}
