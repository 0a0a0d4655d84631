//! Reading broadcasts back: `society broadcast status ID` and `society
//! broadcast list`, folded from `messages/broadcast.jsonl` (see
//! [`crate::broadcast`]). Sending is `send::broadcast_with`.

use super::ClientError;
use crate::broadcast::{Fold, State};
use serde::Serialize;
use society_core::{AgentId, Layout, MsgId};

/// One recipient of a broadcast, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    pub agent: AgentId,
    /// The copy it got, if it was delivered.
    pub message: Option<MsgId>,
    /// Why the copy was not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undelivered: Option<String>,
    pub acked: bool,
    /// When, and how (`auto`, `explicit`).
    pub ack_ts: Option<String>,
    pub how: Option<String>,
}

/// A broadcast and who has acknowledged it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub id: MsgId,
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ack: String,
    pub deadline: String,
    /// `complete`, `waiting`, `escalated`.
    pub state: &'static str,
    pub recipients: Vec<Recipient>,
    pub acked: usize,
    pub missing: Vec<AgentId>,
    /// The escalation of the missing agents, once the deadline passed.
    pub escalated: Option<crate::broadcast::Escalated>,
}

impl Status {
    fn of(s: &State) -> Status {
        let recipients = s
            .record
            .recipients
            .iter()
            .map(|a| {
                let ack = s.acks.get(a);
                Recipient {
                    agent: a.clone(),
                    message: s.copies.get(a).copied(),
                    undelivered: s.failed.get(a).cloned(),
                    acked: ack.is_some(),
                    ack_ts: ack.map(|k| k.ts.clone()),
                    how: ack.map(|k| k.how.clone()),
                }
            })
            .collect();
        Status {
            id: s.record.id,
            ts: s.record.ts.clone(),
            kind: s.record.kind.clone(),
            ack: s.record.ack.clone(),
            deadline: s.record.deadline.clone(),
            state: s.state(),
            recipients,
            acked: s.acks.len(),
            missing: s.missing(),
            escalated: s.escalated.clone(),
        }
    }
}

/// Every broadcast, oldest first.
pub fn list(layout: &Layout) -> Result<Vec<Status>, ClientError> {
    let (fold, _) = Fold::load(&layout.broadcast_log())?;
    Ok(fold.all.values().map(Status::of).collect())
}

/// One broadcast, by id.
pub fn status(layout: &Layout, id: &str) -> Result<Status, ClientError> {
    let (fold, _) = Fold::load(&layout.broadcast_log())?;
    let found = id
        .parse::<MsgId>()
        .ok()
        .and_then(|id| fold.all.get(&id))
        .ok_or_else(|| ClientError::Unknown {
            name: id.into(),
            looked: format!(
                "no broadcast with that id in {}",
                layout.broadcast_log().display()
            ),
        })?;
    Ok(Status::of(found))
}
