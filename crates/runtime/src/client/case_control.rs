//! Opening and closing cases: requests to the supervisor, which owns case
//! logs, and waiting until the files show the effect — so success means the
//! case log says so, not just that we asked. Starting a supervisor to act on
//! the request is the caller's choice, between the request and the wait.

use super::{cases, send, ClientError};
use crate::config::SocietyConfig;
use crate::control::{self, Request};
use serde_json::Value;
use society_core::case::CaseStatus;
use society_core::kinds::case_log;
use society_core::{time, CaseId, Layout, Party};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// A case to open.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// What it is for, in one line.
    pub purpose: String,
    /// Owner: an agent id or `role:R`.
    pub assign: Option<String>,
    pub priority: Option<String>,
    /// Due this long from now; `None`: `[cases] default_due`.
    pub due: Option<Duration>,
}

/// Checks a new case and asks the supervisor to open it; its id.
pub fn request_open(layout: &Layout, new: &NewCase) -> Result<CaseId, ClientError> {
    let purpose = new.purpose.trim().to_string();
    if purpose.is_empty() {
        return Err(ClientError::Empty {
            what: "the case purpose",
        });
    }
    let priority = match new.priority.as_deref().map(str::trim) {
        Some("") => return Err(ClientError::Empty { what: "--priority" }),
        p => p.map(str::to_string),
    };
    let assign = new
        .assign
        .as_deref()
        .map(|a| assignee(layout, a))
        .transpose()?;
    let due = match new.due {
        Some(d) => d,
        None => {
            SocietyConfig::load(&layout.society_toml())?
                .cases
                .default_due
        }
    };
    let case = CaseId::generate();
    control::send(
        layout,
        &Request::CaseNew {
            case: case.clone(),
            purpose,
            assign,
            priority,
            due: time::format_rfc3339(SystemTime::now() + due),
        },
    )?;
    Ok(case)
}

/// Waits until the case log records `created`.
pub fn wait_opened(layout: &Layout, case: &CaseId, timeout: Duration) -> Result<(), ClientError> {
    let log = layout.case_log(case);
    wait_for(
        timeout,
        format!("the supervisor has not opened case {case}"),
        || {
            let records = cases::read_records(&log).ok()?;
            records
                .iter()
                .any(|r| r.get("event").and_then(Value::as_str) == Some(case_log::CREATED))
                .then_some(())
        },
    )
}

/// Checks the case is open and asks the supervisor to close it.
pub fn request_close(
    layout: &Layout,
    case: &CaseId,
    reason: Option<String>,
) -> Result<(), ClientError> {
    let Some(loaded) = cases::load(layout, case)? else {
        return Err(no_case(layout, case));
    };
    if loaded.archived || loaded.summary.status == CaseStatus::Closed {
        let when = loaded
            .records
            .iter()
            .rev()
            .find(|r| r.get("event").and_then(Value::as_str) == Some(case_log::CLOSED))
            .and_then(|r| r.get("ts").and_then(Value::as_str))
            .map(String::from);
        return Err(ClientError::AlreadyClosed {
            case: case.clone(),
            when,
        });
    }
    let reason = reason.filter(|r| !r.trim().is_empty());
    control::send(
        layout,
        &Request::CaseClose {
            case: case.clone(),
            reason,
        },
    )?;
    Ok(())
}

/// Waits until the case is archived; where its log is now.
pub fn wait_closed(
    layout: &Layout,
    case: &CaseId,
    timeout: Duration,
) -> Result<PathBuf, ClientError> {
    let pointer = wait_for(
        timeout,
        format!("the supervisor has not archived case {case}"),
        || cases::pointer(layout, case).ok().flatten(),
    )?;
    cases::archived_path(layout, case, &pointer)
}

/// The error for a case that is neither open nor archived.
pub fn no_case(layout: &Layout, case: &CaseId) -> ClientError {
    ClientError::NoCase {
        case: case.clone(),
        dir: layout.cases_dir(),
    }
}

/// `--assign`: an existing agent, or a role some agent has.
fn assignee(layout: &Layout, text: &str) -> Result<Party, ClientError> {
    let party: Party = text.parse()?;
    let known = match &party {
        Party::Agent(id) => layout.agent(id).config().exists(),
        Party::Role(role) => !send::agents(layout, Some(role))?.is_empty(),
        Party::Supervisor | Party::Orchestrator | Party::Remote { .. } => {
            return Err(ClientError::BadAssignee { party })
        }
    };
    if !known {
        return Err(ClientError::NoAssignee {
            party,
            dir: layout.state_dir().to_path_buf(),
        });
    }
    Ok(party)
}

/// Polls `f` until it yields, or fails (exit 6) after `timeout`.
fn wait_for<T>(
    timeout: Duration,
    what: String,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, ClientError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(ClientError::NotYet { what, timeout });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
