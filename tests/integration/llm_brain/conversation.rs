//! Tool calls, both protocols, prompts, text replies and case history.

use super::support::*;
use serde_json::{json, Value};
use society_testkit::fake_llm::{anthropic, openai, FakeLlm};
use society_testkit::{records, wait_until};

#[test]
fn tool_calls_become_files_messages_case_events_and_a_reply() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "writer",
        &fake,
        "openai",
        ", max_tokens = 500",
        "",
    ));
    let outside = s.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let ws = s.agent("writer").workspace();
    std::os::unix::fs::symlink(&outside, ws.join("escape")).unwrap();
    fake.push([
        openai::tool_calls(
            &[
                (
                    "c1",
                    "write_file",
                    json!({"path": "output/draft.md", "content": "Tides rise."}),
                ),
                (
                    "c2",
                    "write_file",
                    json!({"path": "../../evil.txt", "content": "x"}),
                ),
                (
                    "c3",
                    "write_file",
                    json!({"path": "escape/evil.txt", "content": "x"}),
                ),
                ("c4", "read_file", json!({"path": "/etc/hostname"})),
                (
                    "c5",
                    "send_message",
                    json!({"to": "critic", "type": "draft", "body": {"text": "Tides rise."}}),
                ),
            ],
            (100, 20),
        ),
        openai::tool_calls(
            &[
                ("c6", "read_file", json!({"path": "output/draft.md"})),
                (
                    "c7",
                    "case_event",
                    json!({"event": "drafted", "fields": {"words": 2}}),
                ),
            ],
            (200, 30),
        ),
        openai::tool_calls(
            &[
                (
                    "c8",
                    "reply",
                    json!({"body": {"text": "done: output/draft.md"}}),
                ),
                ("c9", "finish", json!({"summary": "drafted"})),
            ],
            (300, 10),
        ),
    ]);
    let case = s.ok(&["case", "new", "a poem about tides"]);
    let id = s.ok(&["send", "writer", "write about tides", "--case", &case]);
    let reply = wait_orchestrator(&s, "the writer's reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"], json!({"text": "done: output/draft.md"}));
    assert_eq!(reply["case"], case.as_str());

    // The model saw each step's results, in a continued history.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "one request per step");
    for r in &reqs {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.headers["authorization"], format!("Bearer {KEY}"));
        assert_eq!(r.body["model"], "fake-model");
        assert_eq!(r.body["max_tokens"], 500);
        assert_eq!(r.body["tools"].as_array().unwrap().len(), 8);
    }
    let first = messages(&reqs[0]);
    assert_eq!(first[0]["role"], "system");
    assert!(first[1]["content"]
        .as_str()
        .unwrap()
        .contains("write about tides"));
    assert_eq!(
        tool_message(&reqs[1], "c1")["content"],
        "wrote 11 bytes to output/draft.md"
    );
    for refused in ["c2", "c3", "c4"] {
        let text = tool_message(&reqs[1], refused)["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("refused"), "{refused}: {text}");
    }
    assert_eq!(tool_message(&reqs[2], "c6")["content"], "Tides rise.");
    assert_eq!(
        messages(&reqs[2])[..messages(&reqs[1]).len()],
        messages(&reqs[1])[..]
    );

    // Files: inside the workspace only.
    assert_eq!(
        std::fs::read_to_string(ws.join("output/draft.md")).unwrap(),
        "Tides rise."
    );
    assert!(!outside.join("evil.txt").exists());
    assert!(!s.agent("writer").dir.join("evil.txt").exists());
    assert!(!s.layout().state_dir().join("evil.txt").exists());

    // Messages: the draft reached the critic; the case event reached the case log.
    let critic = wait_until(SOON, "the draft in the critic's inbox", || {
        let r = records(&s.agent("critic").inbox());
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(critic.len(), 1);
    assert_eq!(critic[0]["type"], "draft");
    assert_eq!(critic[0]["case"], case.as_str());
    wait_until(SOON, "the drafted case event", || {
        let doc: Value = serde_json::from_str(&s.ok(&["case", "show", &case, "--json"])).unwrap();
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "agent_report" && e["report"] == "drafted" && e["words"] == 2)
            .then_some(())
    });

    // tools.jsonl: every call, in order, with its step and outcome.
    let tools = agent_records(&s, "writer", "tools.jsonl");
    let seen: Vec<(&str, bool, u64)> = tools
        .iter()
        .map(|t| {
            (
                t["tool"].as_str().unwrap(),
                t["ok"].as_bool().unwrap(),
                t["step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("write_file", true, 1),
            ("write_file", false, 1),
            ("write_file", false, 1),
            ("read_file", false, 1),
            ("send_message", true, 1),
            ("read_file", true, 2),
            ("case_event", true, 2),
            ("reply", true, 3),
            ("finish", true, 3)
        ]
    );
    assert!(tools.iter().all(|t| t["event"] == "tool_call"
        && t["id"] == id.as_str()
        && t["agent"] == "writer"
        && t["gen"] == 1));

    // Costs: one usage record per answer, priced from society.toml.
    let usage: Vec<Value> = agent_records(&s, "writer", "costs.jsonl");
    assert_eq!(usage.len(), 3);
    assert_eq!(usage[0]["input_tokens"], 100);
    assert_eq!(usage[0]["case"], case.as_str());
    assert!((usage[0]["usd"].as_f64().unwrap() - 0.00014).abs() < 1e-12);
    let costs: Value = serde_json::from_str(&s.ok(&["costs", "--json"])).unwrap();
    assert_eq!(costs["total"]["calls"], 3);
    assert!((costs["total"]["usd"].as_f64().unwrap() - 0.00072).abs() < 1e-12);
    let by_model: Value =
        serde_json::from_str(&s.ok(&["costs", "--by", "model", "--json"])).unwrap();
    assert_eq!(by_model["rows"][0]["key"], "fake-model");
    assert!(s.ok(&["costs", "--by", "case"]).contains(&case));
    assert!((s.status("writer")["spend_usd"].as_f64().unwrap() - 0.00072).abs() < 1e-12);
    assert!(s.ok(&["status"]).contains("$0.0007"));

    // The conversation: 1 user turn, 3 answers, 9 tool results.
    let conv = agent_records(&s, "writer", &format!("conversations/{case}.jsonl"));
    assert_eq!(conv.len(), 13);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn anthropic_protocol_prompt_file_text_replies_and_case_history() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "claude",
        &fake,
        "anthropic",
        r#", system_prompt_file = "prompt.md", temperature = 0.3"#,
        "",
    ));
    std::fs::write(
        s.agent("claude").dir.join("prompt.md"),
        "Answer in one line.\n",
    )
    .unwrap();
    fake.push([
        anthropic::text("Hello from the model", (10, 5)),
        anthropic::tool_calls(
            &[
                ("t1", "reply", json!({"body": {"text": "second"}})),
                ("t2", "finish", json!({"summary": "ok"})),
            ],
            (20, 5),
        ),
    ]);
    let case = s.ok(&["case", "new", "chat"]);
    let first = s.ok(&["send", "claude", "hi", "--case", &case]);
    let r1 = wait_orchestrator(&s, "the text answer as a reply", |r| {
        r["reply_to"] == first.as_str()
    });
    assert_eq!(r1["body"], json!({"text": "Hello from the model"}));
    let second = s.ok(&["send", "claude", "again", "--case", &case]);
    let r2 = wait_orchestrator(&s, "the second reply", |r| r["reply_to"] == second.as_str());
    assert_eq!(r2["body"], json!({"text": "second"}));

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.headers["x-api-key"], KEY);
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    assert!(!r.headers.contains_key("authorization"));
    let system = r.body["system"].as_str().unwrap();
    assert!(
        system.contains("You are agent claude") && system.ends_with("Answer in one line."),
        "{system}"
    );
    assert_eq!(r.body["temperature"], 0.3);
    assert!(r.body["tools"][0]["input_schema"].is_object());
    // Same case, same conversation: the second request carries the first exchange.
    let m = reqs[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m[0]["content"][0]["text"].as_str().unwrap().ends_with("hi"));
    assert_eq!(m[1]["content"][0]["text"], "Hello from the model");
    assert!(m[2]["content"][0]["text"]
        .as_str()
        .unwrap()
        .ends_with("again"));
    // No price for this provider's usage? It is priced: fake-model has one.
    let usage = agent_records(&s, "claude", "costs.jsonl");
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0]["provider"], "anthropic");
    assert_eq!(usage[0]["output_tokens"], 5);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn a_models_approval_request_parks_the_message_and_the_answer_resumes_it() {
    let fake = FakeLlm::start();
    let boss = r#"
[[agent]]
id = "boss"
brain = { kind = "script", rules = [ { type = "kick", actions = [ { do = "send", to = "asker", type = "task", body = { text = "clean up" } } ] } ] }
"#;
    let mut s = start(&format!(
        "{boss}{}",
        llm_agent("asker", &fake, "openai", "", "")
    ));
    fake.push([
        openai::tool_calls(
            &[(
                "a1",
                "request_approval",
                json!({"plan": "delete old drafts", "rationale": "they confuse readers", "alternatives": ["keep them"]}),
            )],
            (10, 5),
        ),
        openai::text("deleted", (20, 5)),
    ]);
    s.ok(&["send", "boss", "go", "--type", "kick"]);
    let request = wait_orchestrator(&s, "the model's approval request", |r| {
        r["type"] == "approval_request" && r["from"] == "asker"
    });
    assert_eq!(request["body"]["plan"], "delete old drafts");
    assert_eq!(request["body"]["alternatives"], json!(["keep them"]));
    assert_eq!(request["body"]["parked"]["from"], "boss");
    assert_eq!(fake.count(), 1, "the request ends the turn");

    s.ok(&["approve", request["id"].as_str().unwrap(), "--note", "fine"]);
    let reply = wait_until(SOON, "the reply to the parked message's sender", || {
        records(&s.agent("boss").inbox())
            .into_iter()
            .find(|r| r["from"] == "asker" && r["type"] == "reply")
    });
    assert_eq!(reply["body"], json!({"text": "deleted"}));
    assert_eq!(
        reply["reply_to"], request["body"]["parked"]["id"],
        "the reply after the approval answers the parked message"
    );
    assert!(reply["reply_to"].is_string());
    assert!(orchestrator_from(&s, "asker", "reply").is_empty());
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let (before, after) = (messages(&reqs[0]), messages(&reqs[1]));
    assert_eq!(
        after[..before.len()],
        before[..],
        "the parked conversation continued"
    );
    let answer = after.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        answer.contains("approval_response")
            && answer.contains("\"approved\": true")
            && answer.contains("fine"),
        "{answer}"
    );
    assert!(
        !answer.contains("clean up"),
        "the parked message is not repeated: {answer}"
    );
    assert!(agent_records(&s, "asker", "costs.jsonl")
        .iter()
        .all(|r| r["event"] == "usage"));
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
