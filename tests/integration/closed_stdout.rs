//! A reader that goes away (`society status | head -1`) ends the command
//! quietly: exit 0, no panic, nothing on stderr — and the demo, which runs a
//! supervisor and agents, stops them on its way out.

use crate::support::{BIN, ECHO_TOML, SOON};
use society_testkit::{processes_mentioning, wait_until, Society};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs `cmd` with its stdout a pipe whose read end is already closed.
fn run_with_closed_stdout(mut cmd: Command) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn every_printing_command_exits_quietly_when_its_reader_is_gone() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let id = s.ok(&["send", "echo", "hello"]);
    crate::support::wait_reply(&s, &id);
    let case = s.ok(&["case", "new", "a case to list"]);
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["case", "list"],
        vec!["case", "show", case.as_str(), "--json"],
        vec!["approvals", "--json"],
        vec!["costs"],
        vec!["fsck"],
        vec!["inbox"],
        vec!["logs"],
        vec!["send", "echo", "again"],
        vec!["describe", "echo"],
        vec!["describe", case.as_str(), "-o", "json"],
        vec!["top", "--once", "--interval", "100ms"],
        vec!["logs", "--since", "1h", "-o", "jsonl"],
        vec!["inbox", "-o", "json"],
        vec!["config", "reload"],
        vec!["check"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--help"],
    ] {
        let out = run_with_closed_stdout(s.command(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "society {args:?} with stdout closed: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "society {args:?}: {stderr}"
        );
    }
}

#[test]
fn the_demo_stops_what_it_started_when_its_reader_is_gone() {
    // Scratch kills every process naming its directory when dropped, so a
    // failed assertion below leaves no demo supervisor running.
    let dir = society_runtime::selftest::Scratch::empty(BIN, "society-test-").unwrap();
    let root = dir.root().join("demo");
    let mut child = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(&root)
        .env_remove("SOCIETY_ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read until the supervisor is up, as `head` would, then go away.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("supervisor up"));
    assert!(up.is_some(), "the demo never said its supervisor is up");
    drop(lines);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    wait_until(SOON, "every demo process to be gone", || {
        processes_mentioning(&root).is_empty().then_some(())
    });
}
