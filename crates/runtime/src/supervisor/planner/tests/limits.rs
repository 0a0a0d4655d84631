//! Records over `max_record` (FORMAT.md "Limits"): an outbox line over its
//! sender's limit is dead-lettered unread; a message over its recipient's
//! limit — measured as the router writes it, not as the sender did — is
//! dead-lettered and its sender told; nothing the router plans for an inbox
//! is longer than that inbox's agent takes.

use super::*;

const UNDELIVERABLE: [&str; 2] = ["deadletter:a:undeliverable", "events:undeliverable"];
const NOTICE: [&str; 3] = [
    "inbox:a:message_blocked",
    "mirror:message_blocked",
    "events:message_blocked",
];

fn cat(parts: &[&[&str]]) -> Vec<String> {
    parts.iter().flat_map(|p| strs(p)).collect()
}

/// A message from `a` to `to` whose line is exactly `size` bytes, newline
/// included.
fn sized(to: &str, size: usize) -> Envelope {
    let mut env = msg("a", to, "task", json!({"text": ""}));
    let bare = env.to_line().len() + 1;
    env.body = json!({"text": "x".repeat(size - bare)});
    assert_eq!(env.to_line().len() + 1, size);
    env
}

#[test]
fn a_line_over_the_senders_max_record_is_dead_lettered_unread() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.policy("a").max_record = 4096;
    // What the reader hands over for a 200 MB line: its head, and its extent.
    let head = sized("b", 4096).to_line();
    let line = Line {
        offset: 0,
        end: 200 << 20,
        bytes: head,
    };
    let mut plan = Plan::at(NOW);
    let outcome = w.planner().line(&mut plan, &aid("a"), &line);
    assert_eq!(outcome, LineOutcome::Planned);
    assert_eq!(w.labels(&plan), strs(&UNDELIVERABLE));
    let dead = &w.records(&plan, "deadletter:a:undeliverable")[0];
    assert_eq!(
        dead["reason"],
        "line of 209715200 bytes exceeds max_record (4096 bytes)"
    );
    assert!(dead["id"].is_null(), "never parsed: {dead}");
    assert!(plan.wake.is_empty());
}

#[test]
fn the_recipients_max_record_bounds_what_reaches_its_inbox() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.policy("b").max_record = 2048;
    let fits = sized("b", 2048);
    let (_, plan) = w.route(&fits);
    assert_eq!(w.labels(&plan), strs(&["inbox:b:task", "mirror:task"]));

    let over = sized("b", 2049);
    let (_, plan) = w.route(&over);
    assert_eq!(w.labels(&plan), cat(&[&UNDELIVERABLE, &NOTICE]));
    let dead = &w.records(&plan, "deadletter:a:undeliverable")[0];
    assert_eq!(
        dead["reason"],
        "message of 2049 bytes exceeds agent b's max_record (2048 bytes)"
    );
    let notice = &w.records(&plan, "inbox:a:message_blocked")[0];
    assert_eq!(notice["body"]["id"], json!(over.id));
}

/// The router writes its own serialisation: a number written `1e15` by the
/// sender is `1000000000000000.0` in the inbox. The limit holds for that.
#[test]
fn a_message_is_measured_as_the_router_writes_it() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.policy("b").max_record = 4096;
    let env = msg("a", "b", "task", json!({}));
    let line = String::from_utf8(env.to_line()).unwrap().replace(
        "\"body\":{}",
        &format!("\"body\":{{\"n\":[{}]}}", vec!["1e15"; 500].join(",")),
    );
    assert!(line.len() < 4096, "the sender's line fits: {}", line.len());
    let (_, plan) = w.lines(&aid("a"), &[line.into_bytes()]);
    assert_eq!(w.labels(&plan), cat(&[&UNDELIVERABLE, &NOTICE]));
    let reason = w.records(&plan, "deadletter:a:undeliverable")[0]["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .ends_with("exceeds agent b's max_record (4096 bytes)"),
        "{reason}"
    );
}

/// A message the supervisor composes for an agent (here, one handed to
/// `to_agent` directly) that is over the agent's limit is refused into its
/// dead letters: never an append the inbox would refuse.
#[test]
fn a_composed_message_over_the_limit_is_refused_not_appended() {
    let mut w = World::new(&[("a", "writer"), ("b", "reviewer")]);
    w.policy("b").max_record = 1024;
    let mut plan = Plan::at(NOW);
    let big = sized("b", 1025);
    w.planner().to_agent(&mut plan, &aid("b"), &big);
    assert_eq!(
        w.labels(&plan),
        strs(&["deadletter:b:refused", "events:message_refused"])
    );
    assert!(plan.wake.is_empty());
}
