//! Corrupt and truncated state files: one bad folder never hides or stops
//! the others, the cause reaches the orchestrator, and `fsck --repair`
//! brings it back from the logs with nothing lost and nothing done twice.

use crate::support::{replies_to, system_events, BIN};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::path::Path;
use std::time::Duration;

const SOON: Duration = Duration::from_secs(30);

const TWO_ECHOES: &str = r#"
[defaults]
idle_exit = "2s"
[[agent]]
id = "e1"
brain = "echo"
[[agent]]
id = "e2"
brain = "echo"
"#;

fn send_and_wait(s: &Society, to: &str, text: &str) -> String {
    let id = s.ok(&["send", to, text]);
    wait_until(SOON, &format!("the reply to {text}"), || {
        (replies_to(s, &id).len() == 1).then_some(())
    });
    id
}

fn escalation_about(s: &Society, agent: &str) -> Option<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .find(|r| r["type"] == "escalation" && r["body"]["agent"] == agent)
}

fn fsck(s: &Society, repair: bool) -> (i32, Value) {
    let mut args = vec!["fsck", "--json"];
    if repair {
        args.push("--repair");
    }
    let out = s.run(&args);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), doc)
}

/// No message id in the orchestrator's inbox twice, nothing duplicated anywhere.
fn nothing_doubled(s: &Society) {
    let (code, doc) = fsck(s, false);
    let dups: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "duplicate" && f["severity"] == "problem")
        .collect();
    assert!(dups.is_empty(), "fsck exit {code}: {dups:#?}");
}

fn corrupt(path: &Path) {
    std::fs::write(path, b"{\"generation\": 3, \"inbox_off").unwrap();
}

#[test]
fn a_corrupt_config_of_a_declared_agent_is_rewritten_from_society_toml() {
    let mut s = Society::new(BIN, TWO_ECHOES);
    s.start_supervisor();
    send_and_wait(&s, "e1", "before");
    s.stop_supervisor();
    std::fs::write(s.agent("e1").config(), b"{not json").unwrap();
    s.start_supervisor();
    assert!(system_events(&s, "agent_config_repaired")
        .iter()
        .any(|r| r["agent"] == "e1"));
    send_and_wait(&s, "e1", "after");
    nothing_doubled(&s);
}

#[test]
fn a_corrupt_config_breaks_one_agent_not_the_society() {
    let mut s = Society::new(
        BIN,
        "[defaults]\nidle_exit = \"2s\"\n[[agent]]\nid = \"e2\"\nbrain = \"echo\"\n",
    );
    s.start_supervisor();
    s.ok(&["spawn", "helper", "--id", "e1", "--brain", "echo"]);
    send_and_wait(&s, "e1", "before");
    s.wait_state("e1", "dormant", SOON);
    std::fs::write(s.agent("e1").config(), b"{not json").unwrap();
    // `status` lists both, e1 as broken with the reason.
    let out = s.run(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |id: &str| {
        doc["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("e1")["state"], "broken");
    // The table does not say its mail is 0: it cannot be counted.
    let table = s.ok(&["status", "-o", "wide"]);
    let line = table.lines().find(|l| l.starts_with("e1 ")).unwrap();
    assert_eq!(
        line.split_whitespace().nth(3),
        Some("?"),
        "INBOX of a broken agent: {table}"
    );
    assert!(
        row("e1")["reason"]
            .as_str()
            .unwrap()
            .contains("config.json"),
        "{doc:#}"
    );
    assert_eq!(row("e2")["state"], "dormant");
    let table = s.ok(&["status"]);
    assert!(
        table.contains("broken") && table.contains("e1: "),
        "{table}"
    );
    // A new supervisor starts, escalates e1 once, and e2 keeps working;
    // mail for e1 waits in its inbox.
    s.kill_supervisor();
    s.start_supervisor();
    let esc = wait_until(SOON, "the escalation naming e1", || {
        escalation_about(&s, "e1")
    });
    assert!(
        esc["body"]["reason"]
            .as_str()
            .unwrap()
            .contains("config.json"),
        "{esc:#}"
    );
    send_and_wait(&s, "e2", "still here");
    let waiting = s.ok(&["send", "e1", "while broken"]);
    // fsck names it; --repair rewrites it from society.toml; e1 runs again.
    let (code, doc) = fsck(&s, false);
    assert_eq!(code, 9, "{doc:#}");
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "config"));
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 8, "{doc:#}");
    wait_until(SOON, "the waiting message handled", || {
        (replies_to(&s, &waiting).len() == 1).then_some(())
    });
    nothing_doubled(&s);
}

