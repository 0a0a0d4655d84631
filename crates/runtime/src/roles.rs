//! Which agent of a role receives a `role:<role>` message.

use society_core::{AgentId, Envelope};

/// Among `candidates` (sorted), the one a case (or, without a case, the
/// message id) hashes to: the same choice every time, so a case stays with one
/// agent and a re-routed message after a crash lands where it landed before.
pub fn pick<'a>(candidates: &[&'a AgentId], env: &Envelope) -> Option<&'a AgentId> {
    if candidates.is_empty() {
        return None;
    }
    let key = env
        .case
        .as_ref()
        .map_or_else(|| env.id.to_string(), |c| c.to_string());
    let pick = society_core::id::stable_hash(key.as_bytes()) % candidates.len() as u64;
    Some(candidates[pick as usize])
}
