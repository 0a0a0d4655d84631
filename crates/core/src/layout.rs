//! Every path of a society, in one place.
//!
//! ```text
//! <root>/society.toml
//! <root>/.society-agent/{format.json, registry.jsonl, supervisor/, orchestrator/, messages/, agent-<id>/, archive/}
//! ```

use crate::error::{io, FormatError, IoError};
use crate::id::{AgentId, CaseId};
use crate::FORMAT_VERSION;
use std::path::{Path, PathBuf};

/// Name of the state directory below the society root.
pub const STATE_DIR: &str = ".society-agent";

/// File names that readers match on as well as writers build (the watcher,
/// fsck, dead-letter records naming the file a bad line was in).
pub mod names {
    /// An agent's folder is `agent-<id>`.
    pub const AGENT_DIR_PREFIX: &str = "agent-";
    pub const INBOX: &str = "inbox.jsonl";
    pub const OUTBOX: &str = "outbox.jsonl";
    pub const DEADLETTER: &str = "deadletter.jsonl";
    pub const AGENT_TO_AGENT: &str = "agent-to-agent.jsonl";
    /// An agent's memories (a skill: kept when its folder is reused).
    pub const MEMORY: &str = "memory.jsonl";
    /// The derived search index of `memory.jsonl`.
    pub const MEMORY_INDEX: &str = "memory.idx.json";
}

/// The agent whose folder is named `name` (`agent-<id>`), if it is one.
pub fn agent_of_dir_name(name: &str) -> Option<AgentId> {
    AgentId::new(name.strip_prefix(names::AGENT_DIR_PREFIX)?).ok()
}

/// Name of the archive below the state directory.
const ARCHIVE_DIR: &str = "archive";

/// A case's log is `case-<id>.jsonl`, open or archived; closing it leaves
/// `case-<id>.archived.json` where it was.
const CASE_PREFIX: &str = "case-";
const CASE_LOG_SUFFIX: &str = ".jsonl";
const CASE_POINTER_SUFFIX: &str = ".archived.json";

/// The file name of a case's log, open or archived.
pub fn case_log_name(case: &CaseId) -> String {
    format!("{CASE_PREFIX}{case}{CASE_LOG_SUFFIX}")
}

/// The case whose log `name` is the file name of, if it is one.
pub fn case_of_log_name(name: &str) -> Option<CaseId> {
    case_of(name, CASE_LOG_SUFFIX)
}

/// The case whose archive pointer `name` is the file name of, if it is one.
pub fn case_of_pointer_name(name: &str) -> Option<CaseId> {
    case_of(name, CASE_POINTER_SUFFIX)
}

fn case_of(name: &str, suffix: &str) -> Option<CaseId> {
    let id = name.strip_prefix(CASE_PREFIX)?.strip_suffix(suffix)?;
    CaseId::new(id).ok()
}

/// Paths of one society.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    state: PathBuf,
}

impl Layout {
    /// A layout rooted at `root` (the directory holding `society.toml`).
    pub fn at(root: impl Into<PathBuf>) -> Layout {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let state = root.join(STATE_DIR);
        Layout { root, state }
    }

