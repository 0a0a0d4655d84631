//! The runtime's actions, offered to the model as tools.
//!
//! Tools that only *say* something (send_message, reply, request_approval,
//! case_event, escalate, finish) map to an [`Action`] by a pure function of
//! their arguments, so the actions of a conversation can be rebuilt from its
//! log after a crash without executing anything again. `read_file` and
//! `write_file` act on the agent's `workspace/` (see [`super::workspace`]).

use super::conversation::ToolCall;
use super::workspace;
use crate::Action;
use serde_json::{json, Value};
use society_core::{CaseId, MsgId, Party};
use std::path::Path;

/// Longest file content handed back to the model by `read_file`.
const READ_LIMIT: usize = 64 * 1024;

/// Where `reply` goes.
#[derive(Debug, Clone)]
pub enum ReplyTo {
    /// The sender of the message being handled (a normal reply).
    Sender,
    /// The sender of a parked message whose conversation resumes after an
    /// approval: a reply to the approval itself would go to the orchestrator.
    /// `id` is the parked message's: the reply's `reply_to`.
    Parked {
        id: MsgId,
        to: Party,
        case: Option<CaseId>,
    },
}

/// A tool as offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments (an object schema).
    pub parameters: Value,
}

/// The names of the built-in tools: declared tools may not take them.
pub const BUILT_IN: [&str; 9] = [
    "send_message",
    "reply",
    "read_file",
    "write_file",
    "request_approval",
    "decide",
    "case_event",
    "escalate",
    "finish",
];

/// Every tool offered to the model: the built-in ones, then `extra` (the
/// agent's own tools and its MCP servers' tools, see [`super::toolbox`]).
pub fn definitions(extra: &[Definition]) -> Vec<Definition> {
    let mut all: Vec<Definition> = built_in()
        .into_iter()
        .filter(|(name, _, _)| *name != "decide")
        .map(|(name, description, parameters)| Definition {
            name: name.into(),
            description: description.into(),
            parameters,
        })
        .collect();
    all.extend(extra.iter().cloned());
    all
}

/// The `decide` tool, offered only to agents whose brain sets `decide = true`
/// (its schema is long: every agent would pay for it on every call).
pub fn decide_definition() -> Definition {
    built_in()
        .into_iter()
        .find(|(name, _, _)| *name == "decide")
        .map(|(name, description, parameters)| Definition {
            name: name.into(),
            description: description.into(),
            parameters,
        })
        .unwrap_or_else(|| unreachable!("decide is a built-in tool"))
}

/// `(name, description, JSON schema of the arguments)` of every built-in tool.
fn built_in() -> Vec<(&'static str, &'static str, Value)> {
    let obj = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    vec![
        ("send_message", "Send a message to another party: an agent id, role:<role>, supervisor or orchestrator (the human).",
         obj(json!({"to": {"type": "string"}, "type": {"type": "string", "description": "message type, [a-z0-9_.-]"}, "body": {"type": "object"}, "needs": {"type": "array", "items": {"type": "string"}, "description": "for role:<role>: capabilities the recipient must have"}}), &["to", "type", "body"])),
        ("reply", "Reply to the sender of the message you are handling.",
         obj(json!({"body": {"type": "object", "description": "e.g. {\"text\": \"...\"}"}}), &["body"])),
        ("read_file", "Read a file of your workspace (path relative to workspace/).",
         obj(json!({"path": {"type": "string"}}), &["path"])),
        ("write_file", "Create or replace a file in your workspace (path relative to workspace/).",
         obj(json!({"path": {"type": "string"}, "content": {"type": "string"}}), &["path", "content"])),
        ("request_approval", "Ask the human orchestrator to approve a plan before acting. Ends this turn; you continue when they answer.",
         obj(json!({"plan": {"type": "string"}, "rationale": {"type": "string"}, "alternatives": {"type": "array", "items": {"type": "string"}}}), &["plan", "rationale"])),
        ("decide", "Propose a decision instead of acting. The runtime scores its impact, risk and your confidence, then runs `then` at once, after the orchestrator approves, or after your peers agree in a debate. Ends this turn; if the orchestrator rejects it with feedback you continue and may propose a revision.",
         obj(json!({
            "proposal": obj(json!({
                "decision_type": {"type": "string"},
                "scope": {"type": "string", "enum": ["scene", "episode", "series"]},
                "affects_multiple_departments": {"type": "boolean"},
                "is_foundational": {"type": "boolean"},
                "reversibility": {"type": "string", "enum": ["easy", "moderate", "difficult"]},
                "resource_cost": {"type": "number"},
                "has_complete_information": {"type": "boolean"},
                "dependencies": {"type": "array", "items": {"type": "string"}},
                "features": {"type": "object"},
                "plan": {"type": "string"},
                "rationale": {"type": "string"},
                "alternatives": {"type": "array", "items": {"type": "string"}}}),
                &["decision_type", "scope", "affects_multiple_departments", "is_foundational", "reversibility", "resource_cost", "has_complete_information", "plan"]),
            "then": {"type": "array", "description": "what to do when the decision goes ahead",
                     "items": obj(json!({"tool": {"type": "string", "enum": ["send_message", "reply", "case_event"]}, "args": {"type": "object"}}), &["tool", "args"])}}),
            &["proposal"])),
        ("case_event", "Record an event in the current case's log.",
         obj(json!({"event": {"type": "string"}, "fields": {"type": "object"}}), &["event"])),
        ("escalate", "Hand a problem you cannot solve up to the orchestrator.",
         obj(json!({"reason": {"type": "string"}, "context": {"type": "object"}}), &["reason"])),
        ("finish", "End your work on this message.",
         obj(json!({"summary": {"type": "string"}}), &["summary"])),
    ]
}

