//! Broadcasts with acknowledgement (SOCIETY.md O8): every recipient's
//! runtime acknowledges its copy, `broadcast status` says who has; an
//! explicit-ack broadcast waits for the brain's `ack`, and what is still
//! missing at the deadline is escalated to the orchestrator exactly once,
//! across a supervisor killed in the middle of the escalation and again
//! after it.

use crate::support::{code, json_of, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};

const CREW: &str = r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"
backoff_initial = "50ms"

[[agent]]
id = "e1"
brain = "echo"
[[agent]]
id = "e2"
brain = "echo"
[[agent]]
id = "e3"
brain = "echo"

# Acknowledges an explicit broadcast: its brain replies with type `ack`.
[[agent]]
id = "yes"
role = "crew"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "call"
actions = [{ do = "reply", type = "ack", body = { text = "read it" } }]

# Handles the copy but never says `ack`.
[[agent]]
id = "no"
role = "crew"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "call"
actions = [{ do = "reply", body = { text = "busy" } }]
"#;

/// Sends a broadcast; returns its id (said on stderr) and the copies.
fn broadcast(s: &Society, args: &[&str]) -> (String, Vec<(String, String)>) {
    let mut all = vec!["broadcast"];
    all.extend_from_slice(args);
    let (rc, out, err) = code(s, &all);
    assert_eq!(rc, 0, "{out}{err}");
    let id = err
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no id on stderr: {err}"))
        .to_string();
    let copies = out
        .lines()
        .map(|l| {
            let (a, m) = l.split_once(' ').unwrap();
            (a.to_string(), m.to_string())
        })
        .collect();
    (id, copies)
}

fn status(s: &Society, id: &str) -> Value {
    json_of(s, &["broadcast", "status", id, "-o", "json"])
}

/// The escalations in the orchestrator's inbox about broadcast `id`.
fn escalations(s: &Society, id: &str) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "escalation" && r["body"]["context"]["broadcast"] == id)
        .collect()
}

#[test]
fn every_agent_acknowledges_automatically_and_status_shows_who_and_when() {
    let mut s = Society::new(BIN, CREW);
    s.start_supervisor();
    let (id, copies) = broadcast(&s, &["read the bible", "--deadline", "1m"]);
    assert_eq!(copies.len(), 5, "{copies:?}");
    // Each copy is an ordinary message that names its broadcast.
    let inbox = records(&s.agent("e2").inbox());
    let copy = inbox.last().unwrap();
    assert_eq!(copy["body"]["broadcast"]["id"], id.as_str());
    assert_eq!(copy["body"]["broadcast"]["ack"], "auto");
    assert_eq!(copy["body"]["text"], "read the bible");
    let done = wait_until(SOON, "every copy acknowledged", || {
        let v = status(&s, &id);
        (v["state"] == "complete").then_some(v)
    });
    assert_eq!(done["acked"], 5);
    assert_eq!(done["missing"], serde_json::json!([]));
    for r in done["recipients"].as_array().unwrap() {
        assert_eq!(r["acked"], true, "{r}");
        assert_eq!(r["how"], "auto", "{r}");
        assert!(r["ack_ts"].is_string(), "{r}");
        let agent = r["agent"].as_str().unwrap();
        let (_, message) = copies.iter().find(|(a, _)| a == agent).unwrap();
        assert_eq!(r["message"], message.as_str(), "{r}");
    }
    // One ack line per agent, however the copies were handled.
    let acks = records(&s.layout().broadcast_log())
        .into_iter()
        .filter(|r| r["event"] == "ack" && r["broadcast"] == id.as_str())
        .count();
    assert_eq!(acks, 5);
    let table = s.ok(&["broadcast", "status", &id]);
    assert!(table.contains("5 of 5 acknowledged, complete"), "{table}");
    let list = json_of(&s, &["broadcast", "list", "-o", "json"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == id.as_str() && b["state"] == "complete"),
        "{list}"
    );
    assert!(escalations(&s, &id).is_empty());
}

