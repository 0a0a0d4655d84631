//! Keeping `metadata.json` in step with the checkpoint's experience counts:
//! written when the agent is caught up (like `learning/`), never on the path
//! of a message. The agent holds the folder's lock, so it is the only writer.

use super::Agent;

impl Agent {
    pub(crate) fn flush_metadata(&mut self) {
        if !self.meta_dirty {
            return;
        }
        match crate::metadata::refresh(&self.paths, &self.cfg, &self.ckpt) {
            Ok(_) => self.meta_dirty = false,
            // A summary: a failure is retried at the next quiet moment.
            Err(e) => tracing::warn!(error = %e, "failed to update metadata.json"),
        }
    }
}
