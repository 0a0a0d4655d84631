//! The supervisor's view of cases: every case log folded at start and kept
//! current as the supervisor writes records (it is their only writer), due
//! dates (`due_soon`, `overdue` → escalation), and archiving on close.

use super::plan::Plan;
use super::Supervisor;
use serde_json::{json, Value};
use society_core::case::{CasePointer, CaseSummary};
use society_core::jsonl::read_objects;
use society_core::kinds::case_log as event;
use society_core::layout::case_of_log_name;
use society_core::{atomic, time, CaseId, Layout, MsgId};
use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

/// A due-soon warning goes out once this share of the case's time is used.
const DUE_SOON_AT: f64 = 0.8;

/// ... or once the time left is within this much of the due date. Due dates
/// are checked at every scan, so a short case (under ten scans long) could
/// otherwise go from "not yet 80 %" to overdue between two checks and never
/// be warned about; two scans leave room for one that runs late.
const DUE_SOON_LEAD: std::time::Duration = super::SCAN.saturating_mul(2);

#[derive(Default)]
pub(super) struct Cases {
    map: HashMap<CaseId, CaseSummary>,
}

impl Cases {
    /// Folds every open case log (archived cases are closed and need no watch).
    pub(super) fn load(layout: &Layout) -> Cases {
        let mut cases = Cases::default();
        let Ok(entries) = std::fs::read_dir(layout.cases_dir()) else {
            return cases;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(case_of_log_name) else {
                continue;
            };
            let records = all_records(&entry.path());
            cases
                .map
                .insert(id.clone(), CaseSummary::fold(id.as_str(), &records));
        }
        cases
    }

    pub(super) fn apply(&mut self, case: &CaseId, rec: &Value) {
        self.map
            .entry(case.clone())
            .or_insert_with(|| CaseSummary::new(case.as_str()))
            .apply(rec);
    }

    pub(super) fn get(&self, case: &CaseId) -> Option<&CaseSummary> {
        self.map.get(case)
    }

    pub(super) fn ids(&self) -> Vec<CaseId> {
        self.map.keys().cloned().collect()
    }
}

fn all_records(path: &Path) -> Vec<Value> {
    read_objects(path, &mut 0).unwrap_or_default()
}

impl Supervisor {
    /// Moves a closed case's log to `archive/<date>/` and leaves a pointer.
    /// Idempotent, so a crash half-way is finished at the next start.
    pub(super) fn archive_case(&mut self, case: &CaseId) {
        let pointer = self.layout.case_pointer(case);
        if pointer.exists() {
            return;
        }
        let date = &time::now_rfc3339()[..10];
        let rel = Layout::archived_case_log(date, case);
        let target = self.layout.state_dir().join(&rel);
        let log = self.layout.case_log(case);
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(target.parent().unwrap_or(self.layout.state_dir()))?;
            if log.exists() {
                std::fs::rename(&log, &target)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(case = %case, error = %e, "failed to archive case log");
            return;
        }
        let record = CasePointer {
            archived: rel,
            ts: Some(time::now_rfc3339()),
        };
        if let Err(e) = atomic::write_json(&pointer, &record, true) {
            tracing::error!(case = %case, error = %e, "failed to write archive pointer");
        }
        self.cases.map.remove(case);
    }

    /// Archives cases closed before a crash could archive them.
    pub(super) fn archive_closed(&mut self) {
        for id in self.cases.ids() {
            if self
                .cases
                .get(&id)
                .is_some_and(|c| c.status == society_core::case::CaseStatus::Closed)
            {
                self.archive_case(&id);
            }
        }
    }

    /// `due_soon` once most of a case's time is used; `overdue` and an
    /// escalation to the orchestrator once it is past due. Both are written
    /// as one batch with a write-ahead record of its records, so a crash
    /// between the escalation and the `overdue` record finishes the batch
    /// at restart instead of escalating again.
    pub(super) fn check_due(&mut self) {
        let now = SystemTime::now();
        for id in self.cases.ids() {
            let Some(c) = self.cases.get(&id) else {
                continue;
            };
            if !c.status.is_open() {
                continue;
            }
            let Some(due) = c.due.as_deref().and_then(time::parse_rfc3339) else {
                continue;
            };
            let created = c
                .created
                .as_deref()
                .and_then(time::parse_rfc3339)
                .unwrap_or(due);
            let span = due.duration_since(created).unwrap_or_default();
            let soon = (created + span.mul_f64(DUE_SOON_AT))
                .min(due.checked_sub(DUE_SOON_LEAD).unwrap_or(created));
            let (soon_sent, overdue_sent, owner) =
                (c.due_soon_sent, c.overdue_sent, c.owner.clone());
            let due_text = time::format_rfc3339(due);
            // An overdue record still waiting to be written is not decided twice.
            if self.stalled_touches(&self.layout.case_log(&id)) {
                continue;
            }
            let mut plan = Plan::at(society_core::time::unix_ms(now));
            if now >= due && !overdue_sent {
                let src = MsgId::generate();
                self.planner().case(
                    &mut plan,
                    &id,
                    event::OVERDUE,
                    "supervisor",
                    format!("{src}/overdue"),
                    json!({"due": due_text, "owner": owner}),
                );
                let reason = format!("case {id} is overdue (due {due_text})");
                self.planner().escalation(
                    &mut plan,
                    src,
                    "supervisor",
                    Some(&id),
                    &reason,
                    json!({"owner": owner}),
                );
            } else if now >= soon && now < due && !soon_sent {
                let src = MsgId::generate();
                self.planner().case(
                    &mut plan,
                    &id,
                    event::DUE_SOON,
                    "supervisor",
                    format!("{src}/due_soon"),
                    json!({"due": due_text, "owner": owner}),
                );
            }
            if !plan.deliveries.is_empty() {
                self.commit_direct(plan);
            }
        }
    }
}