/// Bad input: a body that already has the `broadcast` field, an unknown
/// id, a deadline that is no duration.
#[test]
fn bad_broadcasts_are_refused_with_the_reason() {
    let s = Society::new(BIN, CREW);
    let (rc, _, err) = code(
        &s,
        &["broadcast", "--json", r#"{"broadcast": 1}"#, "--no-start"],
    );
    assert_eq!(rc, 5, "{err}");
    assert!(err.contains("may not have a \"broadcast\" field"), "{err}");
    let (rc, _, err) = code(&s, &["broadcast", "status", "01J00000000000000000000000"]);
    assert_eq!(rc, 4, "{err}");
    assert!(err.contains("no broadcast with that id"), "{err}");
    let (rc, _, err) = code(&s, &["broadcast", "x", "--deadline", "soon"]);
    assert_eq!(rc, 2, "{err}");
    for out_of_range in ["0s", "2years"] {
        let (rc, _, err) = code(&s, &["broadcast", "x", "--deadline", out_of_range]);
        assert_eq!(rc, 2, "{err}");
        assert!(err.contains("is out of range"), "{err}");
    }
    assert!(
        records(&s.layout().broadcast_log()).is_empty(),
        "nothing recorded"
    );
}

#[test]
fn a_missing_explicit_ack_escalates_once_across_supervisor_crashes() {
    let mut s = Society::new(BIN, CREW);
    // The supervisor aborts right after saving the escalation's write-ahead
    // record, before appending any of it.
    let fault = [("SOCIETY_FAULTS", "supervisor.direct.ahead")];
    s.start_supervisor_with(&fault);
    let (id, copies) = broadcast(
        &s,
        &[
            "call sheet for tomorrow",
            "--type",
            "call",
            "--role",
            "crew",
            "--ack",
            "explicit",
            "--deadline",
            "1s",
        ],
    );
    assert_eq!(copies.len(), 2);
    wait_until(SOON, "the supervisor to crash while escalating", || {
        s.supervisor_exited().then_some(())
    });
    assert!(
        escalations(&s, &id).is_empty(),
        "nothing was appended before the crash"
    );
    s.start_supervisor();
    let esc = wait_until(SOON, "the escalation", || {
        escalations(&s, &id).into_iter().next()
    });
    assert_eq!(esc["body"]["context"]["missing"], serde_json::json!(["no"]));
    let reason = esc["body"]["reason"].as_str().unwrap();
    assert!(reason.contains("not acknowledged by no "), "{reason}");
    let v = status(&s, &id);
    assert_eq!(v["state"], "escalated", "{v}");
    assert_eq!(v["missing"], serde_json::json!(["no"]));
    let yes = v["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agent"] == "yes")
        .cloned()
        .unwrap();
    assert_eq!(yes["how"], "explicit", "{v}");
    assert_eq!(v["escalated"]["escalation"], esc["id"]);
    // The brain's `ack` went to the supervisor, not to the orchestrator;
    // the other brain's reply is an ordinary reply.
    let orch = records(&s.layout().orchestrator_inbox());
    assert!(!orch.iter().any(|r| r["type"] == "ack"), "{orch:?}");
    assert!(orch
        .iter()
        .any(|r| r["from"] == "no" && r["type"] == "reply"));
    // Killed again and restarted, the supervisor folds the log and does
    // not escalate a second time. A later broadcast's escalation proves the
    // new supervisor's clock has run over the first one.
    s.kill_supervisor();
    s.start_supervisor();
    let (later, _) = broadcast(
        &s,
        &[
            "wrap",
            "--type",
            "call",
            "--role",
            "crew",
            "--ack",
            "explicit",
            "--deadline",
            "1s",
        ],
    );
    wait_until(SOON, "the later broadcast's escalation", || {
        escalations(&s, &later).into_iter().next()
    });
    assert_eq!(escalations(&s, &id).len(), 1, "escalated exactly once");
    let lines = records(&s.layout().broadcast_log())
        .into_iter()
        .filter(|r| r["event"] == "escalated" && r["broadcast"] == id.as_str())
        .count();
    assert_eq!(lines, 1);
}

