//! A server that reports no `usage`: the calls are charged an estimate, and
//! budgets count it as they would the server's figures.

use super::support::*;
use serde_json::{json, Value};
use society_testkit::fake_llm::{FakeLlm, Reply};

/// An OpenAI answer with tool calls and no `usage` object.
fn write_call_without_usage(n: u32) -> Reply {
    let args = json!({"path": format!("f{n}.md"), "content": "some text"}).to_string();
    Reply::json(
        200,
        json!({"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": format!("w{n}"), "type": "function",
            "function": {"name": "write_file", "arguments": args}}]}}]}),
    )
}

#[test]
fn answers_without_usage_are_estimated_and_hit_the_budget() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "counter",
        &fake,
        "openai",
        ", budget = { tokens_total = 3000 }",
        "",
    ));
    fake.push((1..=5).map(write_call_without_usage));
    s.ok(&["send", "counter", "write five files"]);

    let request = wait_orchestrator(&s, "the budget request", |r| {
        r["type"] == "approval_request" && r["from"] == "counter"
    });
    assert_eq!(
        request["body"]["plan"],
        "extend the total token budget of counter by 3000 tokens"
    );
    let reqs = fake.requests();
    assert!(
        (2..5).contains(&reqs.len()),
        "the estimate stopped the calls before the script ran out: {} calls",
        reqs.len()
    );
    let usage: Vec<Value> = agent_records(&s, "counter", "costs.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "usage")
        .collect();
    assert_eq!(usage.len(), reqs.len(), "one usage record per answer");
    for (rec, req) in usage.iter().zip(&reqs) {
        assert_eq!(rec["estimated"], true, "{rec}");
        // The request's bytes / 4 (the sent body differs only in `max_tokens`).
        let bytes = req.body.to_string().len() as i64;
        let input = rec["input_tokens"].as_i64().unwrap();
        assert!(
            (input - bytes / 4).abs() <= 2,
            "input {input} for a {bytes}-byte request"
        );
        assert!(rec["output_tokens"].as_u64().unwrap() > 0, "{rec}");
        assert!(
            rec["usd"].as_f64().unwrap() > 0.0,
            "priced like any call: {rec}"
        );
    }
    let asked = agent_records(&s, "counter", "costs.jsonl")
        .into_iter()
        .find(|r| r["event"] == "budget_requested")
        .expect("a budget_requested record");
    let spent: u64 = usage
        .iter()
        .map(|r| r["input_tokens"].as_u64().unwrap() + r["output_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(asked["spent"].as_f64().unwrap() as u64, spent);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
