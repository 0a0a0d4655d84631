//! Provider plumbing: extra headers (from the environment too), query
//! parameters and a custom path (Azure OpenAI's shape), sampling and
//! tool-choice keys in each provider's spelling, structured output, and
//! Anthropic prompt caching priced from the answer's cache counts.

use super::support::*;
use serde_json::json;
use society_testkit::fake_llm::{openai, FakeLlm, Reply};
use society_testkit::{records, wait_until, Society};
use std::time::Duration;

const VERDICT: &str = r#"response_format = { name = "verdict", schema = { type = "object", properties = { ok = { type = "boolean" } }, required = ["ok"] } }"#;

/// An Azure-style deployment: the key in an `api-key` header read from the
/// environment, `api-version` in the query, the deployment's path; the final
/// answer must be the JSON object `response_format` describes, and a text
/// answer that is not fails the attempt instead of being delivered.
#[test]
fn azure_style_endpoint_headers_sampling_and_structured_output_on_openai() {
    let fake = FakeLlm::start();
    let extra = format!(
        r#", api_key_env = "", headers = {{ "HTTP-Referer" = "https://society.test", "OpenAI-Project" = "proj_1" }}, headers_env = {{ "api-key" = "TEST_LLM_KEY" }}, query = {{ "api-version" = "2024-10-21" }}, path = "/openai/deployments/gpt-4o/chat/completions", top_p = 0.5, stop = ["END"], seed = 7, tool_choice = "auto", parallel_tool_calls = false, {VERDICT}"#
    );
    let mut s = start(&llm_agent(
        "judge",
        &fake,
        "openai",
        &extra,
        "max_attempts = 3",
    ));
    fake.push([
        openai::text("It looks fine to me.", (20, 6)),
        openai::text(r#"{"ok": true}"#, (20, 4)),
    ]);
    let id = s.ok(&["send", "judge", "is 2+2=4?"]);
    let reply = wait_orchestrator(&s, "the structured reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["json"], json!({"ok": true}), "{reply}");
    assert_eq!(reply["body"]["text"], r#"{"ok": true}"#);
    let failed = events(&s, "judge", "message_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("not the JSON object response_format \"verdict\" asks for"),
        "{error}"
    );

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(
        r.path,
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(r.headers.get("api-key").map(String::as_str), Some(KEY));
    assert_eq!(r.headers.get("authorization"), None, "api_key_env = \"\"");
    assert_eq!(r.headers["http-referer"], "https://society.test");
    assert_eq!(r.headers["openai-project"], "proj_1");
    assert_eq!(r.body["top_p"], 0.5);
    assert_eq!(r.body["stop"], json!(["END"]));
    assert_eq!(r.body["seed"], 7);
    assert_eq!(r.body["tool_choice"], "auto");
    assert_eq!(r.body["parallel_tool_calls"], false);
    assert_eq!(r.body["response_format"]["type"], "json_schema");
    assert_eq!(r.body["response_format"]["json_schema"]["name"], "verdict");
    assert_eq!(
        r.body["response_format"]["json_schema"]["schema"]["required"],
        json!(["ok"])
    );
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

/// Anthropic: the structured answer comes through the forced `final_answer`
/// tool; prompt caching puts breakpoints on the system prompt, the tools and
/// the history's stable prefix; cache reads and writes are counted as input
/// and priced at `cached_input` / `cache_write`.
#[test]
fn anthropic_structured_answer_and_prompt_caching_priced_from_cache_counts() {
    let fake = FakeLlm::start();
    let agent = llm_agent(
        "judge",
        &fake,
        "anthropic",
        &format!(r#", prompt_cache = true, stop = ["END"], {VERDICT}"#),
        "",
    )
    .replace("fake-model", "cached-model");
    let toml = format!(
        r#"
[defaults]
idle_exit = "3s"
heartbeat = "200ms"

[prices."cached-model"]
input = 3.0
output = 15.0
cached_input = 0.3
cache_write = 3.75
{agent}"#
    );
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    let answer = |content: serde_json::Value, usage: serde_json::Value| {
        Reply::json(
            200,
            json!({"id": "msg", "type": "message", "role": "assistant", "model": "cached-model",
                "content": content, "stop_reason": "tool_use", "usage": usage}),
        )
    };
    fake.push([
        answer(
            json!([{"type": "tool_use", "id": "t1", "name": "write_file",
                "input": {"path": "notes.md", "content": "checked"}}]),
            json!({"input_tokens": 50, "cache_creation_input_tokens": 2000, "output_tokens": 10}),
        ),
        answer(
            json!([{"type": "text", "text": "Done."},
                {"type": "tool_use", "id": "t2", "name": "final_answer", "input": {"ok": true}}]),
            json!({"input_tokens": 60, "cache_read_input_tokens": 2000, "output_tokens": 8}),
        ),
    ]);
    let id = s.ok(&["send", "judge", "check it"]);
    let reply = wait_orchestrator(&s, "the structured reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["json"], json!({"ok": true}), "{reply}");
    // "Done." beside the final answer is narration: one reply only.
    wait_until(Duration::from_secs(10), "handled", || {
        (!events(&s, "judge", "message_handled").is_empty()).then_some(())
    });
    assert_eq!(orchestrator_from(&s, "judge", "reply").len(), 1);

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let body = &reqs[1].body;
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(body["stop_sequences"], json!(["END"]));
    let tools = body["tools"].as_array().unwrap();
    let last = tools.last().unwrap();
    assert_eq!(last["name"], "final_answer");
    assert_eq!(last["input_schema"]["required"], json!(["ok"]));
    assert_eq!(last["cache_control"], json!({"type": "ephemeral"}));
    assert_eq!(
        body["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    // The breakpoint sits on the last block before the newest message.
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{body}");
    assert_eq!(
        msgs[1]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert!(msgs[2]["content"][0].get("cache_control").is_none());

    let costs: Vec<_> = records(&s.agent("judge").dir.join("costs.jsonl"));
    assert_eq!(costs.len(), 2);
    assert_eq!(costs[0]["input_tokens"], 2050);
    assert_eq!(costs[0]["cache_write_tokens"], 2000);
    assert_eq!(costs[1]["input_tokens"], 2060);
    assert_eq!(costs[1]["cached_input_tokens"], 2000);
    let usd = |r: &serde_json::Value| r["usd"].as_f64().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(
        close(
            usd(&costs[0]),
            (50.0 * 3.0 + 2000.0 * 3.75 + 10.0 * 15.0) / 1e6
        ),
        "{}",
        costs[0]
    );
    assert!(
        close(
            usd(&costs[1]),
            (60.0 * 3.0 + 2000.0 * 0.3 + 8.0 * 15.0) / 1e6
        ),
        "{}",
        costs[1]
    );
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

/// What a provider would refuse is refused at load, naming the key.
#[test]
fn plumbing_keys_are_checked_at_load() {
    let fake = FakeLlm::start();
    for (provider, extra, words) in [
        ("openai", ", top_p = 1.5", "`top_p` = 1.5 is out of range"),
        (
            "anthropic",
            ", seed = 1",
            "`seed` is for provider openai only",
        ),
        (
            "openai",
            ", prompt_cache = true",
            "`prompt_cache` is for provider anthropic only",
        ),
        (
            "openai",
            r#", stop = ["a", "b", "c", "d", "e"]"#,
            "`stop` must hold 1 to 4",
        ),
        (
            "openai",
            r#", path = "v1/x""#,
            "`path` = \"v1/x\" must start with /",
        ),
        (
            "openai",
            r#", headers = { "bad header" = "x" }"#,
            "not a valid header name",
        ),
        (
            "openai",
            r#", response_format = { schema = { type = "string" } }"#,
            "type = \"object\"",
        ),
    ] {
        let toml = llm_agent("x", &fake, provider, extra, "");
        let s = Society::new(BIN, &toml);
        let out = s.run(&["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{extra}: {err}");
        assert!(err.contains(words), "{extra}: {err}");
    }
}
