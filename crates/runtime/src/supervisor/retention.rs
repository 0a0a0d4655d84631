//! The supervisor's share of retention (`society_core::segments`): at every
//! scan it rotates into `archive/` the files it consumes once fully routed
//! and big enough — every agent's outbox, its own inbox — and the files it
//! writes that nobody consumes, by size: the orchestrator's inbox, the
//! mirrors, its activity log; and `outbound.jsonl` once the federation
//! bridge has had all of it acknowledged (`Bridge::rotate_outbound`).
//! Compression runs on a thread of its own (a 64 MiB segment takes a
//! fraction of a second), so routing never waits.
//!
//! The contract that makes it crash-safe: a file is rotated only at the
//! cursor already durable in `checkpoint.json`, so after a crash a segment
//! numbered at the stored `seg` means "rotated exactly at the stored
//! cursor" and reading goes on at the start of the live file.
//!
//! The orchestrator's inbox holds the approval requests, which are pending
//! until answered however old they are: each of its segments gets a
//! sidecar `<stem>.<seq>.requests.jsonl` with just its requests, so reading
//! the pending approvals never decompresses the history.

use super::commit::Source;
use super::plan::INBOX_KEY;
use super::{file_len, Supervisor};
use crate::approvals::requests_sidecar;
use serde_json::json;
use society_core::segments::{self, Segment};
use society_core::state::{AgentCheckpoint, Policy};
use society_core::{atomic, AgentId, FormatError, IoError, Layout};
use std::path::Path;

