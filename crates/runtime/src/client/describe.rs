//! `society describe NAME`: everything about one agent, case or approval
//! request, like `kubectl describe`. The name is resolved against all three
//! (`agent/NAME`, `case/NAME`, `approval/NAME` say which); each view is
//! built from the same lookups as `status`, `case show`, `approvals` and
//! `costs`, plus the tails of the logs that say what happened recently.
//! Reads files only, so it works with the supervisor down.

mod agent;

pub use agent::{tail, AgentView, DeadLetters, InboxView};

use super::{cases, ClientError};
use crate::approvals::{self, Approval, Decision, Kind};
use serde::Serialize;
use serde_json::Value;
use society_core::case::CaseSummary;
use society_core::kinds::case_log;
use society_core::{time, AgentId, CaseId, Layout, MsgId, Party};

/// How many records of a log a description shows.
pub const RECENT: usize = 10;

/// What a name names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Agent(AgentId),
    Case(CaseId),
    Approval(MsgId),
}

/// One described object; `kind` says which (`-o json` is this object).
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Description {
    Agent(Box<AgentView>),
    Case(Box<CaseView>),
    Approval(Box<ApprovalView>),
}

/// A case: its fold (`case show`'s header) and the end of its timeline.
#[derive(Debug, Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// Its log was moved to `archive/<date>/` by a close.
    pub archived: bool,
    /// When it was closed (its `closed` record), if it was.
    pub closed: Option<String>,
    pub log: String,
    /// The last [`RECENT`] records of its log, oldest first.
    pub timeline: Vec<Value>,
}

/// An approval request and what became of it.
#[derive(Debug, Serialize)]
pub struct ApprovalView {
    pub id: MsgId,
    /// When it was asked.
    pub ts: String,
    pub age_ms: u64,
    /// Who asked: an agent, or `supervisor` for a message a routing rule holds.
    pub from: Party,
    /// `agent` (the agent asks before acting) or `route` (a held message).
    pub source: Kind,
    pub case: Option<CaseId>,
    pub plan: String,
    pub rationale: Option<String>,
    pub alternatives: Vec<Value>,
    pub revision: Option<u64>,
    /// For `route`: the held message.
    pub held: Option<Value>,
    /// `pending`, `approved` or `rejected`.
    pub state: &'static str,
    pub decision: Option<Decision>,
}

/// Resolves `name` (see the module docs).
pub fn resolve(layout: &Layout, name: &str) -> Result<Target, ClientError> {
    if let Some((kind, rest)) = name.split_once('/') {
        return match kind {
            "agent" => Ok(Target::Agent(super::agents::existing(layout, rest)?)),
            "case" => {
                let case = CaseId::new(rest)?;
                match cases::load(layout, &case)? {
                    Some(_) => Ok(Target::Case(case)),
                    None => Err(super::case_control::no_case(layout, &case)),
                }
            }
            "approval" => {
                let id: MsgId = rest.parse()?;
                match request(layout, &id)? {
                    Some(_) => Ok(Target::Approval(id)),
                    None => Err(ClientError::NoRequest {
                        id,
                        inbox: layout.orchestrator_inbox(),
                    }),
                }
            }
            other => Err(ClientError::Unknown {
                name: name.to_string(),
                looked: format!("{other:?} is no kind of object: say agent/, case/ or approval/"),
            }),
        };
    }
    let mut found = Vec::new();
    let mut looked = Vec::new();
    if let Ok(id) = AgentId::new(name) {
        if layout.agent(&id).config().exists() {
            found.push(Target::Agent(id));
        }
        looked.push(format!(
            "no agent folder {}/agent-{name}",
            layout.state_dir().display()
        ));
    }
    if let Ok(case) = CaseId::new(name) {
        if cases::load(layout, &case)?.is_some() {
            found.push(Target::Case(case));
        }
        looked.push("no case log, open or archived".to_string());
    }
    if let Ok(id) = name.parse::<MsgId>() {
        if request(layout, &id)?.is_some() {
            found.push(Target::Approval(id));
        }
        looked.push(format!(
            "no approval request in {}",
            layout.orchestrator_inbox().display()
        ));
    }
    match found.len() {
        0 if looked.is_empty() => Err(ClientError::Unknown {
            name: name.to_string(),
            looked: "it is no agent id or case id ([a-z0-9][a-z0-9-]{0,62}) and no approval request id (a 26-character ULID)".into(),
        }),
        0 => Err(ClientError::Unknown {
            name: name.to_string(),
            looked: looked.join(", "),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(ClientError::Ambiguous {
            name: name.to_string(),
            matches: found
                .iter()
                .map(|t| match t {
                    Target::Agent(a) => format!("agent {a}"),
                    Target::Case(c) => format!("case {c}"),
                    Target::Approval(m) => format!("approval request {m}"),
                })
                .collect(),
        }),
    }
}

/// Describes what `name` names.
pub fn describe(layout: &Layout, name: &str) -> Result<Description, ClientError> {
    Ok(match resolve(layout, name)? {
        Target::Agent(id) => Description::Agent(Box::new(agent::view(layout, &id)?)),
        Target::Case(case) => Description::Case(Box::new(case_view(layout, &case)?)),
        Target::Approval(id) => Description::Approval(Box::new(approval_view(layout, &id)?)),
    })
}

fn request(layout: &Layout, id: &MsgId) -> Result<Option<Approval>, ClientError> {
    Ok(approvals::requests(layout)?
        .into_iter()
        .find(|a| a.id == *id))
}

fn case_view(layout: &Layout, case: &CaseId) -> Result<CaseView, ClientError> {
    let loaded =
        cases::load(layout, case)?.ok_or_else(|| super::case_control::no_case(layout, case))?;
    let closed = loaded
        .records
        .iter()
        .rev()
        .find(|r| r["event"] == case_log::CLOSED)
        .and_then(|r| r["ts"].as_str())
        .map(String::from);
    let skip = loaded.records.len().saturating_sub(RECENT);
    Ok(CaseView {
        summary: loaded.summary,
        archived: loaded.archived,
        closed,
        log: loaded.path.display().to_string(),
        timeline: loaded.records.into_iter().skip(skip).collect(),
    })
}

fn approval_view(layout: &Layout, id: &MsgId) -> Result<ApprovalView, ClientError> {
    let a = request(layout, id)?.ok_or_else(|| ClientError::NoRequest {
        id: *id,
        inbox: layout.orchestrator_inbox(),
    })?;
    let decision = approvals::decisions(layout)?.remove(id);
    let state = match &decision {
        None => "pending",
        Some(d) if d.approve => "approved",
        Some(_) => "rejected",
    };
    let age_ms = time::parse_rfc3339(&a.ts).map_or(0, |t| time::age(t).as_millis() as u64);
    Ok(ApprovalView {
        held: a.held().cloned(),
        id: a.id,
        ts: a.ts,
        age_ms,
        from: a.from,
        source: a.kind,
        case: a.case,
        plan: a.plan,
        rationale: a.rationale,
        alternatives: a.alternatives,
        revision: a.revision,
        state,
        decision,
    })
}
