//! What a debate needs next, as a pure function of its folded state, the
//! time and which agents still exist (STYLE.md: decisions are pure; the
//! supervisor plans and commits what this returns).
//!
//! Order of the checks, each of which wins over the ones after it:
//! 1. nobody but the proposer left to debate with → expire at once;
//! 2. past the hard deadline → expire;
//! 3. round 1 not asked yet → ask every other participant;
//! 4. the iteration is still running (someone asked has not answered and
//!    `min_interval_ms` has not passed since it started) → wait;
//! 5. consensus → agree;
//! 6. otherwise the next iteration of round 2, to every participant, once
//!    `min_interval_ms` has passed since this one started and never past
//!    the deadline.

use super::fold::Debate;
use society_core::governance::debate::{consensus, Consensus};
use society_core::AgentId;

#[derive(Debug, Clone, PartialEq)]
pub(in crate::supervisor) enum Next {
    /// Nothing to do until this time (ms since the epoch).
    Wait(u64),
    /// Send round requests for this round and iteration.
    Ask {
        round: u32,
        iteration: u32,
        to: Vec<AgentId>,
    },
    Agree(Consensus),
    Expire {
        reason: String,
        state: Consensus,
    },
}

pub(in crate::supervisor) fn next(d: &Debate, now: u64, alive: &dyn Fn(&AgentId) -> bool) -> Next {
    let o = &d.opened;
    let state = || consensus(&d.positions(), o.threshold);
    let others = &o.participants[1.min(o.participants.len())..];
    if !others.iter().any(alive) {
        let reason = if others.is_empty() {
            "no participant besides the proposer could be resolved".to_string()
        } else {
            "every participant besides the proposer is gone".to_string()
        };
        return Next::Expire {
            reason,
            state: state(),
        };
    }
    if now >= o.deadline {
        return Next::Expire {
            reason: format!(
                "the time limit of {} ms ran out without consensus",
                o.time_limit_ms
            ),
            state: state(),
        };
    }
    if !d.sent {
        let to: Vec<AgentId> = others.iter().filter(|a| alive(a)).cloned().collect();
        return Next::Ask {
            round: d.round,
            iteration: d.iteration,
            to,
        };
    }
    let paced = d.started.saturating_add(o.min_interval_ms);
    let waiting = d.asked.iter().any(|a| alive(a) && !d.answered.contains(a));
    if waiting && now < paced {
        return Next::Wait(paced.min(o.deadline));
    }
    let c = state();
    if c.reached {
        return Next::Agree(c);
    }
    if paced >= o.deadline {
        return Next::Wait(o.deadline);
    }
    if now < paced {
        return Next::Wait(paced);
    }
    Next::Ask {
        round: 2,
        iteration: d.iteration + 1,
        to: o
            .participants
            .iter()
            .filter(|a| alive(a))
            .cloned()
            .collect(),
    }
}
