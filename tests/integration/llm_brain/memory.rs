//! `memory = true`: the `remember` and `recall` tools on the agent's
//! `memory.jsonl`, exactly once across a crash between the memory's write
//! and the call's record; `shared_in_prompt = true`: the shared files listed
//! in the system prompt and read with `read_shared`, confined to `shared/`.

use super::support::*;
use serde_json::json;
use society_testkit::fake_llm::{openai, FakeLlm};
use society_testkit::records;

fn system_prompt(req: &society_testkit::fake_llm::Request) -> String {
    messages(req)
        .into_iter()
        .find(|m| m["role"] == "system")
        .map(|m| m["content"].to_string())
        .unwrap_or_default()
}

fn tool_names(req: &society_testkit::fake_llm::Request) -> Vec<String> {
    req.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_llm_agent_remembers_recalls_and_reads_the_shared_context() {
    let fake = FakeLlm::start();
    let s = start(&llm_agent(
        "scribe",
        &fake,
        "openai",
        ", memory = true, shared_in_prompt = true",
        "",
    ));
    let shared = s.layout().shared_dir();
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("bible.md"), "Dragons here are blue.").unwrap();
    std::fs::write(s.root().join("secret.txt"), "not for agents").unwrap();
    fake.push([
        openai::tool_calls(
            &[(
                "r1",
                "remember",
                json!({"text": "the dragon is blue", "tags": ["dragon", "colour"]}),
            )],
            (50, 10),
        ),
        openai::text("noted", (60, 5)),
    ]);
    let first = s.ok(&["send", "scribe", "note this"]).trim().to_string();
    wait_orchestrator(&s, "the first answer", |r| r["reply_to"] == first.as_str());
    let kept = records(&s.agent("scribe").memory());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["text"], "the dragon is blue");
    assert_eq!(kept[0]["tags"], json!(["dragon", "colour"]));
    assert_eq!(kept[0]["message"], first.as_str());

    fake.push([
        openai::tool_calls(
            &[
                (
                    "c1",
                    "recall",
                    json!({"query": "what colour is the dragon?"}),
                ),
                ("s1", "read_shared", json!({"name": "bible.md"})),
                ("s2", "read_shared", json!({"name": "../../secret.txt"})),
                ("r2", "remember", json!({"text": "x".repeat(16 * 1024 + 1)})),
            ],
            (80, 10),
        ),
        openai::text("done", (90, 5)),
    ]);
    let second = s
        .ok(&["send", "scribe", "what do you know?"])
        .trim()
        .to_string();
    wait_orchestrator(&s, "the second answer", |r| {
        r["reply_to"] == second.as_str()
    });
    let reqs = requests_about(&fake, &second);
    let last = reqs.last().unwrap();
    let recalled = tool_message(last, "c1")["content"]
        .as_str()
        .unwrap()
        .to_string();
    let hits: serde_json::Value = serde_json::from_str(&recalled).unwrap();
    assert_eq!(hits[0]["text"], "the dragon is blue", "{recalled}");
    assert_eq!(hits[0]["tags"], json!(["dragon", "colour"]));
    assert_eq!(
        tool_message(last, "s1")["content"],
        "Dragons here are blue."
    );
    let refused = tool_message(last, "s2")["content"].to_string();
    assert!(refused.contains("`..` is refused"), "{refused}");
    let big = tool_message(last, "r2")["content"].to_string();
    assert!(
        big.contains("over the limit of 16384 bytes per memory"),
        "{big}"
    );
    assert_eq!(records(&s.agent("scribe").memory()).len(), 1);

    // Offered by config, and the shared files listed in the system prompt.
    let names = tool_names(&reqs[0]);
    for t in ["remember", "recall", "read_shared"] {
        assert!(names.iter().any(|n| n == t), "{t} offered: {names:?}");
    }
    let prompt = system_prompt(&reqs[0]);
    assert!(prompt.contains("- bible.md (22 bytes)"), "{prompt}");
    assert!(!prompt.contains("secret"), "{prompt}");
    assert_key_nowhere(s.root());
}

#[test]
fn memory_tools_are_offered_only_when_configured() {
    let fake = FakeLlm::start();
    let s = start(&llm_agent("plain", &fake, "openai", "", ""));
    fake.push([openai::text("hi", (10, 2))]);
    let id = s.ok(&["send", "plain", "hello"]).trim().to_string();
    wait_orchestrator(&s, "the answer", |r| r["reply_to"] == id.as_str());
    let names = tool_names(&fake.requests()[0]);
    for t in ["remember", "recall", "read_shared"] {
        assert!(!names.iter().any(|n| n == t), "{t} not offered: {names:?}");
    }
    assert!(!system_prompt(&fake.requests()[0]).contains("Shared context"));
}

#[test]
fn a_remember_is_kept_once_when_the_agent_dies_before_its_result_is_recorded() {
    let fake = FakeLlm::start();
    let mut s = society_testkit::Society::new(
        BIN,
        &format!(
            "{DEFAULTS}{}",
            llm_agent("scribe", &fake, "openai", ", memory = true", "")
        ),
    );
    // The agent aborts right after memory.jsonl gets the line, before the
    // call's result reaches the conversation log; its replacement runs the
    // call again and must find the memory already there.
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY), ("SOCIETY_FAULTS", "memory.stored")]);
    fake.push([
        openai::tool_calls(
            &[(
                "r1",
                "remember",
                json!({"text": "only once", "tags": ["once"]}),
            )],
            (50, 10),
        ),
        openai::text("noted", (60, 5)),
    ]);
    let id = s.ok(&["send", "scribe", "note this"]).trim().to_string();
    let reply = wait_orchestrator(&s, "the answer", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["text"], "noted");
    let starts = events(&s, "scribe", "started").len();
    assert!(starts >= 2, "the crash point fired ({starts} starts)");
    let kept = records(&s.agent("scribe").memory());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["text"], "only once");
    assert_eq!(fake.count(), 2, "the model was not asked again");
    let recorded = agent_records(&s, "scribe", "tools.jsonl")
        .into_iter()
        .filter(|r| r["tool"] == "remember")
        .count();
    assert_eq!(recorded, 1, "one recorded call");
}
