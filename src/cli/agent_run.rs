//! `society agent-run --folder DIR` (hidden): one agent process.

use society_runtime::agent::{run_agent, AgentExit};
use std::path::Path;

pub fn run(folder: &Path) -> anyhow::Result<i32> {
    match run_agent(folder)? {
        AgentExit::Idle | AgentExit::Stopped => Ok(society_runtime::exit::OK),
    }
}
