//! `logs` and `inbox` as a journalctl user reads them: `-f` starts from the
//! last 10 records, `--since`/`--until` take absolute and relative times,
//! `--event` and `--agent` filter, times print in local time (`TZ`) with the
//! date when not today or in UTC with `--utc`, lines fit `COLUMNS`, and
//! `-o json` is one array while `-o jsonl` is a record a line.

use crate::support::{code, json_of, BIN, SOON};
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{Envelope, Party};
use society_testkit::{wait_until, Society};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;

const TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "alpha-agent-20-chars"
role = "echo"
brain = "echo"

[[agent]]
id = "bravo"
role = "echo"
brain = "echo"
"#;

const ALPHA: &str = "alpha-agent-20-chars";

fn append(path: &Path, line: &[u8]) {
    append_one(path, line, Durability::Flushed, usize::MAX).unwrap();
}

fn record(ts: &str, agent: &str, event: &str, n: u64) -> Vec<u8> {
    json!({"ts": ts, "agent": agent, "event": event, "n": n})
        .to_string()
        .into_bytes()
}

fn now_minus(secs: u64) -> String {
    jiff::Timestamp::now()
        .checked_sub(std::time::Duration::from_secs(secs))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Both agents' folders, written by a supervisor that is then stopped, so
/// only the test writes to the logs.
fn society() -> Society {
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor();
    wait_until(SOON, "both agents provisioned", || {
        (s.agent(ALPHA).config().exists() && s.agent("bravo").config().exists()).then_some(())
    });
    s.stop_supervisor();
    s
}

fn ns(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["n"].as_u64().unwrap_or_else(|| panic!("no n: {l}"))
        })
        .collect()
}

/// A `-f` command running, its stdout read line by line on a thread; killed
/// and reaped when dropped, so a failing assertion leaves nothing behind.
struct Following {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Following {
    fn start(s: &Society, args: &[&str]) -> Following {
        let mut child = s
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        Following { child, lines }
    }

