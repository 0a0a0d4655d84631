//! Provider plumbing on top of the request body [`super::openai::body`] /
//! [`super::anthropic::body`] build: sampling and tool-choice keys, structured
//! output, and Anthropic prompt caching. Each key is translated to the
//! provider's own spelling here, so the body builders stay about the
//! conversation.

use super::config::{FormatMode, LlmConfig, Provider, ToolChoice};
use serde_json::{json, Value};

/// The tool an Anthropic model answers through when `response_format` is
/// set (Anthropic has no JSON-schema answer mode): its arguments are the answer.
pub const STRUCTURED_TOOL: &str = "final_answer";

/// Adds what the config asks for to a built request body.
pub fn apply(cfg: &LlmConfig, body: &mut Value) {
    let openai = cfg.provider == Provider::Openai;
    if let Some(p) = cfg.top_p {
        body["top_p"] = json!(p);
    }
    if !cfg.stop.is_empty() {
        body[if openai { "stop" } else { "stop_sequences" }] = json!(cfg.stop);
    }
    if let Some(seed) = cfg.seed {
        body["seed"] = json!(seed);
    }
    if let Some(format) = &cfg.response_format {
        if openai {
            body["response_format"] = match format.mode {
                FormatMode::JsonSchema => json!({"type": "json_schema", "json_schema": {
                    "name": format.name, "schema": format.schema, "strict": format.strict}}),
                FormatMode::JsonObject => json!({"type": "json_object", "schema": format.schema}),
            };
        } else if let Some(tools) = body["tools"].as_array_mut() {
            tools.push(json!({"name": STRUCTURED_TOOL,
                "description": "Give your final answer to the message with this tool: its input is the answer, in the required JSON shape. It ends the message.",
                "input_schema": format.schema}));
        }
    }
    let choice = cfg.tool_choice.clone().or_else(|| {
        // An Anthropic model must answer through the structured tool, not in text.
        (!openai && cfg.response_format.is_some()).then_some(ToolChoice::Required)
    });
    match (openai, choice) {
        (_, None) => {}
        (true, Some(c)) => {
            body["tool_choice"] = match c {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::Required => json!("required"),
                ToolChoice::None => json!("none"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            }
        }
        (false, Some(c)) => {
            body["tool_choice"] = match c {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            }
        }
    }
    if let Some(parallel) = cfg.parallel_tool_calls {
        if openai {
            body["parallel_tool_calls"] = json!(parallel);
        } else if !parallel {
            if body.get("tool_choice").is_none() {
                body["tool_choice"] = json!({"type": "auto"});
            }
            body["tool_choice"]["disable_parallel_tool_use"] = json!(true);
        }
    }
    if !openai && cfg.prompt_cache {
        cache_prefix(body);
    }
}

/// Anthropic prompt caching: breakpoints (`cache_control: ephemeral`) on
/// the system prompt, the last tool definition, and the last block of the
/// history before the newest message — the prefix every later request of
/// the conversation repeats. At most 4 breakpoints are allowed; this sets 3.
fn cache_prefix(body: &mut Value) {
    let mark = json!({"type": "ephemeral"});
    if let Some(system) = body["system"].as_str().map(str::to_string) {
        body["system"] = json!([{"type": "text", "text": system, "cache_control": mark}]);
    }
    if let Some(last) = body["tools"].as_array_mut().and_then(|t| t.last_mut()) {
        last["cache_control"] = mark.clone();
    }
    let Some(messages) = body["messages"].as_array_mut() else {
        return;
    };
    // The newest message changes on the next request (a tool result is
    // added to it, or a new one follows): the breakpoint goes before it.
    let n = messages.len();
    if n >= 2 {
        if let Some(block) = messages[n - 2]["content"]
            .as_array_mut()
            .and_then(|c| c.last_mut())
        {
            block["cache_control"] = mark;
        }
    }
}

/// Prompt tokens read from and written to the provider's cache, from the
/// answer's `usage`: OpenAI counts cached tokens inside `prompt_tokens`
/// (`prompt_tokens_details.cached_tokens`), Anthropic outside `input_tokens`
/// (`cache_read_input_tokens`, `cache_creation_input_tokens`).
pub fn cache_tokens(provider: Provider, answer: &Value) -> Cache {
    let n = |p: &str| answer.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    match provider {
        Provider::Openai => Cache {
            read: n("/usage/prompt_tokens_details/cached_tokens"),
            written: 0,
            outside_input: false,
        },
        Provider::Anthropic => Cache {
            read: n("/usage/cache_read_input_tokens"),
            written: n("/usage/cache_creation_input_tokens"),
            outside_input: true,
        },
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cache {
    pub read: u64,
    pub written: u64,
    /// The provider's input count leaves these out (add them to get every
    /// prompt token).
    pub outside_input: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(provider: &str, extra: Value) -> LlmConfig {
        let mut v = json!({"kind": "llm", "provider": provider, "model": "m"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        LlmConfig::parse(&v).expect("valid")
    }

    #[test]
    fn sampling_and_tool_keys_in_each_providers_spelling() {
        let extra = json!({"top_p": 0.5, "stop": ["END"], "seed": 7, "tool_choice": "required",
            "parallel_tool_calls": false});
        let mut b = json!({"tools": []});
        apply(&cfg("openai", extra.clone()), &mut b);
        assert_eq!(
            b,
            json!({"tools": [], "top_p": 0.5, "stop": ["END"], "seed": 7,
            "tool_choice": "required", "parallel_tool_calls": false})
        );
        let mut extra = extra;
        extra.as_object_mut().expect("object").remove("seed");
        let mut b = json!({"tools": [], "system": "s", "messages": []});
        apply(&cfg("anthropic", extra), &mut b);
        assert_eq!(b["stop_sequences"], json!(["END"]));
        assert_eq!(
            b["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(b["system"], "s", "no caching unless asked");
        let mut b = json!({});
        apply(&cfg("openai", json!({"tool_choice": "write_file"})), &mut b);
        assert_eq!(
            b["tool_choice"],
            json!({"type": "function", "function": {"name": "write_file"}})
        );
    }

    #[test]
    fn structured_output_and_cache_breakpoints() {
        let format = json!({"response_format": {"name": "verdict", "schema":
            {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}});
        let mut b = json!({"tools": []});
        apply(&cfg("openai", format.clone()), &mut b);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "verdict");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        let mut object = format.clone();
        object["response_format"]["mode"] = json!("json_object");
        let mut b = json!({"tools": []});
        apply(&cfg("openai", object), &mut b);
        assert_eq!(b["response_format"]["type"], "json_object");
        assert_eq!(b["response_format"]["schema"]["required"], json!(["ok"]));
        let mut with_cache = format;
        with_cache["prompt_cache"] = json!(true);
        let mut b = json!({"system": "sys", "tools": [{"name": "reply"}], "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "tool_use"}]},
            {"role": "user", "content": [{"type": "tool_result"}]}]});
        apply(&cfg("anthropic", with_cache), &mut b);
        let tools = b["tools"].as_array().expect("tools");
        assert_eq!(tools[1]["name"], STRUCTURED_TOOL);
        assert_eq!(tools[1]["cache_control"]["type"], "ephemeral");
        assert!(tools[0].get("cache_control").is_none());
        assert_eq!(b["tool_choice"], json!({"type": "any"}));
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(
            b["messages"][1]["content"][1]["cache_control"]["type"],
            "ephemeral"
        );
        assert!(b["messages"][2]["content"][0]
            .get("cache_control")
            .is_none());
    }

    #[test]
    fn cache_tokens_per_provider() {
        let a = json!({"usage": {"input_tokens": 10, "cache_read_input_tokens": 90,
            "cache_creation_input_tokens": 5, "output_tokens": 3}});
        assert_eq!(
            cache_tokens(Provider::Anthropic, &a),
            Cache {
                read: 90,
                written: 5,
                outside_input: true
            }
        );
        let o = json!({"usage": {"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 64}}});
        assert_eq!(cache_tokens(Provider::Openai, &o).read, 64);
        assert_eq!(cache_tokens(Provider::Openai, &json!({})), Cache::default());
    }
}
