//! Model fallback: a model that keeps failing (429/5xx past its retries, or
//! an open circuit) hands the call to the next entry of `fallback`, recorded
//! in `activity.jsonl` (`llm_fallback`) and `costs.jsonl` (`fallback`, the
//! fallback's model and price).

use super::support::*;
use serde_json::json;
use society_testkit::fake_llm::{anthropic, openai, FakeLlm, Reply};
use society_testkit::{records, wait_until, Society};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn society(primary: &FakeLlm, backup: &FakeLlm, extra: &str) -> Society {
    let fallback = format!(
        r#", api_key_env = "TEST_LLM_KEY", retries = 1, fallback = [{{ provider = "anthropic", model = "backup-model", base_url = "{}", api_key_env = "TEST_LLM_KEY" }}]{extra}"#,
        backup.url()
    );
    let agent = llm_agent("worker", primary, "openai", &fallback, "max_attempts = 2");
    let toml = format!(
        r#"
[defaults]
idle_exit = "5s"
heartbeat = "200ms"

[prices."fake-model"]
input = 1.0
output = 2.0

[prices."backup-model"]
input = 10.0
output = 20.0
{agent}"#
    );
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    s
}

/// 5xx past the retries moves to the fallback, on another provider; the
/// rest of the message stays there; the usage is the fallback's, priced at
/// its model's price.
#[test]
fn server_errors_past_the_retries_move_to_the_next_model() {
    let (primary, backup) = (FakeLlm::start(), FakeLlm::start());
    let s = society(&primary, &backup, "");
    primary.push((0..2).map(|_| Reply::error(503, "overloaded", "busy")));
    backup.push([
        anthropic::tool_calls(
            &[("t1", "write_file", json!({"path": "a.md", "content": "A"}))],
            (100, 10),
        ),
        anthropic::text("done on the backup", (120, 5)),
    ]);
    let id = s.ok(&["send", "worker", "do it"]);
    let reply = wait_orchestrator(&s, "the reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["text"], "done on the backup");
    assert_eq!(
        primary.count(),
        2,
        "1 try + 1 retry, and not again for step 2"
    );
    assert_eq!(backup.count(), 2);
    assert_eq!(backup.requests()[0].path, "/v1/messages");

    let fell = events(&s, "worker", "llm_fallback");
    assert_eq!(fell.len(), 1, "{fell:?}");
    assert_eq!(
        (
            &fell[0]["from"],
            &fell[0]["to"],
            &fell[0]["to_provider"],
            &fell[0]["fallback"]
        ),
        (
            &json!("fake-model"),
            &json!("backup-model"),
            &json!("anthropic"),
            &json!(1)
        )
    );
    assert!(
        fell[0]["reason"].as_str().unwrap().contains("HTTP 503"),
        "{}",
        fell[0]
    );
    let costs = records(&s.agent("worker").dir.join("costs.jsonl"));
    let usage: Vec<_> = costs.iter().filter(|r| r["event"] == "usage").collect();
    assert_eq!(usage.len(), 2);
    for u in &usage {
        assert_eq!(
            (&u["model"], &u["fallback"]),
            (&json!("backup-model"), &json!(1))
        );
    }
    let usd = usage[0]["usd"].as_f64().unwrap();
    assert!(
        (usd - (100.0 * 10.0 + 10.0 * 20.0) / 1e6).abs() < 1e-12,
        "{usd}"
    );
    assert!(events(&s, "worker", "message_failed").is_empty());
}

/// An open circuit on the model is skipped without parking: the message that
/// opened it goes on on the fallback and the orchestrator still gets one
/// escalation; later messages never call the refused model.
#[test]
fn an_open_circuit_moves_to_the_fallback_instead_of_parking() {
    let (primary, backup) = (FakeLlm::start(), FakeLlm::start());
    let s = society(
        &primary,
        &backup,
        r#", circuit_after = 1, circuit_cooldown = "1h""#,
    );
    primary.push([Reply::error(
        401,
        "invalid_api_key",
        "Incorrect API key provided",
    )]);
    backup.push([
        anthropic::text("first", (10, 2)),
        anthropic::text("second", (10, 2)),
    ]);
    let one = s.ok(&["send", "worker", "one"]);
    wait_orchestrator(&s, "the first reply", |r| r["reply_to"] == one.as_str());
    let two = s.ok(&["send", "worker", "two"]);
    let reply = wait_orchestrator(&s, "the second reply", |r| r["reply_to"] == two.as_str());
    assert_eq!(reply["body"]["text"], "second");
    assert_eq!(primary.count(), 1, "the refused model is not called again");
    let esc = wait_until(LONG, "the escalation", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == "escalation")
    });
    assert!(esc["body"]["context"]["circuit"].is_string(), "{esc}");
    let fell = events(&s, "worker", "llm_fallback");
    assert_eq!(fell.len(), 2, "{fell:?}");
    assert!(
        fell[1]["reason"].as_str().unwrap().contains("is open"),
        "{}",
        fell[1]
    );
    assert!(events(&s, "worker", "llm_parked").is_empty());
    assert_eq!(
        records(&s.layout().orchestrator_inbox())
            .iter()
            .filter(|r| r["type"] == "escalation")
            .count(),
        1
    );
    assert_key_nowhere(s.root());
}

/// A fallback entry is checked like a model of its own, at load.
#[test]
fn fallback_entries_are_checked_at_load() {
    let fake = FakeLlm::start();
    for (extra, words) in [
        (
            r#", fallback = [{ provider = "anthropic" }]"#,
            "fallback[0]: give `model`",
        ),
        (
            r#", fallback = [{ model = "m2", temperature = 3.0 }]"#,
            "fallback[0]: `temperature` = 3 is out of range",
        ),
        (
            r#", reasoning_effort = "high", fallback = [{ model = "m2" }, { provider = "anthropic", model = "c", thinking_budget = 10 }]"#,
            "fallback[1]: `thinking_budget` = 10 is out of range",
        ),
        (r#", fallback = ["m2"]"#, "fallback[0]: must be a table"),
    ] {
        let s = Society::new(BIN, &llm_agent("x", &fake, "openai", extra, ""));
        let out = s.run(&["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{extra}: {err}");
        assert!(err.contains(words), "{extra}: {err}");
    }
    // Provider-specific keys stay with their provider: this is valid.
    let ok = r#", reasoning_effort = "high", seed = 3, fallback = [{ provider = "anthropic", model = "c" }]"#;
    let s = Society::new(BIN, &llm_agent("x", &fake, "openai", ok, ""));
    let out = s.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = openai::text("unused", (0, 0));
}
