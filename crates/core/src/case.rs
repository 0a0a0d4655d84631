//! Cases: what a case log says about its case. The log
//! (`supervisor/cases/case-<id>.jsonl`) is the only record; status, owner and
//! due date are derived by folding it, so they can never disagree with it.

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
        let event = s("event").unwrap_or_default();
        self.events += 1;
        self.last_ts = s("ts").or(self.last_ts.take());
        if let Some(agent) = s("agent").filter(|a| is_agent(a)) {
            if !self.agents.contains(&agent) {
                self.agents.push(agent);
            }
        }
        if self.status.is_final() && event != "closed" {
            return;
        }
        let next = match event.as_str() {
            "created" => {
                self.purpose = s("purpose");
                self.priority = s("priority");
                self.created = s("ts");
                self.due = s("due");
                None
            }
            "assigned" | "handoff" => {
                self.owner = s("to");
                if let Some(o) = self.owner.clone().filter(|o| is_agent(o)) {
                    if !self.agents.contains(&o) {
                        self.agents.push(o);
                    }
                }
                Some(if event == "assigned" {
                    CaseStatus::Assigned
                } else {
                    CaseStatus::InProgress
                })
            }
            "message" | "agent_report" => match self.status {
                CaseStatus::New | CaseStatus::Assigned => Some(CaseStatus::InProgress),
                _ => None,
            },
            "status" => s("to").as_deref().and_then(CaseStatus::parse),
            "approval_requested" => Some(CaseStatus::Waiting),
            "approved" | "rejected" => Some(CaseStatus::InProgress),
            "escalated" => Some(CaseStatus::Escalated),
            "completed" => Some(CaseStatus::Resolved),
            "failed" => Some(CaseStatus::Blocked),
            "cancelled" => Some(CaseStatus::Cancelled),
            "closed" => Some(CaseStatus::Closed),
            "due_soon" => {
                self.due_soon_sent = true;
                None
            }
            "overdue" => {
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
}
