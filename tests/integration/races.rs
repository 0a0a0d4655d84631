//! Races between writers of the same files, each set up deterministically
//! with real processes: a sender that writes one envelope twice, a case that
//! an agent completes before the supervisor has recorded the message that gave
//! it the case, and a supervisor adopting an agent whose lock file still names
//! a dead generation's pid, now another process's.

use crate::support::{wait_exit, Reaped, BIN, SOON};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::lock::{self, HeldLock, LockInfo, LockState};
use society_core::{AgentId, CaseId, Envelope, Party};
use society_runtime::control::{self, Request};
use society_testkit::{records, wait_until, Society};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};

/// An orchestrator message to `to`, as `society send` builds it.
fn task(to: &str, body: Value, case: Option<&str>) -> Envelope {
    let mut env = Envelope::new(
        Party::Orchestrator,
        Party::Agent(AgentId::new(to).unwrap()),
        "task",
        body,
    );
    env.case = case.map(|c| CaseId::new(c).unwrap());
    env
}

/// Appends `env` to `to`'s inbox the way the CLI does (a durable append).
fn deliver(s: &Society, to: &str, env: &Envelope) {
    append_one(
        &s.agent(to).inbox(),
        &env.to_line(),
        Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )
    .unwrap();
}

/// Records of `path` whose `field` is `value` and, if given, whose `event` is `event`.
fn matching(path: &Path, event: Option<&str>, field: &str, value: &str) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| event.is_none_or(|e| r["event"] == e) && r[field] == value)
        .collect()
}

/// Has the agent consumed its whole inbox (cursor at the end of the file)?
fn inbox_consumed(s: &Society, agent: &str) -> bool {
    let paths = s.agent(agent);
    let Some(ckpt) = crate::support::agent_state(&paths) else {
        return false;
    };
    let len = std::fs::metadata(paths.inbox()).map_or(0, |m| m.len());
    ckpt["inbox_offset"].as_u64() == Some(len)
}

const ECHO: &str = r#"
[defaults]
heartbeat = "100ms"

[[agent]]
id = "echo"
brain = "echo"
keep_alive = true
"#;

/// A sender that could not confirm its write (a timeout, a crash before it
/// recorded success) writes the envelope again. The agent drops the copy by
/// its id, whether it arrives after the first was handled (the single-message
/// path) or in the same read as the first (the group-commit path), and
/// whether the first copy was handled in this batch or by an earlier process.
#[test]
fn an_envelope_written_twice_is_handled_once() {
    let mut s = Society::new(BIN, ECHO);
    s.start_supervisor();
    let activity = s.agent("echo").activity();
    let orchestrator = s.layout().orchestrator_inbox();
    let replies = |id: &str| matching(&orchestrator, None, "reply_to", id).len();
    let handled = |id: &str| matching(&activity, Some("message_handled"), "id", id);
    let dropped = |id: &str| matching(&activity, Some("duplicate_dropped"), "id", id).len();
    // Every reply before `sentinel`'s is routed once `sentinel`'s is: one
    // agent, one outbox, routed in order.
    let settle = |s: &Society, sentinel: &Envelope| {
        let id = sentinel.id.to_string();
        wait_until(SOON, "the sentinel's reply", || {
            (replies(&id) == 1 && inbox_consumed(s, "echo")).then_some(())
        });
    };

    // Apart: the copy arrives after the first was handled, alone.
    let a = task("echo", json!({"n": "a"}), None);
    let a_id = a.id.to_string();
    deliver(&s, "echo", &a);
    wait_until(SOON, "the first copy to be handled", || {
        (!handled(&a_id).is_empty() && inbox_consumed(&s, "echo")).then_some(())
    });
    deliver(&s, "echo", &a);
    wait_until(SOON, "the second copy to be consumed", || {
        inbox_consumed(&s, "echo").then_some(())
    });
    let sentinel = task("echo", json!({"n": "sentinel 1"}), None);
    deliver(&s, "echo", &sentinel);
    settle(&s, &sentinel);
    let a_handled = handled(&a_id);
    assert_eq!(a_handled.len(), 1, "handled once: {a_handled:?}");
    assert!(a_handled[0]["batch"].is_null(), "{a_handled:?}");
    assert_eq!(dropped(&a_id), 1, "the copy was dropped");
    assert_eq!(replies(&a_id), 1, "one reply");

    // Together: with no process running, the mail piles up and the next
    // process reads it in one go, as one group commit. `b` twice in a row
    // (the second dropped as handled earlier in the batch), then `a` again
    // (dropped as handled by the previous process).
    assert!(s.stop_supervisor().success());
    let b = task("echo", json!({"n": "b"}), None);
    let b_id = b.id.to_string();
    let sentinel = task("echo", json!({"n": "sentinel 2"}), None);
    for env in [&b, &b, &a, &sentinel] {
        deliver(&s, "echo", env);
    }
    s.start_supervisor();
    settle(&s, &sentinel);
    let b_handled = handled(&b_id);
    assert_eq!(b_handled.len(), 1, "handled once: {b_handled:?}");
    assert_eq!(
        b_handled[0]["batch"], true,
        "the burst took the group-commit path"
    );
    assert_eq!(dropped(&b_id), 1, "the copy in the same batch was dropped");
    assert_eq!(handled(&a_id).len(), 1, "not handled again");
    assert_eq!(dropped(&a_id), 2, "the copy after a restart was dropped");
    assert_eq!(replies(&b_id), 1);
    assert_eq!(replies(&a_id), 1);
    assert!(s.stop_supervisor().success());
}

