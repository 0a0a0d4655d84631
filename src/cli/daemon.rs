//! `society up`, `down` and `supervise`; the supervisor control itself is
//! `society_runtime::client::supervisor`.

use super::exit::Code;
use anyhow::Context;
use society_core::Layout;
use society_runtime::client::supervisor::{self, Started};
use society_runtime::supervisor::{run_supervisor, Options};
use std::time::Duration;

pub fn supervise(layout: &Layout, detached: bool) -> anyhow::Result<Code> {
    if detached {
        // Leave the caller's session so its terminal closing cannot reach us.
        // `ensure_supervisor` leaves us in its process group for this: a
        // group leader cannot call setsid.
        if let Err(e) = nix::unistd::setsid() {
            tracing::warn!(
                error = %e,
                "setsid failed: the supervisor stays in its starter's session, \
                 and a hangup of that terminal reaches it"
            );
        }
    }
    run_supervisor(layout, Options { exe: exe()? })?;
    Ok(Code::Ok)
}

/// This binary: the supervisor it starts re-executes it.
pub fn exe() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe().context("failed to locate the society binary")
}

/// Starts the supervisor detached unless one runs; waits until it is ready.
pub fn ensure_supervisor(layout: &Layout) -> anyhow::Result<Started> {
    Ok(supervisor::ensure_supervisor(layout, &exe()?)?)
}

/// For a command whose request a supervisor acts on: starts one unless one
/// runs or `no_start`, and says so on stderr when it does — a command that
/// starts a daemon must not do it silently. Whether a supervisor runs now.
pub fn start_for(layout: &Layout, no_start: bool) -> anyhow::Result<bool> {
    if no_start {
        return Ok(supervisor::supervisor_pid(layout).is_some());
    }
    if let Started::New(pid) = ensure_supervisor(layout)? {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "started the supervisor (pid {pid}; `society down` stops it); log: {}",
            layout.daemon_log().display()
        );
    }
    Ok(true)
}

/// The `--no-start` flag of every command that would start a supervisor.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct NoStart {
    /// Do not start the supervisor: the request waits in its inbox until one runs.
    #[arg(long)]
    pub no_start: bool,
}

pub fn up(layout: &Layout) -> anyhow::Result<Code> {
    match ensure_supervisor(layout)? {
        Started::Already(pid) => outln!("supervisor already running (pid {pid})"),
        Started::New(pid) => outln!(
            "supervisor started (pid {pid}); log: {}",
            layout.daemon_log().display()
        ),
    }
    Ok(Code::Ok)
}

pub fn down(layout: &Layout, timeout: Duration) -> anyhow::Result<Code> {
    let done = supervisor::down(layout, timeout)?;
    match done.supervisor {
        Some(Some(pid)) => outln!("supervisor (pid {pid}) stopped; every agent is down"),
        Some(None) => outln!("supervisor stopped; every agent is down"),
        None => outln!("no supervisor was running"),
    }
    if done.orphans > 0 {
        outln!(
            "stopped {} agent(s) that were running without a supervisor",
            done.orphans
        );
    }
    Ok(Code::Ok)
}
