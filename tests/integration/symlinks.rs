//! Symbolic links never lead the runtime out of the society (FORMAT.md,
//! "Symbolic links"): an agent folder, an inbox, a case log or a workspace
//! that is a link is refused with an error naming it; what it points at is
//! never created, appended to, read or started; `fsck` reports every one.

use crate::llm_brain::support as llm;
use crate::support::{code, json_of, wait_reply, BIN, ECHO_TOML, SOON};
use serde_json::{json, Value};
use society_core::CaseId;
use society_testkit::fake_llm::{openai, FakeLlm};
use society_testkit::{records, wait_until, Society};
use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Every file below `dir` and its bytes (links not followed): what must not
/// change outside the society.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// Puts a link to `target` in the place of `file` in one step (a reader
/// never finds the file missing), keeping the file as `kept`.
fn swap_in_link(file: &Path, target: &Path, kept: &Path) {
    std::fs::hard_link(file, kept).unwrap();
    let link = file.with_extension("link");
    symlink(target, &link).unwrap();
    std::fs::rename(&link, file).unwrap();
}

/// The society-wide problems `status` shows.
fn problems(s: &Society) -> String {
    json_of(s, &["status", "--json"])["problems"].to_string()
}

#[test]
fn an_agent_folder_linked_out_of_the_society_is_no_agent() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let first = s.ok(&["send", "echo", "before"]);
    wait_reply(&s, &first);
    // The worst case: what the link points at is a whole agent folder,
    // config, checkpoint and mail included (a copy of echo's).
    let outside = tempfile::tempdir().unwrap();
    let echo = s.agent("echo");
    for f in [echo.config(), echo.checkpoint(), echo.inbox()] {
        std::fs::copy(&f, outside.path().join(f.file_name().unwrap())).unwrap();
    }
    let before = snapshot(outside.path());
    let ghost = s.layout().state_dir().join("agent-ghost");
    symlink(outside.path(), &ghost).unwrap();

    // `status` does not list it, and says why.
    let status = json_of(&s, &["status", "--json"]);
    let ids: Vec<&str> = status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["echo"], "{status}");
    let said = status["problems"].to_string();
    assert!(
        said.contains(&format!(
            "{} is a symbolic link (to {}, outside .society-agent/)",
            ghost.display(),
            outside.path().display()
        )) && said.contains("it is no agent"),
        "{said}"
    );

    // Sending to it is refused, naming the link; nothing is written.
    let (c, _, err) = code(&s, &["send", "ghost", "hi"]);
    assert_eq!(c, 5, "{err}");
    assert!(
        err.contains("agent ghost's folder cannot be used")
            && err.contains(&format!("{} is a symbolic link", ghost.display()))
            && err.contains("nothing was sent"),
        "{err}"
    );
    // Nor does spawning an agent of that id go through it.
    let (c, _, err) = code(&s, &["spawn", "echo", "--id", "ghost", "--brain", "echo"]);
    assert_ne!(c, 0, "{err}");
    assert!(err.contains("symbolic link"), "{err}");

    // A supervisor started now does not take it for an agent either.
    assert!(s.stop_supervisor().success());
    s.start_supervisor();
    let second = s.ok(&["send", "echo", "after"]);
    wait_reply(&s, &second);
    assert!(
        s.processes().iter().all(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmd).contains("agent-ghost")
        }),
        "a process was started for the link"
    );
    let (c, out, _) = code(&s, &["fsck"]);
    assert_eq!(c, 9, "{out}");
    assert!(
        out.contains("agent-ghost") && out.contains("it is no agent"),
        "{out}"
    );
    assert!(s.stop_supervisor().success());
    assert_eq!(snapshot(outside.path()), before, "nothing changed outside");
    assert!(std::fs::symlink_metadata(&ghost).unwrap().is_symlink());
}

const RELAY_TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "echo"
role = "echo"
brain = "echo"
keep_alive = true

[[agent]]
id = "other"
role = "other"
brain = "echo"
keep_alive = true

[[agent]]
id = "relay"
role = "relay"
keep_alive = true

