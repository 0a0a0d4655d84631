//! The router: tails every `outbox.jsonl` from its own cursor, validates each
//! envelope, applies the routing policy and the receiver's protection, and
//! appends it to the recipient's inbox, the mirror and the case log — then,
//! and only then, advances the cursor (see `plan.rs` for the crash safety).

use super::plan::{Plan, HELD};
use super::{file_len, Supervisor};
use crate::activity;
use crate::config::RouteAction;
use serde_json::{json, Value};
use society_core::jsonl::{read_lines, Line};
use society_core::{AgentId, Envelope, FormatError, MsgId, Party};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Most outbox bytes routed in one batch.
const BATCH_BYTES: usize = 1 << 20;

/// Case-event names that change a case's status; any other name an agent
/// reports is recorded as `agent_report` with the name in `report`.
const LIFECYCLE_EVENTS: [&str; 4] = ["completed", "failed", "cancelled", "status"];

impl Supervisor {
    pub(super) fn route_all(&mut self) {
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            let cursor = self.ckpt.cursors.get(&id).copied().unwrap_or(0);
            if file_len(&self.slots[&id].paths.outbox()) > cursor {
                self.route(&id);
            }
        }
    }

    /// Routes everything complete in `owner`'s outbox.
    pub(super) fn route(&mut self, owner: &AgentId) {
        loop {
            match self.route_batch(owner, None, None) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(agent = %owner, error = %e, "routing failed; will retry on the next scan");
                    return;
                }
            }
        }
    }

    /// Finishes a batch interrupted by a crash, skipping what already landed.
    pub(super) fn recover_pending(&mut self) -> Result<(), FormatError> {
        let Some(batch) = self.ckpt.pending.clone() else {
            return Ok(());
        };
        self.activity.event(
            "batch_recovery",
            json!({"agent": batch.agent, "from": batch.from, "to": batch.to}),
        );
        match &batch.agent {
            Some(agent) if self.slots.contains_key(agent) => {
                self.ckpt.cursors.insert(agent.clone(), batch.from);
                self.route_batch(agent, Some(batch.to), Some(&batch.sizes))?;
            }
            Some(_) => self.ckpt.pending = None,
            None => {
                self.ckpt.inbox_offset = batch.from;
                self.request_batch(Some(batch.to), Some(&batch.sizes))?;
            }
        }
        Ok(())
    }

    /// Routes one batch; returns whether it routed anything.
    fn route_batch(
        &mut self,
        owner: &AgentId,
        limit: Option<u64>,
        recovered: Option<&BTreeMap<PathBuf, u64>>,
    ) -> Result<bool, FormatError> {
        let outbox = self.slots[owner].paths.outbox();
        let from = self.ckpt.cursors.get(owner).copied().unwrap_or(0);
        let lines = read_range(&outbox, from, limit)?;
        let Some(next) = lines.last().map(|l| l.end) else {
            return Ok(false);
        };
        let mut plan = Plan::default();
        for line in &lines {
            self.plan_line(&mut plan, owner, line);
        }
        self.commit(Some(owner), from, next, plan, recovered)?;
        Ok(true)
    }

    fn plan_line(&mut self, plan: &mut Plan, owner: &AgentId, line: &Line) {
        let env = match Envelope::parse(&line.bytes) {
            Ok(env) if env.from == Party::Agent(owner.clone()) => env,
            Ok(env) => {
                let reason = format!(
                    "from {:?} does not match the outbox owner {owner}",
                    env.from.to_string()
                );
                return self.plan_undeliverable(plan, owner, line, Some(&env), &reason);
            }
            Err(e) => return self.plan_undeliverable(plan, owner, line, None, &e.to_string()),
        };
        if env.kind == "case_event" && env.case.is_none() {
            return self.plan_undeliverable(
                plan,
                owner,
                line,
                Some(&env),
                "case_event without a case",
            );
        }
        let recipient = match &env.to {
            Party::Agent(id) if self.slots.contains_key(id) => Some(id.clone()),
            Party::Agent(id) => {
                return self.plan_undeliverable(
                    plan,
                    owner,
                    line,
                    Some(&env),
                    &format!("no agent {id}"),
                )
            }
            Party::Role(role) => match self.pick_role(role, &env) {
                Some(id) => Some(id),
                None => {
                    return self.plan_undeliverable(
                        plan,
                        owner,
                        line,
                        Some(&env),
                        &format!("no agent has role {role}"),
                    )
                }
            },
            Party::Orchestrator | Party::Supervisor => None,
        };
        if env.kind == "approval_request" && env.to == Party::Orchestrator {
            let revision = env
                .body
                .get("revision")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let max = self.slots[owner].cfg.policy.max_revisions;
            if revision > u64::from(max) + 1 {
                let reason = format!("approval still rejected after {max} revision(s)");
                // The parked message travels with it, so the orchestrator can act on it.
                let context = json!({"request": env.id, "plan": env.body.get("plan"), "parked": env.body.get("parked")});
                return self.plan_escalation(
                    plan,
                    env.id,
                    owner.as_str(),
                    env.case.as_ref(),
                    &reason,
                    context,
                );
            }
        }
        if env.to != Party::Supervisor {
            let from_role = self.slots[owner].cfg.role.clone();
            let to_role = recipient.as_ref().map(|r| self.slots[r].cfg.role.clone());
            match super::policy::decide(&self.routing, &env, Some(&from_role), to_role.as_deref()) {
                (RouteAction::Allow, _) => {}
                (RouteAction::Deny, rule) => {
                    return self.plan_blocked(plan, &env, &denied_by(rule))
                }
                (RouteAction::Approve, rule) => return self.plan_hold(plan, &env, rule),
            }
        }
        if let Some(r) = &recipient {
            let role = self.slots[owner].cfg.role.clone();
            let policy = self.slots[r].cfg.policy.clone();
            if let Err(reason) = self
                .guard
                .admit(Instant::now(), r, &policy, &env, Some(&role))
            {
                return self.plan_refused(plan, r, &env, &reason);
            }
        }
        self.plan_delivery(plan, &env, recipient.as_ref());
    }

    /// Delivers an accepted message: recipient, mirror, case log.
    pub(super) fn plan_delivery(
        &mut self,
        plan: &mut Plan,
        env: &Envelope,
        recipient: Option<&AgentId>,
    ) {
        match (recipient, &env.to) {
            (Some(r), _) => self.plan_to_agent(plan, r, env),
            (None, Party::Orchestrator) => {
                self.plan_to_orchestrator(plan, env);
                if env.kind == "approval_request" {
                    self.approvals.insert(env.id, env.clone());
                }
            }
            (None, _) => {
                // To the supervisor: case events go only to the case log; the
                // rest (reports, escalations) to its inbox.
                let dest = (env.kind != "case_event").then(|| self.layout.supervisor_inbox());
                self.plan_message(plan, dest, env);
            }
        }
        if let Some(case) = env.case.clone() {
            if let Some(r) = recipient {
                self.plan_ownership(plan, &case, r, env);
            }
            let (event, fields) = case_fields(env);
            let agent = env.from.to_string();
            self.plan_case(
                plan,
                &case,
                &event,
                &agent,
                format!("{}/{event}", env.id),
                fields,
            );
        }
    }

    /// The case-log side of a message the CLI delivered itself.
    pub(super) fn plan_reflection(&mut self, plan: &mut Plan, env: &Envelope, to: &AgentId) {
        let Some(case) = env.case.clone() else { return };
        self.plan_ownership(plan, &case, to, env);
        let (event, fields) = case_fields(env);
        self.plan_case(
            plan,
            &case,
            &event,
            "orchestrator",
            format!("{}/{event}", env.id),
            fields,
        );
    }

    /// Ownership never moves silently: a case message to an agent other than
    /// the owner records a handoff (or the first assignment).
    fn plan_ownership(
        &mut self,
        plan: &mut Plan,
        case: &society_core::CaseId,
        to: &AgentId,
        env: &Envelope,
    ) {
        let owner = self.cases.get(case).and_then(|c| c.owner.clone());
        match owner {
            Some(o) if o == to.as_str() => {}
            Some(o) => {
                let reason = format!("{} from {}", env.kind, env.from);
                let fields = json!({"from": o, "to": to, "reason": reason, "id": env.id});
                self.plan_case(
                    plan,
                    case,
                    "handoff",
                    "supervisor",
                    format!("{}/handoff", env.id),
                    fields,
                );
            }
            None => {
                let fields = json!({"to": to, "by": env.from, "id": env.id});
                self.plan_case(
                    plan,
                    case,
                    "assigned",
                    "supervisor",
                    format!("{}/assigned", env.id),
                    fields,
                );
            }
        }
    }

    /// A routing rule says `approve`: hold the message and ask the orchestrator.
    fn plan_hold(&mut self, plan: &mut Plan, env: &Envelope, rule: Option<usize>) {
        let what = format!("deliver {} from {} to {}", env.kind, env.from, env.to);
        let body = json!({"kind": "route", "plan": what, "rule": rule, "held": env});
        let mut req = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            "approval_request",
            body,
        );
        req.id = MsgId::derive(&env.id, HELD);
        req.case = env.case.clone();
        self.plan_to_orchestrator(plan, &req);
        self.approvals.insert(req.id, req.clone());
        if let Some(case) = &env.case {
            let fields = json!({"request": req.id, "plan": what, "rule": rule});
            self.plan_case(
                plan,
                case,
                "approval_requested",
                "supervisor",
                format!("{}/approval_requested", req.id),
                fields,
            );
        }
        let fields =
            json!({"id": env.id, "to": env.to, "type": env.kind, "rule": rule, "request": req.id});
        self.plan_event(
            plan,
            "message_held",
            env.from.to_string().as_str(),
            format!("{}/held", env.id),
            fields,
        );
    }

    /// Receiver protection refused the message.
    fn plan_refused(&mut self, plan: &mut Plan, receiver: &AgentId, env: &Envelope, reason: &str) {
        let src = format!("{receiver}@{}", env.id);
        let fields =
            json!({"src": src, "id": env.id, "from": env.from, "type": env.kind, "reason": reason});
        let rec = activity::record("refused", receiver.as_str(), 0, fields.clone());
        plan.push(
            self.slots[receiver].paths.deadletter(),
            true,
            src.clone(),
            rec,
        );
        self.plan_event(plan, "message_refused", receiver.as_str(), src, fields);
        self.plan_blocked(plan, env, &format!("refused by {receiver}: {reason}"));
    }

    fn pick_role(&self, role: &str, env: &Envelope) -> Option<AgentId> {
        let candidates: Vec<&AgentId> = self
            .slots
            .iter()
            .filter(|(_, s)| s.cfg.role == role)
            .map(|(id, _)| id)
            .collect();
        crate::roles::pick(&candidates, env).cloned()
    }

    fn plan_undeliverable(
        &mut self,
        plan: &mut Plan,
        owner: &AgentId,
        line: &Line,
        env: Option<&Envelope>,
        reason: &str,
    ) {
        let src = format!("{owner}@{}", line.offset);
        let mut fields = json!({
            "src": src, "file": "outbox.jsonl", "offset": line.offset, "id": env.map(|e| e.id),
            "to": env.map(|e| e.to.to_string()), "reason": reason,
        });
        let gen = env.map_or(0, |e| e.gen);
        let mut with_line = fields.clone();
        with_line["line"] = Value::String(
            String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64 * 1024)]).into_owned(),
        );
        plan.push(
            self.slots[owner].paths.deadletter(),
            true,
            src.clone(),
            activity::record("undeliverable", owner.as_str(), gen, with_line),
        );
        fields["gen"] = Value::from(gen);
        self.plan_event(plan, "undeliverable", owner.as_str(), src, fields);
        if let Some(env) = env {
            self.plan_blocked(plan, env, &format!("undeliverable: {reason}"));
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
        "case_event" => {
            let name = env
                .body
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or("agent_report")
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
                "agent_report".into()
            }
        }
        "approval_request" => {
            fields["request"] = json!(env.id);
            fields["plan"] = env.body.get("plan").cloned().unwrap_or(Value::Null);
            fields["revision"] = env.body.get("revision").cloned().unwrap_or(Value::Null);
            "approval_requested".into()
        }
        _ => "message".into(),
    };
    (event, fields)
}

/// Complete lines from `from`, up to (not past) `limit`.
pub(super) fn read_range(
    path: &std::path::Path,
    from: u64,
    limit: Option<u64>,
) -> Result<Vec<Line>, FormatError> {
    let mut batch = read_lines(path, from, BATCH_BYTES)?;
    if let Some(limit) = limit {
        batch.lines.retain(|l| l.end <= limit);
    }
    Ok(batch.lines)
}
