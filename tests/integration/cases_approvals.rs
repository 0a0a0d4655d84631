//! Cases, approvals, due dates and escalations under real processes and real
//! signals: agents SIGKILLed in the middle of a message, the supervisor
//! SIGKILLed and restarted mid-flow, approvals answered while nothing runs.
//! The case log must still tell the story once — nothing missing, nothing
//! doubled — and every answer must reach its agent exactly once.

use crate::support::{json_of, read_json, system_events, BIN, SOON};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_core::lock::{self, LockState};
use society_testkit::{records, wait_until, Society};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// `society case show ID --json`.
fn case_doc(s: &Society, case: &str) -> Value {
    json_of(s, &["case", "show", case, "--json"])
}

fn case_events(s: &Society, case: &str) -> Vec<Value> {
    case_doc(s, case)["events"].as_array().unwrap().clone()
}

/// How many records of the case log have `event`.
fn count_event(events: &[Value], event: &str) -> usize {
    events.iter().filter(|e| e["event"] == event).count()
}

/// Every case-log record has a `src` key, and no key occurs twice.
fn assert_unique_srcs(events: &[Value]) {
    let mut seen = HashSet::new();
    for e in events {
        let src = e["src"].as_str().unwrap_or_else(|| panic!("no src: {e}"));
        assert!(seen.insert(src.to_string()), "duplicate case record {e}");
    }
}

/// Records of the orchestrator's inbox of `type`.
fn orchestrator(s: &Society, kind: &str) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == kind)
        .collect()
}

/// Waits until `agent` is handling a message of `kind` at `attempt` (per
/// its heartbeat, from the process that holds its lock); returns its pid and
/// the message id.
fn wait_running(s: &Society, agent: &str, kind: &str, attempt: u64) -> (u32, String) {
    let paths = s.agent(agent);
    wait_until(
        SOON,
        &format!("{agent} to be handling {kind} (attempt {attempt})"),
        || {
            let st = read_json(&paths.status())?;
            let cur = &st["current"];
            if st["state"] != "running" || cur["type"] != kind || cur["attempt"] != attempt {
                return None;
            }
            let pid = st["pid"].as_u64()? as u32;
            (s.agent_pid(agent) == Some(pid)).then(|| (pid, cur["id"].as_str().unwrap().into()))
        },
    )
}

/// SIGKILLs an agent's process group and waits until its lock is free.
fn kill_agent(s: &Society, agent: &str, pid: u32) {
    killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let lock = s.agent(agent).lock();
    wait_until(
        SOON,
        &format!("{agent}'s lock to be released"),
        || match lock::probe(&lock).unwrap() {
            LockState::Held(Some(info)) if info.pid == pid => None,
            _ => Some(()),
        },
    );
}

/// Waits until every agent is dormant and the supervisor has routed every
/// outbox line and consumed its own inbox: nothing more can be written.
/// (Agents first, then one checkpoint snapshot against file lengths read
/// after it, so a write racing with the check can only make it retry.)
fn wait_settled(s: &Society, agents: &[&str]) {
    let layout = s.layout();
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    wait_until(SOON, "the society to settle", || {
        if agents.iter().any(|a| s.status(a)["state"] != "dormant") {
            return None;
        }
        let ck = read_json(&layout.supervisor_checkpoint())?;
        let routed = agents
            .iter()
            .all(|a| ck["cursors"][a].as_u64().unwrap_or(0) == len(&s.agent(a).outbox()));
        let consumed = ck["inbox_offset"].as_u64().unwrap_or(0) == len(&layout.supervisor_inbox());
        (ck["pending"].is_null() && routed && consumed).then_some(())
    });
}

/// `started` records of an agent's activity log, in order.
fn starts(s: &Society, agent: &str) -> Vec<Value> {
    records(&s.agent(agent).activity())
        .into_iter()
        .filter(|r| r["event"] == "started")
        .collect()
}

const PIPELINE: &str = r#"
[defaults]
idle_exit = "1s"
heartbeat = "100ms"
backoff_initial = "50ms"