#[test]
fn a_corrupt_checkpoint_is_rebuilt_from_the_logs() {
    let mut s = Society::new(BIN, TWO_ECHOES);
    s.start_supervisor();
    let before: Vec<String> = (0..5)
        .map(|n| send_and_wait(&s, "e1", &format!("m{n}")))
        .collect();
    s.wait_state("e1", "dormant", SOON);
    corrupt(&s.agent("e1").checkpoint());
    let row = s.status("e1");
    assert_eq!(row["state"], "broken", "{row:#}");
    // Mail for e1 starts it; it cannot run and says why, once; e2 works on.
    let waiting = s.ok(&["send", "e1", "while broken"]);
    let esc = wait_until(SOON, "the escalation naming e1", || {
        escalation_about(&s, "e1")
    });
    let reason = esc["body"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("checkpoint.json") && reason.contains("not valid JSON"),
        "{esc:#}"
    );
    send_and_wait(&s, "e2", "still here");
    let out = s.run(&["restart", "e1", "--no-wait"]);
    assert!(
        out.status.success(),
        "restart of a broken agent is accepted: {out:?}"
    );
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 8, "{doc:#}");
    wait_until(SOON, "the waiting message handled", || {
        (replies_to(&s, &waiting).len() == 1).then_some(())
    });
    for id in &before {
        assert_eq!(replies_to(&s, id).len(), 1, "{id} was not handled again");
    }
    let escalations = records(&s.layout().orchestrator_inbox())
        .iter()
        .filter(|r| r["type"] == "escalation" && r["body"]["agent"] == "e1")
        .count();
    assert_eq!(escalations, 1, "escalated once");
    nothing_doubled(&s);
}

#[test]
fn a_corrupt_supervisor_checkpoint_is_rebuilt_with_nothing_routed_twice() {
    let mut s = Society::new(BIN, TWO_ECHOES);
    s.start_supervisor();
    let sent: Vec<String> = (0..4)
        .map(|n| send_and_wait(&s, "e1", &format!("m{n}")))
        .collect();
    s.stop_supervisor();
    corrupt(&s.layout().supervisor_checkpoint());
    // `up` says what is wrong and how to fix it, with the documented code.
    let out = s.run(&["up"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checkpoint.json") && err.contains("fsck --repair"),
        "{err}"
    );
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 8, "{doc:#}");
    s.start_supervisor();
    let after = send_and_wait(&s, "e1", "after");
    for id in sent.iter().chain([&after]) {
        assert_eq!(replies_to(&s, id).len(), 1, "{id}");
    }
    nothing_doubled(&s);
}

