//! What the router does with a message it does not deliver: holds it for
//! an approval, refuses it for its receiver (and sanctions the sender), cuts
//! it at the hop limit, or dead-letters it as undeliverable.

use super::super::guard::{Sanction, UNTIL_LIFTED};
use super::super::plan::{position_key, Plan, HELD, HOP_LIMIT, SANCTION};
use super::Planner;
use crate::activity;
use serde_json::{json, Value};
use society_core::jsonl::Line;
use society_core::kinds::{case_log, event, message};
use society_core::layout::names;
use society_core::{AgentId, Envelope, MsgId, Party};
use std::time::Duration;

impl Planner<'_> {
    /// A routing rule says `approve`: hold the message and ask the orchestrator.
    /// A case event reached a milestone gate: the case waits in
    /// `awaiting_gate` and the orchestrator is asked; the answer goes to the
    /// agent that reached it (see `requests.rs`).
    pub fn gate(&self, plan: &mut Plan, env: &Envelope, gate: &crate::config::GateRule) {
        let Some(case) = env.case.clone() else { return };
        let what = format!("milestone gate {} of case {case}", gate.event);
        let body = json!({"kind": "gate", "gate": gate.event, "agent": env.from, "plan": what,
                          "fields": env.body, "revise_to": gate.revise_to});
        let mut req = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            message::APPROVAL_REQUEST,
            body,
        );
        req.id = MsgId::derive(&env.id, super::super::plan::GATE);
        req.case = Some(case.clone());
        self.to_orchestrator(plan, &req);
        plan.approvals.push(req.clone());
        let fields = json!({"gate": gate.event, "request": req.id, "revise_to": gate.revise_to});
        self.case(
            plan,
            &case,
            case_log::AWAITING_GATE,
            env.from.to_string().as_str(),
            format!("{}/awaiting_gate", req.id),
            fields,
        );
    }

    pub fn hold(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        rule: Option<usize>,
        recipient: Option<&AgentId>,
    ) {
        let what = format!("deliver {} from {} to {}", env.kind, env.from, env.to);
        let body = json!({"kind": "route", "plan": what, "rule": rule, "held": env});
        let mut req = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            message::APPROVAL_REQUEST,
            body,
        );
        req.id = MsgId::derive(&env.id, HELD);
        req.case = env.case.clone();
        // Sender and receiver are the parties: their lowest common supervisor decides.
        let parties: Vec<String> = [Some(env.from.to_string()), recipient.map(|r| r.to_string())]
            .into_iter()
            .flatten()
            .collect();
        if !self.approval_up(plan, &req, parties) {
            self.to_orchestrator(plan, &req);
        }
        plan.approvals.push(req.clone());
        if let Some(case) = &env.case {
            let fields = json!({"request": req.id, "plan": what, "rule": rule});
            self.case(
                plan,
                case,
                case_log::APPROVAL_REQUESTED,
                "supervisor",
                format!("{}/approval_requested", req.id),
                fields,
            );
        }
        let fields =
            json!({"id": env.id, "to": env.to, "type": env.kind, "rule": rule, "request": req.id});
        self.event(
            plan,
            "message_held",
            env.from.to_string().as_str(),
            format!("{}/held", env.id),
            fields,
        );
    }

    /// Receiver protection refused the message: a `refused` record in the
    /// receiver's dead letters, a system event, and — unless the sender is
    /// under a sanction — a notice to the sender. A refusal that imposes a
    /// sanction also escalates it, once, to the orchestrator.
    pub fn refused(
        &self,
        plan: &mut Plan,
        receiver: &AgentId,
        env: &Envelope,
        reason: &str,
        notify: bool,
        sanction: Option<&Sanction>,
    ) {
        let src = format!("{receiver}@{}", env.id);
        let fields =
            json!({"src": src, "id": env.id, "from": env.from, "type": env.kind, "reason": reason});
        let gen = self.agents.gen(receiver);
        let rec = activity::record(event::REFUSED, receiver.as_str(), gen, fields.clone());
        plan.push(self.paths(receiver).deadletter(), true, src.clone(), rec);
        self.event(plan, event::MESSAGE_REFUSED, receiver.as_str(), src, fields);
        let sender = env.from.to_string();
        let notice = match sanction {
            Some(s) => format!("refused by {receiver}: {reason}; you are {}", s.describe()),
            None => format!("refused by {receiver}: {reason}"),
        };
        if notify {
            self.blocked(plan, env, &notice);
        }
        if let Some(s) = sanction {
            let source = MsgId::derive(&env.id, SANCTION);
            let until = (s.until != UNTIL_LIFTED).then(|| {
                society_core::time::format_rfc3339(
                    std::time::UNIX_EPOCH + Duration::from_millis(s.until),
                )
            });
            self.event(
                plan,
                event::SENDER_SANCTIONED,
                &sender,
                format!("{}/sanction", env.id),
                json!({"level": s.level, "violations": s.violations, "until": until, "last": reason}),
            );
            let why = format!("agent {sender} is {}; the last: {reason}", s.describe());
            let context = json!({"sender": sender, "level": s.level, "violations": s.violations,
                "until": until, "hint": format!("`society unblock {sender}` lifts it")});
            self.escalation(plan, source, &sender, env.case.as_ref(), &why, context);
        }
    }

    /// A message past its sender's hop limit: dead-lettered and escalated,
    /// with no notice — a notice would only be answered, one more hop.
    pub fn hop_limit(
        &self,
        plan: &mut Plan,
        owner: &AgentId,
        line: &Line,
        env: &Envelope,
        max_hops: u32,
    ) {
        let reason = format!(
            "hop limit: {} agent hops since the orchestrator or a timer started this conversation (max_hops {max_hops}); a loop between agents?",
            env.hops
        );
        self.undeliverable(plan, owner, line, Some(env), &reason, false);
        let context = json!({"id": env.id, "to": env.to, "type": env.kind, "hops": env.hops,
            "hint": "raise max_hops in [defaults] if this conversation is legitimate"});
        let why = format!(
            "agent {owner} sent a message {} hops deep to {}: {reason}",
            env.hops, env.to
        );
        self.escalation(
            plan,
            MsgId::derive(&env.id, HOP_LIMIT),
            owner.as_str(),
            env.case.as_ref(),
            &why,
            context,
        );
    }

    pub fn undeliverable(
        &self,
        plan: &mut Plan,
        owner: &AgentId,
        line: &Line,
        env: Option<&Envelope>,
        reason: &str,
        notify: bool,
    ) {
        // Offsets restart in each segment of a rotated outbox.
        let seg = self.segs.get(owner).copied().unwrap_or(0);
        let src = position_key(owner.as_str(), seg, line.offset);
        let mut fields = json!({
            "src": src, "file": names::OUTBOX, "offset": line.offset, "id": env.map(|e| e.id),
            "to": env.map(|e| e.to.to_string()), "reason": reason,
        });
        if seg > 0 {
            fields["seg"] = json!(seg);
        }
        let gen = env.map_or(0, |e| e.gen);
        let mut with_line = fields.clone();
        with_line["line"] = Value::String(
            String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64 * 1024)]).into_owned(),
        );
        plan.push(
            self.paths(owner).deadletter(),
            true,
            src.clone(),
            activity::record(event::UNDELIVERABLE, owner.as_str(), gen, with_line),
        );
        fields["gen"] = Value::from(gen);
        self.event(plan, event::UNDELIVERABLE, owner.as_str(), src, fields);
        if let Some(env) = env.filter(|_| notify) {
            self.blocked(plan, env, &format!("undeliverable: {reason}"));
        }
    }
}
