//! 200 live agent processes under one supervisor: more than the kernel's
//! default 128 inotify instances per user, so this only works because agents
//! do not each hold one (the supervisor's single watcher wakes them).

use crate::support::BIN;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::lock::{self, LockState};
use society_core::state::{AgentStatus, LiveState};
use society_core::{atomic, AgentId, Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::{Duration, Instant};

const AGENTS: usize = 200;
/// How many of the messages go through `society send` rather than a direct append.
const VIA_CLI: usize = 5;

fn id(n: usize) -> String {
    format!("echo-{n:03}")
}

fn society_toml() -> String {
    let mut toml = String::from("[defaults]\nheartbeat = \"5s\"\nhang_timeout = \"60s\"\n");
    for n in 0..AGENTS {
        let _ = write!(
            toml,
            "\n[[agent]]\nid = \"{}\"\nrole = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n",
            id(n)
        );
    }
    toml
}

/// Pid of the agent if its lock is held and it reports idle.
fn idle_pid(s: &Society, id: &str) -> Option<u32> {
    let paths = s.agent(id);
    let LockState::Held(Some(info)) = lock::probe(&paths.lock()).unwrap() else {
        return None;
    };
    let st: AgentStatus = atomic::read_json(&paths.status(), "agent status")
        .ok()
        .flatten()?;
    (st.pid == info.pid && st.state == LiveState::Idle).then_some(info.pid)
}

/// Open file descriptors of `pid` that are inotify instances.
fn inotify_instances(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.as_os_str() == "anon_inode:inotify")
        })
        .count()
}

#[test]
fn two_hundred_live_agents() {
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    eprintln!("fs.inotify.max_user_instances = {limit}; live agents = {AGENTS}");

    let mut s = Society::new(BIN, &society_toml());
    let t0 = Instant::now();
    let supervisor = s.start_supervisor();
    let pids: BTreeMap<String, u32> =
        wait_until(Duration::from_secs(60), "all 200 agents idle", || {
            let mut pids = BTreeMap::new();
            for n in 0..AGENTS {
                pids.insert(id(n), idle_pid(&s, &id(n))?);
            }
            Some(pids)
        });
    let ready = t0.elapsed();
    eprintln!("{AGENTS} agents ready (lock held, idle) in {ready:?}");
    let distinct: BTreeSet<u32> = pids.values().copied().collect();
    assert_eq!(distinct.len(), AGENTS, "one process per agent");

    // No agent holds an inotify instance; the supervisor holds the one.
    for (agent, pid) in &pids {
        assert_eq!(inotify_instances(*pid), 0, "agent {agent} (pid {pid})");
    }
    assert_eq!(inotify_instances(supervisor), 1, "the supervisor's watcher");

    // One message each: most appended straight to the inbox (as the CLI
    // does), a few through `society send`.
    let t1 = Instant::now();
    let mut sent: BTreeMap<String, String> = BTreeMap::new();
    for n in VIA_CLI..AGENTS {
        let to = AgentId::new(id(n)).unwrap();
        let env = Envelope::new(
            Party::Orchestrator,
            Party::Agent(to.clone()),
            "task",
            json!({"text": format!("hello {n}")}),
        );
        append_one(
            &s.layout().agent(&to).inbox(),
            &env.to_line(),
            Durability::Flushed,
            society_core::DEFAULT_MAX_RECORD,
        )
        .unwrap();
        sent.insert(env.id.to_string(), id(n));
    }
    for n in 0..VIA_CLI {
        let msg = s.ok(&["send", &id(n), &format!("hello {n}")]);
        sent.insert(msg, id(n));
    }
    assert_eq!(sent.len(), AGENTS);

    let inbox = s.layout().orchestrator_inbox();
    let replies: Vec<Value> = wait_until(Duration::from_secs(60), "200 replies", || {
        let r = records(&inbox);
        (r.len() >= AGENTS).then_some(r)
    });
    let replied = t1.elapsed();
    eprintln!("{AGENTS} replies in {replied:?} after the first send");

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replies {
        let to = r["reply_to"].as_str().unwrap().to_string();
        let from = sent
            .get(&to)
            .unwrap_or_else(|| panic!("reply to an unknown id: {r}"));
        assert_eq!(r["from"], from.as_str(), "{r}");
        assert_eq!(r["gen"], 1, "no agent restarted: {r}");
        *seen.entry(to).or_default() += 1;
    }
    assert_eq!(seen.len(), AGENTS, "every message answered");
    assert!(seen.values().all(|c| *c == 1), "each exactly once");
    // Nothing else trickles in after the last reply.
    assert_eq!(records(&inbox).len(), AGENTS);

    // The same processes did the work: all still up, none restarted.
    for (agent, pid) in &pids {
        assert_eq!(s.agent_pid(agent), Some(*pid), "agent {agent}");
    }

    let t2 = Instant::now();
    assert!(s.stop_supervisor().success());
    eprintln!(
        "supervisor and {AGENTS} agents stopped in {:?}",
        t2.elapsed()
    );
    assert!(s.processes().is_empty(), "left behind: {:?}", s.processes());
    for n in 0..AGENTS {
        assert_eq!(
            lock::probe(&s.agent(&id(n)).lock()).unwrap(),
            LockState::Free,
            "{}",
            id(n)
        );
    }
}