    /// Root discovery: `explicit` (`--root` or `SOCIETY_ROOT`), else the nearest
    /// ancestor of `cwd` holding `.society-agent/`, like git.
    /// `explicit`: a root given by the user, and what gave it (`--root`,
    /// `SOCIETY_ROOT`), for the error that names it.
    pub fn discover(
        explicit: Option<(&Path, &'static str)>,
        cwd: &Path,
    ) -> Result<Layout, FormatError> {
        if let Some((root, given_by)) = explicit {
            let layout = Layout::at(root);
            if !layout.state.is_dir() {
                let is_state_dir = root.file_name().is_some_and(|n| n == STATE_DIR)
                    && root.join("format.json").is_file();
                return Err(FormatError::NoSocietyAt {
                    root: layout.root,
                    given_by,
                    is_state_dir,
                });
            }
            return Ok(layout);
        }
        cwd.ancestors()
            .find(|d| d.join(STATE_DIR).is_dir())
            .map(Layout::at)
            .ok_or_else(|| FormatError::NoSociety {
                start: cwd.to_path_buf(),
            })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn state_dir(&self) -> &Path {
        &self.state
    }
    pub fn society_toml(&self) -> PathBuf {
        self.root.join("society.toml")
    }
    pub fn format_json(&self) -> PathBuf {
        self.state.join("format.json")
    }
    pub fn registry(&self) -> PathBuf {
        self.state.join("registry.jsonl")
    }
    /// The governance policy in effect (`[autonomy]`, `[learning]`,
    /// `[debate]` of `society.toml` with `society policy set` changes applied).
    pub fn policy_json(&self) -> PathBuf {
        self.state.join("policy.json")
    }
    /// Every `society policy set` change, append-only.
    pub fn policy_log(&self) -> PathBuf {
        self.state.join("policy.jsonl")
    }
    pub fn supervisor_dir(&self) -> PathBuf {
        self.state.join("supervisor")
    }
    pub fn supervisor_lock(&self) -> PathBuf {
        self.supervisor_dir().join("supervisor.lock")
    }
    pub fn supervisor_status(&self) -> PathBuf {
        self.supervisor_dir().join("status.json")
    }
    pub fn supervisor_checkpoint(&self) -> PathBuf {
        self.supervisor_dir().join("checkpoint.json")
    }
    /// Escalations and approval requests travelling up the organisation:
    /// where each waits, its chain, its answer (`society_runtime::org`).
    pub fn supervisor_escalations(&self) -> PathBuf {
        self.supervisor_dir().join("escalations.jsonl")
    }
    pub fn supervisor_activity(&self) -> PathBuf {
        self.supervisor_dir().join("activity.jsonl")
    }
    pub fn supervisor_inbox(&self) -> PathBuf {
        self.supervisor_dir().join(names::INBOX)
    }
    /// Bad lines of the supervisor's inbox, quarantined.
    /// Messages to other societies, durable before the federation bridge
    /// publishes them (FORMAT.md, "Federation").
    pub fn federation_outbound(&self) -> PathBuf {
        self.supervisor_dir().join("outbound.jsonl")
    }
    /// The bridge's state: the outbound cursor (bytes the NATS server
    /// acknowledged) and the link as last seen.
    pub fn federation_state(&self) -> PathBuf {
        self.supervisor_dir().join("federation.json")
    }
    pub fn supervisor_deadletter(&self) -> PathBuf {
        self.supervisor_dir().join(names::DEADLETTER)
    }
    /// The guard's memory: rate buckets, flood windows, sender sanctions.
    pub fn supervisor_guard(&self) -> PathBuf {
        self.supervisor_dir().join("guard.json")
    }
    /// The daemon's tracing log (and agents' stderr): outside every watched file.
    pub fn daemon_log(&self) -> PathBuf {
        self.supervisor_dir().join("daemon.log")
    }
    pub fn cases_dir(&self) -> PathBuf {
        self.supervisor_dir().join("cases")
    }
    pub fn case_log(&self, case: &CaseId) -> PathBuf {
        self.cases_dir().join(case_log_name(case))
    }
    /// What closing a case leaves where its log was: a pointer to the
    /// archived log.
    pub fn case_pointer(&self, case: &CaseId) -> PathBuf {
        self.cases_dir()
            .join(format!("{CASE_PREFIX}{case}{CASE_POINTER_SUFFIX}"))
    }
    /// Where closing a case on `date` (`yyyy-mm-dd`) moves its log, relative
    /// to the state directory: the path its pointer records.
    pub fn archived_case_log(date: &str, case: &CaseId) -> String {
        format!("{ARCHIVE_DIR}/{date}/{}", case_log_name(case))
    }
    /// Where `society rm` moves an agent's folder, relative to the state
    /// directory: `archive/agent-<id>-<stamp>`, `stamp` a compact UTC time
    /// (`20261121T193133.123Z`). Its capitals and dot make the name no
    /// agent id, so nothing takes it for the segments folder of a live
    /// agent (`archive/agent-<id>/`).
    pub fn archived_agent_dir(id: &AgentId, stamp: &str) -> String {
        format!("{ARCHIVE_DIR}/{}{id}-{stamp}", names::AGENT_DIR_PREFIX)
    }
    /// The `archive/<yyyy-mm-dd>/` folders of closed cases' logs, oldest
    /// first (not the folders of rotated segments, `archive/agent-<id>/`
    /// and the like).
    pub fn archive_days(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.archive_dir()) else {
            return Vec::new();
        };
        let is_day = |p: &Path| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.len() == 10
                    && n.bytes().enumerate().all(|(i, b)| {
                        if i == 4 || i == 7 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    })
            })
        };
        let mut days: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && is_day(p))
            .collect();
        days.sort();
        days
    }
    /// `society metrics`' last fold of the society's logs.
    pub fn supervisor_metrics(&self) -> PathBuf {
        self.supervisor_dir().join("metrics.json")
    }
    /// The history of `society selftest` runs in this society.
    pub fn selftest_history(&self) -> PathBuf {
        self.supervisor_dir().join("selftest.jsonl")
    }
    pub fn orchestrator_inbox(&self) -> PathBuf {
        self.state.join("orchestrator").join(names::INBOX)
    }
    pub fn messages_dir(&self) -> PathBuf {
        self.state.join("messages")
    }
    pub fn agent_to_agent(&self) -> PathBuf {
        self.messages_dir().join(names::AGENT_TO_AGENT)
    }
    pub fn system_events(&self) -> PathBuf {
        self.messages_dir().join("system-events.jsonl")
    }
    pub fn archive_dir(&self) -> PathBuf {
        self.state.join(ARCHIVE_DIR)
    }
    /// Shared context (`shared/`): the bible, style guide, schedules — files
    /// every agent may read and only `society shared put` writes.
    pub fn shared_dir(&self) -> PathBuf {
        self.state.join("shared")
    }
    /// Every change to `shared/`, one line per version (`shared put`).
    pub fn shared_log(&self) -> PathBuf {
        self.shared_dir().join(".versions.jsonl")
    }
    /// Agents' `shared_put` requests the supervisor accepted, and their answers.
    pub fn shared_requests(&self) -> PathBuf {
        self.shared_dir().join(".requests.jsonl")
    }
    /// Previous versions of the shared files: `shared/.history/<name>.v<n>`.
    pub fn shared_history_dir(&self) -> PathBuf {
        self.shared_dir().join(".history")
    }
    /// Broadcasts and their acknowledgements (`society broadcast`).
    pub fn broadcast_log(&self) -> PathBuf {
        self.messages_dir().join("broadcast.jsonl")
    }
    pub fn agent(&self, id: &AgentId) -> AgentPaths {
        AgentPaths::new(self.state.join(format!("{}{id}", names::AGENT_DIR_PREFIX)))
    }

    /// Ids of every agent folder present, sorted. Folders whose name is not a
    /// valid id are skipped (and reported by the caller's fsck, not here).
    pub fn agent_ids(&self) -> Result<Vec<AgentId>, IoError> {
        let mut ids = Vec::new();
        let entries = std::fs::read_dir(&self.state).map_err(io("list", &self.state))?;
        for entry in entries {
            let entry = entry.map_err(io("list", &self.state))?;
            let name = entry.file_name();
            // A link in a folder's place is never followed (see `confine`):
            // it is no agent, and `agent_links` names it.
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            if let Some(id) = name.to_str().and_then(agent_of_dir_name) {
                if !is_link && entry.path().join("config.json").is_file() {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Entries named like an agent's folder (`agent-<id>`) that are not
    /// folders: an agent whose folder was replaced by a file, which
    /// [`Layout::agent_ids`] cannot list and nothing can run. (Symbolic
    /// links are [`Layout::agent_links`].)
    pub fn agent_entries_not_folders(&self) -> Result<Vec<PathBuf>, IoError> {
        Ok(self
            .agent_entries()?
            .into_iter()
            .filter(|(_, t)| !t.is_dir() && !t.is_symlink())
            .map(|(p, _)| p)
            .collect())
    }

    /// Entries named like an agent's folder that are symbolic links, as the
    /// refusals they are: society never follows them (see `confine`), so
    /// [`Layout::agent_ids`] does not list them and nothing is delivered
    /// through them.
    pub fn agent_links(&self) -> Result<Vec<crate::confine::Symlinked>, IoError> {
        Ok(self
            .agent_entries()?
            .into_iter()
            .filter(|(_, t)| t.is_symlink())
            .map(|(p, _)| crate::confine::Symlinked::at(&p, Some(&self.state)))
            .collect())
    }

    /// Every entry named `agent-<id>`, sorted, with its type (links not followed).
    fn agent_entries(&self) -> Result<Vec<(PathBuf, std::fs::FileType)>, IoError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.state).map_err(io("list", &self.state))?;
        for entry in entries {
            let entry = entry.map_err(io("list", &self.state))?;
            let is_agent_name = entry
                .file_name()
                .to_str()
                .and_then(agent_of_dir_name)
                .is_some();
            if is_agent_name {
                let kind = entry.file_type().map_err(io("stat", &entry.path()))?;
                out.push((entry.path(), kind));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Creates the state tree; idempotent. Refuses a tree of another format.
    pub fn create(&self) -> Result<(), FormatError> {
        for dir in [
            self.state.clone(),
            self.supervisor_dir(),
            self.cases_dir(),
            self.state.join("orchestrator"),
            self.messages_dir(),
            self.archive_dir(),
        ] {
            create_private_dir(&dir)?;
        }
        if self.check_format()? < FORMAT_VERSION {
            crate::atomic::write_json(
                &self.format_json(),
                &serde_json::json!({"format": FORMAT_VERSION}),
                true,
            )?;
        }
        if !self.format_json().exists() {
            crate::atomic::write_json(
                &self.format_json(),
                &serde_json::json!({"format": FORMAT_VERSION}),
                true,
            )?;
        }
        for file in [
            self.registry(),
            self.supervisor_inbox(),
            self.supervisor_activity(),
            self.orchestrator_inbox(),
            self.agent_to_agent(),
            self.system_events(),
        ] {
            touch(&file)?;
        }
        Ok(())
    }

    /// Fails if `format.json` names a format this binary does not read;
    /// otherwise the tree's format (this binary's if there is no file yet).
    pub fn check_format(&self) -> Result<u32, FormatError> {
        #[derive(serde::Deserialize)]
        struct Format {
            format: u32,
        }
        match crate::atomic::read_json::<Format>(&self.format_json(), "format.json")? {
            Some(f) if !(crate::OLDEST_FORMAT..=FORMAT_VERSION).contains(&f.format) => {
                Err(FormatError::UnsupportedFormat {
                    path: self.format_json(),
                    found: f.format,
                    supported: FORMAT_VERSION,
                })
            }
            Some(f) => Ok(f.format),
            None => Ok(FORMAT_VERSION),
        }
    }
}

/// Mode of every file society creates: the owner's alone, whatever the
/// umask (messages, conversations and costs are private).
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory society creates.
pub const DIR_MODE: u32 = 0o700;

/// `create_dir_all` with [`DIR_MODE`] for what it creates, never through a
/// symbolic link below the state directory (see `confine`).
pub fn create_private_dir(dir: &Path) -> Result<(), IoError> {
    crate::confine::create_dir_all(dir, DIR_MODE).map_err(io("create directory", dir))
}

/// Paths inside one `agent-<id>/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPaths {
    pub dir: PathBuf,
}

impl AgentPaths {
    pub fn new(dir: PathBuf) -> AgentPaths {
        AgentPaths { dir }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("process.lock")
    }
    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }
    /// The live checkpoint (format 2): the agent's state after every step,
    /// written without fsync; `checkpoint.json` is the fsynced copy, written
    /// when the agent settles. Readers take the newer (`seq`).
    pub fn live_checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.live.json")
    }
    pub fn inbox(&self) -> PathBuf {
        self.dir.join(names::INBOX)
    }
    pub fn outbox(&self) -> PathBuf {
        self.dir.join(names::OUTBOX)
    }
    pub fn activity(&self) -> PathBuf {
        self.dir.join("activity.jsonl")
    }
    pub fn tools(&self) -> PathBuf {
        self.dir.join("tools.jsonl")
    }
    /// An `llm` agent's ledger of model calls and what they cost.
    pub fn costs(&self) -> PathBuf {
        self.dir.join("costs.jsonl")
    }
    pub fn deadletter(&self) -> PathBuf {
        self.dir.join(names::DEADLETTER)
    }
    pub fn workspace(&self) -> PathBuf {
        self.dir.join("workspace")
    }
    /// The agent's own case notes.
    pub fn cases(&self) -> PathBuf {
        self.dir.join("cases")
    }
    /// What the agent knows how to do (kept when the folder is reused).
    pub fn skills(&self) -> PathBuf {
        self.dir.join("skills")
    }
    /// Every decision the agent proposed, how it was assessed and resolved.
    pub fn decisions(&self) -> PathBuf {
        self.dir.join("decisions.jsonl")
    }
    /// The learned state: a cache derived from `decisions.jsonl`.
    pub fn learning(&self) -> PathBuf {
        self.dir.join("learning")
    }

    /// What the agent remembers (`remember`/`recall`, see `society_core::memory`).
    pub fn memory(&self) -> PathBuf {
        self.dir.join(names::MEMORY)
    }
    /// The derived index of [`Self::memory`], rebuilt when missing or stale.
    pub fn memory_index(&self) -> PathBuf {
        self.dir.join(names::MEMORY_INDEX)
    }

    /// Every file and folder of the folder that society reads or writes
    /// (none may be a symbolic link, see `confine::check_folder`).
    pub fn own_entries(&self) -> Vec<PathBuf> {
        vec![
            self.config(),
            self.lock(),
            self.status(),
            self.checkpoint(),
            self.live_checkpoint(),
            self.inbox(),
            self.outbox(),
            self.activity(),
            self.tools(),
            self.costs(),
            self.deadletter(),
            self.decisions(),
            self.learning(),
            self.memory(),
            self.memory_index(),
            self.cases(),
            self.skills(),
            self.workspace(),
        ]
    }

    /// Creates the folder skeleton; idempotent, never truncates anything.
    pub fn create(&self) -> Result<(), IoError> {
        for sub in [
            "cases",
            "skills",
            "workspace/code",
            "workspace/output",
            "workspace/temp",
        ] {
            let d = self.dir.join(sub);
            create_private_dir(&d)?;
        }
        for f in [
            self.inbox(),
            self.outbox(),
            self.activity(),
            self.tools(),
            self.deadletter(),
            self.lock(),
        ] {
            touch(&f)?;
        }
        Ok(())
    }
}

fn touch(path: &Path) -> Result<(), IoError> {
    use nix::fcntl::OFlag;
    crate::confine::open(
        path,
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
        FILE_MODE,
    )
    .map(drop)
    .map_err(io("create", path))
}
