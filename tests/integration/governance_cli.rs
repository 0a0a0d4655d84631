//! The orchestrator's governance commands against hand-written files:
//! `policy show|set`, `review` (list and verdict) and `metrics`, whose
//! figures are computed by hand below for a small fixture.

use crate::support::{code, json_of, BIN};
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{CaseId, Envelope, MsgId, Party};
use society_testkit::Society;
use std::path::Path;

fn append(path: &Path, rec: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    append_one(
        path,
        &serde_json::to_vec(rec).unwrap(),
        Durability::Flushed,
        usize::MAX,
    )
    .unwrap();
}

fn append_raw(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
        .unwrap();
}

const DAY: &str = "2026-11-30";

fn at(hms: &str) -> String {
    format!("{DAY}T{hms}.000Z")
}

/// An `assessed` record.
#[allow(clippy::too_many_arguments)]
fn assessed(
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

fn resolved(ts: &str, id: &str, approved: bool, approver: &str) -> Value {
    json!({"ts": at(ts), "event": "resolved", "decision": id, "approved": approved,
           "approver": approver, "outcome": if approved { "executed" } else { "denied" },
           "feedback": null, "quality": null, "collaboration": null, "reason": null})
}

fn asked(ts: &str, id: &str) -> Value {
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
fn decisions_fixture(s: &Society) {
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

#[test]
fn policy_set_validates_logs_and_shows_per_role() {
    let s = Society::new(
        BIN,
        "[autonomy]\nimpact_max = 0.7\n\n[autonomy.role.director]\ncore_expertise = [\"shot\"]\n",
    );
    s.ok(&["spawn", "dp", "--id", "dp", "--no-start"]);
    let layout = s.layout();

    let shown = json_of(&s, &["policy", "show", "-o", "json"]);
    assert_eq!(shown["version"], 0, "{shown:#}");
    assert_eq!(shown["policy"]["autonomy"]["impact_max"], 0.7);
    assert_eq!(
        shown["roles"]["director"]["autonomy"]["core_expertise"],
        json!(["shot"])
    );
    assert_eq!(
        shown["roles"]["dp"]["autonomy"]["core_expertise"],
        json!([]),
        "dp has no override"
    );
    assert_eq!(shown["changes"], json!([]));

    let out = s.ok(&["policy", "set", "autonomy.risk_max", "0.6"]);
    assert_eq!(out, "autonomy.risk_max: 0.8 (default) → 0.6");
    let out = s.ok(&[
        "policy",
        "set",
        "autonomy.role.director.baselines.lighting",
        "autonomous",
    ]);
    assert_eq!(
        out,
        "autonomy.role.director.baselines.lighting: (unset) → autonomous"
    );
    let out = s.ok(&["policy", "set", "autonomy.impact_max", "0.75"]);
    assert_eq!(out, "autonomy.impact_max: 0.7 → 0.75");

    let log = std::fs::read_to_string(layout.policy_log()).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    for (args, names) in [
        (
            ["autonomy.impact_max", "1.5"],
            ["autonomy.impact_max", "0 to 1"],
        ),
        (["autonomy.impact_maxx", "0.5"], ["impact_maxx", "unknown"]),
        (["debate.threshold", "-1"], ["debate.threshold", "0 to 1"]),
        (
            ["nothing.at_all", "1"],
            ["unknown policy key", "nothing.at_all"],
        ),
        (
            ["autonomy.role.director.baselines.lighting", "sometimes"],
            ["lighting", "sometimes"],
        ),
    ] {
        let (rc, out, err) = code(&s, &["policy", "set", args[0], args[1]]);
        assert_eq!(rc, 5, "{args:?}: {out}{err}");
        for n in names {
            assert!(err.contains(n), "{args:?}: {n:?} in {err}");
        }
        assert!(err.contains("nothing was changed"), "{err}");
    }
    let after = std::fs::read_to_string(layout.policy_log()).unwrap();
    assert_eq!(after, log, "a refused value is not logged");

    let shown = json_of(&s, &["policy", "show", "-o", "json"]);
    assert_eq!(shown["version"], 3);
    assert_eq!(shown["source"], "policy.json");
    assert_eq!(shown["policy"]["autonomy"]["risk_max"], 0.6);
    assert_eq!(shown["policy"]["autonomy"]["impact_max"], 0.75);
    let director = &shown["roles"]["director"]["autonomy"];
    assert_eq!(director["baselines"]["lighting"], "autonomous");
    assert_eq!(
        director["risk_max"], 0.6,
        "a base change reaches every role"
    );
    assert_eq!(shown["roles"]["dp"]["autonomy"]["baselines"], json!({}));
    let changes = shown["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[2]["key"], "autonomy.impact_max");
    assert_eq!(changes[2]["previous"], 0.7);
    assert_eq!(changes[2]["value"], 0.75);

    let one = json_of(&s, &["policy", "show", "--role", "director", "-o", "json"]);
    assert_eq!(one["roles"].as_object().unwrap().len(), 1, "{one:#}");
    let table = s.ok(&["policy", "show", "--role", "director"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("autonomy.baselines.lighting") && l.contains("autonomous")),
        "{table}"
    );
    let table = s.ok(&["policy", "show"]);
    assert!(
        table.contains("director  autonomy.baselines.lighting"),
        "{table}"
    );

    // society.toml edited since policy.json was published: show says so,
    // and still shows what agents read.
    std::fs::write(
        s.root().join("society.toml"),
        "[autonomy]\nimpact_max = 0.5\n",
    )
    .unwrap();
    let (rc, out, err) = code(&s, &["policy", "show", "-o", "json"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("differs from the published policy.json"),
        "{err}"
    );
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["policy"]["autonomy"]["impact_max"], 0.75);

    let nowhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["policy", "show"])
        .current_dir(nowhere.path())
        .env_remove("SOCIETY_ROOT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("society init"));
}

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

/// An approval request at `asked`, answered at `answered` (if any).
fn approval(s: &Society, asked: &str, answered: Option<&str>) {
    let layout = s.layout();
    let mut req = Envelope::new(
        "dp".parse().unwrap(),
        Party::Orchestrator,
        "approval_request",
        json!({"plan": "p", "rationale": "r"}),
    );
    req.ts = at(asked);
    append(
        &layout.orchestrator_inbox(),
        &serde_json::to_value(&req).unwrap(),
    );
    if let Some(answered) = answered {
        let decide = society_runtime::control::Request::Decide {
            request: req.id,
            approve: true,
            note: None,
        };
        let mut env = Envelope::new(
            Party::Orchestrator,
            Party::Supervisor,
            "control",
            serde_json::to_value(&decide).unwrap(),
        );
        env.ts = at(answered);
        append(
            &layout.supervisor_inbox(),
            &serde_json::to_value(&env).unwrap(),
        );
    }
}

fn case_log(s: &Society, case: &str, records: &[Value]) {
    let path = s.layout().case_log(&CaseId::new(case).unwrap());
    for r in records {
        append(&path, r);
    }
}

#[test]
fn metrics_fold_the_files_into_hand_computed_figures() {
    let s = Society::new(BIN, "");
    decisions_fixture(&s);
    // Latencies 10 s, 30 s, 120 s; one request still pending.
    approval(&s, "03:00:00", Some("03:00:10"));
    approval(&s, "03:01:00", Some("03:01:30"));
    approval(&s, "03:02:00", Some("03:04:00"));
    approval(&s, "03:05:00", None);
    let opened = |ts: &str| {
        json!({"ts": at(ts), "event": "debate_opened", "agent": "supervisor",
        "plan": {}, "participants": ["dp", "director"], "time_limit_s": 300, "threshold": 0.8})
    };
    case_log(
        &s,
        "debate-a",
        &[
            opened("03:02:01"),
            json!({"ts": at("03:02:41"), "event": "consensus", "agent": "supervisor",
               "agreed_plan": {}, "agreement": 1.0, "duration_ms": 40000, "iterations": 1}),
        ],
    );
    case_log(
        &s,
        "debate-b",
        &[
            opened("03:02:02"),
            json!({"ts": at("03:07:02"), "event": "debate_expired", "agent": "supervisor",
               "duration_ms": 300000, "iterations": 9}),
        ],
    );
    case_log(&s, "debate-c", &[opened("04:30:00")]);
    let done = |ts: &str| json!({"ts": at(ts), "event": "completed", "agent": "dp"});
    case_log(
        &s,
        "ep-1",
        &[
            json!({"ts": at("02:59:00"), "event": "created", "agent": "orchestrator"}),
            done("03:10:00"),
        ],
    );
    case_log(&s, "ep-2", &[done("04:20:00")]);
    case_log(&s, "ep-3", &[done("04:50:00")]);
    let msg = |from: &str, to: &str| {
        let mut e = Envelope::new(
            from.parse().unwrap(),
            to.parse().unwrap(),
            "note",
            json!({}),
        );
        e.ts = at("03:30:00");
        serde_json::to_value(&e).unwrap()
    };
    for m in [
        msg("director", "dp"),
        msg("director", "dp"),
        msg("dp", "director"),
    ] {
        append(&s.layout().agent_to_agent(), &m);
    }
    let tool = |event: &str| {
        json!({"ts": at("03:31:00"), "event": event, "agent": "director",
        "gen": 1, "tool": "Read", "ok": true})
    };
    for t in [tool("tool_started"), tool("tool_call"), tool("tool_call")] {
        append(&s.agent("director").tools(), &t);
    }
    let usage = |agent: &str, provider: &str, model: &str, usd: f64| {
        json!({"ts": at("03:32:00"),
        "event": "usage", "agent": agent, "gen": 1, "provider": provider, "model": model,
        "input_tokens": 1, "output_tokens": 1, "usd": usd, "priced": true})
    };
    append(
        &s.agent("director").costs(),
        &usage("director", "anthropic", "m1", 0.5),
    );
    append(
        &s.agent("director").costs(),
        &usage("director", "anthropic", "m1", 0.25),
    );
    append(&s.agent("dp").costs(), &usage("dp", "openai", "m2", 0.1));

    let m = json_of(&s, &["metrics", "--json"]);
    assert_eq!(m["decisions"], 8, "{m:#}");
    assert_eq!(m["refused_proposals"], 1);
    assert_eq!(
        m["autonomy_distribution"],
        json!({"autonomous": 3, "collaborative": 2, "requires_approval": 3})
    );
    assert_eq!(
        m["approval_rate"],
        json!({"autonomous": {"shot": 1.0},
               "collaborative": {"lighting": 1.0, "narrative": 1.0},
               "requires_approval": {"narrative": 0.333333333}})
    );
    assert_eq!(
        m["approval_request_rate_by_case"],
        json!([{"case": "ep-1", "decisions": 4, "asked": 3, "rate": 0.75},
               {"case": "ep-2", "decisions": 4, "asked": 1, "rate": 0.25}])
    );
    assert_eq!(
        m["avg_confidence_by_case"],
        json!([{"case": "ep-1", "scored": 4, "avg_confidence": 0.6},
               {"case": "ep-2", "scored": 4, "avg_confidence": 0.75}])
    );
    assert_eq!(
        m["debate"],
        json!({"count": 3, "open": 1, "consensus": 1, "expired": 1, "consensus_rate": 0.5,
               "avg_duration_s": 170.0, "avg_iterations": 5.0})
    );
    assert_eq!(
        m["approval_latency_s"],
        json!({"answered": 3, "p50": 30.0, "max": 120.0})
    );
    assert_eq!(
        m["revisions_per_decision"], 0.142857143,
        "1 revision of 7 originals"
    );
    assert_eq!(m["reviews"], json!({"ok": 1, "vetoed": 0}));
    assert_eq!(
        m["messages_by_pair"],
        json!({"director": {"dp": 2}, "dp": {"director": 1}})
    );
    assert_eq!(m["tool_calls_by_agent"], json!({"director": 2}));
    assert_eq!(
        m["cost_by_agent_api"],
        json!({"director": {"anthropic/m1": 0.75}, "dp": {"openai/m2": 0.1}})
    );
    assert_eq!(
        m["cases_completed_per_hour"],
        json!({format!("{DAY}T03:00Z"): 1, format!("{DAY}T04:00Z"): 2})
    );
    assert_eq!(m["pending_approvals"], 1);
    assert_eq!(m["unreviewed_autonomous"], 2);
    assert_eq!(m["since"], Value::Null);

    // The file holds the same fold.
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(s.layout().supervisor_dir().join("metrics.json")).unwrap(),
    )
    .unwrap();
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    assert_eq!(strip(file), strip(m));

    // --since: ep-2's hour only.
    let m = json_of(
        &s,
        &["metrics", "--json", "--since", &format!("{DAY}T04:00:00Z")],
    );
    assert_eq!(m["decisions"], 4);
    assert_eq!(
        m["approval_request_rate_by_case"],
        json!([{"case": "ep-2", "decisions": 4, "asked": 1, "rate": 0.25}])
    );
    assert_eq!(m["pending_approvals"], 0);
    assert_eq!(m["approval_latency_s"]["answered"], 0);
    assert_eq!(m["debate"]["count"], 1);
    assert_eq!(m["debate"]["consensus_rate"], Value::Null);
    assert_eq!(m["since"], format!("{DAY}T04:00:00.000Z"));

    let human = s.ok(&["metrics"]);
    for want in [
        "decisions  8 (autonomous 3, collaborative 2, requires_approval 3)",
        "approvals  1 pending",
        "consensus rate 50%",
        "2 autonomous decision(s) await review",
    ] {
        assert!(human.contains(want), "{want:?} in:\n{human}");
    }
    assert!(
        human
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["ep-1", "4", "3", "75%", "0.60"]),
        "{human}"
    );
}
