//! Routing policy and receiver protection, through a real supervisor and real
//! agents: `deny` rules and a `deny` default block messages (and tell the
//! sender why), `approve` rules hold them until the orchestrator decides, and
//! two agents replying to each other forever are cut off by the flood
//! detector or the hop limit.

use crate::support::{json_of, system_events, wait_quiet, BIN, SOON};
use serde_json::{json, Value};
use society_testkit::{records, wait_until, Society};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Records of `path` with `"type": kind` (messages) or `"event": kind` (logs).
fn of_kind(path: &Path, kind: &str) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r["type"] == kind || r["event"] == kind)
        .collect()
}

/// Asks `sender` (whose script sends a `note` to `body.to`) to message `to`;
/// returns the id of the note it wrote, once it is in its outbox.
fn ask_sender(s: &Society, to: &str, text: &str) -> String {
    let before = records(&s.agent("sender").outbox()).len();
    let body = json!({"to": to, "text": text}).to_string();
    s.ok(&["send", "sender", "--json", &body]);
    let outbox = s.agent("sender").outbox();
    wait_until(SOON, &format!("sender's note to {to}"), || {
        let all = records(&outbox);
        (all.len() > before).then(|| all[before]["id"].as_str().unwrap().to_string())
    })
}

/// Waits for the `message_blocked` the supervisor sends `sender` about `id`.
fn wait_blocked(s: &Society, id: &str) -> Value {
    let inbox = s.agent("sender").inbox();
    wait_until(SOON, &format!("message_blocked for {id}"), || {
        of_kind(&inbox, "message_blocked")
            .into_iter()
            .find(|r| r["reply_to"] == id)
    })
}

