//! One agent process: `society agent-run --folder DIR`.
//!
//! Startup order matters: signal handlers first (so a wake-up or a TERM that
//! arrives early is never fatal), then the folder lock (one process per
//! folder), then the generation bump, then the loop. The loop consumes the
//! inbox by byte cursor and otherwise sleeps on a channel fed by the signal
//! thread, waking at least every `heartbeat` to rewrite `status.json` — from
//! this loop, not a side thread, so a stuck loop shows as a stale heartbeat.

mod ack;
mod batch;
mod delivery;
mod governance;
mod incident;
mod leftover;
mod metadata;
mod outputs;
mod redrive;
mod retention;
mod signals;
mod trim;

pub use retention::layout_of;

use crate::activity::Log;
use crate::exit::Code;
use society_brains::{Brain, BrainError};
use society_core::jsonl::{read_lines_checked, Appender};
use society_core::lock::{HeldLock, LockError, LockInfo};
use society_core::state::{AgentCheckpoint, AgentConfig, AgentStatus, CurrentMessage, LiveState};
use society_core::{atomic, time, AgentPaths, FormatError, IoError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Caught up for this long: the live checkpoint is copied to the fsynced
/// `checkpoint.json` (see `AgentCheckpoint::read`).
const SETTLE_IDLE: Duration = Duration::from_millis(20);
/// Working without a pause for this long: settled all the same.
const SETTLE_BUSY: Duration = Duration::from_secs(1);
/// Idle for this long: the code pages are given back (`trim.rs`). Not
/// sooner, so an agent with a message every few milliseconds keeps them.
const TRIM_IDLE: Duration = Duration::from_secs(1);

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
    /// A state file of the folder is corrupt (`checkpoint.json`).
    #[error("cannot start agent in {}: {source}", folder.display())]
    State {
        folder: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl AgentError {
    /// A failed read or write of the folder's files (a full disk, an I/O
    /// error), which waiting may cure — not a corrupt file or a bad config.
    fn is_io(&self) -> bool {
        match self {
            // A symbolic link refused (`confine`): waiting cures nothing;
            // the folder must be repaired (the supervisor marks it broken).
            AgentError::Io(e) | AgentError::Format(FormatError::Io(e)) => e.symlinked().is_none(),
            _ => false,
        }
    }

    /// The symbolic link this failure is the refusal of, if it is one.
    fn symlinked(&self) -> Option<&society_core::confine::Symlinked> {
        match self {
            AgentError::Io(e) => e.symlinked(),
            AgentError::Format(e) | AgentError::Config { source: e, .. } => e.symlinked(),
            _ => None,
        }
    }
}

impl AgentError {
    pub fn exit_code(&self) -> Code {
        if self.symlinked().is_some() {
            return Code::Invalid;
        }
        match self {
            AgentError::Locked { .. } => Code::Locked,
            AgentError::Config { .. } | AgentError::Brain { .. } | AgentError::State { .. } => {
                Code::Invalid
            }
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
    // Nothing of the folder is followed out of the society (`confine`):
    // refused before the lock, the config or the brain are touched.
    society_core::confine::check_folder(&paths)
        .map_err(|link| IoError::new("start an agent in", folder, link.into_io()))?;
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
    if let Err(e) = lock.write_info(&LockInfo::me(started.clone(), 0)) {
        // Informational; liveness is the lock itself.
        tracing::error!(error = %e, "cannot describe this process in process.lock");
    }
    // Before the new status.json overwrites the record of it.
    let swept = leftover::sweep(&paths);
    let brain = society_brains::build(&cfg.brain).map_err(|source| AgentError::Brain {
        folder: folder.into(),
        source,
    })?;
    let mut ckpt = load_checkpoint(&paths)?;
    ckpt.generation += 1;
    // Written fsynced, so it is the newer of the two files.
    ckpt.seq += 1;
    let gen = ckpt.generation;
    let durable = cfg.policy.durability == society_core::jsonl::Durability::Durable;
    // A full disk at startup: wait for room (holding the folder) rather than
    // exit and be counted as a crash.
    let mut pause = IoPause::default();
    while let Err(e) = atomic::write_json(&paths.checkpoint(), &ckpt, durable) {
        if signals.stop.load(Ordering::SeqCst) {
            return Err(e.into());
        }
        pause.wait(&e.to_string(), &signals.stop);
    }
    if let Err(e) = lock.write_info(&LockInfo::me(started.clone(), gen)) {
        tracing::error!(error = %e, "cannot describe this process in process.lock");
    }
    let mut agent = Agent {
        layout: retention::layout_of(&paths),
        attempt_on_disk: None,
        seen_before: (ckpt.inbox_seg, delivery::file_len(&paths.inbox())?),
        unsettled: false,
        trimmed: false,
        lost_outputs: Default::default(),
        last_settle: Instant::now(),
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
        gov: governance::Gov::default(),
        meta_dirty: true,
        _lock: lock,
    };
    agent.find_lost_outputs()?;
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
    if agent.unsettled {
        if let Err(e) = agent.settle() {
            // The live file holds the state: nothing is lost, unless power is.
            tracing::error!(error = %e, "cannot write checkpoint.json on the way out");
        }
    }
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

/// Reads the checkpoint, ready to resume: a batch the previous process left
/// interrupted is replayed line by line (the range is kept until the cursor
/// passes it). A corrupt checkpoint is refused: `society fsck --repair`
/// rebuilds it from the logs.
fn load_checkpoint(paths: &AgentPaths) -> Result<AgentCheckpoint, AgentError> {
    let mut ckpt: AgentCheckpoint = match AgentCheckpoint::read(paths) {
        Ok(c) => c.unwrap_or_default(),
        Err(e @ FormatError::Json { .. }) => {
            return Err(AgentError::State {
                folder: paths.dir.clone(),
                source: e,
            })
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(end) = ckpt.in_flight.as_ref().and_then(|f| f.batch_end) {
        let outbox_offset = ckpt.in_flight.as_ref().map_or(0, |f| f.outbox_offset);
        ckpt.replay = Some(society_core::state::Replay { end, outbox_offset });
    }
    retention::reconcile(&retention::layout_of(paths), paths, &mut ckpt)?;
    Ok(ckpt)
}

/// Records why this process exits with an error as a `start_failed` or
/// `exit_error` line in its folder's `activity.jsonl`, so the supervisor can
/// put the cause into its escalation instead of "exit code 5". Best effort.
/// A process that lost the folder's lock to another writes nothing.
pub fn record_exit_error(folder: &Path, err: &AgentError) {
    if matches!(err, AgentError::Locked { .. }) {
        return;
    }
    let paths = AgentPaths::new(folder.to_path_buf());
    let agent = folder
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(society_core::layout::names::AGENT_DIR_PREFIX))
        .unwrap_or("?")
        .to_string();
    if let Ok(mut log) = Log::open(&paths.activity(), &agent, 0) {
        log.event(
            society_core::kinds::event::EXIT_ERROR,
            serde_json::json!({"pid": std::process::id(), "code": err.exit_code().code(), "error": err.to_string()}),
        );
    }
}

/// Growing pauses between tries of a write that failed (a full disk): the
/// agent keeps its folder and its place, and resumes when the write works.
#[derive(Default)]
struct IoPause {
    tries: u32,
}

impl IoPause {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn wait(&mut self, error: &str, stop: &AtomicBool) {
        let delay = (Self::FIRST * 2u32.saturating_pow(self.tries)).min(Self::MAX);
        self.tries = self.tries.saturating_add(1);
        tracing::error!(
            error,
            retry_in_ms = delay.as_millis() as u64,
            "a write failed; waiting to try again"
        );
        let end = Instant::now() + delay;
        while Instant::now() < end && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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
    /// The society the folder belongs to (for `archive/`).
    layout: society_core::Layout,
    /// The attempt this process last recorded in flight (to give it back
    /// if a failed write, not the message, ends it).
    attempt_on_disk: Option<(society_core::MsgId, u32)>,
    /// The inbox (segment, length) when this process started: lines after
    /// its cursor and before that length may have been handled, and their
    /// dead letters written, by an earlier generation whose last steps a
    /// power cut took from the checkpoint.
    seen_before: (u64, u64),
    /// The live checkpoint is ahead of `checkpoint.json`.
    unsettled: bool,
    /// Idle, and the code pages given back (`trim.rs`).
    trimmed: bool,
    /// Output ids after the checkpoint's `outbox_end` when this process
    /// started (`find_lost_outputs`).
    lost_outputs: std::collections::HashSet<society_core::MsgId>,
    last_settle: Instant,
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
    /// Decisions and learned state (loaded at the first decision).
    gov: governance::Gov,
    /// `metadata.json` lags the checkpoint's counts (written when caught up).
    meta_dirty: bool,
    _lock: HeldLock,
}

impl Agent {
    fn run(&mut self, wake: &std::sync::mpsc::Receiver<()>) -> Result<AgentExit, AgentError> {
        let mut last_work = Instant::now();
        let mut pause = IoPause::default();
        loop {
            if self.stopping() {
                return Ok(AgentExit::Stopped);
            }
            match self.work() {
                Ok(Work::Done) => {
                    pause = IoPause::default();
                    last_work = Instant::now();
                    self.trimmed = false;
                    // Busy for a while: bound what a power cut takes back.
                    if self.unsettled && self.last_settle.elapsed() >= SETTLE_BUSY {
                        if let Err(e) = self.settle() {
                            self.settle_failed(e.into(), &mut pause)?;
                        }
                    }
                    continue;
                }
                Ok(Work::Nothing) => {
                    pause = IoPause::default();
                    // Caught up: the moment to bring `learning/` up to date
                    // and to rotate what has grown.
                    self.flush_learning();
                    self.flush_metadata();
                    match self.rotate_due() {
                        Ok(()) => {}
                        Err(e) if e.is_io() => {
                            self.recover_from_io(&e, &mut pause)?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(Work::Incident) => return Ok(AgentExit::Stopped),
                Err(e) if e.is_io() => {
                    self.recover_from_io(&e, &mut pause)?;
                    continue;
                }
                Err(e) => return Err(e),
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
            // Caught up: settle once nothing more has come for a moment (a
            // message every millisecond keeps it unsettled, and the fsync
            // off the messages' path).
            if self.unsettled {
                wait = wait.min(SETTLE_IDLE);
            }
            if !self.trimmed {
                wait = wait.min(
                    TRIM_IDLE
                        .saturating_sub(idle_for)
                        .max(Duration::from_millis(1)),
                );
            }
            // Any outcome — a wake-up, a timeout, a stop — leads back to the checks above.
            let woke = wake.recv_timeout(wait).is_ok();
            while wake.try_recv().is_ok() {}
            if !woke && self.unsettled {
                if let Err(e) = self.settle() {
                    self.settle_failed(e.into(), &mut pause)?;
                }
            }
            if !woke && !self.trimmed && last_work.elapsed() >= TRIM_IDLE {
                trim::code_pages();
                self.trimmed = true;
            }
            self.beat(false);
        }
    }

    /// Reads the inbox after the cursor and handles what is there.
    fn work(&mut self) -> Result<Work, AgentError> {
        if self.ckpt.incident.is_some() {
            // Recorded by this or an earlier process: make sure it was told.
            self.escalate_incident()?;
            return Ok(Work::Incident);
        }
        // At most `max_record` bytes of any line are held: a longer one is
        // dead-lettered by its size (`delivery.rs`), never loaded whole.
        let (check, batch) = read_lines_checked(
            &self.paths.inbox(),
            self.ckpt.inbox_offset,
            256 * 1024,
            self.cfg.policy.max_record,
        )?;
        if check != society_core::jsonl::CursorCheck::Ok {
            self.inbox_incident(check)?;
            return Ok(Work::Incident);
        }
        if batch.lines.is_empty() {
            return Ok(Work::Nothing);
        }
        let mut rest = &batch.lines[..];
        while !rest.is_empty() && !self.stopping() {
            let (grouped, halt) = self.handle_batch(rest)?;
            if halt {
                break;
            }
            if grouped > 0 {
                rest = &rest[grouped..];
                continue;
            }
            match self.handle_line(&rest[0])? {
                delivery::Outcome::Advanced => rest = &rest[1..],
                delivery::Outcome::Retry | delivery::Outcome::Abandoned => break,
            }
        }
        Ok(Work::Done)
    }

    /// A read or write failed (a full disk, say). The files are the truth:
    /// forget what this process believed since its last checkpoint and
    /// resume from the one on disk, as a new generation would — but without
    /// counting an attempt against the message, whose fault it was not.
    fn recover_from_io(&mut self, err: &AgentError, pause: &mut IoPause) -> Result<(), AgentError> {
        self.activity
            .event("io_error", serde_json::json!({"error": err.to_string()}));
        pause.wait(&err.to_string(), &self.stop);
        let mut ckpt = load_checkpoint(&self.paths)?;
        // Only the attempt this process recorded (and that then met the
        // failure) is given back; an earlier, genuinely failed one stays.
        let ours = self.attempt_on_disk.take();
        if let Some(f) = ckpt
            .in_flight
            .as_mut()
            .filter(|f| f.batch_end.is_none() && ours == Some((f.id, f.attempt)))
        {
            f.attempt = f.attempt.saturating_sub(1);
        }
        self.seen_before = (ckpt.inbox_seg, delivery::file_len(&self.paths.inbox())?);
        self.ckpt = ckpt;
        self.find_lost_outputs()?;
        self.beat(true);
        Ok(())
    }

    /// `checkpoint.json` could not be written: an I/O failure waits like
    /// any other (the live file still holds the state); anything else ends
    /// the process.
    fn settle_failed(&mut self, err: AgentError, pause: &mut IoPause) -> Result<(), AgentError> {
        if err.is_io() {
            return self.recover_from_io(&err, pause);
        }
        Err(err)
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
        heartbeat(&self.paths, &self.status);
        self.last_beat = Instant::now();
    }
}

/// What one pass over the inbox did.
enum Work {
    Done,
    Nothing,
    /// The inbox no longer matches the cursor: stop consuming it.
    Incident,
}

/// Rewrites `status.json`. When that fails (a full disk has no room for the
/// new file), the old file's mtime is set instead — which needs no space and
/// is what the supervisor's hang check reads — so a full disk does not make
/// a working agent look hung.
pub(crate) fn heartbeat(paths: &AgentPaths, status: &AgentStatus) {
    if let Err(e) = atomic::write_json(&paths.status(), status, false) {
        let touched = std::fs::File::options()
            .write(true)
            .open(paths.status())
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        if touched.is_err() {
            tracing::error!(error = %e, "failed to write heartbeat");
        }
    }
}
