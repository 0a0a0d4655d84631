//! The supervisor daemon (`society supervise`).
//!
//! One thread owns every piece of mutable state ([`Supervisor`]) and loops on a
//! channel fed by the signal thread and the file watcher, with a tick for
//! deadlines (backoff, grace periods, hang checks) and a periodic scan that
//! makes inotify a pure optimisation: if an event is lost, the scan finds the
//! grown file within a second.

mod broadcast;
mod broken;
mod cases;
mod commit;
mod debate;
mod escalations;
mod events;
pub mod guard;
mod journal;
mod lifecycle;
mod persist;
mod plan;
mod planner;
mod policy;
pub mod reload;
mod remove;
mod requests;
mod retention;
mod router;
mod shared;
pub mod state;

pub(crate) use plan::position_key;

use crate::activity::{self, Log};
use crate::config::{ConfigError, SocietyConfig};
use crate::restart::RestartState;
use events::{Event, FileWatch};
use society_core::jsonl::{Appender, Durability};
use society_core::layout::names;
use society_core::lock::{HeldLock, LockError, LockInfo};
use society_core::state::{AgentConfig, Policy};
use society_core::{atomic, time, AgentId, AgentPaths, FormatError, IoError, Layout};
use state::SupervisorCheckpoint;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot read the supervisor checkpoint {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("a supervisor is already running for {}{}", root.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { root: PathBuf, pid: Option<u32> },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl SupervisorError {
    /// The exit code of `society supervise` for this error.
    pub fn exit_code(&self) -> crate::exit::Code {
        use crate::exit::Code;
        match self {
            SupervisorError::AlreadyRunning { .. } => Code::Locked,
            SupervisorError::Config(_) | SupervisorError::Checkpoint { .. } => Code::Invalid,
            SupervisorError::Format(e) => crate::exit::format_code(e),
            SupervisorError::Io(_) => Code::Error,
        }
    }
}

impl From<LockError> for SupervisorError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Held { path, holder } => SupervisorError::AlreadyRunning {
                root: path
                    .parent()
                    .and_then(|p| p.parent())
                    .and_then(|p| p.parent())
                    .map(PathBuf::from)
                    .unwrap_or(path),
                pid: holder.map(|h| h.pid),
            },
            LockError::Io(e) => SupervisorError::Io(e),
        }
    }
}

/// How to run the daemon.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `society` binary to re-execute as `agent-run` (normally `current_exe()`).
    pub exe: PathBuf,
}

/// Main loop period: the resolution of backoff and grace deadlines.
const TICK: Duration = Duration::from_millis(50);
/// Period of the full scan that backs up the file watcher, and of hang checks.
const SCAN: Duration = Duration::from_millis(1000);
/// Longest a landed batch's cursor waits to be saved. A crash in between
/// routes those lines again, skipping what landed (`commit.rs`, `ahead`).
const SAVE_EVERY: Duration = Duration::from_millis(50);
/// Hang timeouts are seconds to minutes; a finer check only costs a stat of
/// every live agent's heartbeat file, every time.
const HANG_CHECK: Duration = Duration::from_millis(1000);