[[agent]]
id = "research"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "case_assigned"
actions = [
  { do = "sleep", ms = 1500 },
  { do = "case_event", event = "researched", fields = { facts = 5 } },
  { do = "send", to = "role:writer", type = "task", body = { topic = "{{body.purpose}}" } },
]

[[agent]]
id = "writer"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [
  { do = "sleep", ms = 1500 },
  { do = "case_event", event = "drafted", fields = { words = 400 } },
  { do = "case_event", event = "completed", fields = { verdict = "done" } },
  { do = "send", to = "orchestrator", type = "result", body = { topic = "{{body.topic}}" } },
]
"#;

/// One line of a case timeline, reduced to what identifies it.
fn describe(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
    match s("event").as_str() {
        "assigned" => format!("assigned to={} by={}", s("to"), s("by")),
        "handoff" => format!("handoff {}->{}", s("from"), s("to")),
        "message" => format!("message {} {}->{}", s("type"), s("from"), s("to")),
        "agent_report" => format!("agent_report {} by {}", s("report"), s("agent")),
        other => format!("{other} by {}", s("agent")),
    }
}

#[test]
fn case_timeline_survives_agent_and_supervisor_kills() {
    let mut s = Society::new(BIN, PIPELINE);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "tides", "--assign", "research"]);

    // research, attempt 1: SIGKILLed in the middle of its work.
    let (pid, assigned_id) = wait_running(&s, "research", "case_assigned", 1);
    kill_agent(&s, "research", pid);
    // The supervisor restarts it. During attempt 2 the supervisor is the
    // one SIGKILLed, and research works on without it.
    wait_running(&s, "research", "case_assigned", 2);
    s.kill_supervisor();
    // Agents keep working while no supervisor runs: research finishes and
    // its outputs wait in its outbox.
    let outbox = s.agent("research").outbox();
    wait_until(SOON, "research's outputs in its outbox", || {
        (records(&outbox).len() == 2).then_some(())
    });
    assert!(
        records(&s.agent("writer").inbox()).is_empty(),
        "not routed yet"
    );

    s.start_supervisor();
    // writer, attempt 1: kill the supervisor, then the agent.
    let (pid, task_id) = wait_running(&s, "writer", "task", 1);
    s.kill_supervisor();
    kill_agent(&s, "writer", pid);
    assert_eq!(s.agent_pid("writer"), None, "no supervisor to restart it");
    s.start_supervisor();
    wait_running(&s, "writer", "task", 2);

    let result = wait_until(SOON, "the result in the orchestrator inbox", || {
        orchestrator(&s, "result").pop()
    });
    assert_eq!(result["body"]["topic"], "tides");
    assert_eq!(result["case"], case.as_str());
    wait_settled(&s, &["research", "writer"]);

    // Each kill landed mid-message: the next generation resumed it.
    let resumed = |agent: &str| -> Vec<Value> {
        starts(&s, agent)
            .iter()
            .map(|r| r["resumes"].clone())
            .collect()
    };
    assert!(
        resumed("research").contains(&Value::String(assigned_id.clone())),
        "research resumed the killed message: {:?}",
        resumed("research")
    );
    assert!(
        resumed("writer").contains(&Value::String(task_id.clone())),
        "writer resumed the killed message: {:?}",
        resumed("writer")
    );

    let doc = case_doc(&s, &case);
    let events = doc["events"].as_array().unwrap();
    assert_unique_srcs(events);
    let mut got: Vec<String> = events.iter().map(describe).collect();
    let mut want: Vec<String> = [
        "created by orchestrator",
        "assigned to=research by=orchestrator",
        "agent_report researched by research",
        "handoff research->writer",
        // The envelope's own `to`; the agent it resolved to is in `handoff`.
        "message task research->role:writer",
        "agent_report drafted by writer",
        "completed by writer",
        "message result writer->orchestrator",
    ]
    .map(String::from)
    .to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the case timeline, each event once");
    // The timeline names the very messages the agents exchanged.
    let task = events
        .iter()
        .find(|e| e["event"] == "message" && e["type"] == "task")
        .unwrap();
    assert_eq!(task["id"], task_id.as_str());
    let msg = events
        .iter()
        .find(|e| e["event"] == "message" && e["type"] == "result")
        .unwrap();
    assert_eq!(msg["id"], result["id"]);
    // Causal order survives too: created first, completed after the handoff.
    let pos = |d: &str| events.iter().position(|e| describe(e) == d).unwrap();
    assert_eq!(pos("created by orchestrator"), 0);
    assert!(pos("handoff research->writer") < pos("completed by writer"));

    assert_eq!(doc["case"]["status"], "resolved");
    assert_eq!(doc["case"]["owner"], "writer");
    assert_eq!(
        doc["case"]["agents"],
        serde_json::json!(["research", "writer"])
    );
    // Every destination holds each message once.
    assert_eq!(records(&s.agent("research").inbox()).len(), 1);
    assert_eq!(records(&s.agent("writer").inbox()).len(), 1);
    assert_eq!(orchestrator(&s, "result").len(), 1);
}

