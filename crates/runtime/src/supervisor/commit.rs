//! Landing a batch, crash-safe and failure-safe.
//!
//! 1. **Write ahead**: the batch's source range and every destination's
//!    length go into `checkpoint.json` (fsync). If that fails, nothing is
//!    appended and the batch waits.
//! 2. **Append**: one write and one fsync per destination.
//! 3. **Advance**: the cursor moves past the range, the batch's decisions
//!    (cases, approvals, the guard's counts) are applied, the write-ahead
//!    record is cleared.
//!
//! A batch whose append fails part-way — a full disk, a file replaced by a
//! directory for a moment — is **resumed, never repeated**: it stays in
//! memory as it was planned (and in `checkpoint.json` as `stalled`), its
//! source is not read further, and every retry first reads what already
//! landed after the recorded lengths and appends only the rest. After a
//! crash the same holds for the batch on disk: it is re-planned from its
//! source range, and the records already present are skipped.

use super::plan::{now_ms, Delivery, Plan, INBOX_KEY};
use super::state::{PendingBatch, Redo, Trouble};
use super::{file_len, Supervisor};
use serde_json::{json, Value};
use society_core::jsonl::{read_lines, Appender, Durability};
use society_core::{atomic, AgentId, FormatError, IoError, MsgId};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Where a batch's lines came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    Outbox(AgentId),
    /// The supervisor's own inbox.
    Inbox,
    /// No source lines: records the supervisor raised itself.
    Direct,
}

impl Source {
    pub fn of(p: &PendingBatch) -> Source {
        match (&p.agent, p.records.is_empty()) {
            (Some(a), _) => Source::Outbox(a.clone()),
            (None, true) => Source::Inbox,
            (None, false) => Source::Direct,
        }
    }
}

/// A batch that has not landed yet. It stays listed — and so in every
/// checkpoint saved meanwhile — until it has landed or been replaced by its
/// re-plan.
pub(super) struct Stalled {
    /// Names it while it is retried (indexes move).
    id: u64,
    pending: PendingBatch,
    /// Planned by this process: its records are resumed as they are. `None`:
    /// found on disk at startup, re-planned from its source (or, without
    /// one, from its records) against the recorded lengths.
    plan: Option<Box<Plan>>,
}

impl Stalled {
    fn pending(&self) -> &PendingBatch {
        &self.pending
    }
}

/// What is going wrong with writes, for `status` and one escalation.
pub(super) struct WriteTrouble {
    pub since: String,
    pub error: String,
    pub escalated: bool,
}

impl Supervisor {
    /// Commits `plan` for lines `[from, next)` of a source: an agent's outbox
    /// (`Some(agent)`) or the supervisor's inbox (`None`). `recovered`: the
    /// destination lengths recorded by an interrupted commit of this range.
    pub(super) fn commit(
        &mut self,
        agent: Option<&AgentId>,
        from: u64,
        next: u64,
        plan: Plan,
        recovered: Option<&BTreeMap<PathBuf, u64>>,
    ) -> Result<(), FormatError> {
        let pending = PendingBatch {
            agent: agent.cloned(),
            from,
            to: next,
            sizes: recovered
                .cloned()
                .unwrap_or_else(|| destination_sizes(&plan.deliveries)),
            at: Some(plan.now),
            records: Vec::new(),
            picks: plan.picks.clone(),
        };
        self.land(pending, plan, recovered.is_some())
    }

    /// Commits records without a source range — an escalation the supervisor
    /// raises itself, an overdue case. The write-ahead record carries the
    /// records, so a crash part-way writes the rest and repeats none.
    pub(super) fn commit_direct(&mut self, plan: Plan) {
        if plan.deliveries.is_empty() {
            return;
        }
        let pending = PendingBatch {
            agent: None,
            from: 0,
            to: 0,
            sizes: destination_sizes(&plan.deliveries),
            at: Some(plan.now),
            records: plan
                .deliveries
                .iter()
                .map(|d| Redo {
                    dest: d.dest.clone(),
                    key: d.key.clone(),
                    durable: d.durable,
                    record: String::from_utf8_lossy(&d.record).into_owned(),
                })
                .collect(),
            picks: plan.picks.clone(),
        };
        if let Err(e) = self.land(pending, plan, false) {
            tracing::error!(error = %e, "supervisor records wait for a retry");
        }
    }

