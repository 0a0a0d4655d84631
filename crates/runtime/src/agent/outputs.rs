//! A brain's actions as outbox records: one envelope per action, with the
//! id derived from the input's and the action's index (so a repeated
//! handling yields the same ids), one more hop, the input's case.

use super::Agent;
use serde_json::json;
use society_brains::Action;
use society_core::kinds::message;
use society_core::{Envelope, FormatError, MsgId, Party};

impl Agent {
    /// The outbox records for a brain's actions, with their deterministic ids
    /// (`Log` actions go to the activity log). Refuses a record over `max_record`.
    pub(crate) fn outputs(
        &mut self,
        input: &Envelope,
        actions: Vec<Action>,
    ) -> Result<Vec<(MsgId, Vec<u8>)>, FormatError> {
        let me = Party::Agent(self.cfg.id.clone());
        let mut records = Vec::new();
        for (index, action) in actions.into_iter().enumerate() {
            let id = MsgId::derive(&input.id, index as u32);
            let mut env = Envelope::new(me.clone(), input.from.clone(), message::REPLY, json!({}));
            env.id = id;
            env.gen = self.status.gen;
            env.case = input.case.clone();
            // One more agent hop in this conversation (see `Envelope::hops`).
            env.hops = input.hops.saturating_add(1);
            match action {
                Action::Reply { kind, body } => {
                    env.kind = kind;
                    env.body = body;
                    env.reply_to = Some(input.id);
                }
                Action::Send {
                    to,
                    kind,
                    body,
                    case,
                    reply_to,
                    needs,
                } => {
                    env.to = to;
                    env.kind = kind;
                    env.body = body;
                    env.case = case.or(env.case);
                    env.reply_to = reply_to;
                    env.needs = needs;
                }
                Action::CaseEvent { event, fields } => {
                    env.to = Party::Supervisor;
                    env.kind = message::CASE_EVENT.into();
                    // The checked name last: a field named `event` cannot replace it.
                    let mut body = match fields {
                        serde_json::Value::Object(f) => f,
                        _ => serde_json::Map::new(),
                    };
                    body.insert("event".into(), json!(event));
                    env.body = serde_json::Value::Object(body);
                }
                Action::RequestApproval {
                    plan,
                    rationale,
                    alternatives,
                } => {
                    env.to = Party::Orchestrator;
                    env.kind = message::APPROVAL_REQUEST.into();
                    env.body = approval_body(input, plan, rationale, alternatives);
                }
                Action::Escalate { reason, context } => {
                    env.to = Party::Supervisor;
                    env.kind = message::ESCALATE.into();
                    env.body = json!({"reason": reason, "context": context});
                    // Escalated while handling this message: a lead passing
                    // an item up names it (see `supervisor/planner/org.rs`).
                    env.reply_to = Some(input.id);
                }
                // `think` turns every decision into outputs first.
                Action::Decide { .. } => {
                    self.activity.event(
                        "decision_unassessed",
                        json!({"id": input.id, "error": "a decide reached the outbox unassessed; dropped"}),
                    );
                    continue;
                }
                Action::Log { message } => {
                    self.activity
                        .event("brain_log", json!({"id": input.id, "message": message}));
                    continue;
                }
            }
            // The `ack` an explicit broadcast asks for goes to the supervisor.
            super::ack::readdress(input, &mut env);
            let line = env.to_line();
            if line.len() + 1 > self.cfg.policy.max_record {
                return Err(FormatError::RecordTooLarge {
                    path: self.paths.outbox(),
                    size: line.len() + 1,
                    max: self.cfg.policy.max_record,
                });
            }
            records.push((id, line));
        }
        // Handling a copy of an `ack: auto` broadcast acknowledges it, in
        // the same append as the outputs (see `ack.rs`).
        let mut template = Envelope::new(me, Party::Supervisor, message::REPLY, json!({}));
        template.gen = self.status.gen;
        template.case = input.case.clone();
        template.hops = input.hops.saturating_add(1);
        if let Some(ack) = super::ack::auto(input, &template) {
            records.push((ack.id, ack.to_line()));
        }
        Ok(records)
    }
}

/// The body of an approval request. The message that needed approval is
/// parked inside it (and comes back in the answer); a request made while
/// handling a rejection is the next revision of the same request.
fn approval_body(
    input: &Envelope,
    plan: String,
    rationale: String,
    alternatives: Vec<String>,
) -> serde_json::Value {
    let (parked, revision) = if input.kind == message::APPROVAL_RESPONSE {
        let prior = input
            .body
            .get("revision")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        (
            input
                .body
                .get("parked")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            prior + 1,
        )
    } else {
        (
            serde_json::to_value(input).unwrap_or(serde_json::Value::Null),
            1,
        )
    };
    json!({"plan": plan, "rationale": rationale, "alternatives": alternatives, "revision": revision, "parked": parked})
}
