//! What `registry.jsonl` says about an agent's folder: `created` when it was
//! provisioned, `removed` when `society rm` decided to move it into
//! `archive/`. The supervisor writes `removed` in the batch of the request,
//! before it moves anything, so the record is the durable decision: a
//! supervisor that restarts finishes a move the record names and the folder
//! has not made yet, and `society rm` learns from it where the folder went.

use serde_json::Value;
use society_core::kinds::event;
use society_core::{jsonl, AgentId, IoError, Layout, MsgId};

/// A removal the registry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Where the folder goes, relative to the state directory.
    pub archive: String,
    /// The `remove` request that decided it.
    pub request: Option<MsgId>,
}

/// Every agent's standing removal: the first `removed` after its last
/// `created` (a later spawn of the same id is a new agent; two requests in
/// one batch name two folders, and the first is the one moved).
pub fn removals(layout: &Layout) -> Result<Vec<(AgentId, Removal)>, IoError> {
    let records = jsonl::read_objects(&layout.registry(), &mut 0)?;
    Ok(fold(&records))
}

fn fold(records: &[Value]) -> Vec<(AgentId, Removal)> {
    let mut out: std::collections::BTreeMap<AgentId, Option<Removal>> = Default::default();
    for r in records {
        let Some(agent) = r["agent"].as_str().and_then(|a| AgentId::new(a).ok()) else {
            continue;
        };
        match r["event"].as_str() {
            Some(event::CREATED) => {
                out.insert(agent, None);
            }
            Some(event::REMOVED) => {
                let Some(archive) = r["archive"].as_str() else {
                    continue;
                };
                out.entry(agent).or_default().get_or_insert(Removal {
                    archive: archive.to_string(),
                    request: r["request"].as_str().and_then(|s| s.parse().ok()),
                });
            }
            _ => {}
        }
    }
    out.into_iter()
        .filter_map(|(a, r)| r.map(|r| (a, r)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_removal_after_the_last_creation_stands() {
        let req = MsgId::generate().to_string();
        let records = [
            json!({"event": "created", "agent": "a"}),
            json!({"event": "removed", "agent": "a", "archive": "archive/agent-a-1", "request": req}),
            json!({"event": "removed", "agent": "a", "archive": "archive/agent-a-2"}),
            json!({"event": "created", "agent": "b"}),
            json!({"event": "removed", "agent": "b", "archive": "archive/agent-b-1"}),
            json!({"event": "created", "agent": "b"}),
            json!({"event": "removed", "agent": "Not An Id", "archive": "x"}),
        ];
        let got = fold(&records);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0.as_str(), "a");
        assert_eq!(got[0].1.archive, "archive/agent-a-1");
        assert_eq!(got[0].1.request.map(|r| r.to_string()), Some(req));
    }
}