    fn land(
        &mut self,
        pending: PendingBatch,
        plan: Plan,
        resumed: bool,
    ) -> Result<(), FormatError> {
        if !resumed && self.covered_ahead(&pending, &plan) {
            return match self.append_all(&plan.deliveries, &self.plan_present(&plan)) {
                Ok(()) => {
                    // Landed; the saved checkpoint still has the cursor before
                    // it, and no record of the batch.
                    society_core::fault::point("supervisor.batch.landed_ahead");
                    self.finish(pending, plan);
                    Ok(())
                }
                Err(e) => Err(self.stall(pending, Some(plan), e)),
            };
        }
        self.ckpt.pending = Some(pending.clone());
        if let Err(e) = self.save_checkpoint() {
            // Nothing was appended: the batch waits, and writes its
            // write-ahead record before it is tried again.
            self.ckpt.pending = None;
            return Err(self.stall(pending, Some(plan), e.into()));
        }
        if !pending.records.is_empty() {
            // A direct batch's write-ahead record is saved, nothing appended.
            society_core::fault::point("supervisor.direct.ahead");
        }
        if !pending.picks.is_empty() {
            // A batch that placed role messages by load, saved but not written.
            society_core::fault::point("supervisor.role_batch.saved");
        }
        match self.deliver(&pending, &plan, resumed) {
            Ok(()) => {
                if !resumed {
                    self.escalations_fault(&plan);
                }
                self.finish(pending, plan);
                Ok(())
            }
            Err(e) => {
                self.ckpt.pending = None;
                Err(self.stall(pending, Some(plan), e))
            }
        }
    }

    /// Can the batch land without a write-ahead record of its own? Yes if
    /// it comes from an agent's outbox, every record goes to a destination
    /// whose length the saved checkpoint records (`ahead`), it placed no
    /// role message by load (a re-plan could place it elsewhere) and asks
    /// for nothing afterwards. A crash then finds its records after those
    /// lengths and routes the lines again from the saved cursor, skipping
    /// them (`recover_ahead`).
    fn covered_ahead(&self, pending: &PendingBatch, plan: &Plan) -> bool {
        pending.agent.is_some()
            && pending.records.is_empty()
            && plan.picks.is_empty()
            && plan.after.is_empty()
            && !plan.deliveries.is_empty()
            && plan
                .deliveries
                .iter()
                .all(|d| self.ckpt.ahead.contains_key(&d.dest))
    }

    /// Keys a plan says already landed (a re-plan after a crash).
    fn plan_present(&self, plan: &Plan) -> HashSet<(PathBuf, String)> {
        plan.present.clone().unwrap_or_default()
    }

    /// Appends the batch's records, skipping those already present after the
    /// recorded lengths when the batch is resumed.
    fn deliver(
        &self,
        pending: &PendingBatch,
        plan: &Plan,
        resumed: bool,
    ) -> Result<(), FormatError> {
        // A resumed batch reads what landed now: a re-plan's own first
        // attempt may have landed more than it found at the re-plan.
        let mut skip = if resumed {
            present_keys(&pending.sizes)?
        } else {
            HashSet::new()
        };
        if let Some(present) = &plan.present {
            skip.extend(present.iter().cloned());
        }
        self.append_all(&plan.deliveries, &skip)
    }

