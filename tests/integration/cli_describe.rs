//! `society describe`, `rm` and `top` (issue 10), driven as a user would:
//! describe an agent before and after a restart, a case and an approval
//! request from hand-written files, an unknown and an ambiguous name; remove
//! a running agent (refused, then forced) and a stopped one, and check the
//! supervisor forgot it; sample a busy agent with `top`.

use crate::support::{code, json_of, wait_reply, BIN, SOON};
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{CaseId, Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::path::Path;

/// The value of `Key:` in `describe`'s output.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map_or_else(|| panic!("no {key}: in\n{text}"), str::trim)
}

fn append(path: &Path, line: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    append_one(path, line, Durability::Flushed, usize::MAX).unwrap();
}

/// One echo agent `w`, spawned (not declared in society.toml, which would
/// bring it back at the supervisor's next start), kept alive.
fn with_worker() -> Society {
    let mut s = Society::new(BIN, "[defaults]\nheartbeat = \"200ms\"\n");
    s.start_supervisor();
    s.ok(&[
        "spawn",
        "worker",
        "--id",
        "w",
        "--brain",
        "echo",
        "--keep-alive",
        "--wait",
    ]);
    s
}

#[test]
fn describe_an_agent_and_see_a_restart_in_its_generation() {
    let s = with_worker();
    let id = s.ok(&["send", "w", "hello"]);
    wait_reply(&s, &id);
    let text = s.ok(&["describe", "w"]);
    for key in [
        "Name:",
        "Kind:",
        "State:",
        "Pid:",
        "Generation:",
        "Restarts:",
        "Heartbeat:",
        "Inbox:",
        "Dead letters:",
        "Events:",
    ] {
        assert!(text.contains(key), "{key} in:\n{text}");
    }
    assert!(text.contains("message_handled"), "recent events:\n{text}");
    let pid = s.agent_pid("w").unwrap();
    assert_eq!(field(&text, "Pid"), pid.to_string());
    assert_eq!(field(&text, "Generation"), "1");
    assert!(field(&text, "Inbox").starts_with("0 pending"), "{text}");

    let d = json_of(&s, &["describe", "w", "-o", "json"]);
    assert_eq!(d["kind"], "agent");
    assert_eq!(d["id"], "w");
    assert_eq!(d["role"], "worker");
    assert_eq!(d["pid"], pid);
    assert_eq!(d["generation"], 1);
    assert_eq!(d["inbox_pending"], 0);
    assert!(d["inbox"]["cursor"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["brain"]["kind"], "echo");
    assert_eq!(d["dead_letters"]["count"], 0);
    assert!(
        d["state"].is_string() && d["heartbeat_age_ms"].is_u64(),
        "{d}"
    );
    let events = d["recent_events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "message_handled" && e["id"] == id.as_str()),
        "{d}"
    );
    assert!(d["costs"].is_null(), "an echo agent spends nothing: {d}");

    s.ok(&["restart", "w"]);
    let d = wait_until(SOON, "describe to show generation 2", || {
        let d = json_of(&s, &["describe", "w", "--json"]);
        (d["generation"] == 2 && d["last_exit"]["stop_reason"] == "restart").then_some(d)
    });
    assert_eq!(d["last_exit"]["pid"], pid, "{d}");
    let text = s.ok(&["describe", "w"]);
    assert_eq!(field(&text, "Generation"), "2");
    assert!(
        field(&text, "Last exit").contains("stop_reason=restart"),
        "{text}"
    );
    let line = s.ok(&["describe", "w", "-o", "jsonl"]);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap()["generation"],
        2
    );
}