/// Every message id in an agent's inbox.
fn inbox_ids(s: &Society, agent: &str) -> Vec<String> {
    records(&s.agent(agent).inbox())
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

/// `event` records of `system-events.jsonl` about message `id`.
fn events_about(s: &Society, event: &str, id: &str) -> Vec<Value> {
    system_events(s, event)
        .into_iter()
        .filter(|r| r["id"] == id)
        .collect()
}

/// Waits for `event` about message `id` in `system-events.jsonl` (written in
/// the same batch as what the test saw, but possibly a moment later), then
/// returns every such record.
fn wait_system_events(s: &Society, event: &str, id: &str) -> Vec<Value> {
    wait_until(SOON, &format!("{event} for {id} in system-events"), || {
        let found = events_about(s, event, id);
        (!found.is_empty()).then_some(found)
    })
}

/// The routed copy of a note reaches `agent` (proves the router has passed
/// everything the sender wrote before it).
fn wait_delivered(s: &Society, agent: &str, id: &str) {
    wait_until(SOON, &format!("{id} in {agent}'s inbox"), || {
        inbox_ids(s, agent).iter().any(|i| i == id).then_some(())
    });
}

const SINK: &str = r#"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "log", message = "got {{type}} from {{from}}" } ]
"#;

fn sender_rules(targets: &[&str]) -> String {
    let mut toml = String::from("[[agent]]\nid = \"sender\"\n[agent.brain]\nkind = \"script\"\n");
    for t in targets {
        toml.push_str(&format!(
            "[[agent.brain.rules]]\ntype = \"task\"\nwhen = {{ to = \"{t}\" }}\n\
             actions = [ {{ do = \"send\", to = \"{t}\", type = \"note\", body = {{ text = \"{{{{body.text}}}}\" }} }} ]\n"
        ));
    }
    toml.push_str(
        "[[agent.brain.rules]]\nactions = [ { do = \"log\", message = \"{{type}}\" } ]\n",
    );
    toml
}

fn sink(id: &str, role: &str) -> String {
    format!("[[agent]]\nid = \"{id}\"\nrole = \"{role}\"\n{SINK}")
}

fn allow_default_toml() -> String {
    let mut t = String::from(
        r#"
[defaults]
idle_exit = "1s"
heartbeat = "100ms"

[routing]
default = "allow"
[[routing.rule]]
from = "sender"
to = "vault"
action = "deny"
[[routing.rule]]
from = "role:sender"
to = "role:gated"
type = "note"
action = "approve"

"#,
    );
    t.push_str(&sender_rules(&["vault", "gate", "open"]));
    t.push_str(&sink("vault", "vault"));
    t.push_str(&sink("gate", "gated"));
    t.push_str(&sink("open", "open"));
    t
}

#[test]
fn deny_and_approve_rules_with_an_allow_default() {
    let mut s = Society::new(BIN, &allow_default_toml());
    s.start_supervisor();

    // No rule matches: the default (allow) delivers.
    let free = ask_sender(&s, "open", "hello");
    wait_delivered(&s, "open", &free);

    // Rule 1 denies: the vault never sees it, the sender is told why.
    let denied = ask_sender(&s, "vault", "the keys");
    let note = wait_blocked(&s, &denied);
    assert_eq!(note["from"], "supervisor");
    assert_eq!(note["body"]["to"], "vault");
    assert_eq!(note["body"]["type"], "note");
    assert_eq!(note["body"]["reason"], "denied by routing rule 1");
    let sys = wait_system_events(&s, "message_blocked", &denied);
    assert_eq!(sys.len(), 1, "{sys:?}");
    assert_eq!(sys[0]["agent"], "sender");
    assert_eq!(sys[0]["reason"], "denied by routing rule 1");

    // Rule 2 holds: an approval request, not a delivery.
    let held = ask_sender(&s, "gate", "one");
    let req = wait_until(SOON, "the route approval request", || {
        let v = json_of(&s, &["approvals", "--json"]);
        (v.as_array()?.len() == 1).then(|| v[0].clone())
    });
    assert_eq!(req["kind"], "route");
    assert_eq!(req["from"], "supervisor");
    assert_eq!(req["body"]["rule"], 2);
    assert_eq!(req["body"]["held"]["id"], held.as_str());
    assert_eq!(req["body"]["held"]["body"]["text"], "one");
    assert!(s.ok(&["approvals"]).contains("sender→gate"));
    assert_eq!(wait_system_events(&s, "message_held", &held).len(), 1);
    let req_id = req["id"].as_str().unwrap().to_string();
    // A later message through the router proves the held one was passed by.
    let probe = ask_sender(&s, "open", "probe 1");
    wait_delivered(&s, "open", &probe);
    assert!(inbox_ids(&s, "gate").is_empty(), "held, not delivered");

    let out = s.ok(&["approve", &req_id]);
    assert!(
        out.contains("delivers the held message sender→gate"),
        "{out}"
    );
    wait_delivered(&s, "gate", &held);
    // Exactly once, even after a supervisor crash and restart.
    s.kill_supervisor();
    s.start_supervisor();
    let probe = ask_sender(&s, "open", "probe 2");
    wait_delivered(&s, "open", &probe);
    assert_eq!(inbox_ids(&s, "gate"), std::slice::from_ref(&held));
    assert_eq!(json_of(&s, &["approvals", "--json"]), json!([]));

    // Reject, answered while the supervisor is down: the held message is
    // dropped and the sender is told once the supervisor is back.
    let rejected = ask_sender(&s, "gate", "two");
    let req = wait_until(SOON, "the second route request", || {
        let v = json_of(&s, &["approvals", "--json"]);
        (v.as_array()?.len() == 1).then(|| v[0].clone())
    });
    assert_eq!(req["body"]["held"]["id"], rejected.as_str());
    s.kill_supervisor();
    let out = s.ok(&[
        "reject",
        req["id"].as_str().unwrap(),
        "--feedback",
        "not today",
    ]);
    assert!(
        out.contains("not running") && out.contains("blocks the held message sender→gate"),
        "{out}"
    );
    s.start_supervisor();
    let note = wait_blocked(&s, &rejected);
    assert_eq!(
        note["body"]["reason"],
        "rejected by the orchestrator: not today"
    );
    let probe = ask_sender(&s, "open", "probe 3");
    wait_delivered(&s, "open", &probe);
    assert_eq!(
        inbox_ids(&s, "gate"),
        [held],
        "the rejected one never arrives"
    );
    assert_eq!(
        wait_system_events(&s, "message_blocked", &rejected).len(),
        1
    );

    // Nothing ever reached the vault: its agent never even started.
    assert!(inbox_ids(&s, "vault").is_empty());
    assert!(records(&s.agent("vault").activity()).is_empty());
    assert_eq!(s.status("vault")["state"], "dormant");
    assert_eq!(
        of_kind(&s.agent("sender").inbox(), "message_blocked").len(),
        2
    );
}

#[test]
fn a_deny_default_blocks_what_no_rule_allows() {
    let mut toml = String::from(
        r#"
[defaults]
idle_exit = "1s"
heartbeat = "100ms"

[routing]
default = "deny"
[[routing.rule]]
from = "sender"
to = "friend"
action = "allow"

"#,
    );
    toml.push_str(&sender_rules(&["friend", "stranger"]));
    toml.push_str(&sink("friend", "friend"));
    toml.push_str(&sink("stranger", "stranger"));
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();

    let blocked = ask_sender(&s, "stranger", "hi");
    let note = wait_blocked(&s, &blocked);
    assert_eq!(note["body"]["reason"], "denied by the routing default");
    assert_eq!(note["body"]["to"], "stranger");
    let allowed = ask_sender(&s, "friend", "hi");
    wait_delivered(&s, "friend", &allowed);
    // The router keeps file order: the allowed note came after the blocked one.
    assert!(inbox_ids(&s, "stranger").is_empty());
    assert_eq!(inbox_ids(&s, "friend"), [allowed]);
    let sys = wait_system_events(&s, "message_blocked", &blocked);
    assert_eq!(sys.len(), 1);
    assert_eq!(sys[0]["reason"], "denied by the routing default");
    assert!(of_kind(&s.agent("friend").inbox(), "message_blocked").is_empty());
}

/// Two agents that reply to every message with `body` (`ping` first sends
/// one to `pong` when told to `start`). Replying to *every* message includes
/// the supervisor's `message_blocked` notice: that reply goes to the
/// supervisor, which answers nobody, so it must not restart the loop.
fn loop_toml(policy: &str, body: &str) -> String {
    format!(
        r#"
[defaults]
idle_exit = "1s"
heartbeat = "100ms"
{policy}

[[agent]]
id = "ping"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "start"
actions = [ {{ do = "send", to = "pong", type = "chat", body = {body} }} ]
[[agent.brain.rules]]
actions = [ {{ do = "reply", type = "chat", body = {body} }} ]

[[agent]]
id = "pong"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ {{ do = "reply", type = "chat", body = {body} }} ]
"#
    )
}

