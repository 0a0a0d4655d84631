//! `society stop ID` and `society restart ID`.

use super::daemon::{ensure_supervisor, supervisor_pid};
use super::exit::{coded, coded_hint, Code};
use nix::sys::signal::Signal;
use society_core::lock::{self, LockState};
use society_core::{AgentId, Layout};
use society_runtime::control::{self, Request};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent id.
    id: String,
    /// Return at once instead of waiting for the new state.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

fn existing(layout: &Layout, id: &str) -> anyhow::Result<AgentId> {
    let id = AgentId::new(id)?;
    if !layout.agent(&id).config().exists() {
        return Err(coded(
            Code::NotFound,
            format!("no agent {id} in {}", layout.state_dir().display()),
        ));
    }
    Ok(id)
}

pub fn stop(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = existing(layout, &args.id)?;
    control::send(layout, &Request::Stop { agent: id.clone() })?;
    let lock_path = layout.agent(&id).lock();
    if supervisor_pid(layout).is_none() {
        // Nobody will read the request now: stop a leftover process ourselves
        // (once its lock names a live process: never pid 0, never a reused pid).
        if let Ok(LockState::Held(Some(info))) = lock::probe(&lock_path) {
            if info.is_alive() {
                super::daemon::signal_group(info.pid, Signal::SIGTERM);
            }
        }
    }
    if !args.no_wait {
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        while matches!(lock::probe(&lock_path)?, LockState::Held(_)) {
            if Instant::now() >= deadline {
                return Err(coded(
                    Code::Timeout,
                    format!("agent {id} still running after {}s", args.timeout),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!("{id} stopped (held until `society restart {id}` or `society spawn`)");
    Ok(Code::Ok)
}

pub fn restart(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = existing(layout, &args.id)?;
    let before = society_core::atomic::read_json::<society_core::state::AgentCheckpoint>(
        &layout.agent(&id).checkpoint(),
        "agent checkpoint",
    );
    control::send(layout, &Request::Restart { agent: id.clone() })?;
    ensure_supervisor(layout)?;
    let before = match before {
        Ok(c) => c.unwrap_or_default(),
        // The request stands: the supervisor starts it once it is repaired.
        Err(e) if args.no_wait => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: agent {id} cannot start until repaired: {e}; `society fsck --repair` rebuilds its checkpoint"
            );
            println!("{id}: restart requested");
            return Ok(Code::Ok);
        }
        Err(e) => {
            return Err(coded_hint(
                Code::Invalid,
                format!("agent {id} cannot start: {e}"),
                "`society fsck --repair` rebuilds its checkpoint from the logs; the restart request is recorded",
            ))
        }
    };
    if !args.no_wait {
        super::spawn::wait_up(
            layout,
            &id,
            Duration::from_secs(args.timeout),
            before.generation,
        )?;
    }
    println!("{id} restarted");
    Ok(Code::Ok)
}