    /// The batch landed: advance its cursor, apply its decisions, clear the
    /// write-ahead record, then wake and run what it asked for.
    fn finish(&mut self, pending: PendingBatch, plan: Plan) {
        tracing::debug!(
            source = ?Source::of(&pending),
            lines = plan.lines,
            records = plan.deliveries.len(),
            "batch landed"
        );
        match Source::of(&pending) {
            Source::Outbox(a) => {
                *self.ckpt.lines.entry(a.to_string()).or_default() += plan.lines;
                self.ckpt.cursors.insert(a, pending.to);
            }
            Source::Inbox => {
                *self.ckpt.lines.entry(INBOX_KEY.to_string()).or_default() += plan.lines;
                self.ckpt.inbox_offset = pending.to;
            }
            Source::Direct => {}
        }
        let Plan {
            deliveries,
            wake,
            after,
            approvals,
            decided,
            guard,
            ..
        } = plan;
        let events = self.layout.system_events();
        let escalations = self.layout.supervisor_escalations();
        if self.recent_dests.len() > MAX_AHEAD {
            // A wide fan-out: batches write ahead again until the next saves.
            self.recent_dests.clear();
        }
        self.recent_dests
            .extend(deliveries.iter().map(|d| d.dest.clone()));
        let outbound = self.layout.federation_outbound();
        if let Some(bridge) = &self.bridge {
            if deliveries.iter().any(|d| d.dest == outbound) {
                bridge.poke();
            }
        }
        for d in &deliveries {
            if d.dest == events {
                super::journal::system_event(&d.record);
            }
            if d.dest == escalations {
                if let Ok(v) = serde_json::from_slice::<Value>(&d.record) {
                    self.items.apply(&v);
                }
            }
            if let Some(case) = self.case_of_log(&d.dest) {
                if let Ok(v) = serde_json::from_slice::<Value>(&d.record) {
                    self.cases.apply(&case, &v);
                    self.debates.apply(&case, &v);
                }
            }
        }
        for env in approvals {
            self.approvals.insert(env.id, env);
        }
        self.decided.extend(decided);
        if !guard.is_empty() {
            let urgent = guard.sanctions_changed();
            self.guard.apply(guard);
            self.guard_dirty = true;
            if urgent {
                self.save_guard(true);
            }
        }
        self.ckpt.pending = None;
        // The records landed; the cursor is saved with the next batch's
        // write-ahead record, or within SAVE_EVERY — after the receiver can
        // already read them. A crash before that resumes this
        // batch from its write-ahead record, which skips everything present.
        // A batch that asks for more afterwards saves it first.
        if after.is_empty() {
            self.ckpt_dirty = true;
        } else if let Err(e) = self.save_checkpoint() {
            tracing::error!(error = %e, "failed to save the supervisor checkpoint after a batch");
            self.ckpt_dirty = true;
        }
        for id in wake {
            self.wake(&id);
        }
        for a in after {
            self.run_after(a);
        }
    }

    /// Crash points between a batch's appends and its checkpoint, named by
    /// the organisation record it wrote (`supervisor.escalations.opened`,
    /// `.moved`, `.answered`), for the crash tests.
    fn escalations_fault(&self, plan: &Plan) {
        let log = self.layout.supervisor_escalations();
        for d in plan.deliveries.iter().filter(|d| d.dest == log) {
            if let Ok(v) = serde_json::from_slice::<Value>(&d.record) {
                let event = v.get("event").and_then(Value::as_str).unwrap_or("");
                society_core::fault::point(&format!("supervisor.escalations.{event}"));
            }
        }
    }

    fn stall(
        &mut self,
        pending: PendingBatch,
        plan: Option<Plan>,
        err: FormatError,
    ) -> FormatError {
        let error = err.to_string();
        tracing::error!(error = %error, source = ?Source::of(&pending), "a batch could not be written; it waits and is resumed");
        self.troubled(error);
        self.next_stall_id += 1;
        self.stalled.push(Stalled {
            id: self.next_stall_id,
            pending,
            plan: plan.map(Box::new),
        });
        self.status_dirty = true;
        err
    }

    /// Does a waiting batch write to `dest`? (A case whose overdue record
    /// waits must not be judged overdue again.)
    pub(super) fn stalled_touches(&self, dest: &std::path::Path) -> bool {
        self.stalled.iter().any(|s| match &s.plan {
            Some(plan) => plan.deliveries.iter().any(|d| d.dest == dest),
            None => {
                s.pending.records.iter().any(|r| r.dest == dest)
                    || s.pending.sizes.contains_key(dest)
            }
        })
    }

    /// Does a waiting batch read from this agent's outbox or write into its
    /// folder? (It resumes against those files where it recorded them.)
    pub(super) fn stalls_on(&self, id: &AgentId, dir: &std::path::Path) -> bool {
        self.stalled.iter().any(|s| {
            s.pending.agent.as_ref() == Some(id)
                || s.pending.sizes.keys().any(|p| p.starts_with(dir))
        })
    }