const APPROVALS: &str = r#"
[defaults]
heartbeat = "100ms"
backoff_initial = "50ms"

[[agent]]
id = "ops"
policy = { idle_exit = "3s" }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [
  { do = "request_approval", plan = "deploy {{body.version}}", rationale = "tests pass", alternatives = ["wait a day"] },
]
[[agent.brain.rules]]
type = "approval_response"
when = { decision = "approved" }
actions = [
  { do = "case_event", event = "completed" },
  { do = "send", to = "orchestrator", type = "result", body = { deployed = "{{body.parked.body.version}}", note = "{{body.note}}" } },
]
[[agent.brain.rules]]
type = "approval_response"
when = { decision = "rejected" }
actions = [
  { do = "request_approval", plan = "deploy {{body.parked.body.version}} after: {{body.note}}", rationale = "revised" },
]

[[agent]]
id = "stubborn"
policy = { idle_exit = "1s", max_revisions = 1 }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "request_approval", plan = "deploy {{body.version}}" } ]
[[agent.brain.rules]]
type = "approval_response"
when = { decision = "rejected" }
actions = [
  { do = "request_approval", plan = "deploy {{body.parked.body.version}} after: {{body.note}}" },
]
"#;

/// Opens a case and sends `agent` a deploy task in it; returns the case id.
fn deploy_case(s: &Society, agent: &str) -> String {
    let case = s.ok(&["case", "new", "deploy v2"]);
    s.ok(&[
        "send",
        agent,
        "--json",
        r#"{"version":"v2"}"#,
        "--case",
        &case,
    ]);
    case
}

/// Waits until `society approvals --json` lists exactly one request, with
/// this revision; returns it.
fn wait_pending(s: &Society, revision: u64) -> Value {
    wait_until(
        SOON,
        &format!("one pending approval at revision {revision}"),
        || {
            let v = json_of(s, &["approvals", "--json"]);
            let list = v.as_array()?;
            (list.len() == 1 && list[0]["revision"] == revision).then(|| list[0].clone())
        },
    )
}