/// Waits until no inbox of `agents` has grown for two seconds; returns how
/// long the traffic lasted from `start`.
fn wait_inboxes_quiet(s: &Society, agents: &[&str], start: Instant) -> Duration {
    let paths: Vec<PathBuf> = agents.iter().map(|a| s.agent(a).inbox()).collect();
    let sizes = || -> Vec<u64> {
        paths
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .collect()
    };
    let quiet = Duration::from_secs(2);
    wait_quiet(
        Duration::from_secs(40),
        "the loop to stop",
        quiet,
        start,
        sizes,
    )
}

#[test]
fn the_flood_detector_and_sanctions_stop_two_agents_sending_forever() {
    // Both send (not reply) the same chat to each other: the same message
    // again and again. The flood detector refuses the 4th copy; the refusals
    // are violations, and the 3rd blocks the sender, silently.
    let send = |to: &str| {
        format!(
            r#"actions = [ {{ do = "send", to = "{to}", type = "chat", body = {{ text = "again" }} }} ]"#
        )
    };
    let toml = format!(
        "[defaults]\nidle_exit = \"1s\"\nheartbeat = \"100ms\"\n\n[[agent]]\nid = \"ping\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\n{}\n\n[[agent]]\nid = \"pong\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\n{}\n",
        send("pong"),
        send("ping")
    );
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    let start = Instant::now();
    s.ok(&["send", "ping", "--type", "chat", "go"]);
    let lasted = wait_inboxes_quiet(&s, &["ping", "pong"], start);
    assert!(lasted < Duration::from_secs(15), "looped for {lasted:?}");
    let refused: Vec<Value> = of_kind(&s.agent("pong").deadletter(), "refused")
        .into_iter()
        .chain(of_kind(&s.agent("ping").deadletter(), "refused"))
        .collect();
    let floods = refused
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("flood: more than 3 identical messages from")
        })
        .count();
    assert!(floods >= 3, "{refused:#?}");
    assert!(
        refused
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("is blocked")),
        "the sanctioned sender's last message is refused as blocked: {refused:#?}"
    );
    let escalations = of_kind(&s.layout().orchestrator_inbox(), "escalation");
    assert_eq!(
        escalations.len(),
        1,
        "one sanction, escalated once: {escalations:#?}"
    );
    s.wait_state("ping", "dormant", SOON);
    s.wait_state("pong", "dormant", SOON);
}

#[test]
fn the_hop_limit_stops_two_agents_replying_forever_with_new_bodies() {
    // Bodies differ (each names the message it answers): no flood, and the
    // rate limit only paces. The hop count cuts the loop at max_hops.
    let toml = loop_toml("max_hops = 12", r#"{ seen = "{{id}}" }"#);
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    let start = Instant::now();
    s.ok(&["send", "ping", "--type", "start", "go"]);
    let lasted = wait_inboxes_quiet(&s, &["ping", "pong"], start);
    assert!(lasted < Duration::from_secs(15), "looped for {lasted:?}");

    // Hop 1 is ping's first chat; the message of hop 13 is the first past
    // the limit, and it is ping's (odd hops are ping's).
    let chats = |a: &str| of_kind(&s.agent(a).inbox(), "chat").len();
    assert_eq!(
        (chats("pong"), chats("ping")),
        (6, 6),
        "hops 1..=12 delivered"
    );
    let cut: Vec<Value> = of_kind(&s.agent("ping").deadletter(), "undeliverable");
    assert_eq!(cut.len(), 1, "{cut:?}");
    let reason = cut[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("hop limit: 13 agent hops"), "{reason}");
    let cut_id = cut[0]["id"].as_str().unwrap();
    assert!(!inbox_ids(&s, "pong").iter().any(|i| i == cut_id));
    assert!(
        of_kind(&s.agent("ping").inbox(), "message_blocked").is_empty(),
        "no notice for a cut conversation: it would only be answered"
    );
    let escalations: Vec<Value> = wait_until(SOON, "the escalation", || {
        let e = of_kind(&s.layout().orchestrator_inbox(), "escalation");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0]["body"]["agent"], "ping");
    assert_eq!(escalations[0]["body"]["context"]["hops"], 13);
}
