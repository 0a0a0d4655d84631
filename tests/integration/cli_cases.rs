//! Cases, approvals, the orchestrator inbox and broadcast, as a user drives
//! them: first from hand-written files (no supervisor), then end to end
//! through a real supervisor and real agents.

use crate::support::{code, json_of, BIN, SOON};
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{CaseId, Envelope, Layout, Party};
use society_runtime::approvals;
use society_testkit::{records, wait_until, Society};
use std::path::Path;

fn append(path: &Path, line: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    append_one(path, line, Durability::Flushed, usize::MAX).unwrap();
}

/// An approval request as an agent (or, for a held message, the supervisor) writes it.
fn request(layout: &Layout, from: &str, body: Value) -> Envelope {
    let mut env = Envelope::new(
        from.parse().unwrap(),
        Party::Orchestrator,
        "approval_request",
        body,
    );
    env.case = Some(CaseId::new("c-1").unwrap());
    append(&layout.orchestrator_inbox(), &env.to_line());
    env
}

fn rec(event: &str, agent: &str, fields: Value) -> Vec<u8> {
    let mut v = json!({"ts": "2026-01-01T00:00:00.000Z", "event": event, "agent": agent, "gen": 0});
    v.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn an_empty_society_has_no_cases_and_no_approvals() {
    let s = Society::new(BIN, "");
    assert_eq!(json_of(&s, &["case", "list", "--json"]), json!([]));
    assert_eq!(s.ok(&["case", "list"]), "no cases");
    assert_eq!(json_of(&s, &["approvals", "--json"]), json!([]));
    assert_eq!(s.ok(&["approvals"]), "no pending approvals");
    assert_eq!(json_of(&s, &["inbox", "--json"]), json!([]));
    assert_eq!(s.ok(&["inbox", "-o", "jsonl"]), "");
    assert_eq!(code(&s, &["case", "show", "c-nope"]).0, 4);
    assert_eq!(code(&s, &["case", "show", "Not/An/Id"]).0, 5);
    assert_eq!(code(&s, &["case", "close", "c-nope"]).0, 4);
    let (rc, _, err) = code(&s, &["case", "list", "--status", "bogus"]);
    assert_eq!(rc, 5);
    assert!(err.contains("in_progress"), "lists valid statuses: {err}");
    // Refused before anything is sent.
    assert_eq!(code(&s, &["case", "new", "p", "--assign", "nobody"]).0, 4);
    assert_eq!(code(&s, &["case", "new", "p", "--assign", "Bad Id"]).0, 5);
    assert_eq!(code(&s, &["case", "new", "p", "--due", "soon"]).0, 5);
    assert_eq!(code(&s, &["case", "new", "p", "--assign", "role:x"]).0, 4);
    assert_eq!(code(&s, &["broadcast", "hello"]).0, 4);
    assert!(records(&s.layout().supervisor_inbox()).is_empty());
    assert!(s.processes().is_empty(), "nothing started a supervisor");
}

#[test]
fn approve_and_reject_refuse_bad_ids() {
    let s = Society::new(BIN, "");
    let unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    assert_eq!(code(&s, &["approve", unknown]).0, 4);
    assert_eq!(code(&s, &["reject", unknown, "--feedback", "no"]).0, 4);
    assert_eq!(code(&s, &["approve", "nope"]).0, 5);
    assert_eq!(code(&s, &["reject", "nope", "--feedback", "no"]).0, 5);
    assert_eq!(
        code(&s, &["reject", unknown]).0,
        2,
        "--feedback is required"
    );
    assert_eq!(code(&s, &["reject", unknown, "--feedback", " "]).0, 5);
    assert!(records(&s.layout().supervisor_inbox()).is_empty());
}

#[test]
fn pending_approvals_come_from_the_two_inboxes() {
    let s = Society::new(BIN, "");
    let layout = s.layout();
    let a = request(
        &layout,
        "ops",
        json!({"plan": "delete the cache", "rationale": "disk full",
               "alternatives": ["compress"], "revision": 1, "parked": {}}),
    );
    append(&layout.orchestrator_inbox(), b"{torn line that is not json");
    let held = Envelope::new(
        "ops".parse().unwrap(),
        "audio".parse().unwrap(),
        "task",
        json!({}),
    );
    let b = request(
        &layout,
        "supervisor",
        json!({"kind": "route", "plan": "deliver ops→audio", "rule": 1, "held": held}),
    );
    // `a` was answered already, in the supervisor's inbox.
    let decide = Envelope::new(
        Party::Orchestrator,
        Party::Supervisor,
        "control",
        json!({"op": "decide", "request": a.id, "approve": true, "note": "go"}),
    );
    append(&layout.supervisor_inbox(), &decide.to_line());

    let pending = approvals::pending(&layout).unwrap();
    assert_eq!(pending.iter().map(|p| p.id).collect::<Vec<_>>(), [b.id]);
    let listed = json_of(&s, &["approvals", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], b.id.to_string());
    assert_eq!(listed[0]["kind"], "route");
    let table = s.ok(&["approvals"]);
    assert!(
        table.contains("ops→audio") && table.contains("deliver"),
        "{table}"
    );

    let (rc, _, err) = code(&s, &["approve", &a.id.to_string()]);
    assert_eq!(rc, 10, "already decided: a conflict");
    assert!(
        err.contains("already approved at") && err.contains("go"),
        "{err}"
    );
    assert_eq!(
        code(&s, &["reject", &a.id.to_string(), "--feedback", "x"]).0,
        10
    );

    let out = s.ok(&["reject", &b.id.to_string(), "--feedback", "not now"]);
    assert!(
        out.contains("rejected") && out.contains("society up"),
        "{out}"
    );
    let last = records(&layout.supervisor_inbox()).pop().unwrap();
    assert_eq!(last["type"], "control");
    assert_eq!(
        last["body"],
        json!({"op": "decide", "request": b.id, "approve": false, "note": "not now"})
    );
    assert_eq!(json_of(&s, &["approvals", "--json"]), json!([]));
    assert_eq!(code(&s, &["approve", &b.id.to_string()]).0, 10);
    assert!(
        s.processes().is_empty(),
        "approve never starts a supervisor"
    );
}

#[test]
fn cases_are_read_from_open_logs_and_archive_pointers() {
    let s = Society::new(BIN, "");
    let layout = s.layout();
    let open = layout.case_log(&CaseId::new("c-open").unwrap());
    append(
        &open,
        &rec(
            "created",
            "orchestrator",
            json!({"purpose": "tides", "priority": "high", "due": "2999-01-01T00:00:00.000Z"}),
        ),
    );
    append(
        &open,
        &rec("assigned", "supervisor", json!({"to": "research"})),
    );
    append(&open, b"{\"torn\":");
    let rel = "archive/2026-01-01/case-c-old.jsonl";
    let old = layout.state_dir().join(rel);
    append(
        &old,
        &rec("created", "orchestrator", json!({"purpose": "old"})),
    );
    append(&old, &rec("closed", "supervisor", json!({})));
    std::fs::write(
        layout.cases_dir().join("case-c-old.archived.json"),
        json!({"archived": rel, "ts": "2026-01-01T00:00:00.000Z"}).to_string(),
    )
    .unwrap();
    // Moved to the archive, pointer not written yet (mid-close): still found.
    let moving = layout
        .state_dir()
        .join("archive/2026-01-02/case-c-moving.jsonl");
    append(
        &moving,
        &rec("created", "orchestrator", json!({"purpose": "moving"})),
    );

    let all = json_of(&s, &["case", "list", "--json"]);
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{all}");
    let open_row = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "c-open")
        .unwrap();
    assert_eq!(open_row["status"], "assigned");
    assert_eq!(open_row["owner"], "research");
    assert_eq!(open_row["archived"], false);
    let closed = json_of(&s, &["case", "list", "--status", "closed", "--json"]);
    assert_eq!(closed[0]["id"], "c-old");
    assert_eq!(closed.as_array().unwrap().len(), 1);
    let mine = json_of(&s, &["case", "list", "--agent", "research", "--json"]);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let table = s.ok(&["case", "list", "--status", "open"]);
    assert!(
        table.starts_with("ID") && table.contains("tides") && !table.contains("old"),
        "{table}"
    );

    let shown = json_of(&s, &["case", "show", "c-old", "--json"]);
    assert_eq!(shown["case"]["status"], "closed");
    assert_eq!(shown["case"]["archived"], true);
    assert_eq!(shown["events"].as_array().unwrap().len(), 2);
    let moving = json_of(&s, &["case", "show", "c-moving", "--json"]);
    assert_eq!(moving["case"]["purpose"], "moving");
    let human = s.ok(&["--utc", "case", "show", "c-open"]);
    assert!(
        human.contains("purpose   tides") && human.contains("owner     research"),
        "{human}"
    );
    assert!(human.contains("2026-01-01 00:00:00  assigned"), "{human}");

    let (rc, _, err) = code(&s, &["case", "close", "c-old"]);
    assert_eq!(rc, 10, "closing a closed case is a conflict");
    assert!(err.contains("already closed"), "{err}");
}

