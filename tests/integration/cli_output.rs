//! What commands print and take: `status --json` never prints `-0.0`,
//! `status --watch` writes no screen codes into a pipe and `--watch --json`
//! is JSON lines; a body larger than the kernel's argument limit is sent
//! from a file or standard input.

use crate::support::{code, BIN, ECHO_TOML};
use serde_json::Value;
use society_testkit::{records, Society};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

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
