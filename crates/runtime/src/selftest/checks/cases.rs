//! Checks of cases and approvals: a case through three agents, and an
//! approval that outlives a SIGKILLed supervisor and a dormant agent.

use super::{finish, replies, T};
use crate::selftest::{wait_until, Env, Failed};
use serde_json::Value;
use society_core::kinds::case_log;
use std::collections::HashSet;

pub(super) fn multi_stage_case(env: &Env) -> Result<String, Failed> {
    let toml = r#"
[[agent]]
id = "one"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "case_event", event = "stage_one" }, { do = "forward", to = "two" } ]
[[agent]]
id = "two"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "case_event", event = "stage_two" }, { do = "forward", to = "three" } ]
[[agent]]
id = "three"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "case_event", event = "completed" }, { do = "send", to = "orchestrator", type = "result", body = { done = true } } ]
"#;
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    let case = s.ok(&["case", "new", "selftest pipeline", "--assign", "one"])?;
    s.ok(&["send", "one", "go", "--case", &case])?;
    let v = wait_until(T, "the case to resolve", || {
        let v = s.json(&["case", "show", &case, "--json"]).ok()?;
        (v["case"]["status"] == "resolved").then_some(v)
    })?;
    let events: Vec<&Value> = v["events"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for want in [
        case_log::CREATED,
        case_log::ASSIGNED,
        case_log::HANDOFF,
        case_log::AGENT_REPORT,
        case_log::COMPLETED,
    ] {
        ensure!(names.contains(&want), "case log lacks {want}: {names:?}");
    }
    let keys: Vec<&str> = events.iter().filter_map(|e| e["src"].as_str()).collect();
    let unique: HashSet<_> = keys.iter().collect();
    ensure!(
        unique.len() == keys.len(),
        "a case event is doubled: {keys:?}"
    );
    finish(&mut s)?;
    Ok(format!(
        "{} case events, each once, status resolved, owner {}",
        names.len(),
        v["case"]["owner"]
    ))
}

pub(super) fn approval_restarts(env: &Env) -> Result<String, Failed> {
    let toml = r#"
[defaults]
idle_exit = "300ms"
[[agent]]
id = "asker"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "request_approval", plan = "ship {{body.text}}" } ]
[[agent.brain.rules]]
type = "approval_response"
when = { decision = "approved" }
actions = [ { do = "send", to = "orchestrator", type = "result", body = { shipped = "{{body.parked.body.text}}" } } ]
"#;
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    s.ok(&["send", "asker", "v1"])?;
    let request = wait_until(T, "the approval request", || {
        let v = s.json(&["approvals", "--json"]).ok()?;
        v.as_array()?.first()?["id"].as_str().map(String::from)
    })?;
    s.kill_supervisor();
    s.wait_state("asker", "dormant", T)?;
    let pending = s.json(&["approvals", "--json"])?;
    ensure!(
        pending.as_array().map(Vec::len) == Some(1),
        "the request is not pending after the kill: {pending}"
    );
    s.ok(&["approve", &request, "--note", "selftest"])?;
    s.start_supervisor()?;
    let shipped = wait_until(T, "the parked message to resume", || {
        replies(&s)
            .into_iter()
            .find(|r| r["type"] == "result")
            .map(|r| r["body"]["shipped"].clone())
    })?;
    ensure!(shipped == "v1", "shipped {shipped}, not v1");
    finish(&mut s)?;
    Ok("request survived a SIGKILLed supervisor and a dormant agent; approved while down; parked message resumed once".into())
}