#[test]
fn a_stopped_agent_is_escalated_and_its_late_ack_still_counts() {
    let mut s = Society::new(BIN, CREW);
    s.start_supervisor();
    s.ok(&["stop", "e3"]);
    let (id, copies) = broadcast(&s, &["all hands", "--deadline", "1s"]);
    assert_eq!(
        copies.len(),
        5,
        "the stopped agent's copy waits in its inbox"
    );
    let esc = wait_until(SOON, "the escalation", || {
        escalations(&s, &id).into_iter().next()
    });
    assert_eq!(esc["body"]["context"]["missing"], serde_json::json!(["e3"]));
    let v = status(&s, &id);
    assert_eq!(
        (v["state"].as_str(), v["acked"].as_u64()),
        (Some("escalated"), Some(4))
    );
    // Started again, it handles the copy and acknowledges, late.
    s.ok(&["restart", "e3"]);
    let v = wait_until(SOON, "the late ack", || {
        let v = status(&s, &id);
        (v["state"] == "complete").then_some(v)
    });
    assert!(
        v["escalated"].is_object(),
        "the escalation stays on record: {v}"
    );
    assert_eq!(escalations(&s, &id).len(), 1);
}

#[test]
fn an_agent_killed_after_writing_its_ack_replays_the_copy_without_a_second_ack() {
    let mut s = Society::new(BIN, CREW);
    // Each agent aborts right after appending a message's outputs (the ack
    // among them), before its checkpoint says the copy was handled.
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "agent.outputs.written")]);
    let (id, _) = broadcast(&s, &["once only", "--role", "e1", "--deadline", "1m"]);
    let done = wait_until(SOON, "the ack", || {
        let v = status(&s, &id);
        (v["state"] == "complete").then_some(v)
    });
    assert_eq!(done["acked"], 1);
    let handled = wait_until(SOON, "the copy handled", || {
        let a = records(&s.agent("e1").activity());
        let n = a.iter().filter(|r| r["event"] == "message_handled").count();
        (n >= 1).then_some(a)
    });
    assert!(
        handled.iter().filter(|r| r["event"] == "started").count() >= 2,
        "the agent crashed after its outputs and was restarted"
    );
    let acks: Vec<_> = records(&s.agent("e1").outbox())
        .into_iter()
        .filter(|r| r["type"] == "ack")
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    let logged = records(&s.layout().broadcast_log())
        .into_iter()
        .filter(|r| r["event"] == "ack")
        .count();
    assert_eq!(logged, 1);
}

#[test]
fn a_deadline_that_passed_while_no_supervisor_ran_escalates_when_one_starts() {
    let mut s = Society::new(BIN, CREW);
    // The supervisor provisions the agents of society.toml, then is gone.
    s.start_supervisor();
    s.stop_supervisor();
    let (id, copies) = broadcast(
        &s,
        &[
            "call",
            "--type",
            "call",
            "--role",
            "crew",
            "--ack",
            "explicit",
            "--deadline",
            "1s",
            "--no-start",
        ],
    );
    assert_eq!(copies.len(), 2);
    let due = status(&s, &id)["deadline"].as_str().unwrap().to_string();
    let due = society_core::time::parse_rfc3339(&due).unwrap();
    wait_until(SOON, "the deadline to pass", || {
        (std::time::SystemTime::now() > due).then_some(())
    });
    assert!(
        escalations(&s, &id).is_empty(),
        "no supervisor, nothing escalated yet"
    );
    s.start_supervisor();
    let esc = wait_until(SOON, "the escalation at start", || {
        escalations(&s, &id).into_iter().next()
    });
    // Both were missing when it started: their agents had not run yet.
    let missing = esc["body"]["context"]["missing"].as_array().unwrap().len();
    assert!(missing >= 1, "{esc}");
    assert_eq!(escalations(&s, &id).len(), 1);
}
