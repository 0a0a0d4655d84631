//! Locks and heartbeats against live processes, and orphaned processes.

use super::Report;
use society_core::layout::names;
use society_core::lock::{self, LockState};
use society_core::state::{AgentStatus, LiveState};
use society_core::{atomic, FormatError, Layout};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(super) fn check(layout: &Layout, repair: bool, report: &mut Report) -> Result<(), FormatError> {
    let supervisor = matches!(lock::probe(&layout.supervisor_lock())?, LockState::Held(_));
    let procs = processes();
    let mut agent_pids = HashMap::new();
    let mut dead_leaders = HashMap::new();
    let mut live_agents = 0;
    for id in layout.agent_ids()? {
        let paths = layout.agent(&id);
        // Reported by the `symlink` check; nothing is read through a link.
        if society_core::confine::check_folder(&paths).is_err() {
            continue;
        }
        let status: Option<AgentStatus> = atomic::read_json(&paths.status(), "agent status")
            .ok()
            .flatten();
        match lock::probe(&paths.lock())? {
            LockState::Held(info) => {
                live_agents += 1;
                if let Some(info) = info {
                    agent_pids.insert(info.pid as i32, id.clone());
                }
            }
            LockState::Free => {
                if let Some(info) = lock::read_info(&paths.lock()) {
                    dead_leaders.insert(info.pid as i32, id.clone());
                }
                if let Some(st) = status.filter(|s| s.state != LiveState::Stopping) {
                    let f = report.problem(
                        "status",
                        Some(paths.status()),
                        None,
                        format!(
                            "agent {id}'s status.json says {} (pid {}) but no process holds its lock",
                            serde_json::to_value(st.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                            st.pid
                        ),
                    );
                    if repair {
                        match std::fs::remove_file(paths.status()) {
                            Ok(()) => {
                                f.repaired = Some(
                                    "removed the stale heartbeat (status.json is not a record)"
                                        .into(),
                                )
                            }
                            Err(e) => f.reason.push_str(&format!("; could not remove it: {e}")),
                        }
                    }
                }
            }
        }
    }
    if !supervisor && live_agents > 0 {
        report.note(
            "lock",
            Some(layout.supervisor_lock()),
            None,
            format!("{live_agents} agent(s) run without a supervisor; `society up` adopts them"),
        );
    }
    let folder_prefix = layout.state_dir().join(names::AGENT_DIR_PREFIX);
    let prefix = folder_prefix.to_string_lossy().into_owned();
    let mut suspects = Vec::new();
    for p in &procs {
        // An agent process of this society that does not hold its lock.
        if let Some(folder) = p.args.iter().skip_while(|a| *a != "--folder").nth(1) {
            if p.args.iter().any(|a| a == "agent-run")
                && folder.starts_with(&prefix)
                && !agent_pids.contains_key(&p.pid)
            {
                suspects.push((p.pid, folder.clone()));
            }
        }
        // A process left in the group of an agent that is gone (a tool it started).
        if p.pgid != p.pid {
            if let Some(id) = dead_leaders.get(&p.pgid) {
                report.problem(
                    "process",
                    None,
                    None,
                    format!("process {} ({}) is left in the process group of agent {id}, which is gone; `kill -- -{}` ends it", p.pid, p.args.first().map_or("?", String::as_str), p.pgid),
                );
            }
        }
    }
    for (pid, folder) in settled(suspects) {
        report.problem(
            "process",
            Some(folder.clone().into()),
            None,
            format!("agent process {pid} for {folder} does not hold the folder's lock"),
        );
    }
    Ok(())
}

/// The suspects still alive without their folder's lock after a moment:
/// an agent starting takes its lock within milliseconds of its start (or
/// exits 3), and one exiting is gone as soon — with a supervisor running
/// (a repair may have just made a broken agent runnable) both are normal.
fn settled(mut suspects: Vec<(i32, String)>) -> Vec<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        suspects.retain(|(pid, folder)| {
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            let lock = society_core::AgentPaths::new(folder.into()).lock();
            let holds =
                matches!(lock::probe(&lock), Ok(LockState::Held(Some(i))) if i.pid as i32 == *pid);
            alive && !holds
        });
        if suspects.is_empty() || Instant::now() >= deadline {
            return suspects;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Proc {
    pid: i32,
    pgid: i32,
    args: Vec<String>,
}

fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces or parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let Some(pgid) = fields.get(2).and_then(|f| f.parse().ok()) else {
            continue;
        };
        let args = std::fs::read(e.path().join("cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.push(Proc { pid, pgid, args });
    }
    out
}
