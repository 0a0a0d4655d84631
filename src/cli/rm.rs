//! `society rm ID [--force]`: forget an agent and move its folder into
//! `archive/` (`society_runtime::client::remove`; the supervisor does the
//! move, so it starts one unless `--no-start`). Nothing is deleted.

use super::daemon::{start_for, NoStart};
use super::exit::Code;
use society_core::Layout;
use society_runtime::client::{agents, remove};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent id.
    id: String,
    /// Stop the agent first if it runs (gracefully, as `society stop` does)
    /// rather than refuse.
    #[arg(long)]
    force: bool,
    /// How long to wait for the stop and the move (30s, 2m; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = crate::cli::duration)]
    timeout: Duration,
    #[command(flatten)]
    start: NoStart,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = agents::existing(layout, &args.id)?;
    let asked = remove::request(layout, &id, args.force.then_some(args.timeout))?;
    if !start_for(layout, args.start.no_start)? {
        outln!("{id}: removal requested; the supervisor is not running and moves the folder into archive/ when it starts (`society up`)");
        return Ok(Code::Ok);
    }
    let to = remove::wait(layout, &asked, args.timeout)?;
    outln!(
        "removed {id}: moved {} to {}",
        layout.agent(&id).dir.display(),
        to.display()
    );
    if remove::declared(layout, &id) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "warning: {id} is declared in society.toml, so the supervisor provisions it afresh when it next starts; delete its [[agent]] entry to keep it gone"
        );
    }
    Ok(Code::Ok)
}
