//! The `command` brain with real programs: the checked-in example agent, and
//! shell scripts written by each test that misbehave on purpose (hang with a
//! grandchild, print garbage, fail, write outside the workspace). Every
//! process a test starts is killed when it ends, even when it fails.

use crate::support::{wait_reply, BIN, SOON};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_core::CaseId;
use society_testkit::{records, wait_until, Society};
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) mod support;

use support::{alive, events, script, society_toml, wait_pids, Reap, HANG_WITH_GRANDCHILD};

#[test]
fn the_example_agent_replies_writes_a_file_and_reports_on_its_case() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/command-agent/agent.py");
    let toml = society_toml(3, &[("notes", example.to_str().unwrap(), "")]);
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "tides", "--assign", "notes"]);
    let text = "the tide comes in twice a day";
    let id = s.ok(&["send", "notes", text, "--case", &case]);

    let reply = wait_reply(&s, &id);
    let path = format!("output/notes-{id}.md");
    assert_eq!(reply["from"], "notes");
    assert_eq!(reply["case"], case.as_str());
    assert_eq!(reply["body"]["text"], "noted 7 words");
    assert_eq!(reply["body"]["path"], path.as_str());
    let notes = std::fs::read_to_string(s.agent("notes").workspace().join(&path)).unwrap();
    assert!(
        notes.contains(&format!("From orchestrator: {text}")),
        "{notes}"
    );

    let log = s.layout().case_log(&CaseId::new(case.as_str()).unwrap());
    let report = wait_until(SOON, "the case event in the case log", || {
        records(&log)
            .into_iter()
            .find(|r| r["report"] == "notes_written")
    });
    assert_eq!(report["event"], "agent_report");
    assert_eq!(report["path"], path.as_str());
    assert_eq!(report["words"], 7);
    assert_eq!(report["from"], "notes");

    // Two messages in the outbox (case event, reply); the file is not one.
    let outbox = records(&s.agent("notes").outbox());
    let kinds: Vec<&str> = outbox.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(kinds, ["case_event", "reply"]);

    // The case assignment came first: the agent only logged it.
    let logged = &events(&s, "notes", "brain_log")[0];
    assert_eq!(logged["message"], format!("assigned case {case}: tides"));
    let of_task = |event: &str| {
        let mut found: Vec<Value> = events(&s, "notes", event)
            .into_iter()
            .filter(|r| r["id"] == id.as_str())
            .collect();
        assert_eq!(found.len(), 1, "one {event} for the task: {found:?}");
        found.remove(0)
    };
    let stderr = of_task("command_stderr");
    let expected = format!("agent.py: notes handles task {id} (attempt 1, style short)\n");
    assert_eq!(stderr["text"], expected.as_str());
    assert_eq!(stderr["truncated"], false);
    let exited = of_task("command_exited");
    assert_eq!(exited["code"], 0, "{exited}");
    assert_eq!(exited["killed"], Value::Null, "{exited}");
    assert_eq!(of_task("file_written")["path"], path.as_str());
    // The reply can be routed before the agent records it handled.
    wait_until(SOON, "both messages handled", || {
        (events(&s, "notes", "message_handled").len() == 2).then_some(())
    });
    assert!(s.stop_supervisor().success());
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let toml = society_toml(1, &[("slow", "tools/slow.sh", ", timeout = \"2s\"")]);
    let mut s = Society::new(BIN, &toml);
    script(s.root(), "slow.sh", HANG_WITH_GRANDCHILD);
    s.start_supervisor();
    let id = s.ok(&["send", "slow", "take your time"]);
    let pids = wait_pids(&s, "slow");
    let _reap = Reap::new(&pids);
    assert!(
        pids.iter().all(|p| alive(*p)),
        "program and grandchild run: {pids:?}"
    );

    let failed = wait_until(SOON, "the attempt to fail", || {
        events(&s, "slow", "message_failed").pop()
    });
    assert_eq!(failed["id"], id.as_str());
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("command tools/slow.sh timed out after 2s; its process group was killed"),
        "{error}"
    );
    let exited = &events(&s, "slow", "command_exited")[0];
    assert_eq!(exited["killed"], "timeout", "{exited}");
    assert_eq!(exited["signal"], 9, "{exited}");
    let ms = exited["duration_ms"].as_u64().unwrap();
    assert!((2000..10_000).contains(&ms), "{exited}");
    // Both are gone, not only the leader we could wait for.
    wait_until(
        Duration::from_secs(5),
        "program and grandchild to be gone",
        || pids.iter().all(|p| !alive(*p)).then_some(()),
    );
    // max_attempts = 1: dead-lettered with the reason.
    let dead = wait_until(SOON, "the dead letter", || {
        records(&s.agent("slow").deadletter()).pop()
    });
    assert!(
        dead["reason"].as_str().unwrap().contains("timed out"),
        "{dead}"
    );
    let status: Value =
        serde_json::from_slice(&std::fs::read(s.agent("slow").status()).unwrap()).unwrap();
    assert_eq!(
        status.get("tool_pgid"),
        None,
        "no tool group recorded once it is gone"
    );
    assert!(s.stop_supervisor().success());
}

