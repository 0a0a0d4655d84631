//! `society status [ID] [--json] [--watch]`: one row per agent, computed from
//! the files alone (works with the supervisor down) by
//! `society_runtime::client::status`.

use super::exit::Code;
use super::render;
use society_core::Layout;
use society_runtime::client::{agents, status};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this agent.
    id: Option<String>,
    /// Machine-readable output (one JSON document).
    #[arg(long)]
    json: bool,
    /// Redraw every second until interrupted (with --json: one JSON document
    /// a line, every second; the screen is cleared only on a terminal).
    #[arg(long)]
    watch: bool,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let only = match &args.id {
        Some(id) => Some(agents::existing(layout, id)?),
        None => None,
    };
    let terminal = std::io::stdout().is_terminal();
    loop {
        let report = status::collect(layout, only.as_ref())?;
        if args.json && args.watch {
            // A stream of documents is JSON lines, for `jq` and `tail`.
            outln!("{}", serde_json::to_string(&report)?);
        } else if args.json {
            outln!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            if args.watch && terminal {
                out!("\x1b[2J\x1b[H");
            }
            out!("{}", render::status_table(&report));
        }
        if !args.watch {
            return Ok(Code::Ok);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