    /// The next line, within [`SOON`].
    fn next(&self, what: &str) -> String {
        self.lines
            .recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("no line from {what}"))
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn follow_starts_from_the_last_ten_records_then_prints_new_ones() {
    let s = society();
    let activity = s.agent(ALPHA).activity();
    for n in 0..30 {
        append(&activity, &record(&now_minus(0), ALPHA, "tick", n));
    }
    let follow = Following::start(&s, &["logs", ALPHA, "-f", "-o", "jsonl"]);
    let first: Vec<String> = (0..10)
        .map(|_| follow.next("logs -f: the last 10"))
        .collect();
    append(&activity, &record(&now_minus(0), ALPHA, "tick", 30));
    let new = follow.next("logs -f: the record written while following");
    drop(follow);
    assert_eq!(
        ns(&first.join("\n")),
        (20..30).collect::<Vec<_>>(),
        "the last 10, as tail -f"
    );
    assert_eq!(ns(&new), vec![30]);
    // -n says otherwise: the whole history with -n 100.
    let all = s.ok(&["logs", ALPHA, "-n", "100", "--event", "tick", "-o", "jsonl"]);
    assert_eq!(ns(&all), (0..31).collect::<Vec<_>>());
}

#[test]
fn since_until_event_and_agent_filter_what_logs_prints() {
    let s = society();
    let (a, b) = (s.agent(ALPHA).activity(), s.agent("bravo").activity());
    append(&a, &record("2026-01-01T10:00:00.000Z", ALPHA, "started", 1));
    append(&b, &record("2026-01-01T10:30:00.000Z", "bravo", "tick", 2));
    append(&a, &record("2026-01-01T11:00:00.000Z", ALPHA, "tick", 3));
    append(&b, &record("2026-01-01T11:30:00.000Z", "bravo", "other", 4));
    append(&a, &record(&now_minus(20 * 60), ALPHA, "recent", 5));
    append(&b, &record(&now_minus(5 * 60), "bravo", "recent", 6));
    let jsonl = |args: &[&str]| {
        let mut all = vec!["logs", "-o", "jsonl"];
        all.extend_from_slice(args);
        ns(&s.ok(&all))
    };
    let window = [
        "--since",
        "2026-01-01T10:15:00Z",
        "--until",
        "2026-01-01T11:15:00Z",
    ];
    assert_eq!(jsonl(&window), vec![2, 3]);
    // A local time, read in UTC with --utc.
    assert_eq!(
        jsonl(&[
            "--utc",
            "--since",
            "2026-01-01 10:45",
            "--until",
            "2026-01-01"
        ]),
        Vec::<u64>::new(),
        "--until 2026-01-01 is its midnight"
    );
    assert_eq!(
        jsonl(&[
            "--utc",
            "--since",
            "2026-01-01 10:45",
            "--until",
            "2026-01-02"
        ]),
        vec![3, 4]
    );
    assert_eq!(
        jsonl(&[
            "--event",
            "tick",
            "--event",
            "started",
            "--until",
            "2026-01-02"
        ]),
        vec![1, 2, 3]
    );
    assert_eq!(
        jsonl(&["--agent", ALPHA, "--until", "2026-01-02T00:00:00Z"]),
        vec![1, 3]
    );
    assert_eq!(
        jsonl(&["--agent", ALPHA, "--agent", "bravo", "--event", "recent"]),
        vec![5, 6]
    );
    // Relative: 10 minutes ago keeps the record of 5 minutes ago only.
    assert_eq!(jsonl(&["--since", "10m", "--event", "recent"]), vec![6]);
    assert_eq!(jsonl(&["--since", "10m ago", "--event", "recent"]), vec![6]);
    // -o json is one array of the same records.
    let arr = json_of(
        &s,
        &["logs", "--json", "--since", "10m", "--event", "recent"],
    );
    assert_eq!(arr.as_array().map(Vec::len), Some(1), "{arr}");
    assert_eq!(arr[0]["n"], 6);
    // The supervisor's own log, by name, as the AGENT column shows it.
    let sup = s.ok(&["logs", "supervisor", "-o", "jsonl"]);
    assert!(!sup.is_empty());
    for l in sup.lines() {
        assert_eq!(
            serde_json::from_str::<Value>(l).unwrap()["agent"],
            "supervisor",
            "{l}"
        );
    }
    let (rc, _, err) = code(&s, &["logs", "--since", "last tuesday"]);
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("last tuesday") && err.contains("--since"),
        "{err}"
    );
}

#[test]
fn times_are_local_with_the_date_when_not_today_or_utc() {
    let s = society();
    append(
        &s.agent(ALPHA).activity(),
        &record("2026-01-01T11:00:00.123Z", ALPHA, "tick", 3),
    );
    let human = |tz: &str, extra: &[&str]| {
        let mut args = vec!["logs", ALPHA, "--event", "tick"];
        args.extend_from_slice(extra);
        let out = s.command(&args).env("TZ", tz).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let tokyo = human("Asia/Tokyo", &[]);
    assert!(tokyo.starts_with("2026-01-01 20:00:00.123 "), "{tokyo}");
    let utc = human("Asia/Tokyo", &["--utc"]);
    assert!(utc.starts_with("2026-01-01 11:00:00.123 "), "{utc}");
    // Today's records print the time alone.
    append(
        &s.agent(ALPHA).activity(),
        &record(&now_minus(0), ALPHA, "today", 7),
    );
    let out = s.ok(&["logs", ALPHA, "--event", "today", "--utc"]);
    let time = out.split(' ').next().unwrap();
    assert_eq!(time.len(), "HH:MM:SS.mmm".len(), "{out}");
}

#[test]
fn log_lines_fit_columns_and_wide_keeps_everything() {
    let s = society();
    let line = json!({"ts": now_minus(0), "agent": ALPHA, "event": "tick",
        "detail": "x".repeat(300)})
    .to_string();
    append(&s.agent(ALPHA).activity(), line.as_bytes());
    let out = s
        .command(&["logs", ALPHA])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.is_empty());
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "{} wide: {l}", l.chars().count());
        assert_eq!(l, l.trim_end(), "no trailing spaces");
    }
    assert!(text.contains('…'), "{text}");
    let wide = s
        .command(&["logs", ALPHA, "-o", "wide"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let wide = String::from_utf8(wide.stdout).unwrap();
    assert!(wide.contains(&"x".repeat(300)), "{wide}");
}

#[test]
fn inbox_takes_since_and_follows_from_the_last_ten() {
    let s = society();
    let inbox = s.layout().orchestrator_inbox();
    let message = |n: u64, ts: &str| {
        let env = Envelope::new(
            "bravo".parse().unwrap(),
            Party::Orchestrator,
            "reply",
            json!({"text": format!("m{n}"), "n": n}),
        );
        let mut v: Value = serde_json::from_slice(&env.to_line()).unwrap();
        v["ts"] = json!(ts);
        append(&inbox, v.to_string().as_bytes());
    };
    message(0, &now_minus(3600));
    for n in 1..=12 {
        message(n, &now_minus(0));
    }
    let body_ns = |out: &str| -> Vec<u64> {
        out.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["body"]["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let recent = s.ok(&["inbox", "--since", "10m", "-o", "jsonl"]);
    assert_eq!(body_ns(&recent), (1..=12).collect::<Vec<_>>());
    let all = json_of(&s, &["inbox", "-o", "json"]);
    assert_eq!(all.as_array().map(Vec::len), Some(13), "one array");
    let follow = Following::start(&s, &["inbox", "-f", "-o", "jsonl"]);
    let first: Vec<String> = (0..10).map(|_| follow.next("inbox -f")).collect();
    drop(follow);
    assert_eq!(body_ns(&first.join("\n")), (3..=12).collect::<Vec<_>>());
}

#[test]
fn follow_picks_up_agents_created_after_it_started() {
    let s = society();
    let follow = Following::start(&s, &["logs", "-f", "-o", "jsonl"]);
    let wait_for = |n: u64| loop {
        let line = follow.next(&format!("logs -f, waiting for n={n}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["n"] == n {
            return;
        }
    };
    // Following: a record of an existing agent arrives.
    append(
        &s.agent(ALPHA).activity(),
        &record(&now_minus(0), ALPHA, "tick", 1),
    );
    wait_for(1);
    // An agent created now (as spawn does: a folder with its config).
    let late = s.agent("late");
    std::fs::create_dir_all(&late.dir).unwrap();
    std::fs::copy(s.agent("bravo").config(), late.config()).unwrap();
    append(&late.activity(), &record(&now_minus(0), "late", "tick", 2));
    wait_for(2);
}
