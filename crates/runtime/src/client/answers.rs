//! Answering approval requests and lifting sanctions: durable requests to
//! the supervisor (appended to its inbox whether or not it runs, acted on
//! when it reads them). Neither starts a supervisor: answering is not a
//! reason to wake a stopped society.

use super::{cases, ClientError};
use crate::approvals::{self, Approval};
use crate::control::{self, How, Request};
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
    answer(layout, id, approve, note, None)
}

/// [`decide`] with more than yes or no: an override, a chosen alternative
/// (its text filled in from the request), a request for alternatives. A
/// message held by a routing rule can only be approved or rejected; an
/// option must be one the request listed.
pub fn answer(
    layout: &Layout,
    id: &MsgId,
    approve: bool,
    note: Option<String>,
    how: Option<How>,
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
            by: d.by.clone(),
            ts: d.ts.clone(),
            note: d.note.clone(),
        });
    }
    let how = match how {
        Some(_) if request.kind == approvals::Kind::Route => {
            return Err(ClientError::BadAnswer {
                reason: format!(
                    "request {id} holds a message for a routing rule: it can only be approved or rejected"
                ),
            })
        }
        Some(How::Choose { option, .. }) => {
            let listed = request.alternatives.len();
            let Some(alt) = option.checked_sub(1).and_then(|i| request.alternatives.get(i)) else {
                return Err(ClientError::BadAnswer {
                    reason: if listed == 0 {
                        format!("request {id} lists no alternatives to choose from")
                    } else {
                        format!("option {option} is not one of the request's {listed} alternatives (1 to {listed})")
                    },
                });
            };
            let plan = alt.as_str().map_or_else(|| alt.to_string(), str::to_string);
            Some(How::Choose { option, plan })
        }
        other => other,
    };
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
            how,
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
