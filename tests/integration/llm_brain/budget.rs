//! Hard budgets, enforced to the token, and extensions by approval.

use super::support::*;
use serde_json::{json, Value};
use society_testkit::fake_llm::{openai, FakeLlm};
use society_testkit::{records, wait_until};

#[test]
fn budgets_stop_to_the_token_and_an_approval_resumes_the_work() {
    let (fake, frugal) = (FakeLlm::start(), FakeLlm::start());
    let budget = |n: u64| format!(", max_tokens = 8000, budget = {{ tokens_total = {n} }}");
    let mut s = start(&format!(
        "{}{}",
        llm_agent("writer", &fake, "openai", &budget(10_000), ""),
        llm_agent("frugal", &frugal, "openai", &budget(1_000), "")
    ));
    fake.push([
        openai::tool_calls(
            &[(
                "c1",
                "send_message",
                json!({"to": "critic", "type": "draft", "body": {"text": "v1"}}),
            )],
            (2000, 1000),
        ),
        openai::tool_calls(
            &[(
                "c2",
                "write_file",
                json!({"path": "output/v2.md", "content": "v2"}),
            )],
            (4000, 3000),
        ),
        openai::text("v2 is ready", (7500, 500)),
    ]);
    frugal.push([openai::tool_calls(
        &[("f1", "write_file", json!({"path": "x.md", "content": "x"}))],
        (600, 400),
    )]);
    let id = s.ok(&["send", "writer", "write v2"]);
    let fid = s.ok(&["send", "frugal", "write x"]);

    let request = wait_orchestrator(&s, "the writer's budget request", |r| {
        r["type"] == "approval_request" && r["from"] == "writer"
    });
    assert_eq!(
        request["body"]["plan"],
        "extend the total token budget of writer by 10000 tokens"
    );
    assert_eq!(request["body"]["parked"]["id"], id.as_str());
    assert!(request["body"]["rationale"]
        .as_str()
        .unwrap()
        .starts_with("10000 tokens spent of 10000 tokens"));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "no call once the budget is spent");
    assert_eq!(reqs[0].body["max_tokens"], 8000);
    // 10000 - 3000 spent - 3000 for the prompt (the last answer's size).
    assert_eq!(reqs[1].body["max_tokens"], 4000);
    let asked = agent_records(&s, "writer", "costs.jsonl");
    assert_eq!(asked.last().unwrap()["event"], "budget_requested");
    assert_eq!(asked.last().unwrap()["request"], request["id"]);
    let pending: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).unwrap();
    assert!(pending
        .to_string()
        .contains("extend the total token budget of writer"));

    s.ok(&[
        "approve",
        request["id"].as_str().unwrap(),
        "--note",
        "go on",
    ]);
    let done = wait_orchestrator(&s, "the resumed work's reply", |r| {
        r["from"] == "writer" && r["type"] == "reply"
    });
    assert_eq!(done["body"]["text"], "v2 is ready");
    assert_eq!(
        done["reply_to"],
        id.as_str(),
        "the reply after the approval answers the parked message"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    // 20000 - 10000 spent - 7000 for the prompt.
    assert_eq!(reqs[2].body["max_tokens"], 3000);
    let before = messages(&reqs[1]);
    assert_eq!(
        messages(&reqs[2])[..before.len()],
        before[..],
        "the same conversation continued"
    );
    assert_eq!(
        tool_message(&reqs[2], "c2")["content"],
        "wrote 2 bytes to output/v2.md"
    );
    let ledger = agent_records(&s, "writer", "costs.jsonl");
    let ext: Vec<&Value> = ledger
        .iter()
        .filter(|r| r["event"] == "budget_extended")
        .collect();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0]["tokens"], 10000);
    assert_eq!(ext[0]["by"], "orchestrator");
    assert_eq!(ext[0]["scope"], "agent.tokens_total");
    let spent: u64 = ledger
        .iter()
        .filter(|r| r["event"] == "usage")
        .map(|r| r["input_tokens"].as_u64().unwrap() + r["output_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(spent, 18_000);
    assert_eq!(
        std::fs::read_to_string(s.agent("writer").workspace().join("output/v2.md")).unwrap(),
        "v2"
    );
    wait_until(SOON, "the draft at the critic", || {
        (!records(&s.agent("critic").inbox()).is_empty()).then_some(())
    });
    assert_eq!(
        records(&s.agent("critic").inbox()).len(),
        1,
        "sent once, before the stop"
    );
    assert_eq!(orchestrator_from(&s, "writer", "reply").len(), 1);

    // A rejected extension ends the message without another call.
    let req = wait_orchestrator(&s, "frugal's budget request", |r| {
        r["type"] == "approval_request" && r["from"] == "frugal"
    });
    assert_eq!(req["body"]["parked"]["id"], fid.as_str());
    s.ok(&[
        "reject",
        req["id"].as_str().unwrap(),
        "--feedback",
        "too expensive",
    ]);
    let log = wait_until(SOON, "frugal to log the rejection", || {
        events(&s, "frugal", "brain_log")
            .into_iter()
            .find(|e| e["message"].as_str().unwrap().contains("rejected"))
    });
    assert!(log["message"].as_str().unwrap().contains("too expensive"));
    assert_eq!(frugal.count(), 1);
    let ledger = agent_records(&s, "frugal", "costs.jsonl");
    assert_eq!(
        ledger
            .iter()
            .filter(|r| r["event"] == "budget_rejected")
            .count(),
        1
    );
    assert!(orchestrator_from(&s, "frugal", "reply").is_empty());
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
