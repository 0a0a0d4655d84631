//! Removing an agent (`society rm`): refused while it runs unless forced
//! (then stopped first, through the normal stop path: [`agents::stop`]),
//! then a `remove` request to the supervisor, which owns every agent's slot
//! and router state and so is the one that moves the folder into
//! `archive/agent-<id>-<stamp>/` and forgets the agent (its
//! `supervisor/remove.rs` says how that stays safe against races and
//! crashes). The CLI never moves the folder itself: the router may be
//! appending to the inbox, and a batch it resumes after a crash must find
//! the files it recorded.

use super::{agents, ClientError};
use crate::config::SocietyConfig;
use crate::control::{self, Request};
use society_core::lock::{self, LockState};
use society_core::{jsonl, AgentId, Layout, MsgId};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A removal asked for, to wait on.
#[derive(Debug, Clone)]
pub struct Asked {
    pub id: AgentId,
    /// The `remove` request.
    pub request: MsgId,
    /// Where the system events stood when it was asked (a refusal is after).
    events_from: u64,
}

/// Refuses a running agent unless `force` (the stop's timeout), which stops
/// it first; then asks the supervisor to remove it.
pub fn request(
    layout: &Layout,
    id: &AgentId,
    force: Option<Duration>,
) -> Result<Asked, ClientError> {
    if matches!(lock::probe(&layout.agent(id).lock())?, LockState::Held(_)) {
        match force {
            None => return Err(ClientError::Running { id: id.clone() }),
            Some(timeout) => agents::stop(layout, id, Some(timeout))?,
        }
    }
    let events_from = std::fs::metadata(layout.system_events()).map_or(0, |m| m.len());
    let env = control::send(layout, &Request::Remove { agent: id.clone() })?;
    Ok(Asked {
        id: id.clone(),
        request: env.id,
        events_from,
    })
}

/// Waits until the supervisor has moved the folder; where it is now.
pub fn wait(layout: &Layout, asked: &Asked, timeout: Duration) -> Result<PathBuf, ClientError> {
    let deadline = Instant::now() + timeout;
    let dir = layout.agent(&asked.id).dir;
    loop {
        if !dir.exists() {
            let removal = crate::registry::removals(layout)?
                .into_iter()
                .find(|(a, _)| *a == asked.id);
            if let Some((_, r)) = removal {
                return Ok(layout.state_dir().join(r.archive));
            }
        }
        if let Some(reason) = refusal(layout, asked)? {
            return Err(ClientError::RemoveRefused {
                id: asked.id.clone(),
                reason,
            });
        }
        if Instant::now() >= deadline {
            return Err(ClientError::NotYet {
                what: format!("the supervisor has not removed agent {}", asked.id),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The supervisor's reason for refusing the request, if it did.
fn refusal(layout: &Layout, asked: &Asked) -> Result<Option<String>, ClientError> {
    let mut cursor = asked.events_from;
    let records = jsonl::read_objects(&layout.system_events(), &mut cursor)?;
    let request = asked.request.to_string();
    Ok(records
        .iter()
        .find(|r| r["event"] == "control_rejected" && r["id"] == request.as_str())
        .map(|r| {
            r["reason"]
                .as_str()
                .unwrap_or("no reason given")
                .to_string()
        }))
}

/// Is the agent declared in `society.toml`? Then the supervisor provisions
/// it again when it next starts.
pub fn declared(layout: &Layout, id: &AgentId) -> bool {
    SocietyConfig::load(&layout.society_toml())
        .and_then(|c| c.declared(&layout.society_toml()))
        .is_ok_and(|all| all.iter().any(|a| a.id == *id))
}
