//! A batch of appends decided from a range of source lines (an outbox, the
//! supervisor's inbox) or raised by the supervisor itself, and the building
//! blocks the router and the request handler plan with. Planning changes no
//! state: what a batch decides about cases, approvals and the guard is kept
//! in the [`Plan`] and applied by its commit (`commit.rs`), after it landed.
//!
//! Every record carries a key that identifies it in its destination: its
//! `src` field if it has one, else its `id`.

use super::guard::GuardTxn;
use super::Supervisor;
use crate::activity;
use serde_json::Value;
use society_core::case::CaseSummary;
use society_core::jsonl::{read_lines, read_lines_checked, CursorCheck, Line};
use society_core::{AgentId, CaseId, Envelope, FormatError, MsgId, Party};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Output indexes for messages the supervisor derives from a source message
/// (ids are `MsgId::derive(source, index)`), far from brains' output indexes.
pub(super) const BLOCKED: u32 = 0x7fff_0001;
pub(super) const HELD: u32 = 0x7fff_0002;
pub(super) const ESCALATION: u32 = 0x7fff_0003;
pub(super) const RESPONSE: u32 = 0x7fff_0004;
/// Source of the escalation of a sanction or a hop-limit cut (itself turned
/// into an escalation id by [`ESCALATION`]).
pub(super) const SANCTION: u32 = 0x7fff_0005;
pub(super) const HOP_LIMIT: u32 = 0x7fff_0006;

#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub dest: PathBuf,
    pub durable: bool,
    pub key: String,
    pub record: Vec<u8>,
}

/// Work to do once a batch is committed.
#[derive(Debug)]
pub(super) enum After {
    Start(AgentId),
    Stop(AgentId),
    Restart(AgentId),
    Archive(CaseId),
}

#[derive(Debug, Default)]
pub(super) struct Plan {
    pub deliveries: Vec<Delivery>,
    pub wake: Vec<AgentId>,
    pub after: Vec<After>,
    /// When the batch is judged (ms since the epoch).
    pub now: u64,
    /// Source lines the batch consumes (for `rotate_lines`).
    pub lines: u64,
    /// Cases as this batch leaves them (for the later lines of the batch).
    pub cases: HashMap<CaseId, CaseSummary>,
    /// Approval requests this batch delivers, and requests it answers.
    pub approvals: Vec<Envelope>,
    pub decided: Vec<MsgId>,
    /// What the guard decided.
    pub guard: GuardTxn,
    /// Re-planning a batch a crash interrupted: `(dest, key)` of the records
    /// that already landed. A message already in its recipient's inbox was
    /// admitted and is admitted again, whatever the guard says now.
    pub present: Option<HashSet<(PathBuf, String)>>,
}

impl Plan {
    pub fn at(now: u64) -> Plan {
        Plan {
            now,
            ..Plan::default()
        }
    }

    pub fn push(&mut self, dest: PathBuf, durable: bool, key: String, record: Vec<u8>) {
        self.deliveries.push(Delivery {
            dest,
            durable,
            key,
            record,
        });
    }

    pub fn landed(&self, dest: &std::path::Path, key: &str) -> bool {
        self.present
            .as_ref()
            .is_some_and(|p| p.contains(&(dest.to_path_buf(), key.to_string())))
    }
}

/// Milliseconds since the epoch, now.
pub(super) fn now_ms() -> u64 {
    society_core::time::unix_ms(std::time::SystemTime::now())
}

