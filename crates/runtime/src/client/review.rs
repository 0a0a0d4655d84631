//! The orchestrator's after-the-fact review of autonomous decisions
//! (SOCIETY.md §2 item 2): an agent acts alone on an autonomous decision and
//! logs it `resolved` by `self`; `society review` lists those not yet
//! reviewed and sends the agent a `decision_review` message with the
//! verdict. The agent's runtime logs it as a `reviewed` record and learns
//! from it; this side never writes `decisions.jsonl`.
//!
//! A verdict sent but not yet logged by the agent (it waits in the inbox)
//! counts as a review already: the list leaves the decision out and a second
//! verdict is refused, so one decision never gets two.

use super::decisions::{self, Decision};
use super::send;
use super::ClientError;
use serde::Serialize;
use serde_json::{json, Value};
use society_core::kinds::message;
use society_core::{AgentId, Envelope, Layout, MsgId, Party};
use std::collections::{HashMap, HashSet};

/// The verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub ok: bool,
    pub feedback: Option<String>,
    /// The result's quality, 0 to 1.
    pub quality: Option<f64>,
}

/// What `review` sent.
#[derive(Debug, Serialize)]
pub struct Sent {
    pub decision: String,
    pub agent: AgentId,
    pub message: MsgId,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The unreviewed autonomous decisions (of one agent, or all), oldest first.
pub fn unreviewed(layout: &Layout, agent: Option<&AgentId>) -> Result<Vec<Decision>, ClientError> {
    let all = match agent {
        Some(id) => {
            if !layout.agent(id).dir.is_dir() {
                return Err(ClientError::NoAgent {
                    id: id.clone(),
                    dir: layout.state_dir().to_path_buf(),
                    sending: false,
                });
            }
            decisions::read_agent(layout, id, None)?.0
        }
        None => decisions::read(layout, None)?.decisions,
    };
    let mut out = Vec::new();
    // Each agent's inbox is read once, whatever the order of its decisions.
    let mut pending: HashMap<String, HashSet<String>> = HashMap::new();
    for d in all.into_iter().filter(Decision::unreviewed_autonomous) {
        if !pending.contains_key(&d.agent) {
            pending.insert(d.agent.clone(), pending_reviews(layout, &d.agent)?);
        }
        if !pending.get(&d.agent).is_some_and(|p| p.contains(&d.id)) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Sends the verdict on `decision` to the agent that took it.
pub fn review(layout: &Layout, decision: &str, verdict: &Verdict) -> Result<Sent, ClientError> {
    if let Some(q) = verdict.quality.filter(|q| !(0.0..=1.0).contains(q)) {
        return Err(ClientError::BadQuality { quality: q });
    }
    let d = find(layout, decision)?;
    if let Some(r) = &d.reviewed {
        return Err(ClientError::AlreadyReviewed {
            id: d.id,
            how: if r.ok { "approved" } else { "vetoed" },
            when: format!("at {}", r.ts),
        });
    }
    if pending_reviews(layout, &d.agent)?.contains(&d.id) {
        return Err(ClientError::AlreadyReviewed {
            id: d.id,
            how: "reviewed",
            when: format!("(the verdict waits in agent {}'s inbox)", d.agent),
        });
    }
    if d.level != society_core::governance::Level::Autonomous.as_str() {
        return Err(ClientError::NotReviewable {
            id: d.id,
            reason: format!(
                "it is {}, not autonomous: its approval or debate was its review",
                d.level
            ),
        });
    }
    if !d.self_resolved() {
        let reason = match &d.resolved {
            None => "it is not carried out yet (no `resolved` record)".to_string(),
            Some(r) => format!(
                "it was resolved by {}, not by the agent itself",
                r.approver.as_deref().unwrap_or("nobody")
            ),
        };
        return Err(ClientError::NotReviewable { id: d.id, reason });
    }
    let agent = AgentId::new(&d.agent)?;
    let body = json!({
        "decision": d.id,
        "ok": verdict.ok,
        "feedback": verdict.feedback,
        "quality": verdict.quality,
    });
    let env = Envelope::new(
        Party::Orchestrator,
        Party::Agent(agent.clone()),
        message::DECISION_REVIEW,
        body,
    );
    let done = send::deliver(layout, &env)?;
    Ok(Sent {
        decision: d.id,
        agent,
        message: done.message,
        warnings: done.warnings,
    })
}

/// The decision with this id, from whichever agent's log holds it.
pub fn find(layout: &Layout, decision: &str) -> Result<Decision, ClientError> {
    for id in layout.agent_ids()? {
        let (ds, _) = decisions::read_agent(layout, &id, None)?;
        if let Some(d) = ds.into_iter().find(|d| d.id == decision) {
            return Ok(d);
        }
    }
    Err(ClientError::NoDecision {
        id: decision.to_string(),
        dir: layout.state_dir().to_path_buf(),
    })
}

/// Decisions with a `decision_review` from the orchestrator in the agent's
/// inbox (its archived segments too): sent, whether or not logged yet.
fn pending_reviews(layout: &Layout, agent: &str) -> Result<HashSet<String>, ClientError> {
    let Ok(id) = AgentId::new(agent) else {
        return Ok(HashSet::new());
    };
    let inbox = layout.agent(&id).inbox();
    let mut out = HashSet::new();
    for m in society_core::segments::read_objects_all(layout, &inbox)? {
        let from_orchestrator = m["from"] == Party::Orchestrator.to_string().as_str();
        if m["type"] == message::DECISION_REVIEW && from_orchestrator {
            if let Some(d) = m["body"].get("decision").and_then(Value::as_str) {
                out.insert(d.to_string());
            }
        }
    }
    Ok(out)
}
