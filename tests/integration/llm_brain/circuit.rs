//! Issue 11 item 9: repeated refused keys open a circuit breaker shared by
//! every agent on the provider; messages park instead of burning attempts
//! or dead-lettering; one escalation tells the orchestrator; `society llm
//! reset` (or a successful probe after the cooldown) closes it.

use super::support::*;
use crate::support::json_of;
use society_testkit::fake_llm::{openai, FakeLlm, Reply};
use society_testkit::{records, wait_until};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn refused() -> Reply {
    Reply::error(401, "invalid_api_key", "Incorrect API key provided")
}

/// Escalations about a circuit (the first message's dead letter is escalated too).
fn escalations(s: &society_testkit::Society) -> Vec<serde_json::Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "escalation" && r["body"]["context"]["circuit"].is_string())
        .collect()
}

/// Two agents on one provider and key, `circuit_after = 2`: the first
/// refusal dead-letters its message; the second opens the circuit, parks its
/// message and escalates once; nothing more reaches the provider until
/// `society llm reset`, after which every parked and queued message is
/// answered once.
#[test]
fn refused_keys_open_the_circuit_park_messages_and_reset_closes_it() {
    let fake = FakeLlm::start();
    let extra = r#", circuit_after = 2, circuit_cooldown = "1h""#;
    let toml = format!(
        "{}{}",
        llm_agent("alpha", &fake, "openai", extra, "max_attempts = 3"),
        llm_agent("beta", &fake, "openai", extra, "max_attempts = 3")
    );
    let mut s = start(&toml);
    // Exactly the two refusals: a third call would get the fake's 500.
    fake.push([refused(), refused()]);
    let first = s.ok(&["send", "alpha", "one"]);
    wait_until(LONG, "the first message dead-lettered", || {
        (events(&s, "alpha", "message_dead_lettered").len() == 1).then_some(())
    });
    let second = s.ok(&["send", "beta", "two"]);
    let parked = wait_until(LONG, "beta parks its message", || {
        events(&s, "beta", "llm_parked").pop()
    });
    assert_eq!(parked["id"], second.as_str());
    assert_eq!(parked["failures"], 2);
    let third = s.ok(&["send", "alpha", "three"]);
    let fourth = s.ok(&["send", "beta", "four"]);
    wait_until(LONG, "alpha parks too", || {
        events(&s, "alpha", "llm_parked").pop()
    });
    let esc = wait_until(SOON, "one escalation", || escalations(&s).pop());
    let reason = esc["body"]["reason"].as_str().unwrap();
    assert!(reason.contains("society llm reset"), "{reason}");
    assert_eq!(fake.count(), 2, "nothing is sent while the circuit is open");
    // Parked, not failed: no attempts spent, nothing dead-lettered.
    assert!(events(&s, "beta", "message_failed").is_empty());
    assert_eq!(events(&s, "alpha", "message_dead_lettered").len(), 1);

    let status = json_of(&s, &["llm", "status", "--json"]);
    let circuits = status.as_array().unwrap();
    assert_eq!(circuits.len(), 1, "{status}");
    assert_eq!(circuits[0]["open"], true);
    assert_eq!(circuits[0]["failures"], 2);
    assert_eq!(circuits[0]["opened_by"], "beta");
    let name = circuits[0]["name"].as_str().unwrap().to_string();
    assert!(s.ok(&["llm", "status"]).contains(&name));

    // The key is fixed: the provider answers again.
    assert_eq!(fake.left(), 0);
    fake.push((0..3).map(|i| openai::text(&format!("answer {i}"), (5, 2))));
    let said = s.ok(&["llm", "reset", &name]);
    assert!(
        said.contains(&format!("closed {name} (2 refusals, was open)")),
        "{said}"
    );
    for id in [&second, &third, &fourth] {
        wait_until(LONG, &format!("a reply to {id}"), || {
            records(&s.layout().orchestrator_inbox())
                .into_iter()
                .find(|r| r["type"] == "reply" && r["reply_to"] == id.as_str())
        });
    }
    assert_eq!(fake.count(), 2 + 3);
    let all = escalations(&s);
    assert_eq!(
        all.len(),
        1,
        "one escalation, not one per message: {all:#?}"
    );
    assert!(events(&s, "beta", "llm_unparked")
        .iter()
        .any(|e| e["how"] == "closed"));
    assert_eq!(
        json_of(&s, &["llm", "status", "--json"]),
        serde_json::json!([])
    );
    // The first message stays a dead letter, retryable once the key works.
    assert!(s
        .ok(&["deadletter", "list", "alpha"])
        .contains(first.as_str()));
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

/// After `circuit_cooldown` one parked agent probes; a success closes the
/// circuit without `llm reset`, and an unknown circuit name is an error.
#[test]
fn a_successful_probe_closes_the_circuit() {
    let fake = FakeLlm::start();
    let toml = llm_agent(
        "solo",
        &fake,
        "openai",
        r#", circuit_after = 1, circuit_cooldown = "2s""#,
        "max_attempts = 3",
    );
    let mut s = start(&toml);
    fake.push([refused(), openai::text("back", (5, 2))]);
    let id = s.ok(&["send", "solo", "hello"]);
    wait_until(LONG, "parked", || events(&s, "solo", "llm_parked").pop());
    let reply = wait_until(LONG, "the reply after the probe", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == "reply" && r["reply_to"] == id.as_str())
    });
    assert_eq!(reply["body"]["text"], "back");
    let unparked = events(&s, "solo", "llm_unparked");
    assert_eq!(unparked[0]["how"], "probe", "{unparked:?}");
    let closed = events(&s, "solo", "llm_circuit_closed");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["was_open"], true);
    assert_eq!(fake.count(), 2);
    let out = s.run(&["llm", "reset", "nope"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no circuit named \"nope\""), "{err}");
    s.stop_supervisor();
}
