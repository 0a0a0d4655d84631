//! `society deadletter list` and `retry`: the dead letters of agents, and
//! putting a dead-lettered message back into its agent's inbox once its
//! cause is fixed (a key, a quota).
//!
//! A retry re-injects the original envelope, same id, through the ordinary
//! delivery path (an append to the inbox), after appending a
//! `dead_letter_retried` record to the agent's `deadletter.jsonl`: that
//! record is what lets the agent handle an id it has already seen (see
//! `agent/redrive.rs`), and what `grep dead_letter_retried` finds. An id the
//! agent has handled is refused: it is never handled twice.

use super::ClientError;
use serde::Serialize;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, read_objects, Durability};
use society_core::kinds::event;
use society_core::{time, AgentId, Envelope, Layout, MsgId};

/// One record of an agent's `deadletter.jsonl` (`retried` records aside).
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub agent: AgentId,
    pub ts: Option<String>,
    /// `dead_lettered`, `undeliverable`, `refused` or `quarantined`.
    pub event: String,
    pub id: Option<MsgId>,
    pub from: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub reason: Option<String>,
    /// `deadletter retry` can put it back: an inbox line that was a valid
    /// envelope, kept whole, and not handled since.
    pub retryable: bool,
    /// A retry is pending: re-injected, not yet handled or dead-lettered again.
    pub retried: bool,
}

/// What a retry did.
#[derive(Debug, Clone, Serialize)]
pub struct Retried {
    pub agent: AgentId,
    pub id: MsgId,
}

/// The dead letters of `agent`, or of every agent, oldest first per agent.
pub fn list(layout: &Layout, agent: Option<&AgentId>) -> Result<Vec<DeadLetter>, ClientError> {
    let mut out = Vec::new();
    for id in agents(layout, agent)? {
        out.extend(of_agent(layout, &id)?);
    }
    Ok(out)
}

/// Puts dead letter `id` back into the inbox of the agent that holds it.
pub fn retry(layout: &Layout, id: MsgId) -> Result<Retried, ClientError> {
    let letters = list(layout, None)?;
    let Some(letter) = letters.iter().rev().find(|l| l.id == Some(id)) else {
        return Err(ClientError::NoDeadLetter {
            id,
            dir: layout.state_dir().to_path_buf(),
        });
    };
    let agent = &letter.agent;
    if handled(layout, agent, &id.to_string())? {
        return Err(ClientError::AlreadyHandled {
            id,
            agent: agent.clone(),
        });
    }
    if !letter.retryable {
        return Err(ClientError::NotRetryable {
            id,
            reason: format!(
                "a {} record, not a whole inbox message (only `dead_lettered` messages go back)",
                letter.event
            ),
        });
    }
    let env = original(layout, agent, id)?;
    reinject(layout, agent, &env)
}

/// Puts every retryable dead letter of `agent` back, oldest first.
pub fn retry_all(layout: &Layout, agent: &AgentId) -> Result<Vec<Retried>, ClientError> {
    let mut done = Vec::new();
    for letter in list(layout, Some(agent))? {
        let Some(id) = letter.id.filter(|_| letter.retryable && !letter.retried) else {
            continue;
        };
        if done.iter().any(|d: &Retried| d.id == id) {
            continue;
        }
        done.push(reinject(layout, agent, &original(layout, agent, id)?)?);
    }
    Ok(done)
}

fn agents(layout: &Layout, agent: Option<&AgentId>) -> Result<Vec<AgentId>, ClientError> {
    let all = super::send::agents(layout, None)?;
    match agent {
        None => Ok(all),
        Some(a) if all.contains(a) => Ok(vec![a.clone()]),
        Some(a) => Err(ClientError::NoAgent {
            id: a.clone(),
            dir: layout.state_dir().to_path_buf(),
            sending: false,
        }),
    }
}

fn records(layout: &Layout, agent: &AgentId) -> Result<Vec<Value>, ClientError> {
    Ok(read_objects(&layout.agent(agent).deadletter(), &mut 0)?)
}