#[test]
fn a_pending_approval_survives_killing_the_supervisor_and_the_agent() {
    let mut s = Society::new(BIN, APPROVALS);
    s.start_supervisor();
    let case = deploy_case(&s, "ops");
    let req = wait_pending(&s, 1);
    let id = req["id"].as_str().unwrap().to_string();
    assert_eq!(req["from"], "ops");
    assert_eq!(req["kind"], "agent");
    assert_eq!(req["case"], case.as_str());
    assert_eq!(req["plan"], "deploy v2");
    assert_eq!(req["alternatives"], serde_json::json!(["wait a day"]));
    assert_eq!(req["body"]["parked"]["body"]["version"], "v2");

    // Kill the agent while it waits (idle, not yet idled out): the
    // supervisor restarts it, and with nothing to do it idles out. Waiting
    // for an answer costs no process.
    let pid = s
        .agent_pid("ops")
        .expect("ops is still up: idle_exit is 3s");
    kill_agent(&s, "ops", pid);
    wait_until(SOON, "ops to be restarted after the kill", || {
        (starts(&s, "ops").len() == 2).then_some(())
    });
    s.wait_state("ops", "dormant", SOON);
    assert_eq!(s.agent_pid("ops"), None);
    assert_eq!(case_doc(&s, &case)["case"]["status"], "waiting");
    assert_eq!(wait_pending(&s, 1)["id"], id.as_str());

    // Now the supervisor dies too. The request is rebuilt from the logs.
    s.kill_supervisor();
    assert!(
        s.processes().is_empty(),
        "nothing runs: {:?}",
        s.processes()
    );
    assert_eq!(wait_pending(&s, 1)["id"], id.as_str());
    assert!(s.ok(&["approvals"]).contains(&id));
    let out = s.ok(&["approve", &id, "--note", "ship it"]);
    assert!(
        out.contains("approved; recorded in") && out.contains("not running"),
        "{out}"
    );
    assert!(
        s.processes().is_empty(),
        "approve starts nothing: {:?}",
        s.processes()
    );
    assert_eq!(json_of(&s, &["approvals", "--json"]), serde_json::json!([]));
    assert!(orchestrator(&s, "result").is_empty());

    // The supervisor delivers the answer when it starts; the agent starts on
    // demand and resumes the parked task.
    s.start_supervisor();
    let result = wait_until(SOON, "the approved result", || {
        orchestrator(&s, "result").pop()
    });
    assert_eq!(result["from"], "ops");
    assert_eq!(result["body"]["deployed"], "v2", "from the parked message");
    assert_eq!(result["body"]["note"], "ship it");
    assert_eq!(result["case"], case.as_str());
    wait_settled(&s, &["ops"]);

    assert_eq!(orchestrator(&s, "result").len(), 1, "exactly once");
    let answers: Vec<Value> = records(&s.agent("ops").inbox())
        .into_iter()
        .filter(|r| r["type"] == "approval_response")
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["reply_to"], id.as_str());
    assert_eq!(answers[0]["body"]["decision"], "approved");
    let handled = records(&s.agent("ops").activity())
        .into_iter()
        .filter(|r| r["event"] == "message_handled" && r["id"] == answers[0]["id"])
        .count();
    assert_eq!(handled, 1, "the answer was handled once");

    let events = case_events(&s, &case);
    assert_unique_srcs(&events);
    for (event, n) in [("approval_requested", 1), ("approved", 1), ("completed", 1)] {
        assert_eq!(count_event(&events, event), n, "{event} in {events:?}");
    }
    assert_eq!(case_doc(&s, &case)["case"]["status"], "resolved");
}

#[test]
fn a_rejected_plan_is_revised_and_then_approved() {
    let mut s = Society::new(BIN, APPROVALS);
    s.start_supervisor();
    let case = deploy_case(&s, "ops");
    let first = wait_pending(&s, 1);
    let first_id = first["id"].as_str().unwrap().to_string();
    let out = s.ok(&["reject", &first_id, "--feedback", "canary first"]);
    assert!(out.starts_with("rejected; the supervisor"), "{out}");

    let second = wait_pending(&s, 2);
    let second_id = second["id"].as_str().unwrap().to_string();
    assert_ne!(second_id, first_id);
    assert_eq!(second["plan"], "deploy v2 after: canary first");
    assert_eq!(second["case"], case.as_str());
    assert_eq!(
        second["body"]["parked"]["body"]["version"], "v2",
        "the revision keeps the parked message"
    );
    s.ok(&["approve", &second_id]);

    let result = wait_until(SOON, "the approved result", || {
        orchestrator(&s, "result").pop()
    });
    assert_eq!(result["body"]["deployed"], "v2");
    wait_settled(&s, &["ops"]);
    assert_eq!(orchestrator(&s, "result").len(), 1);
    assert_eq!(orchestrator(&s, "approval_request").len(), 2);
    assert!(orchestrator(&s, "escalation").is_empty());
    assert_eq!(json_of(&s, &["approvals", "--json"]), serde_json::json!([]));

    let events = case_events(&s, &case);
    assert_unique_srcs(&events);
    let requested: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "approval_requested")
        .map(|e| &e["revision"])
        .collect();
    assert_eq!(requested, [&Value::from(1), &Value::from(2)]);
    assert_eq!(count_event(&events, "rejected"), 1);
    assert_eq!(count_event(&events, "approved"), 1);
    assert_eq!(count_event(&events, "escalated"), 0);
    let doc = case_doc(&s, &case);
    assert_eq!(doc["case"]["status"], "resolved");
    assert_eq!(doc["case"]["owner"], "ops");
}