/// The result of one tool call. Its action, if any, is [`rebuild`] of the
/// recorded call: the log, not this run, is what the actions come from.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: String,
    pub ok: bool,
}

/// Runs a tool call: file tools touch the workspace, the others only
/// produce their action.
pub fn execute(call: &ToolCall, folder: &Path, reply_to: &ReplyTo) -> Outcome {
    let done = |r: Result<String, String>| match r {
        Ok(result) => Outcome { result, ok: true },
        Err(result) => Outcome { result, ok: false },
    };
    let ws = folder.join("workspace");
    match call.name.as_str() {
        "read_file" => done(str_arg(&call.args, "path").and_then(|p| {
            let text = workspace::read(&ws, p)?;
            Ok(truncate(&text, READ_LIMIT))
        })),
        "write_file" => done(str_arg(&call.args, "path").and_then(|p| {
            let content = str_arg(&call.args, "content")?;
            workspace::write(&ws, p, content)?;
            Ok(format!("wrote {} bytes to {p}", content.len()))
        })),
        _ => match action_for(&call.name, &call.args, reply_to) {
            Ok((_, result)) => Outcome { result, ok: true },
            Err(result) => Outcome { result, ok: false },
        },
    }
}

/// The action a recorded successful call stands for (`None` for file tools).
pub fn rebuild(name: &str, args: &Value, reply_to: &ReplyTo) -> Option<Action> {
    action_for(name, args, reply_to).ok().and_then(|(a, _)| a)
}

fn action_for(
    name: &str,
    args: &Value,
    reply_to: &ReplyTo,
) -> Result<(Option<Action>, String), String> {
    let action = match name {
        "send_message" => {
            let to: Party = str_arg(args, "to")?.parse().map_err(|_| {
                "`to` must be an agent id, role:<role>, supervisor or orchestrator".to_string()
            })?;
            let kind = str_arg(args, "type").unwrap_or("message").to_string();
            if !society_core::envelope::valid_type(&kind) {
                return Err(format!(
                    "invalid message type {kind:?}: use [a-z0-9_.-], at most 64"
                ));
            }
            let needs = needs_arg(args)?;
            let result = format!("sent a {kind} message to {to}");
            (
                Action::Send {
                    to,
                    kind,
                    body: body_arg(args, "body"),
                    case: None,
                    reply_to: None,
                    needs,
                },
                result,
            )
        }
        "reply" => {
            let body = body_arg(args, "body");
            match reply_to {
                ReplyTo::Sender => (
                    Action::Reply {
                        kind: society_core::kinds::message::REPLY.into(),
                        body,
                    },
                    "reply sent".into(),
                ),
                ReplyTo::Parked { id, to, case } => (
                    Action::Send {
                        to: to.clone(),
                        kind: society_core::kinds::message::REPLY.into(),
                        body,
                        case: case.clone(),
                        reply_to: Some(*id),
                        needs: Vec::new(),
                    },
                    format!("reply sent to {to}"),
                ),
            }
        }
        "request_approval" => (
            Action::RequestApproval {
                plan: str_arg(args, "plan")?.to_string(),
                rationale: str_arg(args, "rationale").unwrap_or("").to_string(),
                alternatives: args
                    .get("alternatives")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "approval requested: you continue when the orchestrator answers".into(),
        ),
        "decide" => {
            let proposal = match args.get("proposal") {
                Some(Value::Object(p)) => Value::Object(p.clone()),
                _ => return Err("missing object argument `proposal`".into()),
            };
            let mut then = Vec::new();
            for (i, step) in args
                .get("then")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let tool = step.get("tool").and_then(Value::as_str).unwrap_or("");
                if !matches!(tool, "send_message" | "reply" | "case_event") {
                    return Err(format!(
                        "then[{i}]: tool {tool:?} is not allowed (send_message, reply or case_event)"
                    ));
                }
                let step_args = step.get("args").cloned().unwrap_or(json!({}));
                match action_for(tool, &step_args, reply_to) {
                    Ok((Some(a), _)) => then.push(a),
                    Ok((None, _)) => {}
                    Err(e) => return Err(format!("then[{i}]: {e}")),
                }
            }
            (
                Action::Decide { proposal, then },
                "decision proposed: the runtime assesses it; you continue if the orchestrator asks for a revision".into(),
            )
        }
        "case_event" => {
            let event = str_arg(args, "event")?.to_string();
            if !society_core::envelope::valid_type(&event) {
                return Err(format!(
                    "invalid event name {event:?}: use [a-z0-9_.-], at most 64"
                ));
            }
            let fields = args
                .get("fields")
                .filter(|f| f.is_object())
                .cloned()
                .unwrap_or(json!({}));
            (
                Action::CaseEvent { event, fields },
                "case event recorded".into(),
            )
        }
        "escalate" => (
            Action::Escalate {
                reason: str_arg(args, "reason")?.to_string(),
                context: args.get("context").cloned().unwrap_or(json!({})),
            },
            "escalated to the orchestrator".into(),
        ),
        "finish" => (
            Action::Log {
                message: format!("finish: {}", str_arg(args, "summary").unwrap_or("")),
            },
            "finished".into(),
        ),
        "read_file" | "write_file" => return Ok((None, String::new())),
        other => return Err(format!("unknown tool {other:?}")),
    };
    Ok((Some(action.0), action.1))
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string argument `{key}`"))
}

