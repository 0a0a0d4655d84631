//! Case transitions a routed message makes: ownership (`assigned`, then
//! `handoff`), case events, approval requests — and that the folds only go
//! forward.

use super::*;

#[test]
fn the_first_case_message_assigns_the_case() {
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let env = in_case(msg("a", "b", "task", json!({})), "c1");
    let (_, plan) = w.route(&env);
    let assigned = &w.records(&plan, "case:c1:assigned")[0];
    assert_eq!(assigned["to"], "b");
    assert_eq!(assigned["by"], "a");
    assert_eq!(assigned["src"], format!("{}/assigned", env.id));
    assert_eq!(case_after(&plan, "c1").owner.as_deref(), Some("b"));
    // `assigned`, then the message itself starts the work.
    assert_eq!(status_after(&plan, "c1"), CaseStatus::InProgress);
}

#[test]
fn a_message_to_another_agent_hands_the_case_off() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer"), ("c", "editor")]);
    w.case_record("c1", json!({"event": "assigned", "to": "b"}));
    let (_, plan) = w.route(&in_case(msg("a", "c", "task", json!({})), "c1"));
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "inbox:c:task",
            "mirror:task",
            "case:c1:handoff",
            "case:c1:message"
        ])
    );
    let handoff = &w.records(&plan, "case:c1:handoff")[0];
    assert_eq!(
        (&handoff["from"], &handoff["to"]),
        (&json!("b"), &json!("c"))
    );
    assert_eq!(handoff["reason"], "task from a");
    assert_eq!(status_after(&plan, "c1"), CaseStatus::InProgress);
}

#[test]
fn a_message_to_the_owner_records_no_ownership() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.case_record("c1", json!({"event": "assigned", "to": "b"}));
    let (_, plan) = w.route(&in_case(msg("a", "b", "task", json!({})), "c1"));
    assert_eq!(
        w.labels(&plan),
        strs(&["inbox:b:task", "mirror:task", "case:c1:message"])
    );
}

#[test]
fn later_lines_of_a_batch_see_the_case_as_the_batch_leaves_it() {
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let first = in_case(msg("a", "b", "task", json!({"n": 1})), "c1");
    let second = in_case(msg("a", "b", "task", json!({"n": 2})), "c1");
    let (_, plan) = w.batch(&[first, second]);
    assert_eq!(w.records(&plan, "case:c1:assigned").len(), 1);
    assert_eq!(w.records(&plan, "case:c1:message").len(), 2);
}

/// `case_event` names and the status they leave an in-progress case in.
#[test]
fn case_events_change_the_status() {
    #[rustfmt::skip]
    let table: &[(Value, &str, CaseStatus)] = &[
        (json!({"event": "completed"}), "completed", CaseStatus::Resolved),
        (json!({"event": "failed"}), "failed", CaseStatus::Blocked),
        (json!({"event": "cancelled"}), "cancelled", CaseStatus::Cancelled),
        // The record's `to` is the envelope's (here `supervisor`): a status
        // an agent names in the body does not reach the fold.
        (json!({"event": "status", "to": "waiting"}), "status", CaseStatus::InProgress),
        (json!({"event": "progress", "pct": 50}), "agent_report", CaseStatus::InProgress),
        (json!({"note": "no name"}), "agent_report", CaseStatus::InProgress),
    ];
    for (body, event, status) in table {
        let mut w = World::new(&[("a", "writer")]);
        w.case_record("c1", json!({"event": "assigned", "to": "a"}));
        w.case_record("c1", json!({"event": "message"}));
        let env = in_case(msg("a", "supervisor", "case_event", body.clone()), "c1");
        let (_, plan) = w.route(&env);
        let label = format!("case:c1:{event}");
        assert_eq!(
            w.labels(&plan),
            strs(&["mirror:case_event", &label]),
            "{body}"
        );
        assert_eq!(status_after(&plan, "c1"), *status, "{body}");
        let rec = &w.records(&plan, &label)[0];
        if *event == "agent_report" {
            let name = body.get("event").cloned().unwrap_or(json!("agent_report"));
            assert_eq!(rec["report"], name, "{body}");
        }
        // The body's other fields travel with the record (not over its own).
        let own = ["event", "to"];
        for (k, v) in body
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !own.contains(&k.as_str()))
        {
            assert_eq!(&rec[k], v, "{body}");
        }
    }
}

#[test]
fn an_approval_request_puts_the_case_waiting() {
    let mut w = World::new(&[("a", "writer")]);
    w.case_record("c1", json!({"event": "assigned", "to": "a"}));
    let env = in_case(
        msg(
            "a",
            "orchestrator",
            "approval_request",
            json!({"plan": "ship it", "revision": 2}),
        ),
        "c1",
    );
    let (_, plan) = w.route(&env);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "orchestrator:approval_request",
            "mirror:approval_request",
            "case:c1:approval_requested",
        ])
    );
    let rec = &w.records(&plan, "case:c1:approval_requested")[0];
    assert_eq!(
        (&rec["plan"], &rec["revision"]),
        (&json!("ship it"), &json!(2))
    );
    assert_eq!(rec["request"], json!(env.id));
    assert_eq!(status_after(&plan, "c1"), CaseStatus::Waiting);
}

#[test]
fn a_resolved_case_is_not_moved_back() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer"), ("c", "editor")]);
    w.case_record("c1", json!({"event": "assigned", "to": "b"}));
    w.case_record("c1", json!({"event": "completed"}));
    // A late message to another agent: recorded (owner moves), status stays.
    let (_, plan) = w.route(&in_case(msg("a", "c", "task", json!({})), "c1"));
    assert!(w.labels(&plan).contains(&"case:c1:handoff".to_string()));
    assert_eq!(case_after(&plan, "c1").owner.as_deref(), Some("c"));
    assert_eq!(status_after(&plan, "c1"), CaseStatus::Resolved);
}

#[test]
fn a_cancelled_case_takes_no_more_transitions() {
    let mut w = World::new(&[("a", "writer")]);
    w.case_record("c1", json!({"event": "cancelled"}));
    let env = in_case(
        msg(
            "a",
            "supervisor",
            "case_event",
            json!({"event": "completed"}),
        ),
        "c1",
    );
    let (_, plan) = w.route(&env);
    // Delivered, but the cancelled case's final log gets no record at all
    // (so nothing in the batch can move its status).
    assert!(
        !plan.cases.contains_key(&cid("c1")),
        "a record was planned into a cancelled case's log"
    );
}
