//! The JSON of every read command against FORMAT.md's "Command output": for
//! `-o json` and `-o jsonl`, the output parses, has the right shape (a
//! report is one object, a list an array or one element a line) and every
//! field the section documents for the command. The fields are read from
//! FORMAT.md itself, so the document and the output cannot drift apart.

use crate::support::BIN;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{time, CaseId, Envelope, Party};
use society_testkit::Society;
use std::path::Path;

fn append(path: &Path, line: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    append_one(path, line, Durability::Flushed, usize::MAX).unwrap();
}

/// The documented field paths of `**`society TITLE`**` in FORMAT.md's
/// "Command output": the first cell of each row of its table, where
/// `` `a[].b`, `.c` `` names `a[].b` and `a[].c`.
fn documented(title: &str) -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("FORMAT.md")).unwrap();
    let section = &doc[doc.find("## Command output").expect("the section")..];
    let start = section
        .find(&format!("**`society {title}"))
        .unwrap_or_else(|| panic!("FORMAT.md documents `society {title}`"));
    let mut fields = Vec::new();
    let rows = section[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    for row in rows {
        let cell = row.split('|').nth(1).unwrap().trim();
        let mut prefix = String::new();
        for name in cell.split(", ") {
            let name = name.trim_matches('`');
            let path = match name.strip_prefix('.') {
                Some(rest) => format!("{prefix}{rest}"),
                None => name.to_string(),
            };
            prefix = path[..path.rfind('.').map_or(0, |i| i + 1)].to_string();
            fields.push(path);
        }
    }
    assert!(!fields.is_empty(), "no fields documented for {title}");
    fields
}

/// Does `v` have `path` (`a`, `a.b`, `a[].b`: in every element, of which
/// there must be one)?
fn has(v: &Value, path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match (head.strip_suffix("[]"), rest) {
        (Some(array), Some(rest)) => v[array]
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(|i| has(i, rest))),
        (None, Some(rest)) => v.get(head).is_some_and(|inner| has(inner, rest)),
        (_, None) => v.as_object().is_some_and(|o| o.contains_key(head)),
    }
}

/// Stdout of `society ARGS`, whatever its exit code (fsck exits 9).
fn stdout(s: &Society, args: &[&str]) -> String {
    String::from_utf8(s.run(args).stdout).unwrap()
}

/// Checks `args -o json` and `args -o jsonl` against the fields of `title`.
fn check(s: &Society, title: &str, args: &[&str], list: bool) {
    let fields = documented(title);
    let json = stdout(s, &[args, &["-o", "json"]].concat());
    let doc: Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{args:?}: {e}\n{json}"));
    let lines: Vec<Value> = stdout(s, &[args, &["-o", "jsonl"]].concat())
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?} jsonl: {e}: {l}")))
        .collect();
    let items = if list {
        let items = doc
            .as_array()
            .unwrap_or_else(|| panic!("{args:?}: an array"));
        assert!(!items.is_empty(), "{args:?}: something to check");
        assert_eq!(&lines, items, "{args:?}: jsonl is the array, a line each");
        items.clone()
    } else if matches!(args[0], "top" | "metrics") {
        // Two runs, two samples (of `top`) or two `generated_at` (of
        // `metrics`): the same shape, not the same figures.
        assert!(doc.is_object(), "{args:?}: an object");
        assert_eq!(lines.len(), 1, "{args:?}: jsonl is one line");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&lines[0]), keys(&doc), "{args:?}");
        vec![doc, lines[0].clone()]
    } else {
        assert!(doc.is_object(), "{args:?}: an object");
        assert_eq!(
            lines,
            std::slice::from_ref(&doc),
            "{args:?}: jsonl is the object on one line"
        );
        vec![doc]
    };
    for item in &items {
        for field in &fields {
            assert!(has(item, field), "{args:?}: no {field} in {item:#}");
        }
    }
}

