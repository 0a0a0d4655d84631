//! `society deadletter list` and `retry`: a message dead-lettered because of
//! a bad key goes back once the key is fixed, and is handled exactly once.

use crate::llm_brain::support::{llm_agent, start, SOON};
use serde_json::Value;
use society_core::jsonl::{append_one, Durability};
use society_testkit::fake_llm::{openai, FakeLlm, Reply};
use society_testkit::{records, wait_until, Society};

fn letters(s: &Society) -> Vec<Value> {
    serde_json::from_str(&s.ok(&["deadletter", "list", "--json"])).unwrap()
}

fn handled(s: &Society, id: &str) -> usize {
    records(&s.agent("writer").activity())
        .iter()
        .filter(|r| r["event"] == "message_handled" && r["id"] == id)
        .count()
}

fn wait_dead(s: &Society, id: &str) {
    wait_until(SOON, "the dead letter", || {
        letters(s)
            .iter()
            .any(|l| l["id"] == id && l["event"] == "dead_lettered")
            .then_some(())
    });
}

/// The reply, once the handling that sent it is logged.
fn wait_reply(s: &Society, id: &str) -> Value {
    wait_until(SOON, "the reply to the retried message", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == "reply" && r["reply_to"] == id)
            .filter(|_| handled(s, id) > 0)
    })
}

#[test]
fn a_dead_letter_goes_back_once_the_key_is_fixed_and_is_handled_once() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "writer",
        &fake,
        "openai",
        "",
        "max_attempts = 1",
    ));
    let refused = || Reply::error(401, "invalid_api_key", "Incorrect API key provided");
    fake.push([refused()]);
    let id = s.ok(&["send", "writer", "write it"]);
    wait_dead(&s, &id);
    let listed = letters(&s);
    let letter = listed.iter().find(|l| l["id"] == id.as_str()).unwrap();
    assert_eq!(letter["agent"], "writer");
    assert_eq!(letter["from"], "orchestrator");
    assert_eq!(letter["retryable"], true);
    assert!(
        letter["reason"].as_str().unwrap().contains("401"),
        "{letter}"
    );
    let table = s.ok(&["deadletter", "list", "writer"]);
    assert!(table.contains(&id) && table.contains("yes"), "{table}");

    // The key is fixed: the model answers.
    fake.push([openai::text("written", (10, 5))]);
    assert_eq!(s.ok(&["deadletter", "retry", &id]), format!("writer {id}"));
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["body"]["text"], "written");
    assert_eq!(handled(&s, &id), 1);
    let retried: Vec<Value> = records(&s.agent("writer").deadletter())
        .into_iter()
        .filter(|r| r["event"] == "dead_letter_retried")
        .collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0]["id"], id.as_str());

    // Handled: never again, whether asked to or sent a copy of it.
    let again = s.run(&["deadletter", "retry", &id]);
    assert_eq!(again.status.code(), Some(10), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already handled"));
    let line = records(&s.agent("writer").deadletter())
        .into_iter()
        .find(|r| r["event"] == "dead_lettered")
        .unwrap()["line"]
        .as_str()
        .unwrap()
        .to_string();
    append_one(
        &s.agent("writer").inbox(),
        line.as_bytes(),
        Durability::Durable,
        usize::MAX,
    )
    .unwrap();
    wait_until(SOON, "the copy dropped", || {
        records(&s.agent("writer").activity())
            .iter()
            .any(|r| r["event"] == "duplicate_dropped" && r["id"] == id.as_str())
            .then_some(())
    });
    assert_eq!(handled(&s, &id), 1);
    assert_eq!(fake.count(), 2, "one refused call, one answered");
    let unknown = s.run(&["deadletter", "retry", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert_eq!(unknown.status.code(), Some(4));
    s.stop_supervisor();
}

#[test]
fn retry_all_puts_back_every_dead_letter_of_an_agent() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "writer",
        &fake,
        "openai",
        "",
        "max_attempts = 1",
    ));
    let refused = || Reply::error(401, "invalid_api_key", "Incorrect API key provided");
    fake.push([refused(), refused()]);
    let a = s.ok(&["send", "writer", "one"]);
    wait_dead(&s, &a);
    let b = s.ok(&["send", "writer", "two"]);
    wait_dead(&s, &b);
    fake.push([openai::text("1", (1, 1)), openai::text("2", (1, 1))]);
    let out = s.ok(&["deadletter", "retry", "--all", "writer"]);
    assert_eq!(out, format!("writer {a}\nwriter {b}"));
    wait_reply(&s, &a);
    wait_reply(&s, &b);
    assert_eq!((handled(&s, &a), handled(&s, &b)), (1, 1));
    assert_eq!(
        s.ok(&["deadletter", "retry", "--all", "writer"]),
        "nothing to retry for writer"
    );
    assert!(letters(&s).iter().all(|l| l["retryable"] == false));
    s.stop_supervisor();
}
