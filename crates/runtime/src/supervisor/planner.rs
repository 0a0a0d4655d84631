//! The router's and the request handler's decisions, as a pure step: a
//! [`Planner`] borrows what planning reads — the layout (to name files), the
//! routing policy, the agents' directory, the guard, the cases and the
//! approvals — and writes what it decided into a [`Plan`]; the supervisor
//! commits the plan (`commit.rs`) and only then applies its case, approval
//! and guard changes. Nothing here changes the supervisor, so every rule can
//! be unit-tested from state built in memory (`planner/tests`).
//!
//! The building blocks every decision is made of live here: a message into
//! an inbox and the mirror, a case-log record, a system event, a notice to a
//! sender, an escalation. `route.rs` plans an outbox line, `dispose.rs` what
//! is not delivered, `requests.rs` a line of the supervisor's own inbox.

mod dispose;
mod federation;
mod org;
mod requests;
mod route;
#[cfg(test)]
mod tests;

pub(super) use route::LineOutcome;

use super::cases::Cases;
use super::debate::Debates;
use super::guard::Guard;
use super::plan::{Plan, BLOCKED, ESCALATION};
use super::{Slot, Supervisor};
use crate::activity;
use crate::config::RoutingConfig;
use serde_json::Value;
use society_core::case::CaseSummary;
use society_core::jsonl::Line;
use society_core::kinds::{case_log, event, message};
use society_core::state::AgentConfig;
use society_core::{AgentId, AgentPaths, CaseId, Envelope, Layout, MsgId, Party};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// How many times longer serde_json's serialisation of a parsed message can
/// be than the line it was parsed from (a number written `1e15`).
const GROWTH: u64 = 5;

/// The agents planning may address: their config (role, policy) and files.
pub(super) trait Directory {
    fn get(&self, id: &AgentId) -> Option<(&AgentConfig, &AgentPaths)>;
    /// The agents of `role`, in id order (the order `roles::pick` hashes into).
    fn with_role(&self, role: &str) -> Vec<&AgentId>;
    /// The generation of the agent's current (or last) process, for the
    /// `gen` of records about it; 0 if unknown.
    fn gen(&self, _id: &AgentId) -> u64 {
        0
    }
    /// Will the agent take its mail (it is not `failed` or `broken`)?
    fn alive(&self, _id: &AgentId) -> bool {
        true
    }
    /// Inbox bytes the agent has not consumed yet (its load).
    fn depth(&self, id: &AgentId) -> u64 {
        self.get(id)
            .map_or(0, |(_, paths)| crate::roles::inbox_depth(paths))
    }
}

impl Directory for BTreeMap<AgentId, Slot> {
    fn get(&self, id: &AgentId) -> Option<(&AgentConfig, &AgentPaths)> {
        BTreeMap::get(self, id).map(|s| (&s.cfg, &s.paths))
    }

    fn with_role(&self, role: &str) -> Vec<&AgentId> {
        self.iter()
            .filter(|(_, s)| s.cfg.role == role)
            .map(|(id, _)| id)
            .collect()
    }

    fn gen(&self, id: &AgentId) -> u64 {
        BTreeMap::get(self, id).map_or(0, |s| s.gen)
    }

    fn alive(&self, id: &AgentId) -> bool {
        BTreeMap::get(self, id)
            .is_some_and(|s| !matches!(s.phase, super::Phase::Failed | super::Phase::Broken { .. }))
    }
}

/// Everything planning reads, borrowed; see the module docs.
pub(super) struct Planner<'a> {
    pub layout: &'a Layout,
    pub routing: &'a RoutingConfig,
    pub agents: &'a dyn Directory,
    pub guard: &'a Guard,
    pub cases: &'a Cases,
    /// Open debates (see `debate.rs`).
    pub debates: &'a Debates,
    /// Which segment of each outbox its cursor is in (dead-letter keys).
    pub segs: &'a BTreeMap<AgentId, u64>,
    /// The same for the supervisor's inbox.
    pub inbox_seg: u64,
    /// Approval requests delivered to the orchestrator, and those answered.
    pub approvals: &'a HashMap<MsgId, Envelope>,
    pub decided: &'a HashSet<MsgId>,
    /// Escalations and approvals waiting in the organisation.
    pub items: &'a crate::org::Items,
    /// This society's name (`[society] name`), if it has one.
    pub society: Option<&'a society_core::SocietyName>,
    /// Whether the federation bridge runs (`[federation]`): messages to
    /// other societies leave through `outbound.jsonl`.
    pub federated: bool,
}

impl Supervisor {
    /// A planner over the supervisor's current state.
    pub(super) fn planner(&self) -> Planner<'_> {
        Planner {
            layout: &self.layout,
            routing: &self.routing,
            agents: &self.slots,
            guard: &self.guard,
            cases: &self.cases,
            debates: &self.debates,
            segs: &self.ckpt.segs,
            inbox_seg: self.ckpt.inbox_seg,
            approvals: &self.approvals,
            decided: &self.decided,
            items: &self.items,
            society: self.society.as_ref(),
            federated: self.federation.is_some(),
        }
    }
}

