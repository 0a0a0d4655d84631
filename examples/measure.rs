//! Quick measurements of the spine, run against the release binary:
//!
//! ```sh
//! cargo build --release && cargo run --release --example measure
//! ```
//!
//! Prints round-trip latency (orchestrator → echo agent → orchestrator, one
//! message at a time), recovery time after SIGKILL of an agent under load,
//! and the time to bring 200 keep-alive agents up. The full benchmark harness
//! with peers (issue 4/4) builds on this.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use society_core::jsonl::{append_one, Durability};
use society_core::{Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("society");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release ({})",
        bin.display()
    );
    bin
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn send_raw(s: &Society, to: &str) -> String {
    let env = Envelope::new(
        Party::Orchestrator,
        to.parse().unwrap(),
        "task",
        json!({"n": 1}),
    );
    append_one(
        &s.agent(to).inbox(),
        &env.to_line(),
        Durability::Durable,
        1 << 20,
    )
    .unwrap();
    env.id.to_string()
}

/// Waits for the orchestrator inbox to grow past `len` (tight poll, 50 µs).
fn wait_len(path: &std::path::Path, len: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) <= len {
        assert!(Instant::now() < deadline, "reply did not arrive");
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn round_trip(durability: &str) {
    let toml = format!("[defaults]\ndurability = \"{durability}\"\n[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n");
    let mut s = Society::new(bin(), &toml);
    s.start_supervisor();
    s.wait_state("echo", "idle", Duration::from_secs(10));
    let inbox = s.layout().orchestrator_inbox();
    let mut samples = Vec::new();
    for i in 0..520 {
        let len = std::fs::metadata(&inbox).map(|m| m.len()).unwrap_or(0);
        let t = Instant::now();
        send_raw(&s, "echo");
        wait_len(&inbox, len);
        if i >= 20 {
            samples.push(t.elapsed());
        }
    }
    samples.sort();
    println!(
        "round trip ({durability}), 500 sequential messages: p50 {:.2} ms, p99 {:.2} ms",
        pct(&samples, 0.5).as_secs_f64() * 1e3,
        pct(&samples, 0.99).as_secs_f64() * 1e3
    );
    let mut cli = Vec::new();
    for _ in 0..50 {
        let len = std::fs::metadata(&inbox).map(|m| m.len()).unwrap_or(0);
        let t = Instant::now();
        s.ok(&["send", "echo", "hi"]);
        wait_len(&inbox, len);
        cli.push(t.elapsed());
    }
    cli.sort();
    println!(
        "round trip ({durability}) through `society send` (includes the CLI process): p50 {:.2} ms",
        pct(&cli, 0.5).as_secs_f64() * 1e3
    );
    s.stop_supervisor();
}

fn recovery() {
    let toml = "[defaults]\nbackoff_initial = \"1ms\"\nburst = 1000\n[[agent]]\nid = \"worker\"\nkeep_alive = true\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"sleep\", ms = 5 }, { do = \"reply\" } ]\n";
    let mut s = Society::new(bin(), toml);
    s.start_supervisor();
    s.wait_state("worker", "idle", Duration::from_secs(10));
    let activity = s.agent("worker").activity();
    let mut samples = Vec::new();
    let status = s.agent("worker").status();
    for _ in 0..30 {
        for _ in 0..20 {
            send_raw(&s, "worker");
        }
        let (pid, gen) = wait_until(Duration::from_secs(10), "worker running", || {
            let st: society_core::state::AgentStatus =
                society_core::atomic::read_json(&status, "status")
                    .ok()
                    .flatten()?;
            (st.state == society_core::state::LiveState::Running).then_some((st.pid, st.gen))
        });
        let t = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        wait_until(
            Duration::from_secs(10),
            "next message handled by the new generation",
            || {
                records(&activity)
                    .iter()
                    .rev()
                    .any(|r| {
                        r["event"] == "message_handled" && r["gen"].as_u64().unwrap_or(0) > gen
                    })
                    .then_some(())
            },
        );
        samples.push(t.elapsed());
        wait_until(Duration::from_secs(10), "drained", || {
            (s.status("worker")["inbox_pending"] == 0).then_some(())
        });
    }
    samples.sort();
    println!(
        "recovery: SIGKILL mid-message → next message handled by the new process, 30 kills: p50 {:.1} ms, p99 {:.1} ms",
        pct(&samples, 0.5).as_secs_f64() * 1e3,
        pct(&samples, 0.99).as_secs_f64() * 1e3
    );
    s.stop_supervisor();
}

fn start_many(n: usize) {
    let mut toml = String::new();
    for i in 0..n {
        toml.push_str(&format!(
            "[[agent]]\nid = \"a{i}\"\nbrain = \"echo\"\nkeep_alive = true\n"
        ));
    }
    let mut s = Society::new(bin(), &toml);
    let t = Instant::now();
    s.start_supervisor();
    let layout = s.layout();
    wait_until(Duration::from_secs(120), "all agents idle", || {
        let all = (0..n).all(|i| {
            let st: Option<society_core::state::AgentStatus> = society_core::atomic::read_json(
                &layout.agent(&format!("a{i}").parse().unwrap()).status(),
                "s",
            )
            .ok()
            .flatten();
            st.is_some_and(|st| st.state == society_core::state::LiveState::Idle)
        });
        all.then_some(())
    });
    println!(
        "start-up: {n} keep-alive agents from supervisor start to all idle: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    s.stop_supervisor();
    println!(
        "shutdown: {n} agents stopped by `supervise` SIGTERM: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    round_trip("durable");
    round_trip("flushed");
    recovery();
    start_many(200);
}
