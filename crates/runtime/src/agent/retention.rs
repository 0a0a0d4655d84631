//! The agent's share of retention: it rotates the files it consumes or owns
//! once they are big enough — its inbox when fully consumed, its activity and
//! tools logs by size — into numbered, compressed segments under `archive/`
//! (`society_core::segments`). Only at a quiet moment: nothing in flight, the
//! cursor durable in the checkpoint, so a crash anywhere leaves either the
//! live file untouched or a segment that ends exactly at the cursor.

use super::{Agent, AgentError};
use crate::supervisor::state::SupervisorCheckpoint;
use serde_json::json;
use society_core::segments::{self, Segment};
use society_core::state::AgentCheckpoint;
use society_core::{atomic, AgentPaths, Layout};

/// The layout of the society an agent folder belongs to
/// (`<root>/.society-agent/agent-<id>`).
pub fn layout_of(paths: &AgentPaths) -> Layout {
    let state = paths.dir.parent().unwrap_or(&paths.dir);
    Layout::at(state.parent().unwrap_or(state))
}

/// After a crash between a rotation and the checkpoint that records it, the
/// inbox has more segments than the checkpoint knows: it was rotated exactly
/// at the stored cursor (rotation refuses any other length), so reading
/// continues at the start of the live file.
pub(crate) fn reconcile(
    layout: &Layout,
    paths: &AgentPaths,
    ckpt: &mut AgentCheckpoint,
) -> Result<(), AgentError> {
    let live = segments::live_seq(layout, &paths.inbox())?;
    if live > ckpt.inbox_seg {
        ckpt.inbox_seg = live;
        ckpt.inbox_offset = 0;
        ckpt.inbox_lines = 0;
    }
    Ok(())
}

impl Agent {
    /// Rotates what is due. Called when the inbox is fully consumed.
    pub(crate) fn rotate_due(&mut self) -> Result<(), AgentError> {
        let policy = self.cfg.policy.clone();
        let quiet = self.ckpt.in_flight.is_none()
            && self.ckpt.replay.is_none()
            && self.ckpt.incident.is_none();
        let big = self.ckpt.inbox_offset >= policy.rotate_bytes
            || self.ckpt.inbox_lines >= policy.rotate_lines;
        if quiet && big && self.ckpt.inbox_offset > 0 && !self.router_writing(&self.paths.inbox()) {
            // `rotate` requires the cursor in the fsynced checkpoint.
            if self.unsettled {
                self.settle()?;
            }
            if let Some(seg) =
                segments::rotate(&self.layout, &self.paths.inbox(), self.ckpt.inbox_offset)?
            {
                society_core::fault::point("agent.inbox.rotated");
                let bytes = self.ckpt.inbox_offset;
                self.ckpt.inbox_seg = seg.seq + 1;
                self.ckpt.inbox_offset = 0;
                self.ckpt.inbox_lines = 0;
                self.settle()?;
                society_core::fault::point("agent.inbox.rotation_saved");
                // A live file for the supervisor to watch again at once.
                let _ = society_core::confine::open(
                    &self.paths.inbox(),
                    nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_APPEND
                        | nix::fcntl::OFlag::O_CREAT,
                    society_core::layout::FILE_MODE,
                );
                self.archived(&seg, bytes);
            }
        }
        for path in [self.paths.activity(), self.paths.tools()] {
            let len = super::delivery::file_len(&path)?;
            if len >= policy.rotate_bytes {
                if let Some(seg) = segments::rotate(&self.layout, &path, len)? {
                    self.archived(&seg, len);
                }
            }
        }
        Ok(())
    }

    /// Does a batch of the router that is being written (or waits to be)
    /// count on `file`'s length? Its resumption reads the file from the
    /// length it recorded, so the file must not be rotated under it. (The
    /// router records the batch before appending to the file, and the agent
    /// only rotates what it has read, so a batch that reached the file is
    /// seen here.) When in doubt, no.
    fn router_writing(&self, file: &std::path::Path) -> bool {
        let ckpt = atomic::read_json::<SupervisorCheckpoint>(
            &self.layout.supervisor_checkpoint(),
            "supervisor checkpoint",
        );
        match ckpt {
            Ok(Some(c)) => {
                c.pending
                    .iter()
                    .chain(c.stalled.iter())
                    .any(|b| b.sizes.contains_key(file))
                    // Records landed after the saved length without a
                    // write-ahead record: a restarted supervisor looks for
                    // them there (`ahead`), until its next save.
                    || c.ahead.get(file).is_some_and(|n| {
                        std::fs::metadata(file).is_ok_and(|m| m.len() > *n)
                    })
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Records a rotation and compresses the segment (the agent is idle).
    fn archived(&mut self, seg: &Segment, bytes: u64) {
        let compressed = segments::compress(seg);
        if let Err(e) = &compressed {
            // Still a readable segment; the supervisor's startup pass retries.
            tracing::error!(error = %e, "failed to compress a segment");
        }
        let path = compressed.as_ref().map_or(&seg.path, |s| &s.path);
        self.activity.event(
            society_core::kinds::event::ROTATED,
            json!({"segment": path, "seq": seg.seq, "bytes": bytes}),
        );
    }
}
