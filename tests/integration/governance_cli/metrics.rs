//! `society metrics`: figures computed by hand for the fixture.

use super::fixture::{append, at, decisions_fixture, DAY};
use crate::support::{json_of, BIN};
use serde_json::{json, Value};
use society_core::{CaseId, Envelope, Party};
use society_testkit::Society;

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
            how: None,
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