#[test]
fn past_max_revisions_a_request_becomes_an_escalation() {
    let mut s = Society::new(BIN, APPROVALS);
    s.start_supervisor();
    let case = deploy_case(&s, "stubborn");
    let first = wait_pending(&s, 1);
    s.ok(&["reject", first["id"].as_str().unwrap(), "--feedback", "no"]);
    let second = wait_pending(&s, 2);
    s.ok(&[
        "reject",
        second["id"].as_str().unwrap(),
        "--feedback",
        "still no",
    ]);

    let esc = wait_until(SOON, "the escalation", || {
        orchestrator(&s, "escalation").pop()
    });
    assert_eq!(esc["case"], case.as_str());
    assert_eq!(esc["body"]["agent"], "stubborn");
    let reason = esc["body"]["reason"].as_str().unwrap();
    assert!(reason.contains("1 revision"), "{reason}");
    assert_eq!(esc["body"]["context"]["plan"], "deploy v2 after: still no");
    // The parked message travels with the escalation, so it can still be acted on.
    assert_eq!(
        esc["body"]["context"]["parked"]["from"], "orchestrator",
        "{esc}"
    );
    wait_settled(&s, &["stubborn"]);

    assert_eq!(
        json_of(&s, &["approvals", "--json"]),
        serde_json::json!([]),
        "the third request is not pending"
    );
    let requests = orchestrator(&s, "approval_request");
    assert_eq!(
        requests.len(),
        2,
        "revision 3 never reached the orchestrator"
    );
    assert_eq!(orchestrator(&s, "escalation").len(), 1);
    let events = case_events(&s, &case);
    assert_unique_srcs(&events);
    assert_eq!(count_event(&events, "approval_requested"), 2);
    assert_eq!(count_event(&events, "rejected"), 2);
    assert_eq!(count_event(&events, "escalated"), 1);
    let escalated = events.iter().find(|e| e["event"] == "escalated").unwrap();
    assert_eq!(escalated["by"], "stubborn");
    assert_eq!(escalated["escalation"], esc["id"]);
    assert_eq!(case_doc(&s, &case)["case"]["status"], "escalated");
}

/// Case-log events and orchestrator escalations of one case.
fn due_counts(s: &Society, case: &str) -> BTreeMap<&'static str, usize> {
    let events = case_events(s, case);
    let escalations = orchestrator(s, "escalation")
        .iter()
        .filter(|e| e["case"] == case)
        .count();
    BTreeMap::from([
        ("due_soon", count_event(&events, "due_soon")),
        ("overdue", count_event(&events, "overdue")),
        ("escalated", count_event(&events, "escalated")),
        ("escalation", escalations),
    ])
}

/// Opens a probe case due in a moment and waits for its `overdue`: a pass
/// over every open case's due date has run since. With `strict`, a second
/// probe follows, which only a later pass can see: the first pass has then
/// finished with every other case too (cases are checked in no fixed order).
fn wait_due_pass(s: &Society, strict: bool) {
    for _ in 0..if strict { 2 } else { 1 } {
        let probe = s.ok(&["case", "new", "probe", "--due", "200ms"]);
        wait_until(SOON, "a due-date pass (the probe case overdue)", || {
            (count_event(&case_events(s, &probe), "overdue") == 1).then_some(())
        });
    }
}

