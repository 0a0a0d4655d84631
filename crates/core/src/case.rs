//! Cases: what a case log says about its case. The log
//! (`supervisor/cases/case-<id>.jsonl`) is the only record; status, owner and
//! due date are derived by folding it, so they can never disagree with it.

use crate::kinds::case_log as event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    New,
    Assigned,
    InProgress,
    Waiting,
    /// At a milestone gate, until the orchestrator answers.
    AwaitingGate,
    Blocked,
    Escalated,
    Resolved,
    Closed,
    Cancelled,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::Assigned => "assigned",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Waiting => "waiting",
            CaseStatus::AwaitingGate => "awaiting_gate",
            CaseStatus::Blocked => "blocked",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Closed => "closed",
            CaseStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }

    /// Closed and cancelled cases take no more events but `closed`.
    pub fn is_final(self) -> bool {
        matches!(self, CaseStatus::Closed | CaseStatus::Cancelled)
    }

    /// Open cases are watched for due dates.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            CaseStatus::Resolved | CaseStatus::Closed | CaseStatus::Cancelled
        )
    }

    /// The status an ownership record (`assigned` or `handoff`) leads to,
    /// if it changes the status at all (it sets the owner of any case that
    /// is not closed or cancelled, whatever this returns).
    ///
    /// * `assigned` moves only a `new` case, to `assigned`.
    /// * `handoff` moves an open case (`new`, `assigned`, `in_progress`,
    ///   `waiting`, `blocked`, `escalated`) to `in_progress`: the case goes to
    ///   someone who works on it, which is how a blocked or escalated case
    ///   gets going again.
    /// * Neither moves a `resolved` case (nor a closed or cancelled one).
    ///
    /// An ownership record can land after the records it logically precedes:
    /// the CLI delivers a case message itself and asks the supervisor to
    /// record it (`reflect`), and the agent may answer — even complete the
    /// case — before the supervisor reads that request. So transitions here
    /// only go forward: a late first assignment never sends a case that is
    /// being worked on back to `assigned`, and no ownership record reopens a
    /// resolved case (an explicit `status` record can).
    fn after_ownership(self, kind: &str) -> Option<CaseStatus> {
        match (kind, self) {
            (event::ASSIGNED, CaseStatus::New) => Some(CaseStatus::Assigned),
            (event::HANDOFF, s) if s.is_open() => Some(CaseStatus::InProgress),
            _ => None,
        }
    }
}

/// The fold of one case log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseSummary {
    pub id: String,
    pub purpose: Option<String>,
    pub priority: Option<String>,
    pub created: Option<String>,
    pub due: Option<String>,
    pub status: CaseStatus,
    /// The agent that owns the case now (changed only by `assigned`/`handoff`).
    pub owner: Option<String>,
    /// Every agent that took part.
    pub agents: Vec<String>,
    pub events: usize,
    pub last_ts: Option<String>,
    pub due_soon_sent: bool,
    pub overdue_sent: bool,
}

impl CaseSummary {
    pub fn new(id: &str) -> CaseSummary {
        CaseSummary {
            id: id.to_string(),
            purpose: None,
            priority: None,
            created: None,
            due: None,
            status: CaseStatus::New,
            owner: None,
            agents: Vec::new(),
            events: 0,
            last_ts: None,
            due_soon_sent: false,
            overdue_sent: false,
        }
    }

    /// Applies one case-log record.
    pub fn apply(&mut self, rec: &Value) {
        let s = |k: &str| rec.get(k).and_then(Value::as_str).map(str::to_string);
        let kind = s("event").unwrap_or_default();
        self.events += 1;
        self.last_ts = s("ts").or(self.last_ts.take());
        if let Some(agent) = s("agent").filter(|a| is_agent(a)) {
            if !self.agents.contains(&agent) {
                self.agents.push(agent);
            }
        }
        if self.status.is_final() && kind != event::CLOSED {
            return;
        }
        let next = match kind.as_str() {
            event::CREATED => {
                self.purpose = s("purpose");
                self.priority = s("priority");
                self.created = s("ts");
                self.due = s("due");
                None
            }
            event::ASSIGNED | event::HANDOFF => {
                self.owner = s("to");
                if let Some(o) = self.owner.clone().filter(|o| is_agent(o)) {
                    if !self.agents.contains(&o) {
                        self.agents.push(o);
                    }
                }
                self.status.after_ownership(&kind)
            }
            event::MESSAGE | event::AGENT_REPORT => match self.status {
                CaseStatus::New | CaseStatus::Assigned => Some(CaseStatus::InProgress),
                _ => None,
            },
            event::STATUS => s("to").as_deref().and_then(CaseStatus::parse),
            event::APPROVAL_REQUESTED if self.status == CaseStatus::AwaitingGate => None,
            event::APPROVAL_REQUESTED => Some(CaseStatus::Waiting),
            event::AWAITING_GATE => Some(CaseStatus::AwaitingGate),
            event::APPROVED | event::REJECTED => Some(CaseStatus::InProgress),
            event::ESCALATED => Some(CaseStatus::Escalated),
            event::COMPLETED => Some(CaseStatus::Resolved),
            event::FAILED => Some(CaseStatus::Blocked),
            event::CANCELLED => Some(CaseStatus::Cancelled),
            event::CLOSED => Some(CaseStatus::Closed),
            event::DUE_SOON => {
                self.due_soon_sent = true;
                None
            }
            event::OVERDUE => {
                self.overdue_sent = true;
                None
            }
            _ => None,
        };
        if let Some(n) = next {
            self.status = n;
        }
    }

