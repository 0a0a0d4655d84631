//! Retries, final errors, and a SIGKILL in the middle of a conversation.

use super::support::*;
use serde_json::json;
use society_testkit::fake_llm::{openai, FakeLlm, Reply};
use society_testkit::{records, wait_until};
use std::time::Duration;

#[test]
fn retries_exactly_as_configured_and_clear_final_errors() {
    let fakes: Vec<(&str, FakeLlm, &str)> = vec![
        ("flaky", FakeLlm::start(), ", retries = 3"),
        ("down", FakeLlm::start(), ", retries = 2"),
        (
            "slow",
            FakeLlm::start(),
            r#", retries = 1, timeout = "300ms""#,
        ),
        ("patient", FakeLlm::start(), r#", timeout = "20s""#),
        ("badkey", FakeLlm::start(), ""),
        ("nomodel", FakeLlm::start(), ""),
        ("toolong", FakeLlm::start(), ""),
        ("garbled", FakeLlm::start(), ""),
        (
            "nokey",
            FakeLlm::start(),
            r#", api_key_env = "SOCIETY_TEST_UNSET_KEY""#,
        ),
    ];
    let toml: String = fakes
        .iter()
        .map(|(id, fake, extra)| {
            // A model slower than hang_timeout must not look hung.
            let policy = match *id {
                "patient" => r#"max_attempts = 1, hang_timeout = "2s""#,
                _ => "max_attempts = 1",
            };
            llm_agent(id, fake, "openai", extra, policy)
        })
        .collect();
    let mut s = start(&toml);
    let f = |id: &str| &fakes.iter().find(|(i, _, _)| *i == id).unwrap().1;
    f("flaky").push([
        Reply::error(429, "rate_limit_exceeded", "slow down").header("retry-after", "1"),
        Reply::error(500, "server_error", "oops"),
        Reply::error(503, "overloaded", "busy"),
        openai::text("made it", (5, 5)),
    ]);
    f("down").push((0..3).map(|_| Reply::error(500, "server_error", "still down")));
    f("slow").push([
        openai::text("too late", (1, 1)).delayed(Duration::from_secs(3)),
        openai::text("in time", (1, 1)),
    ]);
    f("badkey").push([Reply::error(
        401,
        "invalid_api_key",
        &format!("Incorrect API key provided: {KEY}"),
    )]);
    f("nomodel").push([Reply::error(
        404,
        "model_not_found",
        &format!("The model `fake-model` does not exist (key {KEY})"),
    )]);
    f("toolong").push([Reply::error(
        400,
        "context_length_exceeded",
        "This model's maximum context length is 8 tokens",
    )]);
    f("patient").push([openai::text("worth the wait", (1, 1)).delayed(Duration::from_secs(5))]);
    f("garbled").push([Reply::raw(200, "{\"choices\": [")]);
    let ids: Vec<(String, String)> = fakes
        .iter()
        .map(|(id, _, _)| (id.to_string(), s.ok(&["send", id, "go"])))
        .collect();

    let replied = |id: &str, text: &str| {
        let msg = &ids.iter().find(|(i, _)| i == id).unwrap().1;
        let r = wait_orchestrator(&s, &format!("{id}'s reply"), |r| {
            r["reply_to"] == msg.as_str()
        });
        assert_eq!(r["body"]["text"], text, "{id}");
    };
    replied("flaky", "made it");
    let reqs = f("flaky").requests();
    assert_eq!(reqs.len(), 4, "3 retries then success");
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let retries = events(&s, "flaky", "llm_retry");
    assert_eq!(retries.len(), 3);
    assert!(retries[0]["reason"].as_str().unwrap().contains("HTTP 429"));
    assert_eq!(
        retries
            .iter()
            .map(|r| r["retry"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    replied("slow", "in time");
    replied("patient", "worth the wait");
    assert_eq!(
        events(&s, "patient", "started").len(),
        1,
        "never killed as hung"
    );
    assert_eq!(f("slow").count(), 2, "a timed-out call is retried once");

    let failed = |id: &str| -> String {
        let e = wait_until(SOON, &format!("{id} to give up"), || {
            events(&s, id, "message_failed").into_iter().next()
        });
        wait_until(SOON, &format!("{id}'s message dead-lettered"), || {
            (!events(&s, id, "message_dead_lettered").is_empty()).then_some(())
        });
        e["error"].as_str().unwrap().to_string()
    };
    let e = failed("down");
    assert!(
        e.contains("after 3 attempts") && e.contains("HTTP 500"),
        "{e}"
    );
    assert_eq!(f("down").count(), 3, "retries = 2: three requests, no more");
    let e = failed("badkey");
    assert!(
        e.contains("TEST_LLM_KEY") && e.contains("openai") && e.contains("401"),
        "{e}"
    );
    let e = failed("nomodel");
    assert!(
        e.contains("does not know model \"fake-model\"") && e.contains("[redacted]"),
        "{e}"
    );
    let e = failed("toolong");
    assert!(e.contains("does not fit the context window"), "{e}");
    let e = failed("garbled");
    assert!(e.contains("malformed response"), "{e}");
    let e = failed("nokey");
    assert!(e.contains("SOCIETY_TEST_UNSET_KEY is not set"), "{e}");
    for (id, n) in [
        ("badkey", 1),
        ("nomodel", 1),
        ("toolong", 1),
        ("garbled", 1),
        ("nokey", 0),
    ] {
        assert_eq!(f(id).count(), n, "{id}: a final error is not retried");
    }
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn a_replacement_process_continues_the_conversation_after_sigkill() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "writer",
        &fake,
        "openai",
        r#", timeout = "60s""#,
        "",
    ));
    fake.push([
        openai::tool_calls(
            &[
                (
                    "c1",
                    "write_file",
                    json!({"path": "output/a.md", "content": "A"}),
                ),
                (
                    "c2",
                    "send_message",
                    json!({"to": "critic", "type": "draft", "body": {"text": "A"}}),
                ),
            ],
            (100, 10),
        ),
        // The second call hangs long enough to kill the agent during it.
        openai::text("never delivered", (1, 1)).delayed(Duration::from_secs(40)),
        openai::text("final answer", (150, 5)),
    ]);
    let id = s.ok(&["send", "writer", "draft it"]);
    wait_until(SOON, "the second model call", || {
        (fake.count() == 2).then_some(())
    });
    let pid = s.agent_pid("writer").expect("the writer runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let reply = wait_orchestrator(&s, "the reply after the crash", |r| {
        r["reply_to"] == id.as_str()
    });
    assert_eq!(reply["body"]["text"], "final answer");
    assert_eq!(reply["gen"], 2, "sent by the replacement");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "step 1 was not requested again");
    assert_eq!(
        messages(&reqs[2]),
        messages(&reqs[1]),
        "the replacement sent the same history"
    );
    assert_eq!(
        tool_message(&reqs[2], "c1")["content"],
        "wrote 1 bytes to output/a.md"
    );
    assert_eq!(
        tool_message(&reqs[2], "c2")["content"],
        "sent a draft message to critic"
    );

    // Nothing executed or sent twice.
    let tools = agent_records(&s, "writer", "tools.jsonl");
    assert_eq!(tools.len(), 2, "tools ran once: {tools:?}");
    let outbox = records(&s.agent("writer").outbox());
    assert_eq!(outbox.len(), 2, "one draft, one reply: {outbox:?}");
    wait_until(SOON, "the draft at the critic", || {
        (!records(&s.agent("critic").inbox()).is_empty()).then_some(())
    });
    assert_eq!(records(&s.agent("critic").inbox()).len(), 1);
    assert_eq!(orchestrator_from(&s, "writer", "reply").len(), 1);
    // The reply can reach the orchestrator before the agent logs `message_handled`.
    let handled = wait_until(SOON, "message_handled", || {
        Some(events(&s, "writer", "message_handled")).filter(|h| !h.is_empty())
    });
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0]["attempt"], 2);
    // The killed call was never answered, but the provider may bill it:
    // the replacement records it once, with the size of what was sent.
    let costs = agent_records(&s, "writer", "costs.jsonl");
    let kinds: Vec<&str> = costs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["usage", "unknown_cost", "usage"], "{costs:#?}");
    let unknown = &costs[1];
    assert_eq!(
        (unknown["step"].as_u64(), unknown["gen"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(unknown["id"], id.as_str());
    assert_eq!(
        unknown["request_bytes"].as_u64(),
        Some(reqs[1].body.to_string().len() as u64),
        "{unknown}"
    );
    let reason = unknown["reason"].as_str().unwrap();
    assert!(
        reason.contains("ended while the call was in flight"),
        "{reason}"
    );
    assert!(!s.agent("writer").dir.join("llm-call.json").exists());
    let costs = crate::support::json_of(&s, &["costs", "--json"]);
    assert_eq!(costs["total"]["unknown_cost_calls"], 1, "{costs}");
    assert_eq!(costs["total"]["calls"], 2, "{costs}");
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
