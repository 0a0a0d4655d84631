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
//! Backends: [`echo`] (reply with the same body) and [`script`] (deterministic
//! rules from config, with fault injection for demos and crash tests).

pub mod action;
pub mod echo;
pub mod script;

pub use action::Action;

use society_core::{AgentId, Envelope};
use std::path::Path;

/// Callbacks into the agent loop, available while a brain works.
pub trait Hooks {
    /// Tells the supervisor the agent is alive (rewrites `status.json`).
    fn heartbeat(&mut self);
    /// True once the agent was asked to stop (SIGTERM): long work should abandon.
    fn should_stop(&self) -> bool;
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
    #[error("unknown brain kind {0:?}: expected echo or script")]
    UnknownKind(String),
}

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
        other => Err(BrainError::UnknownKind(other.to_string())),
    }
}
