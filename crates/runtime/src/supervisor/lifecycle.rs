//! Starting, waking, reaping, stopping and restarting agent processes.

use super::{file_len, Phase, Proc, Slot, Supervisor};
use crate::activity::Log;
use crate::exit::Code;
use crate::restart::Verdict;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;
use society_core::kinds::event;
use society_core::lock::{self, LockState};
use society_core::state::AgentCheckpoint;
use society_core::AgentId;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Agents are woken with SIGUSR1, whose default action is to terminate. The
/// supervisor ignores it, and an ignored disposition survives `exec`, so a
/// wake-up that reaches a child before it installed its handler is harmless
/// (the child reads its inbox right after installing it).
#[allow(unsafe_code)]
pub(super) fn ignore_wakeup_signal() {
    // SAFETY: SIG_IGN installs no handler code; nothing can run in signal context.
    if let Err(e) =
        unsafe { nix::sys::signal::signal(Signal::SIGUSR1, nix::sys::signal::SigHandler::SigIgn) }
    {
        tracing::warn!(error = %e, "cannot ignore SIGUSR1; early wake-ups could kill a starting agent");
    }
}

/// An agent whose lock is held when the supervisor (re)starts keeps running:
/// adopt it instead of starting a twin.
///
/// The pid comes from `process.lock`, which a process starting this very
/// moment has locked but not yet rewritten: it may still name the previous
/// generation, whose pid another process may own by now. Only info whose pid
/// and start time name a live process is believed; otherwise the pid stays
/// unknown (0, never signalled) until the liveness check reads it again.
pub(super) fn adopt_if_alive(slot: &mut Slot, pids: &mut HashMap<i32, AgentId>, log: &mut Log) {
    if let Ok(LockState::Held(info)) = lock::probe(&slot.paths.lock()) {
        let known = info.filter(lock::LockInfo::is_alive);
        let pid = known.as_ref().map_or(0, |i| i.pid as i32);
        let ckpt = checkpoint(slot);
        // The lock names the holder's generation once it has read its
        // checkpoint; until then the checkpoint's is the best guess.
        slot.gen = known
            .as_ref()
            .map(|i| i.gen)
            .filter(|g| *g > 0)
            .unwrap_or(ckpt.generation);
        log.event(
            event::AGENT_ADOPTED,
            json!({"agent": slot.cfg.id, "gen": slot.gen, "pid": pid}),
        );
        tracing::info!(agent = %slot.cfg.id, pid, gen = slot.gen, "adopted a running agent");
        if pid > 0 {
            pids.insert(pid, slot.cfg.id.clone());
        }
        slot.phase = Phase::Up(Proc {
            pid,
            child: false,
            start: known.and_then(|i| i.start),
            started: Instant::now(),
            handled_at_start: ckpt.handled,
        });
    }
}

/// An adopted process whose pid was not known yet: read the lock info again.
fn learn_pid(slot: &mut Slot, pids: &mut HashMap<i32, AgentId>) {
    let proc = match &mut slot.phase {
        Phase::Up(p) | Phase::Stopping { proc: p, .. } if !p.child && p.pid == 0 => p,
        _ => return,
    };
    if let Some(info) = lock::read_info(&slot.paths.lock()).filter(lock::LockInfo::is_alive) {
        proc.pid = info.pid as i32;
        proc.start = info.start;
        pids.insert(proc.pid, slot.cfg.id.clone());
        if info.gen > 0 {
            slot.gen = info.gen;
        }
        tracing::debug!(agent = %slot.cfg.id, pid = info.pid, gen = slot.gen, "learnt the adopted agent's pid");
    }
}

