//! The `decide` tool: an llm agent proposes, the runtime assesses. Offered
//! only with `decide = true`; a rejection's feedback reaches the model,
//! which revises, and the revision is re-assessed.

use super::support::*;
use serde_json::{json, Value};
use society_testkit::fake_llm::{openai, FakeLlm};

const POLICY: &str = "\n[autonomy.baselines]\nplan_change = \"autonomous\"\n";

fn proposal(big: bool, plan: &str) -> Value {
    json!({"decision_type": "plan_change", "scope": if big { "series" } else { "scene" },
           "affects_multiple_departments": big, "is_foundational": big,
           "reversibility": "easy", "resource_cost": 0, "has_complete_information": true,
           "plan": plan, "rationale": "because"})
}

fn decide(p: Value, text: &str) -> Value {
    json!({"proposal": p, "then": [{"tool": "reply", "args": {"body": {"text": text}}}]})
}

#[test]
fn an_llm_decision_is_assessed_by_the_runtime_and_revised_after_feedback() {
    let fake = FakeLlm::start();
    let mut s = start(&format!(
        "{}{POLICY}",
        llm_agent("planner", &fake, "openai", ", decide = true", "")
    ));
    fake.push([
        // Too big: impact 1.0 → the orchestrator must approve.
        openai::tool_calls(
            &[(
                "d1",
                "decide",
                decide(proposal(true, "rewrite everything"), "rewrote"),
            )],
            (100, 20),
        ),
        // After "smaller": a scene-scope change, autonomous by baseline.
        openai::tool_calls(
            &[(
                "d2",
                "decide",
                decide(proposal(false, "fix scene 2"), "fixed scene 2"),
            )],
            (120, 20),
        ),
    ]);
    let id = s.ok(&["send", "planner", "improve the script"]);
    let id = id.trim().to_string();
    let req = wait_orchestrator(&s, "the approval request", |r| {
        r["type"] == "approval_request"
    });
    assert_eq!(req["body"]["plan"], "rewrite everything");
    assert_eq!(req["body"]["proposal"]["level"], "requires_approval");
    // The tool was offered.
    let offered = fake.requests()[0].body["tools"].as_array().unwrap().clone();
    assert!(offered.iter().any(|t| t["function"]["name"] == "decide"));
    assert_eq!(offered.len(), 9);

    s.ok(&[
        "reject",
        req["id"].as_str().unwrap(),
        "--feedback",
        "smaller",
    ]);
    let reply = wait_orchestrator(&s, "the reply after the revision", |r| {
        r["from"] == "planner" && r["type"] == "reply"
    });
    assert_eq!(reply["body"]["text"], "fixed scene 2");
    assert_eq!(
        reply["reply_to"],
        id.as_str(),
        "answers the original message"
    );
    // The model saw the feedback.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].body.to_string().contains("smaller"));
    let lines = agent_records(&s, "planner", "decisions.jsonl");
    let levels: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "assessed")
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["requires_approval", "autonomous"]);
    let second = lines
        .iter()
        .filter(|l| l["event"] == "assessed")
        .nth(1)
        .unwrap();
    assert_eq!(second["revision"], 2);
    assert_eq!(second["rule"], "baseline");
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn without_decide_the_tool_is_not_offered() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent("plain", &fake, "openai", "", ""));
    fake.push([openai::text("hello", (10, 5))]);
    s.ok(&["send", "plain", "hi"]);
    wait_orchestrator(&s, "the reply", |r| r["from"] == "plain");
    let offered = fake.requests()[0].body["tools"].as_array().unwrap().clone();
    assert!(!offered.iter().any(|t| t["function"]["name"] == "decide"));
    s.stop_supervisor();
}
