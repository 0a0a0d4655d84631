//! Anthropic Messages: `POST {base_url}/v1/messages` with `x-api-key` and
//! `anthropic-version`; the system prompt is a top-level field; tools carry
//! an `input_schema`; the model's `tool_use` blocks are answered by
//! `tool_result` blocks in the next user message; usage in
//! `usage.input_tokens` / `usage.output_tokens`. With `thinking_budget`,
//! requests ask for extended thinking, and the `thinking` /
//! `redacted_thinking` blocks of every answer go back verbatim, first in
//! their assistant message, as the API requires. `stop_reason:
//! "max_tokens"` marks an answer cut at the limit.

use super::conversation::{ModelReply, ToolCall, Turn, Usage};
use super::openai::Request;
use serde_json::{json, Value};

pub fn body(r: &Request<'_>) -> Value {
    // Roles must alternate and start with the user: consecutive blocks of
    // one role are merged into one message.
    let mut messages: Vec<(&str, Vec<Value>)> = Vec::new();
    for turn in r.turns {
        let (role, block) = match turn {
            Turn::User { text, .. } => ("user", vec![json!({"type": "text", "text": text})]),
            Turn::Assistant {
                text,
                calls,
                thinking,
                ..
            } => {
                let mut blocks: Vec<Value> = thinking.clone();
                blocks.extend(
                    text.iter()
                        .filter(|t| !t.is_empty())
                        .map(|t| json!({"type": "text", "text": t})),
                );
                blocks.extend(calls.iter().map(
                    |c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.args}),
                ));
                if blocks.is_empty() {
                    blocks.push(json!({"type": "text", "text": "(no answer)"}));
                }
                ("assistant", blocks)
            }
            Turn::Tool {
                call, result, ok, ..
            } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": call, "content": result, "is_error": !ok}),
                ],
            ),
            Turn::Summary { text, .. } => (
                "user",
                vec![json!({"type": "text", "text": super::compact::framed(text)})],
            ),
        };
        match messages.last_mut() {
            Some((last, blocks)) if *last == role => blocks.extend(block),
            _ => messages.push((role, block)),
        }
    }
    let tools: Vec<Value> = r
        .tools
        .iter()
        .map(
            |d| json!({"name": d.name, "description": d.description, "input_schema": d.parameters}),
        )
        .collect();
    let mut body = json!({
        "model": r.model,
        "system": r.system,
        "max_tokens": r.max_tokens,
        "messages": messages.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect::<Vec<_>>(),
        "tools": tools,
    });
    if let Some(t) = r.temperature {
        body["temperature"] = json!(t);
    }
    // The budget must stay below max_tokens, which a spending budget may
    // have lowered: thinking gets what is left, and is left out when that
    // is under the API's minimum.
    if let Some(budget) = r.thinking_budget {
        let budget = budget.min(r.max_tokens.saturating_sub(1));
        if budget >= MIN_THINKING_BUDGET {
            body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
        }
    }
    body
}

/// Asks for the answer as server-sent events (usage comes in
/// `message_start` and `message_delta`).
pub fn streaming(body: &mut Value) {
    body["stream"] = json!(true);
}

/// Anthropic's smallest `budget_tokens`.
pub const MIN_THINKING_BUDGET: u64 = 1024;

