//! What a client operation can fail with, each failure with its exit code
//! (the CLI's, documented in README.md) and, where one helps, a hint.

use crate::config::ConfigError;
use crate::exit::Code;
use society_core::id::IdError;
use society_core::{AgentId, CaseId, FormatError, IoError, MsgId, Party};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no agent {id} in {}{}", dir.display(), if *.sending { "; nothing was sent" } else { "" })]
    NoAgent {
        id: AgentId,
        dir: PathBuf,
        /// Said while sending (then nothing was sent).
        sending: bool,
    },
    /// The agent's folder, or its inbox, is a symbolic link: never followed.
    #[error("agent {id}'s folder cannot be used: {link}{}", if *.sending { "; nothing was sent" } else { "" })]
    Symlinked {
        id: AgentId,
        link: society_core::confine::Symlinked,
        sending: bool,
    },
    #[error("no agent has role {role}; nothing was sent")]
    NoRole { role: String },
    #[error("no agent of role {role} has every capability the message needs ({}); nothing was sent", needs.join(", "))]
    NotCapable { role: String, needs: Vec<String> },
    #[error("--needs: {reason}; nothing was sent")]
    BadNeeds { reason: String },
    #[error("{} in {}; nothing was sent", match role { Some(r) => format!("no agent has role {r}"), None => "no agents".into() }, dir.display())]
    NoRecipients { role: Option<String>, dir: PathBuf },
    #[error("cannot send to {to}: send to an agent id or role:<role>")]
    NotAnAgent { to: Party },
    #[error("{to} is in society {society}, and this society is not federated: add [society] name and [federation] nats_url to {}; nothing was sent", toml.display())]
    NotFederated {
        to: Party,
        society: String,
        toml: std::path::PathBuf,
    },
    #[error("invalid --type {kind:?}: types match [a-z0-9_.-]{{1,64}}")]
    BadType { kind: String },
    #[error("invalid role {role:?}: roles match [a-z0-9][a-z0-9-]{{0,62}}")]
    BadRole { role: String },
    #[error(
        "message of {bytes} bytes exceeds agent {id}'s max_record ({max} bytes); nothing was sent"
    )]
    Oversize {
        id: AgentId,
        bytes: usize,
        max: usize,
    },
    #[error("agent {id} exists with role {has}, not {asked}")]
    RoleMismatch {
        id: AgentId,
        has: String,
        asked: String,
    },
    #[error("agent {id} cannot start: {reason}")]
    Unusable { id: AgentId, reason: String },
    #[error("agent {id} did not come up within {secs}s; see `society logs {id}`")]
    NotUp { id: AgentId, secs: u64 },
    #[error("agent {id} still running after {secs}s")]
    StillRunning { id: AgentId, secs: u64 },
    #[error("{} agent(s) still hold their lock: {}", names.len(), names.join(", "))]
    AgentsStillRunning { names: Vec<String> },
    #[error("the supervisor exited at start ({status}){}", if said.is_empty() { String::new() } else { format!(":\n{said}") })]
    SupervisorExited {
        code: Code,
        status: String,
        /// Its own error lines from the daemon log.
        said: String,
        log: PathBuf,
    },
    #[error("the supervisor did not become ready within 10s")]
    SupervisorNotReady { log: PathBuf },
    #[error("the supervisor ({who}) is still running after {secs}s")]
    SupervisorStillRunning { who: String, secs: u64 },
    #[error("failed to signal supervisor pid {pid}")]
    Signal {
        pid: u32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("failed to {what}")]
    Process {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{} names {archived:?}, which is not a path inside {}", pointer.display(), state_dir.display())]
    BadPointer {
        pointer: PathBuf,
        archived: String,
        state_dir: PathBuf,
    },
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("no case {case} in {} (open or archived)", dir.display())]
    NoCase { case: CaseId, dir: PathBuf },
    #[error("case {case} is already closed{}", when.as_ref().map_or(String::new(), |w| format!(" at {w}")))]
    AlreadyClosed { case: CaseId, when: Option<String> },
    #[error("cannot assign a case to {party}: give an agent id or role:<role>")]
    BadAssignee { party: Party },
    #[error("{} in {}; no case was opened", match party { Party::Role(r) => format!("no agent has role {r}"), other => format!("no agent {other}") }, dir.display())]
    NoAssignee { party: Party, dir: PathBuf },
    #[error("{what} within {timeout:?}")]
    NotYet { what: String, timeout: Duration },
    #[error("no approval request {id} in {}", inbox.display())]
    NoRequest { id: MsgId, inbox: PathBuf },
    #[error("request {id} was already {}{} at {ts}{}", if *approved { "approved" } else { "rejected" }, by.as_ref().map_or(String::new(), |b| format!(" by lead {b}")), note.as_ref().map_or(String::new(), |n| format!(" with the note {n:?}")))]
    AlreadyDecided {
        id: MsgId,
        approved: bool,
        by: Option<String>,
        ts: String,
        note: Option<String>,
    },
    #[error("cannot {} request {id}: its case {case} is {ended}", if *approve { "approve" } else { "reject" })]
    CaseEnded {
        id: MsgId,
        case: CaseId,
        ended: &'static str,
        approve: bool,
    },
    #[error("agent {id} is running")]
    Running { id: AgentId },
    #[error("no dead letter {id} in {}", dir.display())]
    NoDeadLetter { id: MsgId, dir: PathBuf },
    #[error("message {id} was already handled by {agent}: retrying it would handle it twice")]
    AlreadyHandled { id: MsgId, agent: AgentId },
    #[error("dead letter {id} cannot be retried: {reason}")]
    NotRetryable { id: MsgId, reason: String },
    #[error("the supervisor refused to remove agent {id}: {reason}")]
    RemoveRefused { id: AgentId, reason: String },
    /// An answer that does not fit the request (`choose` of an option it
    /// does not list, an override of a held message).
    #[error("{reason}")]
    BadAnswer { reason: String },
    #[error("nothing is named {name:?}: {looked}")]
    Unknown {
        name: String,
        /// What was looked at, in words.
        looked: String,
    },
    #[error("{name:?} names {}", matches.join(" and "))]
    Ambiguous { name: String, matches: Vec<String> },
    #[error("{} is missing", path.display())]
    Missing { path: PathBuf },
    /// The supervisor could not apply `society.toml` (it changed between
    /// the check and the reload); nothing changed.
    #[error("the supervisor did not reload society.toml: {error}")]
    ReloadFailed { error: String },
    #[error("no decision {id} in any agent's decisions.jsonl under {}", dir.display())]
    NoDecision { id: String, dir: PathBuf },
    #[error("decision {id} was already {how} {when}")]
    AlreadyReviewed {
        id: String,
        how: &'static str,
        when: String,
    },
    #[error("decision {id} cannot be reviewed: {reason}")]
    NotReviewable { id: String, reason: String },
    #[error("--quality {quality} is out of range (0 to 1)")]
    BadQuality { quality: f64 },
    #[error("agent {agent} has no skill {name:?}{}", if have.is_empty() { "; its skills/ is empty".to_string() } else { format!("; it has {}", have.join(", ")) })]
    NoSkill {
        agent: AgentId,
        name: String,
        have: Vec<String>,
    },
    #[error("cannot copy skill {name:?}: {reason}")]
    BadSkill { name: String, reason: String },
    #[error("agent {agent} already has a different skills/{name}")]
    SkillExists { agent: AgentId, name: String },
    #[error(
        "the body may not have a {field:?} field: a broadcast's copies carry it; nothing was sent"
    )]
    ReservedField { field: &'static str },
    #[error(transparent)]
    Shared(#[from] super::shared::SharedError),
    #[error(transparent)]
    Memory(#[from] society_core::memory::MemoryError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ClientError {
    /// The process exit code this failure means.
    pub fn exit_code(&self) -> Code {
        use ClientError as E;
        match self {
            E::NoAgent { .. }
            | E::NoRole { .. }
            | E::NotCapable { .. }
            | E::NoRecipients { .. }
            | E::NoCase { .. }
            | E::NoAssignee { .. }
            | E::NoRequest { .. }
            | E::NoDeadLetter { .. }
            | E::NoDecision { .. }
            | E::NoSkill { .. }
            | E::Unknown { .. } => Code::NotFound,
            E::AlreadyClosed { .. }
            | E::AlreadyHandled { .. }
            | E::AlreadyDecided { .. }
            | E::CaseEnded { .. }
            | E::Running { .. }
            | E::AlreadyReviewed { .. }
            | E::SkillExists { .. }
            | E::RemoveRefused { .. } => Code::Conflict,
            E::NotAnAgent { .. }
            | E::NotFederated { .. }
            | E::BadType { .. }
            | E::BadNeeds { .. }
            | E::BadRole { .. }
            | E::Oversize { .. }
            | E::RoleMismatch { .. }
            | E::Unusable { .. }
            | E::Missing { .. }
            | E::NotRetryable { .. }
            | E::Empty { .. }
            | E::BadAssignee { .. }
            | E::ReloadFailed { .. }
            | E::Ambiguous { .. }
            | E::NotReviewable { .. }
            | E::BadQuality { .. }
            | E::BadSkill { .. }
            | E::ReservedField { .. }
            | E::BadAnswer { .. }
            | E::Symlinked { .. }
            | E::Id(_)
            | E::Config(_) => Code::Invalid,
            E::NotUp { .. }
            | E::StillRunning { .. }
            | E::AgentsStillRunning { .. }
            | E::SupervisorNotReady { .. }
            | E::SupervisorStillRunning { .. }
            | E::NotYet { .. } => Code::Timeout,
            E::SupervisorExited { code, .. } => *code,
            // A symbolic link refused (`confine`) is invalid state.
            E::Io(e) if e.symlinked().is_some() => Code::Invalid,
            E::Signal { .. } | E::Process { .. } | E::BadPointer { .. } | E::Io(_) => Code::Error,
            E::Memory(e) if e.is_refusal() => Code::Invalid,
            E::Memory(_) => Code::Error,
            E::Format(e) => crate::exit::format_code(e),
            E::Shared(e) => e.exit_code(),
        }
    }

    /// What the user can do about it, if there is something to say.
    pub fn hint(&self) -> Option<String> {
        use ClientError as E;
        match self {
            E::NoAgent { sending: true, .. } => Some(
                "`society status` lists agents; `society spawn ROLE --id ID` creates one".into(),
            ),
            E::NoRecipients { .. } | E::NoAssignee { .. } => {
                Some("`society status` lists agents; `society spawn ROLE` creates one".into())
            }
            E::Oversize { .. } => Some(
                "write the payload to a file in the agent's workspace/ and send its path".into(),
            ),
            E::Symlinked { .. } => Some(
                "put the agent's folder (or file) itself in place of the link, or remove the \
                 link; `society fsck` lists every symbolic link society refuses"
                    .into(),
            ),
            E::Unusable { .. } => Some("`society fsck --repair` rebuilds its checkpoint from the logs; the restart request is recorded".into()),
            E::AgentsStillRunning { .. } => Some(
                "`society status` shows them; `society down --timeout SECS` waits longer".into(),
            ),
            E::SupervisorExited { log, .. } | E::SupervisorNotReady { log } => {
                Some(format!("see {}", log.display()))
            }
            E::NoCase { .. } => Some("`society case list` lists cases".into()),
            E::AlreadyClosed { case, .. } => {
                Some(format!("`society case show {case}` shows its timeline"))
            }
            E::CaseEnded { case, .. } => Some(format!(
                "`society case show {case}` shows its timeline; open a new case for new work"
            )),
            E::NoRequest { .. } => Some("`society approvals` lists pending requests".into()),
            E::NoSkill { agent, .. } => Some(format!("`society skills list {agent}` lists them")),
            E::SkillExists { .. } => {
                Some("`--force` replaces it (each file atomically)".into())
            }
            E::NoDecision { .. } | E::NotReviewable { .. } | E::AlreadyReviewed { .. } => {
                Some("`society review` lists the autonomous decisions awaiting review".into())
            }
            E::Running { id } => Some(format!(
                "`society stop {id}` first, or `society rm {id} --force` stops it and removes it"
            )),
            E::Unknown { .. } => Some(
                "`society status`, `society case list` and `society approvals` list them".into(),
            ),
            E::Ambiguous { name, matches } => Some(format!(
                "say which: {}",
                matches
                    .iter()
                    .map(|m| format!("`society describe {}/{name}`", m.split(' ').next().unwrap_or(m)))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            E::NotYet { .. } => Some(
                "the request stays in supervisor/inbox.jsonl and takes effect when the \
                 supervisor reads it; see supervisor/daemon.log and messages/system-events.jsonl"
                    .into(),
            ),
            E::Shared(e) => e.hint(),
            _ => None,
        }
    }
}