#[test]
fn inbox_prints_one_line_per_message() {
    let s = Society::new(BIN, "");
    let layout = s.layout();
    let reply = Envelope::new(
        "echo".parse().unwrap(),
        Party::Orchestrator,
        "reply",
        json!({"text": "hello"}),
    );
    append(&layout.orchestrator_inbox(), &reply.to_line());
    let req = request(&layout, "ops", json!({"plan": "rm -rf cache"}));
    let lines = s.ok(&["inbox"]);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("echo") && lines[0].contains("hello"));
    assert!(lines[1].contains("rm -rf cache") && lines[1].contains(&req.id.to_string()));
    let last: Value = serde_json::from_str(&s.ok(&["inbox", "-o", "jsonl", "-n", "1"])).unwrap();
    assert_eq!(last["id"], req.id.to_string());
}

const TOML: &str = r#"
[defaults]
idle_exit = "2s"
heartbeat = "200ms"

[[agent]]
id = "ops"
role = "ops"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "request_approval", plan = "delete {{body.text}}", rationale = "disk full" } ]
[[agent.brain.rules]]
type = "approval_response"
actions = [ { do = "reply", body = { text = "answer: {{body.decision}}" } } ]
[[agent.brain.rules]]
actions = [ { do = "reply" } ]

[[agent]]
id = "echo-1"
role = "echo"
brain = "echo"

