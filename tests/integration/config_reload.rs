//! `society config reload`: a changed `society.toml` applied to a running
//! supervisor — an added agent starts, a changed one restarts with its new
//! config, a removed one stops with its folder kept — and a broken file is
//! refused with its line and column while everything keeps running.

use crate::support::{code, json_of, BIN, SOON};
use serde_json::Value;
use society_testkit::{wait_until, Society};

const BEFORE: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "keeper"
role = "echo"
brain = "echo"
keep_alive = true

[[agent]]
id = "changer"
role = "echo"
brain = "echo"
keep_alive = true
"#;

/// `changer` gets a policy, `added` is new; `keeper` is as it was.
const AFTER: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "keeper"
role = "echo"
brain = "echo"
keep_alive = true

[[agent]]
id = "changer"
role = "echo"
brain = "echo"
keep_alive = true
policy = { max_attempts = 7 }

[[agent]]
id = "added"
role = "echo"
brain = "echo"
keep_alive = true
"#;

fn write_toml(s: &Society, text: &str) {
    std::fs::write(s.layout().society_toml(), text).unwrap();
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

#[test]
fn reload_starts_added_restarts_changed_and_stops_removed_agents() {
    let mut s = Society::new(BIN, BEFORE);
    s.start_supervisor();
    s.wait_state("keeper", "idle", SOON);
    let changer = s.wait_state("changer", "idle", SOON);
    let keeper_pid = s.agent_pid("keeper").unwrap();
    let changer_gen = changer["generation"].as_u64().unwrap();

    write_toml(&s, AFTER);
    let doc = json_of(&s, &["config", "reload", "-o", "json"]);
    assert_eq!(doc["supervisor_running"], true, "{doc}");
    let r = &doc["reloaded"];
    assert_eq!(ids(&r["added"]), ["added"], "{doc}");
    assert_eq!(ids(&r["changed"]), ["changer"], "{doc}");
    assert!(ids(&r["removed"]).is_empty(), "{doc}");
    assert_eq!(r["unchanged"], 1, "{doc}");
    s.wait_state("added", "idle", SOON);
    wait_until(SOON, "changer restarted with its new config", || {
        let st = s.status("changer");
        (st["state"] == "idle" && st["generation"].as_u64() > Some(changer_gen)).then_some(())
    });
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(s.agent("changer").config()).unwrap()).unwrap();
    assert_eq!(cfg["policy"]["max_attempts"], 7, "{cfg}");
    assert_eq!(
        s.agent_pid("keeper"),
        Some(keeper_pid),
        "an unchanged agent is left running"
    );

    // Removing `added` stops it and keeps its folder.
    write_toml(&s, BEFORE);
    let out = s.ok(&["config", "reload"]);
    assert!(out.contains("removed") && out.contains("added"), "{out}");
    let st = s.wait_state("added", "dormant", SOON);
    assert_eq!(st["held"], true, "stopped and held: {st}");
    assert!(s.agent("added").config().exists(), "the folder stays");
    // A reload with nothing new changes nothing.
    let doc = json_of(&s, &["config", "reload", "--json"]);
    assert!(ids(&doc["reloaded"]["removed"]).is_empty(), "{doc}");
    assert_eq!(doc["reloaded"]["unchanged"], 2, "{doc}");

    // A broken file is refused before the supervisor sees it.
    write_toml(&s, &format!("{BEFORE}\n[defualts]\n"));
    let (rc, _, err) = code(&s, &["config", "reload"]);
    assert_eq!(rc, 5, "{err}");
    assert!(
        err.contains("society.toml") && err.contains("line"),
        "{err}"
    );
    assert_eq!(s.agent_pid("keeper"), Some(keeper_pid), "nothing stopped");
    s.stop_supervisor();
}

#[test]
fn reload_without_a_supervisor_only_checks() {
    let s = Society::new(BIN, BEFORE);
    let (rc, out, err) = code(&s, &["config", "reload"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("no supervisor is running"), "{out}");
    assert!(
        s.processes().is_empty(),
        "a reload starts nothing: {:?}",
        s.processes()
    );
    let doc = json_of(&s, &["config", "reload", "-o", "json"]);
    assert_eq!(doc["supervisor_running"], false);
    assert_eq!(doc["reloaded"], Value::Null);
}
