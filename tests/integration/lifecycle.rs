//! The agent lifecycle as a user sees it through `society status --json` and
//! the logs: on-demand activation, idle exit, hang detection with a
//! process-group kill, crash loops ending in `failed`, `stop`/`restart`
//! holds, and `down` leaving nothing behind.

use crate::support::{lock_free, replies_to, wait_reply, Reaped, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Records of `messages/system-events.jsonl` about `agent`, in order.
fn events_of(s: &Society, agent: &str) -> Vec<Value> {
    records(&s.layout().system_events())
        .into_iter()
        .filter(|r| r["agent"] == agent)
        .collect()
}

fn event_names(s: &Society, agent: &str) -> Vec<String> {
    events_of(s, agent)
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("").to_string())
        .collect()
}

fn count_events(s: &Society, agent: &str, event: &str) -> usize {
    event_names(s, agent).iter().filter(|e| *e == event).count()
}

/// A negative check: `cond` must hold at every poll for the whole of `period`.
fn holds_for(period: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        assert!(cond(), "expected {what} for {period:?}, but it changed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cond(), "expected {what} for {period:?}, but it changed");
}

fn pid_alive(pid: u32) -> bool {
    // A reaped pid is gone from /proc; a zombie has an empty cmdline.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

const LIFECYCLE_TOML: &str = r#"
[defaults]
idle_exit = "1s"
heartbeat = "200ms"
hang_timeout = "10s"

[[agent]]
id = "worker"
role = "writer"

[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "slow"
actions = [{ do = "sleep", ms = 2500 }, { do = "reply" }]

[[agent.brain.rules]]
type = "task"
actions = [{ do = "sleep", ms = 1000 }, { do = "reply" }]
"#;

#[test]
fn status_json_reports_every_field_through_the_lifecycle() {
    let mut s = Society::new(BIN, LIFECYCLE_TOML);
    // The supervisor provisions the declared agent; with nothing to do it stays dormant.
    s.start_supervisor();
    let row = s.status("worker");
    for field in [
        "id",
        "role",
        "state",
        "pid",
        "heartbeat_age_ms",
        "inbox_pending",
        "case",
        "restarts",
        "generation",
    ] {
        assert!(
            row.get(field).is_some(),
            "status row lacks {field:?}: {row}"
        );
    }
    assert_eq!(row["id"], "worker", "{row}");
    assert_eq!(row["role"], "writer", "{row}");
    assert_eq!(row["state"], "dormant", "{row}");
    assert_eq!(row["pid"], Value::Null, "{row}");
    assert_eq!(row["heartbeat_age_ms"], Value::Null, "{row}");
    assert_eq!(row["inbox_pending"], 0, "{row}");
    assert_eq!(row["case"], Value::Null, "{row}");
    assert_eq!(row["restarts"], 0, "{row}");
    assert_eq!(row["generation"], 0, "{row}");
    assert!(s.stop_supervisor().success());

    // Mail with no supervisor to act on it: pending.
    let first = s.ok(&[
        "send",
        "worker",
        "first",
        "--type",
        "slow",
        "--case",
        "case-1",
        "--no-start",
    ]);
    let row = s.status("worker");
    assert_eq!(row["state"], "pending", "{row}");
    assert_eq!(row["inbox_pending"], 1, "{row}");
    assert_eq!(row["pid"], Value::Null, "{row}");
    assert_eq!(s.agent_pid("worker"), None);

    // A supervisor starts it on demand; it shows the case it is working on.
    s.start_supervisor();
    let row = wait_until(SOON, "worker running the first message", || {
        let row = s.status("worker");
        (row["state"] == "running").then_some(row)
    });
    assert_eq!(row["case"], "case-1", "{row}");
    assert_eq!(row["handled"], 0, "{row}");
    assert_eq!(row["generation"], 1, "{row}");
    let pid = row["pid"].as_u64().expect("a running agent has a pid");
    assert_eq!(s.agent_pid("worker"), Some(pid as u32));
    assert!(row["heartbeat_age_ms"].as_u64().unwrap() < 10_000, "{row}");

    // A second message waits behind the first (the in-flight one counts
    // until it is handled: `inbox_pending` is everything past the cursor).
    let second = s.ok(&["send", "worker", "second", "--case", "case-2"]);
    let row = s.status("worker");
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(row["case"], "case-1", "{row}");
    assert_eq!(row["inbox_pending"], 2, "{row}");

    let row = wait_until(SOON, "worker running the second message", || {
        let row = s.status("worker");
        (row["state"] == "running" && row["case"] == "case-2").then_some(row)
    });
    assert_eq!(row["inbox_pending"], 1, "{row}");
    assert_eq!(row["handled"], 1, "{row}");
    assert_eq!(row["pid"], pid, "the same process handles both: {row}");

    let row = s.wait_state("worker", "idle", SOON);
    assert_eq!(row["case"], Value::Null, "{row}");
    assert_eq!(row["inbox_pending"], 0, "{row}");
    assert_eq!(row["handled"], 2, "{row}");
    assert_eq!(row["pid"], pid, "{row}");
    assert!(row["heartbeat_age_ms"].as_u64().is_some());
    // The router delivers replies on its own schedule, not with the agent's state.
    wait_reply(&s, &first);
    wait_reply(&s, &second);
    assert_eq!(replies_to(&s, &first).len(), 1);
    assert_eq!(replies_to(&s, &second).len(), 1);

    // idle_exit = 1s: the process leaves, the folder stays.
    let row = s.wait_state("worker", "dormant", SOON);
    assert_eq!(row["pid"], Value::Null, "{row}");
    assert_eq!(row["heartbeat_age_ms"], Value::Null, "{row}");
    assert_eq!(row["case"], Value::Null, "{row}");
    assert_eq!(row["inbox_pending"], 0, "{row}");
    assert_eq!(row["generation"], 1, "{row}");
    assert_eq!(row["restarts"], 0, "{row}");
    assert!(lock_free(&s.agent("worker").lock()));
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "{:?}", s.processes());
}

const HANG_TOML: &str = r#"
[defaults]
idle_exit = "30s"
heartbeat = "200ms"
hang_timeout = "2s"
grace = "500ms"
backoff_initial = "20ms"

[[agent]]
id = "stuck"
role = "stuck"

[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "task"
actions = [{ do = "hang", until_attempt = 1 }, { do = "reply" }]
"#;

#[test]
fn hung_agent_is_killed_with_its_group_and_restarted() {
    let mut s = Society::new(BIN, HANG_TOML);
    s.start_supervisor();
    let msg = s.ok(&["send", "stuck", "are you there?"]);
    let row = s.wait_state("stuck", "running", SOON);
    let hung_pid = row["pid"].as_u64().unwrap() as u32;
    assert_eq!(row["generation"], 1, "{row}");

    // A "tool" the agent started: a process in the agent's process group.
    // The script brain cannot spawn one, so we place it there ourselves.
    let mut tool = Reaped(
        Command::new("sleep")
            .arg("300")
            .process_group(hung_pid as i32)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tool_pid = tool.0.id();
    assert_eq!(
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(tool_pid as i32)))
            .unwrap()
            .as_raw(),
        hung_pid as i32,
        "the tool runs in the agent's process group"
    );

    // The heartbeat goes stale: status says hung before the agent is killed.
    let row = wait_until(SOON, "status to show the agent hung", || {
        let row = s.status("stuck");
        (row["state"] == "hung").then_some(row)
    });
    assert_eq!(row["pid"], hung_pid, "{row}");

    // The whole group dies: the tool too (by the SIGTERM to the group).
    let tool_status = wait_until(SOON, "the tool in the agent's group to die", || {
        tool.0.try_wait().unwrap()
    });
    assert!(
        tool_status.signal().is_some(),
        "the tool was killed by a signal, got {tool_status}"
    );

    // The restarted generation answers (attempt 2 does not hang).
    let reply = wait_reply(&s, &msg);
    assert_eq!(reply["gen"], 2, "{reply}");
    assert!(!pid_alive(hung_pid), "the hung agent {hung_pid} is gone");
    assert_ne!(s.agent_pid("stuck"), Some(hung_pid));
    assert_eq!(replies_to(&s, &msg).len(), 1, "exactly one reply");

    let events = events_of(&s, "stuck");
    let hung_at = events
        .iter()
        .position(|e| e["event"] == "agent_hung")
        .expect("an agent_hung event");
    let exited = events[hung_at..]
        .iter()
        .find(|e| e["event"] == "agent_exited")
        .expect("agent_exited after agent_hung");
    assert_eq!(exited["pid"], hung_pid, "{exited}");
    // The hang ignores SIGTERM: only the SIGKILL after `grace` ends it.
    assert_eq!(exited["signal"], "SIGKILL", "{exited}");
    assert_eq!(exited["stop_reason"], "hung", "{exited}");
    assert_eq!(count_events(&s, "stuck", "agent_hung"), 1);
    assert_eq!(count_events(&s, "stuck", "agent_started"), 2);

    let row = s.wait_state("stuck", "idle", SOON);
    assert_eq!(row["generation"], 2, "{row}");
    assert_eq!(row["restarts"], 1, "{row}");
    assert_eq!(row["handled"], 1, "{row}");
    let attempts: Vec<Value> = records(&s.agent("stuck").activity())
        .into_iter()
        .filter(|r| r["event"] == "message_received")
        .map(|r| r["attempt"].clone())
        .collect();
    assert_eq!(attempts, [1, 2]);
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "{:?}", s.processes());
}

const CRASH_TOML: &str = r#"
[defaults]
idle_exit = "30s"
heartbeat = "200ms"

[[agent]]
id = "crashy"
role = "crashy"

[agent.policy]
burst = 2
window = "60s"
backoff_initial = "300ms"
max_attempts = 20

[agent.brain]
kind = "script"

# Attempts 1-4 crash the process: three before `failed` (burst = 2), and one
# more after `society restart`, which must start a fresh burst window.
[[agent.brain.rules]]
type = "task"
actions = [{ do = "exit", code = 101, until_attempt = 4 }, { do = "reply" }]
"#;

#[test]
fn crash_loop_ends_in_failed_and_restart_recovers() {
    let mut s = Society::new(BIN, CRASH_TOML);
    s.start_supervisor();
    let msg = s.ok(&["send", "crashy", "boom"]);

    // Between crashes the agent waits out its backoff, visibly.
    s.wait_state("crashy", "backoff", SOON);
    let row = s.wait_state("crashy", "failed", SOON);
    assert_eq!(row["pid"], Value::Null, "{row}");
    assert_eq!(row["generation"], 3, "{row}");
    assert_eq!(row["restarts"], 2, "{row}");
    assert_eq!(row["inbox_pending"], 1, "the message still waits: {row}");
    // The supervisor records `failed` in its checkpoint, then logs the event.
    let failed = wait_until(SOON, "an agent_failed event", || {
        events_of(&s, "crashy")
            .into_iter()
            .find(|e| e["event"] == "agent_failed")
    });
    assert_eq!(failed["burst"], 2, "{failed}");
    assert_eq!(count_events(&s, "crashy", "agent_started"), 3);
    assert!(replies_to(&s, &msg).is_empty());

    // Failed means no more restarts: longer than the next backoff would be.
    holds_for(
        Duration::from_millis(1500),
        "crashy to stay failed with no new start",
        || {
            count_events(&s, "crashy", "agent_started") == 3
                && lock_free(&s.agent("crashy").lock())
                && s.status("crashy")["state"] == "failed"
        },
    );

    // `restart` clears `failed`; attempt 4 crashes once more (backoff, not
    // failed: the burst window was reset), attempt 5 answers.
    s.ok(&["restart", "crashy"]);
    let reply = wait_reply(&s, &msg);
    assert_eq!(reply["gen"], 5, "{reply}");
    let row = s.wait_state("crashy", "idle", SOON);
    assert_eq!(row["generation"], 5, "{row}");
    assert_eq!(row["restarts"], 3, "{row}");
    assert_eq!(row["handled"], 1, "{row}");
    assert_eq!(row["inbox_pending"], 0, "{row}");
    assert_eq!(count_events(&s, "crashy", "agent_failed"), 1);
    assert_eq!(count_events(&s, "crashy", "agent_started"), 5);
    assert_eq!(replies_to(&s, &msg).len(), 1, "exactly one reply");
    let attempts: Vec<Value> = records(&s.agent("crashy").activity())
        .into_iter()
        .filter(|r| r["event"] == "message_received")
        .map(|r| r["attempt"].clone())
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "{:?}", s.processes());
}