#[test]
fn bad_output_fails_the_attempt_with_a_reason_then_dead_letters() {
    let cases = [
        (
            "garbage",
            "echo '{\"action\":\"log\",\"message\":\"fine\"}'\necho 'this is not json'\n",
            "command tools/garbage.sh printed an invalid action on stdout line 2: not JSON",
        ),
        (
            "unknown",
            "echo '{\"action\":\"launch_rockets\"}'\n",
            "printed an invalid action on stdout line 1: unknown action \"launch_rockets\"",
        ),
        (
            "crash",
            "echo '{\"action\":\"reply\",\"body\":{}}'\necho 'out of cheese' >&2\nexit 3\n",
            "command tools/crash.sh failed: it exited with code 3 (stderr: out of cheese)",
        ),
    ];
    let programs: Vec<(String, String)> = cases
        .iter()
        .map(|(id, _, _)| (id.to_string(), format!("tools/{id}.sh")))
        .collect();
    let agents: Vec<(&str, &str, &str)> = programs
        .iter()
        .map(|(id, p)| (id.as_str(), p.as_str(), ""))
        .collect();
    let mut s = Society::new(BIN, &society_toml(2, &agents));
    for (id, body, _) in &cases {
        script(s.root(), &format!("{id}.sh"), body);
    }
    s.start_supervisor();
    let sent: Vec<String> = cases
        .iter()
        .map(|(id, _, _)| s.ok(&["send", id, "go"]))
        .collect();
    for ((id, _, reason), msg) in cases.iter().zip(&sent) {
        let dead = wait_until(SOON, &format!("{id}: the dead letter"), || {
            records(&s.agent(id).deadletter()).pop()
        });
        assert_eq!(dead["id"], msg.as_str());
        let why = dead["reason"].as_str().unwrap();
        assert!(
            why.starts_with("failed 2 attempts; last error: "),
            "{id}: {why}"
        );
        assert!(why.contains(reason), "{id}: {why}");
        let failed = events(&s, id, "message_failed");
        assert_eq!(failed.len(), 2, "{id}: one failure per attempt: {failed:?}");
        for f in &failed {
            assert!(f["error"].as_str().unwrap().contains(reason), "{id}: {f}");
        }
        assert!(
            records(&s.agent(id).outbox())
                .iter()
                .all(|r| r["type"] == "dead_letter"),
            "{id}: no output of a failed attempt is sent"
        );
    }
    assert_eq!(
        events(&s, "crash", "command_stderr")[0]["text"],
        "out of cheese\n"
    );
    assert_eq!(
        events(&s, "garbage", "brain_log").len(),
        0,
        "a failed attempt logs nothing"
    );
    let inbox = s.layout().orchestrator_inbox();
    assert!(
        !records(&inbox).iter().any(|r| r["type"] == "reply"),
        "no reply reached anyone"
    );
    assert!(s.stop_supervisor().success());
}

#[test]
fn write_file_outside_the_workspace_is_refused() {
    let mut s = Society::new(BIN, "");
    let root = s.root().to_path_buf();
    let absolute = root.join("escape-abs.txt");
    let env = format!(", env = {{ ABS = \"{}\" }}", absolute.display());
    std::fs::write(
        root.join("society.toml"),
        society_toml(1, &[("w", "tools/w.sh", &env)]),
    )
    .unwrap();
    script(
        &root,
        "w.sh",
        r#"input=$(cat)
case "$input" in
  *'"mode":"dotdot"'*) path='../escape-dotdot.txt' ;;
  *'"mode":"absolute"'*) path="$ABS" ;;
  *'"mode":"symlink"'*) path='link/escape-link.txt' ;;
esac
echo '{"action":"write_file","path":"output/first.txt","content":"ok"}'
printf '{"action":"write_file","path":"%s","content":"escaped"}\n' "$path"
"#,
    );
    s.start_supervisor();
    let outside = root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let workspace = s.agent("w").workspace();
    std::os::unix::fs::symlink(&outside, workspace.join("link")).unwrap();

    let expect = [
        ("dotdot", "refused write_file \"../escape-dotdot.txt\": the path holds `..`"),
        ("absolute", "the path is absolute; paths are relative to workspace/"),
        ("symlink", "refused write_file \"link/escape-link.txt\": it leads outside the workspace through a symlink"),
    ];
    for (mode, reason) in expect {
        let id = s.ok(&["send", "w", "--json", &format!("{{\"mode\":\"{mode}\"}}")]);
        let failed = wait_until(SOON, &format!("{mode}: the refusal"), || {
            events(&s, "w", "message_failed")
                .into_iter()
                .find(|r| r["id"] == id.as_str())
        });
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains(reason), "{mode}: {error}");
        wait_until(SOON, &format!("{mode}: the dead letter"), || {
            records(&s.agent("w").deadletter())
                .into_iter()
                .find(|r| r["id"] == id.as_str())
        });
    }
    assert!(!s.agent("w").dir.join("escape-dotdot.txt").exists());
    assert!(!absolute.exists());
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing through the symlink"
    );
    assert!(
        !workspace.join("output/first.txt").exists(),
        "every path is checked before any file is written"
    );
    assert!(events(&s, "w", "file_written").is_empty());
    assert!(s.stop_supervisor().success());
}

