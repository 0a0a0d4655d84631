//! The routing policy's actions and rule matching, and how the recipient of
//! a line is resolved (or why the line is dead-lettered).

use super::*;
use RouteAction::{Allow, Approve, Deny};

/// What the sender's notice says about its message.
fn notice_reason(w: &World, plan: &Plan, sender: &str) -> String {
    let notices = w.records(plan, &format!("inbox:{sender}:message_blocked"));
    assert_eq!(notices.len(), 1, "one notice to {sender}");
    notices[0]["body"]["reason"].as_str().unwrap().to_string()
}

const NOTICE: [&str; 3] = [
    "inbox:a:message_blocked",
    "mirror:message_blocked",
    "events:message_blocked",
];

#[test]
fn allow_delivers_to_the_recipient() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(Deny, &[("a", "b", "*", Allow)]);
    let (outcome, plan) = w.route(&msg("a", "b", "task", json!({})));
    assert_eq!(outcome, LineOutcome::Planned);
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
}

#[test]
fn deny_by_a_rule_tells_the_sender_which_rule() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(Allow, &[("x", "*", "*", Allow), ("a", "b", "*", Deny)]);
    let (_, plan) = w.route(&msg("a", "b", "task", json!({})));
    assert_eq!(w.labels(&plan), strs(&NOTICE));
    assert_eq!(notice_reason(&w, &plan, "a"), "denied by routing rule 2");
    assert!(plan.wake.iter().all(|id| id.as_str() == "a"));
}

#[test]
fn deny_by_the_default_says_so() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(Deny, &[("b", "a", "*", Allow)]);
    let (_, plan) = w.route(&msg("a", "b", "task", json!({})));
    assert_eq!(w.labels(&plan), strs(&NOTICE));
    assert_eq!(
        notice_reason(&w, &plan, "a"),
        "denied by the routing default"
    );
}

#[test]
fn approve_holds_the_message_and_asks_the_orchestrator() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(Allow, &[("a", "b", "task", Approve)]);
    let env = msg("a", "b", "task", json!({"n": 1}));
    let (_, plan) = w.route(&env);
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "orchestrator:approval_request",
            "mirror:approval_request",
            "events:message_held",
        ])
    );
    assert_eq!(plan.approvals.len(), 1);
    let req = &plan.approvals[0];
    assert_eq!(
        req.id,
        MsgId::derive(&env.id, crate::supervisor::plan::HELD)
    );
    assert_eq!(req.body["rule"], json!(1));
    assert_eq!(req.body["held"]["id"], json!(env.id));
}

#[test]
fn approve_in_a_case_records_approval_requested() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(Allow, &[("a", "b", "task", Approve)]);
    let (_, plan) = w.route(&in_case(msg("a", "b", "task", json!({})), "c1"));
    assert_eq!(
        w.labels(&plan),
        strs(&[
            "orchestrator:approval_request",
            "mirror:approval_request",
            "case:c1:approval_requested",
            "events:message_held",
        ])
    );
    assert_eq!(status_after(&plan, "c1"), CaseStatus::Waiting);
}

/// One rule at a time, against messages it must and must not match: `(from,
/// to, type)` of the rule; message `(from, to, type)`; denied?
#[test]
fn rules_match_by_id_role_star_and_type() {
    #[rustfmt::skip]
    type FromToType<'a> = (&'a str, &'a str, &'a str);
    let table: &[(FromToType, FromToType, bool)] = &[
        (("a", "*", "*"), ("a", "b", "task"), true),
        (("a", "*", "*"), ("c", "b", "task"), false),
        (("*", "b", "*"), ("a", "b", "task"), true),
        (("*", "b", "*"), ("a", "c", "task"), false),
        (("role:writer", "*", "*"), ("a", "b", "task"), true),
        (("role:writer", "*", "*"), ("b", "a", "task"), false),
        (("*", "role:reviewer", "*"), ("a", "b", "task"), true),
        (
            ("*", "role:reviewer", "*"),
            ("a", "role:reviewer", "task"),
            true,
        ),
        (("*", "role:reviewer", "*"), ("b", "a", "task"), false),
        (("*", "*", "secret"), ("a", "b", "secret"), true),
        (("*", "*", "secret"), ("a", "b", "task"), false),
        (("*", "*", "*"), ("c", "a", "note"), true),
        (
            ("*", "orchestrator", "*"),
            ("a", "orchestrator", "result"),
            true,
        ),
        (("*", "orchestrator", "*"), ("a", "b", "result"), false),
    ];
    for ((rf, rt, rk), (from, to, kind), denied) in table {
        let mut w = World::new(&[("a", "writer"), ("b", "reviewer"), ("c", "writer2")]);
        w.rules(Allow, &[(rf, rt, rk, Deny)]);
        let (_, plan) = w.route(&msg(from, to, kind, json!({})));
        let was_denied = w
            .labels(&plan)
            .contains(&format!("inbox:{from}:message_blocked"));
        assert_eq!(
            was_denied, *denied,
            "rule {rf} → {rt} ({rk}) on {from} → {to} ({kind})"
        );
    }
}

