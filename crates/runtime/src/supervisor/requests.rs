//! The supervisor's own inbox: control requests from the CLI (`start`, `stop`,
//! `restart`) and reports from agents (`dead_letter`, ...). Consumed by cursor.

use super::{Phase, Supervisor};
use crate::control::{self, Request};
use serde_json::json;
use society_core::jsonl::read_lines;
use society_core::{Envelope, Party};

impl Supervisor {
    pub(super) fn process_requests(&mut self) {
        loop {
            let batch = match read_lines(
                &self.layout.supervisor_inbox(),
                self.ckpt.inbox_offset,
                1 << 20,
            ) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the supervisor inbox");
                    return;
                }
            };
            if batch.lines.is_empty() {
                return;
            }
            for line in &batch.lines {
                match Envelope::parse(&line.bytes) {
                    Ok(env) => self.on_request(env),
                    Err(e) => self.system_event(
                        "supervisor_inbox_bad_line",
                        "supervisor",
                        json!({"offset": line.offset, "reason": e.to_string()}),
                    ),
                }
            }
            self.ckpt.inbox_offset = batch.next;
            self.save_checkpoint();
        }
    }

    fn on_request(&mut self, env: Envelope) {
        if env.kind == control::TYPE && env.from == Party::Orchestrator {
            match serde_json::from_value::<Request>(env.body.clone()) {
                Ok(req) => self.on_control(req),
                Err(e) => self.system_event(
                    "control_invalid",
                    "supervisor",
                    json!({"id": env.id, "reason": e.to_string()}),
                ),
            }
            return;
        }
        // A report from an agent (e.g. a dead-lettered message): made visible.
        let agent = env.from.to_string();
        self.system_event(
            &format!("report_{}", env.kind),
            &agent,
            json!({"id": env.id, "case": env.case, "body": env.body}),
        );
    }

    fn on_control(&mut self, req: Request) {
        let (op, id) = match req {
            Request::Start { agent } => ("start", agent),
            Request::Stop { agent } => ("stop", agent),
            Request::Restart { agent } => ("restart", agent),
            other => {
                self.system_event(
                    "control_unsupported",
                    "supervisor",
                    json!({"op": other.name()}),
                );
                return;
            }
        };
        if !self.slots.contains_key(&id) {
            if let Err(e) = self.rescan_agents() {
                tracing::error!(error = %e, "failed to rescan agents");
            }
        }
        if !self.slots.contains_key(&id) {
            self.system_event("control_unknown_agent", id.as_str(), json!({"op": op}));
            return;
        }
        self.activity
            .event("control", json!({"op": op, "agent": id}));
        match op {
            "start" => {
                self.record(&id).held = false;
                self.save_checkpoint();
                if self.slots[&id].phase == Phase::Down {
                    self.start(&id, "spawn");
                }
            }
            "stop" => {
                self.record(&id).held = true;
                self.save_checkpoint();
                self.stop(&id, "stop");
            }
            _ => {
                let rec = self.record(&id);
                rec.held = false;
                rec.failed = false;
                self.save_checkpoint();
                let slot = self.slots.get_mut(&id).expect("slot exists: checked above");
                slot.restart.reset();
                match slot.phase {
                    Phase::Up(_) => {
                        slot.restart_requested = true;
                        self.stop(&id, "restart");
                    }
                    Phase::Stopping { .. } => slot.restart_requested = true,
                    Phase::Down | Phase::Failed | Phase::Backoff { .. } => {
                        slot.phase = Phase::Down;
                        self.start(&id, "restart");
                    }
                }
            }
        }
        self.status_dirty = true;
    }
}
