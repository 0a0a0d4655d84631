//! The startup sweep for a tool left running by a dead generation.
//!
//! A `command` brain runs its program in the program's own process group, so
//! the supervisor's group kill of a hung or stopped agent does not reach it.
//! While the program runs its group id is in `status.json` (`tool_pgid`). A
//! generation SIGKILLed in that window leaves the id behind; the next one,
//! holding the folder lock (so the old one is surely dead), kills the group
//! before it does anything else.
//!
//! Group ids are pids and pids are reused, so the group is killed only if one
//! of its members still carries this agent's folder in its environment
//! ([`society_brains::command::FOLDER_ENV`], set on every program we start).

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use society_brains::sandbox::procfs;
use society_core::state::AgentStatus;
use society_core::{atomic, AgentPaths};
use std::time::{Duration, Instant};

/// A group the sweep killed.
pub(crate) struct Swept {
    pub pgid: i32,
    pub pids: Vec<i32>,
}

/// Kills the tool group a previous generation recorded, if it is still ours.
pub(crate) fn sweep(paths: &AgentPaths) -> Option<Swept> {
    let status: AgentStatus = atomic::read_json(&paths.status(), "agent status").ok()??;
    let pgid = status.tool_pgid?;
    let folder = paths.dir.canonicalize().ok()?;
    let mut marker = format!("{}=", society_brains::command::FOLDER_ENV).into_bytes();
    marker.extend_from_slice(folder.as_os_str().as_encoded_bytes());
    let pids = members(pgid);
    if !pids.iter().any(|pid| procfs::carries(*pid, &marker)) {
        return None;
    }
    tracing::warn!(
        pgid,
        ?pids,
        "killing the tool group a dead generation left running"
    );
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    // SIGKILL is asynchronous: wait briefly so the message that tool was
    // working on is not handled while the old run still writes files.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && members(pgid).iter().any(|p| !zombie(*p)) {
        std::thread::sleep(Duration::from_millis(5));
    }
    Some(Swept { pgid, pids })
}

/// Live pids whose process group is `pgid`.
fn members(pgid: i32) -> Vec<i32> {
    procfs::pids()
        .into_iter()
        .filter(|pid| procfs::stat(*pid).is_some_and(|s| s.pgrp == pgid))
        .collect()
}

fn zombie(pid: i32) -> bool {
    procfs::stat(pid).is_none_or(|s| s.zombie())
}
