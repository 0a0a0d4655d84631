//! The program's stdout: one JSON object per line, each naming an `action`.
//! Strict on purpose — an unknown action or field is an error, not ignored —
//! so a typo fails loudly instead of dropping output. Blank lines are
//! skipped; everything after a `done` line is ignored.

use crate::Action;
use serde::Deserialize;
use serde_json::{json, Value};
use society_core::envelope::valid_type;
use society_core::{CaseId, Envelope, Party};

/// What one line asks for.
pub(crate) enum Op {
    Act(Action),
    /// Performed by the brain itself, inside the workspace.
    Write {
        path: String,
        content: String,
    },
    /// Performed by the brain itself, in the agent's `memory.jsonl`.
    Remember(society_core::memory::Note),
}

/// Why a line was refused (1-based line number).
#[derive(Debug)]
pub(crate) struct LineError {
    pub line: usize,
    pub reason: String,
}

const ACTIONS: &[&str] = &[
    "send",
    "reply",
    "case_event",
    "write_file",
    "remember",
    "request_approval",
    "escalate",
    "log",
    "decide",
    "done",
];

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Wire {
    Send {
        to: Party,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        body: Value,
        #[serde(default)]
        case: Option<CaseId>,
        #[serde(default)]
        needs: Vec<String>,
    },
    Reply {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        body: Value,
    },
    CaseEvent {
        event: String,
        #[serde(default)]
        fields: Option<Value>,
    },
    WriteFile {
        path: String,
        content: String,
    },
    /// `{"action":"remember","text":"…","tags":["…"],"case":"…"}`.
    Remember {
        text: String,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        case: Option<CaseId>,
    },
    RequestApproval {
        plan: String,
        #[serde(default)]
        rationale: String,
        #[serde(default)]
        alternatives: Vec<String>,
    },
    Escalate {
        reason: String,
        #[serde(default)]
        context: Option<Value>,
    },
    Log {
        message: String,
    },
    /// `{"action":"decide","proposal":{…},"then":[{"action":"reply",…},…]}`:
    /// `then` holds send, reply, case_event and log lines.
    Decide {
        proposal: Value,
        #[serde(default)]
        then: Vec<Value>,
    },
    Done,
}

/// Parses a whole stdout; `inbound` supplies defaults (a `send`'s type).
pub(crate) fn parse(stdout: &[u8], inbound: &Envelope) -> Result<Vec<Op>, LineError> {
    let mut ops = Vec::new();
    for (index, raw) in stdout.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let fail = |reason: String| LineError { line, reason };
        let text = std::str::from_utf8(raw)
            .map_err(|_| fail("not UTF-8".into()))?
            .trim();
        if text.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| fail(format!("not JSON ({e}): {}", excerpt(text))))?;
        let name = match value.get("action") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(fail("\"action\" must be a string".into())),
            None if value.is_object() => {
                return Err(fail(format!("no \"action\" field: {}", excerpt(text))))
            }
            None => return Err(fail(format!("not a JSON object: {}", excerpt(text)))),
        };
        if !ACTIONS.contains(&name.as_str()) {
            return Err(fail(format!(
                "unknown action {name:?} (expected one of: {})",
                ACTIONS.join(", ")
            )));
        }
        let wire: Wire = serde_json::from_value(value)
            .map_err(|e| fail(format!("invalid {name} action: {e}")))?;
        match to_op(wire, inbound).map_err(|e| fail(format!("invalid {name} action: {e}")))? {
            Some(op) => ops.push(op),
            None => break,
        }
    }
    Ok(ops)
}

/// `None` for `done`.
fn to_op(wire: Wire, inbound: &Envelope) -> Result<Option<Op>, String> {
    let action = match wire {
        Wire::Send {
            to,
            kind,
            body,
            case,
            needs,
        } => {
            society_core::envelope::check_needs(&needs)?;
            Action::Send {
                to,
                kind: message_type(kind, &inbound.kind)?,
                body: object("body", body)?,
                case,
                reply_to: None,
                needs,
            }
        }
        Wire::Reply { kind, body } => Action::Reply {
            kind: message_type(kind, society_core::kinds::message::REPLY)?,
            body: object("body", body)?,
        },
        Wire::CaseEvent { event, fields } => {
            if !valid_type(&event) {
                return Err(format!("event {event:?} must match [a-z0-9_.-]{{1,64}}"));
            }
            Action::CaseEvent {
                event,
                fields: object("fields", fields.unwrap_or_else(|| json!({})))?,
            }
        }
        Wire::WriteFile { path, content } => return Ok(Some(Op::Write { path, content })),
        Wire::Remember { text, tags, case } => {
            let note = society_core::memory::Note {
                text,
                tags,
                case: case.or_else(|| inbound.case.clone()),
            };
            society_core::memory::check(&note).map_err(|e| e.to_string())?;
            return Ok(Some(Op::Remember(note)));
        }
        Wire::RequestApproval {
            plan,
            rationale,
            alternatives,
        } => Action::RequestApproval {
            plan,
            rationale,
            alternatives,
        },
        Wire::Escalate { reason, context } => Action::Escalate {
            reason,
            context: context.unwrap_or_else(|| json!({})),
        },
        Wire::Log { message } => Action::Log { message },
        Wire::Decide { proposal, then } => {
            let proposal = object("proposal", proposal)?;
            let mut steps = Vec::new();
            for (i, step) in then.into_iter().enumerate() {
                let name = step.get("action").and_then(Value::as_str).unwrap_or("");
                if !matches!(name, "send" | "reply" | "case_event" | "log") {
                    return Err(format!(
                        "then[{i}]: action {name:?} is not allowed (send, reply, case_event or log)"
                    ));
                }
                let wire: Wire =
                    serde_json::from_value(step).map_err(|e| format!("then[{i}]: {e}"))?;
                match to_op(wire, inbound).map_err(|e| format!("then[{i}]: {e}"))? {
                    Some(Op::Act(a)) => steps.push(a),
                    _ => return Err(format!("then[{i}]: not an output")),
                }
            }
            Action::Decide {
                proposal,
                then: steps,
            }
        }
        Wire::Done => return Ok(None),
    };
    Ok(Some(Op::Act(action)))
}