/// A body is an object; a bare string or other value is wrapped as `{"text": ..}`.
/// `needs`: capability names a `role:<r>` recipient must have.
fn needs_arg(args: &Value) -> Result<Vec<String>, String> {
    let needs: Vec<String> = match args.get("needs") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| "`needs` must be a list of capability names".to_string())?,
    };
    society_core::envelope::check_needs(&needs)?;
    Ok(needs)
}

fn body_arg(args: &Value, key: &str) -> Value {
    match args.get(key) {
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(Value::String(s)) => json!({ "text": s }),
        Some(Value::Null) | None => json!({}),
        Some(other) => json!({ "text": other.to_string() }),
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            args,
        }
    }

    #[test]
    fn message_tools_map_to_actions_and_rebuild_identically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = call(
            "send_message",
            json!({"to": "critic", "type": "draft", "body": "text"}),
        );
        let out = execute(&c, dir.path(), &ReplyTo::Sender);
        assert!(out.ok);
        let expected = Action::Send {
            to: "critic".parse().expect("party"),
            kind: "draft".into(),
            body: json!({"text": "text"}),
            case: None,
            reply_to: None,
            needs: Vec::new(),
        };
        assert_eq!(rebuild(&c.name, &c.args, &ReplyTo::Sender), Some(expected));
        let id = MsgId::generate();
        let parked = ReplyTo::Parked {
            id,
            to: Party::Orchestrator,
            case: None,
        };
        let reply = rebuild("reply", &json!({"body": {"text": "hi"}}), &parked);
        assert!(matches!(
            reply,
            Some(Action::Send {
                to: Party::Orchestrator,
                reply_to: Some(r),
                ..
            }) if r == id
        ));
        for bad in [
            call(
                "send_message",
                json!({"to": "../x", "type": "t", "body": {}}),
            ),
            call(
                "send_message",
                json!({"to": "x", "type": "Bad Type", "body": {}}),
            ),
            call("case_event", json!({})),
            call("nope", json!({})),
        ] {
            let out = execute(&bad, dir.path(), &ReplyTo::Sender);
            assert!(!out.ok, "{bad:?}");
            assert_eq!(rebuild(&bad.name, &bad.args, &ReplyTo::Sender), None);
        }
    }

    #[test]
    fn built_in_names_are_the_definitions_and_extras_follow_them() {
        let extra = Definition {
            name: "word_count".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        };
        let all = definitions(std::slice::from_ref(&extra));
        let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        let offered: Vec<&str> = BUILT_IN
            .iter()
            .copied()
            .filter(|n| *n != "decide")
            .collect();
        assert_eq!(names[..8], offered[..]);
        assert_eq!(all[8], extra);
        assert_eq!(decide_definition().name, "decide");
    }

    #[test]
    fn truncate_cuts_at_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h… [5 more bytes]");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
