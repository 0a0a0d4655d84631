//! Milestone gates: a case event named in `[[routing.gate]]` holds the case
//! in `awaiting_gate` until the orchestrator answers; a rejection's notes go
//! to the agents the gate names, the answer to the agent at the gate.

use crate::support::{json_of, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};

const GATED: &str = r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"
backoff_initial = "50ms"

[[routing.gate]]
event = "rough_cut"
revise_to = ["director"]

[[agent]]
id = "editor"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "edit"
actions = [{ do = "case_event", event = "rough_cut", fields = { cut = "{{body.cut}}" } }]
[[agent.brain.rules]]
type = "approval_response"
when = { approved = true }
actions = [{ do = "send", to = "orchestrator", type = "released", body = { gate = "rough_cut" } }]
[[agent.brain.rules]]
type = "approval_response"
when = { approved = false }
actions = [{ do = "case_event", event = "recut", fields = { notes = "{{body.note}}" } }]

[[agent]]
id = "director"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "gate_notes"
actions = [{ do = "case_event", event = "notes_taken", fields = { notes = "{{body.notes}}" } }]
"#;

fn case(s: &Society, id: &str) -> Value {
    json_of(s, &["case", "show", id, "--json"])
}

fn wait_gate(s: &Society, n: usize) -> Value {
    wait_until(SOON, &format!("gate request {n}"), || {
        let v = json_of(s, &["approvals", "--json"]);
        v.as_array()?
            .iter()
            .find(|a| a["kind"] == "gate")
            .cloned()
            .filter(|_| n > 0)
    })
}

fn has_report(s: &Society, c: &str, report: &str) -> Option<Value> {
    case(s, c)["events"]
        .as_array()?
        .iter()
        .find(|e| e["report"] == report)
        .cloned()
}

#[test]
fn a_gate_holds_the_case_until_the_orchestrator_answers() {
    let mut s = Society::new(BIN, GATED);
    s.start_supervisor();
    let c = s.ok(&["case", "new", "episode 1"]);
    let c = c.trim().to_string();
    s.ok(&[
        "send",
        "editor",
        "--type",
        "edit",
        "--json",
        r#"{"cut": "v1"}"#,
        "--case",
        &c,
    ]);
    let req = wait_gate(&s, 1);
    assert_eq!(
        req["body"]["agent"], "editor",
        "asked for the agent at the gate"
    );
    assert_eq!(req["body"]["gate"], "rough_cut");
    assert_eq!(req["body"]["fields"]["cut"], "v1");
    wait_until(SOON, "the case to wait at the gate", || {
        (case(&s, &c)["case"]["status"] == "awaiting_gate").then_some(())
    });

    // Rejected with notes: the director gets them, the editor recuts.
    s.ok(&[
        "reject",
        req["id"].as_str().unwrap(),
        "--feedback",
        "tighter",
    ]);
    let taken = wait_until(SOON, "the director's notes", || {
        has_report(&s, &c, "notes_taken")
    });
    assert_eq!(taken["notes"], "tighter");
    let recut = wait_until(SOON, "the editor's recut", || has_report(&s, &c, "recut"));
    assert_eq!(recut["notes"], "tighter");
    assert_ne!(case(&s, &c)["case"]["status"], "awaiting_gate");

    // The next cut reaches the gate again; approved, the editor releases it.
    s.ok(&[
        "send",
        "editor",
        "--type",
        "edit",
        "--json",
        r#"{"cut": "v2"}"#,
        "--case",
        &c,
    ]);
    let second = wait_until(SOON, "the second gate request", || {
        let v = json_of(&s, &["approvals", "--json"]);
        v.as_array()?
            .iter()
            .find(|a| a["kind"] == "gate" && a["id"] != req["id"])
            .cloned()
    });
    assert_eq!(second["body"]["fields"]["cut"], "v2");
    s.ok(&["approve", second["id"].as_str().unwrap()]);
    wait_until(SOON, "the release", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == "released")
    });
    // Notes went only with the rejection: the director got one message.
    let notes = records(&s.agent("director").inbox())
        .into_iter()
        .filter(|r| r["type"] == "gate_notes")
        .count();
    assert_eq!(notes, 1);
    let awaiting = case(&s, &c)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "awaiting_gate")
        .count();
    assert_eq!(awaiting, 2, "once per time the case reached the gate");
    let fsck = s.ok(&["fsck"]);
    assert!(fsck.contains("clean"), "{fsck}");
}

#[test]
fn a_bad_gate_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let init = std::process::Command::new(BIN)
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(init.status.success());
    std::fs::write(
        dir.path().join("society.toml"),
        "[[routing.gate]]\nevent = \"rough cut\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routing gate 1") && err.contains("rough cut"),
        "{err}"
    );
}

#[test]
fn governance_values_out_of_range_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let init = std::process::Command::new(BIN)
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(init.status.success());
    for (toml, want) in [
        (
            "[autonomy]\nimpact_max = 2.0\n",
            "autonomy.impact_max = 2 is out of range",
        ),
        ("[debate]\nthreshold = -0.1\n", "debate.threshold"),
        (
            "[autonomy.baselines]\nlighting = \"sometimes\"\n",
            "sometimes",
        ),
        (
            "[learning.role.dp]\nmin_similar = 0\n",
            "learning.min_similar",
        ),
    ] {
        std::fs::write(dir.path().join("society.toml"), toml).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["check", "--root"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{toml}: {err}");
    }
}
