//! The tools beyond the runtime's actions that an llm brain offers by
//! config: `remember` and `recall` (brain key `memory = true`, the agent's
//! `memory.jsonl`, see `society_core::memory`) and `read_shared` (`shared =
//! true` or `shared_in_prompt = true`, see [`super::shared`]).
//!
//! Exactly once: a call's result is in the conversation log before it
//! counts, so a finished call is never run again; a call killed between its
//! effect and its record runs again, and a `remember` then derives the same
//! memory id (from the message, the step and the call id) and finds it
//! already stored.

use super::config::LlmConfig;
use super::conversation::ToolCall;
use super::tools::{Definition, Outcome};
use serde_json::{json, Value};
use society_core::memory::{self, Note, Remembered, Store};
use society_core::{CaseId, MsgId};
use std::path::Path;

pub const REMEMBER: &str = "remember";
pub const RECALL: &str = "recall";
pub const READ_SHARED: &str = "read_shared";

/// Does the config offer the tool `name`?
pub fn offers(cfg: &LlmConfig, name: &str) -> bool {
    match name {
        REMEMBER | RECALL => cfg.memory,
        READ_SHARED => cfg.offers_shared(),
        _ => false,
    }
}

/// The definitions of the tools the config offers.
pub fn definitions(cfg: &LlmConfig) -> Vec<Definition> {
    let mut out = Vec::new();
    if cfg.memory {
        out.push(Definition {
            name: REMEMBER.into(),
            description: format!(
                "Store a memory you may recall in later messages and engagements: a fact, a \
                 decision, what worked. Tags are matched with double weight. At most {} bytes of \
                 text and {} tags.",
                memory::MAX_TEXT,
                memory::MAX_TAGS
            ),
            parameters: json!({"type": "object", "properties": {
                "text": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "case": {"type": "string", "description": "the case it belongs to (default: the current message's)"}},
                "required": ["text"]}),
        });
        out.push(Definition {
            name: RECALL.into(),
            description: "Recall your memories that best match a query (word match over text and \
                          tags, recent ones first among equals)."
                .into(),
            parameters: json!({"type": "object", "properties": {
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": memory::MAX_K, "description": "how many (default 5)"}},
                "required": ["query"]}),
        });
    }
    if cfg.offers_shared() {
        out.push(Definition {
            name: READ_SHARED.into(),
            description: "Read a file of the society's shared context (bible, style guide, \
                          schedules), by its name in shared/."
                .into(),
            parameters: json!({"type": "object", "properties": {
                "name": {"type": "string"}}, "required": ["name"]}),
        });
    }
    out
}

/// Where a call runs: the agent's folder and the message being handled.
pub struct Place<'a> {
    pub folder: &'a Path,
    pub msg: MsgId,
    pub case: Option<&'a CaseId>,
    pub step: u32,
}

/// Runs a call to one of these tools.
pub fn execute(call: &ToolCall, at: &Place<'_>) -> Outcome {
    let result = match call.name.as_str() {
        REMEMBER => remember(call, at),
        RECALL => recall(&call.args, at.folder),
        READ_SHARED => str_arg(&call.args, "name")
            .and_then(|name| super::shared::read(&super::shared::dir(at.folder), name)),
        other => Err(format!("unknown tool {other}")),
    };
    match result {
        Ok(result) => Outcome { result, ok: true },
        Err(result) => Outcome { result, ok: false },
    }
}

fn remember(call: &ToolCall, at: &Place<'_>) -> Result<String, String> {
    let args = &call.args;
    let case = match args.get("case").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => Some(CaseId::new(c).map_err(|e| format!("case {c:?}: {e}"))?),
        _ => at.case.cloned(),
    };
    let tags = match args.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(str::to_string).ok_or("tags must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("tags must be an array of strings".into()),
    };
    let note = Note {
        text: str_arg(args, "text")?.to_string(),
        tags,
        case,
    };
    let id = memory::derive_id(&at.msg, &format!("llm-{}-{}", at.step, call.id));
    match Store::new(at.folder).remember(&id, &note, Some(at.msg)) {
        Ok(Remembered::Stored | Remembered::AlreadyStored) => Ok(format!("remembered ({id})")),
        Err(e) => Err(format!("not remembered: {e}")),
    }
}

fn recall(args: &Value, folder: &Path) -> Result<String, String> {
    let query = str_arg(args, "query")?;
    let k = match args.get("k") {
        None | Some(Value::Null) => memory::DEFAULT_K,
        Some(v) => v
            .as_u64()
            .map(|k| k as usize)
            .ok_or("k must be a whole number")?,
    };
    let found = Store::new(folder)
        .recall(query, k, std::time::SystemTime::now(), true)
        .map_err(|e| format!("recall failed: {e}"))?;
    if found.hits.is_empty() {
        return Ok(format!(
            "no memory matches {query:?} ({} memories)",
            found.total
        ));
    }
    let hits: Vec<Value> = found
        .hits
        .iter()
        .map(|h| {
            json!({"text": h.memory.text, "tags": h.memory.tags, "case": h.memory.case,
                   "ts": h.memory.ts, "score": (h.score * 1000.0).round() / 1000.0})
        })
        .collect();
    // Up to 100 memories of 16 KiB each: bounded like `read_file`.
    Ok(super::tools::truncate(
        &Value::Array(hits).to_string(),
        super::shared::READ_LIMIT,
    ))
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string argument `{key}`"))
}
