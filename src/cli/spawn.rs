//! `society spawn ROLE [--id ID] [--brain KIND] [--keep-alive] [--wait]`.

use super::daemon::{start_for, NoStart};
use super::exit::coded;
use super::exit::Code;
use society_core::Layout;
use society_runtime::client::agents;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's role (a [roles.ROLE] template in society.toml applies if present).
    role: String,
    /// Agent id (default: ROLE-N, the first free N).
    #[arg(long)]
    id: Option<String>,
    /// Brain kind; overrides the role template (configure a script, command
    /// or llm brain in society.toml's [roles.ROLE]).
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(society_brains::KINDS))]
    brain: Option<String>,
    /// Keep the process running when idle.
    #[arg(long)]
    keep_alive: bool,
    /// Wait until the agent process is up.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits (30s, 2m; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = crate::cli::duration)]
    timeout: Duration,
    #[command(flatten)]
    start: NoStart,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let req = agents::Spawn {
        role: args.role,
        id: args.id,
        brain: args.brain,
        keep_alive: args.keep_alive,
    };
    let spawned = agents::spawn(layout, &req)?;
    if spawned.updated {
        note!("updated the config of existing agent {}", spawned.id);
    }
    let running = start_for(layout, args.start.no_start)?;
    if args.wait && !running {
        return Err(coded(
            Code::Usage,
            format!("{} is spawned, but --wait needs a running supervisor: drop --no-start, or run `society up`", spawned.id),
        ));
    }
    if args.wait {
        agents::wait_up(layout, &spawned.id, args.timeout, 0)?;
    }
    outln!("{}", spawned.id);
    Ok(Code::Ok)
}