[[agent]]
id = "echo-2"
role = "echo"
brain = "echo"
"#;

#[test]
fn a_case_opens_takes_an_approval_and_closes() {
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor();
    let case = s.ok(&[
        "case",
        "new",
        "free disk",
        "--assign",
        "ops",
        "--priority",
        "high",
        "--due",
        "2h",
    ]);
    let shown = json_of(&s, &["case", "show", &case, "--json"]);
    assert_eq!(shown["case"]["purpose"], "free disk");
    assert_eq!(shown["case"]["owner"], "ops");
    assert_eq!(shown["case"]["priority"], "high");
    assert_eq!(shown["events"][0]["event"], "created");

    s.ok(&["send", "ops", "/tmp/cache", "--case", &case]);
    let pending = wait_until(SOON, "the approval request", || {
        let v = json_of(&s, &["approvals", "--json"]);
        (v.as_array()?.len() == 1).then_some(v)
    });
    assert_eq!(pending[0]["from"], "ops");
    assert_eq!(pending[0]["case"], case.as_str());
    assert_eq!(pending[0]["plan"], "delete /tmp/cache");
    let id = pending[0]["id"].as_str().unwrap().to_string();
    let out = s.ok(&["approve", &id, "--note", "fine"]);
    assert!(
        out.contains("the supervisor delivers the answer to ops"),
        "{out}"
    );
    assert_eq!(code(&s, &["approve", &id]).0, 10);
    let inbox = s.layout().orchestrator_inbox();
    wait_until(SOON, "the agent to act on the answer", || {
        records(&inbox)
            .into_iter()
            .find(|r| r["body"]["text"] == "answer: approved")
    });
    assert_eq!(json_of(&s, &["approvals", "--json"]), json!([]));

    let out = s.ok(&["case", "close", &case, "--reason", "done"]);
    assert!(out.contains("archive/"), "{out}");
    let shown = json_of(&s, &["case", "show", &case, "--json"]);
    assert_eq!(shown["case"]["status"], "closed");
    assert_eq!(shown["case"]["archived"], true);
    let events: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"approved"), "{events:?}");
    assert_eq!(
        code(&s, &["case", "close", &case]).0,
        10,
        "closing a closed case is a conflict"
    );
    assert!(!s
        .layout()
        .case_log(&CaseId::new(case.as_str()).unwrap())
        .exists());
}

