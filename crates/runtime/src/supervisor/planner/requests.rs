//! A line of the supervisor's own inbox, planned: the orchestrator's
//! control requests (agents, cases, approval decisions, unblocks) and the
//! agents' reports (escalations, dead letters). What a request does besides
//! the appends — start, stop, archive — is an [`After`] the supervisor runs
//! once the batch landed.

use super::super::plan::{position_key, After, Plan, INBOX_KEY, RESPONSE};
use super::Planner;
use crate::activity;
use crate::control::Request;
use serde_json::{json, Value};
use society_core::jsonl::Line;
use society_core::kinds::{case_log, event, message};
use society_core::layout::names;
use society_core::org::ORCHESTRATOR;
use society_core::{AgentId, CaseId, Envelope, MsgId, Party};

/// Most parties an escalation names (the escalating agent included).
const MAX_PARTIES: usize = 64;

impl Planner<'_> {
    /// A line of the supervisor's inbox that is not a valid envelope: dead-
    /// lettered in `supervisor/deadletter.jsonl` (so `fsck` knows it was
    /// handled) and recorded in the system events.
    pub fn bad_line(&self, plan: &mut Plan, line: &Line, reason: &str) {
        let seg = self.inbox_seg;
        let src = position_key(INBOX_KEY, seg, line.offset);
        let excerpt =
            String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64 * 1024)]).into_owned();
        let mut fields = json!({"src": src, "file": names::INBOX, "offset": line.offset, "reason": reason,
            "line": excerpt, "truncated": line.bytes.len() > 64 * 1024 || line.is_cut()});
        if seg > 0 {
            fields["seg"] = json!(seg);
        }
        plan.push(
            self.layout.supervisor_deadletter(),
            true,
            src.clone(),
            activity::record(event::DEAD_LETTERED, "supervisor", 0, fields),
        );
        let fields = json!({"offset": line.offset, "reason": reason});
        self.event(plan, "supervisor_inbox_bad_line", "supervisor", src, fields);
    }

    pub fn request(&self, plan: &mut Plan, env: Envelope) {
        // From another society (appended by the federation bridge): routed
        // like an outbox line.
        if env.from.society().is_some() {
            return self.inbound(plan, env);
        }
        // The orchestrator's message to another society (`society send
        // agent@north`): out through `outbound.jsonl`.
        if env.from == Party::Orchestrator && env.to.society().is_some() {
            return match self.cannot_leave(&env) {
                Some(reason) => self.unroutable(plan, &env, &reason),
                None => self.delivery(plan, &env, None),
            };
        }
        if env.kind == message::CONTROL && env.from == Party::Orchestrator {
            match serde_json::from_value::<Request>(env.body.clone()) {
                Ok(req) => self.control(plan, &env, req),
                Err(e) => self.event(
                    plan,
                    "control_invalid",
                    "supervisor",
                    format!("{}/invalid", env.id),
                    json!({"id": env.id, "reason": e.to_string()}),
                ),
            }
            return;
        }
        if self.broadcast_ack(plan, &env) || self.shared_put(plan, &env) {
            return;
        }
        let agent = env.from.to_string();
        // A lead answering (or escalating) an item that waits at it.
        if self.lead_message(plan, &env) {
            return;
        }
        match env.kind.as_str() {
            message::DEBATE_REQUEST => self.debate_request(plan, &env),
            message::PERSPECTIVE => self.perspective(plan, &env),
            message::ESCALATE => {
                let reason = env
                    .body
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
                    .to_string();
                let context = env.body.get("context").cloned().unwrap_or(Value::Null);
                let mut parties = vec![agent.clone()];
                for p in [env.body.get("parties"), context.get("parties")]
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    // At most MAX_PARTIES: a brain naming thousands must not
                    // make every record and lead message that long.
                    if parties.len() >= MAX_PARTIES {
                        break;
                    }
                    if !parties.iter().any(|q| q == p) {
                        parties.push(p.to_string());
                    }
                }
                let case = env.case.as_ref();
                self.escalate_up(plan, env.id, &agent, parties, case, &reason, context);
            }
            message::DEAD_LETTER => {
                let reason = format!(
                    "message {} dead-lettered by {agent}: {}",
                    env.body
                        .get("message_id")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    env.body
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                );
                self.event(
                    plan,
                    "report_dead_letter",
                    &agent,
                    format!("{}/report", env.id),
                    json!({"id": env.id, "case": env.case, "body": env.body}),
                );
                // The sender of the dead-lettered message is a party too.
                let mut parties = vec![agent.clone()];
                if let Some(from) = env.body.get("from").and_then(Value::as_str) {
                    let is_agent = matches!(from.parse::<Party>(), Ok(Party::Agent(_)));
                    if from != agent && is_agent {
                        parties.push(from.to_string());
                    }
                }
                let (case, body) = (env.case.as_ref(), env.body.clone());
                self.escalate_up(plan, env.id, &agent, parties, case, &reason, body);
            }
            other => {
                let event = format!("report_{other}");
                self.event(
                    plan,
                    &event,
                    &agent,
                    format!("{}/report", env.id),
                    json!({"id": env.id, "case": env.case, "body": env.body}),
                );
            }
        }
    }

    fn control(&self, plan: &mut Plan, env: &Envelope, req: Request) {
        match req {
            Request::Start { agent } => self.after_known(plan, env, agent, After::Start),
            Request::Stop { agent } => self.after_known(plan, env, agent, After::Stop),
            Request::Restart { agent } => self.after_known(plan, env, agent, After::Restart),
            Request::Reload => plan.after.push(After::Reload(env.id)),
            Request::Remove { agent } => self.removal(plan, env, agent),
            Request::CaseNew {
                case,
                purpose,
                assign,
                priority,
                due,
            } => {
                if self.case_view(plan, &case).is_some() || self.layout.case_log(&case).exists() {
                    return self.reject(plan, env, format!("case {case} already exists"));
                }
                let fields = json!({"purpose": purpose, "priority": priority, "due": due, "by": "orchestrator"});
                self.case(
                    plan,
                    &case,
                    case_log::CREATED,
                    "orchestrator",
                    format!("{}/created", env.id),
                    fields,
                );
                if let Some(to) = assign {
                    self.assign(plan, env, &case, &to, &purpose, priority.as_deref(), &due);
                }
            }
            Request::CaseClose { case, reason } => match self.case_view(plan, &case) {
                None => self.reject(plan, env, format!("no open case {case}")),
                Some(c) if c.status == society_core::case::CaseStatus::Closed => {
                    self.reject(plan, env, format!("case {case} is closed already"))
                }
                Some(_) => {
                    self.case(
                        plan,
                        &case,
                        case_log::CLOSED,
                        "orchestrator",
                        format!("{}/closed", env.id),
                        json!({"reason": reason}),
                    );
                    plan.after.push(After::Archive(case));
                }
            },
            Request::Decide {
                request,
                approve,
                note,
                how,
            } => self.decision(plan, env, request, approve, note, how),
            Request::Unblock { agent } => {
                let sender = agent.to_string();
                plan.guard.unblock(&sender);
                self.event(
                    plan,
                    "sender_unblocked",
                    &sender,
                    format!("{}/unblocked", env.id),
                    json!({"id": env.id, "by": "orchestrator"}),
                );
            }
            Request::Reflect {
                message,
                delivered_to,
            } => {
                if message.from != Party::Orchestrator || message.case.is_none() {
                    return self.reject(
                        plan,
                        env,
                        "reflect: only the orchestrator's case messages".into(),
                    );
                }
                self.reflection(plan, &message, &delivered_to);
            }
        }
    }

    /// `society rm`: a `removed` record in the registry — the durable
    /// decision, which a restarted supervisor finishes (`remove.rs`) — and
    /// the move itself once the batch landed. The archive's name comes from
    /// the request's time, so a re-planned batch names the same folder.
    fn removal(&self, plan: &mut Plan, env: &Envelope, agent: AgentId) {
        if !self.known(&agent) {
            return self.reject(plan, env, format!("no agent {agent}"));
        }
        let archive = society_core::Layout::archived_agent_dir(&agent, &archive_stamp(&env.ts));
        let src = format!("{}/removed", env.id);
        let fields = json!({"src": src, "archive": archive, "request": env.id});
        plan.push(
            self.layout.registry(),
            true,
            src.clone(),
            activity::record(event::REMOVED, agent.as_str(), 0, fields.clone()),
        );
        self.event(plan, event::AGENT_REMOVED, agent.as_str(), src, fields);
        plan.after.push(After::Remove { agent, archive });
    }

    fn after_known(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        agent: AgentId,
        make: fn(AgentId) -> After,
    ) {
        // The supervisor rescanned the agents for this one before planning
        // (`Supervisor::before_request`).
        if self.known(&agent) {
            plan.after.push(make(agent));
        } else {
            self.reject(plan, env, format!("no agent {agent}"));
        }
    }

    fn reject(&self, plan: &mut Plan, env: &Envelope, reason: String) {
        self.event(
            plan,
            "control_rejected",
            "supervisor",
            format!("{}/rejected", env.id),
            json!({"id": env.id, "body": env.body, "reason": reason}),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn assign(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        case: &CaseId,
        to: &Party,
        purpose: &str,
        priority: Option<&str>,
        due: &str,
    ) {
        let mut msg = Envelope::new(
            Party::Supervisor,
            to.clone(),
            "case_assigned",
            json!({"purpose": purpose, "priority": priority, "due": due}),
        );
        msg.id = MsgId::derive(&env.id, 0);
        msg.case = Some(case.clone());
        let Some(agent) = self.recipient(plan, to, &msg) else {
            return self.reject(
                plan,
                env,
                format!("cannot assign case {case}: no agent for {to}"),
            );
        };
        self.case(
            plan,
            case,
            case_log::ASSIGNED,
            "orchestrator",
            format!("{}/assigned", env.id),
            json!({"to": agent, "by": "orchestrator"}),
        );
        self.to_agent(plan, &agent, &msg);
    }

    /// `society approve` / `reject`: answer the request, once.
    fn decision(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        request: MsgId,
        approve: bool,
        note: Option<String>,
        how: Option<crate::control::How>,
    ) {
        self.decide_as(plan, env, request, approve, note, how, ORCHESTRATOR);
    }

    /// Answers an approval request, once: for the orchestrator (`by`
    /// `orchestrator`) or a lead within its scope (`by` its id; `env` is
    /// then the lead's reply, from which the answer's id is derived).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide_as(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        request: MsgId,
        approve: bool,
        note: Option<String>,
        how: Option<crate::control::How>,
        by: &str,
    ) {
        let known = plan
            .approvals
            .iter()
            .find(|a| a.id == request)
            .or_else(|| self.approvals.get(&request))
            .cloned();
        let Some(req) = known else {
            return self.reject(plan, env, format!("no approval request {request}"));
        };
        if self.decided.contains(&request) || plan.decided.contains(&request) {
            return self.reject(
                plan,
                env,
                format!("approval request {request} was already answered"),
            );
        }
        if let Some(case) = req.case.as_ref().filter(|c| self.case_closed(plan, c)) {
            return self.reject(
                plan,
                env,
                format!("approval request {request} belongs to case {case}, which is closed"),
            );
        }
        plan.decided.push(request);
        if by == ORCHESTRATOR {
            self.orchestrator_answered(plan, request, approve, note.as_deref());
        }
        let decision = if approve {
            case_log::APPROVED
        } else {
            case_log::REJECTED
        };
        if let Some(case) = &req.case {
            let fields = json!({"request": request, "note": note,
                                "revision": req.body.get("revision"), "how": how});
            self.case(
                plan,
                case,
                decision,
                by,
                format!("{}/{decision}", env.id),
                fields,
            );
        }
        let held = req
            .body
            .get("held")
            .and_then(|h| serde_json::from_value::<Envelope>(h.clone()).ok());
        // An expired debate's request (the supervisor asked on behalf of
        // the proposer, named in the body): answered to the proposer.
        let debate = (req.body.get("kind").and_then(Value::as_str) == Some("debate"))
            .then(|| req.body.get("agent").and_then(Value::as_str))
            .flatten()
            .and_then(|a| AgentId::new(a).ok());
        // A milestone gate: the answer to the agent that reached it, a
        // rejection's notes to every `revise_to` party.
        let gate = (req.body.get("kind").and_then(Value::as_str) == Some("gate"))
            .then(|| req.body.get("agent").and_then(Value::as_str))
            .flatten()
            .and_then(|a| AgentId::new(a).ok());
        if let (Party::Supervisor, Some(agent)) = (&req.from, gate) {
            if self.known(&agent) {
                self.answer(
                    plan,
                    env,
                    &req,
                    &agent,
                    req.case.clone(),
                    (approve, note.clone(), None),
                );
            }
            if !approve {
                let parties = req
                    .body
                    .get("revise_to")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let gate_name = req.body.get("gate").cloned().unwrap_or(Value::Null);
                for (i, p) in parties.iter().enumerate() {
                    let Some(party) = p.as_str().and_then(|p| p.parse::<Party>().ok()) else {
                        continue;
                    };
                    let mut notes = Envelope::new(
                        Party::Orchestrator,
                        party.clone(),
                        message::GATE_NOTES,
                        json!({"gate": gate_name, "notes": note, "request": request}),
                    );
                    notes.id = MsgId::derive(&env.id, super::super::plan::GATE_NOTES + i as u32);
                    notes.case = req.case.clone();
                    match self.recipient(plan, &party, &notes) {
                        Some(r) => self.delivery(plan, &notes, Some(&r)),
                        None => self.blocked(plan, &notes, &format!("no agent for {party}")),
                    }
                }
            }
            return;
        }
        match (req.from.clone(), held, debate) {
            // A message held by a routing rule.
            (Party::Supervisor, Some(held), _) => {
                if approve {
                    let recipient = self.recipient(plan, &held.to, &held);
                    self.delivery(plan, &held, recipient.as_ref());
                } else {
                    let by = if by == ORCHESTRATOR {
                        "the orchestrator".to_string()
                    } else {
                        format!("lead {by}")
                    };
                    let why = format!(
                        "rejected by {by}: {}",
                        note.as_deref().unwrap_or("no feedback")
                    );
                    self.blocked(plan, &held, &why);
                }
            }
            (Party::Supervisor, None, Some(agent)) if self.known(&agent) => {
                // In the case the proposer asked from, like its debate result.
                let case = req
                    .body
                    .get("proposer_case")
                    .and_then(|c| serde_json::from_value::<CaseId>(c.clone()).ok());
                self.answer(
                    plan,
                    env,
                    &req,
                    &agent,
                    case,
                    (approve, note.clone(), how.as_ref()),
                );
                if let Some(debate) = &req.case {
                    let fields =
                        json!({"request": request, "by": "orchestrator", "decision": decision});
                    let src = format!("{}/{}", env.id, case_log::COMPLETED);
                    self.case(
                        plan,
                        debate,
                        case_log::COMPLETED,
                        "orchestrator",
                        src,
                        fields,
                    );
                }
            }
            // An agent's own request: the answer carries the parked message back.
            (Party::Agent(agent), _, _) if self.known(&agent) => {
                let case = req.case.clone();
                let answer = (approve, note, how.as_ref());
                self.answer_by(plan, env, &req, &Party::Agent(agent), case, answer, by);
            }
            // A request from another society's party: answered across.
            (from @ Party::Remote { .. }, _, _) if self.cannot_leave_to(&from) => self.reject(
                plan,
                env,
                format!("approval request {request} came from {from}, and this society is not federated"),
            ),
            (from @ Party::Remote { .. }, _, _) => {
                let case = req.case.clone();
                let answer = (approve, note, how.as_ref());
                self.answer_by(plan, env, &req, &from, case, answer, by);
            }
            _ => self.reject(
                plan,
                env,
                format!("approval request {request} has no one to answer"),
            ),
        }
    }
}

