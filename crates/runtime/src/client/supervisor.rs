//! Controlling the supervisor: is one running, start one detached and wait
//! until it is ready, stop it and every agent.
//!
//! Stopping reads pids from lock files, which a holder writes just after it
//! takes the lock: for a few microseconds a held lock may name nobody (or a
//! pid of 0). A pid is signalled only once it is known and usable — `kill(0)`
//! and `killpg(0)` would signal our own process group — and re-read on every
//! poll until then.

use super::ClientError;
use crate::exit::Code;
use crate::supervisor::state::SupervisorStatus;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use society_core::lock::{self, LockState};
use society_core::state::{AgentConfig, Policy};
use society_core::{atomic, AgentId, AgentPaths, Layout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What [`ensure_supervisor`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// One was running (pid).
    Already(u32),
    /// This call started it (pid).
    New(u32),
}

impl Started {
    pub fn pid(self) -> u32 {
        match self {
            Started::Already(p) | Started::New(p) => p,
        }
    }
}

/// What [`down`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Down {
    /// `None` if no supervisor ran, else the pid signalled (if its lock ever
    /// named one: a supervisor may exit before writing it).
    pub supervisor: Option<Option<u32>>,
    /// Agents that were running without a supervisor, stopped too.
    pub orphans: usize,
}

/// Pid of the running supervisor, if its lock is held.
pub fn supervisor_pid(layout: &Layout) -> Option<u32> {
    let pid = match lock::probe(&layout.supervisor_lock()) {
        Ok(LockState::Held(info)) => Some(info.map_or(0, |i| i.pid)),
        _ => None,
    };
    tracing::debug!(lock = %layout.supervisor_lock().display(), pid, "probed the supervisor's lock");
    pid
}