[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "task"
actions = [{ do = "send", to = "echo", type = "task", body = { text = "{{id}}" } }]
"#;

#[test]
fn an_inbox_linked_out_is_neither_appended_to_nor_read_and_the_mail_waits() {
    let mut s = Society::new(BIN, RELAY_TOML);
    s.start_supervisor();
    let first = s.ok(&["send", "echo", "before"]);
    wait_reply(&s, &first);
    let echo = s.agent("echo");
    // What the link points at: a file with a line that is no message and
    // a forged message to echo. Neither may enter the society.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("passwd.jsonl");
    let forged = "01J00000000000000000000000";
    std::fs::write(
        &target,
        format!(
            "root:x:0:0:secret\n{}\n",
            json!({"v": 1, "id": forged, "ts": "2026-01-01T00:00:00.000Z", "from": "orchestrator",
                   "to": "echo", "type": "task", "case": null, "reply_to": null, "gen": 0,
                   "body": {"text": "forged"}})
        ),
    )
    .unwrap();
    let before = snapshot(outside.path());
    let kept = echo.dir.join("inbox.kept");
    swap_in_link(&echo.inbox(), &target, &kept);

    // The CLI refuses to send through it.
    let (c, _, err) = code(&s, &["send", "echo", "hi"]);
    assert_eq!(c, 5, "{err}");
    assert!(
        err.contains(&format!(
            "{} is a symbolic link (to {}, outside .society-agent/)",
            echo.inbox().display(),
            target.display()
        )) && err.contains("nothing was sent"),
        "{err}"
    );
    // The agent stops reading it: broken, with the reason, escalated once.
    let row = s.wait_state("echo", "broken", SOON);
    assert!(row.to_string().contains("symbolic link"), "{row}");
    let escalation = wait_until(SOON, "the escalation", || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| {
                r["type"] == "escalation"
                    && r["body"]["reason"].to_string().contains("symbolic link")
            })
    });
    assert_eq!(escalation["body"]["agent"], "echo", "{escalation}");
    assert!(
        escalation["body"]["context"]["hint"]
            .to_string()
            .contains("replace the symbolic link"),
        "{escalation}"
    );

    // The router's delivery to it waits (nothing lost), and says why.
    let relayed = s.ok(&["send", "relay", "go"]);
    let note = wait_until(SOON, "relay's note to echo", || {
        records(&s.agent("relay").outbox())
            .into_iter()
            .find(|r| r["to"] == "echo")
    });
    wait_until(SOON, "the write trouble in status", || {
        let p = problems(&s);
        (p.contains("writes failing") && p.contains("inbox.jsonl: it is a symbolic link"))
            .then_some(())
    });
    // Everyone else keeps working.
    let other = s.ok(&["send", "other", "still here"]);
    wait_reply(&s, &other);

    // Nothing went out, nothing came in.
    assert_eq!(snapshot(outside.path()), before, "the outside file changed");
    let leaked = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.contains("secret") || text.contains(forged)
    };
    for f in [
        echo.deadletter(),
        echo.activity(),
        s.layout().orchestrator_inbox(),
    ] {
        assert!(
            !leaked(&f),
            "{} holds the outside file's lines",
            f.display()
        );
    }

    // The link replaced by the real inbox again: the waiting note lands
    // once, echo runs again and answers it.
    std::fs::rename(&kept, echo.inbox()).unwrap();
    wait_until(SOON, "echo's reply to the relayed note", || {
        records(&s.agent("relay").inbox())
            .into_iter()
            .find(|r| r["reply_to"] == note["id"])
    });
    let landed: Vec<Value> = records(&echo.inbox())
        .into_iter()
        .filter(|r| r["id"] == note["id"])
        .collect();
    assert_eq!(landed.len(), 1, "delivered exactly once: {landed:#?}");
    assert!(records(&echo.inbox()).iter().all(|r| r["id"] != forged));
    assert!(!relayed.is_empty());
    s.wait_state("echo", "idle", SOON);
    wait_until(SOON, "the trouble to clear", || {
        (!problems(&s).contains("writes failing")).then_some(())
    });
    assert!(s.stop_supervisor().success());
}

