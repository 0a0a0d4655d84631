//! What the router refuses or holds back: the receiver's protection (flood,
//! accepted types), sanctions at their thresholds, blocked senders, pacing,
//! the hop limit and the revision limit of approval requests.

use super::*;
use crate::supervisor::guard::{Bucket, Conduct, GuardState, UNTIL_LIFTED};
use crate::supervisor::plan::ESCALATION;

const REFUSED: [&str; 2] = ["deadletter:b:refused", "events:message_refused"];
const NOTICE: [&str; 3] = [
    "inbox:a:message_blocked",
    "mirror:message_blocked",
    "events:message_blocked",
];
const ESCALATED: [&str; 3] = [
    "orchestrator:escalation",
    "mirror:escalation",
    "events:escalated",
];

fn cat(parts: &[&[&str]]) -> Vec<String> {
    parts.iter().flat_map(|p| strs(p)).collect()
}

fn with_conduct(w: &mut World, sender: &str, conduct: Conduct) {
    let mut state = GuardState::default();
    state.senders.insert(sender.into(), conduct);
    w.guard = Guard::new(state);
}

#[test]
fn a_flood_is_refused_with_a_notice() {
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let copies: Vec<Envelope> = (0..4)
        .map(|_| msg("a", "b", "task", json!({"same": true})))
        .collect();
    let (outcomes, plan) = w.batch(&copies);
    assert!(outcomes.iter().all(|o| *o == LineOutcome::Planned));
    let delivered = ["inbox:b:task", "mirror:task"];
    assert_eq!(
        w.labels(&plan),
        cat(&[&delivered, &delivered, &delivered, &REFUSED, &NOTICE])
    );
    let refused = &w.records(&plan, "deadletter:b:refused")[0];
    assert_eq!(refused["id"], json!(copies[3].id));
    assert!(refused["reason"].as_str().unwrap().starts_with("flood"));
    assert!(!plan.guard.is_empty(), "the violation is in the plan");
}

/// The sanction a refusal imposes: its level, and whether it lasts until lifted.
type Imposed = Option<(u8, bool)>;

/// A refusal (here: a type the receiver does not accept) by a sender with
/// `violations` and `level` already: the sanction it imposes, if any.
#[test]
fn sanctions_at_their_thresholds_are_escalated() {
    let table: &[(u32, u8, Imposed)] = &[
        (0, 0, None),
        (1, 0, None),
        (2, 0, Some((1, false))),
        (3, 1, None),
        (4, 1, Some((2, false))),
        (9, 2, Some((3, true))),
    ];
    for &(violations, level, sanction) in table {
        let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
        w.policy("b").accept_types = vec!["task".into()];
        let conduct = Conduct {
            violations,
            level,
            ..Conduct::default()
        };
        with_conduct(&mut w, "a", conduct);
        let (_, plan) = w.route(&msg("a", "b", "chat", json!({})));
        let labels = w.labels(&plan);
        let what = format!("{violations} violations at level {level}");
        match sanction {
            None => assert_eq!(labels, cat(&[&REFUSED, &NOTICE]), "{what}"),
            Some((new_level, for_ever)) => {
                let sanctioned = ["events:sender_sanctioned"];
                assert_eq!(
                    labels,
                    cat(&[&REFUSED, &NOTICE, &sanctioned, &ESCALATED]),
                    "{what}"
                );
                let s = &w.records(&plan, "events:sender_sanctioned")[0];
                assert_eq!(s["level"], new_level, "{what}");
                assert_eq!(s["until"].is_null(), for_ever, "{what}");
                let notice = &w.records(&plan, "inbox:a:message_blocked")[0];
                let reason = notice["body"]["reason"].as_str().unwrap();
                assert!(reason.contains("you are blocked"), "{what}: {reason}");
            }
        }
    }
}

#[test]
fn a_blocked_sender_is_refused_without_a_notice() {
    for until in [NOW + 1000, UNTIL_LIFTED] {
        let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
        let conduct = Conduct {
            violations: 3,
            level: 1,
            blocked_until: Some(until),
            last_reason: None,
        };
        with_conduct(&mut w, "a", conduct);
        let (_, plan) = w.route(&msg("a", "b", "task", json!({})));
        assert_eq!(w.labels(&plan), strs(&REFUSED));
        assert!(plan.guard.is_empty(), "no new violation while blocked");
    }
}