pub fn parse(v: &Value) -> Result<ModelReply, String> {
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no content list in the answer")?;
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("thinking" | "redacted_thinking") => thinking.push(block.clone()),
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    texts.push(t.to_string());
                }
            }
            Some("tool_use") => {
                let field = |k: &str| {
                    block
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or(format!("a tool_use block has no {k}"))
                };
                calls.push(ToolCall {
                    id: field("id")?,
                    name: field("name")?,
                    args: block.get("input").cloned().unwrap_or(json!({})),
                });
            }
            _ => {}
        }
    }
    let text = Some(texts.join("\n")).filter(|t| !t.is_empty());
    let usage = Usage {
        input: v
            .pointer("/usage/input_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: v
            .pointer("/usage/output_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    let stop_reason = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ModelReply {
        text,
        calls,
        usage,
        thinking,
        truncated: stop_reason.as_deref() == Some("max_tokens"),
        stop_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::config::MaxTokensField;
    use crate::llm::tools;
    use society_core::MsgId;

    #[test]
    fn body_merges_roles_and_answers_tool_use_with_tool_results() {
        let (m1, m2) = (MsgId::generate(), MsgId::generate());
        let call = ToolCall {
            id: "t1".into(),
            name: "finish".into(),
            args: json!({"summary": "s"}),
        };
        let turns = vec![
            Turn::User {
                msg: m1,
                text: "one".into(),
            },
            Turn::Assistant {
                msg: m1,
                step: 1,
                text: Some("ok".into()),
                calls: vec![call],
                usage: Usage::default(),
                thinking: vec![json!({"type": "redacted_thinking", "data": "abc"})],
            },
            Turn::Tool {
                msg: m1,
                step: 1,
                call: "t1".into(),
                name: "finish".into(),
                args: json!({}),
                result: "finished".into(),
                ok: true,
            },
            Turn::User {
                msg: m2,
                text: "two".into(),
            },
        ];
        let b = body(&Request {
            model: "claude",
            system: "sys",
            tools: &tools::definitions(&[]),
            turns: &turns,
            max_tokens: 9,
            max_tokens_field: MaxTokensField::MaxTokens,
            temperature: None,
            reasoning_effort: None,
            thinking_budget: None,
        });
        assert_eq!(b["system"], "sys");
        let msgs = b["messages"].as_array().expect("messages");
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert_eq!(
            msgs[1]["content"][0],
            json!({"type": "redacted_thinking", "data": "abc"}),
            "thinking first, verbatim"
        );
        assert_eq!(msgs[1]["content"][1]["text"], "ok");
        assert_eq!(msgs[1]["content"][2]["type"], "tool_use");
        assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
        assert_eq!(msgs[2]["content"][1]["text"], "two");
        assert!(b["tools"][0]["input_schema"].is_object());
        assert_eq!(b.get("thinking"), None);
        let thinking = |max_tokens, budget| {
            body(&Request {
                model: "claude",
                system: "sys",
                tools: &tools::definitions(&[]),
                turns: &turns,
                max_tokens,
                max_tokens_field: MaxTokensField::MaxTokens,
                temperature: None,
                reasoning_effort: None,
                thinking_budget: Some(budget),
            })
            .get("thinking")
            .cloned()
        };
        assert_eq!(
            thinking(8000, 2000),
            Some(json!({"type": "enabled", "budget_tokens": 2000}))
        );
        assert_eq!(
            thinking(1500, 2000),
            Some(json!({"type": "enabled", "budget_tokens": 1499})),
            "a budget-lowered max_tokens lowers the thinking budget"
        );
        assert_eq!(thinking(1024, 2000), None, "too little left to think");
    }

    #[test]
    fn parses_blocks_and_usage() {
        let v = json!({"content": [{"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "t", "name": "reply", "input": {"body": {"text": "x"}}}],
            "usage": {"input_tokens": 5, "output_tokens": 2}});
        let r = parse(&v).expect("parse");
        assert_eq!(r.text.as_deref(), Some("hi"));
        assert_eq!(r.calls[0].name, "reply");
        assert_eq!(
            r.usage,
            Usage {
                input: 5,
                output: 2
            }
        );
        assert!(!r.truncated);
        assert!(parse(&json!({"type": "message"})).is_err());
        let signed = json!({"type": "thinking", "thinking": "hmm", "signature": "sig=="});
        let v = json!({"content": [signed, {"type": "text", "text": "The ans"}],
            "stop_reason": "max_tokens"});
        let r = parse(&v).expect("parse");
        assert_eq!(r.thinking, vec![signed]);
        assert_eq!(r.text.as_deref(), Some("The ans"));
        assert!(r.truncated);
    }
}
