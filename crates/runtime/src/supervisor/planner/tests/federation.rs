//! Messages across societies: out through `outbound.jsonl` with the sender
//! named as this society's, in from the bridge routed like an outbox line.

use super::*;
use RouteAction::{Allow, Deny};

/// Agents `a` and `b` in society north, federated or not.
fn north(federated: bool) -> World {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.society = Some(society_core::SocietyName::new("north").unwrap());
    w.federated = federated;
    w
}

/// Plans `env` as a line of the supervisor's inbox (where the bridge puts
/// what it received).
fn received(w: &World, env: Envelope) -> Plan {
    let mut plan = Plan::at(NOW);
    w.planner().request(&mut plan, env);
    plan
}

#[test]
fn a_message_to_another_society_leaves_through_outbound_named_as_ours() {
    let w = north(true);
    let (outcome, plan) = w.route(&msg("a", "x@south", "task", json!({})));
    assert_eq!(outcome, LineOutcome::Planned);
    assert_eq!(w.labels(&plan), strs(&["outbound:task", "mirror:task"]));
    let out = &w.records(&plan, "outbound:task")[0];
    assert_eq!(out["from"], "a@north");
    assert_eq!(out["to"], "x@south");
    assert!(plan.wake.is_empty(), "nobody here to wake");
}

#[test]
fn our_own_name_is_local() {
    let w = north(true);
    let (_, plan) = w.route(&msg("a", "b@north", "task", json!({})));
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
    assert_eq!(w.records(&plan, "inbox:b:task")[0]["to"], "b");
}

#[test]
fn without_federation_it_is_undeliverable_and_the_sender_told_why() {
    let w = north(false);
    let (_, plan) = w.route(&msg("a", "x@south", "task", json!({})));
    let labels = w.labels(&plan);
    assert!(
        labels.contains(&"deadletter:a:undeliverable".to_string()),
        "{labels:?}"
    );
    assert!(
        !labels.iter().any(|l| l.starts_with("outbound")),
        "{labels:?}"
    );
    let notice = &w.records(&plan, "inbox:a:message_blocked")[0];
    let reason = notice["body"]["reason"].as_str().unwrap();
    assert!(reason.contains("not federated"), "{reason}");
}

#[test]
fn no_request_goes_to_another_societys_supervisor() {
    let w = north(true);
    let (_, plan) = w.route(&msg("a", "supervisor@south", "task", json!({})));
    assert!(!w.labels(&plan).iter().any(|l| l.starts_with("outbound")));
    let notice = &w.records(&plan, "inbox:a:message_blocked")[0];
    assert!(notice["body"]["reason"]
        .as_str()
        .unwrap()
        .contains("own agents and orchestrator only"));
}

#[test]
fn the_hop_limit_cuts_a_loop_between_societies() {
    let mut w = north(true);
    w.policy("a").max_hops = 3;
    let mut env = msg("a", "x@south", "task", json!({}));
    env.hops = 4;
    let (_, plan) = w.route(&env);
    let labels = w.labels(&plan);
    assert!(
        !labels.iter().any(|l| l.starts_with("outbound")),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"deadletter:a:undeliverable".to_string()),
        "{labels:?}"
    );
}

#[test]
fn a_received_message_is_delivered_and_its_answer_finds_the_way_back() {
    let w = north(true);
    let plan = received(&w, msg("x@south", "b", "task", json!({})));
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
    assert_eq!(w.records(&plan, "inbox:b:task")[0]["from"], "x@south");
    assert_eq!(plan.wake, vec![aid("b")]);
}

#[test]
fn a_received_message_for_nobody_here_is_dead_lettered_and_its_sender_told() {
    let w = north(true);
    let plan = received(&w, msg("x@south", "nobody", "task", json!({})));
    let labels = w.labels(&plan);
    assert_eq!(
        labels[0], "supervisor-deadletter:undeliverable",
        "{labels:?}"
    );
    let notice = &w.records(&plan, "outbound:message_blocked")[0];
    assert_eq!(notice["from"], "supervisor@north");
    assert_eq!(notice["to"], "x@south");
    assert!(notice["body"]["reason"]
        .as_str()
        .unwrap()
        .contains("no agent nobody"));
}

#[test]
fn the_routing_policy_applies_to_received_messages() {
    let mut w = north(true);
    w.rules(Allow, &[("x@south", "*", "*", Deny)]);
    let plan = received(&w, msg("x@south", "b", "task", json!({})));
    let labels = w.labels(&plan);
    assert!(
        !labels.iter().any(|l| l.starts_with("inbox:b")),
        "{labels:?}"
    );
    let notice = &w.records(&plan, "outbound:message_blocked")[0];
    assert!(notice["body"]["reason"]
        .as_str()
        .unwrap()
        .contains("denied by routing rule 1"));
}

#[test]
fn a_case_first_seen_from_another_society_starts_with_created() {
    let w = north(true);
    let plan = received(&w, in_case(msg("x@south", "b", "task", json!({})), "c1"));
    let labels = w.labels(&plan);
    assert_eq!(
        labels.first().map(String::as_str),
        Some("case:c1:created"),
        "{labels:?}"
    );
    let created = &w.records(&plan, "case:c1:created")[0];
    assert_eq!(created["society"], "south");
}
