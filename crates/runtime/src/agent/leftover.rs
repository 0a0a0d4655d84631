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
    if !pids.iter().any(|pid| carries(*pid, &marker)) {
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

/// Live pids whose process group is `pgid`, from `/proc/<pid>/stat`.
fn members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_fields(*pid).is_some_and(|(_, group)| group == pgid))
        .collect()
}

/// `(state, pgrp)` of a process. `comm` may hold spaces and parentheses, so
/// fields are counted after its closing parenthesis.
fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let _ppid = rest.next()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((state, pgrp))
}

fn zombie(pid: i32) -> bool {
    stat_fields(pid).is_none_or(|(state, _)| matches!(state, 'Z' | 'X'))
}

fn carries(pid: i32, marker: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker))
}
