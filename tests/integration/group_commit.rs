//! Group commit under SIGKILL: a fast agent handles bursts in batches (one
//! checkpoint and one outbox write per batch). Killed at arbitrary moments —
//! mid-batch included — it still answers every message exactly once and
//! never writes an output twice: the interrupted range is replayed line by
//! line against what the batch already wrote.

use crate::support::BIN;
use serde_json::json;
use society_core::jsonl::{Appender, Durability};
use society_core::{Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

#[test]
fn bursts_survive_sigkill_mid_batch_exactly_once() {
    let toml = "[defaults]\nbackoff_initial = \"1ms\"\nburst = 1000\nrate_limit = 1000000\nflood_threshold = 1000000\n[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n";
    let mut s = Society::new(BIN, toml);
    s.start_supervisor();
    s.wait_state("echo", "idle", Duration::from_secs(20));
    let inbox = s.agent("echo").inbox();
    let mut sent = Vec::new();
    let mut kills = 0;
    let mut window = 0;
    for round in 0..12 {
        let burst: Vec<Envelope> = (0..250)
            .map(|i| {
                Envelope::new(
                    Party::Orchestrator,
                    Party::Agent("echo".parse().expect("id")),
                    "task",
                    json!({"r": round, "i": i}),
                )
            })
            .collect();
        let lines: Vec<Vec<u8>> = burst.iter().map(Envelope::to_line).collect();
        Appender::open(&inbox, Durability::Durable, usize::MAX)
            .expect("open")
            .append_batch(&lines)
            .expect("append");
        sent.extend(burst.iter().map(|e| e.id.to_string()));
        // Aim for the narrowest window: the batch's outputs are in the outbox
        // but its checkpoint still says "in flight". Otherwise kill wherever.
        let pid = wait_until(Duration::from_secs(20), "the agent up", || {
            s.agent_pid("echo")
        });
        let agent = s.agent("echo");
        let outbox_path = agent.outbox();
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while std::time::Instant::now() < deadline {
            // As the next process reads it: `inflight.json` merged in.
            let flight = society_core::state::AgentCheckpoint::read(&agent)
                .ok()
                .flatten()
                .and_then(|c| c.in_flight);
            let outbox_len = std::fs::metadata(&outbox_path).map_or(0, |m| m.len());
            if flight.is_some_and(|f| f.batch_end.is_some() && outbox_len > f.outbox_offset) {
                window += 1;
                break;
            }
        }
        if nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .is_ok()
        {
            kills += 1;
        }
        wait_until(Duration::from_secs(20), "a new process", || {
            s.agent_pid("echo").filter(|p| *p != pid)
        });
    }
    let out = s.layout().orchestrator_inbox();
    wait_until(Duration::from_secs(60), "every reply", || {
        (records(&out).len() >= sent.len()).then_some(())
    });

    let replies = records(&out);
    let mut per: HashMap<String, usize> = HashMap::new();
    for r in &replies {
        *per.entry(r["reply_to"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let wrong: Vec<_> = sent
        .iter()
        .filter(|id| per.get(*id).copied() != Some(1))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} messages not answered exactly once, e.g. {:?}",
        wrong.len(),
        sent.len(),
        wrong.first()
    );
    let outbox = records(&s.agent("echo").outbox());
    let ids: HashSet<&str> = outbox.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        outbox.len(),
        "an output was written twice to the outbox"
    );
    assert_eq!(outbox.len(), sent.len());

    let activity = records(&s.agent("echo").activity());
    let batched = activity
        .iter()
        .filter(|r| r["event"] == "message_handled" && r["batch"] == true)
        .count();
    assert!(
        batched > sent.len() / 2,
        "most messages went through group commit ({batched})"
    );
    let resumed = activity
        .iter()
        .filter(|r| r["event"] == "started" && !r["resumes"].is_null())
        .count();
    assert!(
        resumed >= 1,
        "no kill landed mid-batch in {kills} kills; the test proved nothing"
    );
    assert!(
        window >= 1,
        "no kill landed between a batch's outbox write and its checkpoint"
    );
    let ckpt = crate::support::agent_state(&s.agent("echo")).expect("ckpt");
    assert!(ckpt.get("replay").is_none(), "replay finished: {ckpt}");
    eprintln!("{} messages, {kills} kills ({window} after the batch's outbox write), {resumed} resumed mid-batch, {batched} handled in batches", sent.len());
    s.stop_supervisor();
}
