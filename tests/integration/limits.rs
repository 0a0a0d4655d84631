//! Limits on what hostile input can cost (FORMAT.md "Limits"): a record over
//! `max_record` is refused at every writer — the CLI, an agent, the router —
//! and a line over it that reaches a file anyway (appended by hand, or by a
//! program with a hand on an agent's files) is dead-lettered by its size
//! after a bounded read, whatever its length; nothing before or after it is
//! lost, doubled or reordered. Nesting is bounded by the parsers.

use crate::command_brain::support::script;
use crate::support::{agent_state, replies_to, system_events, wait_reply, BIN, ECHO_TOML, SOON};
use serde_json::{json, Value};
use society_core::{AgentId, Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::io::Write;
use std::path::Path;

/// The default `max_record`.
const MIB: usize = 1 << 20;

/// Peak resident memory of a process, in kB (`VmHWM`).
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Appends by hand (no lock, several writes, as a careless tool would) one
/// line: `head`, `fill` bytes of `z`, `tail` and the newline. Returns the
/// line's offset and its size, newline included.
fn append_long(path: &Path, head: &[u8], fill: usize, tail: &[u8]) -> (u64, u64) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    let at = f.metadata().unwrap().len();
    f.write_all(head).unwrap();
    let chunk = vec![b'z'; MIB];
    let mut left = fill;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.write_all(tail).unwrap();
    f.write_all(b"\n").unwrap();
    (at, (head.len() + fill + tail.len() + 1) as u64)
}

/// A valid envelope whose body text is `fill` bytes long, appended by hand.
fn append_envelope(path: &Path, from: &str, to: &str, fill: usize) -> (Envelope, u64, u64) {
    let mut env = Envelope::new(
        Party::Agent(AgentId::new(from).unwrap()),
        to.parse().unwrap(),
        "task",
        json!({"text": "@"}),
    );
    env.gen = 1;
    let line = env.to_line();
    let at = line.windows(3).position(|w| w == b"\"@\"").unwrap() + 1;
    let (offset, size) = append_long(path, &line[..at], fill, &line[at + 1..]);
    (env, offset, size)
}

/// (c) A 200 MB line appended by hand to an inbox is dead-lettered by its
/// size: the agent reads at most `max_record` bytes of it, skips the rest
/// to its newline in chunks, and handles the next message as usual.
#[test]
fn a_200_mb_inbox_line_is_dead_lettered_from_a_bounded_read() {
    let mut s = Society::new(BIN, ECHO_TOML);
    let supervisor = s.start_supervisor();
    let echo = s.agent("echo");
    let first = s.ok(&["send", "echo", "before"]);
    wait_reply(&s, &first);
    let pid = s.agent_pid("echo").unwrap();
    let (agent_before, supervisor_before) = (peak_kb(pid), peak_kb(supervisor));

    let (offset, size) = append_long(&echo.inbox(), b"{\"v\":1,\"body\":\"", 200 << 20, b"\"}");
    let after = s.ok(&["send", "echo", "after"]);
    assert_eq!(wait_reply(&s, &after)["body"]["text"], "after");

    let dead = records(&echo.deadletter());
    assert_eq!(dead.len(), 1, "{dead:#?}");
    let rec = &dead[0];
    assert_eq!(rec["event"], "dead_lettered");
    assert_eq!(rec["offset"], offset);
    assert_eq!(
        rec["reason"],
        format!("line of {size} bytes exceeds max_record ({MIB} bytes)")
    );
    assert_eq!(rec["truncated"], true);
    let excerpt = rec["line"].as_str().unwrap();
    assert!(excerpt.starts_with("{\"v\":1,\"body\":\"zzz") && excerpt.len() <= 64 << 10);

    assert_eq!(s.agent_pid("echo"), Some(pid), "the same process, no crash");
    let ck = wait_until(SOON, "echo's cursor past everything", || {
        let ck = agent_state(&echo)?;
        let len = std::fs::metadata(echo.inbox()).ok()?.len();
        (ck["inbox_offset"] == len).then_some(ck)
    });
    assert_eq!(
        (ck["handled"].as_u64(), ck["dead_lettered"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(replies_to(&s, &after).len(), 1);

    // Memory: before bounded reads, the agent's peak grew by ~410 MB and the
    // supervisor's (its check for pending mail) by as much.
    let agent_growth = peak_kb(pid) - agent_before;
    let supervisor_growth = peak_kb(supervisor) - supervisor_before;
    eprintln!("peak RSS growth: agent {agent_growth} kB, supervisor {supervisor_growth} kB");
    assert!(agent_growth < 64 << 10, "agent grew {agent_growth} kB");
    assert!(
        supervisor_growth < 64 << 10,
        "supervisor grew {supervisor_growth} kB"
    );
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}

/// A line within `max_record` whose bad value is most of it (a 1,000,000-
/// character `type`): the reason quotes an excerpt, so the dead-letter
/// record stays small. (It used to quote it whole: the record was refused as
/// too large, the agent exited on the error, and every restart met the
/// line again until the agent was `failed` and its inbox stuck.)
#[test]
fn a_line_with_a_huge_bad_value_is_dead_lettered_with_a_short_reason() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let echo = s.agent("echo");
    let first = s.ok(&["send", "echo", "before"]);
    wait_reply(&s, &first);
    let pid = s.agent_pid("echo").unwrap();
    let head = br#"{"v":1,"id":"01J00000000000000000000000","ts":"2025-01-01T00:00:00.000Z","from":"orchestrator","to":"echo","type":""#;
    let (offset, _) = append_long(&echo.inbox(), head, 1_000_000, br#"","body":{}}"#);
    let after = s.ok(&["send", "echo", "after"]);
    wait_reply(&s, &after);
    let dead = records(&echo.deadletter());
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0]["offset"], offset);
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("invalid type \"zzz") && reason.len() < 300,
        "{reason}"
    );
    assert_eq!(s.agent_pid("echo"), Some(pid), "the same process, no crash");
    assert!(s.stop_supervisor().success());
}

