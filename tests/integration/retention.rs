//! Retention: live files are rotated into numbered, compressed segments
//! under `archive/` once consumed, by the process that consumes them — and a
//! SIGKILL anywhere in a rotation loses and doubles nothing, while `logs`,
//! `inbox` and `approvals` still read across the segments.

use crate::support::BIN;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_core::segments;
use society_testkit::{wait_until, Society};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Tiny thresholds, so that rotations happen all the time.
const TOML: &str = r#"
[defaults]
rotate_bytes = 4096
idle_exit = "1h"
backoff_initial = "1ms"
burst = 100000
[[agent]]
id = "e1"
brain = "echo"
"#;

fn all_records(s: &Society, live: &Path) -> Vec<Value> {
    segments::read_objects_all(&s.layout(), live).unwrap()
}

/// Replies per message id, across the orchestrator inbox's segments.
fn replies(s: &Society) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in all_records(s, &s.layout().orchestrator_inbox()) {
        if let Some(id) = r["reply_to"].as_str() {
            *out.entry(id.to_string()).or_default() += 1;
        }
    }
    out
}

/// No id twice across a file's segments and live part.
fn once_each(s: &Society, live: &Path) {
    let mut seen = HashMap::new();
    for r in all_records(s, live) {
        if let Some(id) = r["id"].as_str() {
            *seen.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{}: {twice:?}", live.display());
}

#[test]
fn rotations_under_sigkill_lose_and_double_nothing() {
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor();
    let mut sent = Vec::new();
    let mut kills = (0, 0);
    let started = Instant::now();
    for round in 0..40u64 {
        for n in 0..15 {
            let id = s.ok(&["send", "e1", &format!("round {round} message {n}")]);
            sent.push(id);
        }
        // Kill whoever is rotating or about to: the agent (its inbox, its
        // activity log) at once or after it caught up, or the supervisor
        // (outboxes, mirrors, its inbox: it rotates at its 1 s scans, so
        // it lives through a few of them between kills).
        if round % 2 == 1 {
            let answered = sent.len() - 15;
            wait_until(Duration::from_secs(30), "the round's replies", || {
                (replies(&s).len() >= answered).then_some(())
            });
        }
        std::thread::sleep(Duration::from_millis(37 * (round % 5)));
        if round % 8 == 7 {
            s.kill_supervisor();
            kills.1 += 1;
            s.start_supervisor();
        } else if round % 2 == 0 {
            if let Some(pid) = s.agent_pid("e1") {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                kills.0 += 1;
            }
        }
    }
    wait_until(Duration::from_secs(120), "every message answered", || {
        let r = replies(&s);
        sent.iter().all(|id| r.contains_key(id)).then_some(())
    });
    let r = replies(&s);
    for id in &sent {
        assert_eq!(r[id], 1, "{id} answered once");
    }
    let layout = s.layout();
    let e1 = s.agent("e1");
    // The supervisor rotates at its scans (every second).
    wait_until(
        Duration::from_secs(20),
        "the supervisor's rotations",
        || {
            [
                e1.outbox(),
                layout.orchestrator_inbox(),
                layout.agent_to_agent(),
                layout.system_events(),
            ]
            .iter()
            .all(|p| !segments::list(&layout, p).unwrap().is_empty())
            .then_some(())
        },
    );
    let rotated: Vec<(String, usize)> = [
        e1.inbox(),
        e1.outbox(),
        e1.activity(),
        layout.orchestrator_inbox(),
        layout.agent_to_agent(),
        layout.system_events(),
    ]
    .iter()
    .map(|p| {
        (
            p.strip_prefix(layout.state_dir())
                .unwrap()
                .display()
                .to_string(),
            segments::list(&layout, p).unwrap().len(),
        )
    })
    .collect();
    eprintln!(
        "{} messages, {} agent and {} supervisor SIGKILLs in {:?}; segments: {rotated:?}",
        sent.len(),
        kills.0,
        kills.1,
        started.elapsed()
    );
    for (file, n) in &rotated {
        assert!(*n > 0, "{file} was rotated");
    }
    for live in [
        e1.inbox(),
        e1.outbox(),
        layout.orchestrator_inbox(),
        layout.agent_to_agent(),
    ] {
        once_each(&s, &live);
    }
    // Readers see the whole history.
    let out = s.ok(&["inbox", "-o", "jsonl"]);
    let replies_listed = out
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["type"] == "reply"))
        .count();
    assert_eq!(
        replies_listed,
        sent.len(),
        "society inbox reads every segment"
    );
    let last = s.ok(&["inbox", "-o", "jsonl", "-n", "3"]);
    assert_eq!(last.lines().count(), 3);
    let handled = s
        .ok(&["logs", "e1", "-o", "jsonl"])
        .lines()
        .filter(|l| l.contains("\"event\":\"message_handled\""))
        .count();
    assert!(
        handled >= sent.len(),
        "society logs reads every segment: {handled}"
    );
    s.stop_supervisor();
    let out = s.run(&["fsck", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn approvals_are_found_in_archived_segments() {
    let toml = r#"
[defaults]
rotate_bytes = 2048
[[agent]]
id = "asker"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "ask"
actions = [ { do = "request_approval", plan = "do {{body.text}}" } ]
[[agent.brain.rules]]
actions = [ { do = "reply" } ]
"#;
    let mut s = Society::new(BIN, toml);
    s.start_supervisor();
    s.ok(&["send", "asker", "--type", "ask", "the thing"]);
    let pending = wait_until(Duration::from_secs(20), "the request", || {
        let v: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).unwrap();
        (v.as_array().unwrap().len() == 1).then_some(v)
    });
    // Enough replies to rotate the orchestrator's inbox past the request.
    let inbox = s.layout().orchestrator_inbox();
    for n in 0..40 {
        s.ok(&["send", "asker", &format!("filler {n} {}", "x".repeat(100))]);
    }
    wait_until(
        Duration::from_secs(30),
        "the request to be archived",
        || {
            let segs = segments::list(&s.layout(), &inbox).unwrap();
            segs.first().filter(|seg| seg.compressed).and_then(|seg| {
                let bytes = segments::read_segment(seg).unwrap();
                String::from_utf8_lossy(&bytes)
                    .contains("approval_request")
                    .then_some(())
            })
        },
    );
    let still: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).unwrap();
    assert_eq!(
        still, pending,
        "the pending request is read from its segment"
    );
    let id = pending[0]["id"].as_str().unwrap();
    s.ok(&["approve", id]);
    wait_until(Duration::from_secs(20), "the answer delivered", || {
        segments::read_objects_all(&s.layout(), &s.agent("asker").inbox())
            .unwrap()
            .iter()
            .any(|r| r["type"] == "approval_response")
            .then_some(())
    });
    // A restarted supervisor still knows the request was answered.
    s.kill_supervisor();
    s.start_supervisor();
    let out = s.run(&["approve", id]);
    assert_eq!(out.status.code(), Some(10), "{out:?}");
}

/// Sends `n` messages in bursts; returns their ids.
fn send_bursts(s: &Society, rounds: usize, per: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for round in 0..rounds {
        for n in 0..per {
            sent.push(s.ok(&[
                "send",
                "e1",
                "--no-start",
                &format!("{round}/{n} {}", "y".repeat(60)),
            ]));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    sent
}

fn answered_once(s: &Society, sent: &[String]) {
    let r = replies(s);
    for id in sent {
        assert_eq!(r.get(id), Some(&1), "{id} answered once");
    }
    for live in [
        s.agent("e1").inbox(),
        s.agent("e1").outbox(),
        s.layout().orchestrator_inbox(),
    ] {
        once_each(s, &live);
    }
}

#[test]
fn an_agent_killed_between_its_inbox_rotation_and_its_checkpoint_resumes_right() {
    // Every rotation of e1's inbox ends in a crash right after the rename.
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "agent.inbox.rotated")]);
    let sent = send_bursts(&s, 12, 20);
    wait_until(Duration::from_secs(60), "every message answered", || {
        let r = replies(&s);
        sent.iter().all(|id| r.contains_key(id)).then_some(())
    });
    let crashes = all_records(&s, &s.layout().system_events())
        .iter()
        .filter(|r| r["event"] == "agent_exited" && r["agent"] == "e1" && r["signal"] == "SIGABRT")
        .count();
    let segs = segments::list(&s.layout(), &s.agent("e1").inbox())
        .unwrap()
        .len();
    eprintln!(
        "{} messages; {segs} inbox rotations, {crashes} crashes right after one",
        sent.len()
    );
    assert!(
        crashes >= 2 && segs >= 2,
        "the window was hit: {crashes} crashes, {segs} segments"
    );
    answered_once(&s, &sent);
}

#[test]
fn a_supervisor_killed_between_an_outbox_rotation_and_its_checkpoint_resumes_right() {
    let mut s = Society::new(BIN, TOML);
    let faults = [("SOCIETY_FAULTS", "supervisor.outbox.rotated")];
    s.start_supervisor_with(&faults);
    let sent = send_bursts(&s, 12, 20);
    let mut crashes = 0;
    wait_until(Duration::from_secs(90), "every message answered", || {
        // The supervisor aborts at each outbox rotation: start it again, as
        // systemd would.
        if s.supervisor_exited() {
            crashes += 1;
            s.start_supervisor_with(&faults);
        }
        let r = replies(&s);
        sent.iter().all(|id| r.contains_key(id)).then_some(())
    });
    let segs = segments::list(&s.layout(), &s.agent("e1").outbox())
        .unwrap()
        .len();
    eprintln!(
        "{} messages; {segs} outbox rotations, {crashes} supervisor crashes right after one",
        sent.len()
    );
    assert!(
        crashes >= 1 && segs >= 1,
        "the window was hit: {crashes} crashes, {segs} segments"
    );
    answered_once(&s, &sent);
}
