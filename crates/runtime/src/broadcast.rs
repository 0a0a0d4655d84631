//! Broadcasts with acknowledgement: the records of
//! `messages/broadcast.jsonl` and their fold, shared by the CLI (which writes
//! the broadcast and reads its status) and the supervisor (which records
//! acknowledgements and escalates what is missing at the deadline).
//!
//! One line per fact, never rewritten: `broadcast` (written by the CLI
//! *before* any copy, so an acknowledgement never names an unknown
//! broadcast), `sent` (the copies delivered and refused), `ack` (one
//! agent, written by the supervisor from the agent's `ack` message, keyed by
//! that message's id) and `escalated` (the missing agents, once, in the same
//! write-ahead batch as the escalation). The fold is a pure function of the
//! lines, so a restarted supervisor knows exactly what was escalated.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use society_core::kinds::broadcast as kind;
use society_core::{AgentId, MsgId};
use std::collections::BTreeMap;

/// Default `--deadline`: how long recipients have to acknowledge.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// Bodies up to this size (bytes of JSON) are kept in the `broadcast`
/// record; larger ones only by digest (each copy holds the body anyway).
pub const BODY_KEPT: usize = 4096;

/// The `broadcast` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: MsgId,
    pub ts: String,
    pub by: String,
    /// The copies' message type.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `auto` or `explicit`.
    pub ack: String,
    pub recipients: Vec<AgentId>,
    /// RFC 3339, and the same as ms since the epoch.
    pub deadline: String,
    pub deadline_ms: u64,
    pub body_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// One agent's acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub agent: AgentId,
    pub ts: String,
    /// `auto` or `explicit`.
    pub how: String,
    /// The copy acknowledged.
    #[serde(default)]
    pub message: Option<MsgId>,
    /// The `ack` message's id (the record's key).
    pub src: String,
}

/// The escalation of the agents missing at the deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalated {
    pub ts: String,
    pub missing: Vec<AgentId>,
    pub escalation: MsgId,
    pub src: String,
}

/// A line of `messages/broadcast.jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    Broadcast(Record),
    Sent {
        broadcast: MsgId,
        #[serde(default)]
        copies: BTreeMap<AgentId, MsgId>,
        #[serde(default)]
        failed: BTreeMap<AgentId, String>,
    },
    Ack {
        broadcast: MsgId,
        #[serde(flatten)]
        ack: Ack,
    },
    Escalated {
        broadcast: MsgId,
        #[serde(flatten)]
        escalated: Escalated,
    },
}

/// A line of the log as JSON, with its `event` first.
pub fn line(event: &str, broadcast: Option<&MsgId>, fields: impl Serialize) -> Vec<u8> {
    let mut out = serde_json::Map::new();
    out.insert("event".into(), event.into());
    if let Some(b) = broadcast {
        out.insert("broadcast".into(), b.to_string().into());
    }
    if let Ok(Value::Object(f)) = serde_json::to_value(fields) {
        out.extend(f);
    }
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

pub fn record_line(r: &Record) -> Vec<u8> {
    line(kind::BROADCAST, None, r)
}

pub fn ack_line(broadcast: &MsgId, ack: &Ack) -> Vec<u8> {
    line(kind::ACK, Some(broadcast), ack)
}

pub fn escalated_line(broadcast: &MsgId, e: &Escalated) -> Vec<u8> {
    line(kind::ESCALATED, Some(broadcast), e)
}

pub fn sent_line(
    broadcast: &MsgId,
    copies: &BTreeMap<AgentId, MsgId>,
    failed: &BTreeMap<AgentId, String>,
) -> Vec<u8> {
    line(
        kind::SENT,
        Some(broadcast),
        serde_json::json!({"ts": society_core::time::now_rfc3339(), "copies": copies, "failed": failed}),
    )
}

/// One broadcast as its lines leave it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    #[serde(flatten)]
    pub record: Record,
    pub copies: BTreeMap<AgentId, MsgId>,
    /// Copies the CLI could not deliver, with why.
    pub failed: BTreeMap<AgentId, String>,
    pub acks: BTreeMap<AgentId, Ack>,
    pub escalated: Option<Escalated>,
}

impl State {
    /// Recipients that have not acknowledged, in order.
    pub fn missing(&self) -> Vec<AgentId> {
        self.record
            .recipients
            .iter()
            .filter(|a| !self.acks.contains_key(*a))
            .cloned()
            .collect()
    }

    /// Every recipient acknowledged.
    pub fn complete(&self) -> bool {
        self.missing().is_empty()
    }

