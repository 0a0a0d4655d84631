//! The organisation: escalations and approval requests to the lowest common
//! supervisor, up the chain, and the leads' answers.

use super::*;
use society_core::org::Scope;

/// orchestrator ← lead ← w1 w2; orchestrator ← other ← w3; `lead` may
/// approve plans up to 5 USD.
fn org() -> World {
    let mut w = World::new(&[
        ("lead", "lead"),
        ("other", "lead"),
        ("w1", "worker"),
        ("w2", "worker"),
        ("w3", "worker"),
    ]);
    for (id, up) in [("w1", "lead"), ("w2", "lead"), ("w3", "other")] {
        w.agents.0.get_mut(&aid(id)).unwrap().0.org.reports_to = Some(up.into());
    }
    w.agents.0.get_mut(&aid("lead")).unwrap().0.org.approve = Some(Scope {
        kinds: vec!["plan".into()],
        max_usd: Some(5.0),
        decision_types: vec![],
    });
    w
}

fn plan_requests(w: &World, envs: &[Envelope]) -> Plan {
    let mut plan = Plan::at(NOW);
    for env in envs {
        w.planner().request(&mut plan, env.clone());
    }
    plan
}

fn escalate(from: &str, parties: &[&str]) -> Envelope {
    msg(
        from,
        "supervisor",
        "escalate",
        json!({"reason": "stuck", "context": {"parties": parties}}),
    )
}

/// Folds what a plan decided into the world, as the commit would.
fn land(w: &mut World, plan: &Plan) {
    for (id, item) in &plan.items {
        w.items.0.insert(*id, item.clone());
    }
    for a in &plan.approvals {
        w.approvals.insert(a.id, a.clone());
    }
    w.decided.extend(plan.decided.iter().copied());
}

#[test]
fn without_reports_to_everything_goes_to_the_orchestrator_as_before() {
    let w = World::new(&[("w1", "worker"), ("w2", "worker")]);
    let plan = plan_requests(&w, &[escalate("w1", &["w2"])]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "orchestrator:escalation",
            "mirror:escalation",
            "events:escalated"
        ])
    );
    let (_, plan) = w.route(&msg(
        "w1",
        "orchestrator",
        "approval_request",
        json!({"plan": "p"}),
    ));
    assert_eq!(
        w.labels(&plan),
        strs(&["orchestrator:approval_request", "mirror:approval_request"])
    );
}

#[test]
fn escalations_go_to_the_lowest_common_supervisor() {
    let w = org();
    for (from, parties, at) in [
        ("w1", &["w2"][..], "inbox:lead:escalation"),
        ("w1", &[][..], "inbox:lead:escalation"),
        ("w3", &[][..], "inbox:other:escalation"),
        ("w1", &["w3"][..], "orchestrator:escalation"),
        ("w1", &["lead"][..], "orchestrator:escalation"),
    ] {
        let plan = plan_requests(&w, &[escalate(from, parties)]);
        let labels = w.labels(&plan);
        assert_eq!(labels[0], at, "{from} {parties:?}: {labels:?}");
        assert!(
            labels.iter().any(|l| l.starts_with("org:opened")),
            "{labels:?}"
        );
    }
}

#[test]
fn a_lead_escalating_or_timing_out_sends_the_item_up_once() {
    let mut w = org();
    let plan = plan_requests(&w, &[escalate("w1", &["w2"])]);
    land(&mut w, &plan);
    let item = w.items.0.values().next().unwrap().clone();
    assert_eq!(item.at, "lead");
    assert_eq!(item.due, NOW + 600_000, "the default answer_within");
    // The lead escalates while handling it: up, chain kept.
    let mut up = escalate("lead", &[]);
    up.reply_to = Some(item.msg);
    let plan = plan_requests(&w, &[up.clone()]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "orchestrator:escalation",
            "mirror:escalation",
            "org:moved:orchestrator",
            "events:escalation_moved",
        ])
    );
    let esc = &w.records(&plan, "orchestrator:escalation")[0];
    assert_eq!(esc["body"]["chain"][0]["node"], "lead");
    assert_eq!(esc["body"]["chain"][0]["outcome"], "escalated");
    land(&mut w, &plan);
    // Again (a late repeat): refused with a notice, nothing moves.
    let plan = plan_requests(&w, &[up]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "inbox:lead:message_blocked",
            "mirror:message_blocked",
            "events:message_blocked"
        ])
    );
    // A timeout of an item already at the orchestrator does nothing.
    let item = w.items.0.values().next().unwrap().clone();
    let mut plan = Plan::at(NOW);
    w.planner().move_up(&mut plan, &item, "timeout", "late");
    assert!(plan.deliveries.is_empty());
}