#[test]
fn a_block_that_ran_out_no_longer_refuses() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let conduct = Conduct {
        violations: 3,
        level: 1,
        blocked_until: Some(NOW),
        last_reason: None,
    };
    with_conduct(&mut w, "a", conduct);
    let (_, plan) = w.route(&msg("a", "b", "task", json!({})));
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
}

fn paced_world(tokens: f64) -> World {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let p = w.policy("b");
    (p.rate_per_sec, p.rate_burst) = (1.0, 1);
    let mut state = GuardState::default();
    state
        .buckets
        .insert("a>b".into(), Bucket { tokens, at: NOW });
    w.guard = Guard::new(state);
    w
}

#[test]
fn a_sender_over_the_rate_is_paced_and_nothing_is_planned() {
    let w = paced_world(0.0);
    let (outcome, plan) = w.route(&msg("a", "b", "task", json!({})));
    assert_eq!(outcome, LineOutcome::Paced { until: NOW + 1000 });
    assert!(plan.deliveries.is_empty());
    assert!(plan.guard.is_empty());
    // In a batch: the lines before it are planned, the outbox waits at it.
    let w = paced_world(1.0);
    let envs = [
        msg("a", "b", "task", json!({"n": 1})),
        msg("a", "b", "task", json!({"n": 2})),
    ];
    let (outcomes, plan) = w.batch(&envs);
    assert_eq!(
        outcomes,
        vec![
            LineOutcome::Planned,
            LineOutcome::Paced { until: NOW + 1000 }
        ]
    );
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
}

#[test]
fn a_batch_replanned_after_a_crash_is_never_paced() {
    let w = paced_world(0.0);
    let env = msg("a", "b", "task", json!({}));
    let mut plan = Plan::at(NOW);
    plan.present = Some(HashSet::new());
    let line = Line {
        offset: 0,
        end: 1,
        bytes: env.to_line(),
    };
    let outcome = w.planner().line(&mut plan, &aid("a"), &line);
    assert_eq!(outcome, LineOutcome::Planned);
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
}

#[test]
fn past_the_hop_limit_a_message_is_dead_lettered_and_escalated_without_notice() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.policy("a").max_hops = 5;
    w.case_record("c1", json!({"event": "assigned", "to": "b"}));
    let hops = |n: u32, to: &str, case: Option<&str>| {
        let mut env = msg("a", to, "task", json!({}));
        env.hops = n;
        env.case = case.map(cid);
        env
    };
    let dead = ["deadletter:a:undeliverable", "events:undeliverable"];
    let (_, plan) = w.route(&hops(6, "b", None));
    assert_eq!(w.labels(&plan), cat(&[&dead, &ESCALATED]));
    let (_, plan) = w.route(&hops(6, "b", Some("c1")));
    let with_case = [
        "orchestrator:escalation",
        "mirror:escalation",
        "case:c1:escalated",
        "events:escalated",
    ];
    assert_eq!(w.labels(&plan), cat(&[&dead, &with_case]));
    assert_eq!(status_after(&plan, "c1"), CaseStatus::Escalated);
    let (_, plan) = w.route(&hops(5, "b", None));
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
    // Not an agent hop: the orchestrator always hears.
    let (_, plan) = w.route(&hops(6, "orchestrator", None));
    assert_eq!(w.labels(&plan), strs(&["orchestrator:task", "mirror:task"]));
}

#[test]
fn an_approval_request_past_the_revision_limit_escalates() {
    let mut w = World::new(&[("a", "writer")]);
    w.policy("a").max_revisions = 2;
    let request = |revision: u64| {
        msg(
            "a",
            "orchestrator",
            "approval_request",
            json!({"plan": "p", "revision": revision}),
        )
    };
    let env = request(4);
    let (_, plan) = w.route(&env);
    assert_eq!(w.labels(&plan), strs(&ESCALATED));
    assert!(plan.approvals.is_empty());
    let esc = &w.records(&plan, "orchestrator:escalation")[0];
    assert_eq!(esc["id"], json!(MsgId::derive(&env.id, ESCALATION)));
    assert_eq!(esc["body"]["context"]["request"], json!(env.id));
    let (_, plan) = w.route(&request(3));
    assert_eq!(
        w.labels(&plan),
        strs(&["orchestrator:approval_request", "mirror:approval_request"])
    );
}
