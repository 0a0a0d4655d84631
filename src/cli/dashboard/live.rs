//! What changed, as the page needs to hear it: file-watch events (the same
//! `notify` watching and the same "data changed" filter as `logs -f` and
//! the supervisor) turned into small JSON events, sent to every open page.
//!
//! Events (the `data` of each server-sent event):
//! - `{"topic":"agent","id":A,"row":{…}}` — agent A's `status` row, after
//!   anything in its folder changed (state, heartbeat, inbox, logs) or its
//!   entry in the supervisor's checkpoint did (restarts, hold, failures);
//!   `"row": null` when its folder is gone.
//! - `{"topic":"agents"}` — agents were added or removed: refetch the list.
//! - `{"topic":"supervisor","pid":P}` — the supervisor started or stopped.
//! - `{"topic":"approvals"}` — a request was asked or answered.
//! - `{"topic":"case","id":C}` — case C's log grew (or it was archived).
//! - `{"topic":"flow"}` — a message was routed between agents.
//! - `{"topic":"costs","id":A}` — agent A spent on a model.
//! - `{"topic":"resync"}` (from the server) — this page fell more than the
//!   channel's 4,096 events behind: refetch the view.
//!
//! Events are coalesced over [`SETTLE`]: a burst of writes to one agent's
//! files is one row. Nothing here polls; a quiet society sends nothing (the
//! stream's keep-alive comments aside).

use serde_json::{json, Value};
use society_core::{atomic, AgentId, Layout};
use society_runtime::client;
use society_runtime::supervisor::state::SupervisorCheckpoint;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How long a burst of changes is gathered before the events go out.
const SETTLE: Duration = Duration::from_millis(50);
/// Beyond this many changed agents in one burst, one `status` of all of
/// them is cheaper than one each.
const ONE_BY_ONE: usize = 32;

/// Starts the watcher and the thread that turns its events into ours.
pub fn start(layout: Layout, tx: broadcast::Sender<Arc<str>>) -> anyhow::Result<()> {
    let (paths_tx, paths_rx) = mpsc::channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if society_runtime::watch::changes_data(&ev.kind) {
                for p in ev.paths {
                    let _ = paths_tx.send(p);
                }
            }
        }
    })?;
    let mut live = Live {
        layout,
        watcher,
        watched: HashSet::new(),
        restarts: BTreeMap::new(),
        tx,
    };
    live.restarts = live.records();
    live.watch_all();
    std::thread::Builder::new()
        .name("dashboard-live".into())
        .spawn(move || live.run(paths_rx))?;
    Ok(())
}

struct Live {
    layout: Layout,
    watcher: notify::RecommendedWatcher,
    watched: HashSet<PathBuf>,
    /// Each agent's entry of the supervisor checkpoint, as last seen.
    restarts: BTreeMap<AgentId, Value>,
    tx: broadcast::Sender<Arc<str>>,
}

/// What one burst of changes touched.
#[derive(Default)]
struct Touched {
    agents: BTreeSet<AgentId>,
    agent_list: bool,
    supervisor: bool,
    checkpoint: bool,
    approvals: bool,
    cases: BTreeSet<String>,
    flow: bool,
    costs: BTreeSet<AgentId>,
    new_dirs: Vec<PathBuf>,
}

impl Live {
    fn watch(&mut self, dir: PathBuf) {
        if self.watched.contains(&dir) || !dir.is_dir() {
            return;
        }
        use notify::Watcher as _;
        if self
            .watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .is_ok()
        {
            self.watched.insert(dir);
        }
    }

    /// A directory that came, went or was replaced (an agent removed and
    /// spawned again): its old watch died with the old directory.
    fn rewatch(&mut self, dir: PathBuf) {
        use notify::Watcher as _;
        if self.watched.remove(&dir) {
            let _ = self.watcher.unwatch(&dir);
        }
        self.watch(dir);
    }

    /// The society's directories that say something the page shows.
    fn watch_all(&mut self) {
        let l = &self.layout;
        let mut dirs = vec![
            l.state_dir().to_path_buf(),
            l.supervisor_dir(),
            l.cases_dir(),
            l.messages_dir(),
        ];
        if let Some(o) = l.orchestrator_inbox().parent() {
            dirs.push(o.to_path_buf());
        }
        for id in l.agent_ids().unwrap_or_default() {
            dirs.push(l.agent(&id).dir);
        }
        for d in dirs {
            self.watch(d);
        }
    }