#[test]
fn describe_a_case_and_an_approval_request() {
    let s = Society::new(BIN, "");
    let layout = s.layout();
    let case = CaseId::new("c-tides").unwrap();
    let rec = |event: &str, fields: Value| {
        let mut v = json!({"ts": "2026-01-01T00:00:00.000Z", "event": event,
                           "agent": "orchestrator", "gen": 0, "case": "c-tides"});
        v.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::to_vec(&v).unwrap()
    };
    let log = layout.case_log(&case);
    append(
        &log,
        &rec(
            "created",
            json!({"purpose": "episode on tides", "priority": "high", "due": "2026-01-02T00:00:00.000Z", "by": "orchestrator"}),
        ),
    );
    append(
        &log,
        &rec("assigned", json!({"to": "research", "by": "orchestrator"})),
    );
    let text = s.ok(&["describe", "c-tides"]);
    assert_eq!(field(&text, "Kind"), "case");
    assert_eq!(field(&text, "Purpose"), "episode on tides");
    assert_eq!(field(&text, "Owner"), "research");
    assert_eq!(field(&text, "State"), "assigned");
    assert_eq!(field(&text, "Participants"), "research");
    assert_eq!(field(&text, "Timeline"), "");
    assert!(text.contains("  assigned"), "{text}");
    let d = json_of(&s, &["describe", "c-tides", "-o", "json"]);
    assert_eq!(d["kind"], "case");
    assert_eq!(d["status"], "assigned");
    assert_eq!(d["owner"], "research");
    assert_eq!(d["purpose"], "episode on tides");
    assert_eq!(d["archived"], false);
    assert_eq!(d["timeline"].as_array().unwrap().len(), 2);

    let mut env = Envelope::new(
        "research".parse().unwrap(),
        Party::Orchestrator,
        "approval_request",
        json!({"plan": "delete the cache", "rationale": "it is stale",
               "alternatives": ["keep it"], "revision": 1, "parked": {}}),
    );
    env.case = Some(case.clone());
    append(&layout.orchestrator_inbox(), &env.to_line());
    let id = env.id.to_string();
    let text = s.ok(&["describe", &id]);
    assert_eq!(field(&text, "Kind"), "approval request");
    assert_eq!(field(&text, "From"), "research");
    assert_eq!(field(&text, "Case"), "c-tides");
    assert_eq!(field(&text, "State"), "pending");
    assert_eq!(field(&text, "Plan"), "delete the cache");
    assert_eq!(field(&text, "Rationale"), "it is stale");
    assert!(text.contains("  keep it"), "{text}");
    assert!(field(&text, "Answer").contains("society approve"), "{text}");
    s.ok(&["approve", &id, "--note", "go"]);
    let text = s.ok(&["describe", &id]);
    assert!(field(&text, "State").starts_with("approved at"), "{text}");
    let d = json_of(&s, &["describe", &format!("approval/{id}"), "--json"]);
    assert_eq!(d["kind"], "approval");
    assert_eq!(d["state"], "approved");
    assert_eq!(d["decision"]["note"], "go");
    assert_eq!(d["from"], "research");
    assert_eq!(d["case"], "c-tides");
    assert_eq!(d["plan"], "delete the cache");
    assert!(d["age_ms"].is_u64(), "{d}");
}