#[test]
fn a_corrupt_format_file_is_invalid_state() {
    let s = Society::new(BIN, "");
    std::fs::write(s.layout().format_json(), b"{format").unwrap();
    let out = s.run(&["status"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("format.json") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn an_inbox_truncated_below_its_cursor_is_an_incident_not_a_silent_skip() {
    let mut s = Society::new(BIN, TWO_ECHOES);
    s.start_supervisor();
    let before: Vec<String> = (0..20)
        .map(|n| send_and_wait(&s, "e1", &format!("m{n}")))
        .collect();
    let inbox = s.agent("e1").inbox();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&inbox)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let after: Vec<String> = (0..20)
        .map(|n| s.ok(&["send", "e1", &format!("late {n}")]))
        .collect();
    let esc = wait_until(SOON, "the escalation naming e1", || {
        escalation_about(&s, "e1")
    });
    assert!(
        esc["body"]["reason"]
            .as_str()
            .unwrap()
            .contains("inbox.jsonl"),
        "{esc:#}"
    );
    wait_until(SOON, "e1 to show broken", || {
        (s.status("e1")["state"] == "broken").then_some(())
    });
    let handled_late = after
        .iter()
        .filter(|id| !replies_to(&s, id).is_empty())
        .count();
    assert_eq!(
        handled_late, 0,
        "nothing after the truncation was skipped past or guessed"
    );
    let (code, _) = fsck(&s, false);
    assert_eq!(code, 9);
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 8, "{doc:#}");
    wait_until(SOON, "every late message handled", || {
        after
            .iter()
            .all(|id| replies_to(&s, id).len() == 1)
            .then_some(())
    });
    for id in &before {
        assert_eq!(replies_to(&s, id).len(), 1, "{id} was not handled again");
    }
    nothing_doubled(&s);
}

#[test]
fn an_outbox_truncated_below_the_routers_cursor_is_an_incident() {
    let mut s = Society::new(BIN, TWO_ECHOES);
    s.start_supervisor();
    for n in 0..20 {
        send_and_wait(&s, "e1", &format!("m{n}"));
    }
    let outbox = s.agent("e1").outbox();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&outbox)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let after: Vec<String> = (0..10)
        .map(|n| s.ok(&["send", "e1", &format!("late {n}")]))
        .collect();
    let esc = wait_until(SOON, "the router's escalation", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| {
                r["type"] == "escalation"
                    && r["body"]["reason"]
                        .as_str()
                        .is_some_and(|t| t.contains("outbox.jsonl"))
            })
    });
    assert_eq!(esc["body"]["agent"], "e1", "{esc:#}");
    // The supervisor holds the cursor: repairs wait until it is down.
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 9, "{doc:#}");
    s.stop_supervisor();
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 8, "{doc:#}");
    s.start_supervisor();
    wait_until(SOON, "every late reply routed", || {
        after
            .iter()
            .all(|id| replies_to(&s, id).len() == 1)
            .then_some(())
    });
    nothing_doubled(&s);
}

#[test]
fn a_bad_line_handled_once_is_not_a_finding_forever() {
    let mut s = Society::new(BIN, TWO_ECHOES);
    s.start_supervisor();
    let append = |path: &Path| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(b"this is not json\n").unwrap();
    };
    // The supervisor's inbox: it dead-letters the line itself.
    append(&s.layout().supervisor_inbox());
    wait_until(SOON, "the supervisor to dead-letter it", || {
        records(&s.layout().supervisor_deadletter())
            .iter()
            .any(|r| r["event"] == "dead_lettered")
            .then_some(())
    });
    // The orchestrator's inbox has no consumer: fsck --repair quarantines it.
    append(&s.layout().orchestrator_inbox());
    let (code, doc) = fsck(&s, false);
    assert_eq!(code, 9, "{doc:#}");
    let (code, doc) = fsck(&s, true);
    assert_eq!(code, 8, "{doc:#}");
    let (code, doc) = fsck(&s, false);
    assert_eq!(code, 0, "clean from now on: {doc:#}");
    s.stop_supervisor();
    let (code, doc) = fsck(&s, false);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn agent_run_exits_with_the_shared_codes_and_says_why() {
    // One table for every entry point: an agent whose state cannot be used
    // exits 5 (not 2, the CLI's usage error), and records why for the
    // supervisor's escalation.
    let mut s = Society::new(BIN, TWO_ECHOES);
    // Provisioned once ready (a SIGTERM before its handlers are installed
    // would kill it half-way through provisioning).
    s.start_supervisor();
    assert!(s.stop_supervisor().success());
    corrupt(&s.agent("e1").checkpoint());
    let out = s
        .command(&["agent-run", "--folder"])
        .arg(&s.agent("e1").dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let why = records(&s.agent("e1").activity())
        .into_iter()
        .find(|r| r["event"] == "exit_error")
        .unwrap();
    assert_eq!(why["code"], 5);
    assert!(
        why["error"].as_str().unwrap().contains("checkpoint.json"),
        "{why:#}"
    );
    std::fs::write(s.agent("e2").config(), b"{").unwrap();
    let out = s
        .command(&["agent-run", "--folder"])
        .arg(&s.agent("e2").dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "a corrupt config: {out:?}");
}
