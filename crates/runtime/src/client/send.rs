//! Sending as the orchestrator: resolving the recipient, appending to its
//! inbox, mirroring to `messages/agent-to-agent.jsonl`, and asking the
//! supervisor to record the message in its case log (DESIGN.md: human
//! messages are delivered by the client itself, not routed).

use super::ClientError;
use crate::control::{self, Request};
use serde_json::Value;
use society_core::jsonl::{append_one, Durability};
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, Envelope, Layout, Party};

/// A message delivered to one agent.
#[derive(Debug)]
pub struct Delivered {
    pub agent: AgentId,
    /// Things the sender should know, none of which undoes the delivery
    /// (the recipient cannot run until repaired; the mirror failed).
    pub warnings: Vec<String>,
}

/// What a broadcast did: every recipient gets its own copy, and one
/// recipient's refusal costs the others nothing.
#[derive(Debug)]
pub struct Broadcast {
    pub sent: Vec<Delivered>,
    pub failed: Vec<(AgentId, ClientError)>,
}

/// Refuses a message type outside `[a-z0-9_.-]{1,64}`.
pub fn check_type(kind: &str) -> Result<(), ClientError> {
    if society_core::envelope::valid_type(kind) {
        Ok(())
    } else {
        Err(ClientError::BadType { kind: kind.into() })
    }
}

/// Resolves the recipient and appends the message to its inbox.
pub fn deliver(layout: &Layout, env: &Envelope) -> Result<Delivered, ClientError> {
    let id = resolve(layout, env)?;
    let paths = layout.agent(&id);
    let mut warnings = Vec::new();
    let max_record = match atomic::read_json::<AgentConfig>(&paths.config(), "agent config") {
        Ok(Some(cfg)) => cfg.policy.max_record,
        Ok(None) => {
            return Err(ClientError::NoAgent {
                id,
                dir: layout.state_dir().to_path_buf(),
                sending: true,
            })
        }
        // A broken folder still receives mail: it waits in the inbox.
        Err(e) => {
            warnings.push(format!(
                "agent {id} cannot run until repaired ({e}); the message waits in its inbox"
            ));
            society_core::DEFAULT_MAX_RECORD
        }
    };
    let line = env.to_line();
    if line.len() + 1 > max_record {
        return Err(ClientError::Oversize {
            id,
            bytes: line.len() + 1,
            max: max_record,
        });
    }
    append_one(&paths.inbox(), &line, Durability::Durable, max_record)?;
    // The message is delivered: the mirror is a copy for `tail` and `grep`,
    // and failing to write it must not make the sender believe it was not.
    if let Err(e) = append_one(
        &layout.agent_to_agent(),
        &line,
        Durability::Flushed,
        usize::MAX,
    ) {
        warnings.push(format!(
            "message {} is delivered to {id}, but it is missing from {}: {e}",
            env.id,
            layout.agent_to_agent().display()
        ));
    }
    if env.case.is_some() {
        // The supervisor is the only writer of case logs: it records this
        // message in the case log when it reads the request (at once, or
        // when it next starts).
        let request = Request::Reflect {
            message: Box::new(env.clone()),
            delivered_to: id.clone(),
        };
        control::send(layout, &request)?;
    }
    Ok(Delivered {
        agent: id,
        warnings,
    })
}

/// The agent a message goes to: its id if that agent exists, or one agent
/// of `role:R` (the same pick the router makes).
pub fn resolve(layout: &Layout, env: &Envelope) -> Result<AgentId, ClientError> {
    match &env.to {
        Party::Agent(id) => {
            if layout.agent(id).config().exists() {
                Ok(id.clone())
            } else {
                Err(ClientError::NoAgent {
                    id: id.clone(),
                    dir: layout.state_dir().to_path_buf(),
                    sending: true,
                })
            }
        }
        Party::Role(role) => {
            let mut candidates = Vec::new();
            for id in layout.agent_ids()? {
                // An unreadable config (a broken agent) is no candidate.
                let cfg: Option<AgentConfig> =
                    atomic::read_json(&layout.agent(&id).config(), "agent config")
                        .ok()
                        .flatten();
                if cfg.is_some_and(|c| c.role == *role) {
                    candidates.push(id);
                }
            }
            let refs: Vec<&AgentId> = candidates.iter().collect();
            crate::roles::pick(&refs, env)
                .cloned()
                .ok_or_else(|| ClientError::NoRole { role: role.clone() })
        }
        to @ (Party::Orchestrator | Party::Supervisor) => {
            Err(ClientError::NotAnAgent { to: to.clone() })
        }
    }
}

/// Every agent with a config, or every agent of `role`, sorted by id.
pub fn agents(layout: &Layout, role: Option<&str>) -> Result<Vec<AgentId>, ClientError> {
    let mut out = Vec::new();
    for id in layout.agent_ids()? {
        let cfg: Option<AgentConfig> =
            atomic::read_json(&layout.agent(&id).config(), "agent config")?;
        if cfg.is_some_and(|c| role.is_none_or(|r| c.role == r)) {
            out.push(id);
        }
    }
    Ok(out)
}

/// One message from the orchestrator to every agent (or every agent of
/// `role`), each copy an ordinary message with its own id.
pub fn broadcast(
    layout: &Layout,
    role: Option<&str>,
    kind: &str,
    body: &Value,
) -> Result<Broadcast, ClientError> {
    if let Some(role) = role {
        society_core::id::validate_role(role)?;
    }
    check_type(kind)?;
    let targets = agents(layout, role)?;
    if targets.is_empty() {
        return Err(ClientError::NoRecipients {
            role: role.map(String::from),
            dir: layout.state_dir().to_path_buf(),
        });
    }
    let mut out = Broadcast {
        sent: Vec::new(),
        failed: Vec::new(),
    };
    for id in targets {
        let env = Envelope::new(
            Party::Orchestrator,
            Party::Agent(id.clone()),
            kind,
            body.clone(),
        );
        match deliver(layout, &env) {
            Ok(d) => out.sent.push(d),
            Err(e) => out.failed.push((id, e)),
        }
    }
    Ok(out)
}