const KEEP_TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "keeper"
role = "keeper"
brain = "echo"
keep_alive = true
"#;

#[test]
fn stop_holds_and_restart_resumes() {
    let mut s = Society::new(BIN, KEEP_TOML);
    s.start_supervisor();
    let row = s.wait_state("keeper", "idle", SOON);
    let pid = row["pid"].as_u64().unwrap() as u32;

    s.ok(&["stop", "keeper"]);
    assert!(
        lock_free(&s.agent("keeper").lock()),
        "stop returns once the lock is free"
    );
    let row = s.wait_state("keeper", "dormant", SOON);
    assert_eq!(row["held"], true, "{row}");
    assert_eq!(row["pid"], Value::Null, "{row}");
    wait_until(SOON, "the stopped agent to be reaped", || {
        (!pid_alive(pid)).then_some(())
    });

    // Mail to a held agent waits: keep_alive and on-demand activation are both off.
    let msg = s.ok(&["send", "keeper", "are you there?"]);
    holds_for(
        Duration::from_millis(1500),
        "the held agent to stay down with its mail pending",
        || {
            let row = s.status("keeper");
            row["state"] == "pending"
                && row["inbox_pending"] == 1
                && lock_free(&s.agent("keeper").lock())
                && replies_to(&s, &msg).is_empty()
        },
    );
    assert_eq!(count_events(&s, "keeper", "agent_started"), 1);

    s.ok(&["restart", "keeper"]);
    let reply = wait_reply(&s, &msg);
    assert_eq!(reply["body"]["text"], "are you there?");
    assert_eq!(reply["gen"], 2);
    let row = s.wait_state("keeper", "idle", SOON);
    assert_eq!(row["held"], false, "{row}");
    assert_eq!(row["generation"], 2, "{row}");
    assert_eq!(row["inbox_pending"], 0, "{row}");
    // A requested stop is not a failure.
    assert_eq!(row["restarts"], 0, "{row}");
    assert_eq!(replies_to(&s, &msg).len(), 1);
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "{:?}", s.processes());
}

