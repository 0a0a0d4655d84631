//! `stream = true`: answers arrive as server-sent events, are assembled into
//! what a plain answer would have been, and the wait is bounded per chunk
//! (`stall_timeout`), not per request.

use super::support::*;
use serde_json::{json, Value};
use society_testkit::fake_llm::{anthropic, openai, FakeLlm, Reply};
use society_testkit::{records, wait_until, Society};
use std::time::{Duration, Instant};

/// The turns of the one conversation of `id`, without what differs between
/// two agents handling the same answers (time, message id, generation, and
/// the user turn, which names the message).
fn turns(s: &Society, id: &str) -> Vec<Value> {
    let dir = s.agent(id).dir.join("conversations");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .collect();
    assert_eq!(files.len(), 1, "{id}: one conversation");
    records(&files[0].path())
        .into_iter()
        .map(|mut t| {
            let keys: &[&str] = if t["turn"] == "user" {
                &["ts", "msg", "gen", "text"]
            } else {
                &["ts", "msg", "gen"]
            };
            for k in keys {
                t.as_object_mut().unwrap().remove(*k);
            }
            t
        })
        .collect()
}

/// (input, output, estimated) of each `usage` record of `id`.
fn usage(s: &Society, id: &str) -> Vec<(u64, u64, bool)> {
    agent_records(s, id, "costs.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "usage")
        .map(|r| {
            (
                r["input_tokens"].as_u64().unwrap(),
                r["output_tokens"].as_u64().unwrap(),
                r["estimated"] == true,
            )
        })
        .collect()
}

fn plain_anthropic(blocks: &[Value], stop_reason: &str, (input, output): (u64, u64)) -> Reply {
    Reply::json(
        200,
        json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
            "content": blocks, "stop_reason": stop_reason,
            "usage": {"input_tokens": input, "output_tokens": output}}),
    )
}

