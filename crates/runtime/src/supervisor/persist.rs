//! The supervisor's JSON documents besides its checkpoint: `status.json`
//! (its heartbeat and what it does with each agent) and `guard.json`
//! (receiver protection's memory, see `guard.rs`).

use super::state::{SlotStatus, SupervisorStatus};
use super::{guard, plan, Phase, Supervisor};
use society_core::state::Policy;
use society_core::{atomic, time, Layout};
use std::collections::HashMap;
use std::time::Instant;

/// The guard's memory from `supervisor/guard.json`. A missing file is a
/// fresh start; a corrupt one too (it holds windows and sanctions, never
/// messages), said in the log.
pub(super) fn load_guard(layout: &Layout) -> guard::Guard {
    match atomic::read_json::<guard::GuardState>(&layout.supervisor_guard(), "guard state") {
        Ok(state) => guard::Guard::new(state.unwrap_or_default()),
        Err(e) => {
            tracing::error!(error = %e, "ignoring the guard state: sanctions and flood windows start empty");
            guard::Guard::default()
        }
    }
}

impl Supervisor {
    /// Writes `supervisor/guard.json` (pruned of what no longer matters):
    /// `durable` when a sanction changed, else as a flushed snapshot once a
    /// scan — a crash can forget a second of counting, never a sanction.
    pub(super) fn save_guard(&mut self, durable: bool) {
        let now = plan::now_ms();
        let policies: HashMap<String, (u64, f64, u32)> = self
            .slots
            .iter()
            .map(|(id, s)| {
                let (rate, burst) = s.cfg.policy.rate();
                (
                    id.to_string(),
                    (s.cfg.policy.flood_window.as_millis() as u64, rate, burst),
                )
            })
            .collect();
        let fallback = {
            let p = Policy::default();
            let (rate, burst) = p.rate();
            (p.flood_window.as_millis() as u64, rate, burst)
        };
        self.guard
            .prune(now, |r| policies.get(r).copied().unwrap_or(fallback));
        match atomic::write_json(&self.layout.supervisor_guard(), &self.guard.state, durable) {
            Ok(()) => self.guard_dirty = false,
            Err(e) => {
                tracing::error!(error = %e, "failed to save the guard state; retrying at the next scan")
            }
        }
    }

    pub(super) fn write_status(&mut self, state: &str) {
        let agents = self
            .slots
            .iter()
            .map(|(id, s)| {
                let (phase, pid, until) = match &s.phase {
                    Phase::Down => ("down", None, None),
                    Phase::Up(p) => ("up", Some(p.pid as u32), None),
                    // A hung agent stays `hung` until its group is dead, not
                    // `stopping`: the grace period is when people look at it.
                    Phase::Stopping { proc, reason, .. } => (
                        if *reason == "hung" {
                            "hung"
                        } else {
                            "stopping"
                        },
                        Some(proc.pid as u32),
                        None,
                    ),
                    Phase::Backoff { until } => ("backoff", None, Some(instant_to_rfc3339(*until))),
                    Phase::Failed => ("failed", None, None),
                    Phase::Broken { .. } => ("broken", None, None),
                };
                let reason = match &s.phase {
                    Phase::Broken { reason } => Some(reason.clone()),
                    _ => None,
                };
                (
                    id.clone(),
                    SlotStatus {
                        phase: phase.into(),
                        pid,
                        backoff_until: until,
                        reason,
                    },
                )
            })
            .collect();
        let status = SupervisorStatus {
            pid: std::process::id(),
            started: self.started.clone(),
            ts: time::now_rfc3339(),
            state: state.into(),
            agents,
            trouble: self.trouble_status(),
        };
        if let Err(e) = atomic::write_json(&self.layout.supervisor_status(), &status, false) {
            tracing::error!(error = %e, "failed to write supervisor status");
        }
        self.status_dirty = false;
        self.last_status = Instant::now();
    }
}

fn instant_to_rfc3339(t: Instant) -> String {
    let now = Instant::now();
    let wall = if t >= now {
        std::time::SystemTime::now() + (t - now)
    } else {
        std::time::SystemTime::now() - (now - t)
    };
    time::format_rfc3339(wall)
}