/// An agent killed after dead-lettering an oversized line, before its cursor
/// moved past it (the worst moment), leaves it to the next process: which
/// records it once, moves past it once, and handles the next line once.
#[test]
fn an_oversized_inbox_line_is_dead_lettered_once_across_a_crash() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "agent.dead_lettered")]);
    let echo = s.agent("echo");
    let first = s.ok(&["send", "echo", "before"]);
    wait_reply(&s, &first);

    let (offset, size) = append_long(&echo.inbox(), b"{\"junk\":\"", 3 * MIB, b"\"}");
    let after = s.ok(&["send", "echo", "after"]);
    wait_reply(&s, &after);
    let ck = wait_until(SOON, "echo's cursor past everything", || {
        let ck = agent_state(&echo)?;
        let len = std::fs::metadata(echo.inbox()).ok()?.len();
        (ck["inbox_offset"] == len).then_some(ck)
    });
    assert_eq!(ck["generation"], 2, "the crash point was reached once");
    let dead = records(&echo.deadletter());
    assert_eq!(dead.len(), 1, "recorded once: {dead:#?}");
    assert_eq!(dead[0]["offset"], offset);
    assert_eq!(
        dead[0]["reason"],
        format!("line of {size} bytes exceeds max_record ({MIB} bytes)")
    );
    assert_eq!(
        replies_to(&s, &after).len(),
        1,
        "the next line handled once"
    );
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}

const SINKS_TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "writer"
role = "writer"
brain = { kind = "script" }

[[agent]]
id = "small"
role = "small"
brain = { kind = "script" }
policy = { max_record = 4096 }
"#;

/// Is `env` in the orchestrator's inbox?
fn in_orchestrator_inbox(s: &Society, env: &Envelope) -> bool {
    records(&s.layout().orchestrator_inbox())
        .iter()
        .any(|r| r["id"] == json!(env.id))
}