#[test]
fn the_first_matching_rule_wins() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.rules(Deny, &[("a", "b", "*", Allow), ("*", "*", "*", Approve)]);
    let (_, plan) = w.route(&msg("a", "b", "task", json!({})));
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));
}

#[test]
fn a_role_address_goes_to_one_agent_of_the_role_the_same_for_a_case() {
    let w = World::new(&[("a", "writer"), ("w1", "worker"), ("w2", "worker")]);
    let mut seen = HashSet::new();
    for n in 0..20 {
        let case = format!("c{n}");
        let first = w.route(&in_case(msg("a", "role:worker", "task", json!({})), &case));
        let again = w.route(&in_case(msg("a", "role:worker", "task", json!({})), &case));
        assert_eq!(first.1.wake, again.1.wake, "a case stays with one agent");
        assert_eq!(first.1.wake.len(), 1);
        let to = first.1.wake[0].to_string();
        assert!(to == "w1" || to == "w2", "{to}");
        assert_eq!(w.labels(&first.1)[0], format!("inbox:{to}:task"));
        assert_eq!(case_after(&first.1, &case).owner.as_deref(), Some(&*to));
        seen.insert(to);
    }
    assert_eq!(seen.len(), 2, "cases spread over the role's agents");
}

/// Lines the router cannot deliver: a dead letter in the sender's folder, a
/// system event, and a notice when there is an envelope to answer.
#[test]
fn undeliverable_lines_are_dead_lettered() {
    const DEAD: [&str; 2] = ["deadletter:a:undeliverable", "events:undeliverable"];
    let with_notice: Vec<&str> = DEAD.iter().chain(NOTICE.iter()).copied().collect();
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let table: Vec<(&str, Vec<u8>, &str, &[&str])> = vec![
        (
            "unknown agent",
            msg("a", "nobody", "task", json!({})).to_line(),
            "no agent nobody",
            &with_notice,
        ),
        (
            "role no agent has",
            msg("a", "role:ghost", "task", json!({})).to_line(),
            "no agent has role ghost",
            &with_notice,
        ),
        (
            "case_event without a case",
            msg(
                "a",
                "supervisor",
                "case_event",
                json!({"event": "completed"}),
            )
            .to_line(),
            "case_event without a case",
            &with_notice,
        ),
        (
            "not an envelope",
            b"{not json".to_vec(),
            "not valid JSON",
            &DEAD,
        ),
    ];
    for (what, line, reason, expected) in table {
        let (outcomes, plan) = w.lines(&aid("a"), &[line]);
        assert_eq!(outcomes, vec![LineOutcome::Planned], "{what}");
        assert_eq!(w.labels(&plan), strs(expected), "{what}");
        let dead = &w.records(&plan, "deadletter:a:undeliverable")[0];
        assert!(
            dead["reason"].as_str().unwrap().contains(reason),
            "{what}: {dead}"
        );
        assert_eq!(dead["src"], "a@0", "{what}");
    }
}

#[test]
fn a_line_not_from_its_outbox_owner_is_dead_lettered() {
    let w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    let forged = msg("b", "a", "task", json!({})).to_line();
    let (_, plan) = w.lines(&aid("a"), &[forged]);
    let labels = w.labels(&plan);
    assert_eq!(
        labels[..2],
        strs(&["deadletter:a:undeliverable", "events:undeliverable"])
    );
    let dead = &w.records(&plan, "deadletter:a:undeliverable")[0];
    assert!(dead["reason"]
        .as_str()
        .unwrap()
        .contains("does not match the outbox owner a"));
    assert!(
        !labels.contains(&"inbox:a:task".to_string()),
        "never delivered"
    );
}

#[test]
fn dead_letter_keys_name_the_segment_and_offset() {
    let mut w = World::new(&[("a", "writer")]);
    w.segs.insert(aid("a"), 2);
    let lines = [
        msg("a", "nobody", "task", json!({})).to_line(),
        b"garbage".to_vec(),
    ];
    let (_, plan) = w.lines(&aid("a"), &lines);
    let dead = w.records(&plan, "deadletter:a:undeliverable");
    let second = lines[0].len() + 1;
    assert_eq!(dead[0]["src"], "a@2:0");
    assert_eq!(dead[1]["src"], format!("a@2:{second}"));
    assert_eq!(dead[1]["seg"], 2);
}
