//! Status collection: one row per agent, computed from the files alone
//! (it works with the supervisor down), and the society-wide problems.

use super::ClientError;
use crate::supervisor::guard::GuardState;
use crate::supervisor::state::{SupervisorCheckpoint, SupervisorStatus};
use serde::Serialize;
use society_core::lock::{self, LockState};
use society_core::state::{AgentCheckpoint, AgentConfig, AgentStatus, LiveState};
use society_core::{atomic, time, AgentId, Layout};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: AgentId,
    pub role: String,
    pub state: String,
    /// When the agent entered `state` (RFC 3339), as its files tell: its own
    /// last change of state (or of message) while a process runs, when the
    /// process started while it has not said yet, the incident's time for a
    /// `broken` inbox, else its last heartbeat (when the last process
    /// stopped). Null if the agent never ran.
    pub state_since: Option<String>,
    /// Why the agent is `broken` (a corrupt config or checkpoint, an inbox
    /// that no longer matches its cursor), or why it `failed`.
    pub reason: Option<String>,
    pub pid: Option<u32>,
    pub heartbeat_age_ms: Option<u64>,
    /// Complete messages in the inbox after the agent's cursor.
    pub inbox_pending: u64,
    pub case: Option<String>,
    pub restarts: u32,
    pub generation: u64,
    /// Messages handled successfully.
    pub handled: u64,
    /// Inbox lines quarantined in `deadletter.jsonl` (not in `handled`).
    pub dead_lettered: u64,
    pub keep_alive: bool,
    pub held: bool,
    /// USD spent on models in total (`costs.jsonl`; 0 for agents not on an LLM).
    pub spend_usd: f64,
    /// The agent's record as a sender: refused messages and the sanction in
    /// force, if any (`society unblock ID` lifts it).
    pub sanction: Option<SanctionRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SanctionRow {
    /// Sanctions imposed so far: 1 (5 min), 2 (1 h), 3 (until lifted).
    pub level: u8,
    pub violations: u32,
    /// RFC 3339, `"until lifted"`, or null when no block is in force.
    pub blocked_until: Option<String>,
    pub last_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub root: String,
    pub supervisor: Option<SupervisorRow>,
    /// Society-wide problems: failing writes, a corrupt supervisor checkpoint.
    pub problems: Vec<String>,
    /// What the kernel offers the sandbox of agents' programs (see
    /// `society_brains::sandbox::Probe`).
    pub sandbox: society_brains::sandbox::Probe,
    /// The link to other societies (`society federation status --json`),
    /// once a federation bridge has run here; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<crate::federation::Report>,
    pub agents: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct SupervisorRow {
    pub pid: u32,
    pub heartbeat_age_ms: Option<u64>,
}

/// The status of every agent, or of `only`.
pub fn collect(layout: &Layout, only: Option<&AgentId>) -> Result<Report, ClientError> {
    let sup_pid = match lock::probe(&layout.supervisor_lock())? {
        LockState::Held(info) => Some(info.map_or(0, |i| i.pid)),
        LockState::Free => None,
    };
    let sup_status: Option<SupervisorStatus> = if sup_pid.is_some() {
        atomic::read_json(&layout.supervisor_status(), "supervisor status")
            .ok()
            .flatten()
    } else {
        None
    };
    let mut problems = Vec::new();
    let sup_ckpt: SupervisorCheckpoint =
        match atomic::read_json(&layout.supervisor_checkpoint(), "supervisor checkpoint") {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => {
                problems.push(format!("{e}; `society fsck --repair` rebuilds it"));
                SupervisorCheckpoint::default()
            }
        };
    let ids = match only {
        Some(id) => vec![id.clone()],
        None => layout.agent_ids()?,
    };
    if only.is_none() {
        for path in layout.agent_entries_not_folders()? {
            problems.push(format!(
                "{} is not a folder: that agent cannot run and its mail is not delivered \
                 (put its folder back, or move the entry away)",
                path.display()
            ));
        }
        for link in layout.agent_links()? {
            problems.push(agent_link_problem(&link));
        }
    }
    let ctx = Ctx {
        sup_status: sup_status.as_ref(),
        sup_ckpt: &sup_ckpt,
        guard: atomic::read_json(&layout.supervisor_guard(), "guard state")
            .ok()
            .flatten()
            .unwrap_or_default(),
        now_ms: time::unix_ms(std::time::SystemTime::now()),
    };
    let mut agents = Vec::with_capacity(ids.len());
    for id in ids {
        // One folder that cannot be read never hides the others.
        let row = agent_row(layout, &id, &ctx).unwrap_or_else(|e| broken_row(&id, &e, &ctx));
        agents.push(row);
    }
    if let Some(t) = sup_status.as_ref().and_then(|s| s.trouble.as_ref()) {
        problems.push(format!(
            "writes failing since {}: {} ({} batch(es) waiting; nothing is lost)",
            t.since, t.error, t.stalled
        ));
    }
    Ok(Report {
        root: layout.root().display().to_string(),
        supervisor: sup_pid.map(|pid| SupervisorRow {
            pid,
            heartbeat_age_ms: sup_status
                .as_ref()
                .and_then(|s| time::parse_rfc3339(&s.ts))
                .map(|t| time::age(t).as_millis() as u64),
        }),
        problems,
        sandbox: society_brains::sandbox::probe().clone(),
        federation: layout
            .federation_state()
            .exists()
            .then(|| crate::federation::report(layout).ok())
            .flatten(),
        agents,
    })
}

/// What `status` says of an `agent-<id>` that is a symbolic link.
fn agent_link_problem(link: &society_core::confine::Symlinked) -> String {
    format!(
        "{link}: it is no agent — not listed, never started, and nothing is delivered \
         through it (put the folder itself in place of the link, or remove the link)"
    )
}

/// What every row is read against.
struct Ctx<'a> {
    sup_status: Option<&'a SupervisorStatus>,
    sup_ckpt: &'a SupervisorCheckpoint,
    guard: GuardState,
    now_ms: u64,
}

