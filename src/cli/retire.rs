//! `society retire ID [--reason TEXT] [--force]`: the agent leaves for good
//! (`society_runtime::client::retire`): its metadata records it, so no
//! `spawn --purpose` reuses it, and its folder moves into `archive/` as
//! with `society rm` (the supervisor does the move; one is started unless
//! `--no-start`).

use super::daemon::{start_for, NoStart};
use super::exit::Code;
use super::output::{self, OutputArgs};
use society_core::Layout;
use society_runtime::client::{agents, remove, retire};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent id.
    id: String,
    /// Why (recorded in its metadata.json and registry.jsonl).
    #[arg(long)]
    reason: Option<String>,
    /// Stop the agent first if it runs (gracefully) rather than refuse.
    #[arg(long)]
    force: bool,
    /// How long to wait for the stop and the move (30s, 2m; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = crate::cli::duration)]
    timeout: Duration,
    #[command(flatten)]
    start: NoStart,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(serde::Serialize)]
struct Report {
    id: String,
    retired: bool,
    /// Where the folder is now (absent while the supervisor has not moved it).
    archive: Option<String>,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = agents::existing(layout, &args.id)?;
    let asked = retire::request(
        layout,
        &id,
        args.reason.as_deref(),
        args.force.then_some(args.timeout),
    )?;
    let to = if start_for(layout, args.start.no_start)? {
        Some(remove::wait(layout, &asked, args.timeout)?)
    } else {
        None
    };
    if args.output.is_json() {
        let report = Report {
            id: id.to_string(),
            retired: true,
            archive: to.map(|p| p.display().to_string()),
        };
        output::report(&report, args.output.format())?;
        return Ok(Code::Ok);
    }
    match to {
        Some(to) => outln!("retired {id}: moved {} to {}", layout.agent(&id).dir.display(), to.display()),
        None => outln!("{id}: retired; the supervisor is not running and moves the folder into archive/ when it starts (`society up`)"),
    }
    Ok(Code::Ok)
}
