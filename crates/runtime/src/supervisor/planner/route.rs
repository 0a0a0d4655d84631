//! One outbox line, planned: validate the envelope, resolve its recipient,
//! cut it at the hop limit, apply the routing policy and the receiver's
//! protection, and deliver it — to the recipient's inbox, the mirror and
//! the case log, recording who owns the case.

use super::super::guard::Verdict;
use super::super::plan::Plan;
use super::Planner;
use crate::config::RouteAction;
use serde_json::{json, Value};
use society_core::jsonl::Line;
use society_core::kinds::{case_log, event, message};
use society_core::{AgentId, CaseId, Envelope, Party};

/// Case-event names that change a case's status; any other name an agent
/// reports is recorded as `agent_report` with the name in `report`.
const LIFECYCLE_EVENTS: [&str; 4] = [
    case_log::COMPLETED,
    case_log::FAILED,
    case_log::CANCELLED,
    case_log::STATUS,
];

/// What planning one outbox line decided.
#[derive(Debug, PartialEq)]
pub(in crate::supervisor) enum LineOutcome {
    Planned,
    /// Over the rate to its receiver: the outbox waits at this line, and
    /// nothing of it is planned.
    Paced {
        until: u64,
    },
}

impl Planner<'_> {
    /// Plans one line of `owner`'s outbox.
    pub fn line(&self, plan: &mut Plan, owner: &AgentId, line: &Line) -> LineOutcome {
        // Over the sender's own limit: written by hand, or by a program
        // with a hand on the agent's files. The reader kept only its head;
        // it is refused by its size, unparsed, as a line that is not JSON is.
        if let Some(reason) = line.oversize(self.config(owner).policy.max_record) {
            self.undeliverable(plan, owner, line, None, &reason, true);
            return LineOutcome::Planned;
        }
        let mut env = match Envelope::parse(&line.bytes) {
            Ok(env) if env.from == Party::Agent(owner.clone()) => env,
            Ok(env) => {
                // A forged sender: a line in `owner`'s outbox speaks for
                // someone else. Never delivered, never told to the party it
                // claims to be; the orchestrator is told.
                let reason = format!(
                    "from {:?} does not match the outbox owner {owner}",
                    env.from.to_string()
                );
                self.undeliverable(plan, owner, line, Some(&env), &reason, false);
                let why = format!(
                    "a line in agent {owner}'s outbox claims to be from {}: dead-lettered, not delivered",
                    env.from
                );
                let context = serde_json::json!({"claimed": env.from, "to": env.to, "type": env.kind, "id": env.id, "offset": line.offset});
                self.escalation(plan, env.id, owner.as_str(), None, &why, context);
                return LineOutcome::Planned;
            }
            Err(e) => {
                self.undeliverable(plan, owner, line, None, &e.to_string(), true);
                return LineOutcome::Planned;
            }
        };
        if env.kind == message::CASE_EVENT && env.case.is_none() {
            let reason = "case_event without a case";
            self.undeliverable(plan, owner, line, Some(&env), reason, true);
            return LineOutcome::Planned;
        }
        self.localise(&mut env);
        let recipient = match &env.to {
            Party::Remote { .. } => {
                if let Some(reason) = self.cannot_leave(&env) {
                    self.undeliverable(plan, owner, line, Some(&env), &reason, true);
                    return LineOutcome::Planned;
                }
                None
            }
            Party::Agent(id) if self.known(id) => Some(id.clone()),
            Party::Agent(id) => {
                let reason = format!("no agent {id}");
                self.undeliverable(plan, owner, line, Some(&env), &reason, true);
                return LineOutcome::Planned;
            }
            Party::Role(role) => match self.pick_role(plan, role, &env) {
                Ok(id) => Some(id),
                Err(why) => {
                    let reason = why.describe(role);
                    self.undeliverable(plan, owner, line, Some(&env), &reason, true);
                    return LineOutcome::Planned;
                }
            },
            Party::Orchestrator | Party::Supervisor => None,
        };
        if let Some(reason) = self.too_big(line, &env, recipient.as_ref()) {
            self.undeliverable(plan, owner, line, Some(&env), &reason, true);
            return LineOutcome::Planned;
        }
        let sender = self.config(owner);
        let max_hops = sender.policy.max_hops;
        let to_agents = recipient.is_some() || env.to.society().is_some();
        if to_agents && env.hops > max_hops {
            self.hop_limit(plan, owner, line, &env, max_hops);
            return LineOutcome::Planned;
        }
        if env.kind == message::APPROVAL_REQUEST && env.to == Party::Orchestrator {
            let revision = env
                .body
                .get("revision")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let max = sender.policy.max_revisions;
            if revision > u64::from(max) + 1 {
                let reason = format!("approval still rejected after {max} revision(s)");
                // The parked message travels with it, so the orchestrator can act on it.
                let context = json!({"request": env.id, "plan": env.body.get("plan"), "parked": env.body.get("parked")});
                let case = env.case.as_ref();
                self.escalation(plan, env.id, owner.as_str(), case, &reason, context);
                return LineOutcome::Planned;
            }
        }
        if env.to != Party::Supervisor {
            let to_role = recipient.as_ref().map(|r| self.config(r).role.as_str());
            let from_role = Some(sender.role.as_str());
            match super::super::policy::decide(self.routing, &env, from_role, to_role) {
                (RouteAction::Allow, _) => {}
                (RouteAction::Deny, rule) => {
                    self.blocked(plan, &env, &denied_by(rule));
                    return LineOutcome::Planned;
                }
                (RouteAction::Approve, rule) => {
                    self.hold(plan, &env, rule, recipient.as_ref());
                    return LineOutcome::Planned;
                }
            }
        }
        if let Some(r) = &recipient {
            match self.judge(plan, owner, r, &env) {
                Verdict::Admit => {}
                Verdict::Pace { until } => return LineOutcome::Paced { until },
                Verdict::Refuse { reason, sanction } => {
                    self.refused(plan, r, &env, &reason, true, sanction.as_ref());
                    return LineOutcome::Planned;
                }
                Verdict::Blocked { reason } => {
                    self.refused(plan, r, &env, &reason, false, None);
                    return LineOutcome::Planned;
                }
            }
        }
        self.delivery(plan, &env, recipient.as_ref());
        LineOutcome::Planned
    }

    /// The receiver's protection and the sender's sanctions. A batch being
    /// re-planned after an interruption keeps what already landed: a message
    /// in the recipient's inbox was admitted, one in its dead letters was
    /// refused; and it is never paced (its lines must all be planned again).
    fn judge(&self, plan: &mut Plan, owner: &AgentId, r: &AgentId, env: &Envelope) -> Verdict {
        if plan.present.is_some() {
            if plan.landed(&self.paths(r).inbox(), &env.id.to_string()) {
                return Verdict::Admit;
            }
            if plan.landed(&self.paths(r).deadletter(), &format!("{r}@{}", env.id)) {
                // The rest of the refusal (its notice) is planned again and
                // written if it had not landed; its count was made then.
                return Verdict::Refuse {
                    reason: "refused before the supervisor restarted".into(),
                    sanction: None,
                };
            }
        }
        let role = self.config(owner).role.as_str();
        let policy = &self.config(r).policy;
        let verdict = self
            .guard
            .check(&mut plan.guard, plan.now, r, policy, env, Some(role));
        match verdict {
            Verdict::Pace { .. } if plan.present.is_some() && !plan.may_pace => Verdict::Admit,
            v => v,
        }
    }

    /// Delivers an accepted message: recipient, mirror, case log.
    pub fn delivery(&self, plan: &mut Plan, env: &Envelope, recipient: Option<&AgentId>) {
        match (recipient, &env.to) {
            (Some(r), _) => self.to_agent(plan, r, env),
            (None, Party::Remote { .. }) => self.remote(plan, env),
            (None, Party::Orchestrator) => {
                if env.kind == message::APPROVAL_REQUEST {
                    // An agent's request waits at its lead if it has one.
                    let parties = vec![env.from.to_string()];
                    if !self.approval_up(plan, env, parties) {
                        self.to_orchestrator(plan, env);
                    }
                    plan.approvals.push(env.clone());
                } else {
                    self.to_orchestrator(plan, env);
                }
            }
            (None, _) => {
                // To the supervisor: case events go only to the case log; the
                // rest (reports, escalations) to its inbox.
                let dest =
                    (env.kind != message::CASE_EVENT).then(|| self.layout.supervisor_inbox());
                self.message(plan, dest, env);
            }
        }
        if let Some(case) = env.case.clone() {
            if self.case_ended(plan, &case) {
                self.late_for_case(plan, &case, env);
            } else {
                if let Some(r) = recipient {
                    self.ownership(plan, &case, r, env);
                }
                let (event, fields) = case_fields(env);
                let agent = env.from.to_string();
                let src = format!("{}/{event}", env.id);
                self.case(plan, &case, &event, &agent, src, fields);
            }
        }
        if env.kind == message::CASE_EVENT {
            let name = env.body.get("event").and_then(Value::as_str);
            if let Some(gate) = self
                .routing
                .gates
                .iter()
                .find(|g| Some(g.event.as_str()) == name)
            {
                self.gate(plan, env, gate);
            }
        }
    }

    /// The case-log side of a message the CLI delivered itself.
    pub fn reflection(&self, plan: &mut Plan, env: &Envelope, to: &AgentId) {
        let Some(case) = env.case.clone() else { return };
        if self.case_ended(plan, &case) {
            self.late_for_case(plan, &case, env);
            return;
        }
        self.ownership(plan, &case, to, env);
        let (event, fields) = case_fields(env);
        let src = format!("{}/{event}", env.id);
        self.case(plan, &case, &event, "orchestrator", src, fields);
    }

    /// Has this case been closed or cancelled (its log final, or archived)?
    /// A message in it is still delivered, but its log is not reopened: a
    /// record appended after the close would start a new log without its
    /// `created`, and the case would come back as open.
    fn case_ended(&self, plan: &Plan, case: &CaseId) -> bool {
        self.case_view(plan, case)
            .is_some_and(|c| c.status.is_final())
            || self.layout.case_pointer(case).exists()
    }

    /// Says, in the system events, that a message in an ended case was
    /// delivered without a case-log record.
    fn late_for_case(&self, plan: &mut Plan, case: &CaseId, env: &Envelope) {
        let fields =
            json!({"id": env.id, "case": case, "type": env.kind, "to": env.to.to_string()});
        let src = format!("{}/{}", env.id, event::CASE_ENDED_MESSAGE);
        self.event(
            plan,
            event::CASE_ENDED_MESSAGE,
            &env.from.to_string(),
            src,
            fields,
        );
    }

    /// Ownership never moves silently: a case message to an agent other than
    /// the owner records a handoff (or the first assignment).
    fn ownership(&self, plan: &mut Plan, case: &CaseId, to: &AgentId, env: &Envelope) {
        let owner = self.case_view(plan, case).and_then(|c| c.owner.clone());
        match owner {
            Some(o) if o == to.as_str() => {}
            Some(o) => {
                let reason = format!("{} from {}", env.kind, env.from);
                let fields = json!({"from": o, "to": to, "reason": reason, "id": env.id});
                let src = format!("{}/handoff", env.id);
                self.case(plan, case, case_log::HANDOFF, "supervisor", src, fields);
            }
            None => {
                let fields = json!({"to": to, "by": env.from, "id": env.id});
                let src = format!("{}/assigned", env.id);
                self.case(plan, case, case_log::ASSIGNED, "supervisor", src, fields);
            }
        }
    }
}

