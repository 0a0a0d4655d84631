//! `society stop ID` and `society restart ID`.

use super::daemon::{start_for, NoStart};
use super::exit::Code;
use society_core::Layout;
use society_runtime::client::agents;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent id.
    id: String,
    /// Return at once instead of waiting for the new state.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait (30s, 2m; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = crate::cli::duration)]
    timeout: Duration,
    #[command(flatten)]
    start: NoStart,
}

pub fn stop(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = agents::existing(layout, &args.id)?;
    let wait = (!args.no_wait).then_some(args.timeout);
    agents::stop(layout, &id, wait)?;
    outln!("{id} stopped (held until `society restart {id}` or `society spawn`)");
    Ok(Code::Ok)
}

pub fn restart(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = agents::existing(layout, &args.id)?;
    let before = agents::generation(layout, &id);
    agents::request_restart(layout, &id)?;
    if !start_for(layout, args.start.no_start)? {
        outln!("{id}: restart requested; the supervisor is not running and restarts it when it starts (`society up`)");
        return Ok(Code::Ok);
    }
    let before = match before {
        Ok(generation) => generation,
        // The request stands: the supervisor starts it once it is repaired.
        Err(e) if args.no_wait => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: {e}; `society fsck --repair` rebuilds its checkpoint"
            );
            outln!("{id}: restart requested");
            return Ok(Code::Ok);
        }
        Err(e) => return Err(e.into()),
    };
    if !args.no_wait {
        agents::wait_up(layout, &id, args.timeout, before)?;
    }
    outln!("{id} restarted");
    Ok(Code::Ok)
}
