//! The CLI at the edges of the state it reads: a detached supervisor in a
//! session of its own, concurrent spawns racing for one id, `down` stopping
//! agents that run without a supervisor (each with its own grace, and through
//! lock files whose pid is not written yet), answers to requests of closed
//! cases, and `logs ID --case C`.

use crate::support::{code, lock_free, system_events, wait_exit, Reaped, BIN, SOON};
use nix::sys::signal::Signal;
use serde_json::{json, Value};
use society_core::lock::{HeldLock, LockInfo};
use society_core::state::AgentConfig;
use society_testkit::{records, wait_until, Society};
use std::collections::BTreeSet;
use std::io::{BufRead, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `sleep 300` leading a process group of its own.
fn sleeper() -> Reaped {
    Reaped(
        Command::new("sleep")
            .arg("300")
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Field `n` (1-based, as in proc(5)) of `/proc/PID/stat`; the comm field
/// may hold spaces and parentheses, so fields are counted after its `)`.
fn stat_field(pid: u32, n: usize) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 1..];
    after_comm
        .split_whitespace()
        .nth(n - 3)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn up_puts_the_supervisor_in_a_session_of_its_own() {
    let s = Society::new(BIN, "");
    let out = s.ok(&["up"]);
    let pid: u32 = out
        .strip_prefix("supervisor started (pid ")
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {out:?}"));
    let session = stat_field(pid, 6);
    let ours = i64::from(nix::unistd::getsid(None).unwrap().as_raw());
    assert_eq!(
        session,
        i64::from(pid),
        "the supervisor leads its own session"
    );
    assert_ne!(session, ours, "the supervisor left the caller's session");
    assert_eq!(stat_field(pid, 5), i64::from(pid), "and its own group");
    assert!(s.ok(&["down"]).contains(&format!("pid {pid}")));
}

/// Eight `society spawn worker` at once; returns the ids they printed.
fn spawn_eight(s: &Society) -> Vec<String> {
    let children: Vec<Child> = (0..8)
        .map(|_| {
            s.command(&["spawn", "worker", "--brain", "echo"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "spawn failed with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

#[test]
fn concurrent_spawns_get_distinct_ids() {
    let s = Society::new(BIN, "[defaults]\nidle_exit = \"1s\"\n");
    // A lost race is likely, not certain, in one round: run a few. The first
    // also races to start the supervisor, the others find it running.
    let mut want = BTreeSet::new();
    for round in 0..4 {
        let ids = spawn_eight(&s);
        let distinct: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            distinct.len(),
            8,
            "round {round}: every spawn got its own id: {ids:?}"
        );
        want.extend((1..=8).map(|n| format!("worker-{}", round * 8 + n)));
        let folders: BTreeSet<String> = s
            .layout()
            .agent_ids()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            folders, want,
            "round {round}: one provisioned folder per id"
        );
    }
    s.ok(&["down"]);
}

const HANGING: &str = r#"
[defaults]
heartbeat = "100ms"
hang_timeout = "120s"
idle_exit = "120s"

[[agent]]
id = "quick"
policy = { grace = "300ms" }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [{ do = "hang" }]

[[agent]]
id = "patient"
policy = { grace = "4s" }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [{ do = "hang" }]
"#;

#[test]
fn down_gives_each_orphan_its_own_grace() {
    let mut s = Society::new(BIN, HANGING);
    s.start_supervisor();
    for agent in ["quick", "patient"] {
        s.ok(&["send", agent, "hang"]);
        s.wait_state(agent, "running", SOON);
    }
    // Without a supervisor the agents are orphans that `down` stops itself.
    // Both ignore SIGTERM (the hang checks nothing): only SIGKILL ends them.
    s.kill_supervisor();
    let (quick, patient) = (s.agent("quick").lock(), s.agent("patient").lock());
    let start = Instant::now();
    let mut down = s
        .command(&["down", "--timeout", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(SOON, "quick to be killed", || {
        lock_free(&quick).then_some(())
    });
    let quick_gone = start.elapsed();
    assert!(
        quick_gone < Duration::from_secs(4),
        "quick was killed after its 300ms grace, not a fixed one: {quick_gone:?}"
    );
    assert!(!lock_free(&patient), "patient still has its 4s grace");
    let status = wait_exit(&mut down, SOON, "down to finish");
    let out = down.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "patient got its whole grace"
    );
    assert!(lock_free(&patient));
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped 2 agent(s)"));
}

/// What a holder writes into its lock file, naming `pid`.
fn lock_info(pid: u32) -> LockInfo {
    serde_json::from_value(json!({"pid": pid, "started": "now", "gen": 1})).unwrap()
}

/// Provisions an agent folder (no process) with this grace.
fn provision(s: &Society, id: &str, grace: Duration) {
    let cfg: AgentConfig = serde_json::from_value(json!({
        "id": id, "role": "worker", "brain": {"kind": "echo"},
        "policy": {"grace": format!("{}ms", grace.as_millis())},
    }))
    .unwrap();
    assert_eq!(cfg.policy.grace, grace);
    society_runtime::provision::provision(&s.layout(), &cfg, "test").unwrap();
}

#[test]
fn down_never_signals_pid_zero_and_gives_up_at_its_timeout() {
    let s = Society::new(BIN, "");
    provision(&s, "early", Duration::from_millis(200));
    let lock_path = s.agent("early").lock();
    // An agent in its first microseconds: lock taken, pid not written (an
    // empty file), or a lock file naming pid 0.
    for pid in [None, Some(0)] {
        let mut held = HeldLock::try_acquire(&lock_path).unwrap();
        if let Some(pid) = pid {
            held.write_info(&lock_info(pid)).unwrap();
        }
        // `down` runs in the group of a bystander, which stands for the
        // shell that ran it: `killpg(0)` would hit both.
        let mut bystander = sleeper();
        let start = Instant::now();
        let mut down = s
            .command(&["down", "--timeout", "1"])
            .process_group(bystander.0.id() as i32)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut down, SOON, "down to give up");
        let took = start.elapsed();
        let mut err = String::new();
        down.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(
            status.signal(),
            None,
            "lock pid {pid:?}: down signalled its own group: {status}"
        );
        assert!(
            bystander.0.try_wait().unwrap().is_none(),
            "lock pid {pid:?}: the caller's group was signalled"
        );
        assert_eq!(status.code(), Some(6), "lock pid {pid:?}: {err}");
        assert!(
            err.contains("early") && err.contains("names no pid"),
            "lock pid {pid:?}: {err}"
        );
        assert!(
            took < Duration::from_secs(10),
            "lock pid {pid:?}: down hung past its 1s timeout: {took:?}"
        );
        drop(held);
    }
}

#[test]
fn down_signals_an_orphan_once_its_lock_names_it() {
    let s = Society::new(BIN, "");
    // A long grace: the SIGKILL must not come while the test holds the lock.
    provision(&s, "late", Duration::from_secs(60));
    let mut held = HeldLock::try_acquire(&s.agent("late").lock()).unwrap();
    // The "agent": its process group is what the lock will name.
    let mut agent = sleeper();
    let mut down = s
        .command(&["-v", "down", "--timeout", "30"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = down.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut err = Vec::new();
    wait_until(SOON, "down to see the lock without a pid", || {
        err.extend(rx.try_iter());
        err.iter()
            .any(|l| l.contains("late") && l.contains("has not written its pid"))
            .then_some(())
    });
    held.write_info(&lock_info(agent.0.id())).unwrap();
    let st = wait_exit(&mut agent.0, SOON, "the agent to get SIGTERM");
    assert_eq!(st.signal(), Some(Signal::SIGTERM as i32), "{st}");
    drop(held);
    let status = wait_exit(&mut down, SOON, "down to finish");
    err.extend(rx.try_iter());
    let mut out = String::new();
    down.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err:?}");
    assert!(out.contains("stopped 1 agent(s)"), "{out}");
}

const APPROVING: &str = r#"
[defaults]
heartbeat = "100ms"

[[agent]]
id = "ops"
policy = { idle_exit = "1s" }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [{ do = "request_approval", plan = "deploy {{body.version}}" }]
"#;

#[test]
fn answering_a_request_of_a_closed_case_is_a_conflict() {
    let mut s = Society::new(BIN, APPROVING);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "deploy v2"]);
    s.ok(&[
        "send",
        "ops",
        "--json",
        r#"{"version":"v2"}"#,
        "--case",
        &case,
    ]);
    let id = wait_until(SOON, "ops's approval request", || {
        let v: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).unwrap();
        v.as_array()?.first()?["id"].as_str().map(String::from)
    });
    s.ok(&["case", "close", &case, "--reason", "no longer needed"]);

    for args in [
        vec!["approve", id.as_str()],
        vec!["reject", id.as_str(), "--feedback", "later"],
    ] {
        let (rc, _, err) = code(&s, &args);
        assert_eq!(rc, 10, "{args:?} of a closed case's request: {err}");
        assert!(
            err.contains(&case) && err.contains("closed"),
            "{args:?}: {err}"
        );
    }
    let decides: Vec<Value> = records(&s.layout().supervisor_inbox())
        .into_iter()
        .filter(|r| r["body"]["op"] == "decide")
        .collect();
    assert!(decides.is_empty(), "nothing was recorded: {decides:?}");
    let doc: Value = serde_json::from_str(&s.ok(&["case", "show", &case, "--json"])).unwrap();
    assert_eq!(doc["case"]["status"], "closed");
    let events = doc["events"].as_array().unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "approved" || e["event"] == "rejected"),
        "{events:?}"
    );
    assert!(
        !s.layout()
            .case_log(&society_core::CaseId::new(case.as_str()).unwrap())
            .exists(),
        "the closed case's log stays archived"
    );

    // A request of an open case is still answered, once; a second answer
    // is a conflict too.
    let open = s.ok(&["case", "new", "deploy v3"]);
    s.ok(&[
        "send",
        "ops",
        "--json",
        r#"{"version":"v3"}"#,
        "--case",
        &open,
    ]);
    let second = wait_until(SOON, "the second approval request", || {
        let v: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).unwrap();
        v.as_array()?.iter().find(|a| a["case"] == open.as_str())?["id"]
            .as_str()
            .map(String::from)
    });
    s.ok(&["approve", &second]);
    let (rc, _, err) = code(&s, &["approve", &second]);
    assert_eq!(rc, 10, "{err}");
    assert!(err.contains("already approved"), "{err}");
}