    /// Is a batch of this source waiting? Then the source is not read further.
    pub(super) fn is_stalled(&self, source: &Source) -> bool {
        self.stalled
            .iter()
            .any(|s| Source::of(s.pending()) == *source)
    }

    /// Tries every waiting batch (of `only` this source, if given) again.
    pub(super) fn retry_stalled(&mut self, only: Option<&Source>) {
        if self.stalled.is_empty() {
            return;
        }
        // A retry reads every destination from its recorded length: at most
        // one a second when it is a source's own traffic that asks.
        if only.is_some() && self.last_retry.elapsed() < std::time::Duration::from_secs(1) {
            return;
        }
        self.last_retry = std::time::Instant::now();
        // Every waiting batch's write-ahead record must be on disk before
        // any of its records are.
        if let Err(e) = self.save_checkpoint() {
            tracing::debug!(error = %e, "still cannot save the supervisor checkpoint");
            return;
        }
        let ids: Vec<u64> = self
            .stalled
            .iter()
            .filter(|b| only.is_none_or(|o| *o == Source::of(&b.pending)))
            .map(|b| b.id)
            .collect();
        for id in ids {
            let Some(i) = self.stalled.iter().position(|b| b.id == id) else {
                continue;
            };
            let b = &self.stalled[i];
            if let Some(plan) = &b.plan {
                if self.deliver(&b.pending, plan, true).is_ok() {
                    let b = self.stalled.remove(i);
                    let plan = b.plan.expect("a planned batch: matched above");
                    self.finish(b.pending, *plan);
                }
                continue;
            }
            // Found on disk: re-planned while it stays listed, so that every
            // checkpoint saved meanwhile still holds it.
            let pending = b.pending.clone();
            let source = Source::of(&pending);
            let outcome = self.recover(pending);
            let replanned = self
                .stalled
                .iter()
                .any(|b| b.id != id && b.plan.is_some() && Source::of(&b.pending) == source);
            if outcome.is_ok() || source == Source::Direct || replanned {
                // Landed, or waiting again as its re-plan (which a batch
                // without source lines always becomes).
                self.stalled.retain(|b| b.id != id);
            } else if let Err(e) = outcome {
                tracing::error!(error = %e, "cannot resume a batch yet");
            }
        }
        self.trouble_over();
        self.status_dirty = true;
    }

    /// Writes fail: `status` says so (`trouble`), and the orchestrator is
    /// told once (`escalate_trouble`).
    fn troubled(&mut self, error: String) {
        match &mut self.trouble {
            Some(t) => t.error = error,
            None => {
                self.trouble = Some(WriteTrouble {
                    since: society_core::time::now_rfc3339(),
                    error,
                    escalated: false,
                })
            }
        }
        self.status_dirty = true;
    }

    /// Writes work again, if no batch still waits: `writes_resumed`.
    fn trouble_over(&mut self) {
        if !self.stalled.is_empty() {
            return;
        }
        if let Some(t) = self.trouble.take() {
            self.system_event(
                "writes_resumed",
                "supervisor",
                json!({"since": t.since, "error": t.error}),
            );
            self.status_dirty = true;
        }
    }

    /// Resumes a batch found on disk: re-planned from its source range
    /// against the recorded lengths, or replayed from its records.
    fn recover(&mut self, pending: PendingBatch) -> Result<(), FormatError> {
        self.activity.event(
            "batch_recovery",
            json!({"agent": pending.agent, "from": pending.from, "to": pending.to, "records": pending.records.len()}),
        );
        match Source::of(&pending) {
            Source::Outbox(agent) if self.slots.contains_key(&agent) => {
                self.ckpt.cursors.insert(agent.clone(), pending.from);
                self.route_batch(&agent, Some(&pending)).map(drop)
            }
            // Its folder is gone: nothing left to deliver it from.
            Source::Outbox(_) => Ok(()),
            Source::Inbox => {
                self.ckpt.inbox_offset = pending.from;
                self.request_batch(Some(&pending)).map(drop)
            }
            Source::Direct => {
                let mut plan = Plan::at(pending.at.unwrap_or_else(now_ms));
                for r in &pending.records {
                    plan.push(
                        r.dest.clone(),
                        r.durable,
                        r.key.clone(),
                        r.record.clone().into_bytes(),
                    );
                }
                self.land(pending, plan, true)
            }
        }
    }