/// Starts the supervisor detached (`EXE --root ROOT supervise --detached`,
/// stderr to the daemon log) unless one runs; waits until it is ready.
pub fn ensure_supervisor(layout: &Layout, exe: &Path) -> Result<Started, ClientError> {
    if let Some(pid) = supervisor_pid(layout) {
        tracing::info!(pid, root = %layout.root().display(), "the supervisor runs");
        return Ok(Started::Already(pid));
    }
    tracing::info!(root = %layout.root().display(), exe = %exe.display(), "no supervisor runs: starting one");
    // A configuration the supervisor would refuse is the caller's error,
    // said here with its file, line and column, not in the daemon log.
    crate::config::SocietyConfig::load(&layout.society_toml())?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(layout.daemon_log())
        .map_err(|e| society_core::IoError::new("open", layout.daemon_log(), e))?;
    // No `process_group(0)`: `supervise --detached` calls setsid, which makes
    // it a session and group leader, and which a group leader may not call.
    let log_start = std::fs::metadata(layout.daemon_log()).map_or(0, |m| m.len());
    let mut child = Command::new(exe)
        .arg("--root")
        .arg(layout.root())
        .arg("supervise")
        .arg("--detached")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|source| ClientError::Process {
            what: "start the supervisor",
            source,
        })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exited = child.try_wait().map_err(|source| ClientError::Process {
            what: "wait for the supervisor",
            source,
        })?;
        if let Some(status) = exited {
            // Lost a race with another starter: fine if that one is up.
            if let Some(pid) = supervisor_pid(layout) {
                tracing::info!(pid, "another command started the supervisor first");
                return Ok(Started::Already(pid));
            }
            // Its own error message is in the daemon log: show it here.
            let said = std::fs::read(layout.daemon_log())
                .ok()
                .and_then(|b| {
                    b.get(log_start as usize..)
                        .map(|t| String::from_utf8_lossy(t).into_owned())
                })
                .unwrap_or_default();
            let code = status
                .code()
                .and_then(Code::from_code)
                .filter(|c| *c != Code::Ok)
                .unwrap_or(Code::Error);
            let said: Vec<&str> = said
                .lines()
                .filter(|l| l.starts_with("error:") || l.starts_with("  "))
                .collect();
            return Err(ClientError::SupervisorExited {
                code,
                status: status.to_string(),
                said: said.join("\n"),
                log: layout.daemon_log(),
            });
        }
        let ready = society_core::atomic::read_json::<SupervisorStatus>(
            &layout.supervisor_status(),
            "supervisor status",
        )
        .ok()
        .flatten()
        .is_some_and(|s| s.pid == child.id() && s.state == "running");
        if ready {
            tracing::info!(pid = child.id(), log = %layout.daemon_log().display(), "the supervisor is ready");
            return Ok(Started::New(child.id()));
        }
        if Instant::now() >= deadline {
            return Err(ClientError::SupervisorNotReady {
                log: layout.daemon_log(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the supervisor (SIGTERM; it stops its agents), then any agent
/// still running without one; waits for every lock, up to `timeout`.
pub fn down(layout: &Layout, timeout: Duration) -> Result<Down, ClientError> {
    let deadline = Instant::now() + timeout;
    let supervisor = stop_supervisor(layout, deadline, timeout)?;
    // Agents left running without a supervisor (it was killed): stop them too.
    let orphans = stop_orphans(layout, deadline)?;
    Ok(Down {
        supervisor,
        orphans,
    })
}

/// SIGTERM to the supervisor once its lock names it; waits until the lock is
/// free. `None` if no supervisor ran, else the pid it signalled (if it ever
/// learnt one: a supervisor may exit before writing it).
fn stop_supervisor(
    layout: &Layout,
    deadline: Instant,
    timeout: Duration,
) -> Result<Option<Option<u32>>, ClientError> {
    let mut ran = false;
    let mut signalled = None;
    loop {
        let info = match lock::probe(&layout.supervisor_lock()) {
            Ok(LockState::Held(info)) => info,
            _ => {
                if ran {
                    tracing::info!(pid = signalled, "the supervisor has exited");
                }
                return Ok(ran.then_some(signalled));
            }
        };
        ran = true;
        if signalled.is_none() {
            let info = info.filter(lock::LockInfo::is_alive);
            if let Some((pid, target)) = info.and_then(|i| Some((i.pid, process_target(i.pid)?))) {
                tracing::info!(pid, "SIGTERM to the supervisor");
                match kill(target, Signal::SIGTERM) {
                    // Gone since the probe: its lock is free at the next one.
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(source) => return Err(ClientError::Signal { pid, source }),
                }
                signalled = Some(pid);
            }
        }
        if Instant::now() >= deadline {
            let who = signalled.map_or("pid not yet written".into(), |p| format!("pid {p}"));
            return Err(ClientError::SupervisorStillRunning {
                who,
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, then SIGKILL after the agent's policy `grace`, to the process
/// group of every agent whose lock is held; waits until every lock is free.
/// Returns how many agents were running.
pub fn stop_orphans(layout: &Layout, deadline: Instant) -> Result<usize, ClientError> {
    let mut live = Vec::new();
    for id in layout.agent_ids()? {
        let paths = layout.agent(&id);
        if let Ok(LockState::Held(_)) = lock::probe(&paths.lock()) {
            live.push(Orphan::new(id, &paths));
        }
    }
    let count = live.len();
    loop {
        let now = Instant::now();
        live.retain_mut(|o| o.poll(now));
        if live.is_empty() {
            return Ok(count);
        }
        if now >= deadline {
            let names: Vec<String> = live.iter().map(Orphan::describe).collect();
            return Err(ClientError::AgentsStillRunning { names });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An agent running without a supervisor, being stopped.
struct Orphan {
    id: AgentId,
    lock: PathBuf,
    grace: Duration,
    /// The pid sent SIGTERM, and when; a new pid in the lock is signalled anew.
    termed: Option<(u32, Instant)>,
    killed: Option<u32>,
    /// Said once that the lock names no pid yet.
    told_unknown: bool,
}

impl Orphan {
    fn new(id: AgentId, paths: &AgentPaths) -> Orphan {
        Orphan {
            grace: grace(&id, paths),
            lock: paths.lock(),
            id,
            termed: None,
            killed: None,
            told_unknown: false,
        }
    }

    /// Signals what is due; `false` once the lock is free.
    fn poll(&mut self, now: Instant) -> bool {
        let info = match lock::probe(&self.lock) {
            Ok(LockState::Held(info)) => info,
            Ok(LockState::Free) => return false,
            Err(e) => {
                tracing::warn!(
                    agent = %self.id,
                    error = %e,
                    "cannot probe the agent's lock; not waiting for it"
                );
                return false;
            }
        };
        // Info naming a dead process (the previous holder: the new one has
        // not rewritten it yet) is not a pid to signal; its owner may be
        // someone else by now.
        let Some(pid) = info
            .filter(lock::LockInfo::is_alive)
            .map(|i| i.pid)
            .filter(|p| process_target(*p).is_some())
        else {
            if !self.told_unknown {
                tracing::info!(
                    agent = %self.id,
                    "the agent holds its lock but has not written its pid yet; \
                     signalling it once it has"
                );
                self.told_unknown = true;
            }
            return true;
        };
        match self.termed {
            Some((p, at)) if p == pid => {
                if now >= at + self.grace && self.killed != Some(pid) {
                    tracing::warn!(agent = %self.id, pid, "grace period over: SIGKILL");
                    signal_group(pid, Signal::SIGKILL);
                    self.killed = Some(pid);
                }
            }
            _ => {
                tracing::info!(agent = %self.id, pid, "SIGTERM to an agent running without a supervisor");
                signal_group(pid, Signal::SIGTERM);
                self.termed = Some((pid, now));
            }
        }
        true
    }

    fn describe(&self) -> String {
        match self.termed {
            Some((pid, _)) => format!("{} (pid {pid})", self.id),
            None => format!("{} (its lock names no pid)", self.id),
        }
    }
}

/// The agent's policy `grace`, or the default one if its config is unreadable.
fn grace(id: &AgentId, paths: &AgentPaths) -> Duration {
    match atomic::read_json::<AgentConfig>(&paths.config(), "agent config") {
        Ok(Some(cfg)) => cfg.policy.grace,
        Ok(None) => Policy::default().grace,
        Err(e) => {
            tracing::warn!(agent = %id, error = %e, "using the default grace");
            Policy::default().grace
        }
    }
}

/// `killpg(pid, sig)` for an agent (agents lead their own process group),
/// unless `pid` is not a group we may signal; `false` if nothing was sent.
pub fn signal_group(pid: u32, sig: Signal) -> bool {
    let Some(group) = group_target(pid, nix::unistd::getpgrp()) else {
        tracing::warn!(pid, signal = %sig, "refusing to signal this process group");
        return false;
    };
    killpg(group, sig).is_ok()
}

/// A pid read from a lock file, as a process to signal: never 0 or 1, nor a
/// value that turns negative as a `pid_t` (`kill(0)` signals our own group,
/// `kill(-n)` group n, `kill(-1)` every process we may signal).
fn process_target(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .map(Pid::from_raw)
}

/// [`process_target`] as a process group, and never `own` (the caller's
/// group: an agent always leads a group of its own).
fn group_target(pid: u32, own: Pid) -> Option<Pid> {
    process_target(pid).filter(|g| *g != own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_pids_are_signalled() {
        let own = Pid::from_raw(4242);
        for (pid, want) in [
            (0, None),
            (1, None),
            (u32::MAX, None),
            (1 << 31, None),
            (4242, None),
            (2, Some(2)),
            (4243, Some(4243)),
            (i32::MAX as u32, Some(i32::MAX)),
        ] {
            assert_eq!(group_target(pid, own), want.map(Pid::from_raw), "pid {pid}");
        }
        assert_eq!(
            process_target(4242),
            Some(own),
            "a process may be in our group"
        );
    }

    #[test]
    fn grace_comes_from_the_agent_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = AgentPaths::new(dir.path().join("agent-a"));
        std::fs::create_dir_all(&paths.dir).expect("agent dir");
        let id = AgentId::new("a").expect("valid id");
        assert_eq!(grace(&id, &paths), Policy::default().grace, "no config");
        std::fs::write(paths.config(), "{not json").expect("write");
        assert_eq!(
            grace(&id, &paths),
            Policy::default().grace,
            "corrupt config"
        );
        let cfg =
            r#"{"id": "a", "role": "r", "brain": {"kind": "echo"}, "policy": {"grace": "750ms"}}"#;
        std::fs::write(paths.config(), cfg).expect("write config");
        assert_eq!(grace(&id, &paths), Duration::from_millis(750));
    }
}
