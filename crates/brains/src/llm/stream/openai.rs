//! An OpenAI-compatible stream (`data: {chunk}` lines, then `data: [DONE]`)
//! assembled into the `chat.completion` object the same request without
//! `stream` would have returned: `choices[0].delta.content` fragments
//! concatenated, each `delta.tool_calls[i]` collected by its `index` (id and
//! name from the fragment that carries them, `function.arguments` fragments
//! concatenated), the last `finish_reason`, and the `usage` of the final
//! chunk (`stream_options.include_usage`).

use super::sse::Event;
use super::{Broken, Step};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Answer {
    id: Option<String>,
    model: Option<String>,
    text: String,
    calls: BTreeMap<u64, Call>,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

#[derive(Debug, Default)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// What ends the stream.
pub const TERMINAL: &str = "data: [DONE]";

impl Answer {
    pub fn event(&mut self, ev: &Event) -> Result<Step, Broken> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            return Ok(Step::Done);
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| Broken::Malformed(format!("a stream chunk is not JSON ({e})")))?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let text = err
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_string);
            return Err(Broken::Retry(format!(
                "the stream carried an error: {}",
                super::super::tools::truncate(&text, 300)
            )));
        }
        let text_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        self.id = self.id.take().or_else(|| text_of("id"));
        self.model = self.model.take().or_else(|| text_of("model"));
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let choices = v.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(r.to_string());
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                self.text.push_str(t);
            }
            let calls = delta.get("tool_calls").and_then(Value::as_array);
            for (pos, c) in calls.into_iter().flatten().enumerate() {
                let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
                let call = self.calls.entry(index).or_default();
                if let Some(id) = c
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    call.id = id.to_string();
                }
                let piece = |k: &str| c.pointer(&format!("/function/{k}")).and_then(Value::as_str);
                call.name.push_str(piece("name").unwrap_or(""));
                call.arguments.push_str(piece("arguments").unwrap_or(""));
            }
        }
        Ok(Step::More)
    }

    pub fn answer(self) -> Value {
        let mut message = json!({"role": "assistant",
            "content": Some(self.text).filter(|t| !t.is_empty())});
        if !self.calls.is_empty() {
            message["tool_calls"] = self
                .calls
                .into_values()
                .map(|c| {
                    let mut call = json!({"type": "function",
                        "function": {"name": c.name, "arguments": c.arguments}});
                    if !c.id.is_empty() {
                        call["id"] = json!(c.id);
                    }
                    call
                })
                .collect();
        }
        let mut v = json!({"id": self.id, "object": "chat.completion", "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}]});
        if let Some(u) = self.usage {
            v["usage"] = u;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::sse::Parser;
    use super::*;
    use crate::llm::openai::parse;

    fn assemble(sse: &str) -> (Vec<Step>, Value) {
        let mut a = Answer::default();
        let mut p = Parser::default();
        let steps = p
            .feed(sse.as_bytes())
            .iter()
            .map(|e| a.event(e).unwrap_or_else(|_| panic!("{e:?}")))
            .collect();
        (steps, a.answer())
    }

    #[test]
    fn text_and_split_tool_calls_assemble_into_the_plain_answer() {
        let chunks = [
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "write_file", "arguments": "{\"pa"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "fin", "arguments": ""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "th\":\"a\"}"}}, {"index": 1, "function": {"name": "ish"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}),
        ];
        let mut sse: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        sse.push_str("data: [DONE]\n\n");
        let (steps, v) = assemble(&sse);
        assert_eq!(steps.last(), Some(&Step::Done));
        assert_eq!(steps.iter().filter(|s| **s == Step::Done).count(), 1);
        let r = parse(&v, 1).expect("parses like a plain answer");
        assert_eq!(r.text.as_deref(), Some("Hello"));
        assert_eq!(r.calls.len(), 2);
        assert_eq!(
            (r.calls[0].id.as_str(), r.calls[0].name.as_str()),
            ("call_a", "write_file")
        );
        assert_eq!(r.calls[0].args, json!({"path": "a"}));
        assert_eq!(
            (r.calls[1].name.as_str(), &r.calls[1].args),
            ("finish", &json!({}))
        );
        assert_eq!((r.usage.input, r.usage.output), (11, 4));
        assert_eq!(r.stop_reason.as_deref(), Some("tool_calls"));
        assert!(!r.truncated);
    }

    #[test]
    fn a_cut_answer_stays_cut_and_errors_are_reported() {
        let (_, v) = assemble(
            "data: {\"choices\":[{\"delta\":{\"content\":\"The ans\"},\"finish_reason\":\"length\"}]}\n\n",
        );
        let r = parse(&v, 1).expect("parse");
        assert!(r.truncated);
        assert!(
            !crate::llm::budget::usage_reported(&v),
            "no usage chunk: estimated"
        );
        let mut a = Answer::default();
        let e = Event {
            name: String::new(),
            data: r#"{"error": {"message": "overloaded", "type": "server_error"}}"#.into(),
        };
        assert!(matches!(a.event(&e), Err(Broken::Retry(w)) if w.contains("overloaded")));
        let e = Event {
            name: String::new(),
            data: "{\"choi".into(),
        };
        assert!(matches!(a.event(&e), Err(Broken::Malformed(w)) if w.contains("not JSON")));
    }
}