const PIPELINE: &str = r#"
[defaults]
idle_exit = "1s"
heartbeat = "100ms"

[[agent]]
id = "research"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "case_assigned"
actions = [
  { do = "case_event", event = "researched" },
  { do = "send", to = "writer", type = "task", body = { topic = "{{body.purpose}}" } },
]

[[agent]]
id = "writer"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [
  { do = "case_event", event = "completed" },
  { do = "send", to = "orchestrator", type = "result", body = { topic = "{{body.topic}}" } },
]
"#;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn concerns(r: &Value, agent: &str) -> bool {
    ["agent", "from", "to", "by"].iter().any(|f| r[*f] == agent)
}

#[test]
fn logs_of_an_agent_in_a_case_show_what_concerns_it() {
    let mut s = Society::new(BIN, PIPELINE);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "tides", "--assign", "research"]);
    wait_until(SOON, "the result in the case log", || {
        let all = json_lines(&s.ok(&["logs", "--case", &case, "-o", "jsonl"]));
        all.iter()
            .any(|r| r["event"] == "message" && r["type"] == "result")
            .then_some(())
    });
    let before = json_lines(&s.ok(&["logs", "--case", &case, "-o", "jsonl"]));
    let mine = json_lines(&s.ok(&["logs", "research", "--case", &case, "-o", "jsonl"]));
    let after = json_lines(&s.ok(&["logs", "--case", &case, "-o", "jsonl"]));

    for r in &mine {
        assert!(concerns(r, "research"), "not about research: {r}");
        assert!(after.contains(r), "not in the case log: {r}");
    }
    for r in before.iter().filter(|r| concerns(r, "research")) {
        assert!(mine.contains(r), "missing: {r}");
    }
    let events: Vec<&str> = mine.iter().filter_map(|r| r["event"].as_str()).collect();
    for event in ["assigned", "agent_report", "handoff", "message"] {
        assert!(events.contains(&event), "{event} in {events:?}");
    }
    assert!(
        before.iter().any(|r| !concerns(r, "research")),
        "the case has records of others (the writer's): {before:?}"
    );
    // The writer's view is its own, and the human rendering filters too.
    let writer = json_lines(&s.ok(&["logs", "writer", "--case", &case, "-o", "jsonl"]));
    assert!(!writer.is_empty() && writer.iter().all(|r| concerns(r, "writer")));
    let human = s.ok(&["logs", "writer", "--case", &case]);
    assert_eq!(human.lines().count(), writer.len(), "{human}");
    let (rc, _, err) = code(&s, &["logs", "Not/An-Id", "--case", &case]);
    assert_eq!(rc, 5, "{err}");
}

