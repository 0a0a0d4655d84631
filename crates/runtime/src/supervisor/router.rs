//! The router: tails every `outbox.jsonl` from its own cursor, validates each
//! envelope, cuts conversations past their hop limit, applies the routing
//! policy and the receiver's protection, and appends it to the recipient's
//! inbox, the mirror and the case log — then, and only then, advances the
//! cursor (see `commit.rs` for the crash and failure safety).
//!
//! What each line decides is planned by `planner/route.rs`, a pure step;
//! this file holds what it cannot: reading the outbox, pacing a sender
//! (the planner only says until when), incidents, and the commit.

use super::commit::{present_keys, Source};
use super::plan::{now_ms, read_range, Plan};
use super::planner::LineOutcome;
use super::state::{Incident, PendingBatch};
use super::{file_len, Supervisor};
use serde_json::json;
use society_core::jsonl::CursorCheck;
use society_core::kinds::event;
use society_core::{AgentId, FormatError, MsgId};
use std::time::{Duration, Instant};

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
            match self.route_batch(owner, None) {
                Ok(true) => continue,
                Ok(false) => return,
                // A link in the sender's folder (`confine`): never read
                // through, and said once — the agent is broken until the
                // link is replaced — not at every scan. A running process
                // of the agent meets the link itself, exits and is marked
                // then; a broken one was told already.
                Err(e) if e.symlinked().is_some() => {
                    let said = matches!(
                        self.slots.get(owner).map(|s| &s.phase),
                        Some(
                            super::Phase::Up(_)
                                | super::Phase::Stopping { .. }
                                | super::Phase::Broken { .. }
                        )
                    );
                    if !said {
                        self.mark_broken(owner, e.to_string());
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(agent = %owner, error = %e, "routing failed; will retry on the next scan");
                    return;
                }
            }
        }
    }

    /// Routes one batch; returns whether it routed anything. `recovered`:
    /// the range `[cursor, to)` is a batch a crash or a failed write
    /// interrupted, re-planned at the instant it was planned, with the
    /// destination lengths and role picks it recorded.
    pub(super) fn route_batch(
        &mut self,
        owner: &AgentId,
        recovered: Option<&PendingBatch>,
    ) -> Result<bool, FormatError> {
        let outbox = self.slots[owner].paths.outbox();
        let max_record = self.slots[owner].cfg.policy.max_record;
        let from = self.ckpt.cursors.get(owner).copied().unwrap_or(0);
        // Lines a batch without a write-ahead record may have delivered
        // before the last process died (`recover_ahead`).
        // A recorded batch of this outbox is resumed first, on its own terms.
        let ahead = match self.recovery.get(owner) {
            _ if recovered.is_some() => None,
            Some(to) if from < *to => Some(*to),
            Some(_) => {
                self.recovered(owner);
                None
            }
            None => None,
        };
        let limit = recovered.map(|p| p.to).or(ahead);
        let at = recovered.and_then(|p| p.at);
        let lines = match read_range(&outbox, from, limit, max_record)? {
            Ok(lines) => lines,
            Err(check) => {
                self.incident(owner.as_str(), &outbox, from, check);
                return Ok(false);
            }
        };
        if lines.is_empty() {
            if ahead.is_some() {
                // What is left before the recovery's end is part of a line
                // (written while this process started): routed as usual.
                self.recovered(owner);
                return Ok(true);
            }
            return Ok(false);
        }
        let mut plan = Plan::at(at.unwrap_or_else(now_ms));
        if let Some(p) = recovered {
            plan.present = Some(present_keys(&p.sizes)?);
            plan.picks = p.picks.clone();
        } else if ahead.is_some() {
            plan.present = Some(self.recovered_present.clone());
            plan.may_pace = true;
        }
        let mut next = from;
        let mut paced = None;
        let planner = self.planner();
        for line in &lines {
            match planner.line(&mut plan, owner, line) {
                LineOutcome::Planned => {
                    next = line.end;
                    plan.lines += 1;
                }
                LineOutcome::Paced { until } => {
                    paced = Some(until);
                    break;
                }
            }
        }
        if let Some(until) = paced {
            let wait = Duration::from_millis(until.saturating_sub(plan.now));
            self.paced.insert(owner.clone(), Instant::now() + wait);
        }
        if next == from {
            return Ok(false);
        }
        self.commit(Some(owner), from, next, plan, recovered.map(|p| &p.sizes))?;
        Ok(next == lines.last().map_or(from, |l| l.end))
    }

    /// `owner`'s outbox is routed past what the last process may have
    /// delivered without a write-ahead record (`recover_ahead`).
    pub(super) fn recovered(&mut self, owner: &AgentId) {
        self.recovery.remove(owner);
        if self.recovery.is_empty() {
            self.recovered_present.clear();
            self.recovery_ahead.clear();
        }
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
        let planner = self.planner();
        planner.event(
            &mut plan,
            event::CURSOR_INCIDENT,
            key,
            format!("incident:{key}@{cursor}"),
            json!({"file": path, "kind": kind, "cursor": cursor, "len": len}),
        );
        planner.escalation(&mut plan, MsgId::generate(), key, None, &reason, context);
        self.commit_direct(plan);
        self.status_dirty = true;
    }
}
