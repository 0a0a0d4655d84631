//! Every agent's decisions, folded from its `decisions.jsonl`: one
//! `assessed` record opens a decision, later records (`approval_requested`,
//! `debate_requested`, `resolved`, `reviewed`) say what became of it.
//!
//! The agent's runtime is the only writer; this side only reads, so it must
//! take whatever it finds: unknown events and fields are ignored, torn or
//! invalid lines skipped, and a record for a decision whose `assessed` line
//! is missing (cut by `--since`, or never written) is dropped rather than
//! guessed at.

use super::ClientError;
use serde::Serialize;
use serde_json::Value;
use society_core::kinds::decision_log as event;
use society_core::{AgentId, Layout};
use std::collections::HashMap;
use std::time::SystemTime;

/// One decision, as its agent's log tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub id: String,
    /// The agent whose folder holds the log.
    pub agent: String,
    /// When it was assessed.
    pub ts: String,
    pub case: Option<String>,
    pub decision_type: String,
    pub level: String,
    pub rule: Option<String>,
    pub confidence: Option<f64>,
    /// The proposal's plan, as text.
    pub plan: String,
    pub revision: Option<u64>,
    /// The decision this one revises.
    pub parent: Option<String>,
    /// The approval request it sent (`approval_requested`), if any.
    pub approval_request: Option<String>,
    pub asked_approval: bool,
    pub debated: bool,
    /// The last `resolved` record.
    pub resolved: Option<Resolved>,
    /// The last `reviewed` record.
    pub reviewed: Option<Reviewed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub ts: String,
    pub approved: bool,
    pub approver: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reviewed {
    pub ts: String,
    pub ok: bool,
}

impl Decision {
    /// An autonomous decision the agent carried out on its own
    /// (`resolved` by `self`), not yet reviewed by the orchestrator.
    pub fn unreviewed_autonomous(&self) -> bool {
        self.level == society_core::governance::Level::Autonomous.as_str()
            && self.self_resolved()
            && self.reviewed.is_none()
    }

    /// Resolved by the agent itself.
    pub fn self_resolved(&self) -> bool {
        self.resolved
            .as_ref()
            .is_some_and(|r| r.approver.as_deref() == Some(event::SELF_APPROVER))
    }

    pub fn assessed_at(&self) -> Option<SystemTime> {
        society_core::time::parse_rfc3339(&self.ts)
    }
}

/// Every decision of the society, by assessment time (file order among
/// equal or unreadable times), and the number of refused proposals.
#[derive(Debug, Default)]
pub struct Log {
    pub decisions: Vec<Decision>,
    pub refused: u64,
}

/// Reads every agent's `decisions.jsonl`. `since` keeps the decisions
/// assessed at or after it (and the refusals recorded since).
pub fn read(layout: &Layout, since: Option<SystemTime>) -> Result<Log, ClientError> {
    let mut log = Log::default();
    for id in layout.agent_ids()? {
        let (decisions, refused) = read_agent(layout, &id, since)?;
        log.decisions.extend(decisions);
        log.refused += refused;
    }
    // Stable: file order stays among equal times.
    log.decisions
        .sort_by_key(|d| d.assessed_at().unwrap_or(SystemTime::UNIX_EPOCH));
    Ok(log)
}

/// One agent's decisions in file order, and its refused proposals.
pub fn read_agent(
    layout: &Layout,
    id: &AgentId,
    since: Option<SystemTime>,
) -> Result<(Vec<Decision>, u64), ClientError> {
    let path = layout.agent(id).decisions();
    let records = society_core::segments::read_objects_all(layout, &path)?;
    Ok(fold(id.as_str(), &records, since))
}