/// Without the sandbox (no launcher, no cgroup, no parent-death signal) the
/// new generation's startup sweep is the only thing that can end the group:
/// it must, and say so.
#[test]
fn a_new_generation_kills_the_tool_group_a_killed_agent_left_behind() {
    let (s, pids) = leftover_group(", sandbox = { mode = \"off\" }");
    let swept = events(&s, "t", "tool_group_killed");
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!(swept[0]["gen"], 2, "{swept:?}");
    assert_eq!(swept[0]["pgid"], pids[0], "{swept:?}");
    let mut named: Vec<i64> = swept[0]["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    named.sort_unstable();
    let mut ours: Vec<i64> = pids.iter().map(|p| i64::from(*p)).collect();
    ours.sort_unstable();
    assert_eq!(named, ours, "leader and grandchild: {swept:?}");
}

/// In the default sandbox the program leads a session in a `pids` cgroup of
/// its own and dies with the agent (parent-death signal); its grandchild is
/// ended by whichever comes first: the new generation's sweep, or the first
/// cgroup use of any agent process on the machine, which removes the run
/// cgroups of dead agents. Either way it is gone before the second attempt
/// runs, and the message is answered once.
#[test]
fn in_the_sandbox_a_killed_agents_tool_group_is_gone_before_the_retry() {
    let (s, pids) = leftover_group("");
    // The sweep may have found the group already ended; if it acted, it
    // says which group.
    for swept in events(&s, "t", "tool_group_killed") {
        assert_eq!(swept["pgid"], pids[0], "{swept}");
    }
}

/// Runs `t`, whose program hangs with a grandchild on the first attempt,
/// SIGKILLs the agent mid-run, and checks what both variants share: the
/// second generation answers, the first run's processes are gone (not by
/// the 60 s timeout), the message is handled once. Returns the society and
/// the first run's `[leader, grandchild]`.
fn leftover_group(brain_keys: &str) -> (Society, Vec<i32>) {
    let toml = society_toml(
        3,
        &[(
            "t",
            "tools/t.sh",
            &format!(", timeout = \"60s\"{brain_keys}"),
        )],
    );
    let mut s = Society::new(BIN, &toml);
    script(
        s.root(),
        "t.sh",
        &format!(
            "input=$(cat)\ncase \"$input\" in *'\"attempt\":1,'*)\n{HANG_WITH_GRANDCHILD};; esac\n\
         echo '{{\"action\":\"reply\",\"body\":{{\"text\":\"second try\"}}}}'\n"
        ),
    );
    s.start_supervisor();
    let id = s.ok(&["send", "t", "work"]);
    let pids = wait_pids(&s, "t");
    let _reap = Reap::new(&pids);
    let status: Value =
        serde_json::from_slice(&std::fs::read(s.agent("t").status()).unwrap()).unwrap();
    assert_eq!(
        status["tool_pgid"], pids[0],
        "the running tool's group is recorded"
    );
    assert_eq!(status["gen"], 1);

    let agent = s.agent_pid("t").unwrap();
    let killed_at = Instant::now();
    kill(Pid::from_raw(agent as i32), Signal::SIGKILL).unwrap();
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["gen"], 2, "{reply}");
    assert_eq!(reply["body"]["text"], "second try");
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "the leftover group is gone: {pids:?}"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(30),
        "not by the 60 s timeout"
    );
    let handled = wait_until(SOON, "the message recorded handled", || {
        Some(events(&s, "t", "message_handled")).filter(|h| !h.is_empty())
    });
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0]["attempt"], 2);
    assert!(s.stop_supervisor().success());
    (s, pids)
}

#[test]
fn a_case_event_field_named_event_cannot_rename_the_checked_event() {
    let toml = society_toml(1, &[("c", "tools/c.sh", "")]);
    let mut s = Society::new(BIN, &toml);
    script(
        s.root(),
        "c.sh",
        "cat > /dev/null\n\
         echo '{\"action\":\"case_event\",\"event\":\"progress\",\"fields\":{\"event\":\"Not A Name!\",\"n\":1}}'\n\
         echo '{\"action\":\"reply\",\"body\":{\"ok\":true}}'\n",
    );
    s.start_supervisor();
    let case = s.ok(&["case", "new", "names", "--assign", "c"]);
    let id = s.ok(&["send", "c", "go", "--case", &case]);
    wait_reply(&s, &id);
    let log = s.layout().case_log(&CaseId::new(case.as_str()).unwrap());
    let report = wait_until(SOON, "the case event in the case log", || {
        records(&log)
            .into_iter()
            .find(|r| r["event"] == "agent_report")
    });
    assert_eq!(report["report"], "progress", "{report}");
    assert_eq!(report["n"], 1, "{report}");
    assert!(s.stop_supervisor().success());
}