impl Supervisor {
    /// A case as the batch being planned sees it.
    pub(super) fn case_view<'a>(
        &'a self,
        plan: &'a Plan,
        case: &CaseId,
    ) -> Option<&'a CaseSummary> {
        plan.cases.get(case).or_else(|| self.cases.get(case))
    }

    /// Is this case closed (or archived, or unknown)? Nothing may be added to it.
    pub(super) fn case_closed(&self, plan: &Plan, case: &CaseId) -> bool {
        match self.case_view(plan, case) {
            Some(c) => c.status.is_final(),
            None => !self.layout.case_log(case).exists(),
        }
    }

    /// A message into `dest` (none: the mirror only) and the mirror,
    /// both keyed by the message id.
    pub(super) fn plan_message(&self, plan: &mut Plan, dest: Option<PathBuf>, env: &Envelope) {
        let line = env.to_line();
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
    pub(super) fn plan_to_agent(&self, plan: &mut Plan, id: &AgentId, env: &Envelope) {
        self.plan_message(plan, Some(self.slots[id].paths.inbox()), env);
        plan.wake.push(id.clone());
    }

    /// A message into the orchestrator's inbox (and the mirror).
    pub(super) fn plan_to_orchestrator(&self, plan: &mut Plan, env: &Envelope) {
        self.plan_message(plan, Some(self.layout.orchestrator_inbox()), env);
    }

    /// A case-log record written by the supervisor (keyed by `src`), folded
    /// into the batch's view of the case at once so later lines see it.
    pub(super) fn plan_case(
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

    pub(super) fn plan_event(
        &self,
        plan: &mut Plan,
        event: &str,
        agent: &str,
        src: String,
        mut fields: Value,
    ) {
        if let Some(f) = fields.as_object_mut() {
            f.insert("src".into(), Value::String(src.clone()));
        }
        plan.push(
            self.layout.system_events(),
            false,
            src,
            activity::record(event, agent, 0, fields),
        );
    }

    /// Tells an agent its message was not delivered. The notice is one hop
    /// further than the message it is about, so an agent that answers it
    /// continues the conversation's hop count rather than restarting it.
    pub(super) fn plan_blocked(&self, plan: &mut Plan, env: &Envelope, reason: &str) {
        let Party::Agent(sender) = &env.from else {
            return;
        };
        if !self.slots.contains_key(sender) {
            return;
        }
        let mut note = Envelope::new(
            Party::Supervisor,
            env.from.clone(),
            "message_blocked",
            serde_json::json!({"id": env.id, "to": env.to, "type": env.kind, "reason": reason}),
        );
        note.id = MsgId::derive(&env.id, BLOCKED);
        note.reply_to = Some(env.id);
        note.case = env.case.clone();
        note.hops = env.hops.saturating_add(1);
        let sender = sender.clone();
        self.plan_to_agent(plan, &sender, &note);
        self.plan_event(
            plan,
            "message_blocked",
            sender.as_str(),
            format!("{}/blocked", env.id),
            serde_json::json!({"id": env.id, "to": env.to, "type": env.kind, "reason": reason}),
        );
    }

    /// Agent → supervisor → orchestrator: an `escalation` message, and an
    /// `escalated` case event when there is a case (and it is still open).
    pub(super) fn plan_escalation(
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
            "escalation",
            serde_json::json!({"agent": agent, "reason": reason, "context": context, "source": source}),
        );
        esc.id = MsgId::derive(&source, ESCALATION);
        esc.case = case.cloned();
        self.plan_to_orchestrator(plan, &esc);
        if let Some(case) = case.filter(|c| !self.case_closed(plan, c)) {
            let fields = serde_json::json!({"reason": reason, "by": agent, "escalation": esc.id});
            self.plan_case(
                plan,
                case,
                "escalated",
                "supervisor",
                format!("{}/escalated", esc.id),
                fields,
            );
        }
        self.plan_event(
            plan,
            "escalated",
            agent,
            format!("{}/escalated", esc.id),
            serde_json::json!({"reason": reason, "case": case}),
        );
    }
}

/// Most source bytes planned in one batch.
const BATCH_BYTES: usize = 1 << 20;

/// The incident (and line-count) key of the supervisor's own inbox.
pub(super) const INBOX_KEY: &str = "supervisor";

/// The key of a record about a source line: `<source>@<offset>`, with the
/// segment once the source has been rotated (`<source>@<seg>:<offset>`).
pub(crate) fn position_key(source: &str, seg: u64, offset: u64) -> String {
    if seg == 0 {
        format!("{source}@{offset}")
    } else {
        format!("{source}@{seg}:{offset}")
    }
}

/// Complete lines from `from`, up to (not past) `limit` — a batch being
/// resumed, whose range is known. Otherwise the cursor must still fit the
/// file (checked in the same open): `Err(check)` when it does not.
pub(super) fn read_range(
    path: &std::path::Path,
    from: u64,
    limit: Option<u64>,
) -> Result<Result<Vec<Line>, CursorCheck>, FormatError> {
    let mut batch = match limit {
        Some(_) => read_lines(path, from, BATCH_BYTES)?,
        None => match read_lines_checked(path, from, BATCH_BYTES)? {
            (CursorCheck::Ok, batch) => batch,
            (check, _) => return Ok(Err(check)),
        },
    };
    if let Some(limit) = limit {
        batch.lines.retain(|l| l.end <= limit);
    }
    Ok(Ok(batch.lines))
}
