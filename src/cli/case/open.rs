//! `society case new` and `society case close`: requests to the supervisor,
//! which owns case logs (`society_runtime::client::case_control`). Each
//! waits until the files show the effect, so the command's success means the
//! case log says so, not just that we asked.

use crate::cli::daemon::{start_for, NoStart};
use crate::cli::exit::{coded, Code};
use society_core::{CaseId, Layout};
use society_runtime::client::case_control;
use std::time::Duration;

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
    #[command(flatten)]
    start: NoStart,
}

#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// Case id.
    id: String,
    /// Why it is closed (recorded in the case log).
    #[arg(long, value_name = "R")]
    reason: Option<String>,
    #[command(flatten)]
    start: NoStart,
}

pub fn new(layout: &Layout, args: NewArgs) -> anyhow::Result<Code> {
    let due = match &args.due {
        Some(text) => Some(humantime::parse_duration(text).map_err(|e| {
            coded(
                Code::Invalid,
                format!("invalid --due {text:?}: {e} (e.g. 30m, 2h, 3d)"),
            )
        })?),
        None => None,
    };
    let new = case_control::NewCase {
        purpose: args.purpose,
        assign: args.assign,
        priority: args.priority,
        due,
    };
    let case = case_control::request_open(layout, &new)?;
    if start_for(layout, args.start.no_start)? {
        case_control::wait_opened(layout, &case, WAIT)?;
    } else {
        not_running(&format!("case {case} opens"));
    }
    outln!("{case}");
    Ok(Code::Ok)
}

pub fn close(layout: &Layout, args: CloseArgs) -> anyhow::Result<Code> {
    let case = CaseId::new(args.id.as_str())?;
    case_control::request_close(layout, &case, args.reason)?;
    if !start_for(layout, args.start.no_start)? {
        not_running(&format!("case {case} closes"));
        outln!("{case}: close requested");
        return Ok(Code::Ok);
    }
    let archived = case_control::wait_closed(layout, &case, WAIT)?;
    outln!(
        "closed {case}; its log is archived at {}",
        archived.display()
    );
    Ok(Code::Ok)
}

/// Says on stderr that the request waits for a supervisor.
fn not_running(what: &str) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "the supervisor is not running (--no-start): {what} when it starts (`society up`)"
    );
}
