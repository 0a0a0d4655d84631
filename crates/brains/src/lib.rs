//! Brains: what an agent *thinks*. A brain turns one inbound message into
//! actions; the runtime owns all the mechanics around it (delivery, ids,
//! checkpoints, logging, budgets).
//!
//! Theory of operation: the agent loop calls [`Brain::handle`] once per attempt
//! at a message, with a [`Context`] that says who the agent is, which attempt
//! this is, and offers hooks to heartbeat during long work and to notice a stop
//! request. The brain returns [`Action`]s or a [`BrainError`]; it never writes
//! inboxes or logs itself. Because a message can be handled again after a
//! crash (at-least-once), a brain should be deterministic given the message and
//! attempt, or at least harmless to repeat: the runtime gives repeated outputs
//! the same ids so every log keeps them once.
//!
//! Backends: [`echo`] (reply with the same body), [`script`] (deterministic
//! rules from config, with fault injection for demos and crash tests) and
//! [`command`] (any program, one process per message, JSON in and out) and
//! [`llm`] (a model over HTTP, with tools, retries, costs and budgets).

pub mod action;
pub mod command;
pub mod echo;
#[doc(hidden)]
pub mod fuzzing;
pub mod llm;
pub mod sandbox;
pub mod script;
pub mod secrets;

pub use action::Action;

use society_core::{AgentId, Envelope};
use std::path::Path;

/// Callbacks into the agent loop, available while a brain works.
pub trait Hooks {
    /// Tells the supervisor the agent is alive (rewrites `status.json`).
    fn heartbeat(&mut self);
    /// True once the agent was asked to stop (SIGTERM): long work should abandon.
    fn should_stop(&self) -> bool;
    /// Records `event` with `fields` in the agent's `activity.jsonl`.
    fn log(&mut self, _event: &str, _fields: serde_json::Value) {}
    /// The process group of a tool the brain is running (`None` once it is
    /// gone and reaped). The agent persists it so that, if the agent dies
    /// first, its next generation can kill the group.
    fn child_group(&mut self, _pgid: Option<i32>) {}
}

/// What a brain knows about the agent it runs in.
pub struct Context<'a> {
    pub agent: &'a AgentId,
    pub role: &'a str,
    pub folder: &'a Path,
    /// 1 for the first attempt at this message, 2 after one failure or crash, ...
    pub attempt: u32,
    pub gen: u64,
    pub hooks: &'a mut dyn Hooks,
}

/// Why a brain did not produce actions for a message.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("scripted failure on attempt {attempt} (rule fails attempts up to {until})")]
    Scripted { attempt: u32, until: u32 },
    #[error("abandoned: the agent is stopping")]
    Abandoned,
    #[error("invalid {kind} brain config: {reason}")]
    Config { kind: String, reason: String },
    #[error(transparent)]
    Llm(#[from] llm::LlmError),
    #[error("unknown brain kind {:?}: expected one of {}", .0, KINDS.join(", "))]
    UnknownKind(String),
    #[error("failed to start command {program}: {source}")]
    CommandSpawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("command {program} timed out after {timeout}; its process group was killed")]
    CommandTimeout { program: String, timeout: String },
    #[error("command {program} failed: {reason}")]
    CommandFailed { program: String, reason: String },
    #[error("command {program} printed an invalid action on stdout line {line}: {reason}")]
    CommandOutput {
        program: String,
        line: usize,
        reason: String,
    },
    /// A `decide` the runtime refuses (malformed, unknown decision type):
    /// repeating it cannot help, so the message is dead-lettered at once.
    #[error("{0}")]
    Decision(String),
    /// The runtime could not read or write a decision's files (a full disk,
    /// a file replaced by a directory): the message waits and is tried again
    /// (see [`BrainError::wait`]).
    #[error("decision files: {0}")]
    DecisionIo(String),
    /// A remember over the limits (permanent), or memory files that could
    /// not be read or written (the message waits, see [`BrainError::wait`]).
    #[error("memory: {0}")]
    Memory(#[from] society_core::memory::MemoryError),
    /// The agent's `workspace/` is a symbolic link: no program is run in
    /// it (`society_core::confine`).
    #[error("workspace/ cannot be used: {0}")]
    Workspace(society_core::confine::Symlinked),
    #[error("refused write_file {path:?}: {reason}")]
    WriteRefused { path: String, reason: String },
    #[error("failed to write {} in the workspace: {source}", path.display())]
    WriteFailed {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How long a message waits after its agent's own files failed to write.
pub const STORAGE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl BrainError {
    /// Repeating the message cannot help (a refused key, a rejected
    /// request): the runtime dead-letters it at once.
    pub fn is_permanent(&self) -> bool {
        matches!(self, BrainError::Decision(_))
            || matches!(self, BrainError::Memory(e) if e.is_refusal())
            || matches!(self, BrainError::Llm(e) if e.is_permanent())
    }

    /// The message must not be tried again for this long (a provider's
    /// `Retry-After`): the runtime defers it without counting an attempt.
    ///
    /// The agent's own decision and memory files failing to read or write (a
    /// full disk, a file replaced by a directory) say nothing about the
    /// message: it waits and is tried again, as long as the fault lasts,
    /// without using up its attempts — like a failed outbox write.
    pub fn wait(&self) -> Option<std::time::Duration> {
        match self {
            BrainError::Llm(e) => e.wait(),
            BrainError::DecisionIo(_) => Some(STORAGE_RETRY),
            BrainError::Memory(society_core::memory::MemoryError::Io(_)) => Some(STORAGE_RETRY),
            _ => None,
        }
    }
}

impl BrainError {
    /// What the orchestrator must be told, once, about this failure
    /// (`reason`, `context`): the runtime escalates it with an id derived
    /// from the message's, so a retried attempt does not say it twice.
    pub fn escalation(&self) -> Option<(String, serde_json::Value)> {
        match self {
            BrainError::Llm(e) => e.escalation(),
            _ => None,
        }
    }
}

/// Every brain kind [`build`] knows, for `--brain` and error messages.
pub const KINDS: [&str; 4] = ["echo", "script", "command", "llm"];

/// A backend.
pub trait Brain: Send {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &Envelope) -> Result<Vec<Action>, BrainError>;
}

/// Builds the brain described by an agent's `config.json` `brain` object.
pub fn build(config: &serde_json::Value) -> Result<Box<dyn Brain>, BrainError> {
    let kind = config
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("echo");
    match kind {
        "echo" => Ok(Box::new(echo::Echo)),
        "script" => Ok(Box::new(script::Script::from_config(config)?)),
        "command" => Ok(Box::new(command::Command::from_config(config)?)),
        "llm" => Ok(Box::new(llm::Llm::from_config(config)?)),
        other => Err(BrainError::UnknownKind(other.to_string())),
    }
}