#[test]
fn every_read_command_prints_the_documented_json() {
    let s = Society::new(BIN, "");
    let layout = s.layout();
    s.ok(&["spawn", "worker", "--id", "worker-1", "--no-start"]);
    let now = time::now_rfc3339();
    let case = CaseId::new("c-format").unwrap();
    for rec in [
        json!({"ts": now, "event": "created", "case": "c-format", "agent": "orchestrator", "gen": 0,
               "purpose": "tides", "priority": "high", "due": "2999-01-01T00:00:00.000Z"}),
        json!({"ts": now, "event": "assigned", "case": "c-format", "agent": "supervisor", "gen": 0,
               "to": "worker-1"}),
    ] {
        append(&layout.case_log(&case), &serde_json::to_vec(&rec).unwrap());
    }
    let usage = json!({"ts": now, "event": "usage", "agent": "worker-1", "gen": 1,
        "provider": "anthropic", "model": "m", "input_tokens": 10, "output_tokens": 5,
        "usd": 0.5, "priced": true, "case": "c-format", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "step": 1});
    append(
        &s.agent("worker-1").costs(),
        &serde_json::to_vec(&usage).unwrap(),
    );
    let mut request = Envelope::new(
        "worker-1".parse().unwrap(),
        Party::Orchestrator,
        "approval_request",
        json!({"plan": "deploy", "rationale": "tests pass", "alternatives": ["wait"], "revision": 1}),
    );
    request.case = Some(case.clone());
    append(&layout.orchestrator_inbox(), &request.to_line());
    let dead = Envelope::new(
        Party::Orchestrator,
        "worker-1".parse().unwrap(),
        "task",
        json!({"text": "x"}),
    );
    let letter = json!({"ts": now, "event": "dead_lettered", "agent": "worker-1", "gen": 1,
        "file": "inbox.jsonl", "offset": 0, "id": dead.id, "reason": "failed 3 attempts",
        "line": String::from_utf8(dead.to_line()).unwrap(), "truncated": false});
    append(
        &s.agent("worker-1").deadletter(),
        &serde_json::to_vec(&letter).unwrap(),
    );
    // A torn tail: fsck has a finding to print.
    std::fs::OpenOptions::new()
        .append(true)
        .open(s.agent("worker-1").inbox())
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"torn"))
        .unwrap();

    check(&s, "status", &["status"], false);
    check(&s, "costs", &["costs"], false);
    check(&s, "costs", &["costs", "--by", "case"], false);
    check(&s, "fsck", &["fsck"], false);
    check(&s, "approvals", &["approvals"], true);
    check(&s, "case list", &["case", "list"], true);
    check(&s, "case show", &["case", "show", "c-format"], false);
    let started = json!({"ts": now, "event": "supervisor_started", "agent": "supervisor",
        "gen": 0, "pid": 1});
    append(
        &layout.supervisor_activity(),
        &serde_json::to_vec(&started).unwrap(),
    );
    check(&s, "logs", &["logs"], true);
    check(&s, "inbox", &["inbox"], true);
    check(&s, "deadletter list", &["deadletter", "list"], true);
    let circuit = json!({"name": "openai-h-K", "provider": "openai", "endpoint": "http://h/v1/chat/completions",
        "key_env": "K", "failures": 3, "open": true, "opened_at": now, "opened_by": "worker-1",
        "probe_at": null, "last_error": "refused", "updated": now});
    let circuits = layout.state_dir().join("circuits");
    std::fs::create_dir_all(&circuits).unwrap();
    std::fs::write(circuits.join("openai-h-K.json"), circuit.to_string()).unwrap();
    check(&s, "llm status", &["llm", "status"], true);
    check(&s, "describe", &["describe", "worker-1"], false);
    let describe = |name: &str| -> Value {
        serde_json::from_str(&stdout(&s, &["describe", name, "-o", "json"])).unwrap()
    };
    assert_eq!(describe("c-format")["kind"], "case");
    assert_eq!(
        describe("c-format")["timeline"].as_array().map(Vec::len),
        Some(2)
    );
    let approval = describe(&request.id.to_string());
    assert_eq!(approval["kind"], "approval", "{approval}");
    assert_eq!(approval["state"], "pending", "{approval}");
    check(
        &s,
        "top --once",
        &["top", "--once", "--interval", "100ms"],
        false,
    );
    check(&s, "config reload", &["config", "reload"], false);

    // Governance: an autonomous decision awaiting review, a policy change.
    for rec in [
        json!({"ts": now, "event": "assessed", "decision": "d-format", "agent": "worker-1",
               "case": "c-format", "decision_type": "shot", "level": "autonomous",
               "rule": "baseline", "scores": {"confidence": 0.7}, "context": {"plan": "p"},
               "revision": 1, "parent": null}),
        json!({"ts": now, "event": "resolved", "decision": "d-format", "approved": true,
               "approver": "self", "outcome": "executed"}),
    ] {
        append(
            &s.agent("worker-1").decisions(),
            &serde_json::to_vec(&rec).unwrap(),
        );
    }
    s.ok(&["policy", "set", "autonomy.impact_max", "0.7"]);
    check(&s, "review", &["review"], true);
    check(&s, "policy show", &["policy", "show"], false);
    check(&s, "metrics", &["metrics"], false);

    // `--json` is `-o json`; with `-o` it is a usage error.
    assert_eq!(
        stdout(&s, &["case", "list", "--json"]),
        stdout(&s, &["case", "list", "-o", "json"])
    );
    assert_eq!(
        s.run(&["status", "--json", "-o", "wide"]).status.code(),
        Some(2)
    );
    // An empty list is `[]`, and nothing at all in jsonl.
    let empty = Society::new(BIN, "");
    assert_eq!(stdout(&empty, &["approvals", "-o", "json"]).trim(), "[]");
    assert_eq!(stdout(&empty, &["case", "list", "-o", "jsonl"]), "");
}
