//! Answering approval requests and lifting sanctions: durable requests to
//! the supervisor (appended to its inbox whether or not it runs, acted on
//! when it reads them). Neither starts a supervisor: answering is not a
//! reason to wake a stopped society.

use super::{cases, ClientError};
use crate::approvals::{self, Approval};
use crate::control::{self, Request};
use society_core::case::CaseStatus;
use society_core::{AgentId, CaseId, Layout, MsgId};

/// Approves or rejects request `id`, unless it is unknown, already answered
/// or its case has ended (the case log is final). The request answered.
pub fn decide(
    layout: &Layout,
    id: &MsgId,
    approve: bool,
    note: Option<String>,
) -> Result<Approval, ClientError> {
    let Some(request) = approvals::requests(layout)?
        .into_iter()
        .find(|a| a.id == *id)
    else {
        return Err(ClientError::NoRequest {
            id: *id,
            inbox: layout.orchestrator_inbox(),
        });
    };
    if let Some(d) = approvals::decisions(layout)?.get(id) {
        return Err(ClientError::AlreadyDecided {
            id: *id,
            approved: d.approve,
            ts: d.ts.clone(),
            note: d.note.clone(),
        });
    }
    if let Some(case) = &request.case {
        if let Some(ended) = ended(layout, case)? {
            return Err(ClientError::CaseEnded {
                id: *id,
                case: case.clone(),
                ended,
                approve,
            });
        }
    }
    control::send(
        layout,
        &Request::Decide {
            request: *id,
            approve,
            note,
        },
    )?;
    Ok(request)
}

/// Asks the supervisor to lift the sanction on agent `id`.
pub fn unblock(layout: &Layout, id: &AgentId) -> Result<(), ClientError> {
    control::send(layout, &Request::Unblock { agent: id.clone() })?;
    Ok(())
}

/// How a case ended — "closed" (its log archived, or its fold says so) or
/// "cancelled" — or `None` while it is open or if it has no log. The lookup
/// is `case show`'s ([`cases::load`]).
fn ended(layout: &Layout, case: &CaseId) -> Result<Option<&'static str>, ClientError> {
    let Some(loaded) = cases::load(layout, case)? else {
        return Ok(None);
    };
    if loaded.archived {
        return Ok(Some(CaseStatus::Closed.as_str()));
    }
    let status = loaded.summary.status;
    Ok(status.is_final().then(|| status.as_str()))
}
