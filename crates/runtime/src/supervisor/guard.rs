//! Receiver protection and sender sanctions, as pure state: the router asks
//! [`Guard::check`] about one message and records what it decided in a
//! [`GuardTxn`], which the batch's commit applies ([`Guard::apply`]) only once
//! the batch has landed. So a commit that fails and is resumed counts nothing
//! twice, and a batch re-planned after a crash starts from the state before it.
//!
//! * **Rate**: a token bucket per (sender, receiver) pair, refilled at
//!   `rate_per_sec` up to `rate_burst`. A sender over it is *paced*: the router
//!   holds its outbox at that message until the bucket has room. Nothing is
//!   refused for rate, so the defaults never cost a pipeline a message.
//! * **Flood**: more than `flood_threshold` identical messages — same
//!   sender, type, case, `reply_to` and body — to one receiver within
//!   `flood_window` are refused (the loop detector). Identical bodies from
//!   several senders, or answering different messages, pass.
//! * **Accepted types and senders, body size** (the receiver's policy).
//! * **Sanctions** (SOCIETY.md O3): every refusal is a violation of its
//!   sender. After 3 a 5-minute block, after 5 a one-hour block, after 10 a
//!   block until the orchestrator lifts it (`society unblock ID`). While
//!   blocked, a sender's messages to agents are refused without a notice —
//!   so an agent that answers every notice cannot keep a loop going on them.
//!
//! The state is persisted in `supervisor/guard.json` (see
//! `Supervisor::save_guard`), so a restart neither forgets a sanction nor
//! resets a flood window.

use super::policy::matches;
use serde::{Deserialize, Serialize};
use society_core::state::Policy;
use society_core::{AgentId, Envelope};
use std::collections::BTreeMap;

/// `blocked_until` of a block that only `society unblock` lifts.
pub(crate) const UNTIL_LIFTED: u64 = u64::MAX;

/// Sanction levels: (violations that reach it, block length in ms).
pub(crate) const LEVELS: [(u32, u64); 3] = [(3, 5 * 60_000), (5, 60 * 60_000), (10, UNTIL_LIFTED)];

/// Distinct bodies remembered per receiver; the oldest are forgotten first.
/// Loops repeat recent bodies; a loop whose period is longer than this is
/// cut by the hop limit instead.
const BODIES_PER_RECEIVER: usize = 1024;

/// What the guard remembers, as written to `supervisor/guard.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    /// `"<sender>><receiver>"` → bucket (buckets that are full are dropped).
    #[serde(default)]
    pub buckets: BTreeMap<String, Bucket>,
    /// receiver → body hash (hex) → when each copy was accepted (ms since epoch).
    #[serde(default)]
    pub bodies: BTreeMap<String, BTreeMap<String, Vec<u64>>>,
    /// sender → its record of refusals and sanctions.
    #[serde(default)]
    pub senders: BTreeMap<String, Conduct>,
    /// sender → how many times `society unblock` lifted it: a batch planned
    /// before a lift (and landing after it) does not bring its record back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lifts: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    /// When `tokens` was counted (ms since epoch).
    pub at: u64,
}

/// One sender's standing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conduct {
    /// Refusals since the last `society unblock`.
    pub violations: u32,
    /// Sanctions imposed so far (0..=3).
    pub level: u8,
    /// Blocked until then (ms since epoch; `u64::MAX`: until lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
}

impl Conduct {
    pub fn blocked_at(&self, now: u64) -> bool {
        self.blocked_until.is_some_and(|u| now < u)
    }
}

/// The guard's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Admit,
    /// Over the rate: hold the sender's outbox at this message until then.
    Pace {
        until: u64,
    },
    /// Refused; a violation of the sender (`sanction` if it reaches a level).
    Refuse {
        reason: String,
        sanction: Option<Sanction>,
    },
    /// The sender is under a sanction: refused, no notice, no new violation.
    Blocked {
        reason: String,
    },
}

/// A sanction the refusal of this message imposes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sanction {
    pub level: u8,
    pub violations: u32,
    /// ms since epoch, or [`UNTIL_LIFTED`].
    pub until: u64,
}

impl Sanction {
    pub fn describe(&self) -> String {
        let length = if self.until == UNTIL_LIFTED {
            "until the orchestrator lifts it (`society unblock`)".to_string()
        } else {
            let level = LEVELS[usize::from(self.level) - 1].1;
            format!(
                "for {}",
                humantime::format_duration(std::time::Duration::from_millis(level))
            )
        };
        format!(
            "blocked {length} after {} refused messages (sanction {} of {})",
            self.violations,
            self.level,
            LEVELS.len()
        )
    }
}

