//! `agent-<id>/conversations/<case-or-msg>.jsonl`: one append-only,
//! fsynced log per case (or per message without a case), one line per turn,
//! in a provider-neutral shape:
//!
//! ```json
//! {"ts":"..","gen":1,"turn":"user","msg":"01J..","text":"from: orchestrator\n..."}
//! {"ts":"..","gen":1,"turn":"assistant","msg":"01J..","step":1,"text":null,
//!  "calls":[{"id":"call_1","name":"write_file","args":{..}}],"usage":{"input":12,"output":5},
//!  "thinking":[{"type":"thinking","thinking":"..","signature":".."}]}
//! {"ts":"..","gen":1,"turn":"tool","msg":"01J..","step":1,"call":"call_1","name":"write_file",
//!  "args":{..},"result":"wrote 12 bytes","ok":true}
//! {"ts":"..","gen":1,"turn":"summary","msg":"01J..","upto":14,"text":"..","model":"..",
//!  "usage":{"input":900,"output":120}}
//! ```
//!
//! An own tool or MCP tool call (see `tools.rs`, `own_tools.rs`, `mcp.rs`)
//! is also recorded *before* it runs, as a `started` line, which is not a
//! turn of the conversation (no request carries it):
//!
//! ```json
//! {"ts":"..","gen":1,"turn":"started","msg":"01J..","step":1,"call":"call_2","name":"word_count","run":1}
//! ```
//!
//! so a replacement process that finds a `started` line without its `tool`
//! turn knows the call began and may have taken effect. Logs without such
//! lines (older ones) load as before; an older binary skips them.
//!
//! The log is the conversation's state: where a message stands (a model call
//! is due, tool calls are pending, it is done) is read off its tail, so a
//! process that replaces a killed one continues exactly where it stopped.
//!
//! A `summary` line (see `compact.rs`) stands for the turns before position
//! `upto` (counting the valid turn lines of the file, earlier summaries
//! included) in every later request; the turns themselves stay in the file.
//! The latest summary wins; summary lines are never part of the tail's
//! verdict.

use super::error::LlmError;
use serde::{Deserialize, Serialize};
use society_core::jsonl::{append_one, read_lines, Durability};
use society_core::MsgId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Tools after which a message's conversation stops.
pub const TERMINAL_TOOLS: [&str; 4] = [
    "finish",
    "request_approval",
    "decide",
    super::wire::STRUCTURED_TOOL,
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "turn", rename_all = "lowercase")]
pub enum Turn {
    User {
        msg: MsgId,
        text: String,
    },
    Assistant {
        msg: MsgId,
        step: u32,
        text: Option<String>,
        calls: Vec<ToolCall>,
        usage: Usage,
        /// Anthropic's `thinking` / `redacted_thinking` blocks, verbatim
        /// (signature included): the API wants them back unchanged.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        thinking: Vec<serde_json::Value>,
    },
    Tool {
        msg: MsgId,
        step: u32,
        call: String,
        name: String,
        args: serde_json::Value,
        result: String,
        ok: bool,
    },
    /// The model's summary of `turns[..upto]`, written by compaction while
    /// handling `msg`; `usage` and `model` are those of the summary call.
    Summary {
        msg: MsgId,
        upto: usize,
        text: String,
        model: String,
        usage: Usage,
    },
}

impl Turn {
    pub fn msg(&self) -> MsgId {
        match self {
            Turn::User { msg, .. }
            | Turn::Assistant { msg, .. }
            | Turn::Tool { msg, .. }
            | Turn::Summary { msg, .. } => *msg,
        }
    }

    fn is_summary(&self) -> bool {
        matches!(self, Turn::Summary { .. })
    }
}

/// A model's answer, in the neutral shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReply {
    pub text: Option<String>,
    pub calls: Vec<ToolCall>,
    pub usage: Usage,
    pub thinking: Vec<serde_json::Value>,
    /// `finish_reason` / `stop_reason` as the provider said it.
    pub stop_reason: Option<String>,
    /// The provider stopped at the token limit: the answer is cut.
    pub truncated: bool,
}

/// What a tool call that never ran tells the model in later requests.
const NOT_EXECUTED: &str = "not executed: the conversation was interrupted before this call ran";

/// A tool call recorded as started (see the module notes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub msg: MsgId,
    pub step: u32,
    pub call: String,
    pub name: String,
    /// 1 for the first run of this call, 2 for a re-run after an interruption, ...
    pub run: u32,
}

/// A `started` line: `turn` is always `"started"`.
#[derive(Serialize, Deserialize)]
struct StartedLine {
    ts: String,
    gen: u64,
    turn: String,
    #[serde(flatten)]
    started: Started,
}

const STARTED: &str = "started";

