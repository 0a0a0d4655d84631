//! An Anthropic Messages stream assembled into the message object the same
//! request without `stream` would have returned: `message_start` gives the
//! message (id, model, `usage.input_tokens`); each `content_block_start`
//! opens a block at its `index` (text, `tool_use` with id and name,
//! `thinking`, `redacted_thinking` whole), which `content_block_delta`s
//! extend (`text_delta`, `input_json_delta` whose `partial_json` pieces are
//! one JSON document at the end, `thinking_delta`, `signature_delta`);
//! `message_delta` brings `stop_reason` and the final `usage.output_tokens`;
//! `message_stop` ends it. `ping` and event types we do not know are skipped
//! (the API may add some); an `error` event fails the call.

use super::sse::Event;
use super::{Broken, Step};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Answer {
    message: Map<String, Value>,
    blocks: BTreeMap<u64, Value>,
    /// `input_json_delta` pieces of `tool_use` blocks, by index.
    json: BTreeMap<u64, String>,
    usage: Map<String, Value>,
}

/// What ends the stream.
pub const TERMINAL: &str = "event: message_stop";

impl Answer {
    pub fn event(&mut self, ev: &Event) -> Result<Step, Broken> {
        let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
            Broken::Malformed(format!(
                "the data of a {:?} event is not JSON ({e})",
                ev.name
            ))
        })?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(&ev.name);
        let index = || v.get("index").and_then(Value::as_u64);
        match kind {
            "message_start" => {
                if let Some(Value::Object(m)) = v.get("message") {
                    self.message = m.clone();
                    self.merge_usage(m.get("usage"));
                }
            }
            "content_block_start" => {
                // Deltas extend the block's fields: it must be an object.
                let block = v.get("content_block").filter(|b| b.is_object());
                let (Some(i), Some(block)) = (index(), block) else {
                    return Err(Broken::Malformed(
                        "a content_block_start without index or content_block object".into(),
                    ));
                };
                self.blocks.insert(i, block.clone());
            }
            "content_block_delta" => {
                let i = index().unwrap_or(0);
                let Some(block) = self.blocks.get_mut(&i) else {
                    return Err(Broken::Malformed(format!(
                        "a content_block_delta for block {i}, which never started"
                    )));
                };
                let delta = &v["delta"];
                let piece = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("");
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => append(block, "text", piece("text")),
                    Some("thinking_delta") => append(block, "thinking", piece("thinking")),
                    Some("signature_delta") => append(block, "signature", piece("signature")),
                    Some("input_json_delta") => self
                        .json
                        .entry(i)
                        .or_default()
                        .push_str(piece("partial_json")),
                    _ => {}
                }
            }
            "message_delta" => {
                for k in ["stop_reason", "stop_sequence"] {
                    if let Some(x) = v.pointer(&format!("/delta/{k}")) {
                        self.message.insert(k.into(), x.clone());
                    }
                }
                self.merge_usage(v.get("usage"));
            }
            "message_stop" => return Ok(Step::Done),
            "error" => {
                let e = &v["error"];
                let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?");
                return Err(Broken::Retry(format!(
                    "the stream carried an error: {}: {}",
                    field("type"),
                    super::super::tools::truncate(field("message"), 300)
                )));
            }
            // content_block_stop, ping, and what a later API version adds.
            _ => {}
        }
        Ok(Step::More)
    }

    fn merge_usage(&mut self, usage: Option<&Value>) {
        if let Some(Value::Object(u)) = usage {
            self.usage.extend(
                u.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
    }

    pub fn answer(self) -> Value {
        let mut message = self.message;
        let mut json = self.json;
        let content: Vec<Value> = self
            .blocks
            .into_iter()
            .map(|(i, mut block)| {
                if block["type"] == "tool_use" {
                    let text = json.remove(&i).unwrap_or_default();
                    if !text.trim().is_empty() {
                        block["input"] = serde_json::from_str(&text)
                            .unwrap_or_else(|_| json!({ "invalid_json_arguments": text }));
                    } else if !block["input"].is_object() {
                        block["input"] = json!({});
                    }
                }
                block
            })
            .collect();
        message.insert("content".into(), Value::Array(content));
        message.insert("usage".into(), Value::Object(self.usage));
        Value::Object(message)
    }
}

fn append(block: &mut Value, key: &str, piece: &str) {
    let now = block.get(key).and_then(Value::as_str).unwrap_or("");
    block[key] = Value::String(format!("{now}{piece}"));
}

#[cfg(test)]
mod tests {
    use super::super::sse::Parser;
    use super::*;
    use crate::llm::anthropic::parse;

    fn events(list: &[Value]) -> String {
        list.iter()
            .map(|v| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or("")))
            .collect()
    }

    #[test]
    fn thinking_text_and_tool_use_assemble_into_the_plain_answer() {
        let sse = events(&[
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCg=="}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "xyz"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Writing "}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "it."}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "write_file", "input": {}}}),
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{\"path\": \"a\", "}}),
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "\"content\": \"b\"}"}}),
            json!({"type": "content_block_stop", "index": 3}),
            json!({"type": "content_block_start", "index": 4, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "finish", "input": {}}}),
            json!({"type": "content_block_stop", "index": 4}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 89}}),
            json!({"type": "message_stop"}),
        ]);
        let mut a = Answer::default();
        let steps: Vec<Step> = Parser::default()
            .feed(sse.as_bytes())
            .iter()
            .map(|e| a.event(e).unwrap_or_else(|_| panic!("{e:?}")))
            .collect();
        assert_eq!(steps.last(), Some(&Step::Done));
        let v = a.answer();
        let r = parse(&v).expect("parses like a plain answer");
        assert_eq!(
            r.thinking,
            vec![
                json!({"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCg=="}),
                json!({"type": "redacted_thinking", "data": "xyz"})
            ]
        );
        assert_eq!(r.text.as_deref(), Some("Writing it."));
        assert_eq!(r.calls[0].args, json!({"path": "a", "content": "b"}));
        assert_eq!(
            (r.calls[1].name.as_str(), &r.calls[1].args),
            ("finish", &json!({}))
        );
        assert_eq!((r.usage.input, r.usage.output), (25, 89));
        assert_eq!(r.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(v["id"], "msg_1");
    }

    #[test]
    fn errors_and_nonsense_are_reported() {
        let mut a = Answer::default();
        let ev = |name: &str, data: Value| Event {
            name: name.into(),
            data: data.to_string(),
        };
        let e = ev(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        assert!(
            matches!(a.event(&e), Err(Broken::Retry(w)) if w.contains("overloaded_error: Overloaded"))
        );
        let e = ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "x"}}),
        );
        assert!(matches!(a.event(&e), Err(Broken::Malformed(w)) if w.contains("block 5")));
        // A block that is not an object: its deltas would have nowhere to go.
        let e = ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": 5}),
        );
        assert!(matches!(a.event(&e), Err(Broken::Malformed(w)) if w.contains("object")));
        let e = ev("future_event", json!({"type": "future_event"}));
        assert!(matches!(a.event(&e), Ok(Step::More)));
    }
}
