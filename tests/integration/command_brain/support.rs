//! Helpers for the `command_brain` tests: society files, test programs, and
//! checks on real processes.

use crate::support::SOON;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::path::Path;

/// One `command` agent per `(id, program, extra brain keys)`.
pub fn society_toml(max_attempts: u32, agents: &[(&str, &str, &str)]) -> String {
    let mut toml = format!(
        "[defaults]\nidle_exit = \"30s\"\nheartbeat = \"200ms\"\nmax_attempts = {max_attempts}\n"
    );
    for (id, program, extra) in agents {
        toml += &format!(
            "\n[[agent]]\nid = \"{id}\"\nbrain = {{ kind = \"command\", program = \"{program}\"{extra} }}\n"
        );
    }
    toml
}

/// Writes an executable shell script at `root/tools/NAME`.
pub fn script(root: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join("tools").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The agent's activity records named `event`.
pub fn events(s: &Society, agent: &str, event: &str) -> Vec<Value> {
    records(&s.agent(agent).activity())
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

/// A live process (a zombie is already dead: only its exit status is left).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit(')').next().unwrap().split_whitespace().next(),
            Some("Z" | "X")
        ),
        Err(_) => false,
    }
}

/// SIGKILLs, when dropped, the processes a test learnt about (grandchildren
/// never mention the society root, so the testkit's cleanup would miss
/// them) — each only if its command line is unchanged, so a reused pid is
/// left alone.
pub struct Reap(Vec<(i32, Vec<u8>)>);

impl Reap {
    pub fn new(pids: &[i32]) -> Reap {
        Reap(pids.iter().map(|p| (*p, cmdline(*p))).collect())
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        for (pid, cmd) in &self.0 {
            if !cmd.is_empty() && cmdline(*pid) == *cmd {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
    }
}

fn cmdline(pid: i32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

/// `"LEADER GRANDCHILD"` as the test scripts write it into `workspace/temp/pids`.
pub fn wait_pids(s: &Society, agent: &str) -> Vec<i32> {
    let file = s.agent(agent).workspace().join("temp/pids");
    wait_until(SOON, "the program to record its pids", || {
        let text = std::fs::read_to_string(&file).ok()?;
        let pids: Vec<i32> = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        (pids.len() == 2).then_some(pids)
    })
}

/// Records the leader and a `sleep 300` grandchild, then waits for it.
pub const HANG_WITH_GRANDCHILD: &str =
    "sleep 300 &\necho \"$$ $!\" > temp/pids.tmp && mv temp/pids.tmp temp/pids\nwait\n";
