//! A batch of appends decided from a range of source lines, and its crash-safe
//! commit: write ahead (source range + every destination's length), append
//! (one write and one fsync per destination), advance the cursor. After a
//! crash the same range is re-planned and records already present after the
//! recorded lengths are skipped, so nothing is lost and nothing doubled.
//!
//! Every record carries a key that identifies it in its destination: its
//! `src` field if it has one, else its `id`.

use super::state::PendingBatch;
use super::{file_len, Supervisor};
use crate::activity;
use serde_json::Value;
use society_core::jsonl::{read_lines, Appender, Durability};
use society_core::{AgentId, CaseId, Envelope, FormatError, MsgId, Party};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Output indexes for messages the supervisor derives from a source message
/// (ids are `MsgId::derive(source, index)`), far from brains' output indexes.
pub(super) const BLOCKED: u32 = 0x7fff_0001;
pub(super) const HELD: u32 = 0x7fff_0002;
pub(super) const ESCALATION: u32 = 0x7fff_0003;
pub(super) const RESPONSE: u32 = 0x7fff_0004;

pub(super) struct Delivery {
    pub dest: PathBuf,
    pub durable: bool,
    pub key: String,
    pub record: Vec<u8>,
}

/// Work to do once a batch is committed.
pub(super) enum After {
    Start(AgentId),
    Stop(AgentId),
    Restart(AgentId),
    Archive(CaseId),
}

#[derive(Default)]
pub(super) struct Plan {
    pub deliveries: Vec<Delivery>,
    pub wake: Vec<AgentId>,
    pub after: Vec<After>,
}

impl Plan {
    pub fn push(&mut self, dest: PathBuf, durable: bool, key: String, record: Vec<u8>) {
        self.deliveries.push(Delivery {
            dest,
            durable,
            key,
            record,
        });
    }
}

impl Supervisor {
    /// Commits `plan` for lines `[from, next)` of a source: an agent's outbox
    /// (`Some(agent)`) or the supervisor's inbox (`None`).
    pub(super) fn commit(
        &mut self,
        agent: Option<&AgentId>,
        from: u64,
        next: u64,
        plan: Plan,
        recovered: Option<&BTreeMap<PathBuf, u64>>,
    ) -> Result<(), FormatError> {
        let mut sizes = BTreeMap::new();
        for d in &plan.deliveries {
            sizes
                .entry(d.dest.clone())
                .or_insert_with(|| file_len(&d.dest));
        }
        let skip = match recovered {
            Some(old) => present_keys(old)?,
            None => HashSet::new(),
        };
        self.ckpt.pending = Some(PendingBatch {
            agent: agent.cloned(),
            from,
            to: next,
            sizes: recovered.cloned().unwrap_or(sizes),
        });
        self.save_checkpoint();
        self.append_all(plan.deliveries, &skip)?;
        match agent {
            Some(a) => {
                self.ckpt.cursors.insert(a.clone(), next);
            }
            None => self.ckpt.inbox_offset = next,
        }
        self.ckpt.pending = None;
        self.save_checkpoint();
        for id in plan.wake {
            self.wake(&id);
        }
        for after in plan.after {
            self.run_after(after);
        }
        Ok(())
    }

    /// Appends without a source range: for one-shot events the supervisor
    /// raises itself (an agent failed, a case is overdue).
    pub(super) fn commit_direct(&mut self, plan: Plan) {
        if let Err(e) = self.append_all(plan.deliveries, &HashSet::new()) {
            tracing::error!(error = %e, "failed to append supervisor records");
        }
        for id in plan.wake {
            self.wake(&id);
        }
    }

    fn append_all(
        &mut self,
        deliveries: Vec<Delivery>,
        skip: &HashSet<(PathBuf, String)>,
    ) -> Result<(), FormatError> {
        let mut by_dest: BTreeMap<PathBuf, (bool, Vec<Vec<u8>>)> = BTreeMap::new();
        for d in deliveries {
            if skip.contains(&(d.dest.clone(), d.key.clone())) {
                continue;
            }
            by_dest
                .entry(d.dest)
                .or_insert_with(|| (d.durable, Vec::new()))
                .1
                .push(d.record);
        }
        for (dest, (durable, records)) in by_dest {
            let class = if durable {
                self.router_durability
            } else {
                Durability::Flushed
            };
            Appender::open(&dest, class, usize::MAX)?.append_batch(&records)?;
        }
        Ok(())
    }

    // --- building blocks shared by the router and the request handler ---

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
    /// into the in-memory case state at once so later lines see it.
    pub(super) fn plan_case(
        &mut self,
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
            self.cases.apply(case, &v);
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

    /// Tells an agent its message was not delivered.
    pub(super) fn plan_blocked(&mut self, plan: &mut Plan, env: &Envelope, reason: &str) {
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
    /// `escalated` case event when there is a case.
    pub(super) fn plan_escalation(
        &mut self,
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
        if let Some(case) = case {
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

/// `(dest, key)` of every record appended to each destination after the
/// recorded length: what an interrupted batch already delivered.
fn present_keys(sizes: &BTreeMap<PathBuf, u64>) -> Result<HashSet<(PathBuf, String)>, FormatError> {
    let mut present = HashSet::new();
    for (dest, &size) in sizes {
        let mut cursor = size;
        loop {
            let batch = read_lines(dest, cursor, 1 << 20)?;
            if batch.lines.is_empty() {
                break;
            }
            for line in &batch.lines {
                if let Ok(v) = serde_json::from_slice::<Value>(&line.bytes) {
                    if let Some(k) = v.get("src").or_else(|| v.get("id")).and_then(Value::as_str) {
                        present.insert((dest.clone(), k.to_string()));
                    }
                }
            }
            cursor = batch.next;
        }
    }
    Ok(present)
}