impl Ctx<'_> {
    fn sanction(&self, id: &AgentId) -> Option<SanctionRow> {
        self.guard.senders.get(id.as_str()).map(|c| SanctionRow {
            level: c.level,
            violations: c.violations,
            blocked_until: c.blocked_until.filter(|u| *u > self.now_ms).map(|u| {
                if u == u64::MAX {
                    "until lifted".to_string()
                } else {
                    time::format_rfc3339(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u),
                    )
                }
            }),
            last_reason: c.last_reason.clone(),
        })
    }
}

/// The row of an agent whose folder cannot be read.
fn broken_row(id: &AgentId, err: &ClientError, ctx: &Ctx) -> Row {
    let record = ctx.sup_ckpt.agents.get(id).cloned().unwrap_or_default();
    Row {
        id: id.clone(),
        role: "?".into(),
        state: "broken".into(),
        state_since: None,
        reason: Some(chain(err)),
        pid: None,
        heartbeat_age_ms: None,
        inbox_pending: 0,
        case: None,
        restarts: record.restarts,
        generation: 0,
        handled: 0,
        dead_lettered: 0,
        keep_alive: false,
        held: record.held,
        spend_usd: 0.0,
        sanction: ctx.sanction(id),
    }
}

fn agent_row(layout: &Layout, id: &AgentId, ctx: &Ctx) -> Result<Row, ClientError> {
    let paths = layout.agent(id);
    let cfg =
        atomic::read_json::<AgentConfig>(&paths.config(), "agent config")?.ok_or_else(|| {
            ClientError::Missing {
                path: paths.config(),
            }
        })?;
    // The live state first, the checkpoint after it: the agent writes its
    // checkpoint before the status that follows from it, so this order
    // never pairs a state with older counters (e.g. `running` with
    // generation 0 while the process is starting).
    let (lock_state, st) = match lock::probe(&paths.lock())? {
        LockState::Held(info) => {
            let st: Option<AgentStatus> = atomic::read_json(&paths.status(), "agent status")
                .ok()
                .flatten();
            // A process describes itself in the lock file right after
            // taking the lock, so a probe in that instant finds it empty;
            // by the time it has written a status, the file is complete.
            let info = info.or_else(|| lock::read_info(&paths.lock()));
            // status.json left by an earlier generation says nothing
            // about the process that holds the lock now.
            let st = st.filter(|s| info.as_ref().is_some_and(|i| i.pid == s.pid));
            (LockState::Held(info), st)
        }
        LockState::Free => (LockState::Free, None),
    };
    let ckpt: AgentCheckpoint = AgentCheckpoint::read(&paths)?.unwrap_or_default();
    let record = ctx.sup_ckpt.agents.get(id).cloned().unwrap_or_default();
    let slot = ctx.sup_status.and_then(|s| s.agents.get(id));
    let pending = count_pending(&paths.inbox(), ckpt.inbox_offset);
    let mut row = Row {
        id: id.clone(),
        role: cfg.role.clone(),
        state: String::new(),
        state_since: None,
        reason: None,
        pid: None,
        heartbeat_age_ms: None,
        inbox_pending: pending,
        case: None,
        restarts: record.restarts,
        generation: ckpt.generation,
        handled: ckpt.handled,
        dead_lettered: ckpt.dead_lettered,
        keep_alive: cfg.keep_alive,
        held: record.held,
        spend_usd: super::costs::spend_usd(&paths.dir),
        sanction: ctx.sanction(id),
    };
    match lock_state {
        LockState::Held(info) => {
            // Info naming a dead process is the previous holder's, not yet
            // rewritten by the process that holds the lock now.
            let info = info.filter(lock::LockInfo::is_alive);
            row.pid = info.as_ref().map(|i| i.pid);
            let age = st
                .as_ref()
                .and_then(|s| time::parse_rfc3339(&s.ts))
                .map(time::age);
            row.heartbeat_age_ms = age.map(|a| a.as_millis() as u64);
            row.case = st
                .as_ref()
                .and_then(|s| s.current.as_ref())
                .and_then(|c| c.case.as_ref())
                .map(|c| c.to_string());
            let phase = slot.map(|s| s.phase.as_str());
            row.state_since = st
                .as_ref()
                .map(|s| s.since.clone())
                .or_else(|| info.as_ref().map(|i| i.started.clone()));
            row.state = if phase == Some("stopping") {
                "stopping".into()
            } else if phase == Some("hung") || age.is_some_and(|a| a > cfg.policy.hang_timeout) {
                // Hung since its last heartbeat.
                row.state_since = st.as_ref().map(|s| s.ts.clone());
                "hung".into()
            } else {
                match st.map(|s| s.state) {
                    Some(LiveState::Running) => "running",
                    Some(LiveState::Idle) => "idle",
                    Some(LiveState::Stopping) => "stopping",
                    Some(LiveState::Starting) | None => "starting",
                }
                .into()
            };
        }
        LockState::Free => {
            let incident = ckpt.incident.as_ref().map(|i| i.describe());
            // The last process's last heartbeat: when it stopped.
            let last_beat = atomic::read_json::<AgentStatus>(&paths.status(), "agent status")
                .ok()
                .flatten()
                .map(|s| s.ts);
            row.state_since = ckpt.incident.as_ref().map(|i| i.ts.clone()).or(last_beat);
            row.state = match slot.map(|s| s.phase.as_str()) {
                _ if incident.is_some() => "broken",
                Some("broken") => "broken",
                Some("backoff") => "backoff",
                _ if record.failed => "failed",
                Some("up") => "starting",
                _ if pending > 0 => "pending",
                _ => "dormant",
            }
            .into();
            row.reason = incident.or_else(|| slot.and_then(|s| s.reason.clone()));
        }
    }
    Ok(row)
}

/// Complete lines after `offset`; a half-written tail does not count.
fn count_pending(inbox: &std::path::Path, offset: u64) -> u64 {
    let mut count = 0;
    let mut cursor = offset;
    // Counted, not read: a line is held to a few bytes, however long.
    while let Ok(batch) = society_core::jsonl::read_lines_bounded(inbox, cursor, 1 << 20, 256) {
        if batch.lines.is_empty() {
            break;
        }
        count += batch.lines.len() as u64;
        cursor = batch.next;
    }
    count
}

/// An error and its causes, as `a: b: c`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let more = c.to_string();
        // A transparent wrapper repeats its source's message.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
