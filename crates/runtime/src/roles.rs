//! Which agent of a role receives a `role:<role>` message: by capability,
//! by case, then by load.
//!
//! 1. **Capability.** Only agents whose `capabilities` include every one of
//!    the message's `needs` can take it.
//! 2. **The case sticks.** A case message goes to the agent of the role that
//!    already works on the case (its owner first, then whoever joined it
//!    last), as long as that agent is alive (not `failed` or `broken`).
//! 3. **Load.** Otherwise the capable agent with the fewest inbox bytes
//!    waiting (alive ones first); among equals, the one the case (or, without
//!    a case, the message id) hashes to, so equal agents share the work.
//!
//! Load changes from one moment to the next, so the same message may be
//! placed differently twice: the router therefore records every pick in its
//! write-ahead record and a re-planned batch reuses it (`Plan::picks`).

use society_core::{AgentId, Envelope};

/// One agent of the role, as the pick sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: &'a AgentId,
    pub capabilities: &'a [String],
    /// Not `failed` or `broken`: it will take its mail (now or when started).
    pub alive: bool,
}

/// Why no agent of the role can take the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPick {
    /// The role has no agents.
    NoRole,
    /// No agent of the role has all of `needs`.
    NotCapable { needs: Vec<String> },
}

impl NoPick {
    pub fn describe(&self, role: &str) -> String {
        match self {
            NoPick::NoRole => format!("no agent has role {role}"),
            NoPick::NotCapable { needs } => format!(
                "no agent of role {role} has every capability the message needs ({})",
                needs.join(", ")
            ),
        }
    }
}

/// Can this candidate take a message that needs `needs`?
pub fn capable(capabilities: &[String], needs: &[String]) -> bool {
    needs.iter().all(|n| capabilities.contains(n))
}

/// How many agents of a role a pick by load compares at most.
pub const SAMPLE: usize = 8;

/// Inbox bytes past the agent's checkpointed offset (its load); an
/// unreadable checkpoint counts the whole live file.
pub fn inbox_depth(paths: &society_core::AgentPaths) -> u64 {
    /// Only the cursor: the rest of the checkpoint (its recent ids) is not
    /// built.
    #[derive(serde::Deserialize)]
    struct Cursor {
        #[serde(default)]
        inbox_offset: u64,
        #[serde(default)]
        seq: u64,
    }
    let read = |path: &std::path::Path| {
        society_core::atomic::read_json::<Cursor>(path, "checkpoint")
            .ok()
            .flatten()
    };
    let len = std::fs::metadata(paths.inbox()).map_or(0, |m| m.len());
    let Some(durable) = read(&paths.checkpoint()) else {
        return len;
    };
    // The newer of the two (see `AgentCheckpoint::read`).
    let c = read(&paths.live_checkpoint())
        .filter(|l| l.seq > durable.seq)
        .unwrap_or(durable);
    // A live file shorter than the cursor was rotated after the checkpoint
    // (an agent killed in between): all of it is unread. (Listing the
    // segments to be sure would cost a directory read per pick.)
    if len < c.inbox_offset {
        return len;
    }
    len - c.inbox_offset
}

/// The agents already on a case, in the order a case message prefers them:
/// its owner, then whoever joined it last.
pub fn on_case(case: &society_core::case::CaseSummary) -> Vec<String> {
    let mut on: Vec<String> = case.owner.iter().cloned().collect();
    on.extend(case.agents.iter().rev().cloned());
    on
}