    /// At startup: every batch the last process left behind, pending or
    /// stalled, is resumed before anything new is read.
    pub(super) fn recover_pending(&mut self) {
        self.recover_ahead();
        let mut on_disk: Vec<PendingBatch> = std::mem::take(&mut self.ckpt.stalled);
        on_disk.extend(self.ckpt.pending.take());
        for pending in on_disk {
            self.next_stall_id += 1;
            self.stalled.push(Stalled {
                id: self.next_stall_id,
                pending,
                plan: None,
            });
        }
        self.retry_stalled(None);
    }

    /// At startup: batches that landed without a write-ahead record of
    /// their own since the checkpoint was saved are found after its `ahead`
    /// lengths. Every outbox's lines past its cursor, as far as the outbox
    /// goes now, are routed against those records (`recovery`), once.
    fn recover_ahead(&mut self) {
        if self.ckpt.ahead.is_empty() {
            return;
        }
        // A destination shorter than its recorded length was rotated since:
        // its new live file is read whole.
        let from: BTreeMap<PathBuf, u64> = self
            .ckpt
            .ahead
            .iter()
            .map(|(d, len)| (d.clone(), if file_len(d) < *len { 0 } else { *len }))
            .collect();
        // Written ahead from the start, to the same destinations.
        self.recent_dests.extend(from.keys().cloned());
        self.recovery_ahead = from.clone();
        match present_keys(&from) {
            Ok(present) => self.recovered_present = present,
            Err(e) => {
                // Unreadable now: nothing counts as present, so nothing is
                // skipped — a record may be delivered twice, never lost.
                tracing::error!(error = %e, "cannot read what landed after the checkpoint");
            }
        }
        for (id, slot) in &self.slots {
            let cursor = self.ckpt.cursors.get(id).copied().unwrap_or(0);
            let len = file_len(&slot.paths.outbox());
            if len > cursor {
                self.recovery.insert(id.clone(), len);
            }
        }
        if !self.recovery.is_empty() {
            self.activity.event(
                "batch_recovery",
                json!({"ahead": self.ckpt.ahead.len(), "present": self.recovered_present.len(), "sources": self.recovery.len()}),
            );
        }
    }

    /// Raises one escalation per episode of failing writes, delivered when
    /// writes work again if they do not now.
    pub(super) fn escalate_trouble(&mut self) {
        let Some(t) = self.trouble.as_mut().filter(|t| !t.escalated) else {
            return;
        };
        t.escalated = true;
        let reason = format!(
            "the supervisor cannot write ({}); {} batch(es) wait and are retried every second; nothing is lost",
            t.error,
            self.stalled.len()
        );
        let context = json!({"since": t.since, "hint": "free space on the society's disk, or fix the file named above"});
        let mut plan = Plan::at(now_ms());
        self.planner().escalation(
            &mut plan,
            MsgId::generate(),
            "supervisor",
            None,
            &reason,
            context,
        );
        self.commit_direct(plan);
    }

    pub(super) fn trouble_status(&self) -> Option<Trouble> {
        self.trouble.as_ref().map(|t| Trouble {
            since: t.since.clone(),
            error: t.error.clone(),
            stalled: self.stalled.len(),
        })
    }

    pub(super) fn append_all(
        &self,
        deliveries: &[Delivery],
        skip: &HashSet<(PathBuf, String)>,
    ) -> Result<(), FormatError> {
        let mut by_dest: BTreeMap<&PathBuf, (bool, Vec<&[u8]>)> = BTreeMap::new();
        for d in deliveries {
            if skip.contains(&(d.dest.clone(), d.key.clone())) {
                continue;
            }
            by_dest
                .entry(&d.dest)
                .or_insert_with(|| (d.durable, Vec::new()))
                .1
                .push(&d.record);
        }
        for (dest, (durable, records)) in by_dest {
            let class = if durable {
                self.router_durability
            } else {
                Durability::Flushed
            };
            Appender::open(dest, class, self.record_limit(dest))?.append_batch(&records)?;
        }
        Ok(())
    }