/// Writes the sidecar of a segment (atomically), unless it exists.
fn write_requests_sidecar(seg: &Segment) -> Result<(), IoError> {
    let sidecar = requests_sidecar(seg);
    if sidecar.exists() {
        return Ok(());
    }
    let mut out = Vec::new();
    for line in segments::lines(seg)? {
        let line = line?;
        let is_request = serde_json::from_slice::<serde_json::Value>(&line)
            .is_ok_and(|v| v["type"] == society_core::kinds::message::APPROVAL_REQUEST);
        if is_request {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    atomic::write_bytes(&sidecar, &out, true)
}

/// Finishes what a rotation left: the sidecar (for the orchestrator's
/// inbox), then compression. Runs off the supervisor's thread.
fn finish_segment(seg: Segment, requests: bool) {
    if requests {
        if let Err(e) = write_requests_sidecar(&seg) {
            tracing::error!(error = %e, "failed to index a segment's approval requests");
        }
    }
    if let Err(e) = segments::compress(&seg) {
        tracing::error!(error = %e, "failed to compress a segment; it stays readable as it is");
    }
}

fn in_background(seg: Segment, requests: bool) {
    let spawned = std::thread::Builder::new()
        .name("archive".into())
        .spawn(move || finish_segment(seg, requests));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the archive thread");
    }
}

/// At startup: every segment a crash left uncompressed (or without its
/// sidecar) is finished, in the background.
pub(super) fn finish_archive(layout: &Layout) {
    let layout = layout.clone();
    let spawned = std::thread::Builder::new()
        .name("archive".into())
        .spawn(move || {
            let mut lives = vec![
                layout.orchestrator_inbox(),
                layout.supervisor_inbox(),
                layout.supervisor_activity(),
                layout.agent_to_agent(),
                layout.system_events(),
                layout.federation_outbound(),
            ];
            if let Ok(ids) = layout.agent_ids() {
                for id in ids {
                    let p = layout.agent(&id);
                    lives.extend([p.inbox(), p.outbox(), p.activity(), p.tools()]);
                }
            }
            for live in lives {
                let requests = live == layout.orchestrator_inbox();
                for seg in segments::list(&layout, &live).unwrap_or_default() {
                    if !seg.compressed || (requests && !requests_sidecar(&seg).exists()) {
                        finish_segment(seg, requests);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the archive thread");
    }
}

impl Supervisor {
    /// After a crash between a rotation and the checkpoint recording it: a
    /// source with more segments than its stored `seg` was rotated at its
    /// stored cursor, fully routed; reading goes on at 0 of the live file.
    pub(super) fn reconcile_segments(&mut self) -> Result<(), FormatError> {
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            let live = segments::live_seq(&self.layout, &self.slots[&id].paths.outbox())?;
            if live > self.ckpt.segs.get(&id).copied().unwrap_or(0) {
                self.ckpt.segs.insert(id.clone(), live);
                self.ckpt.cursors.insert(id.clone(), 0);
                self.ckpt.lines.remove(id.as_str());
                self.forget_batches(&Source::Outbox(id));
            }
        }
        let live = segments::live_seq(&self.layout, &self.layout.supervisor_inbox())?;
        if live > self.ckpt.inbox_seg {
            self.ckpt.inbox_seg = live;
            self.ckpt.inbox_offset = 0;
            self.ckpt.lines.remove(INBOX_KEY);
            self.forget_batches(&Source::Inbox);
        }
        Ok(())
    }

    /// A rotated source's batches on disk had all landed (it was rotated
    /// fully routed); their ranges name the old file.
    fn forget_batches(&mut self, source: &Source) {
        if self
            .ckpt
            .pending
            .as_ref()
            .is_some_and(|p| Source::of(p) == *source)
        {
            self.ckpt.pending = None;
        }
        self.ckpt.stalled.retain(|p| Source::of(p) != *source);
    }

    /// Rotates what is due. Called from the scan.
    pub(super) fn rotate_due(&mut self) {
        if self.ckpt.pending.is_some() {
            return;
        }
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.rotate_outbox(&id) {
                tracing::error!(agent = %id, error = %e, "failed to rotate an outbox");
            }
        }
        if let Err(e) = self.rotate_inbox() {
            tracing::error!(error = %e, "failed to rotate the supervisor's inbox");
        }
        let policy = self.default_policy.clone();
        // Messages to other societies, once the NATS server has all of them
        // (a waiting batch resumes from the length it recorded).
        let outbound = self.layout.federation_outbound();
        if let Some(bridge) = self
            .bridge
            .as_ref()
            .filter(|_| !self.stalled_touches(&outbound))
        {
            match bridge.rotate_outbound(&self.layout, policy.rotate_bytes) {
                Ok(Some((seg, bytes))) => self.archived(&outbound, seg, bytes, false),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "failed to rotate outbound.jsonl"),
            }
        }
        let logs = [
            self.layout.orchestrator_inbox(),
            self.layout.agent_to_agent(),
            self.layout.system_events(),
            self.layout.supervisor_activity(),
        ];
        for path in logs {
            let len = file_len(&path);
            // A waiting batch resumes from the length it recorded.
            if len < policy.rotate_bytes || self.stalled_touches(&path) {
                continue;
            }
            match segments::rotate(&self.layout, &path, len) {
                Ok(Some(seg)) => {
                    let requests = path == self.layout.orchestrator_inbox();
                    self.archived(&path, seg, len, requests);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(file = %path.display(), error = %e, "failed to rotate"),
            }
        }
    }

    fn due(&self, policy: &Policy, key: &str, cursor: u64, path: &Path) -> bool {
        let lines = self.ckpt.lines.get(key).copied().unwrap_or(0);
        cursor > 0
            && file_len(path) == cursor
            && (cursor >= policy.rotate_bytes || lines >= policy.rotate_lines)
    }

    fn rotate_outbox(&mut self, id: &AgentId) -> Result<(), FormatError> {
        let slot = &self.slots[id];
        let (outbox, policy) = (slot.paths.outbox(), slot.cfg.policy.clone());
        let cursor = self.ckpt.cursors.get(id).copied().unwrap_or(0);
        if self.ckpt.incidents.contains_key(id.as_str())
            || self.is_stalled(&Source::Outbox(id.clone()))
            || self.paced.contains_key(id)
            || !self.due(&policy, id.as_str(), cursor, &outbox)
        {
            return Ok(());
        }
        let paths = slot.paths.clone();
        // `rotate` needs the cursor durable.
        self.save_checkpoint()?;
        // The agent keeps outbox positions while a message is in flight (to
        // find its earlier attempt's outputs): not while one is. Asked under
        // the outbox's lock, which the agent holds while it records one.
        let idle = || {
            AgentCheckpoint::read(&paths)
                .ok()
                .flatten()
                .is_some_and(|c| c.in_flight.is_none() && c.replay.is_none())
        };
        if let Some(seg) = segments::rotate_if(&self.layout, &outbox, cursor, idle)? {
            society_core::fault::point("supervisor.outbox.rotated");
            self.ckpt.segs.insert(id.clone(), seg.seq + 1);
            self.ckpt.cursors.insert(id.clone(), 0);
            self.ckpt.lines.remove(id.as_str());
            self.save_state();
            self.archived(&outbox, seg, cursor, false);
        }
        Ok(())
    }

    fn rotate_inbox(&mut self) -> Result<(), FormatError> {
        let inbox = self.layout.supervisor_inbox();
        let cursor = self.ckpt.inbox_offset;
        let policy = self.default_policy.clone();
        if self.ckpt.incidents.contains_key(INBOX_KEY)
            || self.is_stalled(&Source::Inbox)
            || !self.due(&policy, INBOX_KEY, cursor, &inbox)
        {
            return Ok(());
        }
        self.save_checkpoint()?;
        if let Some(seg) = segments::rotate(&self.layout, &inbox, cursor)? {
            society_core::fault::point("supervisor.inbox.rotated");
            self.ckpt.inbox_seg = seg.seq + 1;
            self.ckpt.inbox_offset = 0;
            self.ckpt.lines.remove(INBOX_KEY);
            self.save_state();
            self.archived(&inbox, seg, cursor, false);
        }
        Ok(())
    }

    /// A file was rotated: a new live file to watch, a record, and the
    /// segment finished in the background.
    fn archived(&mut self, live: &Path, seg: Segment, bytes: u64, requests: bool) {
        // The watch followed the old inode into archive/: watch the new file.
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(live);
        self.watch.refresh();
        self.activity.event(
            society_core::kinds::event::ROTATED,
            json!({"file": live, "segment": seg.path, "seq": seg.seq, "bytes": bytes}),
        );
        in_background(seg, requests);
    }
}