/// What one batch decided, applied to the state only when it commits.
#[derive(Debug, Default)]
pub(crate) struct GuardTxn {
    buckets: BTreeMap<String, Bucket>,
    bodies: Vec<(String, String, u64)>,
    senders: BTreeMap<String, Conduct>,
    /// The lift count each sender had when this batch judged it.
    seen_lifts: BTreeMap<String, u32>,
    /// Senders unblocked by the orchestrator in this batch.
    lifted: Vec<String>,
}

impl GuardTxn {
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
            && self.bodies.is_empty()
            && self.senders.is_empty()
            && self.lifted.is_empty()
    }

    /// Does this batch change a sanction (worth writing at once)?
    pub fn sanctions_changed(&self) -> bool {
        !self.lifted.is_empty() || self.senders.values().any(|c| c.blocked_until.is_some())
    }

    pub fn unblock(&mut self, sender: &str) {
        self.senders.remove(sender);
        self.lifted.push(sender.to_string());
    }
}

#[derive(Debug, Default)]
pub(crate) struct Guard {
    pub state: GuardState,
}

impl Guard {
    pub fn new(state: GuardState) -> Guard {
        Guard { state }
    }

    fn conduct<'a>(&'a self, txn: &'a GuardTxn, sender: &str) -> Option<&'a Conduct> {
        if let Some(c) = txn.senders.get(sender) {
            return Some(c);
        }
        // Lifted earlier in this batch: a clean record.
        if txn.lifted.iter().any(|l| l == sender) {
            return None;
        }
        self.state.senders.get(sender)
    }

    /// Judges `env` for `receiver` at `now` (ms since epoch) and records the
    /// decision in `txn`.
    pub fn check(
        &self,
        txn: &mut GuardTxn,
        now: u64,
        receiver: &AgentId,
        policy: &Policy,
        env: &Envelope,
        sender_role: Option<&str>,
    ) -> Verdict {
        let sender = env.from.to_string();
        if let Some(c) = self.conduct(txn, &sender).filter(|c| c.blocked_at(now)) {
            let until = c.blocked_until.unwrap_or(UNTIL_LIFTED);
            let when = if until == UNTIL_LIFTED {
                "until the orchestrator lifts the block (`society unblock`)".to_string()
            } else {
                format!(
                    "until {}",
                    society_core::time::format_rfc3339(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(until)
                    )
                )
            };
            return Verdict::Blocked {
                reason: format!("sender {sender} is blocked {when} (sanction {})", c.level),
            };
        }
        if let Err(reason) = static_checks(policy, env, sender_role) {
            return self.refuse(txn, now, &sender, reason);
        }
        // The same message again: same sender, type, case, answer to the same
        // message, same body. (Identical bodies from different senders, or
        // answering different messages, are a pipeline, not a loop.)
        let same = serde_json::json!([sender, env.kind, env.case, env.reply_to, env.body]);
        let hash = format!(
            "{:016x}",
            society_core::id::stable_hash(&serde_json::to_vec(&same).unwrap_or_default())
        );
        let window = policy.flood_window.as_millis() as u64;
        let same = self.recent_copies(txn, receiver.as_str(), &hash, now, window);
        if same >= policy.flood_threshold as usize {
            let reason = format!(
                "flood: more than {} identical messages from {sender} within {}",
                policy.flood_threshold,
                humantime::format_duration(policy.flood_window)
            );
            return self.refuse(txn, now, &sender, reason);
        }
        let (rate, burst) = policy.rate();
        let key = format!("{sender}>{receiver}");
        let bucket = txn
            .buckets
            .get(&key)
            .or_else(|| self.state.buckets.get(&key))
            .copied()
            .unwrap_or(Bucket {
                tokens: f64::from(burst),
                at: now,
            });
        let tokens = refill(bucket, now, rate, burst);
        if tokens < 1.0 {
            let wait = if rate > 0.0 {
                ((1.0 - tokens) * 1000.0 / rate).ceil() as u64
            } else {
                60_000
            };
            return Verdict::Pace {
                until: now + wait.max(1),
            };
        }
        txn.buckets.insert(
            key,
            Bucket {
                tokens: tokens - 1.0,
                at: now,
            },
        );
        txn.bodies.push((receiver.to_string(), hash, now));
        Verdict::Admit
    }

    fn recent_copies(
        &self,
        txn: &GuardTxn,
        receiver: &str,
        hash: &str,
        now: u64,
        window: u64,
    ) -> usize {
        let fresh = |t: &u64| now.saturating_sub(*t) < window;
        let stored = self
            .state
            .bodies
            .get(receiver)
            .and_then(|m| m.get(hash))
            .map_or(0, |v| v.iter().filter(|t| fresh(t)).count());
        let pending = txn
            .bodies
            .iter()
            .filter(|(r, h, t)| r == receiver && h == hash && fresh(t))
            .count();
        stored + pending
    }

