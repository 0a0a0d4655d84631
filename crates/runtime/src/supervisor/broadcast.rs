//! The supervisor's side of broadcasts with acknowledgement (see
//! [`crate::broadcast`] for the log and its fold).
//!
//! * An agent's `ack` message reaches the supervisor's inbox like any
//!   report; [`Planner::broadcast_ack`] plans an `ack` line in
//!   `messages/broadcast.jsonl`, keyed by the message's id, with its inbox
//!   batch — so a crash mid-batch writes it once.
//! * [`Supervisor::broadcast_tick`] (every turn of the main loop, like the
//!   debates' clock) reads the log's new lines into the fold, and escalates
//!   each broadcast past its deadline with recipients missing: one direct
//!   batch holding the `escalated` line and the escalation, both with ids
//!   derived from the broadcast's, so a crash part-way finishes the batch at
//!   restart and the fold of the log — which then holds `escalated` — says
//!   never to escalate again.

use super::plan::{Plan, ESCALATION};
use super::planner::Planner;
use super::Supervisor;
use crate::broadcast::{self as bc, Ack, Escalated, Fold};
use serde_json::{json, Value};
use society_core::kinds::broadcast as kind;
use society_core::{time, AgentId, Envelope, MsgId, Party};

/// The source id of a broadcast's escalation: `derive(broadcast, this)`
/// (apart from `plan.rs`'s indexes, which derive from other sources).
const BROADCAST_ESCALATION: u32 = 0x7fff_0b01;

/// What the supervisor follows: the fold of `messages/broadcast.jsonl`
/// (only broadcasts still waiting) and how far it has read.
#[derive(Debug, Default)]
pub(super) struct Broadcasts {
    fold: Fold,
    cursor: u64,
}

impl Broadcasts {
    /// Reads what was appended since the last call; forgets broadcasts that
    /// need nothing more (every ack in, or escalated).
    fn refresh(&mut self, path: &std::path::Path) {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        if len < self.cursor {
            // Replaced or cut by hand: the fold of what is there now is the
            // truth (every line is idempotent to fold).
            tracing::warn!(path = %path.display(), "the broadcast log shrank; folding it again");
            *self = Broadcasts::default();
        }
        if len <= self.cursor {
            return;
        }
        if let Err(e) = self.fold.read(path, &mut self.cursor) {
            tracing::warn!(error = %e, "cannot read the broadcast log");
        }
        self.fold
            .all
            .retain(|_, s| s.escalated.is_none() && !s.complete());
    }
}

impl Planner<'_> {
    /// An agent's acknowledgement of a broadcast: its line in the log.
    /// `false` when `env` is not one (then it is an ordinary report).
    pub fn broadcast_ack(&self, plan: &mut Plan, env: &Envelope) -> bool {
        if env.kind != kind::ACK_TYPE {
            return false;
        }
        let Party::Agent(agent) = &env.from else {
            return false;
        };
        let Some(broadcast) = env
            .body
            .get("broadcast")
            .and_then(Value::as_str)
            .and_then(|b| b.parse::<MsgId>().ok())
        else {
            return false;
        };
        let ack = Ack {
            agent: agent.clone(),
            ts: time::now_rfc3339(),
            how: env
                .body
                .get("how")
                .and_then(Value::as_str)
                .unwrap_or(kind::AUTO)
                .to_string(),
            message: env
                .body
                .get("message")
                .and_then(Value::as_str)
                .and_then(|m| m.parse().ok()),
            src: env.id.to_string(),
        };
        plan.push(
            self.layout.broadcast_log(),
            true,
            env.id.to_string(),
            bc::ack_line(&broadcast, &ack),
        );
        true
    }
}

impl Supervisor {
    /// Folds new broadcast lines and escalates the overdue ones (see the
    /// module docs).
    pub(super) fn broadcast_tick(&mut self) {
        if self.shutting_down {
            return;
        }
        let path = self.layout.broadcast_log();
        self.broadcasts.refresh(&path);
        if self.broadcasts.fold.all.is_empty() || self.stalled_touches(&path) {
            return;
        }
        let now = super::plan::now_ms();
        let due: Vec<(MsgId, Vec<AgentId>, String, String)> = self
            .broadcasts
            .fold
            .all
            .values()
            .filter(|s| s.escalated.is_none() && s.record.deadline_ms <= now)
            .map(|s| {
                (
                    s.record.id,
                    s.missing(),
                    s.record.deadline.clone(),
                    s.record.kind.clone(),
                )
            })
            .filter(|(_, missing, _, _)| !missing.is_empty())
            .collect();
        for (id, missing, deadline, kind) in due {
            let src = MsgId::derive(&id, BROADCAST_ESCALATION);
            let escalated = Escalated {
                ts: time::now_rfc3339(),
                missing: missing.clone(),
                escalation: MsgId::derive(&src, ESCALATION),
                src: format!("{id}/escalated"),
            };
            let names: Vec<&str> = missing.iter().map(AgentId::as_str).collect();
            let reason = format!(
                "broadcast {id} not acknowledged by {} by its deadline {deadline}",
                names.join(", ")
            );
            let mut plan = Plan::at(now);
            plan.push(
                path.clone(),
                true,
                escalated.src.clone(),
                bc::escalated_line(&id, &escalated),
            );
            self.planner().escalation(
                &mut plan,
                src,
                "supervisor",
                None,
                &reason,
                json!({"broadcast": id, "type": kind, "missing": missing, "deadline": deadline}),
            );
            tracing::info!(broadcast = %id, missing = names.len(), "broadcast escalated");
            self.commit_direct(plan);
            // Landed, or kept as a stalled batch that lands later: decided
            // either way (the log's line is folded again on the next read).
            if let Some(s) = self.broadcasts.fold.all.get_mut(&id) {
                s.escalated = Some(escalated);
            }
        }
    }
}
