//! `society review`: the list, a verdict, and the refusals.

use super::fixture::{append, assessed, decisions_fixture};
use crate::support::{code, json_of, BIN};
use serde_json::{json, Value};
use society_core::{Envelope, MsgId, Party};
use society_testkit::Society;

#[test]
fn review_lists_unreviewed_autonomous_decisions_and_sends_a_verdict() {
    let s = Society::new(BIN, "");
    decisions_fixture(&s);
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Autonomous but not carried out yet: nothing to review.
    append(
        &s.agent("dp").decisions(),
        &assessed(
            "05:00:00",
            "d5",
            "dp",
            "ep-3",
            "shot",
            "autonomous",
            0.9,
            None,
        ),
    );
    let list = json_of(&s, &["review", "-o", "json"]);
    assert_eq!(ids(&list), ["d4", "e3"], "{list:#}");
    assert_eq!(list[1]["agent"], "director");
    assert_eq!(list[1]["case"], "ep-2");
    assert_eq!(list[1]["decision_type"], "shot");
    assert_eq!(list[1]["plan"], "plan of e3");
    let only = json_of(&s, &["review", "--agent", "dp", "-o", "json"]);
    assert_eq!(ids(&only), ["d4"]);
    let table = s.ok(&["review"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("e3") && l.contains("plan of e3")),
        "{table}"
    );

    let inbox = s.agent("director").inbox();
    let before = std::fs::read_to_string(&inbox).unwrap_or_default();
    let (rc, out, err) = code(
        &s,
        &[
            "review",
            "e3",
            "--ok",
            "--feedback",
            "good call",
            "--quality",
            "0.9",
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    let id: MsgId = out.trim().parse().unwrap();
    let after = std::fs::read_to_string(&inbox).unwrap();
    let line = &after[before.len()..];
    assert_eq!(line.lines().count(), 1, "one message: {line}");
    let env = Envelope::parse(line.trim_end().as_bytes()).unwrap();
    assert_eq!(env.id, id);
    assert_eq!(env.kind, "decision_review");
    assert_eq!(env.from, Party::Orchestrator);
    assert_eq!(env.to, Party::Agent("director".parse().unwrap()));
    assert_eq!(
        env.body,
        json!({"decision": "e3", "ok": true, "feedback": "good call", "quality": 0.9})
    );
    let mirror = std::fs::read_to_string(s.layout().agent_to_agent()).unwrap();
    assert!(mirror.contains(&id.to_string()), "mirrored as `send` does");

    // Sent, not yet logged by the agent: no longer listed, and not twice.
    assert_eq!(ids(&json_of(&s, &["review", "-o", "json"])), ["d4"]);
    let (rc, _, err) = code(&s, &["review", "e3", "--veto"]);
    assert_eq!(rc, 10, "{err}");
    assert!(
        err.contains("decision e3 was already reviewed") && err.contains("inbox"),
        "{err}"
    );

    for (args, rc, says) in [
        (
            vec!["review", "e2", "--veto"],
            10,
            "decision e2 was already approved",
        ),
        (
            vec!["review", "d1", "--ok"],
            5,
            "it is requires_approval, not autonomous",
        ),
        (
            vec!["review", "e4", "--ok"],
            5,
            "it is collaborative, not autonomous",
        ),
        (vec!["review", "nope", "--ok"], 4, "no decision nope"),
        (vec!["review", "d5", "--ok"], 5, "it is not carried out yet"),
        (
            vec!["review", "d4", "--veto", "--quality", "1.5"],
            2,
            "out of range (0 to 1)",
        ),
        (vec!["review", "d4"], 2, "--ok|--veto"),
        (
            vec!["review", "d4", "--ok", "--veto"],
            2,
            "cannot be used with",
        ),
        (vec!["review", "--agent", "ghost"], 4, "no agent ghost"),
    ] {
        let (code_, out, err) = code(&s, &args);
        assert_eq!(code_, rc, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {says:?} in {err}");
    }
    let unchanged = std::fs::read_to_string(&inbox).unwrap();
    assert_eq!(unchanged, after, "a refused review sends nothing");
    let sent = json_of(
        &s,
        &[
            "review",
            "d4",
            "--veto",
            "--feedback",
            "ask first",
            "-o",
            "json",
        ],
    );
    assert_eq!(sent["decision"], "d4");
    assert_eq!(sent["agent"], "dp");
    let dp_inbox = std::fs::read_to_string(s.agent("dp").inbox()).unwrap();
    assert!(
        dp_inbox.contains(r#""ok":false"#) && dp_inbox.contains("ask first"),
        "{dp_inbox}"
    );
    assert!(dp_inbox.contains(sent["message"].as_str().unwrap()));
    assert_eq!(s.ok(&["review"]), "no autonomous decisions awaiting review");
}
