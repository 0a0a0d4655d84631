//! Agent memory through real processes: a script brain remembers in one
//! message and recalls in a later one; `society memory` shows the ranking;
//! a remember survives a crash and a SIGKILL mid-message exactly once;
//! a memory over the size limit dead-letters its message, naming the limit.

use crate::support::{json_of, wait_reply, BIN, SOON};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_testkit::{records, wait_until, Society};

const KEEPER: &str = r#"
[defaults]
heartbeat = "100ms"
backoff_initial = "50ms"

[[agent]]
id = "keeper"
[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "note"
actions = [
  { do = "remember", text = "{{body.text}}", tags = ["{{body.topic}}"] },
  { do = "reply", type = "noted", body = { ok = true } },
]

[[agent.brain.rules]]
type = "ask"
actions = [
  { do = "recall", query = "{{body.q}}", k = 2 },
  { do = "reply", type = "recalled", body = { top = "{{recall.0.text}}", hits = "{{recall}}" } },
]

[[agent.brain.rules]]
type = "crash"
actions = [
  { do = "remember", text = "{{body.text}}", tags = ["crash"] },
  { do = "exit", code = 101, until_attempt = 1 },
  { do = "reply", type = "noted", body = { ok = true } },
]

[[agent.brain.rules]]
type = "slow"
actions = [
  { do = "remember", text = "{{body.text}}", tags = ["slow"] },
  { do = "sleep", ms = 60000, until_attempt = 1 },
  { do = "reply", type = "noted", body = { ok = true } },
]
"#;

fn send(s: &Society, kind: &str, body: &str) -> String {
    s.ok(&["send", "keeper", "--type", kind, "--json", body])
        .trim()
        .to_string()
}

fn memories(s: &Society) -> Vec<Value> {
    records(&s.agent("keeper").memory())
}

/// The keeper's `remembered` activity records for message `id`.
fn remembered(s: &Society, id: &str) -> Vec<Value> {
    records(&s.agent("keeper").activity())
        .into_iter()
        .filter(|r| r["event"] == "remembered" && r["id"] == id)
        .collect()
}

#[test]
fn a_script_agent_recalls_in_a_later_message_what_it_remembered() {
    let mut s = Society::new(BIN, KEEPER);
    s.start_supervisor();
    for (text, topic) in [
        ("the dragon sleeps under the hill", "dragon"),
        ("bread needs salt", "kitchen"),
        ("castle walls are high", "dragon"),
    ] {
        let id = send(
            &s,
            "note",
            &format!(r#"{{"text": "{text}", "topic": "{topic}"}}"#),
        );
        wait_reply(&s, &id);
    }
    let id = send(&s, "ask", r#"{"q": "Dragon"}"#);
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["type"], "recalled", "{reply}");
    // Text and tag beat a tag alone (tf 1 + 2×1 against 2×1).
    assert_eq!(reply["body"]["top"], "the dragon sleeps under the hill");
    let hits = reply["body"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "bread is not recalled: {reply}");
    assert_eq!(hits[1]["text"], "castle walls are high");
    assert_eq!(hits[1]["tags"], serde_json::json!(["dragon"]));

    // The CLI shows the same ranking, with the parts of each score.
    let q = json_of(&s, &["memory", "keeper", "query", "dragon", "-o", "json"]);
    let texts: Vec<&str> = q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["the dragon sleeps under the hill", "castle walls are high"]
    );
    assert_eq!(q["total"], 3);
    let top = &q["hits"][0];
    let (score, bm25, recency) = (
        top["score"].as_f64().unwrap(),
        top["bm25"].as_f64().unwrap(),
        top["recency"].as_f64().unwrap(),
    );
    assert!((score - bm25 * (1.0 + 0.5 * recency)).abs() < 1e-9, "{top}");
    assert_eq!(top["matched"], serde_json::json!(["dragon"]));
    let all = json_of(&s, &["memory", "keeper", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let table = s.ok(&["memory", "keeper", "query", "salt"]);
    assert!(table.contains("bread needs salt"), "{table}");
    let none = s.ok(&["memory", "keeper", "query", "unicorn"]);
    assert!(none.contains("recalls nothing"), "{none}");
    let out = s.run(&["memory", "nobody", "list"]);
    assert_eq!(out.status.code(), Some(4), "no such agent: not found");
    let out = s.run(&["memory", "keeper", "query", "x", "--k", "0"]);
    assert_eq!(out.status.code(), Some(5), "bad k: invalid");
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 100"));
}

#[test]
fn a_remember_is_kept_once_when_the_agent_crashes_after_it() {
    let mut s = Society::new(BIN, KEEPER);
    s.start_supervisor();
    let id = send(&s, "crash", r#"{"text": "remember me once"}"#);
    wait_reply(&s, &id);
    let lines = remembered(&s, &id);
    assert_eq!(lines.len(), 2, "tried twice: {lines:?}");
    assert_eq!(lines[0]["stored"], true);
    assert_eq!(lines[1]["stored"], false, "the retry found it");
    assert_eq!(lines[0]["memory"], lines[1]["memory"]);
    let kept: Vec<Value> = memories(&s)
        .into_iter()
        .filter(|m| m["text"] == "remember me once")
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["message"], id.as_str());
    assert_eq!(kept[0]["tags"], serde_json::json!(["crash"]));
}

#[test]
fn a_remember_is_kept_once_across_a_sigkill_mid_message() {
    let mut s = Society::new(BIN, KEEPER);
    s.start_supervisor();
    let id = send(&s, "slow", r#"{"text": "killed while sleeping"}"#);
    wait_until(SOON, "the remember of the first attempt", || {
        (remembered(&s, &id).len() == 1).then_some(())
    });
    let pid = s.agent_pid("keeper").unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["type"], "noted");
    assert_ne!(s.agent_pid("keeper"), Some(pid), "a new process answered");
    let lines = remembered(&s, &id);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["stored"], false);
    assert_eq!(memories(&s).len(), 1, "{:?}", memories(&s));
}

#[test]
fn a_memory_over_the_size_limit_is_refused_naming_the_limit() {
    let mut s = Society::new(BIN, KEEPER);
    s.start_supervisor();
    let big = "x".repeat(16 * 1024 + 1);
    let id = send(
        &s,
        "note",
        &format!(r#"{{"text": "{big}", "topic": "big"}}"#),
    );
    let letter = wait_until(SOON, "the note dead-lettered", || {
        let v = json_of(&s, &["deadletter", "list", "keeper", "--json"]);
        v.as_array()?
            .iter()
            .find(|l| l["id"] == id.as_str())
            .cloned()
    });
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("memory text is 16385 bytes, over the limit of 16384 bytes per memory"),
        "{reason}"
    );
    assert!(memories(&s).is_empty());
    let attempts = records(&s.agent("keeper").activity())
        .into_iter()
        .filter(|r| r["event"] == "message_failed" && r["id"] == id.as_str())
        .count();
    assert!(
        attempts <= 1,
        "a refusal is not retried ({attempts} failures)"
    );
}

/// A command program: `note` remembers (a protocol line), `ask` recalls by
/// running `society memory "$SOCIETY_AGENT" query ... -o json`.
const PROGRAM: &str = r#"input=$(cat)
kind=$(printf '%s' "$input" | jq -r .message.type)
case "$kind" in
note)
  printf '%s' "$input" | jq -c '{action: "remember", text: .message.body.text, tags: [.message.body.topic]}'
  echo '{"action":"reply","type":"noted","body":{"ok":true}}'
  ;;
ask)
  q=$(printf '%s' "$input" | jq -r .message.body.q)
  "$SOCIETY_BIN" memory "$SOCIETY_AGENT" query "$q" -o json > "$SOCIETY_AGENT_FOLDER/workspace/temp/hits.json" || exit 3
  jq -c '{action: "reply", type: "recalled", body: {top: .hits[0].text, n: (.hits | length)}}' "$SOCIETY_AGENT_FOLDER/workspace/temp/hits.json"
  ;;