/// Folds one agent's records (pure, for the tests).
pub fn fold(agent: &str, records: &[Value], since: Option<SystemTime>) -> (Vec<Decision>, u64) {
    let after = |ts: &str| {
        since.is_none_or(|s| society_core::time::parse_rfc3339(ts).is_some_and(|t| t >= s))
    };
    let mut out: Vec<Decision> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut refused = 0;
    for r in records {
        let s = |k: &str| r.get(k).and_then(Value::as_str);
        let ts = s("ts").unwrap_or_default();
        let kind = s("event").unwrap_or_default();
        if kind == event::REFUSED {
            refused += u64::from(after(ts));
            continue;
        }
        let Some(id) = s("decision") else { continue };
        if kind == event::ASSESSED {
            if at.contains_key(id) || !after(ts) {
                continue;
            }
            at.insert(id.to_string(), out.len());
            out.push(assessed(agent, id, r));
            continue;
        }
        let Some(d) = at.get(id).map(|&i| &mut out[i]) else {
            continue;
        };
        match kind {
            event::APPROVAL_REQUESTED => {
                d.asked_approval = true;
                d.approval_request = s("request")
                    .map(str::to_string)
                    .or(d.approval_request.take());
            }
            event::DEBATE_REQUESTED => d.debated = true,
            event::RESOLVED => {
                d.resolved = Some(Resolved {
                    ts: ts.to_string(),
                    approved: r.get("approved").and_then(Value::as_bool) == Some(true),
                    approver: s("approver").map(str::to_string),
                    outcome: s("outcome").map(str::to_string),
                });
            }
            event::REVIEWED => {
                d.reviewed = Some(Reviewed {
                    ts: ts.to_string(),
                    ok: r.get("ok").and_then(Value::as_bool) == Some(true),
                });
            }
            _ => {}
        }
    }
    (out, refused)
}

fn assessed(agent: &str, id: &str, r: &Value) -> Decision {
    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let plan = match r.get("context").and_then(|c| c.get("plan")) {
        Some(Value::String(p)) => p.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Decision {
        id: id.to_string(),
        // The folder is the identity (and where a review is sent), whatever
        // the record says.
        agent: agent.to_string(),
        ts: s("ts").unwrap_or_default(),
        case: s("case"),
        decision_type: s("decision_type").unwrap_or_else(|| "-".into()),
        level: s("level").unwrap_or_else(|| "-".into()),
        rule: s("rule"),
        confidence: r
            .get("scores")
            .and_then(|x| x.get("confidence"))
            .and_then(Value::as_f64),
        plan,
        revision: r.get("revision").and_then(Value::as_u64),
        parent: s("parent"),
        approval_request: None,
        asked_approval: false,
        debated: false,
        resolved: None,
        reviewed: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn folds_events_onto_their_decision_and_skips_what_it_cannot_place() {
        let recs = [
            json!({"ts": "2026-12-01T03:00:00.000Z", "event": "assessed", "decision": "d1",
                   "agent": "director", "case": "ep-1", "decision_type": "lighting",
                   "level": "autonomous", "scores": {"confidence": 0.7},
                   "context": {"plan": {"contrast": "low"}}, "revision": 1, "parent": null,
                   "future_field": 1}),
            json!({"ts": "2026-12-01T03:00:01.000Z", "event": "resolved", "decision": "d1",
                   "approved": true, "approver": "self", "outcome": "executed"}),
            json!({"ts": "2026-12-01T03:00:02.000Z", "event": "resolved", "decision": "ghost",
                   "approved": true, "approver": "self"}),
            json!({"ts": "2026-12-01T03:00:03.000Z", "event": "something_new", "decision": "d1"}),
            json!({"ts": "2026-12-01T03:00:04.000Z", "event": "refused", "msg": "m",
                   "error": "invalid decision proposal"}),
            json!({"ts": "2026-12-01T03:00:05.000Z", "event": "assessed", "decision": "d2",
                   "level": "requires_approval", "decision_type": "budget", "parent": "d1"}),
            json!({"ts": "2026-12-01T03:00:06.000Z", "event": "approval_requested",
                   "decision": "d2", "request": "r1"}),
        ];
        let (ds, refused) = fold("director", &recs, None);
        assert_eq!(refused, 1);
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].plan, r#"{"contrast":"low"}"#);
        assert_eq!(ds[0].confidence, Some(0.7));
        assert!(ds[0].unreviewed_autonomous());
        assert!(!ds[0].asked_approval);
        assert_eq!(ds[1].parent.as_deref(), Some("d1"));
        assert_eq!(ds[1].approval_request.as_deref(), Some("r1"));
        assert!(ds[1].asked_approval && !ds[1].unreviewed_autonomous());

        let since = society_core::time::parse_rfc3339("2026-12-01T03:00:05.000Z");
        let (ds, refused) = fold("director", &recs, since);
        assert_eq!((ds.len(), refused), (1, 0), "{ds:?}");
        assert_eq!(ds[0].id, "d2");

        let mut reviewed = recs.to_vec();
        reviewed.push(json!({"ts": "t", "event": "reviewed", "decision": "d1", "ok": false}));
        let (ds, _) = fold("director", &reviewed, None);
        assert!(!ds[0].unreviewed_autonomous());
        assert_eq!(ds[0].reviewed.as_ref().map(|r| r.ok), Some(false));
    }
}
