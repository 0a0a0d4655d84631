//! Messages that cross societies (SCALING.md): a line whose `to` names
//! another society goes to `supervisor/outbound.jsonl`, from where the
//! federation bridge publishes it; a message the bridge received from
//! another society arrives in the supervisor's inbox and is routed here like
//! an outbox line — recipient, hop limit, routing policy, the receiver's
//! protection, the case log.

use super::super::guard::Verdict;
use super::super::plan::{Plan, BLOCKED};
use super::Planner;
use crate::activity;
use crate::config::RouteAction;
use serde_json::json;
use society_core::kinds::{case_log, event, message};
use society_core::{AgentId, Envelope, MsgId, Party};

impl Planner<'_> {
    /// A party of this society written with its own name is local:
    /// `agent-1@north` in north is `agent-1`.
    pub fn localise(&self, env: &mut Envelope) {
        if env.to.society().is_some() && env.to.society() == self.society {
            env.to = env.to.local().clone();
        }
    }

    /// Why a message to another society cannot leave, if it cannot.
    pub fn cannot_leave(&self, env: &Envelope) -> Option<String> {
        let society = env.to.society()?;
        if self.society.is_none() || !self.federated {
            return Some(format!(
                "{} is in society {society}, and this society is not federated (society.toml needs [society] name and [federation] nats_url)",
                env.to
            ));
        }
        if matches!(env.to.local(), Party::Supervisor) {
            return Some(format!(
                "{}: a society's supervisor takes requests from its own agents and orchestrator only",
                env.to
            ));
        }
        None
    }

    /// An accepted message to another society: into `outbound.jsonl` with
    /// its sender named as this society's (`agent-1` → `agent-1@south`), so
    /// that an answer finds its way back; and the mirror.
    pub fn remote(&self, plan: &mut Plan, env: &Envelope) {
        let mut out = env.clone();
        if let Some(own) = self.society {
            out.from = out.from.clone().at(own);
        }
        let line = out.to_line();
        plan.push(
            self.layout.federation_outbound(),
            true,
            env.id.to_string(),
            line.clone(),
        );
        plan.push(
            self.layout.agent_to_agent(),
            false,
            env.id.to_string(),
            line,
        );
    }

    /// A message from another society, appended to the supervisor's inbox
    /// by the bridge (with `to` already local): routed like an outbox line.
    pub fn inbound(&self, plan: &mut Plan, mut env: Envelope) {
        self.localise(&mut env);
        let recipient = match &env.to {
            Party::Agent(id) if self.known(id) => Some(id.clone()),
            Party::Agent(id) => return self.unroutable(plan, &env, &format!("no agent {id}")),
            Party::Role(role) => match self.pick_role(plan, role, &env) {
                Ok(id) => Some(id),
                Err(why) => return self.unroutable(plan, &env, &why.describe(role)),
            },
            Party::Orchestrator => None,
            Party::Supervisor => {
                let reason = "a society's supervisor takes requests from its own agents and orchestrator only";
                return self.unroutable(plan, &env, reason);
            }
            Party::Remote { society, .. } => {
                // Not relayed: each society publishes to the other directly.
                let reason = format!("addressed to society {society}, not this one");
                return self.unroutable(plan, &env, &reason);
            }
        };
        let size = env.to_line().len() + 1;
        let max = recipient
            .as_ref()
            .map_or(society_core::MAX_RECORD_LIMIT, |r| {
                self.config(r).policy.max_record
            });
        if size > max {
            let reason =
                format!("message of {size} bytes exceeds the recipient's max_record ({max} bytes)");
            return self.unroutable(plan, &env, &reason);
        }
        if let Some(r) = &recipient {
            let max_hops = self.config(r).policy.max_hops;
            if env.hops > max_hops {
                let reason = format!(
                    "hop limit: {} agent hops since the conversation started (max_hops {max_hops} of {r}); a loop between societies?",
                    env.hops
                );
                return self.unroutable(plan, &env, &reason);
            }
        }
        let to_role = recipient.as_ref().map(|r| self.config(r).role.as_str());
        match super::super::policy::decide(self.routing, &env, None, to_role) {
            (RouteAction::Allow, _) => {}
            (RouteAction::Deny, rule) => {
                let reason = match rule {
                    Some(n) => format!("denied by routing rule {n}"),
                    None => "denied by the routing default".into(),
                };
                return self.unroutable(plan, &env, &reason);
            }
            (RouteAction::Approve, rule) => {
                self.hold(plan, &env, rule, recipient.as_ref());
                return;
            }
        }
        if let Some(r) = &recipient {
            if let Some(reason) = self.judge_remote(plan, r, &env) {
                self.refused(plan, r, &env, &reason, true, None);
                return;
            }
        }
        self.joined_case(plan, &env);
        self.delivery(plan, &env, recipient.as_ref());
    }

    /// A case of another society reaches this one: its log here starts with
    /// `created`, saying whose case it is, so that it is a case like any
    /// other (open, listed, closable) and not a log without a beginning.
    fn joined_case(&self, plan: &mut Plan, env: &Envelope) {
        let Some(case) = &env.case else { return };
        if self.case_view(plan, case).is_some()
            || self.layout.case_log(case).exists()
            || self.layout.case_pointer(case).exists()
        {
            return;
        }
        let society = env.from.society().map(|s| s.to_string());
        let fields = json!({
            "purpose": format!("case {case} of society {}", society.as_deref().unwrap_or("?")),
            "by": env.from, "society": society, "priority": null, "due": null,
        });
        self.case(
            plan,
            case,
            case_log::CREATED,
            &env.from.to_string(),
            format!("{}/created", env.id),
            fields,
        );
    }

    /// The receiver's protection for a sender of another society: its
    /// rate and flood limits count the message; pacing is not possible (the
    /// bridge does not hold a sender back), so a message over the rate is
    /// admitted and counted.
    fn judge_remote(&self, plan: &mut Plan, r: &AgentId, env: &Envelope) -> Option<String> {
        if plan.present.is_some() && plan.landed(&self.paths(r).inbox(), &env.id.to_string()) {
            return None;
        }
        let policy = &self.config(r).policy;
        match self
            .guard
            .check(&mut plan.guard, plan.now, r, policy, env, None)
        {
            Verdict::Admit | Verdict::Pace { .. } => None,
            Verdict::Refuse { reason, .. } | Verdict::Blocked { reason } => Some(reason),
        }
    }

    /// A message from another society that cannot be delivered here: into
    /// the supervisor's dead letters (keyed by its id), a system event, and
    /// a `message_blocked` notice back to its sender.
    pub fn unroutable(&self, plan: &mut Plan, env: &Envelope, reason: &str) {
        let src = format!("remote@{}", env.id);
        let fields = json!({"src": src, "id": env.id, "from": env.from, "to": env.to.to_string(),
            "type": env.kind, "reason": reason});
        let mut with_line = fields.clone();
        with_line["line"] =
            serde_json::Value::String(String::from_utf8_lossy(&env.to_line()).into_owned());
        plan.push(
            self.layout.supervisor_deadletter(),
            true,
            src.clone(),
            activity::record(event::UNDELIVERABLE, "supervisor", 0, with_line),
        );
        self.event(
            plan,
            event::UNDELIVERABLE,
            &env.from.to_string(),
            src,
            fields,
        );
        self.blocked(plan, env, &format!("undeliverable: {reason}"));
    }

    /// A `message_blocked` notice to a sender of another society.
    pub fn blocked_remote(&self, plan: &mut Plan, env: &Envelope, reason: &str) {
        if self.cannot_leave_to(&env.from) {
            return;
        }
        let mut note = Envelope::new(
            Party::Supervisor,
            env.from.clone(),
            message::MESSAGE_BLOCKED,
            json!({"id": env.id, "to": env.to, "type": env.kind, "reason": reason}),
        );
        note.id = MsgId::derive(&env.id, BLOCKED);
        note.reply_to = Some(env.id);
        note.case = env.case.clone();
        note.hops = env.hops.saturating_add(1);
        self.remote(plan, &note);
    }

    pub fn cannot_leave_to(&self, party: &Party) -> bool {
        party.society().is_none() || self.society.is_none() || !self.federated
    }
}