#[test]
fn an_outbox_linked_out_is_never_routed_and_said_once() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let first = s.ok(&["send", "echo", "before"]);
    wait_reply(&s, &first);
    let echo = s.agent("echo");
    // What the link points at: a reply "from echo" the router would hand
    // the orchestrator if it read through the link.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("outbox.jsonl");
    let forged = "01J00000000000000000000001";
    std::fs::write(
        &target,
        format!(
            "{}\n",
            json!({"v": 1, "id": forged, "ts": "2026-01-01T00:00:00.000Z", "from": "echo",
                   "to": "orchestrator", "type": "reply", "case": null, "reply_to": null,
                   "gen": 1, "body": {"text": "forged"}})
        ),
    )
    .unwrap();
    let before = snapshot(outside.path());
    let kept = echo.dir.join("outbox.kept");
    swap_in_link(&echo.outbox(), &target, &kept);

    // Echo answers the next message into its outbox: refused, so it exits
    // and is broken, escalated once; the message is not lost.
    let id = s.ok(&["send", "echo", "hi"]);
    let row = s.wait_state("echo", "broken", SOON);
    assert!(
        row.to_string().contains("outbox.jsonl") && row.to_string().contains("symbolic link"),
        "{row}"
    );
    let escalations = || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .filter(|r| r["type"] == "escalation" && r["body"]["agent"] == "echo")
            .count()
    };
    wait_until(SOON, "the escalation", || (escalations() > 0).then_some(()));
    // A few scans later: said once, not at every scan, and nothing routed
    // from the link.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(escalations(), 1);
    let log = std::fs::read_to_string(s.layout().daemon_log()).unwrap();
    assert!(!log.contains("routing failed"), "{log}");
    let orchestrator = std::fs::read_to_string(s.layout().orchestrator_inbox()).unwrap();
    assert!(!orchestrator.contains(forged));
    assert_eq!(snapshot(outside.path()), before, "the outside file changed");
    // fsck names the link, and judges no cursor against a file it never reads.
    let out = s.run(&["fsck", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "problem")
        .map(|f| (f["check"].to_string(), f["file"].to_string()))
        .collect();
    assert_eq!(
        problems,
        [(
            "\"symlink\"".to_string(),
            Value::from(echo.outbox().display().to_string()).to_string()
        )],
        "{report:#}"
    );

    // The real outbox back: echo runs again and the message is answered.
    std::fs::rename(&kept, echo.outbox()).unwrap();
    wait_reply(&s, &id);
    assert!(s.stop_supervisor().success());
}

#[test]
fn a_linked_workspace_is_refused_and_the_file_tools_stay_inside() {
    let fake = FakeLlm::start();
    let mut s = llm::start(&llm::llm_agent("writer", &fake, "openai", "", ""));
    let writer = s.agent("writer");
    wait_until(SOON, "writer provisioned", || {
        writer.config().exists().then_some(())
    });
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    let before = snapshot(outside.path());
    let ws = writer.workspace();
    std::fs::remove_dir_all(&ws).unwrap();
    symlink(outside.path(), &ws).unwrap();

    // The agent does not start in a folder whose workspace leads out: the
    // message waits, the model is never asked, nothing is written outside.
    let id = s.ok(&["send", "writer", "write it"]);
    let row = s.wait_state("writer", "broken", SOON);
    assert!(
        row.to_string()
            .contains(&format!("{} is a symbolic link", ws.display())),
        "{row}"
    );
    assert_eq!(fake.count(), 0, "the model was asked");
    assert!(records(&writer.inbox())
        .iter()
        .any(|r| r["id"] == id.as_str()));

    // Repaired: a real workspace, with a link that stays inside and one
    // that leads out. Only the first is followed.
    std::fs::remove_file(&ws).unwrap();
    std::fs::create_dir_all(ws.join("output")).unwrap();
    symlink(ws.join("output"), ws.join("latest")).unwrap();
    symlink(outside.path(), ws.join("out")).unwrap();
    fake.push([
        openai::tool_calls(
            &[
                (
                    "c1",
                    "write_file",
                    json!({"path": "latest/a.md", "content": "inside"}),
                ),
                (
                    "c2",
                    "write_file",
                    json!({"path": "out/evil.txt", "content": "x"}),
                ),
                ("c3", "read_file", json!({"path": "out/secret"})),
            ],
            (10, 10),
        ),
        openai::tool_calls(
            &[
                ("c4", "reply", json!({"body": {"text": "done"}})),
                ("c5", "finish", json!({"summary": "done"})),
            ],
            (10, 10),
        ),
    ]);
    llm::wait_orchestrator(&s, "the writer's reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(
        std::fs::read_to_string(ws.join("output/a.md")).unwrap(),
        "inside"
    );
    let second = &fake.requests()[1];
    for refused in ["c2", "c3"] {
        let text = llm::tool_message(second, refused)["content"].to_string();
        assert!(
            text.contains("leads outside workspace/") && text.contains("refused"),
            "{refused}: {text}"
        );
    }
    assert_eq!(snapshot(outside.path()), before, "nothing changed outside");
    assert!(s.stop_supervisor().success());
}

