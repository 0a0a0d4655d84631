//! Idle agents sleep: an agent with nothing to do wakes about once per
//! heartbeat, not in a loop. (Regression: notify reports *opens* of a watched
//! inbox; the supervisor once answered every agent read with a wake-up, and
//! agents and supervisor ping-ponged at full speed while idle.) Counts
//! wake-ups, not time, so machine load cannot make it flaky.

use crate::support::BIN;
use society_testkit::{wait_until, Society};
use std::time::Duration;

/// Wake-ups of every thread of a process.
fn process_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| t.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
                .unwrap_or_default();
            text.lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

#[test]
fn idle_agents_wake_about_once_per_heartbeat() {
    let mut toml = String::from("[defaults]\nheartbeat = \"1s\"\n");
    for i in 0..5 {
        toml.push_str(&format!(
            "[[agent]]\nid = \"a{i}\"\nbrain = \"echo\"\nkeep_alive = true\n"
        ));
    }
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    let pids: Vec<u32> = (0..5)
        .map(|i| {
            let id = format!("a{i}");
            s.wait_state(&id, "idle", Duration::from_secs(20));
            s.agent_pid(&id).expect("running")
        })
        .collect();
    // Traffic first, so the watcher has seen reads of every inbox.
    for i in 0..5 {
        s.ok(&["send", &format!("a{i}"), "hello"]);
    }
    wait_until(Duration::from_secs(20), "five replies", || {
        (society_testkit::records(&s.layout().orchestrator_inbox()).len() == 5).then_some(())
    });
    let before: Vec<u64> = pids.iter().map(|p| process_switches(*p)).collect();
    // A window of several heartbeats, measured in wake-ups, not time.
    let window = std::time::Instant::now();
    while window.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (pid, b) in pids.iter().zip(before) {
        let woke = process_switches(*pid) - b;
        // ~3 heartbeats (+ their status writes) in 3 s; the busy loop did thousands.
        assert!(woke < 60, "idle agent {pid} woke {woke} times in 3 s");
    }
    s.stop_supervisor();
}