fn message_type(given: Option<String>, default: &str) -> Result<String, String> {
    match given {
        None => Ok(default.to_string()),
        Some(t) if valid_type(&t) => Ok(t),
        Some(t) => Err(format!("type {t:?} must match [a-z0-9_.-]{{1,64}}")),
    }
}

fn object(field: &str, v: Value) -> Result<Value, String> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(format!("{field} must be a JSON object, not {v}"))
    }
}

/// The first 200 characters of a line, for error messages.
fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inbound() -> Envelope {
        Envelope::new(Party::Orchestrator, Party::Supervisor, "task", json!({}))
    }

    fn err(out: &str) -> LineError {
        parse(out.as_bytes(), &inbound()).err().unwrap()
    }

    #[test]
    fn every_action_parses_and_done_ends_the_output() {
        let out = r##"
{"action":"send","to":"role:review","body":{"a":1},"case":"c-1"}
{"action":"reply","body":{"text":"hi"}}
{"action":"case_event","event":"drafted","fields":{"n":2}}
{"action":"write_file","path":"output/x.md","content":"# x"}
{"action":"remember","text":"tides turn","tags":["sea"]}
{"action":"request_approval","plan":"p","alternatives":["q"]}
{"action":"escalate","reason":"stuck"}
{"action":"log","message":"m"}
{"action":"done"}
this is ignored
"##;
        let ops = parse(out.as_bytes(), &inbound()).unwrap();
        assert_eq!(ops.len(), 8);
        let Op::Act(Action::Send { kind, case, .. }) = &ops[0] else {
            panic!("send first")
        };
        assert_eq!(kind, "task", "a send inherits the inbound type");
        assert_eq!(case.as_ref().map(CaseId::as_str), Some("c-1"));
        let Op::Act(Action::Reply { kind, .. }) = &ops[1] else {
            panic!("reply second")
        };
        assert_eq!(kind, "reply");
        assert!(matches!(&ops[3], Op::Write { path, .. } if path == "output/x.md"));
        assert!(matches!(&ops[4], Op::Remember(n) if n.text == "tides turn" && n.tags == ["sea"]));
    }

    #[test]
    fn bad_lines_name_their_line_and_reason() {
        let e = err("{\"action\":\"log\",\"message\":\"ok\"}\nnot json\n");
        assert_eq!(e.line, 2);
        assert!(e.reason.starts_with("not JSON"), "{}", e.reason);
        let e = err(r#"{"action":"launch"}"#);
        assert!(
            e.reason.contains("unknown action \"launch\""),
            "{}",
            e.reason
        );
        let e = err(r#"{"action":"reply","bdy":{}}"#);
        assert!(e.reason.contains("unknown field `bdy`"), "{}", e.reason);
        let e = err(r#"{"action":"reply","body":"text"}"#);
        assert!(
            e.reason.contains("body must be a JSON object"),
            "{}",
            e.reason
        );
        let e = err(r#"{"action":"send","to":"../x","body":{}}"#);
        assert!(e.reason.starts_with("invalid send action"), "{}", e.reason);
        let big = "x".repeat(society_core::memory::MAX_TEXT + 1);
        let e = err(&format!(r#"{{"action":"remember","text":"{big}"}}"#));
        assert!(
            e.reason
                .contains("over the limit of 16384 bytes per memory"),
            "{}",
            e.reason
        );
        let e = err(r#"[1]"#);
        assert!(e.reason.starts_with("not a JSON object"), "{}", e.reason);
        let e = err(r#"{"text":"hi"}"#);
        assert!(e.reason.starts_with("no \"action\" field"), "{}", e.reason);
    }
}