#[test]
fn describe_says_what_it_looked_at_for_an_unknown_or_ambiguous_name() {
    let s = Society::new(BIN, "");
    let (rc, out, err) = code(&s, &["describe", "nobody"]);
    assert_eq!(rc, 4, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("nobody") && err.contains("agent-nobody") && err.contains("no case"),
        "{err}"
    );
    let (rc, _, err) = code(&s, &["describe", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert_eq!(rc, 4, "{err}");
    assert!(err.contains("no approval request"), "{err}");
    assert_eq!(code(&s, &["describe", "case/nope"]).0, 4);
    assert_eq!(code(&s, &["describe", "pod/nope"]).0, 4);

    // A name that is an agent and a case: say which.
    s.ok(&["spawn", "x", "--id", "c-1", "--no-start"]);
    let log = s.layout().case_log(&CaseId::new("c-1").unwrap());
    append(&log, br#"{"ts":"2026-01-01T00:00:00.000Z","event":"created","agent":"orchestrator","gen":0,"case":"c-1","purpose":"p"}"#);
    let (rc, _, err) = code(&s, &["describe", "c-1"]);
    assert_eq!(rc, 5, "{err}");
    assert!(
        err.contains("agent c-1") && err.contains("case c-1") && err.contains("agent/c-1"),
        "{err}"
    );
    assert_eq!(
        json_of(&s, &["describe", "agent/c-1", "--json"])["kind"],
        "agent"
    );
    assert_eq!(
        json_of(&s, &["describe", "case/c-1", "--json"])["kind"],
        "case"
    );
}

#[test]
fn rm_refuses_a_running_agent_and_force_archives_it_for_good() {
    let s = with_worker();
    let id = s.ok(&["send", "w", "keep me"]);
    wait_reply(&s, &id);
    let folder = s.agent("w").dir;
    let inbox = std::fs::read(s.agent("w").inbox()).unwrap();

    let (rc, out, err) = code(&s, &["rm", "w"]);
    assert_eq!(rc, 10, "{out}{err}");
    assert!(
        err.contains("society stop w") && err.contains("--force"),
        "{err}"
    );
    assert!(s.agent("w").config().is_file(), "the folder is intact");
    assert!(s.agent_pid("w").is_some(), "and the agent still runs");

    let out = s.ok(&["rm", "w", "--force"]);
    assert!(!folder.exists(), "{out}");
    let archive = s.layout().archive_dir();
    let moved: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("agent-w-"))
        })
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    let moved = &moved[0];
    assert!(out.contains(&moved.display().to_string()), "{out}");
    assert_eq!(std::fs::read(moved.join("inbox.jsonl")).unwrap(), inbox);
    for f in [
        "config.json",
        "checkpoint.json",
        "activity.jsonl",
        "outbox.jsonl",
    ] {
        assert!(moved.join(f).is_file(), "{f} was archived");
    }

    // Forgotten: two more scans of the supervisor (its status is rewritten
    // every second) and it has neither started it again nor listed it.
    let status_ts = || {
        society_core::atomic::read_json::<Value>(&s.layout().supervisor_status(), "status")
            .unwrap()
            .unwrap()
    };
    let first = status_ts()["ts"].as_str().unwrap().to_string();
    let later = wait_until(SOON, "two more supervisor status writes", || {
        let st = status_ts();
        (st["ts"].as_str().unwrap() > first.as_str() && st["agents"].get("w").is_none())
            .then_some(st)
    });
    wait_until(SOON, "one more", || {
        (status_ts()["ts"].as_str().unwrap() > later["ts"].as_str().unwrap()).then_some(())
    });
    assert!(!folder.exists(), "not provisioned again");
    assert!(
        records(&s.layout().system_events())
            .iter()
            .filter(|r| r["agent"] == "w" && r["event"] == "agent_started")
            .count()
            == 1,
        "not started again"
    );
    assert_eq!(status_ts()["agents"].get("w"), None);
    let st = json_of(&s, &["status", "--json"]);
    assert_eq!(st["agents"], json!([]), "{st}");
    let (rc, _, err) = code(&s, &["send", "w", "hello?"]);
    assert_eq!(rc, 4, "{err}");
    assert!(err.contains("no agent w"), "{err}");
    let removed: Vec<Value> = records(&s.layout().registry())
        .into_iter()
        .filter(|r| r["event"] == "removed")
        .collect();
    assert_eq!(removed.len(), 1);
    assert!(moved.ends_with(removed[0]["archive"].as_str().unwrap()));
    assert_eq!(code(&s, &["rm", "w"]).0, 4, "gone");
}

