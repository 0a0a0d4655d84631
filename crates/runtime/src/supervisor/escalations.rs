//! The organisation's timer: an item whose lead did not answer within its
//! `answer_within` goes one node up. Like a debate's step, the move is
//! decided from the folded log and the time alone and committed as a
//! direct batch, so a restart neither forgets a timer nor moves an item
//! twice (the `moved` record's key names the node it left).

use super::plan::{now_ms, Plan};
use super::Supervisor;
use crate::org::outcome;
use std::time::Duration;

impl Supervisor {
    /// Moves every item whose time at its lead is up.
    pub(super) fn escalation_tick(&mut self) {
        if self.shutting_down || self.stalled_touches(&self.layout.supervisor_escalations()) {
            return;
        }
        let now = now_ms();
        let due: Vec<crate::org::Item> = self
            .items
            .open()
            .filter(|i| i.at != society_core::org::ORCHESTRATOR && i.due <= now)
            .cloned()
            .collect();
        for item in due {
            let mut plan = Plan::at(now);
            let reason = format!("no answer from {} in time", item.at);
            self.planner()
                .move_up(&mut plan, &item, outcome::TIMEOUT, &reason);
            tracing::info!(item = %item.item, from = %item.at, "escalation moves up: no answer in time");
            self.commit_direct(plan);
        }
    }

    /// How long until an item's time at its lead is up; `None` without any.
    pub(super) fn escalation_wait(&self) -> Option<Duration> {
        // While a batch that writes the log is stalled the tick waits too:
        // an overdue item must not make the loop spin.
        if self.shutting_down || self.stalled_touches(&self.layout.supervisor_escalations()) {
            return None;
        }
        let now = now_ms();
        self.items
            .open()
            .filter(|i| i.at != society_core::org::ORCHESTRATOR)
            .map(|i| Duration::from_millis(i.due.saturating_sub(now)))
            .min()
    }
}