    pub fn fold<'a>(id: &str, records: impl IntoIterator<Item = &'a Value>) -> CaseSummary {
        let mut c = CaseSummary::new(id);
        for r in records {
            c.apply(r);
        }
        c
    }
}

/// What closing a case leaves where its log was
/// (`supervisor/cases/case-<id>.archived.json`): where the log went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePointer {
    /// The archived log, relative to `.society-agent/`
    /// (`archive/<yyyy-mm-dd>/case-<id>.jsonl`).
    pub archived: String,
    /// When the case was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
}

fn is_agent(s: &str) -> bool {
    crate::AgentId::new(s).is_ok() && s != "supervisor" && s != "orchestrator"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folds_a_timeline() {
        let recs = [
            json!({"ts":"t1","event":"created","agent":"orchestrator","purpose":"p","due":"t9"}),
            json!({"ts":"t2","event":"assigned","agent":"supervisor","to":"research"}),
            json!({"ts":"t3","event":"message","agent":"research"}),
            json!({"ts":"t4","event":"handoff","agent":"supervisor","from":"research","to":"audio"}),
            json!({"ts":"t5","event":"approval_requested","agent":"audio"}),
        ];
        let c = CaseSummary::fold("c-1", &recs);
        assert_eq!(c.status, CaseStatus::Waiting);
        assert_eq!(c.owner.as_deref(), Some("audio"));
        assert_eq!(c.agents, ["research", "audio"]);
        assert_eq!(c.due.as_deref(), Some("t9"));
        let mut c = c;
        c.apply(&json!({"event":"completed","agent":"audio"}));
        c.apply(&json!({"event":"message","agent":"audio"}));
        assert_eq!(c.status, CaseStatus::Resolved);
        c.apply(&json!({"event":"closed","agent":"supervisor"}));
        c.apply(&json!({"event":"escalated","agent":"supervisor"}));
        assert_eq!(
            c.status,
            CaseStatus::Closed,
            "nothing reopens a closed case"
        );
    }

    /// Every status against both ownership records: the owner always
    /// changes; the status only moves forward.
    #[test]
    fn ownership_records_never_move_a_case_back() {
        use CaseStatus::*;
        // (status before, after `assigned`, after `handoff`)
        let table = [
            (New, Assigned, InProgress),
            (Assigned, Assigned, InProgress),
            (InProgress, InProgress, InProgress),
            (Waiting, Waiting, InProgress),
            (Blocked, Blocked, InProgress),
            (Escalated, Escalated, InProgress),
            (Resolved, Resolved, Resolved),
            (Closed, Closed, Closed),
            (Cancelled, Cancelled, Cancelled),
        ];
        for (before, after_assigned, after_handoff) in table {
            for (event, expected) in [("assigned", after_assigned), ("handoff", after_handoff)] {
                let mut c = CaseSummary::new("c-1");
                c.status = before;
                c.owner = Some("research".into());
                let rec = json!({"event": event, "agent": "supervisor", "to": "audio"});
                c.apply(&rec);
                assert_eq!(c.status, expected, "{event} on a {} case", before.as_str());
                let owner = if before.is_final() {
                    "research"
                } else {
                    "audio"
                };
                assert_eq!(
                    c.owner.as_deref(),
                    Some(owner),
                    "{event} on a {} case",
                    before.as_str()
                );
            }
        }
        // The race this guards: the agent completed the case before the
        // supervisor recorded the message that gave it the case.
        let recs = [
            json!({"event":"created","agent":"orchestrator","purpose":"p"}),
            json!({"event":"completed","agent":"closer"}),
            json!({"event":"assigned","agent":"supervisor","to":"closer"}),
            json!({"event":"message","agent":"orchestrator","to":"closer"}),
        ];
        let c = CaseSummary::fold("c-1", &recs);
        assert_eq!(c.status, Resolved);
        assert_eq!(c.owner.as_deref(), Some("closer"));
    }
}
