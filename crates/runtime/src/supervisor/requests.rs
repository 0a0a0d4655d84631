//! The supervisor's own inbox: requests from the orchestrator (control ops,
//! cases, approval decisions) and reports from agents (escalations, dead
//! letters). Consumed by cursor, with the same write-ahead batches as the
//! router, so a crash never doubles a case event or an answer. What each
//! line decides is planned by `planner/requests.rs`; here are its side
//! effects: the activity log, a rescan for a new agent, and what runs after
//! the batch landed (start, stop, restart, archive).

use super::commit::{present_keys, Source};
use super::plan::{now_ms, read_range, After, Plan, INBOX_KEY};
use super::state::PendingBatch;
use super::{Phase, Supervisor};
use crate::control::Request;
use serde_json::json;
use society_core::{Envelope, FormatError, Party};

impl Supervisor {
    pub(super) fn process_requests(&mut self) {
        if self.ckpt.incidents.contains_key(INBOX_KEY) {
            return;
        }
        if self.is_stalled(&Source::Inbox) {
            self.retry_stalled(Some(&Source::Inbox));
            if self.is_stalled(&Source::Inbox) {
                return;
            }
        }
        loop {
            match self.request_batch(None) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot process the supervisor inbox; will retry");
                    return;
                }
            }
        }
    }

    pub(super) fn request_batch(
        &mut self,
        recovered: Option<&PendingBatch>,
    ) -> Result<bool, FormatError> {
        let limit = recovered.map(|p| p.to);
        let at = recovered.and_then(|p| p.at);
        let from = self.ckpt.inbox_offset;
        let inbox = self.layout.supervisor_inbox();
        // Its writers (the router, the CLI) write nothing longer.
        let max = society_core::MAX_RECORD_LIMIT;
        let lines = match read_range(&inbox, from, limit, max)? {
            Ok(lines) => lines,
            Err(check) => {
                self.incident(INBOX_KEY, &inbox, from, check);
                return Ok(false);
            }
        };
        let Some(next) = lines.last().map(|l| l.end) else {
            return Ok(false);
        };
        let mut plan = Plan::at(at.unwrap_or_else(now_ms));
        if let Some(p) = recovered {
            plan.present = Some(present_keys(&p.sizes)?);
            plan.picks = p.picks.clone();
        }
        plan.lines = lines.len() as u64;
        for line in &lines {
            let parsed = match line.oversize(max) {
                Some(reason) => Err(reason),
                None => Envelope::parse(&line.bytes).map_err(|e| e.to_string()),
            };
            if let Ok(env) = &parsed {
                self.before_request(env);
            }
            let planner = self.planner();
            match parsed {
                Ok(env) => planner.request(&mut plan, env),
                Err(reason) => planner.bad_line(&mut plan, line, &reason),
            }
        }
        self.commit(None, from, next, plan, recovered.map(|p| &p.sizes))?;
        Ok(true)
    }

    /// What a control request does before it is planned: it is logged in
    /// the supervisor's activity, and an agent it names that the supervisor
    /// does not know yet (spawned a moment ago) is looked for.
    fn before_request(&mut self, env: &Envelope) {
        if env.kind != society_core::kinds::message::CONTROL || env.from != Party::Orchestrator {
            return;
        }
        let Ok(req) = serde_json::from_value::<Request>(env.body.clone()) else {
            return;
        };
        self.activity
            .event("control", json!({"op": req.name(), "id": env.id}));
        match &req {
            Request::Start { agent }
            | Request::Stop { agent }
            | Request::Restart { agent }
            | Request::Remove { agent } => {
                tracing::info!(op = %req.name(), agent = %agent, id = %env.id, "control request");
            }
            _ => tracing::debug!(op = %req.name(), id = %env.id, "control request"),
        }
        if let Request::Start { agent }
        | Request::Stop { agent }
        | Request::Restart { agent }
        | Request::Remove { agent } = &req
        {
            if !self.slots.contains_key(agent) {
                if let Err(e) = self.rescan_agents() {
                    tracing::error!(error = %e, "failed to rescan agents");
                }
            }
        }
    }

    pub(super) fn run_after(&mut self, after: After) {
        match after {
            After::Start(id) => {
                self.record(&id).held = false;
                self.save_state();
                if self.slots.get(&id).is_some_and(|s| s.phase == Phase::Down) {
                    self.start(&id, "spawn");
                }
            }
            After::Stop(id) => {
                self.record(&id).held = true;
                self.save_state();
                self.stop(&id, "stop");
            }
            After::Restart(id) => {
                let rec = self.record(&id);
                rec.held = false;
                rec.failed = false;
                self.save_state();
                let Some(slot) = self.slots.get_mut(&id) else {
                    return;
                };
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
                    // Runs again as soon as its folder is whole (the scan checks).
                    Phase::Broken { .. } => self.recheck_broken(),
                }
            }
            After::Archive(case) => self.archive_case(&case),
            After::Reload(request) => self.reload(&request),
            After::Remove { agent, archive } => self.begin_removal(&agent, archive),
        }
        self.status_dirty = true;
    }
}
