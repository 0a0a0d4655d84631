//! The supervisor's own inbox: requests from the orchestrator (control ops,
//! cases, approval decisions) and reports from agents (escalations, dead
//! letters). Consumed by cursor, with the same write-ahead batches as the
//! router, so a crash never doubles a case event or an answer.

use super::commit::{present_keys, Source};
use super::plan::{now_ms, position_key, read_range, After, Plan, INBOX_KEY, RESPONSE};
use super::{Phase, Supervisor};
use crate::activity;
use crate::control::{self, Request};
use serde_json::{json, Value};
use society_core::jsonl::Line;
use society_core::{AgentId, CaseId, Envelope, FormatError, MsgId, Party};
use std::collections::BTreeMap;
use std::path::PathBuf;

impl Supervisor {
    pub(super) fn process_requests(&mut self) {
        if self.ckpt.incidents.contains_key(INBOX_KEY) {
            return;
        }
        if self.is_stalled(&Source::Inbox) {
            self.retry_stalled(Some(&Source::Inbox));
            if self.is_stalled(&Source::Inbox) {
                return;
            }
        }
        loop {
            match self.request_batch(None, None, None) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot process the supervisor inbox; will retry");
                    return;
                }
            }
        }
    }

    pub(super) fn request_batch(
        &mut self,
        limit: Option<u64>,
        recovered: Option<&BTreeMap<PathBuf, u64>>,
        at: Option<u64>,
    ) -> Result<bool, FormatError> {
        let from = self.ckpt.inbox_offset;
        let inbox = self.layout.supervisor_inbox();
        let lines = match read_range(&inbox, from, limit)? {
            Ok(lines) => lines,
            Err(check) => {
                self.incident(INBOX_KEY, &inbox, from, check);
                return Ok(false);
            }
        };
        let Some(next) = lines.last().map(|l| l.end) else {
            return Ok(false);
        };
        let mut plan = Plan::at(at.unwrap_or_else(now_ms));
        if let Some(sizes) = recovered {
            plan.present = Some(present_keys(sizes)?);
        }
        plan.lines = lines.len() as u64;
        for line in &lines {
            match Envelope::parse(&line.bytes) {
                Ok(env) => self.plan_request(&mut plan, env),
                Err(e) => self.plan_bad_line(&mut plan, line, &e.to_string()),
            }
        }
        self.commit(None, from, next, plan, recovered)?;
        Ok(true)
    }

    /// A line of the supervisor's inbox that is not a valid envelope: dead-
    /// lettered in `supervisor/deadletter.jsonl` (so `fsck` knows it was
    /// handled) and recorded in the system events.
    fn plan_bad_line(&self, plan: &mut Plan, line: &Line, reason: &str) {
        let seg = self.ckpt.inbox_seg;
        let src = position_key(INBOX_KEY, seg, line.offset);
        let excerpt =
            String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64 * 1024)]).into_owned();
        let mut fields = json!({"src": src, "file": "inbox.jsonl", "offset": line.offset, "reason": reason,
            "line": excerpt, "truncated": line.bytes.len() > 64 * 1024});
        if seg > 0 {
            fields["seg"] = json!(seg);
        }
        plan.push(
            self.layout.supervisor_deadletter(),
            true,
            src.clone(),
            activity::record("dead_lettered", "supervisor", 0, fields),
        );
        let fields = json!({"offset": line.offset, "reason": reason});
        self.plan_event(plan, "supervisor_inbox_bad_line", "supervisor", src, fields);
    }

    fn plan_request(&mut self, plan: &mut Plan, env: Envelope) {
        if env.kind == control::TYPE && env.from == Party::Orchestrator {
            match serde_json::from_value::<Request>(env.body.clone()) {
                Ok(req) => self.plan_control(plan, &env, req),
                Err(e) => self.plan_event(
                    plan,
                    "control_invalid",
                    "supervisor",
                    format!("{}/invalid", env.id),
                    json!({"id": env.id, "reason": e.to_string()}),
                ),
            }
            return;
        }
        let agent = env.from.to_string();
        match env.kind.as_str() {
            "escalate" => {
                let reason = env
                    .body
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
                    .to_string();
                let context = env.body.get("context").cloned().unwrap_or(Value::Null);
                self.plan_escalation(plan, env.id, &agent, env.case.as_ref(), &reason, context);
            }
            "dead_letter" => {
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
                self.plan_event(
                    plan,
                    "report_dead_letter",
                    &agent,
                    format!("{}/report", env.id),
                    json!({"id": env.id, "case": env.case, "body": env.body}),
                );
                self.plan_escalation(
                    plan,
                    env.id,
                    &agent,
                    env.case.as_ref(),
                    &reason,
                    env.body.clone(),
                );
            }
            other => {
                let event = format!("report_{other}");
                self.plan_event(
                    plan,
                    &event,
                    &agent,
                    format!("{}/report", env.id),
                    json!({"id": env.id, "case": env.case, "body": env.body}),
                );
            }
        }
    }

    fn plan_control(&mut self, plan: &mut Plan, env: &Envelope, req: Request) {
        self.activity
            .event("control", json!({"op": req.name(), "id": env.id}));
        match req {
            Request::Start { agent } => self.after_known(plan, env, agent, After::Start),
            Request::Stop { agent } => self.after_known(plan, env, agent, After::Stop),
            Request::Restart { agent } => self.after_known(plan, env, agent, After::Restart),
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
                self.plan_case(
                    plan,
                    &case,
                    "created",
                    "orchestrator",
                    format!("{}/created", env.id),
                    fields,
                );
                if let Some(to) = assign {
                    self.plan_assign(plan, env, &case, &to, &purpose, priority.as_deref(), &due);
                }
            }
            Request::CaseClose { case, reason } => match self.case_view(plan, &case) {
                None => self.reject(plan, env, format!("no open case {case}")),
                Some(c) if c.status == society_core::case::CaseStatus::Closed => {
                    self.reject(plan, env, format!("case {case} is closed already"))
                }
                Some(_) => {
                    self.plan_case(
                        plan,
                        &case,
                        "closed",
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
            } => self.plan_decision(plan, env, request, approve, note),
            Request::Unblock { agent } => {
                let sender = agent.to_string();
                plan.guard.unblock(&sender);
                self.plan_event(
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
                self.plan_reflection(plan, &message, &delivered_to);
            }
        }
    }

    fn after_known(
        &mut self,
        plan: &mut Plan,
        env: &Envelope,
        agent: AgentId,
        make: fn(AgentId) -> After,
    ) {
        if !self.slots.contains_key(&agent) {
            if let Err(e) = self.rescan_agents() {
                tracing::error!(error = %e, "failed to rescan agents");
            }
        }
        if self.slots.contains_key(&agent) {
            plan.after.push(make(agent));
        } else {
            self.reject(plan, env, format!("no agent {agent}"));
        }
    }

    fn reject(&self, plan: &mut Plan, env: &Envelope, reason: String) {
        self.plan_event(
            plan,
            "control_rejected",
            "supervisor",
            format!("{}/rejected", env.id),
            json!({"id": env.id, "body": env.body, "reason": reason}),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_assign(
        &mut self,
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
        let agent = match to {
            Party::Agent(a) if self.slots.contains_key(a) => Some(a.clone()),
            Party::Role(r) => {
                let candidates: Vec<&AgentId> = self
                    .slots
                    .iter()
                    .filter(|(_, s)| s.cfg.role == *r)
                    .map(|(id, _)| id)
                    .collect();
                crate::roles::pick(&candidates, &msg).cloned()
            }
            _ => None,
        };
        let Some(agent) = agent else {
            return self.reject(
                plan,
                env,
                format!("cannot assign case {case}: no agent for {to}"),
            );
        };
        self.plan_case(
            plan,
            case,
            "assigned",
            "orchestrator",
            format!("{}/assigned", env.id),
            json!({"to": agent, "by": "orchestrator"}),
        );
        self.plan_to_agent(plan, &agent, &msg);
    }

    /// `society approve` / `reject`: answer the request, once.
    fn plan_decision(
        &mut self,
        plan: &mut Plan,
        env: &Envelope,
        request: MsgId,
        approve: bool,
        note: Option<String>,
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
        let decision = if approve { "approved" } else { "rejected" };
        if let Some(case) = &req.case {
            let fields =
                json!({"request": request, "note": note, "revision": req.body.get("revision")});
            self.plan_case(
                plan,
                case,
                decision,
                "orchestrator",
                format!("{}/{decision}", env.id),
                fields,
            );
        }
        let held = req
            .body
            .get("held")
            .and_then(|h| serde_json::from_value::<Envelope>(h.clone()).ok());
        match (req.from.clone(), held) {
            // A message held by a routing rule.
            (Party::Supervisor, Some(held)) => {
                if approve {
                    let recipient = match &held.to {
                        Party::Agent(a) if self.slots.contains_key(a) => Some(a.clone()),
                        Party::Role(r) => {
                            let c: Vec<&AgentId> = self
                                .slots
                                .iter()
                                .filter(|(_, s)| s.cfg.role == *r)
                                .map(|(id, _)| id)
                                .collect();
                            crate::roles::pick(&c, &held).cloned()
                        }
                        _ => None,
                    };
                    self.plan_delivery(plan, &held, recipient.as_ref());
                } else {
                    let why = format!(
                        "rejected by the orchestrator: {}",
                        note.as_deref().unwrap_or("no feedback")
                    );
                    self.plan_blocked(plan, &held, &why);
                }
            }
            // An agent's own request: the answer carries the parked message back.
            (Party::Agent(agent), _) if self.slots.contains_key(&agent) => {
                let body = json!({
                    "request": request, "decision": decision, "approved": approve, "note": note,
                    "revision": req.body.get("revision").cloned().unwrap_or(json!(1)),
                    "plan": req.body.get("plan"), "parked": req.body.get("parked"),
                });
                let mut answer = Envelope::new(
                    Party::Orchestrator,
                    Party::Agent(agent.clone()),
                    "approval_response",
                    body,
                );
                answer.id = MsgId::derive(&env.id, RESPONSE);
                answer.reply_to = Some(request);
                answer.case = req.case.clone();
                self.plan_to_agent(plan, &agent, &answer);
            }
            _ => self.reject(
                plan,
                env,
                format!("approval request {request} has no one to answer"),
            ),
        }
    }

    pub(super) fn run_after(&mut self, after: After) {
        match after {
            After::Start(id) => {
                self.record(&id).held = false;
                self.save_state();
                if self.slots.get(&id).is_some_and(|s| s.phase == Phase::Down) {
                    self.start(&id, "spawn");
                }
            }
            After::Stop(id) => {
                self.record(&id).held = true;
                self.save_state();
                self.stop(&id, "stop");
            }
            After::Restart(id) => {
                let rec = self.record(&id);
                rec.held = false;
                rec.failed = false;
                self.save_state();
                let Some(slot) = self.slots.get_mut(&id) else {
                    return;
                };
                slot.restart.reset();
                match slot.phase {
                    Phase::Up(_) => {
                        slot.restart_requested = true;
                        self.stop(&id, "restart");
                    }
                    Phase::Stopping { .. } => slot.restart_requested = true,
                    Phase::Down | Phase::Failed | Phase::Backoff { .. } => {
                        slot.phase = Phase::Down;
                        self.start(&id, "restart");
                    }
                    // Runs again as soon as its folder is whole (the scan checks).
                    Phase::Broken { .. } => self.recheck_broken(),
                }
            }
            After::Archive(case) => self.archive_case(&case),
        }
        self.status_dirty = true;
    }
}