#[test]
fn rm_of_a_stopped_agent_moves_it_and_a_new_one_of_the_same_id_starts_afresh() {
    let s = with_worker();
    let id = s.ok(&["send", "w", "one"]);
    wait_reply(&s, &id);
    s.ok(&["stop", "w"]);
    let out = s.ok(&["rm", "w"]);
    assert!(
        out.contains("removed w") && out.contains("archive"),
        "{out}"
    );
    assert!(!s.agent("w").dir.exists());
    s.ok(&["spawn", "worker", "--id", "w", "--brain", "echo", "--wait"]);
    let d = json_of(&s, &["describe", "w", "--json"]);
    assert_eq!(d["generation"], 1, "a fresh folder: {d}");
    assert_eq!(d["handled"], 0, "{d}");
    assert!(
        d["last_exit"].is_null(),
        "the removed agent's exit is not the new one's: {d}"
    );
    let id = s.ok(&["send", "w", "two"]);
    wait_reply(&s, &id);
}

/// A script agent that takes 20 ms a message, with a 20-character id.
const BUSY_TOML: &str = r#"
[[agent]]
id = "busy-worker-12345678"
role = "busy"
keep_alive = true

[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "task"
actions = [ { do = "sleep", ms = 20 } ]
"#;

#[test]
fn top_once_shows_a_busy_agent_and_fits_80_columns() {
    let id = "busy-worker-12345678";
    assert_eq!(id.len(), 20);
    let mut s = Society::new(BIN, BUSY_TOML);
    s.start_supervisor();
    let inbox = s.agent(id).inbox();
    // Enough work for well over two samples (about 12 s at 20 ms each).
    for n in 0..600 {
        let env = Envelope::new(
            Party::Orchestrator,
            id.parse().unwrap(),
            "task",
            json!({ "n": n }),
        );
        append(&inbox, &env.to_line());
    }
    wait_until(SOON, "the agent to be handling its queue", || {
        (s.status(id)["handled"].as_u64() > Some(0)).then_some(())
    });
    let report = json_of(&s, &["top", "--once", "-o", "json"]);
    let row = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert!(row["msgs_per_sec"].as_f64().unwrap() > 0.0, "{row}");
    assert!(row["rss_bytes"].as_u64().unwrap() > 0, "{row}");
    assert!(row["cpu_percent"].is_number(), "{row}");
    assert!(row["queue"].as_u64().unwrap() > 0, "{row}");
    assert_eq!(row["spend_usd"], 0.0);
    assert!(report["interval_ms"].as_u64().unwrap() >= 900, "{report}");

    // 80 columns hold the whole table; at 50 the numbers are cut to fit,
    // never the id.
    for cols in [80, 50] {
        let out = s
            .command(&["top", "--once", "--interval", "200ms"])
            .env("COLUMNS", cols.to_string())
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(id), "{text}");
        assert_eq!(text.contains('…'), cols == 50, "{text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= cols,
                "{line:?} is wider than {cols}"
            );
        }
    }
    let lines = s.ok(&["top", "--once", "--interval", "100ms", "-o", "jsonl"]);
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

#[test]
fn a_removal_the_registry_records_is_finished_when_the_supervisor_starts() {
    // As a supervisor leaves it when it dies between the `removed` record
    // and the move: the folder, with rotated segments, still in place.
    let mut s = Society::new(BIN, "");
    s.ok(&[
        "spawn",
        "worker",
        "--id",
        "w",
        "--brain",
        "echo",
        "--no-start",
    ]);
    let layout = s.layout();
    let segments = layout.archive_dir().join("agent-w");
    std::fs::create_dir_all(&segments).unwrap();
    std::fs::write(segments.join("inbox.000000.jsonl"), "{}\n").unwrap();
    let archive = "archive/agent-w-20260101T000000.000Z";
    append(
        &layout.registry(),
        json!({"ts": "2026-01-01T00:00:00.000Z", "event": "removed", "agent": "w", "gen": 0,
               "archive": archive})
        .to_string()
        .as_bytes(),
    );
    s.start_supervisor();
    let moved = layout.state_dir().join(archive);
    wait_until(SOON, "the supervisor to finish the removal", || {
        (!s.agent("w").dir.exists() && moved.join("config.json").is_file()).then_some(())
    });
    assert!(moved.join("segments/inbox.000000.jsonl").is_file());
    assert!(!segments.exists());
    assert_eq!(json_of(&s, &["status", "--json"])["agents"], json!([]));
}
