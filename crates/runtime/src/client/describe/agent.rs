//! An agent described: its `status` row, its configuration, where it is in
//! its inbox, how its last process ended, its last error, its dead letters,
//! its recent activity and, on an `llm` brain, what it spent.

use super::super::{costs, status, ClientError};
use super::RECENT;
use serde::Serialize;
use serde_json::{json, Map, Value};
use society_core::kinds::event;
use society_core::state::{AgentCheckpoint, AgentConfig};
use society_core::{atomic, jsonl, AgentId, Layout};
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct AgentView {
    /// The agent's `society status` row: state, pid, generation, restarts, ...
    #[serde(flatten)]
    pub status: status::Row,
    pub folder: String,
    /// `kind` and the settings that say most about it (model, program, ...).
    pub brain: Value,
    /// The policy keys that govern its life: idle exit, heartbeat, hang
    /// timeout, grace, attempts, durability.
    pub policy: Value,
    /// When its current state began, if known: the process's own account
    /// while it runs, else the supervisor's last word about it.
    pub since: Option<String>,
    pub inbox: InboxView,
    /// The message being handled (or left in flight by a dead process).
    pub in_flight: Option<Value>,
    /// The supervisor's record of its last exit (`agent_exited`).
    pub last_exit: Option<Value>,
    /// Its most recent failure: a failed attempt, an error exit, a failed
    /// write, an inbox incident.
    pub last_error: Option<Value>,
    pub dead_letters: DeadLetters,
    /// The last records of its `activity.jsonl`, oldest first.
    pub recent_events: Vec<Value>,
    /// Spend and budgets, for an agent on an `llm` brain.
    pub costs: Option<CostsView>,
    /// Its `metadata.json`: purposes served, experience (absent until its
    /// agent first ran, for a folder older than the file).
    pub metadata: Option<society_core::reuse::Metadata>,
}

