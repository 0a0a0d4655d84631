//! The router: tails every `outbox.jsonl` from its own cursor, validates each
//! envelope, cuts conversations past their hop limit, applies the routing
//! policy and the receiver's protection, and appends it to the recipient's
//! inbox, the mirror and the case log — then, and only then, advances the
//! cursor (see `commit.rs` for the crash and failure safety).

mod dispose;

use super::commit::{present_keys, Source};
use super::guard::Verdict;
use super::plan::{now_ms, read_range, Plan};
use super::state::Incident;
use super::{file_len, Supervisor};
use crate::config::RouteAction;
use serde_json::{json, Value};
use society_core::jsonl::{CursorCheck, Line};
use society_core::{AgentId, Envelope, FormatError, MsgId, Party};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Case-event names that change a case's status; any other name an agent
/// reports is recorded as `agent_report` with the name in `report`.
const LIFECYCLE_EVENTS: [&str; 4] = ["completed", "failed", "cancelled", "status"];

/// What planning one outbox line decided.
pub(super) enum LineOutcome {
    Planned,
    /// Over the rate to its receiver: the outbox waits at this line.
    Paced {
        until: u64,
    },
}

impl Supervisor {
    pub(super) fn route_all(&mut self) {
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            let cursor = self.ckpt.cursors.get(&id).copied().unwrap_or(0);
            if file_len(&self.slots[&id].paths.outbox()) != cursor {
                self.route(&id);
            }
        }
    }

    /// Senders whose pacing is over: route them again.
    pub(super) fn route_paced(&mut self) {
        let now = Instant::now();
        let due: Vec<AgentId> = self
            .paced
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for a in due {
            self.paced.remove(&a);
            self.route(&a);
        }
    }

    /// Routes everything complete in `owner`'s outbox, unless the outbox is
    /// held: a batch of it waits to be written, its sender is paced, or the
    /// file no longer matches the cursor.
    pub(super) fn route(&mut self, owner: &AgentId) {
        if self.ckpt.incidents.contains_key(owner.as_str()) {
            return;
        }
        if let Some(until) = self.paced.get(owner) {
            if *until > Instant::now() {
                return;
            }
            self.paced.remove(owner);
        }
        let source = Source::Outbox(owner.clone());
        if self.is_stalled(&source) {
            self.retry_stalled(Some(&source));
            if self.is_stalled(&source) {
                return;
            }
        }
        loop {
            match self.route_batch(owner, None, None, None) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(agent = %owner, error = %e, "routing failed; will retry on the next scan");
                    return;
                }
            }
        }
    }

    /// Routes one batch; returns whether it routed anything. `recovered`:
    /// the range `[cursor, limit)` is a batch a crash or a failed write
    /// interrupted, planned at `at`, with the destination lengths recorded.
    pub(super) fn route_batch(
        &mut self,
        owner: &AgentId,
        limit: Option<u64>,
        recovered: Option<&BTreeMap<PathBuf, u64>>,
        at: Option<u64>,
    ) -> Result<bool, FormatError> {
        let outbox = self.slots[owner].paths.outbox();
        let from = self.ckpt.cursors.get(owner).copied().unwrap_or(0);
        let lines = match read_range(&outbox, from, limit)? {
            Ok(lines) => lines,
            Err(check) => {
                self.incident(owner.as_str(), &outbox, from, check);
                return Ok(false);
            }
        };
        if lines.is_empty() {
            return Ok(false);
        }
        let mut plan = Plan::at(at.unwrap_or_else(now_ms));
        if let Some(sizes) = recovered {
            plan.present = Some(present_keys(sizes)?);
        }
        let mut next = from;
        for line in &lines {
            match self.plan_line(&mut plan, owner, line) {
                LineOutcome::Planned => {
                    next = line.end;
                    plan.lines += 1;
                }
                LineOutcome::Paced { until } => {
                    let wait = Duration::from_millis(until.saturating_sub(plan.now));
                    self.paced.insert(owner.clone(), Instant::now() + wait);
                    break;
                }
            }
        }
        if next == from {
            return Ok(false);
        }
        self.commit(Some(owner), from, next, plan, recovered)?;
        Ok(next == lines.last().map_or(from, |l| l.end))
    }

    /// The file no longer matches the cursor: an incident. The source is not
    /// read again until `society fsck --repair` decides where reading
    /// resumes, and the orchestrator is told once.
    pub(super) fn incident(
        &mut self,
        key: &str,
        path: &std::path::Path,
        cursor: u64,
        check: CursorCheck,
    ) {
        let (kind, len) = match check {
            CursorCheck::Ok => return,
            CursorCheck::Shrunk { len } => ("truncated", len),
            CursorCheck::OffBoundary { len } => ("off_boundary", len),
        };
        let incident = Incident {
            file: path.to_path_buf(),
            kind: kind.into(),
            cursor,
            len,
            ts: society_core::time::now_rfc3339(),
            escalation: None,
        };
        tracing::error!(file = %path.display(), cursor, len, kind, "a file no longer matches its cursor; reading it stops");
        let reason = format!(
            "{} ({}); the supervisor stopped reading it so that nothing is skipped or read twice",
            incident.describe(),
            path.display()
        );
        // Saved with the escalation's write-ahead record, in one checkpoint:
        // a crash leaves both or neither (and then finds it again).
        self.ckpt.incidents.insert(key.to_string(), incident);
        let context = json!({"file": path, "cursor": cursor, "len": len,
            "hint": "stop the supervisor (`society down`), then `society fsck --repair` moves the cursor to what was provably routed"});
        let mut plan = Plan::at(now_ms());
        self.plan_event(
            &mut plan,
            "cursor_incident",
            key,
            format!("incident:{key}@{cursor}"),
            json!({"file": path, "kind": kind, "cursor": cursor, "len": len}),
        );
        self.plan_escalation(&mut plan, MsgId::generate(), key, None, &reason, context);
        self.commit_direct(plan);
        self.status_dirty = true;
    }

    fn plan_line(&mut self, plan: &mut Plan, owner: &AgentId, line: &Line) -> LineOutcome {
        let env = match Envelope::parse(&line.bytes) {
            Ok(env) if env.from == Party::Agent(owner.clone()) => env,
            Ok(env) => {
                let reason = format!(
                    "from {:?} does not match the outbox owner {owner}",
                    env.from.to_string()
                );
                self.plan_undeliverable(plan, owner, line, Some(&env), &reason, true);
                return LineOutcome::Planned;
            }
            Err(e) => {
                self.plan_undeliverable(plan, owner, line, None, &e.to_string(), true);
                return LineOutcome::Planned;
            }
        };
        if env.kind == "case_event" && env.case.is_none() {
            self.plan_undeliverable(
                plan,
                owner,
                line,
                Some(&env),
                "case_event without a case",
                true,
            );
            return LineOutcome::Planned;
        }
        let recipient = match &env.to {
            Party::Agent(id) if self.slots.contains_key(id) => Some(id.clone()),
            Party::Agent(id) => {
                self.plan_undeliverable(
                    plan,
                    owner,
                    line,
                    Some(&env),
                    &format!("no agent {id}"),
                    true,
                );
                return LineOutcome::Planned;
            }
            Party::Role(role) => match self.pick_role(role, &env) {
                Some(id) => Some(id),
                None => {
                    let reason = format!("no agent has role {role}");
                    self.plan_undeliverable(plan, owner, line, Some(&env), &reason, true);
                    return LineOutcome::Planned;
                }
            },
            Party::Orchestrator | Party::Supervisor => None,
        };
        let max_hops = self.slots[owner].cfg.policy.max_hops;
        if recipient.is_some() && env.hops > max_hops {
            self.plan_hop_limit(plan, owner, line, &env, max_hops);
            return LineOutcome::Planned;
        }
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
                self.plan_escalation(
                    plan,
                    env.id,
                    owner.as_str(),
                    env.case.as_ref(),
                    &reason,
                    context,
                );
                return LineOutcome::Planned;
            }
        }
        if env.to != Party::Supervisor {
            let from_role = self.slots[owner].cfg.role.clone();
            let to_role = recipient.as_ref().map(|r| self.slots[r].cfg.role.clone());
            match super::policy::decide(&self.routing, &env, Some(&from_role), to_role.as_deref()) {
                (RouteAction::Allow, _) => {}
                (RouteAction::Deny, rule) => {
                    self.plan_blocked(plan, &env, &denied_by(rule));
                    return LineOutcome::Planned;
                }
                (RouteAction::Approve, rule) => {
                    self.plan_hold(plan, &env, rule);
                    return LineOutcome::Planned;
                }
            }
        }
        if let Some(r) = &recipient {
            match self.judge(plan, owner, r, &env) {
                Verdict::Admit => {}
                Verdict::Pace { until } => return LineOutcome::Paced { until },
                Verdict::Refuse { reason, sanction } => {
                    self.plan_refused(plan, r, &env, &reason, true, sanction.as_ref());
                    return LineOutcome::Planned;
                }
                Verdict::Blocked { reason } => {
                    self.plan_refused(plan, r, &env, &reason, false, None);
                    return LineOutcome::Planned;
                }
            }
        }
        self.plan_delivery(plan, &env, recipient.as_ref());
        LineOutcome::Planned
    }

    /// The receiver's protection and the sender's sanctions. A batch being
    /// re-planned after an interruption keeps what already landed: a message
    /// in the recipient's inbox was admitted, one in its dead letters was
    /// refused; and it is never paced (its lines must all be planned again).
    fn judge(&mut self, plan: &mut Plan, owner: &AgentId, r: &AgentId, env: &Envelope) -> Verdict {
        if plan.present.is_some() {
            if plan.landed(&self.slots[r].paths.inbox(), &env.id.to_string()) {
                return Verdict::Admit;
            }
            if plan.landed(
                &self.slots[r].paths.deadletter(),
                &format!("{r}@{}", env.id),
            ) {
                // The rest of the refusal (its notice) is planned again and
                // written if it had not landed; its count was made then.
                return Verdict::Refuse {
                    reason: "refused before the supervisor restarted".into(),
                    sanction: None,
                };
            }
        }
        let role = self.slots[owner].cfg.role.clone();
        let policy = self.slots[r].cfg.policy.clone();
        let verdict = self
            .guard
            .check(&mut plan.guard, plan.now, r, &policy, env, Some(&role));
        match verdict {
            Verdict::Pace { .. } if plan.present.is_some() => Verdict::Admit,
            v => v,
        }
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
                    plan.approvals.push(env.clone());
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
        let owner = self.case_view(plan, case).and_then(|c| c.owner.clone());
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

    fn pick_role(&self, role: &str, env: &Envelope) -> Option<AgentId> {
        let candidates: Vec<&AgentId> = self
            .slots
            .iter()
            .filter(|(_, s)| s.cfg.role == role)
            .map(|(id, _)| id)
            .collect();
        crate::roles::pick(&candidates, env).cloned()
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