/// (b) Outbox lines the router must not write: one over its sender's
/// `max_record` (200 MB, appended by hand: the router reads a bounded head
/// of it), one within the sender's but over its recipient's. Both are
/// dead-lettered in the sender's folder; the lines after them flow, once, in
/// order; a restarted router does not dead-letter them again.
#[test]
fn outbox_lines_over_max_record_are_dead_lettered_and_the_rest_flow() {
    let mut s = Society::new(BIN, SINKS_TOML);
    let supervisor = s.start_supervisor();
    let writer = s.agent("writer");
    let warm = s.ok(&["send", "writer", "warm up"]);
    wait_until(SOON, "writer handled the warm-up", || {
        let ck = agent_state(&writer)?;
        (ck["handled"] == 1).then_some(())
    });
    let before = peak_kb(supervisor);

    let outbox = writer.outbox();
    let (_, huge_at, huge_size) = append_envelope(&outbox, "writer", "orchestrator", 200 << 20);
    let (big, big_at, _) = append_envelope(&outbox, "writer", "small", 10_000);
    let (first, _, _) = append_envelope(&outbox, "writer", "orchestrator", 10);
    let (second, _, _) = append_envelope(&outbox, "writer", "small", 10);

    let small = s.agent("small");
    // A batch's destinations are appended one after another: wait for all.
    let dead = wait_until(
        SOON,
        "the lines dead-lettered and the rest delivered",
        || {
            let delivered = records(&small.inbox())
                .iter()
                .any(|r| r["id"] == json!(second.id))
                && in_orchestrator_inbox(&s, &first);
            let dead = records(&writer.deadletter());
            (delivered && dead.len() >= 2 && system_events(&s, "undeliverable").len() >= 2)
                .then_some(dead)
        },
    );
    assert_eq!(dead.len(), 2, "{dead:#?}");
    assert_eq!(dead[0]["event"], "undeliverable");
    assert_eq!(dead[0]["offset"], huge_at);
    assert_eq!(
        dead[0]["reason"],
        format!("line of {huge_size} bytes exceeds max_record ({MIB} bytes)")
    );
    assert!(dead[0]["id"].is_null(), "not parsed");
    assert_eq!(dead[1]["offset"], big_at);
    assert_eq!(dead[1]["id"], json!(big.id));
    let size = big.to_line().len() + 10_000;
    assert_eq!(
        dead[1]["reason"],
        format!("message of {size} bytes exceeds agent small's max_record (4096 bytes)")
    );
    // Its sender is told, as of any message it could not deliver.
    let notice = wait_until(SOON, "the notice to the writer", || {
        records(&writer.inbox())
            .into_iter()
            .find(|r| r["type"] == "message_blocked")
    });
    assert_eq!(notice["body"]["id"], json!(big.id));
    assert_eq!(system_events(&s, "undeliverable").len(), 2);

    // Nothing over a limit was written anywhere; the rest arrived once.
    let orchestrator = records(&s.layout().orchestrator_inbox());
    assert_eq!(
        orchestrator
            .iter()
            .filter(|r| r["id"] == json!(first.id))
            .count(),
        1
    );
    assert!(orchestrator
        .iter()
        .all(|r| r["from"] != "writer" || r["id"] == json!(first.id)));
    let small_inbox = std::fs::read(small.inbox()).unwrap();
    assert!(small_inbox.split(|b| *b == b'\n').all(|l| l.len() < 4096));
    for file in [
        s.layout().orchestrator_inbox(),
        s.layout().agent_to_agent(),
        small.inbox(),
    ] {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len < MIB as u64, "{} holds {len} bytes", file.display());
    }
    let growth = peak_kb(supervisor) - before;
    eprintln!("supervisor peak RSS growth: {growth} kB");
    assert!(growth < 64 << 10, "the supervisor grew {growth} kB");

    // A restarted router resumes after them: nothing dead-lettered or
    // delivered twice.
    assert!(s.stop_supervisor().success());
    s.start_supervisor();
    let again = s.ok(&["send", "writer", "again"]);
    wait_until(SOON, "writer handled the second message", || {
        let ck = agent_state(&writer)?;
        (ck["handled"].as_u64() >= Some(3)).then_some(())
    });
    assert!(s.stop_supervisor().success());
    assert_eq!(records(&writer.deadletter()).len(), 2);
    assert_eq!(
        records(&small.inbox())
            .iter()
            .filter(|r| r["id"] == json!(second.id))
            .count(),
        1
    );
    let _ = (warm, again);
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}