esac
"#;

#[test]
fn a_command_agent_remembers_by_a_protocol_line_and_recalls_through_the_cli() {
    use crate::command_brain::support::{script, society_toml};
    let toml = society_toml(3, &[("clerk", "tools/clerk.sh", "")]);
    let mut s = Society::new(BIN, &toml);
    script(s.root(), "clerk.sh", PROGRAM);
    // Every agent process aborts right after a memory line is written: the
    // replacement runs the program again and must store nothing twice.
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "memory.stored")]);
    let clerk = |kind: &str, body: &str| {
        s.ok(&["send", "clerk", "--type", kind, "--json", body])
            .trim()
            .to_string()
    };
    let first = clerk(
        "note",
        r#"{"text": "tides turn twice a day", "topic": "sea"}"#,
    );
    wait_reply(&s, &first);
    let second = clerk(
        "note",
        r#"{"text": "bread needs salt", "topic": "kitchen"}"#,
    );
    wait_reply(&s, &second);
    let kept = records(&s.agent("clerk").memory());
    assert_eq!(kept.len(), 2, "{kept:?}");
    let starts = records(&s.agent("clerk").activity())
        .into_iter()
        .filter(|r| r["event"] == "started")
        .count();
    assert!(
        starts >= 3,
        "the crash point fired for each note ({starts} starts)"
    );

    let id = clerk("ask", r#"{"q": "sea"}"#);
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["type"], "recalled", "{reply}");
    assert_eq!(reply["body"]["top"], "tides turn twice a day");
    assert_eq!(reply["body"]["n"], 1);
}

/// `memory.jsonl` replaced by a directory for a while (a write that fails
/// for seconds): the message waits and is tried again without using up its
/// attempts — with `max_attempts = 1` a counted failure would dead-letter
/// it — and once the file is back it is remembered once and answered.
#[test]
fn a_memory_file_that_cannot_be_written_for_a_while_delays_the_message_and_loses_nothing() {
    let toml = KEEPER.replace(
        "backoff_initial = \"50ms\"",
        "backoff_initial = \"50ms\"\nmax_attempts = 1",
    );
    let mut s = Society::new(BIN, &toml);
    let file = s.agent("keeper").memory();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::create_dir(&file).unwrap();
    s.start_supervisor();
    let id = send(
        &s,
        "note",
        r#"{"text": "the bridge is out", "topic": "roads"}"#,
    );
    wait_until(SOON, "the message deferred twice", || {
        let deferred = records(&s.agent("keeper").activity())
            .into_iter()
            .filter(|r| r["event"] == "message_deferred" && r["id"] == id.as_str())
            .count();
        (deferred >= 2).then_some(())
    });
    std::fs::remove_dir(&file).unwrap();
    assert_eq!(wait_reply(&s, &id)["type"], "noted");
    assert_eq!(memories(&s).len(), 1, "{:?}", memories(&s));
    assert!(records(&s.agent("keeper").deadletter()).is_empty());
}