    /// `complete`, `escalated` (missing ones were escalated), `waiting`.
    pub fn state(&self) -> &'static str {
        if self.complete() {
            "complete"
        } else if self.escalated.is_some() {
            "escalated"
        } else {
            "waiting"
        }
    }
}

/// Every broadcast, by id (ids sort by time).
#[derive(Debug, Default)]
pub struct Fold {
    pub all: BTreeMap<MsgId, State>,
}

impl Fold {
    /// Folds one line; lines of another shape, or about an unknown
    /// broadcast, or acks from non-recipients, change nothing.
    pub fn apply(&mut self, v: &Value) {
        let Ok(line) = serde_json::from_value::<Line>(v.clone()) else {
            return;
        };
        match line {
            Line::Broadcast(record) => {
                self.all.entry(record.id).or_insert_with(|| State {
                    record,
                    copies: BTreeMap::new(),
                    failed: BTreeMap::new(),
                    acks: BTreeMap::new(),
                    escalated: None,
                });
            }
            Line::Sent {
                broadcast,
                copies,
                failed,
            } => {
                if let Some(s) = self.all.get_mut(&broadcast) {
                    s.copies.extend(copies);
                    s.failed.extend(failed);
                }
            }
            Line::Ack { broadcast, ack } => {
                if let Some(s) = self.all.get_mut(&broadcast) {
                    if s.record.recipients.contains(&ack.agent) {
                        s.acks.entry(ack.agent.clone()).or_insert(ack);
                    }
                }
            }
            Line::Escalated {
                broadcast,
                escalated,
            } => {
                if let Some(s) = self.all.get_mut(&broadcast) {
                    s.escalated.get_or_insert(escalated);
                }
            }
        }
    }

    /// The fold of a whole log (missing: empty).
    pub fn load(path: &std::path::Path) -> Result<(Fold, u64), society_core::IoError> {
        let mut fold = Fold::default();
        let mut cursor = 0;
        fold.read(path, &mut cursor)?;
        Ok((fold, cursor))
    }

    /// Folds the complete lines after `cursor` and moves it past them.
    pub fn read(
        &mut self,
        path: &std::path::Path,
        cursor: &mut u64,
    ) -> Result<(), society_core::IoError> {
        match society_core::jsonl::read_objects(path, cursor) {
            Ok(lines) => {
                lines.iter().for_each(|v| self.apply(v));
                Ok(())
            }
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AgentId {
        AgentId::new(s).expect("id")
    }

    fn value(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn the_fold_counts_acks_of_recipients_once_and_keeps_the_first_escalation() {
        let b = MsgId::generate();
        let record = Record {
            id: b,
            ts: "2026-01-01T00:00:00.000Z".into(),
            by: "orchestrator".into(),
            kind: "broadcast".into(),
            role: None,
            ack: "auto".into(),
            recipients: vec![id("a"), id("b")],
            deadline: "2026-01-01T00:10:00.000Z".into(),
            deadline_ms: 1,
            body_sha256: String::new(),
            body: None,
        };
        let ack = |agent: &str, src: &str| Ack {
            agent: id(agent),
            ts: "t".into(),
            how: "auto".into(),
            message: None,
            src: src.into(),
        };
        let mut f = Fold::default();
        f.apply(&value(ack_line(&b, &ack("a", "early"))));
        assert!(
            f.all.is_empty(),
            "an ack of an unknown broadcast is nothing"
        );
        f.apply(&value(record_line(&record)));
        f.apply(&value(ack_line(&b, &ack("a", "1"))));
        f.apply(&value(ack_line(&b, &ack("a", "2"))));
        f.apply(&value(ack_line(&b, &ack("zed", "3"))));
        let s = &f.all[&b];
        assert_eq!(s.acks.len(), 1);
        assert_eq!(s.acks[&id("a")].src, "1", "the first ack stands");
        assert_eq!(s.missing(), vec![id("b")]);
        assert_eq!(s.state(), "waiting");
        let esc = |src: &str| Escalated {
            ts: "t".into(),
            missing: vec![id("b")],
            escalation: MsgId::generate(),
            src: src.into(),
        };
        f.apply(&value(escalated_line(&b, &esc("x"))));
        f.apply(&value(escalated_line(&b, &esc("y"))));
        assert_eq!(
            f.all[&b].escalated.as_ref().map(|e| e.src.as_str()),
            Some("x")
        );
        assert_eq!(f.all[&b].state(), "escalated");
        f.apply(&value(ack_line(&b, &ack("b", "4"))));
        assert_eq!(f.all[&b].state(), "complete");
    }
}