const CLOSER: &str = r#"
[defaults]
heartbeat = "100ms"

[[agent]]
id = "closer"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [
  { do = "case_event", event = "completed", fields = { verdict = "done" } },
  { do = "reply", type = "result" },
]

[[agent]]
id = "bystander"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [{ do = "log", message = "not for me" }]
"#;

/// `society case show ID --json`.
fn case_doc(s: &Society, case: &str) -> Value {
    serde_json::from_str(&s.ok(&["case", "show", case, "--json"])).unwrap()
}

/// Index of the first event of the case log matching `pred`.
fn position(events: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

/// The orchestrator sends a case message while the supervisor is down; the
/// agent, running on its own, handles it and completes the case. The
/// supervisor that starts next must record the message (and the assignment
/// it makes) before the completion: it reads its own inbox — where `send`
/// left the `reflect` request — before routing the agents' outboxes. The case
/// ends `resolved`, owned by the agent.
#[test]
fn a_case_completed_while_the_supervisor_was_down_is_resolved() {
    let mut s = Society::new(BIN, CLOSER);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "tides"]);
    s.kill_supervisor();
    wait_until(SOON, "the supervisor lock to be free", || {
        matches!(
            lock::probe(&s.layout().supervisor_lock()),
            Ok(LockState::Free)
        )
        .then_some(())
    });
    let msg = s.ok(&["send", "closer", "close it", "--case", &case, "--no-start"]);

    let closer = s.agent("closer");
    let agent = s
        .command(&["agent-run", "--folder"])
        .arg(&closer.dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut agent = Reaped(agent);
    wait_until(SOON, "the completion in closer's outbox", || {
        records(&closer.outbox())
            .iter()
            .any(|r| r["type"] == "case_event" && r["case"] == case.as_str())
            .then_some(())
    });
    kill(Pid::from_raw(agent.0.id() as i32), Signal::SIGTERM).unwrap();
    let st = wait_exit(&mut agent.0, SOON, "closer to stop");
    assert!(st.success(), "closer stopped cleanly: {st}");
    assert_eq!(case_doc(&s, &case)["case"]["status"], "new");

    s.start_supervisor();
    let doc = wait_until(SOON, "the case log to tell the whole story", || {
        let doc = case_doc(&s, &case);
        let events = doc["events"].as_array()?;
        let has = |e: &str| events.iter().any(|r| r["event"] == e);
        (has("completed") && events.iter().any(|r| r["id"] == msg.as_str())).then_some(doc)
    });
    assert_eq!(doc["case"]["status"], "resolved", "{doc:#}");
    assert_eq!(doc["case"]["owner"], "closer", "{doc:#}");
    let events = doc["events"].as_array().unwrap();
    let assigned = position(events, "assignment to closer", |r| {
        r["event"] == "assigned" && r["to"] == "closer"
    });
    let reflected = position(events, "the reflected message", |r| {
        r["event"] == "message" && r["id"] == msg.as_str()
    });
    let completed = position(events, "completed", |r| r["event"] == "completed");
    assert!(
        assigned < reflected && reflected < completed,
        "assigned, then the message, then completed: {events:#?}"
    );
    assert!(s.stop_supervisor().success());
}