    /// The longest record the router may append to `dest`: an agent's
    /// inbox takes what that agent's `max_record` allows (what its reader
    /// holds); every other file what any reader holds. Planning keeps to
    /// both (`Planner::too_big`, `Planner::to_agent`), so a refusal here
    /// means a planning bug, and the batch waits with the error said.
    fn record_limit(&self, dest: &std::path::Path) -> usize {
        super::agent_of(dest)
            .and_then(|id| self.slots.get(&id))
            .filter(|slot| slot.paths.inbox() == dest)
            .map_or(society_core::MAX_RECORD_LIMIT, |slot| {
                slot.cfg.policy.max_record
            })
    }

    /// Saves `checkpoint.json` with every waiting batch listed in it.
    pub(super) fn save_checkpoint(&mut self) -> Result<(), IoError> {
        self.ckpt.stalled = self.stalled.iter().map(|s| s.pending().clone()).collect();
        // Every batch landed so far is behind the cursors saved here: what
        // lands without a write-ahead record from now on is after these.
        // Batches rely on the saved lengths only: an unsaved set is undone.
        let mut ahead: BTreeMap<PathBuf, u64> = self
            .recent_dests
            .iter()
            .map(|d| (d.clone(), file_len(d)))
            .collect();
        // While lines the last process may have delivered are routed again,
        // the lengths they are found after stay as they were — for sources
        // still read (not removed, not stopped by an incident).
        let gone: Vec<AgentId> = self
            .recovery
            .keys()
            .filter(|id| {
                !self.slots.contains_key(*id) || self.ckpt.incidents.contains_key(id.as_str())
            })
            .cloned()
            .collect();
        for id in gone {
            self.recovered(&id);
        }
        if !self.recovery.is_empty() {
            ahead.extend(self.recovery_ahead.iter().map(|(d, n)| (d.clone(), *n)));
        }
        let saved = std::mem::replace(&mut self.ckpt.ahead, ahead);
        let durable = self.router_durability == Durability::Durable;
        if let Err(e) =
            atomic::write_json(&self.layout.supervisor_checkpoint(), &self.ckpt, durable)
        {
            self.ckpt.ahead = saved;
            return Err(e);
        }
        self.last_save = std::time::Instant::now();
        self.ckpt_dirty = false;
        Ok(())
    }

    /// Saves `checkpoint.json` outside a batch (a hold, a failure, a restart
    /// count); a failure is retried at the next scan.
    pub(super) fn save_state(&mut self) {
        match self.save_checkpoint() {
            // A failing checkpoint alone was the trouble: it is over.
            Ok(()) => self.trouble_over(),
            Err(e) => {
                tracing::error!(error = %e, "failed to save the supervisor checkpoint; retrying at the next scan");
                self.ckpt_dirty = true;
                // Batches covered by `ahead` keep landing meanwhile.
                self.troubled(e.to_string());
            }
        }
    }

    fn case_of_log(&self, path: &std::path::Path) -> Option<society_core::CaseId> {
        if path.parent() != Some(self.layout.cases_dir().as_path()) {
            return None;
        }
        society_core::layout::case_of_log_name(path.file_name()?.to_str()?)
    }
}

/// Most destinations `ahead` records; past it, batches write ahead again.
const MAX_AHEAD: usize = 256;

fn destination_sizes(deliveries: &[Delivery]) -> BTreeMap<PathBuf, u64> {
    let mut sizes = BTreeMap::new();
    for d in deliveries {
        sizes
            .entry(d.dest.clone())
            .or_insert_with(|| file_len(&d.dest));
    }
    sizes
}

/// `(dest, key)` of every record appended to each destination after the
/// recorded length: what an interrupted batch already delivered.
pub(super) fn present_keys(
    sizes: &BTreeMap<PathBuf, u64>,
) -> Result<HashSet<(PathBuf, String)>, FormatError> {
    let mut present = HashSet::new();
    for (dest, &size) in sizes {
        let mut cursor = size;
        loop {
            let batch = read_lines(dest, cursor, 1 << 20)?;
            if batch.lines.is_empty() {
                break;
            }
            // A cut line (longer than any writer writes) is no record of ours.
            for line in batch.lines.iter().filter(|l| !l.is_cut()) {
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
