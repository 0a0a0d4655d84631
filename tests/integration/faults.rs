//! Faults beyond SIGKILL, against a real supervisor and real agents: a
//! destination that cannot be written for seconds (a file replaced by a
//! directory), a full disk, a closed stderr. Nothing acknowledged is lost,
//! nothing is doubled, and the society resumes by itself.

use crate::support::{system_events, SmallDisk, BIN};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::path::Path;
use std::time::{Duration, Instant};

const SOON: Duration = Duration::from_secs(30);

fn supervisor_status(s: &Society) -> Value {
    std::fs::read(s.layout().supervisor_status())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Replaces `file` by a directory until the supervisor has reported the
/// failing writes for `hold` (several retries), then puts the file back.
fn unwritable_for(s: &Society, file: &Path, hold: Duration, while_broken: impl FnOnce()) {
    let aside = file.with_extension("aside");
    std::fs::rename(file, &aside).unwrap();
    std::fs::create_dir(file).unwrap();
    while_broken();
    let since = Instant::now();
    wait_until(SOON, "the supervisor to report the failing writes", || {
        supervisor_status(s)["trouble"]["stalled"]
            .as_u64()
            .filter(|n| *n > 0)
    });
    // The fault lasts `hold` after it was noticed: the supervisor retries
    // every second meanwhile, and must not write anything twice.
    wait_until(hold + SOON, "the fault to have lasted", || {
        (since.elapsed() >= hold).then_some(())
    });
    std::fs::remove_dir(file).unwrap();
    std::fs::rename(&aside, file).unwrap();
}

fn replies_to(path: &Path, id: &str) -> usize {
    records(path).iter().filter(|r| r["reply_to"] == id).count()
}

fn fsck_clean(s: &Society) {
    let out = s.run(&["fsck", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "fsck: {doc:#}");
}

#[test]
fn a_case_log_that_cannot_be_written_for_seconds_doubles_nothing() {
    let mut s = Society::new(BIN, "[[agent]]\nid = \"e1\"\nbrain = \"echo\"\n");
    s.start_supervisor();
    let case = s.ok(&["case", "new", "a fault on the case log"]);
    let warm = s.ok(&["send", "e1", "warm up", "--case", &case]);
    let inbox = s.layout().orchestrator_inbox();
    wait_until(SOON, "the warm-up reply", || {
        (replies_to(&inbox, &warm) == 1).then_some(())
    });
    let log = s.layout().case_log(&case.parse().unwrap());
    let mut id = String::new();
    unwritable_for(&s, &log, Duration::from_secs(4), || {
        id = s.ok(&["send", "e1", "during the fault", "--case", &case]);
    });
    wait_until(SOON, "the reply after the fault", || {
        (replies_to(&inbox, &id) >= 1).then_some(())
    });
    wait_until(SOON, "the trouble to clear", || {
        supervisor_status(&s)["trouble"].is_null().then_some(())
    });
    assert_eq!(
        replies_to(&inbox, &id),
        1,
        "the reply reached the orchestrator once"
    );
    let in_log: Vec<Value> = records(&log)
        .into_iter()
        .filter(|r| r["event"] == "message" && (r["id"] == id.as_str() || r["reply_to"] == id))
        .collect();
    assert_eq!(
        in_log.len(),
        1,
        "the message is in the case log once: {in_log:#?}"
    );
    let replies: Vec<Value> = records(&log)
        .into_iter()
        .filter(|r| r["event"] == "message" && r["from"] == "e1")
        .collect();
    assert_eq!(
        replies.len(),
        2,
        "each reply once in the case log: {replies:#?}"
    );
    let escalations: Vec<Value> = records(&inbox)
        .into_iter()
        .filter(|r| r["type"] == "escalation" && r["body"]["agent"] == "supervisor")
        .collect();
    assert_eq!(
        escalations.len(),
        1,
        "the failing writes escalated once: {escalations:#?}"
    );
    assert!(
        !system_events(&s, "writes_resumed").is_empty(),
        "the supervisor says when writes work again"
    );
    fsck_clean(&s);
}

#[test]
fn a_mirror_that_cannot_be_written_for_seconds_doubles_no_delivery() {
    let toml = r#"
[[agent]]
id = "relay"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "forward", to = "e1" } ]
[[agent.brain.rules]]
type = "reply"
actions = [ { do = "send", to = "orchestrator", type = "result", body = { n = "{{body.n}}" } } ]

[[agent]]
id = "e1"
brain = "echo"
"#;
    let mut s = Society::new(BIN, toml);
    s.start_supervisor();
    let mirror = s.layout().agent_to_agent();
    let mut sent = Vec::new();
    unwritable_for(&s, &mirror, Duration::from_secs(4), || {
        for n in 0..3 {
            // `send` delivers and warns: the mirror is a copy, not the delivery.
            let out = s.run(&["send", "relay", "--json", &format!("{{\"n\": {n}}}")]);
            assert!(out.status.success(), "{out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("warning:") && err.contains("missing from"),
                "{err}"
            );
            sent.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
    });
    let results = || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .filter(|r| r["type"] == "result")
            .count()
    };
    wait_until(SOON, "every result", || (results() >= 3).then_some(()));
    wait_until(SOON, "the trouble to clear", || {
        supervisor_status(&s)["trouble"].is_null().then_some(())
    });
    let forwarded = records(&s.agent("e1").inbox());
    assert_eq!(
        forwarded.len(),
        3,
        "e1 got each forward once: {forwarded:#?}"
    );
    assert!(
        records(&s.agent("e1").deadletter()).is_empty(),
        "no repeat for the flood filter to refuse"
    );
    assert_eq!(results(), 3);
    fsck_clean(&s);
}