fn event_names(s: &Society, case: &str) -> Vec<String> {
    case_events(s, case)
        .iter()
        .filter_map(|e| e["event"].as_str().map(String::from))
        .collect()
}

#[test]
fn due_dates_warn_then_escalate_once_across_restarts() {
    let mut s = Society::new(BIN, "");
    s.start_supervisor();
    // Long enough that a restarted supervisor usually checks it between its
    // warning and its due time (a due-soon warning at 80 %: 24 s, 6 s left).
    let opened = Instant::now();
    let case = s.ok(&["case", "new", "file the taxes", "--due", "30s"]);
    let due = opened + Duration::from_secs(30);
    // Short: due dates are checked once a second, and 80 % of 2 s falls
    // between two checks; it must still be warned about before it is overdue.
    let short = s.ok(&["case", "new", "quick fix", "--due", "2s"]);
    wait_until(SOON, "the short case's escalation", || {
        let c = due_counts(&s, &short);
        (c["escalated"] == 1 && c["escalation"] == 1).then_some(())
    });
    assert_eq!(
        event_names(&s, &short),
        ["created", "due_soon", "overdue", "escalated"],
        "{:#?}",
        case_events(&s, &short)
    );

    wait_until(Duration::from_secs(40), "due_soon", || {
        (count_event(&case_events(&s, &case), "due_soon") == 1).then_some(())
    });
    assert!(Instant::now() < due, "due_soon comes before the due time");
    // A restarted supervisor knows (from the log) that it warned already.
    s.kill_supervisor();
    s.start_supervisor();
    wait_due_pass(&s, false);
    let passed_before_due = Instant::now() < due;
    let c = due_counts(&s, &case);
    assert_eq!(c["due_soon"], 1, "not warned twice: {c:?}");
    // On a loaded machine the restart may take until the due time; only a
    // pass known to have run before it must have found the case not overdue.
    if passed_before_due {
        assert_eq!(c["overdue"], 0, "checked again before the due time");
    }

    wait_until(SOON, "overdue and its escalation", || {
        let c = due_counts(&s, &case);
        (c["escalated"] == 1 && c["escalation"] == 1).then_some(())
    });
    assert!(Instant::now() >= due);
    s.kill_supervisor();
    s.start_supervisor();
    wait_due_pass(&s, true);

    let counts = due_counts(&s, &case);
    assert_eq!(
        counts,
        BTreeMap::from([
            ("due_soon", 1),
            ("overdue", 1),
            ("escalated", 1),
            ("escalation", 1)
        ])
    );
    assert_unique_srcs(&case_events(&s, &case));
    assert_eq!(
        event_names(&s, &case),
        ["created", "due_soon", "overdue", "escalated"]
    );
    let esc = orchestrator(&s, "escalation")
        .into_iter()
        .find(|e| e["case"] == case.as_str())
        .unwrap();
    assert_eq!(esc["body"]["agent"], "supervisor");
    assert!(
        esc["body"]["reason"].as_str().unwrap().contains("overdue"),
        "{esc}"
    );
    assert_eq!(case_doc(&s, &case)["case"]["status"], "escalated");
    assert_eq!(due_counts(&s, &short)["escalation"], 1);
}

const ESCALATIONS: &str = r#"
[defaults]
idle_exit = "1s"
heartbeat = "100ms"

[[agent]]
id = "worker"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "escalate", reason = "cannot reach {{body.host}}", context = { host = "{{body.host}}" } } ]
[[agent.brain.rules]]
type = "doomed"
actions = [ { do = "fail", times = 1000 } ]

[[agent]]
id = "crasher"
policy = { max_attempts = 100, burst = 2, backoff_initial = "20ms" }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "exit", code = 101 } ]
"#;