impl Supervisor {
    /// Mail or a wake-up for `id`: signal it if it runs, start it if it may.
    pub(super) fn wake(&mut self, id: &AgentId) {
        let Some(slot) = self.slots.get(id) else {
            return;
        };
        match &slot.phase {
            Phase::Up(p) if p.signalable() => {
                tracing::debug!(agent = %id, pid = p.pid, "mail: SIGUSR1");
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGUSR1);
            }
            Phase::Down => self.maybe_start(id, "on_demand"),
            _ => {}
        }
    }

    pub(super) fn activate_all(&mut self) {
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            self.maybe_start(&id, "on_demand");
        }
    }

    /// Starts a down agent that has mail waiting or is `keep_alive`.
    pub(super) fn maybe_start(&mut self, id: &AgentId, reason: &'static str) {
        if self.shutting_down {
            return;
        }
        let Some(slot) = self.slots.get(id) else {
            return;
        };
        if slot.phase != Phase::Down || self.ckpt.agents.get(id).is_some_and(|r| r.held) {
            return;
        }
        if slot.cfg.keep_alive || pending(slot) {
            self.start(
                id,
                if slot.cfg.keep_alive && reason == "on_demand" {
                    "keep_alive"
                } else {
                    reason
                },
            );
        }
    }

    pub(super) fn start(&mut self, id: &AgentId, reason: &'static str) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        let ckpt = checkpoint(slot);
        let stderr = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.layout.daemon_log())
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let spawned = Command::new(&self.exe)
            .arg("agent-run")
            .arg("--folder")
            .arg(&slot.paths.dir)
            .process_group(0)
            // The federation's NATS credentials are the supervisor's alone.
            .env_remove("SOCIETY_NATS_CREDS")
            .env_remove("SOCIETY_NATS_TOKEN")
            .env_remove("SOCIETY_NATS_USER")
            .env_remove("SOCIETY_NATS_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn();
        match spawned {
            Ok(child) => {
                let pid = child.id() as i32;
                // Reaped through waitpid on SIGCHLD; dropping `Child` neither waits nor kills.
                drop(child);
                slot.phase = Phase::Up(Proc {
                    pid,
                    child: true,
                    start: None,
                    started: Instant::now(),
                    handled_at_start: ckpt.handled,
                });
                // The process bumps the checkpoint's generation as it starts
                // (it holds the folder's lock, so nobody else does): its
                // events and ours about it carry the same number.
                slot.gen = ckpt.generation + 1;
                self.pids.insert(pid, id.clone());
                self.status_dirty = true;
                self.system_event(
                    event::AGENT_STARTED,
                    id.as_str(),
                    json!({"pid": pid, "reason": reason}),
                );
            }
            Err(e) => {
                self.system_event(
                    event::AGENT_SPAWN_FAILED,
                    id.as_str(),
                    json!({"error": e.to_string(), "exe": self.exe}),
                );
                self.on_failure(id, "spawn failed");
            }
        }
    }

    /// Collects every exited child.
    pub(super) fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid.as_raw(), Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.on_exit(pid.as_raw(), None, Some(sig))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn on_exit(&mut self, pid: i32, code: Option<i32>, signal: Option<Signal>) {
        let Some(id) = self.pids.remove(&pid) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let (stop_reason, proc) = match &slot.phase {
            Phase::Stopping { reason, proc, .. } => (Some(*reason), Some(proc)),
            Phase::Up(proc) => (None, Some(proc)),
            _ => (None, None),
        };
        if proc.is_some_and(|p| handled(slot) > p.handled_at_start) {
            slot.restart.progressed();
        }
        slot.phase = Phase::Down;
        self.status_dirty = true;
        self.system_event(
            event::AGENT_EXITED,
            id.as_str(),
            json!({"pid": pid, "code": code, "signal": signal.map(|s| s.as_str()), "stop_reason": stop_reason}),
        );
        if self.shutting_down {
            return;
        }
        let clean = code == Some(Code::Ok.code()) && stop_reason != Some("hung");
        if code == Some(Code::Locked.code()) {
            // Someone else holds the folder: adopt it if it is still there.
            let slot = self
                .slots
                .get_mut(&id)
                .expect("slot exists: looked up above");
            adopt_if_alive(slot, &mut self.pids, &mut self.activity);
            return;
        }
        let paths = self.slots[&id].paths.clone();
        let cause = super::broken::exit_cause(&paths, pid);
        if code == Some(Code::Invalid.code()) {
            // Its config or checkpoint cannot be used: restarting would only
            // fail again. It waits, broken, until the folder is repaired.
            let reason = cause.unwrap_or_else(|| {
                super::broken::folder_problem(&paths).unwrap_or_else(|| {
                    "its config or checkpoint cannot be used (exit code 5)".into()
                })
            });
            self.mark_broken(&id, reason);
            return;
        }
        if let Some(problem) = super::broken::folder_problem(&paths) {
            // e.g. it stopped consuming an inbox that no longer matches its cursor.
            self.mark_broken(&id, problem);
            return;
        }
        if clean || matches!(stop_reason, Some("stop" | "restart" | "remove")) {
            self.after_down(&id);
        } else {
            let why = match (code, signal) {
                (_, Some(s)) => format!("killed by {}", s.as_str()),
                (Some(c), _) => format!(
                    "exit code {c} ({}){}",
                    Code::from_code(c).map_or("unknown", Code::meaning),
                    super::broken::cause_suffix(cause.as_deref())
                ),
                _ => "unknown".into(),
            };
            self.on_failure(&id, &why);
        }
    }

    fn after_down(&mut self, id: &AgentId) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        if std::mem::take(&mut slot.restart_requested) {
            self.start(id, "restart");
        } else {
            self.maybe_start(id, "on_demand");
        }
    }

    pub(super) fn on_failure(&mut self, id: &AgentId, why: &str) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        let verdict = slot.restart.on_failure(Instant::now(), &slot.cfg.policy);
        match verdict {
            Verdict::RestartAfter(delay) => {
                slot.phase = Phase::Backoff {
                    until: Instant::now() + delay,
                };
                self.system_event(
                    event::AGENT_BACKOFF,
                    id.as_str(),
                    json!({"reason": why, "delay_ms": delay.as_millis() as u64}),
                );
            }
            Verdict::Failed => {
                slot.phase = Phase::Failed;
                let (burst, window) = (slot.cfg.policy.burst, slot.cfg.policy.window);
                // Escalate before persisting `failed`: a crash in between
                // then repeats the escalation rather than losing it.
                let mut plan = super::plan::Plan::at(super::plan::now_ms());
                let reason = format!(
                    "agent {id} failed: {why}; more than {burst} failures within {}",
                    humantime::format_duration(window)
                );
                let context =
                    json!({"hint": format!("run `society restart {id}` once the cause is fixed")});
                self.planner().escalation(
                    &mut plan,
                    society_core::MsgId::generate(),
                    id.as_str(),
                    None,
                    &reason,
                    context,
                );
                self.commit_direct(plan);
                self.record(id).failed = true;
                self.save_state();
                self.system_event(
                    event::AGENT_FAILED,
                    id.as_str(),
                    json!({"reason": why, "burst": burst, "window": humantime::format_duration(window).to_string(), "hint": format!("run `society restart {id}` once the cause is fixed")}),
                );
            }
        }
        self.status_dirty = true;
    }

    /// Asks a running agent to stop: SIGTERM to its group now, SIGKILL after grace.
    pub(super) fn stop(&mut self, id: &AgentId, reason: &'static str) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        let Phase::Up(proc) = slot.phase.clone() else {
            return;
        };
        let deadline = Instant::now() + slot.cfg.policy.grace;
        signal_group(&proc, Signal::SIGTERM);
        slot.phase = Phase::Stopping {
            proc,
            deadline,
            killed: false,
            reason,
        };
        self.status_dirty = true;
        self.system_event("agent_stopping", id.as_str(), json!({"reason": reason}));
    }

    /// Backoff expiries and SIGKILL escalations.
    pub(super) fn on_deadlines(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (id, slot) in self.slots.iter_mut() {
            match &mut slot.phase {
                Phase::Backoff { until } if *until <= now => due.push(id.clone()),
                Phase::Stopping {
                    proc,
                    deadline,
                    killed,
                    ..
                } if *deadline <= now && !*killed => {
                    signal_group(proc, Signal::SIGKILL);
                    *killed = true;
                    tracing::warn!(agent = %id, pid = proc.pid, "grace period over; SIGKILL");
                }
                _ => {}
            }
        }
        for id in due {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.phase = Phase::Down;
            }
            self.record(&id).restarts += 1;
            self.save_state();
            self.start(&id, "restart");
        }
    }

    /// Hung agents (stale heartbeat) and the death of adopted agents (lock freed).
    pub(super) fn check_liveness(&mut self) {
        for slot in self.slots.values_mut() {
            learn_pid(slot, &mut self.pids);
        }
        let mut hung = Vec::new();
        let mut gone = Vec::new();
        for (id, slot) in &self.slots {
            let proc = match &slot.phase {
                Phase::Up(p) => p,
                Phase::Stopping { proc, .. } => proc,
                _ => continue,
            };
            if !proc.child && matches!(lock::probe(&slot.paths.lock()), Ok(LockState::Free)) {
                gone.push((id.clone(), proc.pid));
                continue;
            }
            if matches!(slot.phase, Phase::Up(_)) {
                let since_start = proc.started.elapsed();
                let since_beat = std::fs::metadata(slot.paths.status())
                    .and_then(|m| m.modified())
                    .map(society_core::time::age)
                    .unwrap_or(since_start);
                if since_beat.min(since_start) > slot.cfg.policy.hang_timeout {
                    hung.push((id.clone(), since_beat));
                }
            }
        }
        for (id, pid) in gone {
            self.pids.remove(&pid);
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.phase = Phase::Down;
            }
            self.status_dirty = true;
            self.system_event(
                event::AGENT_EXITED,
                id.as_str(),
                json!({"pid": pid, "adopted": true}),
            );
            if !self.shutting_down {
                self.after_down(&id);
            }
        }
        for (id, age) in hung {
            self.system_event(
                event::AGENT_HUNG,
                id.as_str(),
                json!({"heartbeat_age_ms": age.as_millis() as u64}),
            );
            self.stop(&id, "hung");
        }
    }

    pub(super) fn begin_shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.activity.event(
            "supervisor_stopping",
            json!({"live_agents": self.live_count()}),
        );
        tracing::info!(
            live_agents = self.live_count(),
            "supervisor stopping: SIGTERM to every agent, SIGKILL after its grace"
        );
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            self.stop(&id, "shutdown");
        }
    }
}