impl Planner<'_> {
    pub(super) fn known(&self, id: &AgentId) -> bool {
        self.agents.get(id).is_some()
    }

    fn paths(&self, id: &AgentId) -> &AgentPaths {
        self.agents
            .get(id)
            .map(|(_, p)| p)
            .expect("planning addresses only agents it found in the directory")
    }

    fn config(&self, id: &AgentId) -> &AgentConfig {
        self.agents
            .get(id)
            .map(|(c, _)| c)
            .expect("planning addresses only agents it found in the directory")
    }

    /// The agent a message to `to` goes to: a known agent, or the one of a
    /// role `roles::pick` chooses; `None` for anyone else.
    fn recipient(&self, plan: &mut Plan, to: &Party, env: &Envelope) -> Option<AgentId> {
        match to {
            Party::Agent(a) if self.known(a) => Some(a.clone()),
            Party::Role(r) => self.pick_role(plan, r, env).ok(),
            _ => None,
        }
    }

    /// The agent of `role` that takes `env` (see `roles.rs`). A pick made
    /// before — by this batch, or by the interrupted commit of the same batch
    /// (its write-ahead record keeps the picks) — stands; a new one is kept in
    /// the plan, and the bytes it adds to that inbox count as load for the
    /// rest of the batch.
    fn pick_role(
        &self,
        plan: &mut Plan,
        role: &str,
        env: &Envelope,
    ) -> Result<AgentId, crate::roles::NoPick> {
        let key = env.id.to_string();
        if let Some(id) = plan.picks.get(&key).filter(|id| self.known(id)) {
            return Ok(id.clone());
        }
        let ids = self.agents.with_role(role);
        let candidates: Vec<crate::roles::Candidate<'_>> = ids
            .iter()
            .filter_map(|id| {
                self.agents.get(id).map(|(cfg, _)| crate::roles::Candidate {
                    id,
                    capabilities: &cfg.capabilities,
                    alive: self.agents.alive(id),
                })
            })
            .collect();
        let case_agents: Vec<String> = env
            .case
            .as_ref()
            .and_then(|c| self.case_view(plan, c))
            .map(crate::roles::on_case)
            .unwrap_or_default();
        let case_agents: Vec<&str> = case_agents.iter().map(String::as_str).collect();
        // Each inbox's depth is read once per batch; what the batch places
        // is added to it as it goes.
        let (depths, added) = (&mut plan.depths, &plan.load);
        let picked = crate::roles::pick(&candidates, env, &case_agents, |id| {
            let base = *depths
                .entry(id.clone())
                .or_insert_with(|| self.agents.depth(id));
            base + added.get(id).copied().unwrap_or(0)
        })?;
        *plan.load.entry(picked.clone()).or_default() += env.to_line().len() as u64 + 1;
        plan.picks.insert(key, picked.clone());
        Ok(picked)
    }

    /// A case as the batch being planned sees it.
    pub fn case_view<'p>(&'p self, plan: &'p Plan, case: &CaseId) -> Option<&'p CaseSummary> {
        plan.cases.get(case).or_else(|| self.cases.get(case))
    }

    /// Is this case closed (or archived, or unknown)? Nothing may be added to it.
    pub fn case_closed(&self, plan: &Plan, case: &CaseId) -> bool {
        match self.case_view(plan, case) {
            Some(c) => c.status.is_final(),
            None => !self.layout.case_log(case).exists(),
        }
    }

    /// A message into `dest` (none: the mirror only) and the mirror,
    /// both keyed by the message id.
    pub fn message(&self, plan: &mut Plan, dest: Option<PathBuf>, env: &Envelope) {
        self.message_line(plan, dest, env, env.to_line());
    }

    /// [`Planner::message`] with the message's line already serialised.
    fn message_line(&self, plan: &mut Plan, dest: Option<PathBuf>, env: &Envelope, line: Vec<u8>) {
        if let Some(dest) = dest {
            plan.push(dest, true, env.id.to_string(), line.clone());
        }
        plan.push(
            self.layout.agent_to_agent(),
            false,
            env.id.to_string(),
            line,
        );
    }

    /// A message into an agent's inbox (and the mirror); wakes the agent.
    ///
    /// One over the agent's `max_record` — a message the supervisor wrapped
    /// around a big one (an approval's answer carrying its parked message),
    /// or a routed one `route.rs` did not stop — is refused into the agent's
    /// dead letters instead: the inbox's appender would refuse it, and the
    /// batch would never land.
    pub fn to_agent(&self, plan: &mut Plan, id: &AgentId, env: &Envelope) {
        let line = env.to_line();
        let max = self.config(id).policy.max_record;
        if line.len() + 1 > max {
            let reason = format!(
                "message of {} bytes exceeds agent {id}'s max_record ({max} bytes)",
                line.len() + 1
            );
            self.refused(plan, id, env, &reason, false, None);
            return;
        }
        self.message_line(plan, Some(self.paths(id).inbox()), env, line);
        plan.wake.push(id.clone());
    }

    /// Why `env`, read from `line`, cannot be written where it goes: over
    /// its recipient's `max_record`, or — to the orchestrator or the
    /// supervisor — over [`MAX_RECORD_LIMIT`](society_core::MAX_RECORD_LIMIT).
    /// The router writes its own serialisation of a message, which can be
    /// longer than the sender's (`1e15` becomes `1000000000000000.0`): at most
    /// [`GROWTH`] times plus the fields a sender may omit, so only a line
    /// that close to the limit is serialised to be measured.
    pub fn too_big(&self, line: &Line, env: &Envelope, to: Option<&AgentId>) -> Option<String> {
        let max = to.map_or(society_core::MAX_RECORD_LIMIT, |r| {
            self.config(r).policy.max_record
        });
        if line.size().saturating_mul(GROWTH).saturating_add(1024) <= max as u64 {
            return None;
        }
        let size = env.to_line().len() + 1;
        (size > max).then(|| match to {
            Some(r) => {
                format!("message of {size} bytes exceeds agent {r}'s max_record ({max} bytes)")
            }
            None => format!("message of {size} bytes exceeds the largest record ({max} bytes)"),
        })
    }

    /// A message into the orchestrator's inbox (and the mirror).
    pub fn to_orchestrator(&self, plan: &mut Plan, env: &Envelope) {
        self.message(plan, Some(self.layout.orchestrator_inbox()), env);
    }

    /// A case-log record written by the supervisor (keyed by `src`), folded
    /// into the batch's view of the case at once so later lines see it.
    pub fn case(
        &self,
        plan: &mut Plan,
        case: &CaseId,
        event: &str,
        agent: &str,
        src: String,
        mut fields: Value,
    ) {
        if let Some(f) = fields.as_object_mut() {
            f.insert("case".into(), Value::String(case.to_string()));
            f.insert("src".into(), Value::String(src.clone()));
        }
        let record = activity::record(event, agent, 0, fields);
        if let Ok(v) = serde_json::from_slice::<Value>(&record) {
            let summary = plan.cases.entry(case.clone()).or_insert_with(|| {
                self.cases
                    .get(case)
                    .cloned()
                    .unwrap_or_else(|| CaseSummary::new(case.as_str()))
            });
            summary.apply(&v);
        }
        plan.push(self.layout.case_log(case), true, src, record);
    }

    /// A record in the system events, keyed by `src`, about `agent` (an
    /// agent id, or `supervisor`) and carrying its generation.
    pub fn event(&self, plan: &mut Plan, event: &str, agent: &str, src: String, mut fields: Value) {
        if let Some(f) = fields.as_object_mut() {
            f.insert("src".into(), Value::String(src.clone()));
        }
        let gen = AgentId::new(agent).map_or(0, |id| self.agents.gen(&id));
        plan.push(
            self.layout.system_events(),
            false,
            src,
            activity::record(event, agent, gen, fields),
        );
    }

    /// Tells an agent its message was not delivered. The notice is one hop
    /// further than the message it is about, so an agent that answers it
    /// continues the conversation's hop count rather than restarting it.
    pub fn blocked(&self, plan: &mut Plan, env: &Envelope, reason: &str) {
        if env.from.society().is_some() {
            return self.blocked_remote(plan, env, reason);
        }
        let Party::Agent(sender) = &env.from else {
            return;
        };
        if !self.known(sender) {
            return;
        }
        let mut note = Envelope::new(
            Party::Supervisor,
            env.from.clone(),
            message::MESSAGE_BLOCKED,
            serde_json::json!({"id": env.id, "to": env.to, "type": env.kind, "reason": reason}),
        );
        note.id = MsgId::derive(&env.id, BLOCKED);
        note.reply_to = Some(env.id);
        note.case = env.case.clone();
        note.hops = env.hops.saturating_add(1);
        self.to_agent(plan, sender, &note);
        self.event(
            plan,
            event::MESSAGE_BLOCKED,
            sender.as_str(),
            format!("{}/blocked", env.id),
            serde_json::json!({"id": env.id, "to": env.to, "type": env.kind, "reason": reason}),
        );
    }

    /// Agent → supervisor → orchestrator: an `escalation` message, and an
    /// `escalated` case event when there is a case (and it is still open).
    pub fn escalation(
        &self,
        plan: &mut Plan,
        source: MsgId,
        agent: &str,
        case: Option<&CaseId>,
        reason: &str,
        context: Value,
    ) {
        let mut esc = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            message::ESCALATION,
            serde_json::json!({"agent": agent, "reason": reason, "context": context, "source": source}),
        );
        esc.id = MsgId::derive(&source, ESCALATION);
        esc.case = case.cloned();
        self.to_orchestrator(plan, &esc);
        if let Some(case) = case.filter(|c| !self.case_closed(plan, c)) {
            let fields = serde_json::json!({"reason": reason, "by": agent, "escalation": esc.id});
            self.case(
                plan,
                case,
                case_log::ESCALATED,
                "supervisor",
                format!("{}/escalated", esc.id),
                fields,
            );
        }
        self.event(
            plan,
            event::ESCALATED,
            agent,
            format!("{}/escalated", esc.id),
            serde_json::json!({"reason": reason, "case": case}),
        );
    }
}