/// The pick, in the order of the module docs. `case_agents`: the agents
/// already on the message's case, the preferred first (owner, then latest).
/// `depth`: inbox bytes not yet consumed (with what this batch already
/// placed there), asked only when load decides, as it reads files.
pub fn pick(
    candidates: &[Candidate<'_>],
    env: &Envelope,
    case_agents: &[&str],
    mut depth: impl FnMut(&AgentId) -> u64,
) -> Result<AgentId, NoPick> {
    if candidates.is_empty() {
        return Err(NoPick::NoRole);
    }
    let able: Vec<&Candidate<'_>> = candidates
        .iter()
        .filter(|c| capable(c.capabilities, &env.needs))
        .collect();
    if able.is_empty() {
        return Err(NoPick::NotCapable {
            needs: env.needs.clone(),
        });
    }
    for agent in case_agents {
        if let Some(c) = able.iter().find(|c| c.alive && c.id.as_str() == *agent) {
            return Ok(c.id.clone());
        }
    }
    let alive: Vec<&Candidate<'_>> = able.iter().copied().filter(|c| c.alive).collect();
    let mut pool = if alive.is_empty() { able } else { alive };
    if pool.len() == 1 {
        return Ok(pool[0].id.clone());
    }
    let key = env
        .case
        .as_ref()
        .map_or_else(|| env.id.to_string(), |c| c.to_string());
    let hash = society_core::id::stable_hash(key.as_bytes());
    if pool.len() > SAMPLE {
        // A large role: the load of SAMPLE agents, a window the message's
        // hash chooses, not of every one (each depth is a file read).
        pool.sort_by(|a, b| a.id.cmp(b.id));
        let start = (hash % pool.len() as u64) as usize;
        pool = (0..SAMPLE)
            .map(|i| pool[(start + i) % pool.len()])
            .collect();
    }
    let depths: Vec<u64> = pool.iter().map(|c| depth(c.id)).collect();
    let least = depths.iter().copied().min().unwrap_or(0);
    let mut tied: Vec<&AgentId> = pool
        .iter()
        .zip(&depths)
        .filter(|(_, d)| **d == least)
        .map(|(c, _)| c.id)
        .collect();
    tied.sort();
    let at = hash % tied.len() as u64;
    Ok(tied[at as usize].clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use society_core::Party;
    use std::collections::HashMap;

    fn ids(names: &[&str]) -> Vec<AgentId> {
        names.iter().map(|n| AgentId::new(*n).unwrap()).collect()
    }

    fn env(case: Option<&str>, needs: &[&str]) -> Envelope {
        let mut e = Envelope::new(
            Party::Orchestrator,
            Party::Role("w".into()),
            "task",
            json!({}),
        );
        e.case = case.map(|c| c.parse().unwrap());
        e.needs = needs.iter().map(|n| n.to_string()).collect();
        e
    }

    struct World {
        ids: Vec<AgentId>,
        caps: Vec<Vec<String>>,
        alive: Vec<bool>,
        depth: HashMap<String, u64>,
    }

    impl World {
        fn new(names: &[&str]) -> World {
            World {
                ids: ids(names),
                caps: vec![Vec::new(); names.len()],
                alive: vec![true; names.len()],
                depth: HashMap::new(),
            }
        }
        fn pick(&self, env: &Envelope, case_agents: &[&str]) -> Result<String, NoPick> {
            let cands: Vec<Candidate<'_>> = self
                .ids
                .iter()
                .enumerate()
                .map(|(i, id)| Candidate {
                    id,
                    capabilities: &self.caps[i],
                    alive: self.alive[i],
                })
                .collect();
            pick(&cands, env, case_agents, |id| {
                self.depth.get(id.as_str()).copied().unwrap_or(0)
            })
            .map(|a| a.to_string())
        }
    }

    #[test]
    fn only_agents_with_every_need_are_picked() {
        let mut w = World::new(&["a", "b", "c"]);
        w.caps[0] = vec!["rust".into()];
        w.caps[1] = vec!["rust".into(), "sql".into()];
        w.caps[2] = vec!["sql".into()];
        // b is the only one with both, however loaded.
        w.depth.insert("b".into(), 10_000);
        assert_eq!(w.pick(&env(None, &["rust", "sql"]), &[]).unwrap(), "b");
        let none = w.pick(&env(None, &["go"]), &[]).unwrap_err();
        assert_eq!(
            none,
            NoPick::NotCapable {
                needs: vec!["go".into()]
            }
        );
        assert!(none.describe("w").contains("(go)"));
        assert_eq!(
            World::new(&[]).pick(&env(None, &[]), &[]),
            Err(NoPick::NoRole)
        );
    }

    #[test]
    fn the_least_loaded_capable_agent_wins() {
        let mut w = World::new(&["a", "b", "c"]);
        w.depth.insert("a".into(), 300);
        w.depth.insert("b".into(), 20);
        w.depth.insert("c".into(), 90);
        for _ in 0..20 {
            assert_eq!(w.pick(&env(None, &[]), &[]).unwrap(), "b");
        }
        // A failed agent is passed over even when idle.
        w.depth.insert("c".into(), 0);
        w.alive[2] = false;
        assert_eq!(w.pick(&env(None, &[]), &[]).unwrap(), "b");
    }

    #[test]
    fn a_case_sticks_to_its_agent_while_it_is_alive() {
        let mut w = World::new(&["a", "b", "c"]);
        w.depth.insert("a".into(), 5_000);
        let e = env(Some("c-1"), &[]);
        // "a" is on the case: it keeps it although it is the busiest.
        assert_eq!(w.pick(&e, &["zz", "a"]).unwrap(), "a");
        // It failed: the case moves to the least loaded of the others.
        w.alive[0] = false;
        w.depth.insert("b".into(), 7);
        assert_eq!(w.pick(&e, &["a"]).unwrap(), "c");
        // An agent on the case without the capability needed is not kept.
        w.alive[0] = true;
        w.caps[1] = vec!["x".into()];
        w.caps[2] = vec!["x".into()];
        assert_eq!(w.pick(&env(Some("c-1"), &["x"]), &["a"]).unwrap(), "c");
    }

    #[test]
    fn a_large_role_reads_the_load_of_a_window_of_agents_only() {
        let names: Vec<String> = (0..100).map(|i| format!("w{i:03}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let w = World::new(&refs);
        for _ in 0..50 {
            let e = env(None, &[]);
            let mut asked = Vec::new();
            let cands: Vec<Candidate<'_>> = w
                .ids
                .iter()
                .map(|id| Candidate {
                    id,
                    capabilities: &[],
                    alive: true,
                })
                .collect();
            let got = pick(&cands, &e, &[], |id| {
                asked.push(id.to_string());
                0
            })
            .unwrap();
            assert_eq!(asked.len(), SAMPLE, "{asked:?}");
            assert!(asked.contains(&got.to_string()));
        }
    }

    #[test]
    fn equal_agents_share_by_hash_and_the_choice_is_repeatable() {
        let w = World::new(&["a", "b", "c", "d"]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let e = env(None, &[]);
            let first = w.pick(&e, &[]).unwrap();
            assert_eq!(w.pick(&e, &[]).unwrap(), first);
            seen.insert(first);
        }
        assert_eq!(seen.len(), 4, "ties spread over every agent");
        // Only dead agents: mail still goes somewhere (it waits for a restart).
        let mut dead = World::new(&["a", "b"]);
        dead.alive = vec![false, false];
        assert!(dead.pick(&env(None, &[]), &[]).is_ok());
    }
}