#[test]
fn streamed_answers_are_handled_exactly_like_plain_ones_on_both_wire_formats() {
    let content =
        "Streaming keeps a slow model alive: \"quotes\", émojis ✓ and\nnewlines survive the split.";
    let write = json!({"path": "output/a.md", "content": content});
    let send = json!({"to": "critic", "type": "draft", "body": {"text": "have a look"}});
    let calls = [
        ("c1", "write_file", write.clone()),
        ("c2", "send_message", send.clone()),
    ];
    let thought = json!({"type": "thinking", "thinking": "The user wants a file written first.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds=="});
    let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"});
    let blocks: Vec<Value> = [thought.clone(), redacted.clone()]
        .into_iter()
        .chain(calls.iter().map(
            |(id, name, input)| json!({"type": "tool_use", "id": id, "name": name, "input": input}),
        ))
        .collect();
    let last = [
        json!({"type": "thinking", "thinking": "Done, say so.", "signature": "c2ln"}),
        json!({"type": "text", "text": "wrote output/a.md and told the critic"}),
    ];
    let fakes: Vec<(&str, FakeLlm, &str, &str)> = vec![
        (
            "oa-stream",
            FakeLlm::start(),
            "openai",
            r#", stream = true, stall_timeout = "5s""#,
        ),
        ("oa-plain", FakeLlm::start(), "openai", ""),
        (
            "an-stream",
            FakeLlm::start(),
            "anthropic",
            r#", stream = true, stall_timeout = "5s", max_tokens = 8000, thinking_budget = 2000"#,
        ),
        (
            "an-plain",
            FakeLlm::start(),
            "anthropic",
            ", max_tokens = 8000, thinking_budget = 2000",
        ),
    ];
    let toml: String = fakes
        .iter()
        .map(|(id, fake, provider, extra)| llm_agent(id, fake, provider, extra, ""))
        .collect();
    let mut s = start(&toml);
    let f = |id: &str| &fakes.iter().find(|(i, ..)| *i == id).unwrap().1;
    let said = "wrote output/a.md and told the critic";
    f("oa-stream").push([
        openai::stream_tool_calls(&calls, (120, 30)),
        openai::stream_text(said, (180, 9)),
    ]);
    f("oa-plain").push([
        openai::tool_calls(&calls, (120, 30)),
        openai::text(said, (180, 9)),
    ]);
    f("an-stream").push([
        anthropic::stream(&blocks, "tool_use", (120, 30)),
        anthropic::stream(&last, "end_turn", (180, 9)),
    ]);
    f("an-plain").push([
        plain_anthropic(&blocks, "tool_use", (120, 30)),
        plain_anthropic(&last, "end_turn", (180, 9)),
    ]);
    for (id, ..) in &fakes {
        let msg = s.ok(&["send", id, "write it and tell the critic"]);
        let reply = wait_orchestrator(&s, &format!("{id}'s reply"), |r| {
            r["reply_to"] == msg.as_str()
        });
        assert_eq!(reply["body"]["text"], said, "{id}");
        let file = s.agent(id).dir.join("workspace/output/a.md");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), content, "{id}");
    }

    for (streamed, plain) in [("oa-stream", "oa-plain"), ("an-stream", "an-plain")] {
        let t = turns(&s, streamed);
        assert_eq!(
            t,
            turns(&s, plain),
            "{streamed}: the same conversation as {plain}"
        );
        assert_eq!(
            t[1]["calls"][0]["args"], write,
            "arguments split across chunks, joined"
        );
        assert_eq!(t[1]["calls"][1]["args"], send);
        assert_eq!(
            t[1]["usage"],
            json!({"input": 120, "output": 30}),
            "usage from the stream"
        );
        assert_eq!(t[4]["usage"], json!({"input": 180, "output": 9}));
        assert_eq!(
            usage(&s, streamed),
            [(120, 30, false), (180, 9, false)],
            "charged the stream's usage, not an estimate"
        );
        assert_eq!(usage(&s, streamed), usage(&s, plain));
        let tools = agent_records(&s, streamed, "tools.jsonl");
        assert_eq!(tools.len(), 2, "{tools:?}");
        assert!(events(&s, streamed, "llm_retry").is_empty());
        // The second request carries the assembled answer back.
        let reqs = f(streamed).requests();
        let from_answer = |m: Vec<Value>| -> Vec<Value> {
            m.into_iter()
                .skip_while(|m| m["role"] != "assistant")
                .collect()
        };
        let sent = from_answer(messages(&reqs[1]));
        assert!(sent.len() >= 2, "{sent:?}");
        assert_eq!(sent, from_answer(messages(&f(plain).requests()[1])));
        for r in &reqs {
            assert_eq!(r.body["stream"], true, "{streamed}");
        }
        for r in f(plain).requests() {
            assert_eq!(r.body.get("stream"), None, "{plain}");
        }
    }
    for r in f("oa-stream").requests() {
        assert_eq!(r.body["stream_options"], json!({"include_usage": true}));
    }
    for r in f("an-stream").requests() {
        assert_eq!(r.body.get("stream_options"), None, "not an Anthropic field");
    }
    let t = turns(&s, "an-stream");
    assert_eq!(
        t[1]["thinking"],
        json!([thought, redacted]),
        "signature from its delta"
    );
    assert_eq!(t[4]["thinking"][0]["signature"], "c2ln");
    let back = messages(&f("an-stream").requests()[1]);
    assert_eq!(back[1]["content"][0], thought, "sent back verbatim, first");
    wait_until(SOON, "both drafts at the critic", || {
        (records(&s.agent("critic").inbox()).len() == 4).then_some(())
    });
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn a_slow_stream_outlives_timeout_but_stalls_cut_streams_and_error_events_are_retried() {
    let fakes: Vec<(&str, FakeLlm, &str, &str, &str)> = vec![
        // Events 500 ms apart: each gap, and the whole, over `timeout`
        // (and the whole over `hang_timeout`), each gap under `stall_timeout`.
        (
            "slow",
            FakeLlm::start(),
            "openai",
            r#", stream = true, timeout = "300ms", stall_timeout = "1500ms""#,
            r#"hang_timeout = "1s""#,
        ),
        (
            "stalls",
            FakeLlm::start(),
            "anthropic",
            r#", stream = true, stall_timeout = "700ms", retries = 1"#,
            "max_attempts = 1",
        ),
        (
            "cut",
            FakeLlm::start(),
            "openai",
            ", stream = true",
            "max_attempts = 1",
        ),
        (
            "erring",
            FakeLlm::start(),
            "anthropic",
            ", stream = true",
            "max_attempts = 1",
        ),
        (
            "refused",
            FakeLlm::start(),
            "openai",
            ", stream = true",
            "max_attempts = 1",
        ),
    ];
    let toml: String = fakes
        .iter()
        .map(|(id, fake, provider, extra, policy)| llm_agent(id, fake, provider, extra, policy))
        .collect();
    let mut s = start(&toml);
    let f = |id: &str| &fakes.iter().find(|(i, ..)| *i == id).unwrap().1;
    let long = "one two three four five six seven eight";
    let slow = openai::stream_text(long, (40, 16)).every(Duration::from_millis(500));
    assert_eq!(slow.event_count(), 12);
    f("slow").push([slow]);
    f("stalls").push([
        anthropic::stream_text("never finished", (5, 5)).stall_before(4, Duration::from_secs(3)),
        anthropic::stream_text("after the stall", (5, 5)),
    ]);
    let cut = openai::stream_text("cut short here", (5, 5));
    let n = cut.event_count();
    f("cut").push([cut.cut_after(n - 1), openai::stream_text("whole", (5, 5))]);
    let error_event = |kind: &str, message: &str| {
        let e = json!({"type": "error", "error": {"type": kind, "message": message}});
        format!("event: error\ndata: {e}\n\n")
    };
    let start_event = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
    f("erring").push([
        Reply::error(503, "overloaded_error", "busy"),
        Reply::events(vec![
            start_event.into(),
            error_event("overloaded_error", "Overloaded"),
        ]),
        anthropic::stream_text("third time lucky", (5, 5)),
    ]);
    f("refused").push([Reply::error(
        400,
        "context_length_exceeded",
        "maximum context length is 8 tokens",
    )]);
    let t0 = Instant::now();
    let ids: Vec<(&str, String)> = fakes
        .iter()
        .map(|(id, ..)| (*id, s.ok(&["send", id, "go"])))
        .collect();
    let replied = |id: &str, text: &str| {
        let msg = &ids.iter().find(|(i, _)| *i == id).unwrap().1;
        let r = wait_orchestrator(&s, &format!("{id}'s reply"), |r| {
            r["reply_to"] == msg.as_str()
        });
        assert_eq!(r["body"]["text"], text, "{id}");
    };

    replied("slow", long);
    assert!(
        t0.elapsed() > Duration::from_secs(3),
        "the stream took its time"
    );
    assert_eq!(
        f("slow").count(),
        1,
        "never cut by `timeout`, never retried"
    );
    assert!(events(&s, "slow", "llm_retry").is_empty());
    assert_eq!(
        events(&s, "slow", "started").len(),
        1,
        "never killed as hung"
    );
    assert_eq!(usage(&s, "slow"), [(40, 16, false)]);

    replied("stalls", "after the stall");
    let reqs = f("stalls").requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap < Duration::from_millis(2500),
        "given up at the stall, not at its end: {gap:?}"
    );
    let retry = events(&s, "stalls", "llm_retry");
    assert_eq!(retry.len(), 1, "{retry:?}");
    let why = retry[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("stream stalled")
            && why.contains("stall_timeout (700ms)")
            && why.contains("s, longer than"),
        "{why}"
    );
    let unknown: Vec<Value> = agent_records(&s, "stalls", "costs.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "unknown_cost")
        .collect();
    assert_eq!(unknown.len(), 1, "the stalled call may be billed");
    assert_eq!(unknown[0]["reason"], why);
    assert_eq!(usage(&s, "stalls"), [(5, 5, false)]);

    replied("cut", "whole");
    let retry = events(&s, "cut", "llm_retry");
    assert_eq!(retry.len(), 1, "{retry:?}");
    let why = retry[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("the stream ended before its last event (data: [DONE])"),
        "{why}"
    );
    assert_eq!(
        agent_records(&s, "cut", "costs.jsonl")
            .iter()
            .filter(|r| r["event"] == "unknown_cost")
            .count(),
        1
    );

    replied("erring", "third time lucky");
    let reasons: Vec<String> = events(&s, "erring", "llm_retry")
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("HTTP 503: busy"),
        "a status keeps its meaning: {reasons:?}"
    );
    assert!(
        reasons[1].contains("the stream carried an error: overloaded_error: Overloaded"),
        "{reasons:?}"
    );

    let e = wait_until(SOON, "refused to give up", || {
        events(&s, "refused", "message_failed").into_iter().next()
    });
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("does not fit the context window"),
        "{e}"
    );
    assert_eq!(e["permanent"], true);
    assert_eq!(f("refused").count(), 1);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn stop_during_a_stream_abandons_it_at_once() {
    let fake = FakeLlm::start();
    // A grace long enough that only honouring the stop request, not a
    // SIGKILL after the grace, ends the agent within the bound below.
    let mut s = start(&llm_agent(
        "talker",
        &fake,
        "anthropic",
        r#", stream = true, stall_timeout = "10s""#,
        r#"grace = "15s""#,
    ));
    let words = vec!["word"; 40].join(" ");
    fake.push([anthropic::stream_text(&words, (5, 40)).every(Duration::from_millis(500))]);
    let msg = s.ok(&["send", "talker", "talk for a while"]);
    wait_until(SOON, "the streamed call", || {
        (fake.count() == 1).then_some(())
    });
    let t0 = Instant::now();
    s.ok(&["stop", "talker", "--timeout", "30s"]);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped mid-stream in {took:?}"
    );
    let abandoned = events(&s, "talker", "message_abandoned");
    assert_eq!(abandoned.len(), 1, "the brain gave the message back");
    assert_eq!(abandoned[0]["id"], msg.as_str());
    assert!(events(&s, "talker", "message_failed").is_empty());
    // No answer, no usage; but the request was sent and may be billed.
    let costs = agent_records(&s, "talker", "costs.jsonl");
    assert_eq!(costs.len(), 1, "{costs:?}");
    assert_eq!(costs[0]["event"], "unknown_cost");
    assert_eq!(
        costs[0]["reason"],
        "the agent stopped while the call was in flight"
    );
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
