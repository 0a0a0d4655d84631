//! `society case new` and `society case close`: requests to the supervisor,
//! which owns case logs. Each waits until the files show the effect, so the
//! command's success means the case log says so, not just that we asked.

use crate::cli::daemon::ensure_supervisor;
use crate::cli::exit::{coded, coded_hint, Code};
use serde_json::Value;
use society_core::case::CaseStatus;
use society_core::kinds::case_log;
use society_core::{time, CaseId, Layout, Party};
use society_runtime::client::cases as store;
use society_runtime::config::SocietyConfig;
use society_runtime::control::{self, Request};
use std::time::{Duration, Instant, SystemTime};

/// How long `new` and `close` wait for the supervisor.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// What the case is for, in one line.
    purpose: String,
    /// Owner: an agent id or role:<role>.
    #[arg(long, value_name = "ID|role:R")]
    assign: Option<String>,
    /// Priority label, e.g. low, normal, high.
    #[arg(long, value_name = "P")]
    priority: Option<String>,
    /// Due this long from now (30m, 2h, 3d, ...). Default: `[cases] default_due`
    /// in society.toml, else 24h.
    #[arg(long, value_name = "DUR")]
    due: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// Case id.
    id: String,
    /// Why it is closed (recorded in the case log).
    #[arg(long, value_name = "R")]
    reason: Option<String>,
}

pub fn new(layout: &Layout, args: NewArgs) -> anyhow::Result<Code> {
    let purpose = args.purpose.trim().to_string();
    if purpose.is_empty() {
        return Err(coded(Code::Invalid, "the case purpose is empty"));
    }
    let priority = match args.priority.as_deref().map(str::trim) {
        Some("") => return Err(coded(Code::Invalid, "--priority is empty")),
        p => p.map(str::to_string),
    };
    let assign = args
        .assign
        .as_deref()
        .map(|a| assignee(layout, a))
        .transpose()?;
    let due = match &args.due {
        Some(text) => humantime::parse_duration(text).map_err(|e| {
            coded(
                Code::Invalid,
                format!("invalid --due {text:?}: {e} (e.g. 30m, 2h, 3d)"),
            )
        })?,
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
    ensure_supervisor(layout)?;
    let log = layout.case_log(&case);
    wait_for(
        || {
            let records = store::read_records(&log).ok()?;
            records
                .iter()
                .any(|r| r.get("event").and_then(Value::as_str) == Some(case_log::CREATED))
                .then_some(())
        },
        format!("the supervisor has not opened case {case} within {WAIT:?}"),
    )?;
    println!("{case}");
    Ok(Code::Ok)
}

pub fn close(layout: &Layout, args: CloseArgs) -> anyhow::Result<Code> {
    let case = CaseId::new(args.id.as_str())?;
    let Some(loaded) = store::load(layout, &case)? else {
        return Err(not_found(layout, &case));
    };
    if loaded.archived || loaded.summary.status == CaseStatus::Closed {
        let when = loaded
            .records
            .iter()
            .rev()
            .find(|r| r.get("event").and_then(Value::as_str) == Some(case_log::CLOSED))
            .and_then(|r| r.get("ts").and_then(Value::as_str))
            .map_or(String::new(), |ts| format!(" at {ts}"));
        return Err(coded_hint(
            Code::Conflict,
            format!("case {case} is already closed{when}"),
            format!("`society case show {case}` shows its timeline"),
        ));
    }
    let reason = args.reason.filter(|r| !r.trim().is_empty());
    control::send(
        layout,
        &Request::CaseClose {
            case: case.clone(),
            reason,
        },
    )?;
    ensure_supervisor(layout)?;
    let pointer = wait_for(
        || store::pointer(layout, &case).ok().flatten(),
        format!("the supervisor has not archived case {case} within {WAIT:?}"),
    )?;
    println!(
        "closed {case}; its log is archived at {}",
        store::archived_path(layout, &case, &pointer)?.display()
    );
    Ok(Code::Ok)
}

pub fn not_found(layout: &Layout, case: &CaseId) -> anyhow::Error {
    coded_hint(
        Code::NotFound,
        format!(
            "no case {case} in {} (open or archived)",
            layout.cases_dir().display()
        ),
        "`society case list` lists cases",
    )
}

/// `--assign`: an existing agent, or a role some agent has.
fn assignee(layout: &Layout, text: &str) -> anyhow::Result<Party> {
    let party: Party = text.parse()?;
    let known = match &party {
        Party::Agent(id) => layout.agent(id).config().exists(),
        Party::Role(role) => !society_runtime::client::send::agents(layout, Some(role))?.is_empty(),
        Party::Supervisor | Party::Orchestrator => {
            return Err(coded(
                Code::Invalid,
                format!("cannot assign a case to {party}: give an agent id or role:<role>"),
            ))
        }
    };
    if !known {
        let what = match &party {
            Party::Role(role) => format!("no agent has role {role}"),
            other => format!("no agent {other}"),
        };
        return Err(coded_hint(
            Code::NotFound,
            format!(
                "{what} in {}; no case was opened",
                layout.state_dir().display()
            ),
            "`society status` lists agents; `society spawn ROLE` creates one",
        ));
    }
    Ok(party)
}

/// Polls `f` until it yields, or fails with exit 6 after [`WAIT`].
fn wait_for<T>(mut f: impl FnMut() -> Option<T>, timeout_msg: String) -> anyhow::Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(coded_hint(
                Code::Timeout,
                timeout_msg,
                "the request stays in supervisor/inbox.jsonl and takes effect when the \
                 supervisor reads it; see supervisor/daemon.log and messages/system-events.jsonl",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
