//! Forgetting an agent (`society rm`). The request's batch records the
//! decision — `removed` in `registry.jsonl`, `agent_removed` in the system
//! events — and then, on this thread, which owns every slot:
//!
//! 1. the agent is held (nothing starts it again) and, if it runs, stopped
//!    through the normal stop path (SIGTERM, SIGKILL after `grace`);
//! 2. once it is down, what it sent is routed, unless a stalled batch still
//!    names its files (it resumes against them where they are, so the move
//!    waits for it);
//! 3. under the agent's own lock — no process can hold the folder while it
//!    moves, and one found holding it is adopted and stopped first — the
//!    folder is renamed to `archive/agent-<id>-<stamp>/` and its rotated
//!    segments (`archive/agent-<id>/`) into it as `segments/`;
//! 4. the slot, its watches and its router state are dropped: messages to it
//!    are undeliverable like those to any unknown agent, and a later agent
//!    of the same id starts from nothing.
//!
//! A crash anywhere in 1–4 leaves the `removed` record and (part of) the
//! folder: [`Supervisor::recover_removals`] finishes the move at the next
//! start. The renames are atomic, and redoing either is a no-op.

use super::lifecycle::adopt_if_alive;
use super::{Phase, Supervisor};
use society_core::lock::{HeldLock, LockError};
use society_core::{AgentId, Layout};
use std::path::Path;

impl Supervisor {
    /// A removal decided (or found undone at startup): hold the agent and
    /// move it once it is down (see the module docs).
    pub(super) fn begin_removal(&mut self, id: &AgentId, archive: String) {
        if !self.slots.contains_key(id) {
            return;
        }
        self.record(id).held = true;
        self.save_state();
        self.removing.entry(id.clone()).or_insert(archive);
        self.finish_removals();
    }

    /// Removals `registry.jsonl` records but the folders do not show yet:
    /// decided by a supervisor that stopped before it moved them.
    pub(super) fn recover_removals(&mut self) {
        let removals = match crate::registry::removals(&self.layout) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the registry for unfinished removals");
                return;
            }
        };
        for (id, removal) in removals {
            if self.slots.contains_key(&id) {
                self.begin_removal(&id, removal.archive);
            } else {
                // The folder moved; its segments may not have.
                let target = self.layout.state_dir().join(&removal.archive);
                if let Err(e) = move_segments(&self.layout, &id, &target) {
                    tracing::error!(agent = %id, error = %e, "failed to archive the segments of a removed agent");
                }
            }
        }
    }

    /// Moves every agent being removed that is down by now.
    pub(super) fn finish_removals(&mut self) {
        let ids: Vec<AgentId> = self.removing.keys().cloned().collect();
        for id in ids {
            if self.try_remove(&id) {
                self.removing.remove(&id);
                self.status_dirty = true;
            }
        }
    }

    /// One step of a removal; whether it is over.
    fn try_remove(&mut self, id: &AgentId) -> bool {
        let Some(slot) = self.slots.get_mut(id) else {
            return true;
        };
        match slot.phase {
            Phase::Up(_) => {
                self.stop(id, "remove");
                return false;
            }
            Phase::Stopping { .. } => return false,
            Phase::Backoff { .. } => slot.phase = Phase::Down,
            Phase::Down | Phase::Failed | Phase::Broken { .. } => {}
        }
        let paths = slot.paths.clone();
        if self.stalls_on(id, &paths.dir) {
            return false;
        }
        self.route(id);
        let lock = match HeldLock::try_acquire(&paths.lock()) {
            Ok(lock) => Some(lock),
            Err(LockError::Held { .. }) => {
                if let Some(slot) = self.slots.get_mut(id) {
                    adopt_if_alive(slot, &mut self.pids, &mut self.activity);
                }
                return false;
            }
            // The folder is gone already (a crash after the move, or by hand).
            Err(_) if !paths.dir.exists() => None,
            Err(e) => {
                tracing::error!(agent = %id, error = %e, "cannot lock the folder to remove it; retrying");
                return false;
            }
        };
        let target = self.layout.state_dir().join(&self.removing[id]);
        let moved = move_folder(&paths.dir, &target)
            .and_then(|()| move_segments(&self.layout, id, &target));
        drop(lock);
        if let Err(e) = moved {
            tracing::error!(agent = %id, error = %e, "failed to move the folder into archive/; retrying");
            return false;
        }
        self.forget(id);
        tracing::info!(agent = %id, archive = %target.display(), "agent removed");
        true
    }

    /// Drops everything the supervisor keeps about an agent.
    fn forget(&mut self, id: &AgentId) {
        if let Some(slot) = self.slots.remove(id) {
            self.watch.remove(&slot.paths.inbox());
            self.watch.remove(&slot.paths.outbox());
        }
        self.pids.retain(|_, a| a != id);
        self.paced.remove(id);
        self.ckpt.cursors.remove(id);
        self.ckpt.segs.remove(id);
        self.ckpt.lines.remove(id.as_str());
        self.ckpt.incidents.remove(id.as_str());
        self.ckpt.agents.remove(id);
        self.save_state();
        self.status_dirty = true;
    }
}

/// Renames the folder to `target`, unless that happened already.
fn move_folder(dir: &Path, target: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if target.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists", target.display()),
        ));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(dir, target)?;
    sync_dir(target.parent())?;
    sync_dir(dir.parent())
}

/// The agent's rotated segments (`archive/agent-<id>/`) go with its folder,
/// as `segments/`: a later agent of the same id must not read them as its own.
fn move_segments(layout: &Layout, id: &AgentId, target: &Path) -> std::io::Result<()> {
    let segments = society_core::segments::archive_dir_of(layout, &layout.agent(id).inbox());
    if !segments.is_dir() || !target.is_dir() {
        return Ok(());
    }
    std::fs::rename(&segments, target.join("segments"))?;
    sync_dir(segments.parent())
}

/// A rename is durable once its directories are synced.
fn sync_dir(dir: Option<&Path>) -> std::io::Result<()> {
    match dir {
        Some(d) => std::fs::File::open(d)?.sync_all(),
        None => Ok(()),
    }
}