#[test]
fn an_escalate_action_reaches_the_orchestrator_and_the_case() {
    let mut s = Society::new(BIN, ESCALATIONS);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "mirror the db", "--assign", "worker"]);
    s.ok(&[
        "send",
        "worker",
        "--json",
        r#"{"host":"db-1"}"#,
        "--case",
        &case,
    ]);
    let esc = wait_until(SOON, "the escalation", || {
        orchestrator(&s, "escalation").pop()
    });
    assert_eq!(esc["from"], "supervisor");
    assert_eq!(esc["case"], case.as_str());
    assert_eq!(esc["body"]["agent"], "worker");
    assert_eq!(esc["body"]["reason"], "cannot reach db-1");
    assert_eq!(esc["body"]["context"]["host"], "db-1");
    wait_settled(&s, &["worker"]);
    assert_eq!(orchestrator(&s, "escalation").len(), 1);
    let events = case_events(&s, &case);
    assert_unique_srcs(&events);
    assert_eq!(count_event(&events, "escalated"), 1);
    let e = events.iter().find(|e| e["event"] == "escalated").unwrap();
    assert_eq!(e["by"], "worker");
    assert_eq!(e["reason"], "cannot reach db-1");
    let doc = case_doc(&s, &case);
    assert_eq!(doc["case"]["status"], "escalated");
    assert_eq!(doc["case"]["owner"], "worker");
    assert_eq!(
        system_events(&s, "escalated")
            .iter()
            .filter(|r| r["agent"] == "worker")
            .count(),
        1
    );
}

#[test]
fn a_message_failing_max_attempts_is_dead_lettered_and_escalated() {
    let mut s = Society::new(BIN, ESCALATIONS);
    s.start_supervisor();
    let id = s.ok(&["send", "worker", "--type", "doomed", "x"]);
    let esc = wait_until(SOON, "the escalation", || {
        orchestrator(&s, "escalation").pop()
    });
    assert_eq!(esc["body"]["agent"], "worker");
    let reason = esc["body"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&id) && reason.contains("dead-lettered by worker"),
        "{reason}"
    );
    wait_settled(&s, &["worker"]);

    let dead = records(&s.agent("worker").deadletter());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event"], "dead_lettered");
    assert_eq!(dead[0]["id"], id.as_str());
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("failed 3 attempts"),
        "{}",
        dead[0]
    );
    let failed = records(&s.agent("worker").activity())
        .into_iter()
        .filter(|r| r["event"] == "message_failed" && r["id"] == id.as_str())
        .count();
    assert_eq!(failed, 3, "max_attempts = 3");
    assert_eq!(orchestrator(&s, "escalation").len(), 1);
    assert_eq!(system_events(&s, "report_dead_letter").len(), 1);
    assert!(orchestrator(&s, "reply").is_empty());
}

#[test]
fn a_crash_looping_agent_ends_failed_and_escalates() {
    let mut s = Society::new(BIN, ESCALATIONS);
    s.start_supervisor();
    s.ok(&["send", "crasher", "boom"]);
    let esc = wait_until(SOON, "the escalation", || {
        orchestrator(&s, "escalation").pop()
    });
    assert_eq!(esc["body"]["agent"], "crasher");
    let reason = esc["body"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("agent crasher failed") && reason.contains("more than 2 failures"),
        "{reason}"
    );
    assert!(esc["body"]["context"]["hint"]
        .as_str()
        .unwrap()
        .contains("society restart crasher"));
    s.wait_state("crasher", "failed", SOON);
    assert_eq!(s.agent_pid("crasher"), None);
    // Written right after the escalation.
    let failed = wait_until(SOON, "agent_failed in system-events", || {
        let n = system_events(&s, "agent_failed")
            .iter()
            .filter(|r| r["agent"] == "crasher")
            .count();
        (n > 0).then_some(n)
    });
    assert_eq!(failed, 1);
    assert_eq!(
        starts(&s, "crasher").len(),
        3,
        "burst = 2: the third failure ends it"
    );
    assert_eq!(orchestrator(&s, "escalation").len(), 1);
}
