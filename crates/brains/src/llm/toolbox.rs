//! The tools an agent declares beyond the built-in ones: its own tools
//! ([`super::own_tools`]) and its MCP servers' tools ([`super::mcp`]), and
//! how a call to one is found and run.

use super::config::LlmConfig;
use super::conversation::ToolCall;
use super::http::CallError;
use super::mcp::{self, Exposed, Mcp};
use super::own_tools::{OnInterrupt, OwnTool};
use super::tools::{self, Definition, Outcome};
use super::LlmError;
use crate::Hooks;
use serde_json::{json, Value};
use std::path::Path;

pub struct Toolbox {
    /// Offer `decide` (brain key `decide = true`).
    decide: bool,
    /// `remember`, `recall`, `read_shared`, as the config offers them.
    memory: Vec<Definition>,
    own: Vec<OwnTool>,
    mcp: Mcp,
}

/// One run of a declared tool's call.
pub struct Invocation<'a> {
    pub call: &'a ToolCall,
    /// `<message id>-<step>-<call id>`: the same for every run of the call.
    pub call_id: &'a str,
    /// 1 for the first run, 2 for a re-run after an interruption, ...
    pub run: u32,
    pub agent: &'a str,
    pub msg: &'a str,
    pub folder: &'a Path,
}

/// A declared tool a call names.
#[derive(Debug, Clone)]
pub enum Declared {
    Own(usize),
    Mcp(Exposed),
}

impl Toolbox {
    pub fn new(cfg: &LlmConfig) -> Toolbox {
        Toolbox {
            decide: cfg.decide,
            memory: super::memory_tools::definitions(cfg),
            own: cfg.tools.clone(),
            mcp: Mcp::new(&cfg.mcp),
        }
    }

    /// Starts the MCP servers and lists their tools (once per process).
    pub fn prepare(&mut self, folder: &Path, hooks: &mut dyn Hooks) -> Result<(), CallError> {
        let taken: Vec<String> = tools::BUILT_IN
            .iter()
            .map(|n| n.to_string())
            .chain(self.memory.iter().map(|d| d.name.clone()))
            .chain(self.own.iter().map(|t| t.name.clone()))
            .collect();
        self.mcp
            .prepare(folder, &taken, hooks)
            .map_err(|f| match f {
                mcp::Failure::Stopped => CallError::Abandoned,
                mcp::Failure::Start { server, reason } => {
                    LlmError::McpStart { server, reason }.into()
                }
            })
    }

    /// Every tool offered to the model: built-in, own, then MCP tools.
    pub fn definitions(&self) -> Vec<Definition> {
        let extra: Vec<Definition> = self
            .memory
            .iter()
            .cloned()
            .chain(self.own.iter().map(OwnTool::definition))
            .chain(self.mcp.tools().iter().map(|e| e.definition.clone()))
            .collect();
        let mut all = tools::definitions(&extra);
        if self.decide {
            all.insert(5, tools::decide_definition());
        }
        all
    }

    /// The declared tool `name` names, if any (built-in tools are not).
    pub fn find(&self, name: &str) -> Option<Declared> {
        if let Some(i) = self.own.iter().position(|t| t.name == name) {
            return Some(Declared::Own(i));
        }
        self.mcp
            .tools()
            .iter()
            .find(|e| e.definition.name == name)
            .cloned()
            .map(Declared::Mcp)
    }

    /// What a started call without a result does when the conversation resumes.
    pub fn on_interrupt(&self, tool: &Declared) -> OnInterrupt {
        match tool {
            Declared::Own(i) => self.own[*i].on_interrupt,
            Declared::Mcp(e) => self.mcp.on_interrupt(e.server),
        }
    }

    /// What `tools.jsonl` says of the tool beyond its name.
    pub fn describe(&self, tool: &Declared) -> Value {
        match tool {
            Declared::Own(_) => json!({"kind": "own"}),
            Declared::Mcp(e) => {
                json!({"kind": "mcp", "server": self.mcp.server_name(e.server), "mcp_tool": e.tool})
            }
        }
    }

    /// Runs a call. `None`: the agent is stopping and the call has no result.
    pub fn run(
        &mut self,
        tool: &Declared,
        inv: &Invocation<'_>,
        hooks: &mut dyn Hooks,
    ) -> Option<Outcome> {
        match tool {
            Declared::Own(i) => self.own[*i].run(inv, hooks),
            Declared::Mcp(e) => self.mcp.call(e, inv.call, inv.folder, hooks),
        }
    }
}

/// The result of a call that was started, has no result, and is not run
/// again (`on_interrupt = "report"`).
pub fn interrupted(name: &str) -> Outcome {
    Outcome {
        result: format!(
            "interrupted: this call to {name} was started, but the agent stopped (a crash, a kill \
             or a stop) before its result was recorded. It may or may not have taken effect; \
             it was not run again. Check before calling it again."
        ),
        ok: false,
    }
}