/// While `checkpoint.json` cannot be written (a directory in its place), a
/// batch to a destination the saved checkpoint knows (`ahead`) still lands,
/// and `status` says what is wrong; a batch that needs its write-ahead
/// record (a new case log) waits. After a crash with the checkpoint of
/// before the fault, everything is routed once.
#[test]
fn a_write_ahead_that_fails_stops_its_batch() {
    let mut s = Society::new(BIN, "[[agent]]\nid = \"e1\"\nbrain = \"echo\"\n");
    s.start_supervisor();
    let warm = s.ok(&["send", "e1", "warm up"]);
    let inbox = s.layout().orchestrator_inbox();
    wait_until(SOON, "the warm-up reply", || {
        (replies_to(&inbox, &warm) == 1).then_some(())
    });
    let ckpt = s.layout().supervisor_checkpoint();
    wait_until(SOON, "the orchestrator's inbox recorded ahead", || {
        let v: Value = serde_json::from_slice(&std::fs::read(&ckpt).ok()?).ok()?;
        v["ahead"]
            .get(inbox.to_str().unwrap())
            .is_some()
            .then_some(())
    });
    // checkpoint.json cannot be replaced while it is a directory.
    let aside = ckpt.with_extension("aside");
    // The supervisor may write a new checkpoint between the rename and the
    // mkdir: then set the newer one aside and try again.
    wait_until(SOON, "the checkpoint replaced by a directory", || {
        std::fs::rename(&ckpt, &aside).unwrap();
        match std::fs::create_dir(&ckpt) {
            Ok(()) => Some(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
            Err(e) => panic!("mkdir {}: {e}", ckpt.display()),
        }
    });
    let plain = s.ok(&["send", "e1", "during the fault"]);
    wait_until(SOON, "the reply routed ahead of its checkpoint", || {
        (replies_to(&inbox, &plain) == 1).then_some(())
    });
    let trouble = wait_until(SOON, "the supervisor to report the failing writes", || {
        let t = supervisor_status(&s)["trouble"].clone();
        t.is_object().then_some(t)
    });
    assert!(
        trouble["error"]
            .as_str()
            .unwrap()
            .contains("checkpoint.json"),
        "{trouble}"
    );
    let cased = s.ok(&["send", "e1", "on a new case", "--case", "c-fault"]);
    wait_until(SOON, "e1's reply in its outbox", || {
        (replies_to(&s.agent("e1").outbox(), &cased) == 1).then_some(())
    });
    wait_until(SOON, "the batch waiting for its write-ahead record", || {
        supervisor_status(&s)["trouble"]["stalled"]
            .as_u64()
            .filter(|n| *n > 0)
    });
    assert_eq!(
        replies_to(&inbox, &cased),
        0,
        "without its write-ahead record the batch must not be appended"
    );
    // A crash now, with the checkpoint back as it was before the fault:
    // both replies are routed from the old cursor, once.
    s.kill_supervisor();
    std::fs::remove_dir(&ckpt).unwrap();
    std::fs::rename(&aside, &ckpt).unwrap();
    s.start_supervisor();
    wait_until(SOON, "the reply", || {
        (replies_to(&inbox, &cased) == 1).then_some(())
    });
    s.stop_supervisor();
    assert_eq!(replies_to(&inbox, &warm), 1);
    assert_eq!(replies_to(&inbox, &plain), 1);
    assert_eq!(replies_to(&inbox, &cased), 1);
    fsck_clean(&s);
}

#[test]
fn a_batch_resumed_after_a_failed_write_counts_its_messages_once() {
    // The third identical body is routed while the mirror is unwritable.
    // Counting it at every retry would turn it into a fourth, a "flood".
    let toml = r#"
[[agent]]
id = "relay"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "forward", to = "dst" } ]

