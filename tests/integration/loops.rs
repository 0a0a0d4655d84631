//! Agents that would talk forever stop by themselves: the two loops a user
//! meets first (two agents that answer everything; one agent that forwards
//! everything to an echo agent), with the defaults, each cut within seconds
//! and a few hundred log lines, with one escalation naming the sender. The
//! sanction that cuts them survives a supervisor restart, shows in
//! `society status`, and `society unblock` lifts it.

use crate::support::{system_events, wait_quiet, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every `.jsonl` file under the society's state directory.
fn jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            jsonl_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "jsonl") {
            out.push(p);
        }
    }
}

/// (total bytes, total lines) of every JSONL file of the society.
fn volume(s: &Society) -> (u64, usize) {
    let mut files = Vec::new();
    jsonl_files(s.layout().state_dir(), &mut files);
    files.iter().fold((0, 0), |(b, l), f| {
        let bytes = std::fs::read(f).unwrap_or_default();
        (
            b + bytes.len() as u64,
            l + bytes.iter().filter(|c| **c == b'\n').count(),
        )
    })
}

fn escalations(s: &Society) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "escalation")
        .collect()
}

/// Runs a loop from one `send` until the society is quiet; checks the
/// promises and returns the one escalation.
fn loop_stops(s: &mut Society, to: &str, sender: &str) -> Value {
    s.start_supervisor();
    let start = Instant::now();
    s.ok(&["send", to, "start"]);
    // Quiet: no JSONL file has grown for two seconds.
    let lasted = wait_quiet(
        Duration::from_secs(60),
        "the society to go quiet",
        Duration::from_secs(2),
        start,
        || volume(s).0,
    );
    let (_, lines) = volume(s);
    eprintln!("the loop from `send {to}` stopped after {lasted:?}; {lines} JSONL lines in all");
    assert!(
        lasted < Duration::from_secs(10),
        "the loop ran for {lasted:?}"
    );
    assert!(lines < 500, "{lines} log lines in all");
    let esc = escalations(s);
    assert_eq!(esc.len(), 1, "one escalation: {esc:#?}");
    let e = esc[0].clone();
    assert_eq!(e["body"]["agent"], sender, "{e:#}");
    assert!(
        e["body"]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("agent {sender} is blocked for 5m")),
        "{e:#}"
    );
    e
}

const ANSWER_EVERYTHING: &str = r#"
[[agent]]
id = "loopa"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "send", to = "loopb", body = { text = "again" } } ]

[[agent]]
id = "loopb"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "reply" } ]
"#;

#[test]
fn two_agents_that_answer_everything_stop_by_themselves() {
    let mut s = Society::new(BIN, ANSWER_EVERYTHING);
    loop_stops(&mut s, "loopa", "loopa");
    // The sanction stops the answers to notices: loopa's messages during the
    // block are refused without one, so nothing restarts the loop.
    let refused: Vec<Value> = records(&s.agent("loopb").deadletter())
        .into_iter()
        .filter(|r| r["event"] == "refused")
        .collect();
    assert!(
        refused.last().is_some_and(|r| r["reason"]
            .as_str()
            .unwrap()
            .starts_with("sender loopa is blocked")),
        "{refused:#?}"
    );
    let notices = records(&s.agent("loopa").inbox())
        .into_iter()
        .filter(|r| r["type"] == "message_blocked")
        .count();
    assert_eq!(
        notices, 3,
        "one notice per violation, none during the block"
    );
}

#[test]
fn an_agent_forwarding_everything_to_an_echo_agent_stops_by_itself() {
    let toml = r#"
[[agent]]
id = "fwd"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "forward", to = "e1" } ]

[[agent]]
id = "e1"
brain = "echo"
"#;
    let mut s = Society::new(BIN, toml);
    loop_stops(&mut s, "fwd", "fwd");
}

#[test]
fn a_sanction_survives_a_supervisor_restart_shows_in_status_and_unblock_lifts_it() {
    let mut s = Society::new(BIN, ANSWER_EVERYTHING);
    loop_stops(&mut s, "loopa", "loopa");
    let row = s.status("loopa");
    assert_eq!(row["sanction"]["level"], 1, "{row:#}");
    assert!(row["sanction"]["blocked_until"].is_string(), "{row:#}");
    let table = s.ok(&["status"]);
    assert!(table.contains("blocked"), "{table}");

    // A SIGKILLed supervisor's successor still blocks loopa.
    s.kill_supervisor();
    s.start_supervisor();
    let before = records(&s.agent("loopb").inbox()).len();
    let sent_before = records(&s.agent("loopa").outbox()).len();
    s.ok(&["send", "loopa", "try again"]);
    let refused = wait_until(SOON, "loopa's message refused", || {
        // The refusal of loopa's newest message, not one from the loop.
        let outbox = records(&s.agent("loopa").outbox());
        if outbox.len() <= sent_before {
            return None;
        }
        let last = outbox.last()?["id"].clone();
        records(&s.agent("loopb").deadletter())
            .into_iter()
            .find(|r| {
                r["event"] == "refused"
                    && r["id"] == last
                    && r["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("sender loopa is blocked")
            })
    });
    assert_eq!(
        records(&s.agent("loopb").inbox()).len(),
        before,
        "{refused:#}"
    );
    assert_eq!(
        escalations(&s).len(),
        1,
        "no new escalation during the block"
    );

    // Lifted: loopa's messages reach loopb again — and the loop they
    // restart is cut again, by a new sanction, escalated once more.
    s.ok(&["unblock", "loopa"]);
    wait_until(SOON, "the unblock to be applied", || {
        system_events(&s, "sender_unblocked")
            .iter()
            .any(|r| r["agent"] == "loopa")
            .then_some(())
    });
    // `status` reads guard.json, which the supervisor saves just after the
    // batch that wrote the event: wait for it too.
    wait_until(SOON, "status to show no sanction", || {
        s.status("loopa")["sanction"].is_null().then_some(())
    });
    s.ok(&["send", "loopa", "once more"]);
    wait_until(SOON, "loopa's message delivered", || {
        (records(&s.agent("loopb").inbox()).len() > before).then_some(())
    });
    wait_until(SOON, "the second sanction's escalation", || {
        (escalations(&s).len() == 2).then_some(())
    });
}