#[derive(Serialize, Deserialize)]
struct Line {
    ts: String,
    gen: u64,
    #[serde(flatten)]
    turn: Turn,
}

/// What the tail of the log says is due.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The model has not answered the latest user turn or tool results.
    Call,
    /// The model asked for tool calls that have no recorded result yet.
    Execute(Vec<ToolCall>),
    /// The model's last answer ended the exchange.
    Done,
}

pub struct Conversation {
    path: PathBuf,
    pub turns: Vec<Turn>,
    /// The `started` lines, in log order.
    pub started: Vec<Started>,
}

impl Conversation {
    /// Loads (or starts) the conversation of `key` in `folder/conversations/`.
    /// Lines that are not valid turns (a torn write) are skipped.
    pub fn load(folder: &Path, key: &str) -> Result<Conversation, LlmError> {
        let dir = folder.join("conversations");
        std::fs::create_dir_all(&dir).map_err(|source| LlmError::Ledger {
            path: dir.clone(),
            source: society_core::IoError::new("create directory", &dir, source),
        })?;
        let path = dir.join(format!("{key}.jsonl"));
        let mut turns = Vec::new();
        let mut started = Vec::new();
        let mut cursor = 0;
        loop {
            let batch = read_lines(&path, cursor, 1 << 20).map_err(|source| LlmError::Ledger {
                path: path.clone(),
                source,
            })?;
            if batch.lines.is_empty() {
                break;
            }
            for l in &batch.lines {
                if let Ok(line) = serde_json::from_slice::<Line>(&l.bytes) {
                    turns.push(line.turn);
                } else if let Ok(line) = serde_json::from_slice::<StartedLine>(&l.bytes) {
                    if line.turn == STARTED {
                        started.push(line.started);
                    }
                }
            }
            cursor = batch.next;
        }
        Ok(Conversation {
            path,
            turns,
            started,
        })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one turn (fsynced) before it counts as part of the conversation.
    pub fn push(&mut self, turn: Turn, gen: u64) -> Result<(), LlmError> {
        let line = Line {
            ts: society_core::time::now_rfc3339(),
            gen,
            turn,
        };
        self.append(&serde_json::to_vec(&line).expect("a turn always serialises"))?;
        self.turns.push(line.turn);
        Ok(())
    }

    /// Records (fsynced) that a tool call is about to run.
    pub fn push_started(&mut self, started: Started, gen: u64) -> Result<(), LlmError> {
        let line = StartedLine {
            ts: society_core::time::now_rfc3339(),
            gen,
            turn: STARTED.into(),
            started,
        };
        self.append(&serde_json::to_vec(&line).expect("a started line always serialises"))?;
        self.started.push(line.started);
        Ok(())
    }

    /// How many times the call `call` of step `step` of `msg` was started.
    pub fn runs(&self, msg: MsgId, step: u32, call: &str) -> u32 {
        self.started
            .iter()
            .filter(|s| s.msg == msg && s.step == step && s.call == call)
            .count() as u32
    }

    fn append(&self, bytes: &[u8]) -> Result<(), LlmError> {
        append_one(
            &self.path,
            bytes,
            Durability::Durable,
            society_core::DEFAULT_MAX_RECORD,
        )
        .map(drop)
        .map_err(|source| LlmError::Record {
            path: self.path.clone(),
            source,
        })
    }

    pub fn has_user_turn(&self, msg: MsgId) -> bool {
        self.turns
            .iter()
            .any(|t| matches!(t, Turn::User { msg: m, .. } if *m == msg))
    }

    /// Model calls already answered while handling `msg`.
    pub fn steps(&self, msg: MsgId) -> u32 {
        self.turns
            .iter()
            .filter(|t| matches!(t, Turn::Assistant { msg: m, .. } if *m == msg))
            .count() as u32
    }

    /// Usage of the latest model answer: the next request contains everything
    /// it saw and said, so it bounds the next prompt from below. None after
    /// a summary: the answers before it saw turns no request carries now.
    pub fn last_usage(&self) -> Option<Usage> {
        self.turns
            .iter()
            .rev()
            .take_while(|t| !t.is_summary())
            .find_map(|t| match t {
                Turn::Assistant { usage, .. } => Some(*usage),
                _ => None,
            })
    }

    /// The latest summary, if any: `(upto, the summary turn)`.
    pub fn summary(&self) -> Option<(usize, &Turn)> {
        self.turns.iter().rev().find_map(|t| match t {
            Turn::Summary { upto, .. } => Some((*upto, t)),
            _ => None,
        })
    }

    /// Where requests start in the log: after the latest summary's cut.
    fn base(&self) -> usize {
        self.summary()
            .map_or(0, |(upto, _)| upto.min(self.turns.len()))
    }

    /// The latest position `c` at which the history may be cut, so that a
    /// summary of `turns[..c]` plus the turns from `c` on make a valid
    /// request, or `None` when nothing is left to cut. A cut is valid only
    /// before a user turn that starts a message, after the latest summary's
    /// cut, with every message on one side of it (so never between an
    /// assistant turn and its tool results, and the message being handled
    /// stays whole), and with at least `keep` user turns after it.
    pub fn cut(&self, keep: u32) -> Option<usize> {
        let base = self.base();
        let mut last = std::collections::HashMap::new();
        for (i, t) in self.turns.iter().enumerate().skip(base) {
            if !t.is_summary() {
                last.insert(t.msg(), i);
            }
        }
        // Valid cuts, in log order: `reach` is the last turn of any message
        // seen so far, so a user turn after it starts a clean boundary.
        let mut cuts = Vec::new();
        let mut reach = 0;
        for (i, t) in self.turns.iter().enumerate().skip(base) {
            if t.is_summary() {
                continue;
            }
            if i > base && matches!(t, Turn::User { .. }) && reach < i {
                cuts.push(i);
            }
            reach = reach.max(last.get(&t.msg()).copied().unwrap_or(i));
        }
        let kept = |c: usize| {
            self.turns[c..]
                .iter()
                .filter(|t| matches!(t, Turn::User { .. }))
                .count()
        };
        // The latest cut summarises the most; the first one from the end
        // that keeps enough messages wins.
        cuts.into_iter()
            .rev()
            .find(|&c| kept(c) >= keep.max(1) as usize)
    }

    /// What a summary at `cut` replaces: the latest summary's text (if any)
    /// and the turns from its cut to `cut`, as requests would send them.
    pub fn older(&self, cut: usize) -> (Option<&str>, Vec<Turn>) {
        let prev = self.summary().and_then(|(_, t)| match t {
            Turn::Summary { text, .. } => Some(text.as_str()),
            _ => None,
        });
        let part = Conversation {
            path: PathBuf::new(),
            turns: self.turns[self.base()..cut.min(self.turns.len())]
                .iter()
                .filter(|t| !t.is_summary())
                .cloned()
                .collect(),
            started: Vec::new(),
        };
        (prev, part.for_request())
    }

    /// The turns as a request sends them: every assistant turn with tool
    /// calls is followed by exactly one result per call, in call order (a
    /// call that never ran, because its message was given up, gets a
    /// "not executed" result), since both protocols refuse anything else.
    /// After a summary, the request starts with it, then the turns from its
    /// cut on.
    pub fn for_request(&self) -> Vec<Turn> {
        let mut out = Vec::with_capacity(self.turns.len());
        let mut i = self.base();
        if let Some((_, summary)) = self.summary() {
            out.push(summary.clone());
        }
        while i < self.turns.len() {
            let turn = &self.turns[i];
            i += 1;
            let Turn::Assistant {
                msg, step, calls, ..
            } = turn
            else {
                if matches!(turn, Turn::User { .. }) {
                    out.push(turn.clone());
                }
                continue;
            };
            out.push(turn.clone());
            let start = i;
            while i < self.turns.len()
                && matches!(self.turns[i], Turn::Tool { .. } | Turn::Summary { .. })
            {
                i += 1;
            }
            let results = &self.turns[start..i];
            for c in calls {
                let found = results
                    .iter()
                    .find(|t| matches!(t, Turn::Tool { call, .. } if *call == c.id));
                out.push(found.cloned().unwrap_or_else(|| Turn::Tool {
                    msg: *msg,
                    step: *step,
                    call: c.id.clone(),
                    name: c.name.clone(),
                    args: c.args.clone(),
                    result: NOT_EXECUTED.into(),
                    ok: false,
                }));
            }
        }
        out
    }

    pub fn next(&self) -> Next {
        let Some(last) = self.turns.iter().rev().find(|t| !t.is_summary()) else {
            return Next::Call;
        };
        if matches!(last, Turn::User { .. }) {
            return Next::Call;
        }
        let Some((at, calls)) = self
            .turns
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, t)| match t {
                Turn::Assistant { calls, .. } => Some((i, calls)),
                _ => None,
            })
        else {
            return Next::Call;
        };
        let done: HashSet<&str> = self.turns[at + 1..]
            .iter()
            .filter_map(|t| match t {
                Turn::Tool { call, .. } => Some(call.as_str()),
                _ => None,
            })
            .collect();
        let pending: Vec<ToolCall> = calls
            .iter()
            .filter(|c| !done.contains(c.id.as_str()))
            .cloned()
            .collect();
        if !pending.is_empty() {
            Next::Execute(pending)
        } else if calls.is_empty() || calls.iter().any(|c| TERMINAL_TOOLS.contains(&&*c.name)) {
            Next::Done
        } else {
            Next::Call
        }
    }
}

#[cfg(test)]
mod tests;
