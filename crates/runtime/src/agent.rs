//! One agent process: `society agent-run --folder DIR`.
//!
//! Startup order matters: signal handlers first (so a wake-up or a TERM that
//! arrives early is never fatal), then the folder lock (one process per
//! folder), then the generation bump, then the loop. The loop consumes the
//! inbox by byte cursor and otherwise sleeps on a channel fed by the signal
//! thread, waking at least every `heartbeat` to rewrite `status.json` — from
//! this loop, not a side thread, so a stuck loop shows as a stale heartbeat.

mod batch;
mod delivery;
mod leftover;
mod signals;

use crate::activity::Log;
use crate::exit::Code;
use society_brains::{Brain, BrainError};
use society_core::jsonl::{read_lines, Appender};
use society_core::lock::{HeldLock, LockError, LockInfo};
use society_core::state::{AgentCheckpoint, AgentConfig, AgentStatus, CurrentMessage, LiveState};
use society_core::{atomic, time, AgentPaths, FormatError, IoError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why an agent process could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent folder {} is already bound to a running process{}; only one process may hold process.lock", folder.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { folder: PathBuf, pid: Option<u32> },
    #[error("cannot start agent in {}: {source}", folder.display())]
    Config {
        folder: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("cannot build the brain for agent in {}: {source}", folder.display())]
    Brain {
        folder: PathBuf,
        #[source]
        source: BrainError,
    },
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl AgentError {
    pub fn exit_code(&self) -> Code {
        match self {
            AgentError::Locked { .. } => Code::Locked,
            AgentError::Config { .. } | AgentError::Brain { .. } => Code::Invalid,
            AgentError::Format(_) | AgentError::Io(_) => Code::Error,
        }
    }
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentExit {
    Idle,
    Stopped,
}

/// Runs the agent bound to `folder` until it idles out or is told to stop.
pub fn run_agent(folder: &Path) -> Result<AgentExit, AgentError> {
    let signals = signals::install()?;
    let paths = AgentPaths::new(folder.to_path_buf());
    let cfg: AgentConfig = match atomic::read_json(&paths.config(), "agent config") {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(AgentError::Config {
                folder: folder.into(),
                source: IoError::new("read", paths.config(), std::io::ErrorKind::NotFound.into())
                    .into(),
            })
        }
        Err(source) => {
            return Err(AgentError::Config {
                folder: folder.into(),
                source,
            })
        }
    };
    let mut lock = acquire(&paths)?;
    // Say who holds the lock at once: until now the file names the previous
    // generation, whose pid may belong to another process by now, and a
    // supervisor adopting us would signal that one. The generation is filled
    // in below, once the checkpoint is read.
    let started = time::now_rfc3339();
    lock.write_info(&LockInfo::me(started.clone(), 0))?;
    // Before the new status.json overwrites the record of it.
    let swept = leftover::sweep(&paths);
    let brain = society_brains::build(&cfg.brain).map_err(|source| AgentError::Brain {
        folder: folder.into(),
        source,
    })?;
    let mut ckpt: AgentCheckpoint =
        atomic::read_json(&paths.checkpoint(), "agent checkpoint")?.unwrap_or_default();
    ckpt.generation += 1;
    // A batch interrupted by the previous process is replayed line by line;
    // the range is kept in the checkpoint until the cursor passes it.
    if let Some(end) = ckpt.in_flight.as_ref().and_then(|f| f.batch_end) {
        let outbox_offset = ckpt.in_flight.as_ref().map_or(0, |f| f.outbox_offset);
        ckpt.replay = Some(society_core::state::Replay { end, outbox_offset });
    }
    let gen = ckpt.generation;
    let durable = cfg.policy.durability == society_core::jsonl::Durability::Durable;
    atomic::write_json(&paths.checkpoint(), &ckpt, durable)?;
    lock.write_info(&LockInfo::me(started.clone(), gen))?;
    let mut agent = Agent {
        resume_offset: ckpt.inbox_offset,
        activity: Log::open(&paths.activity(), cfg.id.as_str(), gen)?,
        outbox: Appender::open(
            &paths.outbox(),
            cfg.policy.durability,
            cfg.policy.max_record,
        )?,
        deadletter: Appender::open(
            &paths.deadletter(),
            cfg.policy.durability,
            society_core::DEFAULT_MAX_RECORD,
        )?,
        durable,
        status: AgentStatus {
            agent: cfg.id.clone(),
            pid: std::process::id(),
            gen,
            state: LiveState::Starting,
            ts: started.clone(),
            since: started,
            current: None,
            handled: ckpt.handled,
            tool_pgid: None,
        },
        last_beat: Instant::now(),
        stop: signals.stop.clone(),
        cfg,
        paths,
        ckpt,
        brain,
        _lock: lock,
    };
    agent.activity.event(
        "started",
        serde_json::json!({"pid": std::process::id(), "resumes": agent.ckpt.in_flight.as_ref().map(|f| f.id)}),
    );
    if let Some(s) = swept {
        agent.activity.event(
            "tool_group_killed",
            serde_json::json!({"pgid": s.pgid, "pids": s.pids}),
        );
    }
    agent.beat(true);
    let how = agent.run(&signals.wake)?;
    agent.set_state(LiveState::Stopping, None);
    let reason = match how {
        AgentExit::Idle => {
            agent.activity.event("idle_exit", serde_json::json!({"idle_exit": humantime::format_duration(agent.cfg.policy.idle_exit).to_string()}));
            "idle"
        }
        AgentExit::Stopped => "signal",
    };
    agent.activity.event(
        "stopped",
        serde_json::json!({"reason": reason, "handled": agent.ckpt.handled}),
    );
    Ok(how)
}

/// Takes the folder lock. Retries for a moment because a `status` probe may
/// hold it for microseconds; a real holder keeps it and we give up.
fn acquire(paths: &AgentPaths) -> Result<HeldLock, AgentError> {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        match HeldLock::try_acquire(&paths.lock()) {
            Ok(l) => return Ok(l),
            Err(LockError::Held { holder, .. }) => {
                if Instant::now() >= deadline {
                    return Err(AgentError::Locked {
                        folder: paths.dir.clone(),
                        pid: holder.map(|h| h.pid),
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(LockError::Io(e)) => return Err(e.into()),
        }
    }
}

pub(crate) struct Agent {
    /// The inbox cursor this process started from: the only line whose
    /// dead letter an earlier generation may already have written.
    resume_offset: u64,
    cfg: AgentConfig,
    paths: AgentPaths,
    ckpt: AgentCheckpoint,
    brain: Box<dyn Brain>,
    activity: Log,
    outbox: Appender,
    deadletter: Appender,
    durable: bool,
    status: AgentStatus,
    last_beat: Instant,
    stop: Arc<AtomicBool>,
    _lock: HeldLock,
}

impl Agent {
    fn run(&mut self, wake: &std::sync::mpsc::Receiver<()>) -> Result<AgentExit, AgentError> {
        let mut last_work = Instant::now();
        loop {
            if self.stopping() {
                return Ok(AgentExit::Stopped);
            }
            let batch = read_lines(&self.paths.inbox(), self.ckpt.inbox_offset, 256 * 1024)?;
            if !batch.lines.is_empty() {
                let mut rest = &batch.lines[..];
                while !rest.is_empty() && !self.stopping() {
                    let grouped = self.handle_batch(rest)?;
                    if grouped > 0 {
                        rest = &rest[grouped..];
                        continue;
                    }
                    match self.handle_line(&rest[0])? {
                        delivery::Outcome::Advanced => rest = &rest[1..],
                        delivery::Outcome::Retry | delivery::Outcome::Abandoned => break,
                    }
                }
                last_work = Instant::now();
                continue;
            }
            self.set_state(LiveState::Idle, None);
            let idle_for = last_work.elapsed();
            if !self.cfg.keep_alive && idle_for >= self.cfg.policy.idle_exit {
                return Ok(AgentExit::Idle);
            }
            let mut wait = self.cfg.policy.heartbeat;
            if !self.cfg.keep_alive {
                wait = wait.min(self.cfg.policy.idle_exit - idle_for);
            }
            // Any outcome — a wake-up, a timeout, a stop — leads back to the checks above.
            let _ = wake.recv_timeout(wait);
            while wake.try_recv().is_ok() {}
            self.beat(false);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn set_state(&mut self, state: LiveState, current: Option<CurrentMessage>) {
        if self.status.state != state || self.status.current != current {
            self.status.state = state;
            self.status.current = current;
            self.status.since = time::now_rfc3339();
            self.beat(true);
        }
    }

    /// Rewrites `status.json` if a heartbeat is due (or `force`).
    pub(crate) fn beat(&mut self, force: bool) {
        if !force && self.last_beat.elapsed() < self.cfg.policy.heartbeat / 2 {
            return;
        }
        self.status.ts = time::now_rfc3339();
        self.status.handled = self.ckpt.handled;
        if let Err(e) = atomic::write_json(&self.paths.status(), &self.status, false) {
            tracing::error!(error = %e, "failed to write heartbeat");
        }
        self.last_beat = Instant::now();
    }
}
