//! OpenAI-compatible chat completions: `POST {base_url}/v1/chat/completions`
//! with `Authorization: Bearer <key>`; tools as functions; the model's
//! `tool_calls` answered by `tool` role messages; usage in
//! `usage.prompt_tokens` / `usage.completion_tokens`. The answer's token
//! limit goes under `max_tokens` or, for OpenAI's reasoning models, under
//! `max_completion_tokens` (they refuse the former); `finish_reason:
//! "length"` marks an answer cut at that limit.

use super::config::{MaxTokensField, ReasoningEffort};
use super::conversation::{ModelReply, ToolCall, Turn, Usage};
use super::tools;
use serde_json::{json, Value};

pub struct Request<'a> {
    pub model: &'a str,
    pub system: &'a str,
    /// Every tool offered ([`tools::definitions`]).
    pub tools: &'a [tools::Definition],
    pub turns: &'a [Turn],
    pub max_tokens: u64,
    /// OpenAI only (Anthropic has one name).
    pub max_tokens_field: MaxTokensField,
    pub temperature: Option<f64>,
    /// OpenAI only.
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Anthropic only.
    pub thinking_budget: Option<u64>,
}

pub fn body(r: &Request<'_>) -> Value {
    let mut messages = vec![json!({"role": "system", "content": r.system})];
    for turn in r.turns {
        messages.push(match turn {
            Turn::User { text, .. } => json!({"role": "user", "content": text}),
            Turn::Assistant { text, calls, .. } => {
                let mut m = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    m["tool_calls"] = calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": c.args.to_string()}})
                        })
                        .collect();
                }
                m
            }
            Turn::Tool { call, result, .. } => {
                json!({"role": "tool", "tool_call_id": call, "content": result})
            }
            Turn::Summary { text, .. } => {
                json!({"role": "user", "content": super::compact::framed(text)})
            }
        });
    }
    let tools: Vec<Value> = r
        .tools
        .iter()
        .map(|d| {
            json!({"type": "function", "function": {"name": d.name, "description": d.description, "parameters": d.parameters}})
        })
        .collect();
    let mut body = json!({"model": r.model, "messages": messages, "tools": tools});
    body[r.max_tokens_field.key()] = json!(r.max_tokens);
    if let Some(t) = r.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(e) = r.reasoning_effort {
        body["reasoning_effort"] = json!(e.name());
    }
    body
}

/// Asks for the answer as server-sent events, the last chunk carrying the
/// usage (without `include_usage` a stream reports none).
pub fn streaming(body: &mut Value) {
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
}

/// Reads an answer. `step` makes ids for tool calls that come without one
/// (some local servers omit them), so they stay stable in the log.
pub fn parse(v: &Value, step: u32) -> Result<ModelReply, String> {
    let stop_reason = v
        .pointer("/choices/0/finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = v
        .pointer("/choices/0/message")
        .filter(|m| m.is_object())
        .ok_or("no choices[0].message in the answer")?;
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let mut calls = Vec::new();
    if let Some(list) = message.get("tool_calls").filter(|l| !l.is_null()) {
        let list = list.as_array().ok_or("tool_calls is not a list")?;
        for (i, c) in list.iter().enumerate() {
            let name = c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or("a tool call has no function.name")?;
            let args = match c.pointer("/function/arguments") {
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => serde_json::from_str(s)
                    .unwrap_or_else(|_| json!({ "invalid_json_arguments": s })),
                Some(other) => other.clone(),
                None => json!({}),
            };
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("call_{step}_{i}"), str::to_string);
            calls.push(ToolCall {
                id,
                name: name.to_string(),
                args,
            });
        }
    }
    let usage = Usage {
        input: v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Ok(ModelReply {
        text,
        calls,
        usage,
        thinking: Vec::new(),
        truncated: stop_reason.as_deref() == Some("length"),
        stop_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use society_core::MsgId;

    #[test]
    fn body_carries_history_tools_and_limits() {
        let m = MsgId::generate();
        let call = ToolCall {
            id: "c1".into(),
            name: "read_file".into(),
            args: json!({"path": "a"}),
        };
        let turns = vec![
            Turn::User {
                msg: m,
                text: "hi".into(),
            },
            Turn::Assistant {
                msg: m,
                step: 1,
                text: None,
                calls: vec![call],
                usage: Usage::default(),
                thinking: vec![],
            },
            Turn::Tool {
                msg: m,
                step: 1,
                call: "c1".into(),
                name: "read_file".into(),
                args: json!({}),
                result: "x".into(),
                ok: true,
            },
        ];
        let b = body(&Request {
            model: "m",
            system: "sys",
            tools: &tools::definitions(&[]),
            turns: &turns,
            max_tokens: 50,
            max_tokens_field: MaxTokensField::MaxTokens,
            temperature: Some(0.2),
            reasoning_effort: None,
            thinking_budget: None,
        });
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"path\":\"a\"}"
        );
        assert_eq!(
            b["messages"][3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "x"})
        );
        assert_eq!(b["max_tokens"], 50);
        assert_eq!(b.get("max_completion_tokens"), None);
        assert_eq!(b.get("reasoning_effort"), None);
        assert_eq!(b["tools"].as_array().map(Vec::len), Some(8));
        let b = body(&Request {
            model: "o3",
            system: "sys",
            tools: &tools::definitions(&[]),
            turns: &turns,
            max_tokens: 60,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            temperature: None,
            reasoning_effort: Some(ReasoningEffort::High),
            thinking_budget: None,
        });
        assert_eq!(b["max_completion_tokens"], 60);
        assert_eq!(b.get("max_tokens"), None);
        assert_eq!(b["reasoning_effort"], "high");
    }

    #[test]
    fn parses_text_tool_calls_and_usage() {
        let v = json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "x", "type": "function", "function": {"name": "reply", "arguments": "{\"body\":{}}"}},
            {"type": "function", "function": {"name": "finish", "arguments": ""}}]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}});
        let r = parse(&v, 2).expect("parse");
        assert_eq!(r.text, None);
        assert_eq!(r.calls[0].args, json!({"body": {}}));
        assert_eq!(r.calls[1].id, "call_2_1");
        assert_eq!(
            r.usage,
            Usage {
                input: 7,
                output: 3
            }
        );
        assert!(!r.truncated);
        assert!(parse(&json!({"choices": []}), 1).is_err());
        let cut =
            json!({"choices": [{"message": {"content": "The ans"}, "finish_reason": "length"}]});
        let r = parse(&cut, 1).expect("parse");
        assert!(r.truncated);
        assert_eq!(r.stop_reason.as_deref(), Some("length"));
    }
}