fn denied_by(rule: Option<usize>) -> String {
    match rule {
        Some(n) => format!("denied by routing rule {n}"),
        None => "denied by the routing default".into(),
    }
}

/// The case-log event and fields a routed message leaves.
fn case_fields(env: &Envelope) -> (String, Value) {
    let mut fields =
        json!({"id": env.id, "from": env.from, "to": env.to, "type": env.kind, "gen": env.gen});
    let event = match env.kind.as_str() {
        message::CASE_EVENT => {
            let name = env
                .body
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or(case_log::AGENT_REPORT)
                .to_string();
            if let (Some(f), Some(body)) = (fields.as_object_mut(), env.body.as_object()) {
                for (k, v) in body {
                    if k != "event" {
                        f.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            if LIFECYCLE_EVENTS.contains(&name.as_str()) {
                name
            } else {
                fields["report"] = Value::String(name);
                case_log::AGENT_REPORT.into()
            }
        }
        message::APPROVAL_REQUEST => {
            fields["request"] = json!(env.id);
            fields["plan"] = env.body.get("plan").cloned().unwrap_or(Value::Null);
            fields["revision"] = env.body.get("revision").cloned().unwrap_or(Value::Null);
            case_log::APPROVAL_REQUESTED.into()
        }
        _ => case_log::MESSAGE.into(),
    };
    (event, fields)
}
