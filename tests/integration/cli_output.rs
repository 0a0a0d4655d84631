//! What commands print and take: `status --json` never prints `-0.0`,
//! `status --watch` writes no screen codes into a pipe and `--watch --json`
//! is JSON lines; every table fits `COLUMNS` and `-o wide` cuts nothing;
//! times are local (`TZ`) unless `--utc`, with the date when not today;
//! HANDLED and DEAD count apart; a body larger than the kernel's argument
//! limit is sent from a file or standard input.

use crate::support::{code, wait_reply, BIN, ECHO_TOML, SOON};
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{time, CaseId};
use society_testkit::{records, wait_until, Society};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;

/// Stdout of `society ARGS` (which must succeed) with `env` set.
fn run_with(s: &Society, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = s
        .command(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn append(path: &Path, record: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let line = serde_json::to_vec(record).unwrap();
    append_one(path, &line, Durability::Flushed, usize::MAX).unwrap();
}

#[test]
fn status_json_says_zero_spend_and_watch_streams_json_lines_into_a_pipe() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let (rc, out, err) = code(&s, &["status", "--json"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("\"spend_usd\": 0.0"), "{out}");
    assert!(!out.contains("-0.0"), "{out}");
    for (args, json) in [
        (vec!["status", "--watch", "--json"], true),
        (vec!["status", "--watch"], false),
    ] {
        let mut child = s
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(
            !first.contains('\x1b'),
            "no screen codes into a pipe: {first:?}"
        );
        if json {
            let second = lines.next().unwrap().unwrap();
            for line in [&first, &second] {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(v["agents"][0]["id"], "echo");
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_ten_megabyte_body_is_sent_from_a_file_and_a_body_from_stdin() {
    let toml = format!("[defaults]\nmax_record = 16777216\nmax_body = 16777216\n{ECHO_TOML}");
    let toml = toml.replacen("[defaults]\nheartbeat", "heartbeat", 1);
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    let big = "x".repeat(10 << 20);
    let file = s.root().join("body.json");
    std::fs::write(&file, serde_json::json!({ "text": big }).to_string()).unwrap();
    let (rc, out, err) = code(
        &s,
        &[
            "send",
            "echo",
            "--body-file",
            file.to_str().unwrap(),
            "--no-start",
        ],
    );
    assert_eq!(rc, 0, "{err}");
    let id = out.trim().to_string();
    let sent = records(&s.agent("echo").inbox())
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the message is in the inbox");
    assert_eq!(sent["body"]["text"].as_str().map(str::len), Some(10 << 20));

    let mut child = s
        .command(&["send", "echo", "--body-file", "-", "--type", "note"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"from_stdin": true}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let sent = records(&s.agent("echo").inbox())
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the stdin message is in the inbox");
    assert_eq!(sent["body"]["from_stdin"], true);
    assert_eq!(sent["type"], "note");

    let (rc, _, err) = code(&s, &["broadcast", "--body-file", file.to_str().unwrap()]);
    assert_eq!(rc, 0, "broadcast takes a body file too: {err}");
    let (rc, _, err) = code(&s, &["send", "echo", "hi", "--body-file", "-"]);
    assert_eq!(rc, 2, "one source only: {err}");
    std::fs::write(&file, "[1, 2]").unwrap();
    let (rc, _, err) = code(&s, &["send", "echo", "--body-file", file.to_str().unwrap()]);
    assert_eq!(rc, 5, "{err}");
    assert!(err.contains("must hold a JSON object"), "{err}");
}

/// Agent ids of 20 characters: one works on a case for a minute, one asks
/// for approval with a long plan.
const WIDE_TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "research-assistant-1"
role = "researcher"
keep_alive = true
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "sleep", ms = 60000 } ]

[[agent]]
id = "approval-requester-2"
role = "deployer"
keep_alive = true
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "request_approval", plan = "deploy version {{body.text}} to every region once the traffic is drained from the old fleet and the caches are warm" } ]
"#;

const PURPOSE: &str = "Summarise the quarterly reports of every subsidiary and flag any anomaly in revenue recognition";

#[test]
fn every_table_fits_eighty_columns_and_wide_cuts_nothing() {
    let mut s = Society::new(BIN, WIDE_TOML);
    s.start_supervisor();
    let case = s.ok(&["case", "new", PURPOSE, "--assign", "research-assistant-1"]);
    s.ok(&[
        "send",
        "research-assistant-1",
        "go",
        "--type",
        "task",
        "--case",
        &case,
    ]);
    s.ok(&[
        "send",
        "approval-requester-2",
        "v1.2.3",
        "--type",
        "task",
        "--case",
        &case,
    ]);
    // Spend of a model, by hand: the society has no llm agent.
    let usage = json!({"ts": time::now_rfc3339(), "event": "usage", "agent": "research-assistant-1",
        "gen": 1, "provider": "anthropic", "model": "claude-sonnet-4-20250514-with-a-long-name",
        "input_tokens": 1234567, "output_tokens": 7654321, "usd": 123.456789, "priced": true,
        "case": case, "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "step": 1});
    append(&s.agent("research-assistant-1").costs(), &usage);
    wait_until(SOON, "the researcher at work on the case", || {
        (s.status("research-assistant-1")["case"] == case.as_str()).then_some(())
    });
    let request = wait_until(SOON, "the approval request", || {
        let v: Value = serde_json::from_str(&s.ok(&["approvals", "-o", "json"])).ok()?;
        v[0]["id"].as_str().map(str::to_string)
    });

    let commands: [&[&str]; 7] = [
        &["status"],
        &["approvals"],
        &["case", "list"],
        &["case", "show", &case],
        &["costs"],
        &["costs", "--by", "model"],
        &["costs", "--by", "case"],
    ];
    let cols = [("COLUMNS", "80")];
    let mut cut = String::new();
    for args in commands {
        let out = run_with(&s, &cols, args);
        for line in out.lines() {
            assert!(
                line.chars().count() <= 80,
                "{args:?}: {} columns: {line:?}\n{out}",
                line.chars().count()
            );
            assert_eq!(line, line.trim_end(), "{args:?}: trailing spaces");
        }
        cut += &out;
        let wide = run_with(&s, &cols, &[args, &["-o", "wide"]].concat());
        assert!(
            !wide.contains('…'),
            "{args:?} -o wide cut something:\n{wide}"
        );
        assert!(wide.lines().all(|l| l == l.trim_end()), "{wide}");
    }
    // Cut to fit, yet every id whole: what the next command takes.
    assert!(cut.contains('…'), "{cut}");
    assert!(!cut.contains(PURPOSE), "the purpose is cut at 80 columns");
    for id in [
        "research-assistant-1",
        "approval-requester-2",
        &request,
        &case,
    ] {
        assert!(cut.contains(id), "{id} is whole:\n{cut}");
    }
    // Narrower still, the ids are the last thing cut.
    for (args, id) in [
        (&["status"][..], "research-assistant-1"),
        (&["approvals"][..], request.as_str()),
        (&["case", "list"][..], case.as_str()),
    ] {
        let out = run_with(&s, &[("COLUMNS", "60")], args);
        assert!(out.lines().all(|l| l.chars().count() <= 60), "{out}");
        assert!(
            out.contains(id),
            "{args:?}: {id} is whole at 60 columns:\n{out}"
        );
    }
    // `-o wide`: everything, whole.
    let wide = run_with(&s, &cols, &["status", "-o", "wide"]);
    assert!(
        wide.contains(&case) && wide.contains("researcher"),
        "{wide}"
    );
    let wide = run_with(&s, &cols, &["case", "list", "-o", "wide"]);
    assert!(wide.contains(PURPOSE), "{wide}");
    let wide = run_with(&s, &cols, &["approvals", "-o", "wide"]);
    assert!(
        wide.contains("and the caches are warm") && wide.contains(&case),
        "{wide}"
    );
    let wide = run_with(&s, &cols, &["costs", "--by", "model", "-o", "wide"]);
    assert!(
        wide.contains("claude-sonnet-4-20250514-with-a-long-name"),
        "{wide}"
    );
    assert!(s.stop_supervisor().success());
}

#[test]
fn times_are_local_unless_utc_with_the_date_when_not_today() {
    let s = Society::new(BIN, "");
    let case = CaseId::new("c-tz").unwrap();
    let log = s.layout().case_log(&case);
    let now = time::now_rfc3339();
    let rec = |ts: &str, event: &str, extra: Value| {
        let mut v =
            json!({"ts": ts, "event": event, "case": "c-tz", "agent": "orchestrator", "gen": 0});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    append(
        &log,
        &rec(
            "2026-01-01T00:00:00.000Z",
            "created",
            json!({"purpose": "tides"}),
        ),
    );
    append(&log, &rec(&now, "note", json!({"text": "now"})));
    let tokyo = [("TZ", "Asia/Tokyo")];
    let (hour, rest) = (&now[11..13], &now[13..19]);
    let shifted = format!("{:02}{rest}", (hour.parse::<u32>().unwrap() + 9) % 24);

    let local = run_with(&s, &tokyo, &["case", "show", "c-tz"]);
    assert!(local.contains("2026-01-01 09:00:00  created"), "{local}");
    assert!(local.contains("created   2026-01-01 09:00:00 ("), "{local}");
    let note_at = |out: &str, time: &str| {
        out.lines()
            .any(|l| l.starts_with(&format!("{time} ")) && l.ends_with("text=now"))
    };
    assert!(
        note_at(&local, &shifted),
        "today's time, without a date, in Tokyo ({shifted}):\n{local}"
    );
    let utc = run_with(&s, &tokyo, &["--utc", "case", "show", "c-tz"]);
    assert!(utc.contains("2026-01-01 00:00:00  created"), "{utc}");
    assert!(note_at(&utc, &now[11..19]), "{utc}");

    // AGE: the case was created long ago.
    let list = run_with(&s, &tokyo, &["case", "list"]);
    let header: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
    let age = header
        .iter()
        .position(|h| *h == "AGE")
        .expect("an AGE column");
    assert!(row[age].ends_with('d'), "days old: {list}");
}

#[test]
fn handled_counts_successes_and_dead_letters_have_their_own_column() {
    let toml = r#"
[defaults]
heartbeat = "200ms"
max_attempts = 1

[[agent]]
id = "doomed"
keep_alive = true
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "fail", times = 1000 } ]
[[agent.brain.rules]]
type = "note"
actions = [ { do = "reply" } ]
"#;
    let mut s = Society::new(BIN, toml);
    s.start_supervisor();
    s.ok(&["send", "doomed", "fails", "--type", "task"]);
    s.ok(&["send", "doomed", "fails again", "--type", "task"]);
    let ok = s.ok(&["send", "doomed", "works", "--type", "note"]);
    wait_reply(&s, &ok);
    let row = wait_until(SOON, "every message consumed", || {
        let row = s.status("doomed");
        (row["inbox_pending"] == 0 && row["dead_lettered"] == 2).then_some(row)
    });
    assert_eq!(row["handled"], 1, "a dead letter is not handled: {row}");
    assert_eq!(records(&s.agent("doomed").deadletter()).len(), 2);

    let table = s.ok(&["status"]);
    let mut lines = table.lines().skip_while(|l| !l.starts_with("ID"));
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let cells: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let col = |name: &str| cells[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!((col("HANDLED"), col("DEAD")), ("1", "2"), "{table}");
    // Time in state: idle since its last message, seconds ago.
    let since = time::parse_rfc3339(row["state_since"].as_str().unwrap()).unwrap();
    assert!(time::age(since) < SOON, "{row}");
    assert!(
        col("FOR").ends_with('s') && col("FOR")[..col("FOR").len() - 1].parse::<u64>().is_ok(),
        "{table}"
    );
    assert!(s.stop_supervisor().success());
}

#[test]
fn a_long_id_is_whole_on_a_terminal_wide_enough_for_it() {
    let id = "averyveryverylongagentname-xyz-123";
    let toml = format!("[[agent]]\nid = \"{id}\"\nrole = \"echo\"\nbrain = \"echo\"\n");
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    society_testkit::wait_until(crate::support::SOON, "the agent provisioned", || {
        s.agent(id).config().exists().then_some(())
    });
    for cols in ["200", "80"] {
        let out = s
            .command(&["status"])
            .env("COLUMNS", cols)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(id), "COLUMNS={cols}: {text}");
    }
    s.stop_supervisor();
}
