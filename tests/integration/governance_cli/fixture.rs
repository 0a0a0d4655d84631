//! The hand-written files the governance tests share: decision records and
//! the two-case fixture whose figures the metrics test computes by hand.

use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_testkit::Society;
use std::path::Path;

pub fn append(path: &Path, rec: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    append_one(
        path,
        &serde_json::to_vec(rec).unwrap(),
        Durability::Flushed,
        usize::MAX,
    )
    .unwrap();
}

pub fn append_raw(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
        .unwrap();
}

pub const DAY: &str = "2026-11-30";

pub fn at(hms: &str) -> String {
    format!("{DAY}T{hms}.000Z")
}

/// An `assessed` record.
#[allow(clippy::too_many_arguments)]
pub fn assessed(
    ts: &str,
    id: &str,
    agent: &str,
    case: &str,
    kind: &str,
    level: &str,
    confidence: f64,
    parent: Option<&str>,
) -> Value {
    json!({"ts": at(ts), "event": "assessed", "decision": id, "agent": agent, "msg": "m",
           "case": case, "decision_type": kind, "level": level, "rule": "baseline",
           "baseline": level,
           "scores": {"impact": 0.2, "confidence": confidence, "risk": 0.1,
                      "pattern_match": 0.5, "pattern_confidence": 0.0},
           "preference": "balanced", "context": {"plan": format!("plan of {id}")},
           "features": {}, "revision": if parent.is_some() { 2 } else { 1 }, "parent": parent})
}

pub fn resolved(ts: &str, id: &str, approved: bool, approver: &str) -> Value {
    json!({"ts": at(ts), "event": "resolved", "decision": id, "approved": approved,
           "approver": approver, "outcome": if approved { "executed" } else { "denied" },
           "feedback": null, "quality": null, "collaboration": null, "reason": null})
}

pub fn asked(ts: &str, id: &str) -> Value {
    json!({"ts": at(ts), "event": "approval_requested", "decision": id, "request": "r"})
}

/// Two agents, two cases (ep-1: dp, 3 of 4 asked for approval; ep-2:
/// director, 1 of 4), written so that file order (director's file first)
/// is not the order of the cases' first decisions.
///
/// | id | case | level | type | conf | asked | resolved |
/// |---|---|---|---|---|---|---|
/// | d1 | ep-1 | requires_approval | narrative | 0.5 | yes | approved |
/// | d2 | ep-1 | requires_approval | narrative | 0.5 | yes | denied |
/// | d3 | ep-1 | collaborative | lighting | 0.6 | yes (expired debate) | approved |
/// | d4 | ep-1 | autonomous | shot | 0.8 | | self (unreviewed) |
/// | e1 | ep-2 | requires_approval | narrative | 0.5 | yes | denied |
/// | e2 | ep-2 | autonomous | shot | 0.9 | | self, reviewed ok |
/// | e3 | ep-2 | autonomous | shot | 0.9 | | self (unreviewed) |
/// | e4 | ep-2 | collaborative | narrative | 0.7 | (debated, consensus) | debate, revises e1 |
pub fn decisions_fixture(s: &Society) {
    s.ok(&["spawn", "director", "--id", "director", "--no-start"]);
    s.ok(&["spawn", "dp", "--id", "dp", "--no-start"]);
    let dp = s.agent("dp").decisions();
    for rec in [
        assessed(
            "03:00:00",
            "d1",
            "dp",
            "ep-1",
            "narrative",
            "requires_approval",
            0.5,
            None,
        ),
        asked("03:00:01", "d1"),
        resolved("03:00:10", "d1", true, "orchestrator"),
        assessed(
            "03:01:00",
            "d2",
            "dp",
            "ep-1",
            "narrative",
            "requires_approval",
            0.5,
            None,
        ),
        asked("03:01:01", "d2"),
        resolved("03:01:30", "d2", false, "orchestrator"),
        json!({"ts": at("03:01:40"), "event": "refused", "msg": "m9",
               "error": "invalid decision proposal: missing field \"scope\""}),
        assessed(
            "03:02:00",
            "d3",
            "dp",
            "ep-1",
            "lighting",
            "collaborative",
            0.6,
            None,
        ),
        json!({"ts": at("03:02:01"), "event": "debate_requested", "decision": "d3",
               "participants": ["dp", "director"]}),
        asked("03:07:00", "d3"),
        resolved("03:08:00", "d3", true, "orchestrator"),
        assessed(
            "03:09:00",
            "d4",
            "dp",
            "ep-1",
            "shot",
            "autonomous",
            0.8,
            None,
        ),
        resolved("03:09:01", "d4", true, "self"),
        json!({"ts": at("03:09:02"), "event": "a_future_event", "decision": "d4"}),
    ] {
        append(&dp, &rec);
    }
    let director = s.agent("director").decisions();
    for rec in [
        assessed(
            "04:00:00",
            "e1",
            "director",
            "ep-2",
            "narrative",
            "requires_approval",
            0.5,
            None,
        ),
        asked("04:00:01", "e1"),
        resolved("04:00:30", "e1", false, "orchestrator"),
        assessed(
            "04:01:00",
            "e2",
            "director",
            "ep-2",
            "shot",
            "autonomous",
            0.9,
            None,
        ),
        resolved("04:01:01", "e2", true, "self"),
        json!({"ts": at("04:05:00"), "event": "reviewed", "decision": "e2", "ok": true,
               "feedback": null, "quality": 0.8}),
        assessed(
            "04:02:00",
            "e3",
            "director",
            "ep-2",
            "shot",
            "autonomous",
            0.9,
            None,
        ),
        resolved("04:02:01", "e3", true, "self"),
        assessed(
            "04:03:00",
            "e4",
            "director",
            "ep-2",
            "narrative",
            "collaborative",
            0.7,
            Some("e1"),
        ),
        json!({"ts": at("04:03:01"), "event": "debate_requested", "decision": "e4",
               "participants": ["director", "dp"]}),
        resolved("04:04:00", "e4", true, "debate"),
    ] {
        append(&director, &rec);
    }
    // The agent died mid-line: a torn tail is not a record.
    append_raw(
        &director,
        b"{\"ts\":\"2026-11-30T04:09:00.000Z\",\"event\":\"assessed\",\"decis",
    );
}
