//! The records a debate's [`Next`](super::step::Next) step turns into:
//! round requests, consensus, expiry with its escalation. Every message id
//! is derived from the `debate_request`'s and every case-log key from those
//! ids, so a step planned twice (after a crash before it landed) writes the
//! same records, which the inboxes and the commit drop.

use super::super::plan::{Plan, DEBATE_APPROVAL, DEBATE_RESULT, DEBATE_ROUND};
use super::super::planner::Planner;
use super::fold::Debate;
use serde_json::{json, Map, Value};
use society_core::governance::debate::{agreed_plan, Consensus};
use society_core::kinds::{case_log, message};
use society_core::{AgentId, Envelope, MsgId, Party};

/// What an expired debate recommends (SOCIETY.md §C3).
const RECOMMENDATION: &str = "Escalate to higher authority for resolution";

/// The id of the round request of `iteration` to the participant at `index`.
pub(in crate::supervisor) fn round_request_id(d: &Debate, iteration: u32, index: usize) -> MsgId {
    let per_iteration = MsgId::derive(&d.opened.request, DEBATE_ROUND + iteration);
    MsgId::derive(&per_iteration, index as u32)
}

impl Planner<'_> {
    /// A round request to each of `to`, and a `round_request` line each.
    pub fn debate_ask(
        &self,
        plan: &mut Plan,
        d: &Debate,
        round: u32,
        iteration: u32,
        to: &[AgentId],
    ) {
        let o = &d.opened;
        let perspectives: Map<String, Value> = d
            .positions()
            .into_iter()
            .map(|(a, p)| (a, Value::Object(p)))
            .collect();
        let t_ms = plan.now.saturating_sub(o.opened_at);
        for agent in to {
            let Some(index) = o.participants.iter().position(|p| p == agent) else {
                continue;
            };
            let body = json!({"debate": d.case, "decision": o.decision, "decision_type": o.decision_type,
                "plan": o.plan, "round": round, "iteration": iteration,
                "perspectives": perspectives, "deadline": o.deadline});
            let mut env = Envelope::new(
                Party::Supervisor,
                Party::Agent(agent.clone()),
                message::ROUND_REQUEST,
                body,
            );
            env.id = round_request_id(d, iteration, index);
            env.case = Some(d.case.clone());
            let fields = json!({"to": agent, "round": round, "iteration": iteration, "id": env.id, "t_ms": t_ms});
            let src = format!("{}/round_request", env.id);
            self.case(
                plan,
                &d.case,
                case_log::ROUND_REQUEST,
                "supervisor",
                src,
                fields,
            );
            self.to_agent(plan, agent, &env);
        }
    }

    /// Consensus: the agreed plan in the log, the case resolved, the result
    /// to the proposer.
    pub fn debate_agree(&self, plan: &mut Plan, d: &Debate, c: &Consensus) {
        let o = &d.opened;
        let agreed = agreed_plan(&o.plan, &c.areas_of_agreement);
        let duration_ms = plan.now.saturating_sub(o.opened_at);
        let src = |what: &str| format!("{}/{what}", o.request);
        let fields = json!({"agreed_plan": agreed, "agreement": c.agreement, "duration_ms": duration_ms,
            "iterations": d.iteration, "final_perspectives": perspectives(d)});
        self.case(
            plan,
            &d.case,
            case_log::CONSENSUS,
            "supervisor",
            src("consensus"),
            fields,
        );
        let fields = json!({"by": "supervisor", "reason": "consensus"});
        self.case(
            plan,
            &d.case,
            case_log::COMPLETED,
            "supervisor",
            src("completed"),
            fields,
        );
        let body = json!({"decision": o.decision, "debate": d.case, "consensus": true,
            "agreed_plan": agreed, "agreement": c.agreement, "duration_ms": duration_ms,
            "iterations": d.iteration, "revision": o.revision, "proposal": o.proposal,
            "parked": o.parked, "then": o.then});
        self.debate_result(plan, d, body);
    }

    /// Expiry: the final state in the log, an approval request to the
    /// orchestrator (answered to the proposer, see `planner/requests.rs`),
    /// and the result to the proposer.
    pub fn debate_expire(&self, plan: &mut Plan, d: &Debate, reason: &str, c: &Consensus) {
        let o = &d.opened;
        let duration_ms = plan.now.saturating_sub(o.opened_at);
        let mut ask = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            message::APPROVAL_REQUEST,
            json!({"kind": "debate", "agent": o.proposer, "debate": d.case, "decision": o.decision,
                "decision_type": o.decision_type, "plan": o.plan, "rationale": o.rationale,
                "alternatives": o.alternatives, "areas_of_agreement": c.areas_of_agreement,
                "areas_of_disagreement": c.areas_of_disagreement, "final_perspectives": perspectives(d),
                "reason": reason, "revision": o.revision, "proposal": o.proposal, "parked": o.parked,
                "then": o.then, "proposer_case": o.proposer_case}),
        );
        ask.id = MsgId::derive(&o.request, DEBATE_APPROVAL);
        ask.case = Some(d.case.clone());
        let src = |what: &str| format!("{}/{what}", o.request);
        let fields = json!({"areas_of_agreement": c.areas_of_agreement,
            "areas_of_disagreement": c.areas_of_disagreement, "conflicts": c.conflicts,
            "agreement": c.agreement, "final_perspectives": perspectives(d), "duration_ms": duration_ms,
            "iterations": d.iteration, "recommendation": RECOMMENDATION, "reason": reason,
            "escalated": ask.id});
        self.case(
            plan,
            &d.case,
            case_log::DEBATE_EXPIRED,
            "supervisor",
            src("debate_expired"),
            fields,
        );
        let fields = json!({"id": ask.id, "from": "supervisor", "to": "orchestrator",
            "type": message::APPROVAL_REQUEST, "request": ask.id, "plan": o.plan, "revision": o.revision});
        let key = format!("{}/{}", ask.id, case_log::APPROVAL_REQUESTED);
        self.case(
            plan,
            &d.case,
            case_log::APPROVAL_REQUESTED,
            "supervisor",
            key,
            fields,
        );
        self.to_orchestrator(plan, &ask);
        plan.approvals.push(ask.clone());
        let body = json!({"decision": o.decision, "debate": d.case, "consensus": false,
            "escalated": ask.id, "areas_of_agreement": c.areas_of_agreement,
            "areas_of_disagreement": c.areas_of_disagreement, "duration_ms": duration_ms,
            "iterations": d.iteration, "reason": reason});
        self.debate_result(plan, d, body);
    }

    /// The `debate_result` to the proposer, in the case it asked from (if it
    /// still exists).
    fn debate_result(&self, plan: &mut Plan, d: &Debate, body: Value) {
        let o = &d.opened;
        if !self.known(&o.proposer) {
            return;
        }
        let mut env = Envelope::new(
            Party::Supervisor,
            Party::Agent(o.proposer.clone()),
            message::DEBATE_RESULT,
            body,
        );
        env.id = MsgId::derive(&o.request, DEBATE_RESULT);
        env.reply_to = Some(o.request);
        env.case = o.proposer_case.clone();
        self.to_agent(plan, &o.proposer, &env);
    }
}

/// Every participant's latest position, by agent.
fn perspectives(d: &Debate) -> Value {
    Value::Object(
        d.positions()
            .into_iter()
            .map(|(a, p)| (a, Value::Object(p)))
            .collect(),
    )
}
