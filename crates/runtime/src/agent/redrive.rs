//! Dead letters put back by `society deadletter retry`.
//!
//! A dead-lettered id stays in the checkpoint's `recent` ids, so a copy of
//! it is dropped as a duplicate. A retry re-injects the very envelope (same
//! id) after appending `dead_letter_retried` to this agent's
//! `deadletter.jsonl`; the id is then handled again while that record is the
//! id's last one in the file and no `message_handled` names it. Once handled,
//! every further copy is a duplicate again; failing again dead-letters it
//! again (a new last record). The files are read only for an id already seen,
//! which is rare.

use super::Agent;
use serde_json::Value;
use society_core::jsonl::read_objects;
use society_core::kinds::event;
use society_core::MsgId;

impl Agent {
    /// Is the already-seen `id` a retried dead letter, not yet handled?
    pub(crate) fn retry_pending(&self, id: &MsgId) -> bool {
        let id = id.to_string();
        let about = |r: &Value| r["id"].as_str() == Some(id.as_str());
        let read = |path: &std::path::Path| match read_objects(path, &mut 0) {
            Ok(records) => records,
            Err(e) => {
                // Unsure: a duplicate is dropped rather than handled twice.
                tracing::warn!(error = %e, "cannot read {} for a retry", path.display());
                Vec::new()
            }
        };
        let last = read(&self.paths.deadletter()).into_iter().rfind(|r| {
            about(r)
                && matches!(
                    r["event"].as_str(),
                    Some(event::DEAD_LETTERED | event::DEAD_LETTER_RETRIED)
                )
        });
        if last.is_none_or(|r| r["event"] != event::DEAD_LETTER_RETRIED) {
            return false;
        }
        !read(&self.paths.activity())
            .iter()
            .any(|r| r["event"] == event::MESSAGE_HANDLED && about(r))
    }
}
