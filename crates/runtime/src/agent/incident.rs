//! An inbox that no longer matches the cursor.
//!
//! The cursor is a byte offset, valid only while the inbox is append-only.
//! If the file was truncated below it (or rewritten), reading on would skip
//! messages appended since and read the middle of a line as a bad one; going
//! back would handle old messages again. Neither is safe to guess, so the
//! agent records the incident in its checkpoint, escalates it once, and stops
//! consuming; the supervisor leaves it down (`broken` in `status`), and
//! `society fsck --repair` moves the cursor to what the files prove was
//! handled and clears the incident.

use super::{Agent, AgentError};
use serde_json::json;
use society_core::jsonl::{read_lines, CursorCheck};
use society_core::kinds::message;
use society_core::state::Incident;
use society_core::{time, Envelope, MsgId, Party};

impl Agent {
    /// The inbox no longer matches the cursor (`check`): the incident is
    /// recorded and escalated; the caller stops consuming.
    pub(crate) fn inbox_incident(&mut self, check: CursorCheck) -> Result<(), AgentError> {
        let cursor = self.ckpt.inbox_offset;
        let (kind, len) = match check {
            CursorCheck::Ok => return Ok(()),
            CursorCheck::Shrunk { len } => ("truncated", len),
            CursorCheck::OffBoundary { len } => ("off_boundary", len),
        };
        tracing::error!(
            cursor,
            len,
            kind,
            "the inbox no longer matches the cursor; consuming stops"
        );
        self.ckpt.incident = Some(Incident {
            file: self.paths.inbox(),
            kind: kind.into(),
            cursor,
            len,
            ts: time::now_rfc3339(),
            escalation: Some(MsgId::generate()),
        });
        // Saved first: the escalation's id is then the same whoever writes it.
        self.save()?;
        self.escalate_incident()
    }

    /// Writes the incident's escalation into the outbox unless it is there.
    pub(crate) fn escalate_incident(&mut self) -> Result<(), AgentError> {
        let Some(incident) = self.ckpt.incident.clone() else {
            return Ok(());
        };
        let Some(id) = incident.escalation else {
            return Ok(());
        };
        if outbox_holds(&self.paths.outbox(), &id)? {
            return Ok(());
        }
        let reason = format!(
            "{}; agent {} stopped consuming it so that nothing is skipped or handled twice",
            incident.describe(),
            self.cfg.id
        );
        let mut env = Envelope::new(
            Party::Agent(self.cfg.id.clone()),
            Party::Supervisor,
            message::ESCALATE,
            json!({"reason": reason, "context": {
                "file": incident.file, "kind": incident.kind, "cursor": incident.cursor, "len": incident.len,
                "hint": format!("`society stop {id}` if it runs, then `society fsck --repair` moves the cursor to what was provably handled", id = self.cfg.id),
            }}),
        );
        env.id = id;
        env.gen = self.status.gen;
        self.outbox.append(&env.to_line())?;
        self.activity.event(
            "inbox_incident",
            json!({"kind": incident.kind, "cursor": incident.cursor, "len": incident.len, "escalation": id}),
        );
        Ok(())
    }
}

fn outbox_holds(path: &std::path::Path, id: &MsgId) -> Result<bool, AgentError> {
    let needle = id.to_string();
    let mut cursor = 0;
    loop {
        let batch = read_lines(path, cursor, 1 << 20)?;
        if batch.lines.is_empty() {
            return Ok(false);
        }
        if batch
            .lines
            .iter()
            .any(|l| Envelope::parse(&l.bytes).is_ok_and(|e| e.id.to_string() == needle))
        {
            return Ok(true);
        }
        cursor = batch.next;
    }
}
