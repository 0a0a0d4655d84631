//! What each provider is sent and how its answers' endings are read: the
//! token-limit field and reasoning settings, Anthropic thinking blocks sent
//! back verbatim, text alongside `finish`, empty and cut answers, and
//! settings a provider would refuse, refused at load.

use super::support::*;
use crate::support::code;
use serde_json::{json, Value};
use society_testkit::fake_llm::{openai, FakeLlm, Reply};
use society_testkit::{records, wait_until, Society};

/// An OpenAI answer with `message` and `finish_reason`.
fn openai_answer(message: Value, finish_reason: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 500}}),
    )
}

/// An Anthropic answer with `content` blocks and `stop_reason`.
fn anthropic_answer(content: Value, stop_reason: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
            "content": content, "stop_reason": stop_reason,
            "usage": {"input_tokens": 10, "output_tokens": 500}}),
    )
}

/// The `error` of the first `message_failed` of `id`, once its message is dead-lettered.
fn failure(s: &Society, id: &str) -> String {
    let e = wait_until(SOON, &format!("{id} to give up"), || {
        events(s, id, "message_failed").into_iter().next()
    });
    wait_until(SOON, &format!("{id}'s message dead-lettered"), || {
        (!events(s, id, "message_dead_lettered").is_empty()).then_some(())
    });
    e["error"].as_str().unwrap().to_string()
}

