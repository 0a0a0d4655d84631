//! Where a delivered message is appended: its destination, the agent-to-agent
//! mirror (every message, keyed by its id), and the case log when it has a case.

use super::*;

#[test]
fn to_an_agent_inbox_and_mirror_and_wakes_it() {
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let env = msg("a", "b", "task", json!({"n": 1}));
    let (_, plan) = w.route(&env);
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
    assert!(plan.deliveries.iter().all(|d| d.key == env.id.to_string()));
    assert_eq!(plan.deliveries[0].record, plan.deliveries[1].record);
    assert!(plan.deliveries[0].durable && !plan.deliveries[1].durable);
    assert_eq!(plan.wake, vec![aid("b")]);
}

#[test]
fn in_a_case_also_to_the_case_log() {
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let env = in_case(msg("a", "b", "task", json!({})), "c1");
    let (_, plan) = w.route(&env);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "inbox:b:task",
            "mirror:task",
            "case:c1:assigned",
            "case:c1:message"
        ])
    );
    let message = &w.records(&plan, "case:c1:message")[0];
    assert_eq!(message["src"], format!("{}/message", env.id));
    assert_eq!(message["agent"], "a");
}

#[test]
fn to_the_orchestrator() {
    let w = World::new(&[("a", "writer")]);
    let (_, plan) = w.route(&msg("a", "orchestrator", "result", json!({})));
    assert_eq!(
        w.labels(&plan),
        strs(&["orchestrator:result", "mirror:result"])
    );
    assert!(plan.wake.is_empty());
    assert!(plan.approvals.is_empty());
}

#[test]
fn an_approval_request_to_the_orchestrator_is_indexed() {
    let w = World::new(&[("a", "writer")]);
    let env = msg(
        "a",
        "orchestrator",
        "approval_request",
        json!({"plan": "p"}),
    );
    let (_, plan) = w.route(&env);
    assert_eq!(
        w.labels(&plan),
        strs(&["orchestrator:approval_request", "mirror:approval_request"])
    );
    assert_eq!(plan.approvals.len(), 1);
    assert_eq!(plan.approvals[0].id, env.id);
}

#[test]
fn to_the_supervisor_reports_go_to_its_inbox_case_events_only_to_the_log() {
    let w = World::new(&[("a", "writer")]);
    let (_, plan) = w.route(&msg("a", "supervisor", "escalate", json!({})));
    assert_eq!(
        w.labels(&plan),
        strs(&["supervisor:escalate", "mirror:escalate"])
    );
    let event = in_case(
        msg(
            "a",
            "supervisor",
            "case_event",
            json!({"event": "completed"}),
        ),
        "c1",
    );
    let (_, plan) = w.route(&event);
    assert_eq!(
        w.labels(&plan),
        strs(&["mirror:case_event", "case:c1:completed"])
    );
}

#[test]
fn the_routing_policy_does_not_apply_to_the_supervisor() {
    let mut w = World::new(&[("a", "writer")]);
    w.rules(RouteAction::Deny, &[]);
    let (_, plan) = w.route(&msg("a", "supervisor", "escalate", json!({})));
    assert_eq!(
        w.labels(&plan),
        strs(&["supervisor:escalate", "mirror:escalate"])
    );
}