#[derive(Debug, Serialize)]
pub struct InboxView {
    /// Byte cursor: everything before it is handled.
    pub cursor: u64,
    /// Which segment of the inbox the cursor is in (times it was rotated).
    pub segment: u64,
    /// Size of the live file.
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct DeadLetters {
    /// Records in its `deadletter.jsonl`.
    pub count: u64,
    /// The last few: `{ts, event, id, reason}`.
    pub last: Vec<Value>,
}

#[derive(Debug, Serialize)]
pub struct CostsView {
    #[serde(flatten)]
    pub spend: costs::Row,
    /// The agent's own budget and the society's, as configured.
    pub budget: Value,
    pub society_budget: Value,
}

/// How many dead letters a description lists.
const DEAD_LETTERS: usize = 3;
/// How far back from the end of a log a description looks.
const TAIL_BYTES: u64 = 1 << 20;

pub(super) fn view(layout: &Layout, id: &AgentId) -> Result<AgentView, ClientError> {
    let paths = layout.agent(id);
    let row = status::collect(layout, Some(id))?
        .agents
        .pop()
        .ok_or_else(|| ClientError::Missing {
            path: paths.config(),
        })?;
    // A broken folder is still described: what can be read is.
    let cfg = atomic::read_json::<AgentConfig>(&paths.config(), "agent config")
        .ok()
        .flatten();
    let ckpt = AgentCheckpoint::read(&paths)
        .ok()
        .flatten()
        .unwrap_or_default();
    let live = row.pid.is_some();
    let since = if live {
        atomic::read_json::<society_core::state::AgentStatus>(&paths.status(), "agent status")
            .ok()
            .flatten()
            .filter(|s| Some(s.pid) == row.pid)
            .map(|s| s.since)
    } else {
        None
    };
    let mut lifecycle = tail(&layout.system_events(), TAIL_BYTES)?
        .into_iter()
        .filter(|r| r["agent"] == id.as_str())
        .collect::<Vec<_>>();
    // An earlier agent of this id, removed by `society rm`, is not this one.
    if let Some(removed) = lifecycle
        .iter()
        .rposition(|r| r["event"] == event::AGENT_REMOVED)
    {
        lifecycle.drain(..=removed);
    }
    let since = since.or_else(|| {
        lifecycle
            .iter()
            .rev()
            .find(|r| r["event"].as_str().is_some_and(|e| e.starts_with("agent_")))
            .and_then(|r| r["ts"].as_str())
            .map(String::from)
    });
    let last_exit = lifecycle
        .iter()
        .rev()
        .find(|r| r["event"] == event::AGENT_EXITED)
        .map(|r| {
            pick(
                r,
                &["ts", "pid", "code", "signal", "stop_reason", "adopted"],
            )
        });
    let activity = tail(&paths.activity(), TAIL_BYTES)?;
    let last_error = activity
        .iter()
        .rev()
        .find(|r| {
            matches!(
                r["event"].as_str(),
                Some("message_failed" | event::EXIT_ERROR | "io_error" | "inbox_incident")
            )
        })
        .map(|r| pick(r, &["ts", "event", "id", "attempt", "error", "kind"]));
    let recent_events = activity
        .iter()
        .skip(activity.len().saturating_sub(RECENT))
        .cloned()
        .collect();
    let dead = jsonl::read_objects(&paths.deadletter(), &mut 0)?;
    let dead_letters = DeadLetters {
        count: dead.len() as u64,
        last: dead
            .iter()
            .skip(dead.len().saturating_sub(DEAD_LETTERS))
            .map(|r| pick(r, &["ts", "event", "id", "reason"]))
            .collect(),
    };
    let brain = cfg.as_ref().map_or(Value::Null, |c| brain(&c.brain));
    let costs = match &cfg {
        Some(c) if c.brain["kind"] == "llm" => Some(CostsView {
            spend: costs::of_agent(layout, id)?,
            budget: c.brain.get("budget").cloned().unwrap_or(Value::Null),
            society_budget: c
                .brain
                .get("society_budget")
                .cloned()
                .unwrap_or(Value::Null),
        }),
        _ => None,
    };
    let policy = cfg.as_ref().map_or(Value::Null, |c| {
        pick(
            &serde_json::to_value(&c.policy).unwrap_or_default(),
            &[
                "idle_exit",
                "heartbeat",
                "hang_timeout",
                "grace",
                "max_attempts",
                "durability",
            ],
        )
    });
    let in_flight = ckpt.in_flight.as_ref().map(|f| {
        pick(
            &serde_json::to_value(f).unwrap_or_default(),
            &["id", "attempt", "started", "last_error"],
        )
    });
    Ok(AgentView {
        folder: paths.dir.display().to_string(),
        brain,
        policy,
        since,
        inbox: InboxView {
            cursor: ckpt.inbox_offset,
            segment: ckpt.inbox_seg,
            bytes: std::fs::metadata(paths.inbox()).map_or(0, |m| m.len()),
        },
        in_flight,
        last_exit,
        last_error,
        dead_letters,
        recent_events,
        costs,
        metadata: crate::metadata::read(&paths).ok().flatten(),
        status: row,
    })
}

/// A brain's kind and the settings that identify it; a script's rules are
/// counted, not listed.
fn brain(cfg: &Value) -> Value {
    let mut out = pick(
        cfg,
        &[
            "kind",
            "provider",
            "model",
            "base_url",
            "program",
            "args",
            "timeout",
            "max_tokens",
            "max_steps",
        ],
    );
    if let (Some(rules), Some(map)) = (cfg["rules"].as_array(), out.as_object_mut()) {
        map.insert("rules".into(), json!(rules.len()));
    }
    out
}

/// The fields of `record` named in `keys` that it has.
fn pick(record: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = record.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The complete JSON objects among the last `max` bytes of a log, in order
/// (a line cut by the window's start is skipped).
pub fn tail(path: &Path, max: u64) -> Result<Vec<Value>, ClientError> {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    let start = len.saturating_sub(max);
    let mut out = Vec::new();
    let mut cursor = start;
    let mut first = start > 0;
    loop {
        let batch = jsonl::read_lines(path, cursor, 1 << 20)?;
        if batch.lines.is_empty() {
            return Ok(out);
        }
        for line in &batch.lines {
            if std::mem::take(&mut first) {
                continue;
            }
            if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&line.bytes) {
                out.push(v);
            }
        }
        cursor = batch.next;
    }
}