#[test]
fn openai_reasoning_models_get_max_completion_tokens_and_reasoning_effort() {
    let (reasoner, local, forced) = (FakeLlm::start(), FakeLlm::start(), FakeLlm::start());
    let toml = [
        llm_agent(
            "reasoner",
            &reasoner,
            "openai",
            r#", max_tokens = 3000, reasoning_effort = "high""#,
            "",
        )
        .replace("\"fake-model\"", "\"o4-mini\""),
        llm_agent("local", &local, "openai", ", max_tokens = 700", ""),
        llm_agent(
            "forced",
            &forced,
            "openai",
            r#", max_tokens = 800, max_tokens_field = "max_completion_tokens""#,
            "",
        ),
    ]
    .concat();
    let mut s = start(&toml);
    for f in [&reasoner, &local, &forced] {
        f.push([openai::text("ok", (5, 5))]);
    }
    for id in ["reasoner", "local", "forced"] {
        let msg = s.ok(&["send", id, "go"]);
        wait_orchestrator(&s, &format!("{id}'s reply"), |r| {
            r["reply_to"] == msg.as_str()
        });
    }
    let body = |f: &FakeLlm| f.requests()[0].body.clone();
    let b = body(&reasoner);
    assert_eq!(b["model"], "o4-mini");
    assert_eq!(b["max_completion_tokens"], 3000, "{b}");
    assert_eq!(
        b.get("max_tokens"),
        None,
        "o-series models refuse max_tokens"
    );
    assert_eq!(b["reasoning_effort"], "high");
    let b = body(&local);
    assert_eq!(b["max_tokens"], 700, "compatible servers keep max_tokens");
    assert_eq!(b.get("max_completion_tokens"), None);
    assert_eq!(b.get("reasoning_effort"), None);
    let b = body(&forced);
    assert_eq!(b["max_completion_tokens"], 800);
    assert_eq!(b.get("max_tokens"), None);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn anthropic_thinking_is_requested_and_its_blocks_go_back_verbatim() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "thinker",
        &fake,
        "anthropic",
        ", max_tokens = 8000, thinking_budget = 2000",
        "",
    ));
    let thought = json!({"type": "thinking", "thinking": "The user wants a file.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds=="});
    let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"});
    fake.push([
        anthropic_answer(
            json!([thought, redacted, {"type": "tool_use", "id": "t1", "name": "write_file",
                "input": {"path": "a.txt", "content": "A"}}]),
            "tool_use",
        ),
        anthropic_answer(
            json!([{"type": "thinking", "thinking": "Done.", "signature": "c2ln"},
                {"type": "text", "text": "wrote a.txt"}]),
            "end_turn",
        ),
    ]);
    let msg = s.ok(&["send", "thinker", "write a file"]);
    let reply = wait_orchestrator(&s, "the reply", |r| r["reply_to"] == msg.as_str());
    assert_eq!(reply["body"]["text"], "wrote a.txt");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(
            r.body["thinking"],
            json!({"type": "enabled", "budget_tokens": 2000})
        );
        assert_eq!(r.body["max_tokens"], 8000);
    }
    let m = messages(&reqs[1]);
    assert_eq!(m[1]["role"], "assistant");
    let blocks = m[1]["content"].as_array().unwrap();
    assert_eq!(blocks[0], thought, "signature and all, first");
    assert_eq!(blocks[1], redacted);
    assert_eq!(blocks[2]["type"], "tool_use");
    assert_eq!(m[2]["content"][0]["type"], "tool_result");
    // The thinking is part of the persisted conversation, so a replacement
    // process sends it back too.
    let conv = agent_records(&s, "thinker", &format!("conversations/{msg}.jsonl"));
    assert_eq!(conv[1]["thinking"], json!([thought, redacted]));
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn text_said_alongside_finish_is_delivered_once() {
    let (claude, gpt) = (FakeLlm::start(), FakeLlm::start());
    let mut s = start(
        &[
            llm_agent("claude", &claude, "anthropic", "", ""),
            llm_agent("gpt", &gpt, "openai", "", ""),
        ]
        .concat(),
    );
    claude.push([
        anthropic_answer(
            json!([{"type": "text", "text": "The answer is 42."},
                {"type": "tool_use", "id": "t1", "name": "finish", "input": {"summary": "answered"}}]),
            "tool_use",
        ),
        // Text beside an explicit reply is narration: the reply is the answer.
        anthropic_answer(
            json!([{"type": "text", "text": "I have replied."},
                {"type": "tool_use", "id": "t2", "name": "reply", "input": {"body": {"text": "43"}}},
                {"type": "tool_use", "id": "t3", "name": "finish", "input": {"summary": "answered"}}]),
            "tool_use",
        ),
    ]);
    gpt.push([openai_answer(
        json!({"role": "assistant", "content": "It is 7.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "finish", "arguments": "{\"summary\":\"done\"}"}}]}),
        "tool_calls",
    )]);
    let first = s.ok(&["send", "claude", "what is 6 x 7?"]);
    let r = wait_orchestrator(&s, "claude's answer", |r| r["reply_to"] == first.as_str());
    assert_eq!(r["body"], json!({"text": "The answer is 42."}));
    let second = s.ok(&["send", "claude", "and 6 x 7 + 1?"]);
    let r = wait_orchestrator(&s, "claude's second answer", |r| {
        r["reply_to"] == second.as_str()
    });
    assert_eq!(r["body"], json!({"text": "43"}));
    let third = s.ok(&["send", "gpt", "what is 1 + 6?"]);
    let r = wait_orchestrator(&s, "gpt's answer", |r| r["reply_to"] == third.as_str());
    assert_eq!(r["body"], json!({"text": "It is 7."}));
    wait_until(SOON, "three messages handled", || {
        (events(&s, "claude", "message_handled").len() == 2
            && events(&s, "gpt", "message_handled").len() == 1)
            .then_some(())
    });
    assert_eq!(orchestrator_from(&s, "claude", "reply").len(), 2);
    assert_eq!(orchestrator_from(&s, "gpt", "reply").len(), 1);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn empty_and_cut_answers_fail_the_attempt_and_deliver_nothing() {
    let fakes: Vec<(&str, FakeLlm, &str, &str)> = vec![
        ("empty", FakeLlm::start(), "openai", ""),
        ("retried", FakeLlm::start(), "openai", ""),
        ("cut", FakeLlm::start(), "openai", ", max_tokens = 500"),
        (
            "thinkcut",
            FakeLlm::start(),
            "anthropic",
            ", max_tokens = 4000, thinking_budget = 3000",
        ),
    ];
    let toml: String = fakes
        .iter()
        .map(|(id, fake, provider, extra)| {
            let policy = match *id {
                "retried" => "max_attempts = 2",
                _ => "max_attempts = 1",
            };
            llm_agent(id, fake, provider, extra, policy)
        })
        .collect();
    let mut s = start(&toml);
    let f = |id: &str| &fakes.iter().find(|(i, ..)| *i == id).unwrap().1;
    // A reasoning model that thought its whole allowance away says nothing.
    f("empty").push([openai_answer(
        json!({"role": "assistant", "content": ""}),
        "stop",
    )]);
    f("retried").push([
        openai_answer(json!({"role": "assistant", "content": null}), "stop"),
        openai::text("second time lucky", (5, 5)),
    ]);
    f("cut").push([openai_answer(
        json!({"role": "assistant", "content": "The answer is"}),
        "length",
    )]);
    f("thinkcut").push([anthropic_answer(
        json!([{"type": "thinking", "thinking": "Let me think about", "signature": "c2ln"},
            {"type": "text", "text": "The ans"}]),
        "max_tokens",
    )]);
    let ids: Vec<(&str, String)> = fakes
        .iter()
        .map(|(id, ..)| (*id, s.ok(&["send", id, "go"])))
        .collect();

    let e = failure(&s, "empty");
    assert!(
        e.contains("openai answered with neither text nor tool calls") && e.contains("\"stop\""),
        "{e}"
    );
    let e = failure(&s, "cut");
    assert!(
        e.contains("cut the answer off at max_tokens = 500")
            && e.contains("\"length\"")
            && e.contains("raise max_tokens"),
        "{e}"
    );
    let e = failure(&s, "thinkcut");
    assert!(
        e.contains("anthropic cut the answer off at max_tokens = 4000")
            && e.contains("\"max_tokens\"")
            && e.contains("thinking_budget"),
        "{e}"
    );
    // The empty answer did not end the conversation: the next attempt asked again.
    let msg = &ids.iter().find(|(i, _)| *i == "retried").unwrap().1;
    let r = wait_orchestrator(&s, "the retried answer", |r| r["reply_to"] == msg.as_str());
    assert_eq!(r["body"]["text"], "second time lucky");
    assert_eq!(f("retried").count(), 2);
    for id in ["empty", "cut", "thinkcut"] {
        assert!(events(&s, id, "message_handled").is_empty(), "{id}");
        assert!(
            orchestrator_from(&s, id, "reply").is_empty(),
            "{id}: nothing sent"
        );
        let out = records(&s.agent(id).outbox());
        assert!(
            out.iter().all(|r| r["type"] != "reply"),
            "{id}: no reply sent: {out:?}"
        );
        assert_eq!(f(id).count(), 1, "{id}");
        // Spent tokens are charged all the same.
        assert_eq!(agent_records(&s, id, "costs.jsonl").len(), 1, "{id}");
    }
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn settings_a_provider_would_refuse_are_refused_at_load() {
    let fake = FakeLlm::start();
    let s = Society::new(BIN, "");
    for (provider, extra, says) in [
        (
            "anthropic",
            ", temperature = 1.7",
            "`temperature` = 1.7 is out of range for provider anthropic: allowed 0 to 1",
        ),
        (
            "anthropic",
            ", max_tokens = 10000000",
            "`max_tokens` = 10000000 is out of range for provider anthropic: allowed 1 to 128000",
        ),
        (
            "openai",
            ", temperature = 2.5",
            "`temperature` = 2.5 is out of range for provider openai: allowed 0 to 2",
        ),
        (
            "anthropic",
            ", max_tokens = 2000, thinking_budget = 512",
            "`thinking_budget` = 512 is out of range for provider anthropic: allowed 1024 to 1999",
        ),
        (
            "openai",
            ", thinking_budget = 2000",
            "`thinking_budget` is for provider anthropic only",
        ),
    ] {
        std::fs::write(
            s.root().join("society.toml"),
            llm_agent("model", &fake, provider, extra, ""),
        )
        .unwrap();
        for args in [vec!["check"], vec!["spawn", "model", "--no-start"]] {
            let (rc, _, err) = code(&s, &args);
            assert_eq!(rc, 5, "society {args:?} with {extra}: {err}");
            assert!(
                err.contains(says) && err.contains("agent model"),
                "society {args:?} names the agent, key, value and range: {err}"
            );
        }
    }
    std::fs::write(
        s.root().join("society.toml"),
        llm_agent(
            "model",
            &fake,
            "anthropic",
            ", temperature = 1.0, max_tokens = 4000, thinking_budget = 2000",
            "",
        ),
    )
    .unwrap();
    let (rc, _, err) = code(&s, &["check"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(fake.count(), 0);
}