#[test]
fn broadcast_reaches_every_agent_of_a_role() {
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor();
    // One `AGENT MESSAGE_ID` line per copy.
    let out = s.ok(&["broadcast", "all hands", "--role", "echo"]);
    let sent: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(sent.len(), 2, "{out}");
    for (id, (agent, msg)) in ["echo-1", "echo-2"].into_iter().zip(&sent) {
        assert_eq!(*agent, id, "{out}");
        let got = records(&s.agent(id).inbox());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], *msg, "{out}");
        assert_eq!(got[0]["type"], "broadcast");
        // The body, and the broadcast the copy belongs to (its ack).
        assert_eq!(got[0]["body"]["text"], "all hands");
        assert_eq!(got[0]["body"]["broadcast"]["ack"], "auto");
    }
    assert!(records(&s.agent("ops").inbox()).is_empty());
    let inbox = s.layout().orchestrator_inbox();
    wait_until(SOON, "both echo replies", || {
        (records(&inbox)
            .iter()
            .filter(|r| r["body"]["text"] == "all hands")
            .count()
            == 2)
            .then_some(())
    });
    assert_eq!(code(&s, &["broadcast", "x", "--role", "nobody"]).0, 4);
    assert_eq!(s.ok(&["broadcast", "everyone"]).lines().count(), 3);
}

/// A case closed while its work still runs stays closed: the messages that
/// follow are delivered, but its log is not reopened (it used to be: a new
/// `case-<id>.jsonl` without `created`, and the case came back `waiting`).
#[test]
fn a_case_closed_while_its_work_runs_stays_closed() {
    let mut s = Society::new(BIN, include_str!("../../examples/demo/society.toml"));
    s.start_supervisor();
    let case = s
        .ok(&["case", "new", "an episode on tides"])
        .trim()
        .to_string();
    s.ok(&[
        "send",
        "role:research",
        "--json",
        r#"{"topic":"tides"}"#,
        "--case",
        &case,
    ]);
    s.ok(&["case", "close", &case, "--reason", "changed our minds"]);
    // The pipeline goes on: quality's approval request reaches the
    // orchestrator (research → script → audio → quality, ~2 s).
    let request = wait_until(SOON, "quality's approval request", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == "approval_request")
    });
    assert_eq!(request["case"], case.as_str(), "{request}");
    let id = CaseId::new(case.as_str()).unwrap();
    assert!(
        !s.layout().case_log(&id).exists(),
        "a late message reopened the case's log: {:?}",
        records(&s.layout().case_log(&id))
    );
    let shown = json_of(&s, &["case", "show", &case, "--json"]);
    assert_eq!(shown["case"]["status"], "closed", "{shown}");
    let late: Vec<Value> = records(&s.layout().system_events())
        .into_iter()
        .filter(|r| r["event"] == "case_ended_message" && r["case"] == case.as_str())
        .collect();
    assert!(
        late.iter().any(|r| r["id"] == request["id"]),
        "the approval request's delivery is not in the system events: {late:?}"
    );
    // Answering it is refused: the case log is final.
    let (status, _, err) = code(&s, &["approve", request["id"].as_str().unwrap()]);
    assert_eq!(status, 10, "{err}");
}