#[test]
fn a_lead_approves_within_its_scope_only() {
    let mut w = org();
    let ask = msg(
        "w1",
        "orchestrator",
        "approval_request",
        json!({"plan": "p", "usd": 2.0}),
    );
    let (_, plan) = w.route(&ask);
    assert_eq!(w.labels(&plan)[0], "inbox:lead:approval_request");
    assert!(!w
        .labels(&plan)
        .iter()
        .any(|l| l.starts_with("orchestrator:")));
    land(&mut w, &plan);
    let item = w.items.get(&ask.id).unwrap().clone();
    let mut yes = msg(
        "lead",
        "supervisor",
        "approval_decision",
        json!({"approve": true, "note": "go"}),
    );
    yes.reply_to = Some(item.msg);
    let plan = plan_requests(&w, &[yes]);
    let answer = &w.records(&plan, "inbox:w1:approval_response")[0];
    assert_eq!(answer["from"], "lead");
    assert_eq!(answer["body"]["approved"], true);
    assert_eq!(answer["body"]["by"], "lead");
    assert_eq!(answer["reply_to"], json!(ask.id));
    assert_eq!(plan.decided, [ask.id]);
    land(&mut w, &plan);
    // The orchestrator comes second: refused.
    let late = msg(
        "orchestrator",
        "supervisor",
        "control",
        json!({"op": "decide", "request": ask.id, "approve": false}),
    );
    let plan = plan_requests(&w, &[late]);
    let r = w.records(&plan, "events:control_rejected");
    assert!(r[0]["reason"]
        .as_str()
        .unwrap()
        .contains("already answered"));

    // Beyond the scope (amount, kind): straight to the orchestrator, recorded.
    for body in [
        json!({"plan": "p", "usd": 9.0}),
        json!({"plan": "p", "proposal": {}}),
    ] {
        let ask = msg("w2", "orchestrator", "approval_request", body);
        let (_, plan) = w.route(&ask);
        assert_eq!(w.labels(&plan)[0], "orchestrator:approval_request");
        let opened = &w.records(&plan, "org:opened:orchestrator")[0];
        assert_eq!(opened["chain"][0]["outcome"], "out_of_scope");
    }
}

#[test]
fn dead_letter_reports_and_held_messages_go_to_the_parties_lead() {
    let mut w = org();
    // w2 dead-lettered a message from w1: their lead hears of it.
    let report = msg(
        "w2",
        "supervisor",
        "dead_letter",
        json!({"agent": "w2", "message_id": "x", "from": "w1", "type": "task", "reason": "bad"}),
    );
    let plan = plan_requests(&w, &[report]);
    assert_eq!(w.labels(&plan)[1], "inbox:lead:escalation");
    let opened = &w.records(&plan, "org:opened:lead")[0];
    assert_eq!(opened["parties"], json!(["w2", "w1"]));
    // A message from w3 dead-lettered by w2: different teams, the orchestrator.
    let report = msg(
        "w2",
        "supervisor",
        "dead_letter",
        json!({"agent": "w2", "message_id": "y", "from": "w3", "type": "task", "reason": "bad"}),
    );
    let plan = plan_requests(&w, &[report]);
    assert!(w
        .labels(&plan)
        .contains(&"orchestrator:escalation".to_string()));

    // A routing hold between w1 and w2: their lead, if its scope has `route`.
    w.rules(
        RouteAction::Allow,
        &[("w1", "w2", "*", RouteAction::Approve)],
    );
    let (_, plan) = w.route(&msg("w1", "w2", "task", json!({})));
    assert!(
        w.labels(&plan)
            .contains(&"orchestrator:approval_request".to_string()),
        "plans only: out of scope"
    );
    w.agents.0.get_mut(&aid("lead")).unwrap().0.org.approve = Some(Scope {
        kinds: vec!["route".into()],
        ..Scope::default()
    });
    let (_, plan) = w.route(&msg("w1", "w2", "task", json!({})));
    assert_eq!(w.labels(&plan)[0], "inbox:lead:approval_request");
    assert_eq!(plan.approvals.len(), 1);
}

#[test]
fn the_orchestrator_may_answer_first_and_the_lead_is_then_refused() {
    let mut w = org();
    let ask = msg(
        "w1",
        "orchestrator",
        "approval_request",
        json!({"plan": "p"}),
    );
    let (_, plan) = w.route(&ask);
    land(&mut w, &plan);
    let item = w.items.get(&ask.id).unwrap().clone();
    let decide = msg(
        "orchestrator",
        "supervisor",
        "control",
        json!({"op": "decide", "request": ask.id, "approve": false, "note": "no"}),
    );
    let plan = plan_requests(&w, &[decide]);
    let answer = &w.records(&plan, "inbox:w1:approval_response")[0];
    assert_eq!(answer["from"], "orchestrator");
    let closed = &w.records(&plan, "org:answered:?")[0];
    assert_eq!(
        (closed["by"].as_str(), closed["how"].as_str()),
        (Some("orchestrator"), Some("rejected"))
    );
    land(&mut w, &plan);
    let mut yes = msg(
        "lead",
        "supervisor",
        "approval_decision",
        json!({"approve": true}),
    );
    yes.reply_to = Some(item.msg);
    let plan = plan_requests(&w, &[yes]);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "inbox:lead:message_blocked",
            "mirror:message_blocked",
            "events:message_blocked"
        ])
    );
    let notice = &w.records(&plan, "inbox:lead:message_blocked")[0];
    assert!(notice["body"]["reason"]
        .as_str()
        .unwrap()
        .contains("already answered by orchestrator"));
}

#[test]
fn a_reports_to_cycle_edited_into_config_json_ends_at_the_orchestrator() {
    // `society.toml` refuses cycles; folders edited by hand may still hold
    // one. Planning must end, and the item reach the top.
    let mut w = org();
    for (id, up) in [("lead", "other"), ("other", "lead")] {
        w.agents.0.get_mut(&aid(id)).unwrap().0.org.reports_to = Some(up.into());
    }
    w.agents.0.get_mut(&aid("lead")).unwrap().0.org.approve = None;
    let (_, plan) = w.route(&msg(
        "w1",
        "orchestrator",
        "approval_request",
        json!({"plan": "p"}),
    ));
    let labels = w.labels(&plan);
    assert!(
        labels.iter().any(|l| l == "orchestrator:approval_request"),
        "{labels:?}"
    );
    let item = plan.items.values().next().expect("an item");
    let nodes: Vec<&str> = item
        .chain
        .iter()
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert_eq!(
        nodes,
        ["lead", "other", "lead", "orchestrator"],
        "{:?}",
        item.chain
    );
}