/// (b) A command-brain program whose output is over `max_record`: the
/// agent's outbox writer refuses it, the attempt fails with the limit and
/// the size said, and the message is dead-lettered after `max_attempts`; a
/// log line over the activity log's limit leaves a `record_refused` in its
/// place. The agent keeps working.
#[test]
fn a_command_brain_output_over_max_record_is_refused_by_the_agent() {
    let toml = "[defaults]\nheartbeat = \"200ms\"\nmax_attempts = 2\nmax_record = 8192\n\n\
                [[agent]]\nid = \"big\"\nkeep_alive = true\n\
                brain = { kind = \"command\", program = \"tools/big.sh\" }\n";
    let mut s = Society::new(BIN, toml);
    script(
        s.root(),
        "big.sh",
        r#"input=$(cat)
fill() { head -c "$1" /dev/zero | tr '\0' x; }
case "$input" in
  *huge-reply*) printf '{"action":"reply","body":{"text":"%s"}}\n' "$(fill 10000)" ;;
  *huge-log*) printf '{"action":"log","message":"%s"}\n{"action":"reply","body":{"text":"logged"}}\n' "$(fill 2000000)" ;;
  *) printf '{"action":"reply","body":{"text":"ok"}}\n' ;;
esac
"#,
    );
    s.start_supervisor();
    let big = s.agent("big");
    let huge = s.ok(&["send", "big", "huge-reply"]);
    let dead = wait_until(SOON, "the dead letter", || {
        records(&big.deadletter()).into_iter().next()
    });
    assert_eq!(dead["id"], huge.as_str());
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("failed 2 attempts; last error: an output of ")
            && reason.ends_with(" bytes exceeds max_record (8192 bytes)"),
        "{reason}"
    );
    let failed: Vec<Value> = records(&big.activity())
        .into_iter()
        .filter(|r| r["event"] == "message_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:#?}");
    // Nothing over the limit reached the outbox.
    let outbox = std::fs::read(big.outbox()).unwrap_or_default();
    assert!(outbox.split(|b| *b == b'\n').all(|l| l.len() < 8192));

    let logged = s.ok(&["send", "big", "huge-log"]);
    assert_eq!(wait_reply(&s, &logged)["body"]["text"], "logged");
    let refused = wait_until(SOON, "the record_refused", || {
        records(&big.activity())
            .into_iter()
            .find(|r| r["event"] == "record_refused")
    });
    assert_eq!(refused["refused"], "brain_log");
    assert_eq!(refused["max"], MIB);
    assert!(refused["bytes"].as_u64().unwrap() > 2_000_000);
    let ok = s.ok(&["send", "big", "fine"]);
    assert_eq!(wait_reply(&s, &ok)["body"]["text"], "ok");
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}

