//! `society agent-run --folder DIR` (hidden): one agent process.

use society_runtime::agent::{run_agent, AgentExit};
use society_runtime::exit::Code;
use std::path::Path;

pub fn run(folder: &Path) -> anyhow::Result<Code> {
    // The programs this agent runs start sandboxed, through this binary.
    if let Ok(exe) = std::env::current_exe() {
        society_brains::sandbox::set_launcher(exe);
    }
    match run_agent(folder) {
        Ok(AgentExit::Idle | AgentExit::Stopped) => Ok(Code::Ok),
        Err(e) => {
            // The supervisor reads the cause from here for its escalation.
            society_runtime::agent::record_exit_error(folder, &e);
            Err(e.into())
        }
    }
}