/// Runs the supervisor until SIGTERM/SIGINT; then stops every agent and returns.
pub fn run_supervisor(layout: &Layout, opts: Options) -> Result<(), SupervisorError> {
    // Idempotent: checks the format and recreates any missing directory or
    // file of the tree (e.g. empty directories a copy or a VCS dropped).
    layout.create()?;
    let mut lock = HeldLock::try_acquire(&layout.supervisor_lock())?;
    let started = time::now_rfc3339();
    lock.write_info(&LockInfo::me(started.clone(), 0))?;
    tracing::info!(
        pid = std::process::id(),
        root = %layout.root().display(),
        version = %env!("CARGO_PKG_VERSION"),
        "supervisor started"
    );
    lifecycle::ignore_wakeup_signal();
    let config = SocietyConfig::load(&layout.society_toml())?;
    match crate::governance::republish(layout, &config) {
        Ok(warnings) => warnings.iter().for_each(|w| tracing::warn!("{w}")),
        Err(error) => tracing::warn!(%error, "policy.json not written"),
    }
    let default_policy = default_policy(&config);
    let mut repaired = Vec::new();
    for cfg in config.declared(&layout.society_toml())? {
        if crate::provision::provision(layout, &cfg, "society.toml")?
            == crate::provision::Provisioned::Repaired
        {
            repaired.push(cfg.id);
        }
    }
    let ckpt = atomic::read_json(&layout.supervisor_checkpoint(), "supervisor checkpoint")
        .map_err(|source| SupervisorError::Checkpoint {
            path: layout.supervisor_checkpoint(),
            source,
        })?
        .unwrap_or_default();
    let guard = persist::load_guard(layout);
    let (tx, rx) = mpsc::channel();
    events::signals(tx.clone())?;
    let mut sup = Supervisor {
        layout: layout.clone(),
        society: config.society.name.clone(),
        federation: config.federation.clone(),
        bridge: None,
        exe: opts.exe,
        watch: FileWatch::new(tx),
        ckpt,
        slots: BTreeMap::new(),
        pids: HashMap::new(),
        activity: Log::open(&layout.supervisor_activity(), "supervisor", 0)?,
        events: Appender::open(
            &layout.system_events(),
            Durability::Flushed,
            society_core::DEFAULT_MAX_RECORD,
        )?,
        router_durability: default_policy.durability,
        default_policy: default_policy.clone(),
        shutting_down: false,
        started,
        status_dirty: true,
        last_status: Instant::now() - SCAN,
        registry_len: 0,
        routing: config.routing.clone(),
        guard,
        guard_dirty: false,
        cases: cases::Cases::load(layout),
        debates: debate::Debates::load(layout),
        broadcasts: broadcast::Broadcasts::default(),
        shared: shared::SharedRequests::default(),
        approvals: HashMap::new(),
        decided: HashSet::new(),
        items: crate::org::Items::default(),
        stalled: Vec::new(),
        next_stall_id: 0,
        last_retry: Instant::now() - SCAN,
        last_save: Instant::now(),
        trouble: None,
        paced: HashMap::new(),
        removing: BTreeMap::new(),
        ckpt_dirty: false,
        recent_dests: Default::default(),
        recovery: Default::default(),
        recovered_present: Default::default(),
        recovery_ahead: Default::default(),
        _lock: lock,
    };
    sup.watch.add(&layout.registry());
    sup.watch.add(&layout.supervisor_inbox());
    sup.activity.event(
        "supervisor_started",
        serde_json::json!({"pid": std::process::id()}),
    );
    for id in repaired {
        // Derived from society.toml, so rewriting it loses nothing; said
        // where people look.
        sup.system_event(
            "agent_config_repaired",
            id.as_str(),
            serde_json::json!({"from": "society.toml", "reason": "config.json could not be read"}),
        );
    }
    sup.rescan_agents()?;
    sup.recover_removals();
    sup.reconcile_segments()?;
    retention::finish_archive(layout);
    sup.load_approvals()?;
    // What the last process left half-written lands before anything new is
    // read; then the supervisor's own inbox before the outboxes, so requests
    // made while it was down (a message the orchestrator delivered, a case
    // opened) are recorded before the agents' answers to them.
    sup.recover_pending();
    sup.refold_items();
    sup.archive_closed();
    sup.process_requests();
    sup.route_all();
    // Answers routed just now (debate perspectives among them) are recorded
    // before debates resume from their logs; one past its deadline expires
    // now.
    sup.process_requests();
    sup.debate_tick();
    sup.escalation_tick();
    sup.broadcast_tick();
    sup.shared_tick();
    sup.activate_all();
    sup.start_bridge();
    tracing::info!(
        agents = sup.slots.len(),
        running = sup.live_count(),
        "supervisor ready"
    );
    sup.run(rx);
    // Stops publishing and consuming; what is not acknowledged is sent or
    // received again by the next supervisor.
    sup.bridge = None;
    sup.save_guard(true);
    sup.activity
        .event("supervisor_stopped", serde_json::json!({}));
    sup.write_status("stopped");
    tracing::info!(pid = std::process::id(), "supervisor stopped");
    Ok(())
}