/// The agent's checkpoint (a default one if it has none or it cannot be
/// read): how many messages it handled, its generation.
fn checkpoint(slot: &Slot) -> AgentCheckpoint {
    AgentCheckpoint::read(&slot.paths)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// How many inbox lines the agent has consumed, per its checkpoint: handled
/// or dead-lettered, either is progress through the inbox.
fn handled(slot: &Slot) -> u64 {
    let c = checkpoint(slot);
    c.handled + c.dead_lettered
}

/// Does the agent have unconsumed mail? Only complete lines count: a torn
/// tail is not mail, and starting the agent for it would loop forever.
pub(super) fn pending(slot: &Slot) -> bool {
    let len = file_len(&slot.paths.inbox());
    if len == 0 {
        return false;
    }
    let ckpt: AgentCheckpoint = AgentCheckpoint::read(&slot.paths)
        .ok()
        .flatten()
        .unwrap_or_default();
    // The cursor is in segment `inbox_seg`; if the inbox has been rotated
    // past it (a crash before the agent recorded the rotation), everything
    // in the live file is unread.
    // (A file shorter than the cursor is the only sign worth a look.)
    let layout = crate::agent::layout_of(&slot.paths);
    let rotated = len < ckpt.inbox_offset
        && society_core::segments::live_seq(&layout, &slot.paths.inbox())
            .is_ok_and(|live| live > ckpt.inbox_seg);
    let offset = if rotated { 0 } else { ckpt.inbox_offset };
    len > offset
        // Any complete line is mail, however long: hold little of it.
        && society_core::jsonl::read_lines_bounded(&slot.paths.inbox(), offset, 4096, 4096)
            .is_ok_and(|b| !b.lines.is_empty())
}

/// Agents run in their own process group (pgid = pid), so tools they started go too.
fn signal_group(proc: &Proc, sig: Signal) {
    if !proc.signalable() {
        return;
    }
    let pid = proc.pid;
    if killpg(Pid::from_raw(pid), sig).is_err() {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

impl Proc {
    /// May this pid be signalled? Our child's pid is ours until we reap it;
    /// an adopted process's pid only while it still names the process we
    /// adopted (same start time), and never 0, which would signal our group.
    pub(super) fn signalable(&self) -> bool {
        self.pid > 0
            && (self.child
                || self
                    .start
                    .is_none_or(|s| lock::process_start(self.pid as u32) == Some(s)))
    }
}
