//! Agents that cannot run until someone repairs their folder: a corrupt
//! `config.json` or `checkpoint.json`, an inbox that no longer matches its
//! cursor, a symbolic link among its files. One bad folder never takes the society down: the agent is shown
//! `broken` with the reason, escalated once, not restarted in a loop, and
//! still receives its mail (which waits in its inbox); the scan notices when
//! the folder is whole again (`society fsck --repair`, or a fix by hand) and
//! the agent runs again.

use super::plan::{now_ms, Plan};
use super::{Phase, Slot, Supervisor};
use serde_json::{json, Value};
use society_core::jsonl::read_lines;
use society_core::kinds::event;
use society_core::state::{AgentCheckpoint, AgentConfig, Policy};
use society_core::{atomic, AgentId, AgentPaths, Layout, MsgId};

/// Why the folder cannot run now, if it cannot.
pub(super) fn folder_problem(paths: &AgentPaths) -> Option<String> {
    // A symbolic link among its files is never followed (`confine`).
    if let Err(link) = society_core::confine::check_folder(paths) {
        return Some(link.to_string());
    }
    if let Err(e) = atomic::read_json::<AgentConfig>(&paths.config(), "agent config") {
        return Some(e.to_string());
    }
    match AgentCheckpoint::read(paths) {
        Err(e) => Some(e.to_string()),
        Ok(Some(c)) => c.incident.map(|i| i.describe()),
        Ok(None) => None,
    }
}

/// What the supervisor knows of an agent whose config cannot be read: its
/// id, its role as the registry recorded it (so `role:R` keeps choosing the
/// same agents), the default policy. Enough to deliver its mail and route
/// its outbox; never enough to start it.
pub(super) fn placeholder(layout: &Layout, id: &AgentId) -> AgentConfig {
    let role = society_core::jsonl::read_objects(&layout.registry(), &mut 0)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|r| r["event"] == event::CREATED && r["agent"] == id.as_str())
        .and_then(|r| r["role"].as_str().map(str::to_string))
        .unwrap_or_default();
    AgentConfig {
        id: id.clone(),
        role,
        brain: json!({"kind": "echo"}),
        keep_alive: false,
        policy: Policy::default(),
        capabilities: Vec::new(),
        org: Default::default(),
    }
}

/// The `exit_error` an agent process recorded before exiting with `pid`
/// (see `agent::record_exit_error`): the cause of its exit code.
pub(super) fn exit_cause(paths: &AgentPaths, pid: i32) -> Option<String> {
    let len = super::file_len(&paths.activity());
    let from = len.saturating_sub(64 * 1024);
    let batch = read_lines(&paths.activity(), from, 64 * 1024).ok()?;
    batch
        .lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_slice::<Value>(&l.bytes).ok())
        .find(|v| v["event"] == event::EXIT_ERROR && v["pid"] == pid)
        .and_then(|v| v["error"].as_str().map(str::to_string))
}

impl Supervisor {
    /// Marks an agent broken and escalates why, once per breakage.
    pub(super) fn mark_broken(&mut self, id: &AgentId, reason: String) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        if matches!(&slot.phase, Phase::Broken { reason: r } if *r == reason) {
            return;
        }
        slot.phase = Phase::Broken {
            reason: reason.clone(),
        };
        // A link is not what `--repair` mends (see `fsck/symlinks.rs`).
        let linked = society_core::confine::check_folder(&slot.paths).is_err();
        self.status_dirty = true;
        let hint = if linked {
            "replace the symbolic link with the file or folder it stands for, or remove it"
        } else {
            "`society fsck --repair` rebuilds what the logs can prove"
        };
        self.system_event(
            event::AGENT_BROKEN,
            id.as_str(),
            json!({"reason": reason, "hint": hint}),
        );
        let mut plan = Plan::at(now_ms());
        let why = format!("agent {id} cannot run: {reason}");
        let context = if linked {
            json!({"hint": "replace the symbolic link with the file or folder it stands for, or remove it; `society fsck` lists every link society refuses"})
        } else {
            json!({"hint": "`society fsck` shows the problem; `society fsck --repair` rebuilds a checkpoint from the logs, a config from society.toml"})
        };
        self.planner().escalation(
            &mut plan,
            MsgId::generate(),
            id.as_str(),
            None,
            &why,
            context,
        );
        self.commit_direct(plan);
    }

    /// At every scan: a broken agent whose folder is whole again runs again.
    pub(super) fn recheck_broken(&mut self) {
        let broken: Vec<AgentId> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::Broken { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        for id in broken {
            let paths = self.slots[&id].paths.clone();
            if folder_problem(&paths).is_some() {
                continue;
            }
            let Ok(Some(cfg)) = atomic::read_json::<AgentConfig>(&paths.config(), "agent config")
            else {
                continue;
            };
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.cfg = cfg;
                slot.phase = Phase::Down;
                slot.restart.reset();
            }
            self.status_dirty = true;
            self.system_event("agent_repaired", id.as_str(), json!({}));
            self.maybe_start(&id, "on_demand");
        }
    }
}

/// A slot for a folder found at a rescan: broken if it cannot run.
pub(super) fn new_slot(
    layout: &Layout,
    id: &AgentId,
    paths: AgentPaths,
    failed: bool,
) -> (Slot, Option<String>) {
    let cfg = atomic::read_json::<AgentConfig>(&paths.config(), "agent config");
    let problem = folder_problem(&paths);
    let cfg = match cfg {
        Ok(Some(c)) => c,
        _ => placeholder(layout, id),
    };
    let phase = match (&problem, failed) {
        (Some(reason), _) => Phase::Broken {
            reason: reason.clone(),
        },
        (None, true) => Phase::Failed,
        (None, false) => Phase::Down,
    };
    let gen = AgentCheckpoint::read(&paths)
        .ok()
        .flatten()
        .map_or(0, |c| c.generation);
    let slot = Slot {
        cfg,
        paths,
        phase,
        restart: crate::restart::RestartState::default(),
        restart_requested: false,
        gen,
    };
    (slot, problem)
}

/// A record for the escalation context: what an `exit_error` said.
pub(super) fn cause_suffix(cause: Option<&str>) -> String {
    cause.map_or_else(String::new, |c| format!(": {c}"))
}