/// The same race with the supervisor running: `send` appends the message to
/// the agent's inbox, then the `reflect` request to the supervisor's; if the
/// CLI stalls in between, the agent can complete the case and the router can
/// record that before the supervisor reads the request. The late `assigned`
/// (no owner yet) or `handoff` (another owner) must not reopen the case.
#[test]
fn a_late_ownership_record_does_not_reopen_a_resolved_case() {
    let mut s = Society::new(BIN, CLOSER);
    s.start_supervisor();
    let unowned = s.ok(&["case", "new", "unowned"]);
    let owned = s.ok(&["case", "new", "owned", "--assign", "bystander"]);
    let cases = [(unowned, "assigned"), (owned, "handoff")];

    // The CLI's first write, for both cases: the message in closer's inbox.
    let msgs: Vec<Envelope> = cases
        .iter()
        .map(|(case, _)| {
            let env = task("closer", json!({"text": "close it"}), Some(case));
            deliver(&s, "closer", &env);
            env
        })
        .collect();
    for (case, _) in &cases {
        wait_until(SOON, &format!("{case} to be resolved"), || {
            (case_doc(&s, case)["case"]["status"] == "resolved").then_some(())
        });
    }
    // The CLI's second write, late.
    for env in &msgs {
        let request = Request::Reflect {
            message: Box::new(env.clone()),
            delivered_to: AgentId::new("closer").unwrap(),
        };
        control::send(&s.layout(), &request).unwrap();
    }
    for ((case, ownership), env) in cases.iter().zip(&msgs) {
        let id = env.id.to_string();
        let doc = wait_until(SOON, &format!("the reflection in {case}'s log"), || {
            let doc = case_doc(&s, case);
            let events = doc["events"].as_array()?;
            events.iter().any(|r| r["id"] == id.as_str()).then_some(doc)
        });
        let events = doc["events"].as_array().unwrap();
        let completed = position(events, "completed", |r| r["event"] == "completed");
        let late = position(events, ownership, |r| {
            r["event"] == *ownership && r["to"] == "closer"
        });
        assert!(
            completed < late,
            "{case}: the race happened (the {ownership} came after completed): {events:#?}"
        );
        assert_eq!(doc["case"]["status"], "resolved", "{case}: {doc:#}");
        assert_eq!(doc["case"]["owner"], "closer", "{case}: {doc:#}");
    }
    assert!(s.stop_supervisor().success());
}

const EARLY: &str = r#"
[defaults]
heartbeat = "100ms"
grace = "300ms"

[[agent]]
id = "early"
brain = "echo"
keep_alive = false
"#;

/// An agent in its first microseconds holds `process.lock` while the file
/// still names the previous generation, whose pid may be another process's
/// by now. A supervisor that adopts it then, and stops it, must not signal
/// that process: it believes lock info only when the pid and the start time
/// name a live process. The test holds the lock itself and writes the info
/// of a dead generation whose pid was reused by a harmless victim.
#[test]
fn adoption_never_signals_a_reused_pid() {
    let mut s = Society::new(BIN, EARLY);
    let paths = s.agent("early");
    std::fs::create_dir_all(&paths.dir).unwrap();
    let mut victim = Reaped(
        Command::new("sleep")
            .arg("60")
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = victim.0.id();
    let start = lock::process_start(pid).expect("the victim's start time");
    let mut held = HeldLock::try_acquire(&paths.lock()).unwrap();
    held.write_info(&LockInfo {
        pid,
        started: "2020-01-01T00:00:00.000Z".into(),
        gen: 1,
        // The dead generation started before the victim took its pid.
        start: Some(start - 1),
    })
    .unwrap();

    s.start_supervisor();
    let activity = s.layout().supervisor_activity();
    let adopted = wait_until(SOON, "the supervisor to adopt early", || {
        matching(&activity, Some("agent_adopted"), "agent", "early").pop()
    });
    assert_eq!(
        adopted["pid"], 0,
        "the stale pid is not believed: {adopted}"
    );
    let mut down = Reaped(
        s.command(&["down", "--timeout", "20"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(SOON, "the supervisor to begin stopping", || {
        records(&activity)
            .iter()
            .any(|r| r["event"] == "supervisor_stopping")
            .then_some(())
    });
    // Past the grace, when a supervisor escalates to SIGKILL.
    wait_until(SOON, "the grace period to end", || {
        let log = std::fs::read_to_string(s.layout().daemon_log()).unwrap_or_default();
        log.contains("grace period over").then_some(())
    });
    assert!(
        victim.0.try_wait().unwrap().is_none(),
        "the victim was signalled while the supervisor stopped"
    );
    // The "agent" exits.
    drop(held);
    let st = wait_exit(&mut down.0, SOON, "down to finish");
    assert_eq!(st.code(), Some(0), "down: {st}");
    let st = victim.0.try_wait().unwrap();
    assert!(
        st.is_none(),
        "the victim (pid {pid}) was killed by signal {:?}",
        st.and_then(|st| st.signal())
    );
    assert_eq!(lock::process_start(pid), Some(start), "still the victim");
}