const DOWN_TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "busy"
role = "busy"

[agent.brain]
kind = "script"

[[agent.brain.rules]]
actions = [{ do = "sleep", ms = 60000 }, { do = "reply" }]
"#;

#[test]
fn down_leaves_no_process() {
    let s = Society::new(BIN, DOWN_TOML);
    let out = s.ok(&["up"]);
    assert!(out.contains("supervisor started"), "{out}");
    let mut ids = Vec::new();
    for n in 1..=3 {
        let id = s.ok(&["spawn", "helper", "--keep-alive", "--wait"]);
        assert_eq!(id, format!("helper-{n}"));
        ids.push(id);
    }
    // And one agent in the middle of a long message.
    s.ok(&["send", "busy", "take your time"]);
    s.wait_state("busy", "running", SOON);
    ids.push("busy".into());
    for id in &ids {
        assert!(s.agent_pid(id).is_some(), "{id} runs before down");
    }
    let pids: Vec<u32> = ids.iter().map(|id| s.agent_pid(id).unwrap()).collect();
    assert_eq!(s.processes().len(), 5, "a supervisor and four agents");

    let out = s.run(&["down"]);
    assert!(
        out.status.success(),
        "down failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `down` returns when the supervisor is gone, and the supervisor only
    // exits once every agent is: nothing to wait for here.
    assert!(s.processes().is_empty(), "left behind: {:?}", s.processes());
    for pid in pids {
        assert!(!pid_alive(pid), "agent pid {pid} is gone");
    }
    for id in &ids {
        assert!(lock_free(&s.agent(id).lock()), "{id}'s lock is free");
    }
    assert!(lock_free(&s.layout().supervisor_lock()));
    let rows: Value = serde_json::from_str(&s.ok(&["status", "--json"])).unwrap();
    assert_eq!(rows["supervisor"], Value::Null);
    for row in rows["agents"].as_array().unwrap() {
        assert_eq!(row["pid"], Value::Null, "{row}");
    }
}
