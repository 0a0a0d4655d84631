//! `llm`: a model behind an OpenAI-compatible or Anthropic endpoint, with the
//! runtime's actions offered as tools.
//!
//! Theory of operation. Each inbound message runs a *tool loop* over a
//! conversation that lives on disk (`conversations/<case-or-msg>.jsonl`):
//! the message becomes a user turn; the model answers with tool calls, which
//! run and are recorded, and is called again, until it calls `finish` (or
//! `request_approval`), answers with text only (a reply), or reaches
//! `max_steps` (a failed attempt). Every turn is appended (fsynced) before it
//! counts, so the log *is* the state: a process that replaces a killed one
//! reads the tail and continues — answered calls are not requested again,
//! executed tools are not run again, and the actions are rebuilt from the
//! recorded calls, so the runtime derives the same output ids and nothing is
//! sent twice.
//!
//! Around each model call: the budgets are checked ([`budget`]; running out
//! parks the message in an approval request, and an approval extends the
//! budget and resumes the conversation), the call is retried on timeouts,
//! 429 and 5xx ([`http`], [`retry`]), and its usage is charged to
//! `costs.jsonl` ([`ledger`]). Every tool call is logged to `tools.jsonl`.
//! A conversation that outgrows the model's context window is compacted:
//! older turns are summarised by the model, the file keeps them all
//! ([`compact`]).
//! HTTP stays in this crate; the runtime only sees [`Action`]s.
//!
//! Beyond the built-in tools ([`tools`]), an agent may declare its own
//! tools — programs run per call ([`own_tools`]) — and MCP servers whose
//! tools it offers ([`mcp`]); [`toolbox`] finds and runs them. Such a call
//! is recorded as started before it runs, so a replacement process knows
//! a call that began and has no result, and re-runs it with the same call
//! id or tells the model it was interrupted (`on_interrupt`).

pub(crate) mod anthropic;
mod budget;
pub mod circuit;
mod compact;
mod config;
pub(crate) mod conversation;
mod error;
mod extension;
mod http;
mod inbound;
mod inflight;
mod ledger;
mod mcp;
mod memory_tools;
pub(crate) mod openai;
mod own_tools;
mod retry;
mod session;
mod shared;
pub(crate) mod stream;
mod toolbox;
mod tools;
mod wire;
mod workspace;

pub use config::{
    Limits, LlmConfig, MaxTokensField, Price, Provider, ReasoningEffort, ResponseFormat, ToolChoice,
};
pub use error::LlmError;

use crate::{Action, Brain, BrainError, Context};
use society_core::Envelope;
use std::path::Path;

/// What every agent on an LLM is told before its own prompt.
const PREAMBLE: &str = "You are agent {agent} (role {role}) in a society of agents that talk by messages. \
Each message you receive is shown with its id, sender, type and case. Act through the tools: \
`reply` answers the sender; `send_message` reaches another agent (by id or role:<role>), the supervisor, \
or the orchestrator (the human); `read_file`/`write_file` work on files in your workspace; \
`case_event` records progress in the case; `request_approval` asks the orchestrator before anything \
risky; `escalate` hands up a problem you cannot solve; call `finish` when you are done with the message. \
A plain text answer is sent to the sender as a reply.";

pub struct Llm {
    cfg: LlmConfig,
    /// Own tools and MCP servers (started at the first message).
    toolbox: toolbox::Toolbox,
    /// Built on first use, so validating a config (CLI, supervisor) starts no HTTP machinery.
    client: Option<reqwest::blocking::Client>,
    /// What the orchestrator must hear although the message goes on (a
    /// circuit opened on a model this message then fell back from).
    escalations: Vec<(String, serde_json::Value)>,
    /// The model (0) or fallback the current message is on.
    candidate: usize,
}

impl Llm {
    pub fn from_config(config: &serde_json::Value) -> Result<Llm, BrainError> {
        let cfg = LlmConfig::parse(config)?;
        Ok(Llm {
            toolbox: toolbox::Toolbox::new(&cfg),
            cfg,
            client: None,
            escalations: Vec::new(),
            candidate: 0,
        })
    }

    fn client(&mut self) -> Result<reqwest::blocking::Client, LlmError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        // reqwest's blocking timeout bounds the wait for the response head
        // and each read of the body, not the whole exchange: with a stream,
        // set to `stall_timeout`, it lets a stalled read end (and drop the
        // connection) while a body that keeps coming is never cut.
        let timeout = if self.cfg.stream {
            self.cfg.stall_timeout()
        } else {
            self.cfg.timeout
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(self.cfg.connect_timeout)
            .user_agent(concat!("society/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(LlmError::Client)?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// The preamble, then the agent's own prompt (inline or from a file
    /// relative to its folder).
    fn system_prompt(&self, ctx: &Context<'_>) -> Result<String, LlmError> {
        let mut text = PREAMBLE
            .replace("{agent}", ctx.agent.as_str())
            .replace("{role}", ctx.role);
        let own = match (&self.cfg.system_prompt, &self.cfg.system_prompt_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(file)) => {
                let path = resolve_prompt(ctx.folder, file);
                Some(
                    std::fs::read_to_string(&path)
                        .map_err(|source| LlmError::Prompt { path, source })?,
                )
            }
            (None, None) => None,
        };
        if let Some(own) = own.filter(|o| !o.trim().is_empty()) {
            text.push_str("\n\n");
            text.push_str(own.trim_end());
        }
        if self.cfg.shared_in_prompt {
            text.push_str("\n\n");
            text.push_str(&shared::prompt_section(&shared::dir(ctx.folder)));
        }
        Ok(text)
    }
}

fn resolve_prompt(folder: &Path, file: &Path) -> std::path::PathBuf {
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        folder.join(file)
    }
}

impl Brain for Llm {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &Envelope) -> Result<Vec<Action>, BrainError> {
        self.escalations.clear();
        self.candidate = 0;
        match session::run(self, ctx, msg) {
            Ok(actions) => Ok(actions),
            Err(http::CallError::Abandoned) => Err(BrainError::Abandoned),
            Err(http::CallError::Failed(e)) => Err(BrainError::Llm(e)),
        }
    }
}