impl Planner<'_> {
    /// The `approval_response` to the agent a request was made for: the
    /// decision, the plan and the parked message, and — for a decision's
    /// request — the proposal and the outputs to release.
    fn answer(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        req: &Envelope,
        agent: &AgentId,
        case: Option<CaseId>,
        answer: (bool, Option<String>, Option<&crate::control::How>),
    ) {
        let to = Party::Agent(agent.clone());
        self.answer_by(plan, env, req, &to, case, answer, ORCHESTRATOR);
    }

    /// The answer, from the orchestrator or from the lead that gave it.
    #[allow(clippy::too_many_arguments)]
    fn answer_by(
        &self,
        plan: &mut Plan,
        env: &Envelope,
        req: &Envelope,
        to: &Party,
        case: Option<CaseId>,
        (approve, note, how): (bool, Option<String>, Option<&crate::control::How>),
        by: &str,
    ) {
        let decision = match how {
            Some(h) => h.decision(),
            None if approve => case_log::APPROVED,
            None => case_log::REJECTED,
        };
        let mut body = json!({
            "request": req.id, "decision": decision, "approved": approve, "note": note,
            "revision": req.body.get("revision").cloned().unwrap_or(json!(1)),
            "plan": req.body.get("plan"), "parked": req.body.get("parked"),
        });
        // An override or a chosen alternative: the plan to carry out instead.
        if let Some(h) = how {
            body["how"] = json!(h);
            if let Some(p) = h.plan() {
                body["override"] = json!(p);
            }
        }
        for key in ["proposal", "then"] {
            if let Some(v) = req.body.get(key) {
                body[key] = v.clone();
            }
        }
        if by != ORCHESTRATOR {
            body["by"] = json!(by);
        }
        let from = match AgentId::new(by) {
            Ok(lead) if by != ORCHESTRATOR => Party::Agent(lead),
            _ => Party::Orchestrator,
        };
        let mut answer = Envelope::new(from, to.clone(), message::APPROVAL_RESPONSE, body);
        answer.id = MsgId::derive(&env.id, RESPONSE);
        answer.reply_to = Some(req.id);
        answer.case = case;
        match to {
            Party::Agent(agent) => self.to_agent(plan, agent, &answer),
            // Out through `outbound.jsonl` to the requester's society.
            _ => self.remote(plan, &answer),
        }
    }
}

/// `2026-11-21T19:31:33.123Z` → `20261121T193133.123Z`: a time for a folder
/// name (no colons), to the millisecond.
fn archive_stamp(ts: &str) -> String {
    ts.chars().filter(|c| !matches!(c, '-' | ':')).collect()
}