fn handled(layout: &Layout, agent: &AgentId, id: &str) -> Result<bool, ClientError> {
    Ok(read_objects(&layout.agent(agent).activity(), &mut 0)?
        .iter()
        .any(|r| r["event"] == event::MESSAGE_HANDLED && r["id"].as_str() == Some(id)))
}

fn of_agent(layout: &Layout, agent: &AgentId) -> Result<Vec<DeadLetter>, ClientError> {
    let records = records(layout, agent)?;
    let text = |r: &Value, k: &str| r[k].as_str().map(str::to_string);
    let mut out: Vec<DeadLetter> = Vec::new();
    for r in &records {
        let id = r["id"].as_str().and_then(|s| s.parse::<MsgId>().ok());
        if r["event"] == event::DEAD_LETTER_RETRIED {
            // The retry is pending until a later record about the id.
            for l in out.iter_mut().filter(|l| l.id.is_some() && l.id == id) {
                l.retried = true;
            }
            continue;
        }
        let env = r["line"]
            .as_str()
            .and_then(|line| Envelope::parse(line.as_bytes()).ok());
        let retryable = r["event"] == event::DEAD_LETTERED
            && r["truncated"] != true
            && env.as_ref().is_some_and(|e| Some(e.id) == id);
        for l in out.iter_mut().filter(|l| l.id.is_some() && l.id == id) {
            l.retried = false;
        }
        out.push(DeadLetter {
            agent: agent.clone(),
            ts: text(r, "ts"),
            event: text(r, "event").unwrap_or_default(),
            id,
            from: env
                .as_ref()
                .map(|e| e.from.to_string())
                .or_else(|| text(r, "from")),
            kind: env
                .as_ref()
                .map(|e| e.kind.clone())
                .or_else(|| text(r, "type")),
            reason: text(r, "reason"),
            retryable,
            retried: false,
        });
    }
    // Nothing handled goes back.
    for l in out.iter_mut().filter(|l| l.retryable) {
        if let Some(id) = l.id {
            l.retryable = !handled(layout, agent, &id.to_string())?;
        }
    }
    Ok(out)
}

/// The envelope of the last `dead_lettered` record of `id`.
fn original(layout: &Layout, agent: &AgentId, id: MsgId) -> Result<Envelope, ClientError> {
    let key = id.to_string();
    records(layout, agent)?
        .iter()
        .rev()
        .filter(|r| r["event"] == event::DEAD_LETTERED && r["id"].as_str() == Some(key.as_str()))
        .find_map(|r| {
            r["line"]
                .as_str()
                .and_then(|l| Envelope::parse(l.as_bytes()).ok())
        })
        .ok_or_else(|| ClientError::NoDeadLetter {
            id,
            dir: layout.agent(agent).deadletter(),
        })
}

/// The record first (so the agent, reading the line, knows it is a retry),
/// then the line, as the orchestrator's `send` appends it.
fn reinject(layout: &Layout, agent: &AgentId, env: &Envelope) -> Result<Retried, ClientError> {
    let paths = layout.agent(agent);
    let rec = json!({"ts": time::now_rfc3339(), "event": event::DEAD_LETTER_RETRIED, "agent": agent,
        "gen": 0, "id": env.id, "from": env.from, "type": env.kind, "by": "orchestrator"});
    let bytes = serde_json::to_vec(&rec).expect("a JSON map always serialises");
    // Measured before either write: the record must not say "retried" of a
    // line the inbox then refuses.
    let max = society_core::atomic::read_json::<society_core::state::AgentConfig>(
        &paths.config(),
        "agent config",
    )
    .ok()
    .flatten()
    .map_or(society_core::DEFAULT_MAX_RECORD, |c| c.policy.max_record);
    let line = env.to_line();
    if line.len() + 1 > max {
        return Err(ClientError::Oversize {
            id: agent.clone(),
            bytes: line.len() + 1,
            max,
        });
    }
    append_one(
        &paths.deadletter(),
        &bytes,
        Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )?;
    append_one(&paths.inbox(), &line, Durability::Durable, max)?;
    Ok(Retried {
        agent: agent.clone(),
        id: env.id,
    })
}
