//! Lines of the supervisor's own inbox: control requests from the
//! orchestrator and reports from agents.

use super::*;
use crate::control::Request;
use crate::supervisor::plan::After;
use society_core::kinds::message::CONTROL as TYPE;

fn control(req: &Request) -> Envelope {
    msg(
        "orchestrator",
        "supervisor",
        TYPE,
        serde_json::to_value(req).unwrap(),
    )
}

fn plan_requests(w: &World, envs: &[Envelope]) -> Plan {
    let mut plan = Plan::at(NOW);
    for env in envs {
        w.planner().request(&mut plan, env.clone());
    }
    plan
}

fn rejection(w: &World, plan: &Plan) -> String {
    let r = w.records(plan, "events:control_rejected");
    assert_eq!(r.len(), 1, "{:?}", w.labels(plan));
    r[0]["reason"].as_str().unwrap().to_string()
}

#[test]
fn a_new_case_assigned_to_a_role_goes_to_one_of_its_agents() {
    let w = World::new(&[("w1", "worker")]);
    let req = Request::CaseNew {
        case: cid("c1"),
        purpose: "p".into(),
        assign: Some("role:worker".parse().unwrap()),
        priority: None,
        due: "2030-01-01T00:00:00Z".into(),
    };
    let plan = plan_requests(&w, &[control(&req)]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "case:c1:created",
            "case:c1:assigned",
            "inbox:w1:case_assigned",
            "mirror:case_assigned",
        ])
    );
    assert_eq!(status_after(&plan, "c1"), CaseStatus::Assigned);
    // The same request again, in the same batch: the case exists now.
    let plan = plan_requests(&w, &[control(&req), control(&req)]);
    assert_eq!(rejection(&w, &plan), "case c1 already exists");
}

#[test]
fn start_stop_restart_only_known_agents() {
    let w = World::new(&[("a", "writer")]);
    let plan = plan_requests(&w, &[control(&Request::Stop { agent: aid("a") })]);
    assert!(matches!(plan.after[..], [After::Stop(ref id)] if id.as_str() == "a"));
    assert!(plan.deliveries.is_empty());
    let plan = plan_requests(&w, &[control(&Request::Start { agent: aid("zed") })]);
    assert!(plan.after.is_empty());
    assert_eq!(rejection(&w, &plan), "no agent zed");
}

/// A message held by a routing rule, and the orchestrator's answer.
#[test]
fn a_decision_releases_or_refuses_a_held_message_once() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(RouteAction::Allow, &[("a", "b", "*", RouteAction::Approve)]);
    let held = msg("a", "b", "task", json!({}));
    let (_, routed) = w.route(&held);
    let request = routed.approvals[0].clone();
    w.approvals.insert(request.id, request.clone());
    let decide = |approve| {
        control(&Request::Decide {
            request: request.id,
            approve,
            note: Some("why".into()),
            how: None,
        })
    };
    let plan = plan_requests(&w, &[decide(true)]);
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
    assert_eq!(plan.decided, vec![request.id]);
    let plan = plan_requests(&w, &[decide(false)]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "inbox:a:message_blocked",
            "mirror:message_blocked",
            "events:message_blocked"
        ])
    );
    let notice = &w.records(&plan, "inbox:a:message_blocked")[0];
    assert_eq!(
        notice["body"]["reason"],
        "rejected by the orchestrator: why"
    );
    let plan = plan_requests(&w, &[decide(true), decide(true)]);
    assert!(rejection(&w, &plan).contains("was already answered"));
    w.decided.insert(request.id);
    let plan = plan_requests(&w, &[decide(true)]);
    assert!(rejection(&w, &plan).contains("was already answered"));
}

#[test]
fn an_unblock_lifts_the_sanction_in_the_plan() {
    let w = World::new(&[("a", "writer")]);
    let plan = plan_requests(&w, &[control(&Request::Unblock { agent: aid("a") })]);
    assert_eq!(w.labels(&plan), strs(&["events:sender_unblocked"]));
    assert!(plan.guard.sanctions_changed());
}

#[test]
fn agent_reports_escalate_or_are_recorded() {
    let w = World::new(&[("a", "writer")]);
    let esc = msg("a", "supervisor", "escalate", json!({"reason": "stuck"}));
    let plan = plan_requests(&w, &[esc]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "orchestrator:escalation",
            "mirror:escalation",
            "events:escalated"
        ])
    );
    let e = &w.records(&plan, "orchestrator:escalation")[0];
    assert_eq!(e["body"]["reason"], "stuck");
    let dead = msg(
        "a",
        "supervisor",
        "dead_letter",
        json!({"message_id": "m1", "reason": "x"}),
    );
    let plan = plan_requests(&w, &[dead]);
    assert_eq!(w.labels(&plan)[0], "events:report_dead_letter");
    assert_eq!(w.labels(&plan).len(), 4);
    let other = msg("a", "supervisor", "progress", json!({}));
    let plan = plan_requests(&w, &[other]);
    assert_eq!(w.labels(&plan), strs(&["events:report_progress"]));
}

#[test]
fn a_bad_line_is_dead_lettered_by_position() {
    let w = World::new(&[]);
    let mut plan = Plan::at(NOW);
    let line = Line {
        offset: 42,
        end: 50,
        bytes: b"garbage".to_vec(),
    };
    w.planner().bad_line(&mut plan, &line, "not valid JSON");
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "supervisor-deadletter:dead_lettered",
            "events:supervisor_inbox_bad_line"
        ])
    );
    assert!(plan.deliveries.iter().all(|d| d.key == "supervisor@42"));
}