    fn records(&self) -> BTreeMap<AgentId, Value> {
        let ckpt: SupervisorCheckpoint = atomic::read_json(
            &self.layout.supervisor_checkpoint(),
            "supervisor checkpoint",
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        ckpt.agents
            .into_iter()
            .filter_map(|(id, r)| Some((id, serde_json::to_value(r).ok()?)))
            .collect()
    }

    fn run(mut self, paths: mpsc::Receiver<PathBuf>) {
        loop {
            // Block until something changes (no timeout: nothing to poll).
            let Ok(first) = paths.recv() else { return };
            let mut touched = Touched::default();
            self.classify(&first, &mut touched);
            let until = Instant::now() + SETTLE;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                match paths.recv_timeout(left) {
                    Ok(p) => self.classify(&p, &mut touched),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            for d in std::mem::take(&mut touched.new_dirs) {
                self.rewatch(d);
            }
            self.publish(touched);
        }
    }

    fn classify(&self, path: &Path, t: &mut Touched) {
        let l = &self.layout;
        let Ok(rel) = path.strip_prefix(l.state_dir()) else {
            return;
        };
        let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
        let Some(top) = parts.next() else { return };
        let second = parts.next();
        if let Some(id) = society_core::layout::agent_of_dir_name(&top) {
            match second.as_deref() {
                None => {
                    // The folder itself came or went.
                    t.agent_list = true;
                    t.new_dirs.push(path.to_path_buf());
                }
                Some(name) => {
                    if name == "costs.jsonl" {
                        t.costs.insert(id.clone());
                    }
                }
            }
            t.agents.insert(id);
            return;
        }
        match (top.as_ref(), second.as_deref()) {
            (_, None) => {
                // A top-level directory appeared (messages/, orchestrator/…).
                t.new_dirs.push(path.to_path_buf());
            }
            ("supervisor", Some("cases")) => match parts.next() {
                Some(name) => {
                    let name = name.to_string();
                    if let Some(c) = society_core::layout::case_of_log_name(&name)
                        .or_else(|| society_core::layout::case_of_pointer_name(&name))
                    {
                        t.cases.insert(c.to_string());
                    }
                }
                None => t.new_dirs.push(path.to_path_buf()),
            },
            ("supervisor", Some(name)) => {
                if name.starts_with("inbox") {
                    t.approvals = true;
                } else if name.starts_with("checkpoint") {
                    t.checkpoint = true;
                } else if name.starts_with("lock") || name.starts_with("status") {
                    t.supervisor = true;
                }
            }
            ("orchestrator", Some(_)) => t.approvals = true,
            ("messages", Some(name)) if name.starts_with("agent-to-agent") => t.flow = true,
            _ => {}
        }
    }

    fn send(&self, v: Value) {
        // No receivers (no page open) is not an error.
        let _ = self.tx.send(Arc::from(v.to_string()));
    }

    fn publish(&mut self, mut t: Touched) {
        if t.checkpoint {
            let now = self.records();
            for (id, rec) in &now {
                if self.restarts.get(id) != Some(rec) {
                    t.agents.insert(id.clone());
                }
            }
            self.restarts = now;
        }
        if t.agent_list {
            self.send(json!({"topic": "agents"}));
        }
        if t.supervisor {
            let pid = client::supervisor::supervisor_pid(&self.layout);
            self.send(json!({"topic": "supervisor", "pid": pid}));
        }
        self.publish_rows(&t.agents);
        if t.approvals {
            self.send(json!({"topic": "approvals"}));
        }
        for c in &t.cases {
            self.send(json!({"topic": "case", "id": c}));
        }
        if t.flow {
            self.send(json!({"topic": "flow"}));
        }
        for a in &t.costs {
            self.send(json!({"topic": "costs", "id": a}));
        }
    }

    fn publish_rows(&self, ids: &BTreeSet<AgentId>) {
        if ids.is_empty() {
            return;
        }
        let rows: Vec<(AgentId, Option<Value>)> = if ids.len() > ONE_BY_ONE {
            let all = client::status::collect(&self.layout, None)
                .map(|r| r.agents)
                .unwrap_or_default();
            let mut by_id: BTreeMap<AgentId, Value> = all
                .into_iter()
                .filter_map(|r| Some((r.id.clone(), serde_json::to_value(r).ok()?)))
                .collect();
            ids.iter()
                .map(|id| (id.clone(), by_id.remove(id)))
                .collect()
        } else {
            ids.iter()
                .map(|id| {
                    let row = if self.layout.agent(id).dir.is_dir() {
                        client::status::collect(&self.layout, Some(id))
                            .ok()
                            .and_then(|r| r.agents.into_iter().next())
                            .and_then(|r| serde_json::to_value(r).ok())
                    } else {
                        None
                    };
                    (id.clone(), row)
                })
                .collect()
        };
        for (id, row) in rows {
            let v = json!({"topic": "agent", "id": id, "row": row});
            let text = society_brains::secrets::scrub(&v.to_string());
            let _ = self.tx.send(Arc::from(text));
        }
    }
}
