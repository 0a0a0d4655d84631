//! Debates the supervisor moderates (SOCIETY.md §C, issue 12).
//!
//! An agent facing a collaborative decision sends the supervisor a
//! `debate_request`. The supervisor opens one case per decision
//! (`debate-<slug>-<hash>`), records the proposer's position as its round-1
//! perspective, asks every other participant for theirs (`round_request`),
//! records each `perspective` reply, and after every iteration checks
//! consensus with `society_core::governance::debate`. Consensus ends the
//! debate with the agreed plan; otherwise round 2 iterates, paced by
//! `min_interval_ms`, until the hard deadline `opened_at + time_limit_ms`
//! expires it into an approval request for the orchestrator.
//!
//! Theory of operation: the case log is the debate's only state. Inbox
//! lines (requests, replies) only *record* facts, planned with their inbox
//! batch ([`open`]). Everything that depends on time — asking a round,
//! judging an iteration, expiring — is decided by [`step::next`], a pure
//! function of the folded log ([`fold`]) and the clock, and committed as a
//! direct batch (write-ahead records) by [`Supervisor::debate_tick`], which
//! the main loop runs every turn and whose next due time feeds `next_wait`.
//! A restarted supervisor folds the logs again and carries on from the
//! recorded `opened_at`/`deadline`: a debate past its deadline expires at
//! once.

mod fold;
mod open;
mod outcome;
mod request;
mod step;
#[cfg(test)]
mod tests;

pub(super) use fold::Debates;

use super::plan::{now_ms, Plan};
use super::Supervisor;
use society_core::{AgentId, CaseId};
use std::time::Duration;
use step::Next;

/// Every debate's case id starts with this.
pub(super) const CASE_PREFIX: &str = "debate-";

/// The case of a decision's debate: `debate-<slug>-<hash>`, the slug a
/// readable prefix of the decision id (lowercase, `-` for anything else,
/// at most 32 characters), the hash (FNV-1a, 16 hex digits) of the whole
/// id, so one decision always names the same case and two never share one.
pub(super) fn case_of(decision: &str) -> CaseId {
    let mut slug = String::new();
    for c in decision.chars().flat_map(char::to_lowercase) {
        if slug.len() >= 32 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let hash = society_core::id::stable_hash(decision.as_bytes());
    let id = if slug.is_empty() {
        format!("{CASE_PREFIX}{hash:016x}")
    } else {
        format!("{CASE_PREFIX}{slug}-{hash:016x}")
    };
    CaseId::new(&id).expect("a slug of [a-z0-9-] and hex digits, under 64 characters, is a case id")
}

impl Supervisor {
    /// Can a debate still ask this agent?
    fn debater_alive(&self, id: &AgentId) -> bool {
        self.slots.contains_key(id) && !self.removing.contains_key(id)
    }

    /// Takes every open debate one step, if it is due: the timer side of
    /// the moderation (see the module docs).
    pub(super) fn debate_tick(&mut self) {
        if self.debates.is_empty() || self.shutting_down {
            return;
        }
        let now = now_ms();
        let alive = |a: &AgentId| self.debater_alive(a);
        let mut plans = Vec::new();
        for d in self.debates.iter() {
            // A step still waiting to be written is not decided twice.
            if self.stalled_touches(&self.layout.case_log(&d.case)) {
                continue;
            }
            let mut plan = Plan::at(now);
            let planner = self.planner();
            match step::next(d, now, &alive) {
                Next::Wait(_) => continue,
                Next::Ask {
                    round,
                    iteration,
                    to,
                } => planner.debate_ask(&mut plan, d, round, iteration, &to),
                Next::Agree(c) => planner.debate_agree(&mut plan, d, &c),
                Next::Expire { reason, state } => {
                    planner.debate_expire(&mut plan, d, &reason, &state)
                }
            }
            tracing::info!(debate = %d.case, round = d.round, iteration = d.iteration, "debate step");
            plans.push(plan);
        }
        for plan in plans {
            self.commit_direct(plan);
        }
    }

    /// How long until a debate needs a step (zero: now); `None` without
    /// open debates.
    pub(super) fn debate_wait(&self) -> Option<Duration> {
        if self.shutting_down {
            return None;
        }
        let now = now_ms();
        let alive = |a: &AgentId| self.debater_alive(a);
        self.debates
            .iter()
            .filter(|d| !self.stalled_touches(&self.layout.case_log(&d.case)))
            .map(|d| match step::next(d, now, &alive) {
                Next::Wait(at) => Duration::from_millis(at.saturating_sub(now)),
                _ => Duration::ZERO,
            })
            .min()
    }
}