#[test]
fn a_linked_case_log_waits_and_fsck_reports_every_link() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "links"]);
    let first = s.ok(&["send", "echo", "one", "--case", &case]);
    wait_reply(&s, &first);
    let log = s.layout().case_log(&CaseId::new(&case).unwrap());
    wait_until(SOON, "the first message in the case log", || {
        records(&log)
            .iter()
            .any(|r| r["event"] == "message" && r["id"] == first.as_str())
            .then_some(())
    });
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("case.jsonl");
    std::fs::write(&target, "").unwrap();
    let before = snapshot(outside.path());
    let kept = log.with_extension("kept");
    swap_in_link(&log, &target, &kept);

    // The message is delivered; recording it in the case log waits (and
    // with it echo's reply, which goes to the case log too).
    let second = s.ok(&["send", "echo", "two", "--case", &case]);
    wait_until(SOON, "the write trouble in status", || {
        problems(&s)
            .contains(&format!("{}: it is a symbolic link", log.display()))
            .then_some(())
    });
    assert_eq!(snapshot(outside.path()), before, "the outside file changed");

    // Every link society refuses, and none it follows.
    let ws = s.agent("echo").workspace();
    symlink(outside.path(), ws.join("out")).unwrap();
    symlink("output", ws.join("in")).unwrap();
    let ghost = s.layout().state_dir().join("agent-ghost");
    symlink(outside.path(), &ghost).unwrap();
    for repair in [false, true] {
        let mut args = vec!["fsck", "--json"];
        if repair {
            args.push("--repair");
        }
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(9));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let links: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "symlink")
            .collect();
        let mut files: Vec<PathBuf> = links
            .iter()
            .map(|f| PathBuf::from(f["file"].as_str().unwrap()))
            .collect();
        files.sort();
        let mut expected = [ghost.clone(), ws.join("out"), log.clone()];
        expected.sort();
        assert_eq!(files, expected, "{links:#?}");
        for f in &links {
            assert_eq!(f["severity"], "problem");
            assert!(f["repaired"].is_null(), "{f}");
            if repair {
                assert!(
                    f["reason"]
                        .to_string()
                        .contains("left as it is by --repair"),
                    "{f}"
                );
            }
        }
    }
    for link in [&ghost, &ws.join("out"), &log] {
        assert!(std::fs::symlink_metadata(link).unwrap().is_symlink());
    }

    // The real log back: the waiting records land, once.
    std::fs::rename(&kept, &log).unwrap();
    wait_reply(&s, &second);
    let recorded = |id: &str| {
        records(&log)
            .iter()
            .filter(|r| r["event"] == "message" && r["id"] == id)
            .count()
    };
    wait_until(SOON, "the second message in the case log", || {
        (recorded(&second) > 0).then_some(())
    });
    wait_until(SOON, "the trouble to clear", || {
        (!problems(&s).contains("writes failing")).then_some(())
    });
    assert_eq!(recorded(&second), 1, "recorded once");
    assert_eq!(recorded(&first), 1);
    assert_eq!(snapshot(outside.path()), before);
    assert!(s.stop_supervisor().success());
}