#[test]
fn the_supervisor_refuses_an_answer_that_arrives_after_its_case_closed() {
    // The CLI refuses it; an answer already on its way (written before the
    // close, or by another tool) is refused by the supervisor as well.
    let mut s = Society::new(BIN, APPROVING);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "deploy v3"]);
    s.ok(&[
        "send",
        "ops",
        "--json",
        r#"{"version":"v3"}"#,
        "--case",
        &case,
    ]);
    let id = wait_until(SOON, "ops's approval request", || {
        let v: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).unwrap();
        v.as_array()?.first()?["id"].as_str().map(String::from)
    });
    s.ok(&["case", "close", &case, "--reason", "no longer needed"]);
    let decide = society_runtime::control::send(
        &s.layout(),
        &society_runtime::control::Request::Decide {
            request: id.parse().unwrap(),
            approve: true,
            note: None,
            how: None,
        },
    )
    .unwrap();
    let rejected = wait_until(SOON, "the supervisor's refusal", || {
        system_events(&s, "control_rejected")
            .into_iter()
            .find(|r| r["id"] == decide.id.to_string())
    });
    assert!(
        rejected["reason"].as_str().unwrap().contains("closed"),
        "{rejected:#}"
    );
    let doc: Value = serde_json::from_str(&s.ok(&["case", "show", &case, "--json"])).unwrap();
    assert!(!doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "approved"));
    assert!(
        !records(&s.agent("ops").inbox())
            .iter()
            .any(|r| r["type"] == "approval_response"),
        "no answer delivered"
    );
}
