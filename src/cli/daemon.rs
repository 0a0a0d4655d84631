//! `society up`, `down`, `supervise`, and starting the supervisor on demand.

use super::exit::{coded, coded_hint, Code};
use anyhow::Context;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use society_core::lock::{self, LockState};
use society_core::Layout;
use society_runtime::supervisor::{run_supervisor, state::SupervisorStatus, Options};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn supervise(layout: &Layout, detached: bool) -> anyhow::Result<Code> {
    if detached {
        // Leave the caller's session so its terminal closing cannot reach us.
        let _ = nix::unistd::setsid();
    }
    let exe = std::env::current_exe().context("failed to locate the society binary")?;
    run_supervisor(layout, Options { exe })?;
    Ok(Code::Ok)
}

pub fn up(layout: &Layout) -> anyhow::Result<Code> {
    match ensure_supervisor(layout)? {
        Started::Already(pid) => println!("supervisor already running (pid {pid})"),
        Started::New(pid) => println!(
            "supervisor started (pid {pid}); log: {}",
            layout.daemon_log().display()
        ),
    }
    Ok(Code::Ok)
}

pub enum Started {
    Already(u32),
    New(u32),
}

/// Pid of the running supervisor, if its lock is held.
pub fn supervisor_pid(layout: &Layout) -> Option<u32> {
    match lock::probe(&layout.supervisor_lock()) {
        Ok(LockState::Held(info)) => Some(info.map_or(0, |i| i.pid)),
        _ => None,
    }
}

/// Starts the supervisor detached unless one runs; waits until it is ready.
pub fn ensure_supervisor(layout: &Layout) -> anyhow::Result<Started> {
    if let Some(pid) = supervisor_pid(layout) {
        return Ok(Started::Already(pid));
    }
    let exe = std::env::current_exe().context("failed to locate the society binary")?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(layout.daemon_log())
        .with_context(|| format!("failed to open {}", layout.daemon_log().display()))?;
    let mut child = Command::new(exe)
        .arg("--root")
        .arg(layout.root())
        .arg("supervise")
        .arg("--detached")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("failed to start the supervisor")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            // Lost a race with another starter: fine if that one is up.
            if let Some(pid) = supervisor_pid(layout) {
                return Ok(Started::Already(pid));
            }
            return Err(coded_hint(
                Code::Error,
                format!("the supervisor exited at start ({status})"),
                format!("see {}", layout.daemon_log().display()),
            ));
        }
        let ready = society_core::atomic::read_json::<SupervisorStatus>(
            &layout.supervisor_status(),
            "supervisor status",
        )
        .ok()
        .flatten()
        .is_some_and(|s| s.pid == child.id() && s.state == "running");
        if ready {
            return Ok(Started::New(child.id()));
        }
        if Instant::now() >= deadline {
            return Err(coded_hint(
                Code::Timeout,
                "the supervisor did not become ready within 10s",
                format!("see {}", layout.daemon_log().display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn down(layout: &Layout, timeout: u64) -> anyhow::Result<Code> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut stopped_sup = None;
    if let Some(pid) = supervisor_pid(layout) {
        if pid > 0 {
            kill(Pid::from_raw(pid as i32), Signal::SIGTERM)
                .with_context(|| format!("failed to signal supervisor pid {pid}"))?;
        }
        while supervisor_pid(layout).is_some() {
            if Instant::now() >= deadline {
                return Err(coded(
                    Code::Timeout,
                    format!("the supervisor (pid {pid}) is still running after {timeout}s"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stopped_sup = Some(pid);
    }
    // Agents left running without a supervisor (it was killed): stop them too.
    let orphans = stop_orphans(layout, deadline)?;
    match stopped_sup {
        Some(pid) => println!("supervisor (pid {pid}) stopped; every agent is down"),
        None => println!("no supervisor was running"),
    }
    if orphans > 0 {
        println!("stopped {orphans} agent(s) that were running without a supervisor");
    }
    Ok(Code::Ok)
}

/// SIGTERM, then SIGKILL after a grace period, to every agent whose lock is held.
pub fn stop_orphans(layout: &Layout, deadline: Instant) -> anyhow::Result<usize> {
    let mut live = Vec::new();
    for id in layout.agent_ids()? {
        let paths = layout.agent(&id);
        if let Ok(LockState::Held(Some(info))) = lock::probe(&paths.lock()) {
            let _ = killpg(Pid::from_raw(info.pid as i32), Signal::SIGTERM);
            live.push(paths);
        }
    }
    let kill_at = Instant::now() + Duration::from_secs(5);
    let count = live.len();
    while !live.is_empty() {
        live.retain(|p| matches!(lock::probe(&p.lock()), Ok(LockState::Held(_))));
        if Instant::now() >= kill_at {
            for p in &live {
                if let Some(info) = lock::read_info(&p.lock()) {
                    let _ = killpg(Pid::from_raw(info.pid as i32), Signal::SIGKILL);
                }
            }
        }
        if Instant::now() >= deadline && !live.is_empty() {
            return Err(coded(
                Code::Timeout,
                format!("{} agent(s) still hold their lock", live.len()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(count)
}