/// (a) `society send` refuses a body over the recipient's `max_record`
/// with the invalid-input code, the limit and the size said, and writes
/// nothing; a body file over any agent's limit is not even read whole.
#[test]
fn send_refuses_a_body_over_max_record_and_writes_nothing() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let echo = s.agent("echo");
    let warm = s.ok(&["send", "echo", "warm up"]);
    wait_reply(&s, &warm);
    let inbox_before = std::fs::read(echo.inbox()).unwrap();

    let file = s.root().join("body.json");
    std::fs::write(&file, json!({"text": "y".repeat(2 * MIB)}).to_string()).unwrap();
    let out = s.run(&["send", "echo", "--body-file", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("exceeds agent echo's max_record (1048576 bytes); nothing was sent"),
        "{stderr}"
    );
    assert!(
        stderr.contains("message of 2097"),
        "the size is said: {stderr}"
    );
    assert!(out.stdout.is_empty());

    // Over MAX_RECORD_LIMIT (64 MiB): refused after reading 64 MiB + 1.
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(b"{\"text\":\"").unwrap();
    let chunk = vec![b'y'; MIB];
    for _ in 0..65 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\"}").unwrap();
    drop(f);
    let out = s.run(&["send", "echo", "--body-file", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("holds more than 67108864 bytes"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    std::fs::remove_file(&file).unwrap();

    assert_eq!(std::fs::read(echo.inbox()).unwrap(), inbox_before);
    assert!(s.stop_supervisor().success());
}

/// (d) Records nested 100,000 deep — in an inbox, in an outbox, in a
/// command-brain program's output, in `society.toml` — are refused by the
/// parsers' depth limits (serde_json: 128, toml's own) as bad input: the
/// processes neither crash nor stall.
#[test]
fn records_nested_100_000_deep_are_refused_as_bad_input() {
    let toml = "[defaults]\nheartbeat = \"200ms\"\nmax_attempts = 1\n\n\
                [[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n\n\
                [[agent]]\nid = \"deep\"\nkeep_alive = true\n\
                brain = { kind = \"command\", program = \"tools/deep.sh\" }\n";
    let mut s = Society::new(BIN, toml);
    script(
        s.root(),
        "deep.sh",
        r#"cat >/dev/null
printf '{"action":"reply","body":{"deep":%s%s}}\n' "$(head -c 100000 /dev/zero | tr '\0' '[')" "$(head -c 100000 /dev/zero | tr '\0' ']')"
"#,
    );
    let supervisor = s.start_supervisor();
    let echo = s.agent("echo");
    let warm = s.ok(&["send", "echo", "warm up"]);
    wait_reply(&s, &warm);
    let pid = s.agent_pid("echo").unwrap();

    let deep =
        |open: &str, close: &str| format!("{}{}", open.repeat(100_000), close.repeat(100_000));
    let inbox_line = format!(
        "{{\"v\":1,\"id\":\"01J00000000000000000000000\",\"ts\":\"2025-01-01T00:00:00.000Z\",\"from\":\"orchestrator\",\"to\":\"echo\",\"type\":\"task\",\"body\":{{\"deep\":{}}}}}\n",
        deep("[", "]")
    );
    append_long(&echo.inbox(), inbox_line.trim_end().as_bytes(), 0, b"");
    let outbox_line = format!(
        "{{\"v\":1,\"id\":\"01J00000000000000000000001\",\"ts\":\"2025-01-01T00:00:00.000Z\",\"from\":\"echo\",\"to\":\"orchestrator\",\"type\":\"task\",\"body\":{{\"deep\":{}}}}}",
        deep("{\"a\":", "}").replacen("{\"a\":}", "{\"a\":1}", 1)
    );
    append_long(&echo.outbox(), outbox_line.as_bytes(), 0, b"");
    let after = s.ok(&["send", "echo", "after"]);
    wait_reply(&s, &after);

    // The agent dead-letters the inbox line, the router the outbox line.
    let dead = wait_until(SOON, "both lines dead-lettered", || {
        let dead = records(&echo.deadletter());
        (dead.len() >= 2).then_some(dead)
    });
    assert_eq!(dead.len(), 2, "{dead:#?}");
    let mut events: Vec<&str> = dead.iter().filter_map(|r| r["event"].as_str()).collect();
    events.sort_unstable();
    assert_eq!(events, ["dead_lettered", "undeliverable"]);
    for rec in &dead {
        let reason = rec["reason"].as_str().unwrap();
        assert!(reason.contains("recursion limit exceeded"), "{reason}");
    }

    let id = s.ok(&["send", "deep", "go"]);
    let dead = wait_until(SOON, "the program's output dead-lettered", || {
        records(&s.agent("deep").deadletter()).into_iter().next()
    });
    assert_eq!(dead["id"], id.as_str());
    let reason = dead["reason"].as_str().unwrap();
    assert!(reason.contains("recursion limit exceeded"), "{reason}");

    assert_eq!(s.agent_pid("echo"), Some(pid));
    assert!(!s.supervisor_exited());
    let again = s.ok(&["send", "echo", "again"]);
    wait_reply(&s, &again);
    assert!(s.stop_supervisor().success());

    // society.toml: toml's parser refuses it (no stack overflow).
    let nested = format!(
        "[[agent]]\nid = \"x\"\nbrain = \"echo\"\npolicy = {{ accept_types = {} }}\n",
        deep("[", "]")
    );
    std::fs::write(s.root().join("society.toml"), nested).unwrap();
    let out = s.run(&["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("recurs"), "{stderr}");
    let _ = supervisor;
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}
