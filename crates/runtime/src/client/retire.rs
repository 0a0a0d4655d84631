//! `society retire AGENT`: an agent leaves for good. Under the folder's
//! lock (so no process runs it, and `spawn --purpose` cannot be claiming it)
//! `metadata.json` records `retired {at, reason}` — from then on no spawn
//! reuses the folder — and `registry.jsonl` a `retired` record; then the
//! folder goes the way of `society rm` ([`super::remove`]): the supervisor
//! moves it whole into `archive/agent-<id>-<stamp>/`. A crash between the
//! two leaves a retired folder in place, which `retire` (or `rm`) finishes.

use super::{agents, remove, ClientError};
use crate::metadata;
use society_core::jsonl::{append_one, Durability};
use society_core::lock::{HeldLock, LockError};
use society_core::reuse::Retired;
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, Layout};
use std::time::Duration;

/// Marks the agent retired and asks the supervisor to archive its folder.
/// A running agent is refused unless `force` (the stop's timeout).
pub fn request(
    layout: &Layout,
    id: &AgentId,
    reason: Option<&str>,
    force: Option<Duration>,
) -> Result<remove::Asked, ClientError> {
    let paths = layout.agent(id);
    let lock = match HeldLock::try_acquire(&paths.lock()) {
        Ok(l) => l,
        Err(LockError::Held { .. }) => {
            let Some(timeout) = force else {
                return Err(ClientError::Running { id: id.clone() });
            };
            agents::stop(layout, id, Some(timeout))?;
            match HeldLock::try_acquire(&paths.lock()) {
                Ok(l) => l,
                Err(LockError::Held { .. }) => return Err(ClientError::Running { id: id.clone() }),
                Err(LockError::Io(e)) => return Err(e.into()),
            }
        }
        Err(LockError::Io(e)) => return Err(e.into()),
    };
    let cfg =
        atomic::read_json::<AgentConfig>(&paths.config(), "agent config")?.ok_or_else(|| {
            ClientError::Missing {
                path: paths.config(),
            }
        })?;
    let mut meta = metadata::load_or_new(&paths, &cfg);
    let now = society_core::time::now_rfc3339();
    if meta.retired.is_none() {
        meta.retired = Some(Retired {
            at: now,
            reason: reason.map(str::to_string),
        });
        metadata::write(&paths, &meta)?;
        let rec = crate::activity::record(
            society_core::kinds::event::RETIRED,
            id.as_str(),
            0,
            serde_json::json!({"reason": reason, "purposes": meta.total_purposes_served}),
        );
        append_one(
            &layout.registry(),
            &rec,
            Durability::Durable,
            society_core::DEFAULT_MAX_RECORD,
        )?;
    }
    drop(lock);
    // Retired now: should the supervisor have started it since (mail),
    // stopping it is what retiring means.
    remove::request(layout, id, Some(force.unwrap_or(Duration::from_secs(30))))
}
