//! `society spawn ROLE [--id ID] [--brain KIND] [--keep-alive] [--wait]`.

use super::daemon::ensure_supervisor;
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
    /// Brain kind (echo, script); overrides the role template.
    #[arg(long, value_name = "KIND")]
    brain: Option<String>,
    /// Keep the process running when idle.
    #[arg(long)]
    keep_alive: bool,
    /// Wait until the agent process is up.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
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
        eprintln!("updated the config of existing agent {}", spawned.id);
    }
    ensure_supervisor(layout)?;
    if args.wait {
        agents::wait_up(layout, &spawned.id, Duration::from_secs(args.timeout), 0)?;
    }
    outln!("{}", spawned.id);
    Ok(Code::Ok)
}