impl Supervisor {
    /// Starts the federation bridge when `[federation]` is set. A bridge
    /// that cannot start is said in the log and the system events; the
    /// society works on, and messages to other societies wait in
    /// `outbound.jsonl`.
    fn start_bridge(&mut self) {
        let (Some(name), Some(cfg)) = (self.society.clone(), self.federation.clone()) else {
            return;
        };
        match crate::federation::Bridge::start(&self.layout, name.clone(), cfg.clone()) {
            Ok(bridge) => {
                tracing::info!(society = %name, servers = %cfg.nats_url, "federation bridge started");
                self.bridge = Some(bridge);
            }
            Err(e) => {
                tracing::error!(error = %e, "the federation bridge cannot start");
                self.system_event(
                    "federation_failed",
                    "supervisor",
                    serde_json::json!({"reason": e.to_string()}),
                );
            }
        }
    }
}

fn default_policy(config: &SocietyConfig) -> Policy {
    serde_json::from_value(serde_json::Value::Object(config.defaults.clone())).unwrap_or_default()
}

/// What the supervisor knows about one agent.
pub(crate) struct Slot {
    pub cfg: AgentConfig,
    pub paths: AgentPaths,
    pub phase: Phase,
    pub restart: RestartState,
    /// Start again as soon as the current process is gone (`society restart`).
    pub restart_requested: bool,
    /// The generation of the agent's current process, or of its last one:
    /// the `gen` of the system events about it (see `lifecycle::start`).
    pub gen: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phase {
    /// No process.
    Down,
    Up(Proc),
    /// SIGTERM sent; SIGKILL at `deadline` if still alive.
    Stopping {
        proc: Proc,
        deadline: Instant,
        killed: bool,
        reason: &'static str,
    },
    Backoff {
        until: Instant,
    },
    Failed,
    /// Cannot run until its folder is repaired (see `broken.rs`).
    Broken {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proc {
    pub pid: i32,
    /// Our child (reaped by waitpid) or adopted from an earlier supervisor
    /// (watched through its lock).
    pub child: bool,
    /// An adopted process's start time (`/proc` ticks), checked before every
    /// signal so a reused pid is never signalled; `None` for our children.
    pub start: Option<u64>,
    pub started: Instant,
    /// The agent's `handled` count when this process started: a process that
    /// handled messages before failing resets the restart backoff.
    pub handled_at_start: u64,
}

pub(crate) struct Supervisor {
    layout: Layout,
    /// `[society] name` and `[federation]` (read at start).
    society: Option<society_core::SocietyName>,
    federation: Option<crate::config::FederationConfig>,
    /// The federation bridge's thread, when `[federation]` is set.
    bridge: Option<crate::federation::Bridge>,
    exe: PathBuf,
    watch: FileWatch,
    ckpt: SupervisorCheckpoint,
    slots: BTreeMap<AgentId, Slot>,
    pids: HashMap<i32, AgentId>,
    activity: Log,
    events: Appender,
    router_durability: Durability,
    /// `[defaults]`: the policy of the files no agent owns.
    default_policy: Policy,
    shutting_down: bool,
    started: String,
    status_dirty: bool,
    last_status: Instant,
    registry_len: u64,
    routing: crate::config::RoutingConfig,
    guard: guard::Guard,
    /// The guard changed since `guard.json` was last written.
    guard_dirty: bool,
    cases: cases::Cases,
    /// Open debates, folded from their case logs (see `debate.rs`).
    debates: debate::Debates,
    /// Broadcasts waiting for acknowledgements (see `broadcast.rs`).
    broadcasts: broadcast::Broadcasts,
    /// Agents' shared-context puts to apply (see `shared.rs`).
    shared: shared::SharedRequests,
    /// Approval requests delivered to the orchestrator, by id.
    approvals: HashMap<society_core::MsgId, society_core::Envelope>,
    /// Requests already answered.
    decided: HashSet<society_core::MsgId>,
    /// Escalations and approvals in the organisation (`crate::org`).
    items: crate::org::Items,
    /// Batches that could not be written yet (see `commit.rs`).
    stalled: Vec<commit::Stalled>,
    /// Names the next stalled batch.
    next_stall_id: u64,
    /// When stalled batches were last tried.
    last_retry: Instant,
    /// When `checkpoint.json` was last saved (see `SAVE_EVERY`).
    last_save: Instant,
    trouble: Option<commit::WriteTrouble>,
    /// Senders over their rate: their outbox waits until then.
    paced: HashMap<AgentId, Instant>,
    /// Agents being removed (`society rm`), with the folder each goes to
    /// (relative to the state directory); see `remove.rs`.
    removing: BTreeMap<AgentId, String>,
    /// `checkpoint.json` could not be saved outside a batch: retry.
    ckpt_dirty: bool,
    /// Destinations written since the last checkpoint, whose lengths the
    /// next one records as `ahead`.
    recent_dests: std::collections::BTreeSet<PathBuf>,
    /// At startup, each outbox's length past its cursor: lines that batches
    /// without a write-ahead record of their own may have delivered before
    /// the last process died. Routed once more against
    /// `recovered_present`, then forgotten.
    recovery: BTreeMap<AgentId, u64>,
    /// `(destination, key)` of every record after the `ahead` lengths of
    /// the checkpoint this process started from.
    recovered_present: std::collections::HashSet<(PathBuf, String)>,
    /// The `ahead` lengths `recovered_present` was read from: saved again
    /// unchanged while `recovery` lasts, so a second crash reads the same.
    recovery_ahead: BTreeMap<PathBuf, u64>,
    _lock: HeldLock,
}

impl Supervisor {
    fn run(&mut self, rx: mpsc::Receiver<Event>) {
        let mut last_scan = Instant::now();
        let mut last_hang = Instant::now();
        loop {
            match rx.recv_timeout(self.next_wait()) {
                Ok(ev) => {
                    self.on_event(ev);
                    while let Ok(ev) = rx.try_recv() {
                        self.on_event(ev);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => self.begin_shutdown(),
            }
            // Cursors of batches landed since the last save (see `finish`),
            // at most every SAVE_EVERY: batches in between need no save
            // (`ahead`). While writes fail, the scan retries instead.
            if self.ckpt_dirty && self.trouble.is_none() && self.last_save.elapsed() >= SAVE_EVERY {
                self.save_state();
            }
            self.reap();
            self.on_deadlines();
            self.debate_tick();
            self.escalation_tick();
            self.broadcast_tick();
            self.shared_tick();
            if !self.removing.is_empty() {
                self.finish_removals();
            }
            self.route_paced();
            if last_hang.elapsed() >= HANG_CHECK {
                last_hang = Instant::now();
                self.check_liveness();
            }
            if last_scan.elapsed() >= SCAN {
                last_scan = Instant::now();
                self.scan();
            }
            if self.shutting_down && self.pids.is_empty() && self.live_count() == 0 {
                self.retry_stalled(None);
                self.save_state();
                return;
            }
            let status_due = self.status_dirty || self.last_status.elapsed() >= SCAN;
            if status_due && self.last_status.elapsed() >= Duration::from_millis(100) {
                self.write_status(if self.shutting_down {
                    "stopping"
                } else {
                    "running"
                });
            }
        }
    }

    /// How long the loop may sleep: until the next tick, or sooner if a
    /// restart backoff or a grace period ends first (a 1 ms backoff must not
    /// wait for a 50 ms tick), or a debate's next step is due (its deadline,
    /// the end of an iteration).
    fn next_wait(&self) -> Duration {
        let now = Instant::now();
        let save = if self.ckpt_dirty {
            SAVE_EVERY.saturating_sub(self.last_save.elapsed())
        } else {
            TICK
        };
        let debate = self.debate_wait().unwrap_or(TICK).min(save);
        let debate = debate.min(self.escalation_wait().unwrap_or(TICK));
        self.slots
            .values()
            .filter_map(|s| match &s.phase {
                Phase::Backoff { until } => Some(*until),
                Phase::Stopping {
                    deadline,
                    killed: false,
                    ..
                } => Some(*deadline),
                _ => None,
            })
            .chain(self.paced.values().copied())
            .map(|t| t.saturating_duration_since(now))
            .fold(TICK.min(debate), Duration::min)
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Child => self.reap(),
            Event::Shutdown => self.begin_shutdown(),
            Event::Fs(paths) => {
                for path in paths {
                    self.on_file_changed(&path);
                }
            }
        }
    }

    fn on_file_changed(&mut self, path: &std::path::Path) {
        if path == self.layout.registry() {
            if let Err(e) = self.rescan_agents() {
                tracing::error!(error = %e, "failed to rescan agents");
            }
            return;
        }
        if path == self.layout.supervisor_inbox() {
            self.process_requests();
            return;
        }
        let Some(id) = agent_of(path) else { return };
        if !self.slots.contains_key(&id) {
            return;
        }
        match path.file_name().and_then(|n| n.to_str()) {
            Some(names::OUTBOX) => self.route(&id),
            Some(names::INBOX) => self.wake(&id),
            _ => {}
        }
    }

    /// The periodic safety net: anything the watcher missed is found here.
    fn scan(&mut self) {
        let len = file_len(&self.layout.registry());
        if len != self.registry_len {
            if let Err(e) = self.rescan_agents() {
                tracing::error!(error = %e, "failed to rescan agents");
            }
        }
        self.retry_stalled(None);
        self.escalate_trouble();
        self.recheck_broken();
        if self.ckpt_dirty {
            self.save_state();
        }
        self.process_requests();
        self.route_all();
        if !self.shutting_down {
            self.activate_all();
            self.check_due();
        }
        if self.guard_dirty {
            self.save_guard(false);
        }
        self.watch.refresh();
        self.rotate_due();
    }

    /// Picks up agent folders created since the last scan (by `spawn` or by hand).
    fn rescan_agents(&mut self) -> Result<(), SupervisorError> {
        self.registry_len = file_len(&self.layout.registry());
        for id in self.layout.agent_ids()? {
            if self.slots.contains_key(&id) {
                continue;
            }
            let paths = self.layout.agent(&id);
            self.watch.add(&paths.inbox());
            self.watch.add(&paths.outbox());
            let failed = self.ckpt.agents.get(&id).is_some_and(|r| r.failed);
            let (mut slot, problem) = broken::new_slot(&self.layout, &id, paths, failed);
            tracing::debug!(agent = %id, gen = slot.gen, role = %slot.cfg.role, "found an agent folder");
            lifecycle::adopt_if_alive(&mut slot, &mut self.pids, &mut self.activity);
            let broken_now = matches!(slot.phase, Phase::Broken { .. });
            self.slots.insert(id.clone(), slot);
            self.status_dirty = true;
            if let (Some(reason), true) = (problem, broken_now) {
                self.system_event(
                    society_core::kinds::event::AGENT_CONFIG_INVALID,
                    id.as_str(),
                    serde_json::json!({"error": reason}),
                );
                // Escalated once now; `mark_broken` skips a repeat.
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.phase = Phase::Down;
                }
                self.mark_broken(&id, reason);
            }
        }
        Ok(())
    }

    /// Rebuilds the approval index from the logs: requests in the
    /// orchestrator's inbox, answers among the requests already consumed.
    fn load_approvals(&mut self) -> Result<(), FormatError> {
        for env in crate::approvals::request_envelopes(&self.layout)? {
            self.approvals.insert(env.id, env);
        }
        self.load_answers()?;
        // Items in the organisation: approvals waiting at leads, and those
        // leads answered (a later answer is refused) — as they were before
        // any batch left half-written, which is re-planned against that
        // state; the whole log is folded again once it landed.
        let log = self.layout.supervisor_escalations();
        let limit = self
            .ckpt
            .pending
            .iter()
            .chain(self.ckpt.stalled.iter())
            .filter_map(|p| p.sizes.get(&log).copied())
            .min();
        self.load_items(limit)
    }

    /// Folds `supervisor/escalations.jsonl` (up to `limit` bytes).
    fn load_items(&mut self, limit: Option<u64>) -> Result<(), FormatError> {
        self.items = crate::org::Items::load_upto(&self.layout, limit)?;
        let answered: Vec<_> = self.items.lead_decisions().map(|d| d.request).collect();
        self.decided.extend(answered);
        Ok(())
    }

    /// After the recovery at start: the whole log (what the recovered
    /// batches wrote included).
    fn refold_items(&mut self) {
        if let Err(e) = self.load_items(None) {
            tracing::error!(error = %e, "cannot read supervisor/escalations.jsonl");
        }
    }

    /// The orchestrator's answers, as far as they were consumed.
    fn load_answers(&mut self) -> Result<(), FormatError> {
        // Answers among the requests already consumed: the archived
        // segments of the inbox (rotated fully consumed) and the live file
        // up to the cursor.
        let live = self.layout.supervisor_inbox();
        let mut consumed = Vec::new();
        for seg in society_core::segments::list(&self.layout, &live)? {
            for line in society_core::segments::lines(&seg)? {
                consumed.extend(society_core::Envelope::parse(&line?).ok());
            }
        }
        consumed.extend(envelopes(&live, self.ckpt.inbox_offset)?);
        for env in consumed {
            if let Ok(crate::control::Request::Decide { request, .. }) =
                serde_json::from_value(env.body)
            {
                self.decided.insert(request);
            }
        }
        Ok(())
    }

    /// A record in `system-events.jsonl` about `agent` (an agent id, or
    /// `supervisor`), with the agent's generation; also a log line.
    fn system_event(&mut self, event: &str, agent: &str, fields: serde_json::Value) {
        let gen = AgentId::new(agent)
            .ok()
            .and_then(|id| self.slots.get(&id))
            .map_or(0, |s| s.gen);
        let rec = activity::record(event, agent, gen, fields);
        journal::system_event(&rec);
        if let Err(e) = self.events.append(&rec) {
            tracing::error!(error = %e, event, "failed to write system event");
        }
    }

    fn record(&mut self, id: &AgentId) -> &mut state::AgentRecord {
        self.ckpt.agents.entry(id.clone()).or_default()
    }

    fn live_count(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s.phase, Phase::Up(_) | Phase::Stopping { .. }))
            .count()
    }
}

/// Valid envelopes of a file, up to byte `limit`.
fn envelopes(
    path: &std::path::Path,
    limit: u64,
) -> Result<Vec<society_core::Envelope>, FormatError> {
    let mut out = Vec::new();
    let mut cursor = 0;
    while cursor < limit {
        let batch = society_core::jsonl::read_lines(path, cursor, 1 << 20)?;
        if batch.lines.is_empty() {
            break;
        }
        for line in batch.lines.iter().filter(|l| l.end <= limit && !l.is_cut()) {
            if let Ok(env) = society_core::Envelope::parse(&line.bytes) {
                out.push(env);
            }
        }
        cursor = batch.next;
    }
    Ok(out)
}

/// `.../agent-<id>/<file>` → `<id>`.
fn agent_of(path: &std::path::Path) -> Option<AgentId> {
    let dir = path.parent()?.file_name()?.to_str()?;
    society_core::layout::agent_of_dir_name(dir)
}

pub(crate) fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
