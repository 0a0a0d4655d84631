//! `society fsck`: finds what breaks the format's promises, repairs only
//! what is safe, never deletes a record, and says so in its exit code.

use crate::support::BIN;
use serde_json::Value;
use society_testkit::Society;
use std::io::Write;
use std::path::Path;

fn fsck(s: &Society, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["fsck", "--json"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    let v: Value = serde_json::from_slice(&out.stdout).expect("fsck --json prints JSON");
    (out.status.code().expect("exit code"), v)
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open")
        .write_all(bytes)
        .expect("write");
}

fn checks(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "problem")
        .map(|f| {
            format!(
                "{}:{}",
                f["check"].as_str().unwrap_or(""),
                if f["repaired"].is_null() {
                    "open"
                } else {
                    "repaired"
                }
            )
        })
        .collect()
}

#[test]
fn clean_society_then_problems_then_safe_repairs() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-basic");
    let s = Society::from_fixture(BIN, &fixture);
    let (code, v) = fsck(&s, &[]);
    assert_eq!(code, 0, "the fixture is clean: {v}");

    // A heartbeat left by a dead process: the only problem, and repairable.
    let status = s.agent("echo").status();
    std::fs::write(&status, r#"{"agent":"echo","pid":1,"gen":1,"state":"running","ts":"2026-11-01T10:00:00.000Z","since":"2026-11-01T10:00:00.000Z","current":null,"handled":1}"#).expect("write");
    let (code, v) = fsck(&s, &[]);
    assert_eq!((code, checks(&v)), (9, vec!["status:open".to_string()]));
    let (code, v) = fsck(&s, &["--repair"]);
    assert_eq!(
        (code, checks(&v)),
        (8, vec!["status:repaired".to_string()]),
        "{v}"
    );
    assert!(!status.exists());
    assert_eq!(fsck(&s, &[]).0, 0);

    // A file others may read (an inbox written under umask 022 by an older
    // society) and a directory others may enter: reported, then made the
    // owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let inbox = s.agent("echo").inbox();
    let dir = s.agent("echo").dir.clone();
    std::fs::set_permissions(&inbox, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (code, v) = fsck(&s, &[]);
    assert_eq!(
        (code, checks(&v)),
        (9, vec!["mode:open".to_string(), "mode:open".to_string()]),
        "{v}"
    );
    let (code, v) = fsck(&s, &["--repair"]);
    assert_eq!(
        (code, checks(&v)),
        (
            8,
            vec!["mode:repaired".to_string(), "mode:repaired".to_string()]
        ),
        "{v}"
    );
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!((mode(&inbox), mode(&dir)), (0o600, 0o700));
    assert_eq!(fsck(&s, &[]).0, 0);

    // A torn tail is terminated (it becomes one bad line, never deleted);
    // a cursor that no longer fits the inbox is rebuilt from the logs; a bad
    // line the router has not read yet is only a note (it dead-letters it).
    let inbox = s.agent("echo").inbox();
    let outbox = s.agent("echo").outbox();
    let before = std::fs::read(&inbox).expect("read");
    let ckpt = s.agent("echo").checkpoint();
    let mut c: Value = serde_json::from_slice(&std::fs::read(&ckpt).expect("read")).expect("json");
    let good_cursor = c["inbox_offset"].clone();
    append(&inbox, b"{\"v\":1,\"torn");
    append(&outbox, b"not json\n");
    c["inbox_offset"] = Value::from(5);
    std::fs::write(&ckpt, serde_json::to_vec(&c).expect("ser")).expect("write");
    let (code, v) = fsck(&s, &[]);
    let mut found = checks(&v);
    found.sort();
    assert_eq!(code, 9);
    assert_eq!(found, ["checkpoint:open", "torn_tail:open"], "{v}");
    let (code, v) = fsck(&s, &["--repair"]);
    let mut found = checks(&v);
    found.sort();
    assert_eq!(code, 8, "{v}");
    assert_eq!(found, ["checkpoint:repaired", "torn_tail:repaired"], "{v}");
    let after = std::fs::read(&inbox).expect("read");
    assert!(
        after.starts_with(&before),
        "nothing before the tear changed"
    );
    assert_eq!(
        &after[before.len()..],
        b"{\"v\":1,\"torn\n",
        "only a newline was added"
    );
    let c: Value = serde_json::from_slice(&std::fs::read(&ckpt).expect("read")).expect("json");
    assert_eq!(c["inbox_offset"], good_cursor, "the cursor the logs prove");
    let (code, v) = fsck(&s, &[]);
    assert_eq!(code, 0, "{v}");
}

#[test]
fn human_output_names_file_offset_and_verdict() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-basic");
    let s = Society::from_fixture(BIN, &fixture);
    append(&s.layout().orchestrator_inbox(), b"oops\n");
    let out = s.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(9));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("orchestrator/inbox.jsonl@"), "{text}");
    assert!(text.contains("1 problem(s)"), "{text}");
}

#[test]
fn an_agent_folder_replaced_by_a_file_is_a_problem_everywhere() {
    let mut s = Society::new(BIN, crate::support::ECHO_TOML);
    s.start_supervisor();
    society_testkit::wait_until(crate::support::SOON, "echo provisioned", || {
        s.agent("echo").config().exists().then_some(())
    });
    s.stop_supervisor();
    let dir = s.agent("echo").dir;
    std::fs::rename(&dir, s.root().join("echo-moved")).unwrap();
    std::fs::write(&dir, b"junk").unwrap();
    let status: serde_json::Value = serde_json::from_str(&s.ok(&["status", "--json"])).unwrap();
    let problems = status["problems"].to_string();
    assert!(
        problems.contains("agent-echo") && problems.contains("not a folder"),
        "{status}"
    );
    let out = s.run(&["fsck"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(9), "{text}");
    assert!(
        text.contains("agent-echo") && text.contains("not a folder"),
        "{text}"
    );
    let out = s.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `society --root ROOT ARGS` from a shell whose umask is 000.
fn under_umask_000(s: &Society, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .arg("--root")
        .arg(s.root())
        .args(args)
        .output()
        .expect("run society under sh")
}

#[test]
fn every_file_is_private_even_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let toml = "[defaults]\nidle_exit = \"30s\"\n\n[[agent]]\nid = \"helper\"\nbrain = { kind = \"echo\" }\n";
    let s = Society::new(BIN, toml);
    // The supervisor (detached), the agent it starts, the CLI's writers:
    // every one of them started by a shell that would create 0666 files.
    let out = under_umask_000(&s, &["up"]);
    assert!(out.status.success(), "{out:?}");
    let out = under_umask_000(&s, &["case", "new", "private", "--assign", "helper"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(under_umask_000(&s, &["send", "helper", "hello"]).stdout).unwrap();
    crate::support::wait_reply(&s, id.trim());
    let out = under_umask_000(&s, &["down"]);
    assert!(out.status.success(), "{out:?}");

    let mut loose = Vec::new();
    let mut seen = 0;
    let mut stack = vec![s.layout().state_dir().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let mode = meta.permissions().mode() & 0o777;
            seen += 1;
            if meta.is_dir() {
                if mode != 0o700 {
                    loose.push(format!("{} {mode:o}", path.display()));
                }
                stack.push(path);
            } else if mode & 0o077 != 0 {
                loose.push(format!("{} {mode:o}", path.display()));
            }
        }
    }
    assert!(seen > 20, "the society wrote its files ({seen} seen)");
    assert!(loose.is_empty(), "open to others: {loose:#?}");
    let (code, report) = fsck(&s, &[]);
    assert_eq!(code, 0, "{report:#}");
}