    fn refuse(&self, txn: &mut GuardTxn, now: u64, sender: &str, reason: String) -> Verdict {
        let mut c = self.conduct(txn, sender).cloned().unwrap_or_default();
        c.violations += 1;
        c.last_reason = Some(reason.clone());
        let mut sanction = None;
        if let Some(&(_, length)) = LEVELS.get(usize::from(c.level)) {
            if c.violations >= LEVELS[usize::from(c.level)].0 {
                c.level += 1;
                let until = if length == UNTIL_LIFTED {
                    UNTIL_LIFTED
                } else {
                    now + length
                };
                c.blocked_until = Some(until);
                sanction = Some(Sanction {
                    level: c.level,
                    violations: c.violations,
                    until,
                });
            }
        }
        txn.senders.insert(sender.to_string(), c);
        let lifted_here = txn.lifted.iter().filter(|l| *l == sender).count() as u32;
        txn.seen_lifts.insert(
            sender.to_string(),
            self.state.lifts.get(sender).copied().unwrap_or(0) + lifted_here,
        );
        Verdict::Refuse { reason, sanction }
    }

    /// Applies a committed batch's decisions.
    pub fn apply(&mut self, txn: GuardTxn) {
        for sender in txn.lifted {
            self.state.senders.remove(&sender);
            *self.state.lifts.entry(sender).or_default() += 1;
        }
        self.state.buckets.extend(txn.buckets);
        for (receiver, hash, t) in txn.bodies {
            self.state
                .bodies
                .entry(receiver)
                .or_default()
                .entry(hash)
                .or_default()
                .push(t);
        }
        for (sender, conduct) in txn.senders {
            let lifts = self.state.lifts.get(&sender).copied().unwrap_or(0);
            // Judged before a lift that has landed since: the lift wins.
            if txn.seen_lifts.get(&sender).copied().unwrap_or(lifts) == lifts {
                self.state.senders.insert(sender, conduct);
            }
        }
    }

    /// Forgets what can no longer matter at `now`: full buckets, bodies
    /// outside every window, expired blocks of senders with nothing else to
    /// remember. Keeps at most [`BODIES_PER_RECEIVER`] bodies per receiver.
    pub fn prune(&mut self, now: u64, window_of: impl Fn(&str) -> (u64, f64, u32)) {
        self.state.buckets.retain(|key, b| {
            let receiver = key.rsplit('>').next().unwrap_or("");
            let (_, rate, burst) = window_of(receiver);
            refill(*b, now, rate, burst) < f64::from(burst)
        });
        for (receiver, hashes) in self.state.bodies.iter_mut() {
            let (window, _, _) = window_of(receiver);
            for times in hashes.values_mut() {
                times.retain(|t| now.saturating_sub(*t) < window);
            }
            hashes.retain(|_, times| !times.is_empty());
            if hashes.len() > BODIES_PER_RECEIVER {
                let mut newest: Vec<(u64, String)> = hashes
                    .iter()
                    .map(|(h, times)| (times.iter().copied().max().unwrap_or(0), h.clone()))
                    .collect();
                newest.sort_unstable_by(|a, b| b.cmp(a));
                for (_, h) in newest.into_iter().skip(BODIES_PER_RECEIVER) {
                    hashes.remove(&h);
                }
            }
        }
        self.state.bodies.retain(|_, h| !h.is_empty());
        for c in self.state.senders.values_mut() {
            if c.blocked_until.is_some_and(|u| now >= u) {
                c.blocked_until = None;
            }
        }
        self.state
            .senders
            .retain(|_, c| c.violations > 0 || c.blocked_until.is_some());
    }
}

fn refill(b: Bucket, now: u64, rate: f64, burst: u32) -> f64 {
    let elapsed = now.saturating_sub(b.at) as f64 / 1000.0;
    (b.tokens + elapsed * rate).min(f64::from(burst))
}

/// The receiver's accepted types and senders, and its body size limit.
fn static_checks(policy: &Policy, env: &Envelope, sender_role: Option<&str>) -> Result<(), String> {
    if !policy.accept_types.is_empty() && !policy.accept_types.contains(&env.kind) {
        return Err(format!(
            "type {:?} is not accepted (accept_types: {:?})",
            env.kind, policy.accept_types
        ));
    }
    if !policy.accept_from.is_empty()
        && !policy
            .accept_from
            .iter()
            .any(|p| matches(p, &env.from, sender_role))
    {
        return Err(format!(
            "sender {} is not accepted (accept_from: {:?})",
            env.from, policy.accept_from
        ));
    }
    let body = serde_json::to_vec(&env.body).unwrap_or_default();
    if body.len() > policy.max_body {
        return Err(format!(
            "body of {} bytes exceeds max_body ({} bytes)",
            body.len(),
            policy.max_body
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