[[agent]]
id = "dst"
brain = "echo"
"#;
    let mut s = Society::new(BIN, toml);
    s.start_supervisor();
    let dst = s.agent("dst").inbox();
    for n in 1..=2 {
        s.ok(&["send", "relay", "--json", r#"{"same": true}"#]);
        wait_until(SOON, "the forward", || {
            (records(&dst).len() == n).then_some(())
        });
    }
    let mirror = s.layout().agent_to_agent();
    unwritable_for(&s, &mirror, Duration::from_secs(3), || {
        s.run(&["send", "relay", "--json", r#"{"same": true}"#]);
    });
    wait_until(SOON, "the third forward", || {
        (records(&dst).len() == 3).then_some(())
    });
    wait_until(SOON, "the trouble to clear", || {
        supervisor_status(&s)["trouble"].is_null().then_some(())
    });
    s.stop_supervisor();
    assert!(
        records(&s.agent("dst").deadletter()).is_empty(),
        "nothing refused: {:#?}",
        records(&s.agent("dst").deadletter())
    );
    assert!(system_events(&s, "message_refused").is_empty());
    assert!(!records(&s.agent("relay").inbox())
        .iter()
        .any(|r| r["type"] == "message_blocked"));
    fsck_clean(&s);
}

#[test]
fn an_overdue_case_escalates_once_across_a_failed_write_and_a_crash() {
    let mut s = Society::new(BIN, "");
    s.start_supervisor();
    let case = s.ok(&["case", "new", "due soon", "--due", "6s"]);
    let log = s.layout().case_log(&case.parse().unwrap());
    // `due_soon` (2 s before) lands; then the log breaks before `overdue`.
    wait_until(SOON, "the due_soon record", || {
        records(&log)
            .iter()
            .any(|r| r["event"] == "due_soon")
            .then_some(())
    });
    let aside = log.with_extension("aside");
    std::fs::rename(&log, &aside).unwrap();
    std::fs::create_dir(&log).unwrap();
    let inbox = s.layout().orchestrator_inbox();
    let overdue_escalations = || {
        records(&inbox)
            .into_iter()
            .filter(|r| {
                r["type"] == "escalation"
                    && r["case"] == case.as_str()
                    && r["body"]["reason"]
                        .as_str()
                        .unwrap_or("")
                        .contains("overdue")
            })
            .count()
    };
    // The escalation lands; the `overdue` record cannot.
    wait_until(SOON, "the overdue escalation", || {
        (overdue_escalations() == 1).then_some(())
    });
    let seen = supervisor_status(&s)["ts"].clone();
    wait_until(SOON, "two more scans", || {
        let ts = supervisor_status(&s)["ts"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (ts.as_str() > seen.as_str().unwrap_or("")).then_some(())
    });
    assert_eq!(
        overdue_escalations(),
        1,
        "a waiting overdue record is not decided again"
    );
    // Killed with the batch half written: the next supervisor finishes it.
    s.kill_supervisor();
    std::fs::remove_dir(&log).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    s.start_supervisor();
    wait_until(SOON, "the overdue record", || {
        records(&log)
            .iter()
            .any(|r| r["event"] == "overdue")
            .then_some(())
    });
    s.stop_supervisor();
    assert_eq!(overdue_escalations(), 1, "escalated once in all");
    let overdue = records(&log)
        .iter()
        .filter(|r| r["event"] == "overdue")
        .count();
    assert_eq!(overdue, 1);
    fsck_clean(&s);
}

#[test]
fn a_supervisor_whose_stderr_fails_keeps_working() {
    // `society supervise 2>/dev/full`: every log line fails to write.
    let s = Society::new(BIN, "[[agent]]\nid = \"e1\"\nbrain = \"echo\"\n");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut sup = s
        .command(&["supervise"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    wait_until(SOON, "the supervisor to be ready", || {
        (supervisor_status(&s)["state"] == "running").then_some(())
    });
    let inbox = s.layout().orchestrator_inbox();
    for n in 0..3 {
        let id = s.ok(&["send", "e1", &format!("hello {n}")]);
        wait_until(SOON, "the reply", || {
            (replies_to(&inbox, &id) == 1).then_some(())
        });
    }
    // A failing write makes the supervisor log errors, each of which fails
    // to reach stderr.
    let mut id = String::new();
    unwritable_for(
        &s,
        &s.layout().agent_to_agent(),
        Duration::from_secs(2),
        || {
            id = s.ok(&["send", "e1", "during the fault"]);
        },
    );
    wait_until(SOON, "the reply", || {
        (replies_to(&inbox, &id) == 1).then_some(())
    });
    assert!(sup.try_wait().unwrap().is_none(), "the supervisor is alive");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_until(SOON, "the supervisor to exit", || sup.try_wait().unwrap());
    assert_eq!(status.code(), Some(0), "a clean exit, not a panic (101)");
}

#[test]
fn a_full_disk_loses_nothing_acknowledged_and_resumes_by_itself() {
    let mut s = Society::new(
        BIN,
        "[defaults]\nidle_exit = \"1h\"\n[[agent]]\nid = \"e1\"\nbrain = \"echo\"\n",
    );
    let Some(disk) = SmallDisk::over(&s, "2m") else {
        return;
    };
    let sup = s.start_supervisor();
    let inbox = s.layout().orchestrator_inbox();
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let id = s.ok(&["send", "e1", &format!("before {n}")]);
        wait_until(SOON, "the reply", || {
            (replies_to(&inbox, &id) == 1).then_some(())
        });
        acknowledged.push(id);
    }
    // e1 is paused while the disk fills, so that it meets the full disk
    // with messages to handle.
    let e1 = s.agent_pid("e1").unwrap() as i32;
    let signal = |sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(e1), sig).unwrap();
    signal(nix::sys::signal::Signal::SIGSTOP);
    let filler = disk.fill();
    // Sends now fail with a clear error, or are acknowledged: never both.
    let mut refused = 0;
    for n in 0..30 {
        let out = s.run(&["send", "e1", &format!("during {n} {}", "x".repeat(200))]);
        if out.status.success() {
            acknowledged.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        } else {
            refused += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("No space left on device") && err.contains("is full"),
                "{err}"
            );
        }
    }
    eprintln!(
        "full disk: {} sends acknowledged, {refused} refused",
        acknowledged.len() - 5
    );
    assert!(refused > 0, "the disk was full");
    let rest = disk.fill_again();
    signal(nix::sys::signal::Signal::SIGCONT);
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    // The full disk lasts 3 s with work waiting: nobody dies of it.
    let since = Instant::now();
    wait_until(SOON, "three seconds of a full disk", || {
        assert!(alive(sup), "the supervisor survives a full disk");
        assert!(
            alive(e1 as u32),
            "the agent waits for room instead of exiting"
        );
        (since.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    let answered_while_full = acknowledged[5..]
        .iter()
        .filter(|id| replies_to(&inbox, id) > 0)
        .count();
    std::fs::remove_file(rest).unwrap();
    // Space returns: everything acknowledged is answered, once, unprompted.
    std::fs::remove_file(filler).unwrap();
    wait_until(
        Duration::from_secs(60),
        "every acknowledged message answered",
        || {
            acknowledged
                .iter()
                .all(|id| replies_to(&inbox, id) >= 1)
                .then_some(())
        },
    );
    for id in &acknowledged {
        assert_eq!(replies_to(&inbox, id), 1, "{id} answered once");
    }
    eprintln!("answered while the disk was full: {answered_while_full}");
    assert!(alive(sup));
    wait_until(SOON, "the trouble to clear", || {
        supervisor_status(&s)["trouble"].is_null().then_some(())
    });
    let after = s.ok(&["send", "e1", "after"]);
    wait_until(SOON, "the reply", || {
        (replies_to(&inbox, &after) == 1).then_some(())
    });
    s.stop_supervisor();
    fsck_clean(&s);
    drop(disk);
}
