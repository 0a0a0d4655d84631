//! Crash tests for the delivery contract: real agent and supervisor processes
//! are SIGKILLed at the worst moments, and the logs must still hold every
//! message exactly once.

use crate::support::{agent_state, read_json, wait_reply, BIN, ECHO_TOML, SOON};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::lock::{self, LockState};
use society_core::{AgentId, AgentPaths, Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The `id` of every record in a JSONL file, in file order.
fn ids(path: &Path) -> Vec<String> {
    records(path)
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

/// Panics if any `id` occurs twice in `path`; returns how many records it has.
fn assert_unique_ids(path: &Path) -> usize {
    let all = ids(path);
    let mut seen = HashSet::new();
    let dups: Vec<&String> = all.iter().filter(|id| !seen.insert(*id)).collect();
    assert!(
        dups.is_empty(),
        "duplicate ids in {}: {dups:?}",
        path.display()
    );
    all.len()
}

/// `reply_to` → number of replies carrying it, over the records of `path`.
fn replies_by_input(path: &Path) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in records(path) {
        if let Some(to) = r["reply_to"].as_str() {
            *by.entry(to.to_string()).or_default() += 1;
        }
    }
    by
}

/// Asserts `replies` holds exactly one reply per id in `sent` and nothing else.
fn assert_exactly_one_reply_each(replies: &BTreeMap<String, usize>, sent: &[String]) {
    let twice: Vec<(&String, &usize)> = replies.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "inputs answered more than once: {twice:?}"
    );
    let sent_set: HashSet<&String> = sent.iter().collect();
    let missing: Vec<&&String> = sent_set
        .iter()
        .filter(|id| !replies.contains_key(**id))
        .collect();
    assert!(missing.is_empty(), "inputs never answered: {missing:?}");
    let stray: Vec<&String> = replies.keys().filter(|id| !sent_set.contains(id)).collect();
    assert!(stray.is_empty(), "replies to ids never sent: {stray:?}");
}

/// Appends an orchestrator message to `to`'s inbox (and the mirror) the way
/// `society send` does, without starting a process. Returns its id.
fn append_message(s: &Society, to: &str, body: Value) -> String {
    let env = Envelope::new(
        Party::Orchestrator,
        Party::Agent(AgentId::new(to).unwrap()),
        "task",
        body,
    );
    let line = env.to_line();
    append_one(
        &s.agent(to).inbox(),
        &line,
        Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )
    .unwrap();
    append_one(
        &s.layout().agent_to_agent(),
        &line,
        Durability::Flushed,
        usize::MAX,
    )
    .unwrap();
    env.id.to_string()
}

/// `society send TO --json BODY`; returns the printed id.
fn cli_send(s: &Society, to: &str, body: Value, extra: &[&str]) -> String {
    let body = body.to_string();
    let mut args = vec!["send", to, "--json", body.as_str()];
    args.extend_from_slice(extra);
    s.ok(&args)
}

/// Is `pid` a live (non-zombie) process?
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesised command name, is the state.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn handled(agent: &AgentPaths) -> u64 {
    agent_state(agent).map_or(0, |c| c["handled"].as_u64().unwrap_or(0))
}

/// Does the outbox hold a reply to `id`?
fn has_reply_to(agent: &AgentPaths, id: &str) -> bool {
    let needle = format!("\"reply_to\":\"{id}\"");
    std::fs::read(agent.outbox())
        .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// The id of the message in flight, as the agent's next process would read
/// it (`checkpoint.json` with `inflight.json` merged in).
fn in_flight_id(agent: &AgentPaths) -> Option<String> {
    society_core::state::AgentCheckpoint::read(agent)
        .ok()
        .flatten()?
        .in_flight
        .map(|f| f.id.to_string())
}

/// Is the in-flight message's reply already in the outbox?
fn reply_written_not_advanced(agent: &AgentPaths) -> bool {
    in_flight_id(agent).is_some_and(|id| has_reply_to(agent, &id))
}

/// Where the kills so far landed, read from the logs: each generation that
/// resumed an in-flight message was preceded by a kill that interrupted it,
/// either before its reply was written (`mid`) or after (`after`: the reply
/// in the outbox is from an older generation, so the retry did not rewrite it).
fn kill_landings(agent: &AgentPaths) -> (usize, usize) {
    let reply_gen: BTreeMap<String, u64> = records(&agent.outbox())
        .iter()
        .filter_map(|r| Some((r["reply_to"].as_str()?.to_string(), r["gen"].as_u64()?)))
        .collect();
    let (mut mid, mut after) = (0, 0);
    for r in records(&agent.activity()) {
        let Some(id) = r["resumes"].as_str().filter(|_| r["event"] == "started") else {
            continue;
        };
        match reply_gen.get(id) {
            Some(g) if *g < r["gen"].as_u64().unwrap() => after += 1,
            _ => mid += 1,
        }
    }
    (mid, after)
}

const CRASH_TOML: &str = r#"
[defaults]
heartbeat = "200ms"
hang_timeout = "30s"
backoff_initial = "10ms"
backoff_max = "100ms"
# Every SIGKILL is a failure; the test kills far more often than a real
# agent would fail, and a message may be killed more than once.
burst = 1000
max_attempts = 1000

[[agent]]
id = "worker"
role = "worker"
keep_alive = true

[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "task"
actions = [
  { do = "sleep", ms = 20 },
  { do = "reply", type = "done", body = { n = "{{body.n}}" } },
]
"#;

const MESSAGES: usize = 200;
const VIA_CLI_EVERY: usize = 25;
/// At least this many kills, and more until at least two landed mid-message
/// and two between a reply and its cursor advance (each kill aims at one).
const MIN_KILLS: usize = 6;
/// Each kill waits for 10 more messages handled: stay well inside MESSAGES.
const MAX_KILLS: usize = 16;

#[test]
fn exactly_one_reply_under_repeated_sigkill() {
    let t0 = Instant::now();
    let mut s = Society::new(BIN, CRASH_TOML);
    s.start_supervisor();
    let worker = s.agent("worker");
    let first_pid = wait_until(Duration::from_secs(20), "the worker to start", || {
        s.agent_pid("worker")
    });

    let mut kills = 0;
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut sent = Vec::with_capacity(MESSAGES);
            for n in 0..MESSAGES {
                let body = json!({ "n": n });
                let id = if n % VIA_CLI_EVERY == 0 {
                    cli_send(&s, "worker", body, &[])
                } else {
                    append_message(&s, "worker", body)
                };
                sent.push(id);
                // Pacing, not synchronisation: keep mail arriving while the kills land.
                std::thread::sleep(Duration::from_millis(8));
            }
            sent
        });

        let mut pid = first_pid;
        let mut handled_at_kill = 0;
        loop {
            // Only after some progress since the previous kill, so kills
            // spread over the run (and the previous victim's message has
            // been finished by its successor, so the landings are known).
            wait_until(
                Duration::from_secs(30),
                &format!("progress after kill {kills}"),
                || (handled(&worker) >= handled_at_kill + 10).then_some(()),
            );
            let (mid, after) = kill_landings(&worker);
            if kills >= MIN_KILLS && mid >= 2 && after >= 2 {
                break;
            }
            assert!(
                kills < MAX_KILLS,
                "{kills} kills and still not 2 mid-message ({mid}) and 2 after-reply ({after})"
            );
            if mid < 2 && (after >= 2 || kills % 2 == 0) {
                // While a message is in the brain: in flight, no reply yet.
                wait_until(
                    Duration::from_secs(30),
                    &format!("kill {kills}: worker pid {pid} in the middle of a message"),
                    || {
                        let st = read_json(&worker.status())?;
                        let id = in_flight_id(&worker)?;
                        (st["pid"] == pid && !has_reply_to(&worker, &id)).then_some(())
                    },
                );
            } else {
                // Between appending the reply and advancing the cursor: the
                // retry must not write the reply again. The window is a
                // checkpoint write (with fsyncs) long, so poll fast.
                let deadline = Instant::now() + Duration::from_secs(20);
                while !reply_written_not_advanced(&worker) {
                    assert!(
                        Instant::now() < deadline,
                        "kill {kills}: never saw a reply written before its cursor advanced"
                    );
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
            kills += 1;
            handled_at_kill = handled(&worker);
            // A replacement generation is up: it holds the lock and has
            // announced itself in status.json (after its `started` event).
            pid = wait_until(
                Duration::from_secs(20),
                &format!("a new worker process after kill {kills} of pid {pid}"),
                || {
                    let holder = s.agent_pid("worker").filter(|p| *p != pid)?;
                    let st = read_json(&worker.status())?;
                    (st["pid"] == holder).then_some(holder)
                },
            );
        }

        let sent = sender.join().unwrap();
        assert_eq!(sent.len(), MESSAGES);
        let orchestrator = s.layout().orchestrator_inbox();
        wait_until(Duration::from_secs(40), "a reply to every message", || {
            (replies_by_input(&orchestrator).len() >= MESSAGES).then_some(())
        });

        // Exactly one reply per input, with the right content, and no
        // duplicate id in any log the messages went through.
        let replies = replies_by_input(&orchestrator);
        assert_exactly_one_reply_each(&replies, &sent);
        assert_eq!(assert_unique_ids(&orchestrator), MESSAGES);
        assert_eq!(assert_unique_ids(&worker.outbox()), MESSAGES);
        assert_eq!(assert_unique_ids(&worker.inbox()), MESSAGES);
        // Inputs (mirrored by the sender) plus replies (mirrored by the router).
        assert_eq!(
            assert_unique_ids(&s.layout().agent_to_agent()),
            2 * MESSAGES
        );
        let n_of: BTreeMap<String, Value> = records(&worker.inbox())
            .into_iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["body"]["n"].clone(),
                )
            })
            .collect();
        for r in records(&orchestrator) {
            let input = r["reply_to"].as_str().unwrap();
            assert_eq!(r["from"], "worker");
            assert_eq!(r["type"], "done");
            assert_eq!(
                r["body"]["n"], n_of[input],
                "reply {} carries its input's n",
                r["id"]
            );
        }
    });

    let st = s.stop_supervisor();
    assert!(st.success());
    assert_eq!(
        lock::probe(&worker.lock()).unwrap(),
        LockState::Free,
        "the worker's lock is free after shutdown"
    );
    // The checkpoint, final now that the worker stopped: one generation per
    // process, nothing in flight, every message handled once, nothing
    // dead-lettered, cursor at the end.
    let ck = agent_state(&worker).unwrap();
    let gens = ck["generation"].as_u64().unwrap();
    assert_eq!(
        gens,
        kills as u64 + 1,
        "one generation per process: the first plus one per kill"
    );
    assert!(ck["in_flight"].is_null(), "nothing in flight: {ck}");
    assert_eq!(in_flight_id(&worker), None, "nothing in flight");
    assert_eq!(ck["handled"], MESSAGES as u64);
    assert_eq!(ck["dead_lettered"], 0);
    assert_eq!(
        ck["inbox_offset"].as_u64().unwrap(),
        std::fs::metadata(worker.inbox()).unwrap().len()
    );
    assert!(records(&worker.deadletter()).is_empty());

    // activity.jsonl: a `started` per generation, in order; records of a
    // generation only between its `started` and the next one.
    let activity = records(&worker.activity());
    let started: Vec<&Value> = activity
        .iter()
        .filter(|r| r["event"] == "started")
        .collect();
    let started_gens: Vec<u64> = started.iter().map(|r| r["gen"].as_u64().unwrap()).collect();
    assert_eq!(
        started_gens,
        (1..=gens).collect::<Vec<u64>>(),
        "one `started` per generation, strictly increasing"
    );
    let mut current = 0;
    for r in &activity {
        let g = r["gen"].as_u64().unwrap();
        if r["event"] == "started" {
            current = g;
        }
        assert_eq!(
            g, current,
            "record of generation {g} after `started` of {current}: {r}"
        );
    }
    // The kills landed at the worst moments (the loop above kept killing
    // until they did; checked again here on the final logs).
    let (mid, after) = kill_landings(&worker);
    assert!(
        mid >= 2 && after >= 2,
        "mid-message {mid}, after-reply {after}"
    );
    // Every message was received. A message killed on the single path is
    // received again; one killed inside a group-committed batch logged no
    // receipt (a batch logs its receipts with its outputs), so its retry
    // shows as a generation that `resumes` it — counted by `kill_landings`
    // above, not always as a second receipt.
    let received = activity
        .iter()
        .filter(|r| r["event"] == "message_received")
        .count();
    assert!(
        received >= MESSAGES,
        "every message received ({received} receipts)"
    );

    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
    eprintln!(
        "exactly_one_reply_under_repeated_sigkill: {MESSAGES} messages, {kills} kills \
         ({mid} mid-message, {after} after the reply was written), {received} receipts, {:?}",
        t0.elapsed()
    );
}

#[test]
fn two_agent_runs_on_one_folder() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let echo = s.agent("echo");
    let pid = wait_until(Duration::from_secs(20), "echo to start", || {
        let pid = s.agent_pid("echo")?;
        let st = read_json(&echo.status())?;
        (st["pid"] == pid && st["state"] == "idle").then_some(pid)
    });
    let ck_before = std::fs::read(echo.checkpoint()).unwrap();
    let activity_before = std::fs::read(echo.activity()).unwrap();

    let started = Instant::now();
    let out = s
        .command(&["agent-run", "--folder"])
        .arg(&echo.dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a second agent-run on a held folder exits with 3 (lock held); stderr: {stderr}"
    );
    assert!(
        took < Duration::from_secs(5),
        "refused promptly, took {took:?}"
    );
    assert!(
        stderr.contains(&echo.dir.display().to_string()),
        "stderr names the folder: {stderr}"
    );
    assert!(
        stderr.contains(&pid.to_string()),
        "stderr names the holder's pid {pid}: {stderr}"
    );

    // The loser changed nothing: no generation bump, no log record, and the
    // original process still holds the folder and still works.
    assert_eq!(std::fs::read(echo.checkpoint()).unwrap(), ck_before);
    assert_eq!(std::fs::read(echo.activity()).unwrap(), activity_before);
    assert_eq!(s.agent_pid("echo"), Some(pid));
    assert!(alive(pid));
    let id = s.ok(&["send", "echo", "still there?"]);
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["gen"], 1, "answered by the original generation");
    assert_eq!(s.agent_pid("echo"), Some(pid));
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}

const ADOPT_TOML: &str = r#"
[defaults]
heartbeat = "100ms"
idle_exit = "60s"
hang_timeout = "30s"

[[agent]]
id = "steady"
role = "steady"
brain = "echo"
keep_alive = true

[[agent]]
id = "slow"
role = "slow"

[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "task"
actions = [
  { do = "sleep", ms = 300 },
  { do = "reply" },
]
"#;

#[test]
fn supervisor_sigkill_adoption() {
    let mut s = Society::new(BIN, ADOPT_TOML);
    s.start_supervisor();
    let (steady, slow) = (s.agent("steady"), s.agent("slow"));
    let orchestrator = s.layout().orchestrator_inbox();
    let mut sent = Vec::new();
    let mut slow_sent = Vec::new();
    for n in 0..8 {
        slow_sent.push(cli_send(&s, "slow", json!({ "n": n }), &[]));
    }
    for n in 0..3 {
        sent.push(cli_send(&s, "steady", json!({ "n": n }), &[]));
    }
    sent.extend(slow_sent.iter().cloned());
    // Routing works before the crash: the first slow reply reached the human.
    wait_until(Duration::from_secs(20), "the first slow reply", || {
        replies_by_input(&orchestrator)
            .contains_key(&slow_sent[0])
            .then_some(())
    });
    let steady_pid = s.agent_pid("steady").expect("steady is keep_alive");
    let slow_pid = s.agent_pid("slow").expect("slow is handling its mail");

    s.kill_supervisor();
    wait_until(
        Duration::from_secs(10),
        "the supervisor lock to be free",
        || {
            matches!(
                lock::probe(&s.layout().supervisor_lock()),
                Ok(LockState::Free)
            )
            .then_some(())
        },
    );
    let routed_at_kill = records(&orchestrator).len();
    assert!(
        routed_at_kill < sent.len(),
        "the kill came before all replies were routed"
    );
    assert_eq!(s.agent_pid("steady"), Some(steady_pid), "steady survives");
    assert_eq!(s.agent_pid("slow"), Some(slow_pid), "slow survives");
    assert!(alive(steady_pid) && alive(slow_pid));

    // With no supervisor: the CLI can still deliver (without starting one),
    // and the agents keep answering into their outboxes.
    for n in 3..6 {
        sent.push(cli_send(&s, "steady", json!({ "n": n }), &["--no-start"]));
    }
    assert!(
        matches!(
            lock::probe(&s.layout().supervisor_lock()),
            Ok(LockState::Free)
        ),
        "send --no-start started no supervisor"
    );
    wait_until(
        Duration::from_secs(20),
        "both outboxes to hold every reply while the supervisor is down",
        || {
            (replies_by_input(&steady.outbox()).len() == 6
                && replies_by_input(&slow.outbox()).len() == 8)
                .then_some(())
        },
    );
    assert_eq!(
        records(&orchestrator).len(),
        routed_at_kill,
        "nothing routes while the supervisor is down"
    );
    assert_eq!(s.agent_pid("steady"), Some(steady_pid));
    assert_eq!(s.agent_pid("slow"), Some(slow_pid));

    let events_before = std::fs::metadata(s.layout().system_events())
        .map(|m| m.len())
        .unwrap_or(0);
    let activity_before = std::fs::metadata(s.layout().supervisor_activity())
        .unwrap()
        .len();
    s.start_supervisor();

    wait_until(
        Duration::from_secs(20),
        "every reply in the orchestrator inbox after the restart",
        || (replies_by_input(&orchestrator).len() >= sent.len()).then_some(()),
    );
    // Routing resumes for new mail too: the adopted agent is woken, not replaced.
    let late = cli_send(&s, "steady", json!({ "n": "late" }), &[]);
    sent.push(late.clone());
    wait_until(
        Duration::from_secs(20),
        "the reply to a message sent after the restart",
        || {
            replies_by_input(&orchestrator)
                .contains_key(&late)
                .then_some(())
        },
    );

    assert_exactly_one_reply_each(&replies_by_input(&orchestrator), &sent);
    assert_eq!(assert_unique_ids(&orchestrator), sent.len());
    assert_unique_ids(&s.layout().agent_to_agent());
    assert_unique_ids(&steady.outbox());
    assert_unique_ids(&slow.outbox());

    // No twin: the same processes hold the locks, the new supervisor says it
    // adopted them, and it started neither.
    assert_eq!(s.agent_pid("steady"), Some(steady_pid));
    assert_eq!(s.agent_pid("slow"), Some(slow_pid));
    let activity = std::fs::read(s.layout().supervisor_activity()).unwrap();
    let adopted: Vec<Value> = activity[activity_before as usize..]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|r| r["event"] == "agent_adopted")
        .collect();
    for (id, pid) in [("steady", steady_pid), ("slow", slow_pid)] {
        assert!(
            adopted.iter().any(|r| r["agent"] == id && r["pid"] == pid),
            "agent_adopted for {id} pid {pid}: {adopted:?}"
        );
    }
    let events = std::fs::read(s.layout().system_events()).unwrap();
    let restarted: Vec<Value> = events[events_before as usize..]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|r| r["event"] == "agent_started")
        .collect();
    assert!(
        restarted.is_empty(),
        "the new supervisor started a twin: {restarted:?}"
    );
    for paths in [&steady, &slow] {
        assert_eq!(agent_state(paths).unwrap()["generation"], 1);
    }

    assert!(s.stop_supervisor().success());
    for paths in [&steady, &slow] {
        assert_eq!(lock::probe(&paths.lock()).unwrap(), LockState::Free);
    }
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
}

const ROUTER_TOML: &str = r#"
[defaults]
heartbeat = "100ms"

[[agent]]
id = "left"
role = "pair"
brain = "echo"
keep_alive = true

[[agent]]
id = "right"
role = "pair"
brain = "echo"
keep_alive = true
"#;

/// At least this many supervisor kills, and more until one of them
/// interrupted a routing batch (seen as `batch_recovery` on restart).
const MIN_ROUTER_KILLS: usize = 5;
const MAX_ROUTER_ROUNDS: usize = 25;
/// Messages per round: enough that routing their replies takes a while.
const ROUND: usize = 150;

#[test]
fn supervisor_sigkill_mid_routing() {
    let mut s = Society::new(BIN, ROUTER_TOML);
    s.start_supervisor();
    let orchestrator = s.layout().orchestrator_inbox();
    let checkpoint = s.layout().supervisor_checkpoint();
    let recoveries = |s: &Society| {
        records(&s.layout().supervisor_activity())
            .iter()
            .filter(|r| r["event"] == "batch_recovery")
            .count()
    };
    let mut sent = Vec::new();
    let (mut rounds, mut kills) = (0, 0);
    // One recovery at least: a kill that interrupted a batch (the narrow
    // window right after a batch landed ahead of its checkpoint has its own
    // test, `supervisor_killed_after_a_batch_landed_ahead_of_its_checkpoint`).
    while kills < MIN_ROUTER_KILLS || recoveries(&s) < 1 {
        assert!(
            rounds < MAX_ROUTER_ROUNDS,
            "{rounds} rounds, {kills} supervisor kills, and only {} interrupted a batch",
            recoveries(&s)
        );
        rounds += 1;
        for n in 0..ROUND {
            let to = if n % 2 == 0 { "left" } else { "right" };
            sent.push(append_message(&s, to, json!({ "n": n, "round": rounds })));
        }
        // Kill while a batch is written ahead (`pending` in the router's
        // checkpoint) but not yet committed, or while this round's replies
        // are being routed (most batches land without a write-ahead record
        // of their own, found after the checkpoint's `ahead` lengths). The
        // window is a few appends with fsyncs long, so poll fast; if this
        // round's replies all got through first, try again with the next.
        let deadline = Instant::now() + Duration::from_secs(30);
        let before = sent.len() - ROUND;
        let in_batch = loop {
            if read_json(&checkpoint).is_some_and(|c| !c["pending"].is_null()) {
                break true;
            }
            let routed = records(&orchestrator).len();
            if routed >= sent.len() {
                break false;
            }
            if routed > before {
                break true;
            }
            assert!(
                Instant::now() < deadline,
                "round {rounds}: replies neither routed nor being routed"
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        if in_batch {
            s.kill_supervisor();
            kills += 1;
            s.start_supervisor();
        }
    }
    wait_until(Duration::from_secs(30), "a reply to every message", || {
        (replies_by_input(&orchestrator).len() >= sent.len()).then_some(())
    });
    assert_exactly_one_reply_each(&replies_by_input(&orchestrator), &sent);
    assert_eq!(assert_unique_ids(&orchestrator), sent.len());
    // The mirror holds the inputs (appended like the CLI does) and each reply once.
    assert_eq!(
        assert_unique_ids(&s.layout().agent_to_agent()),
        2 * sent.len()
    );
    assert!(s.stop_supervisor().success());
    // Final now that everything stopped.
    for id in ["left", "right"] {
        let ck = agent_state(&s.agent(id)).unwrap();
        assert_eq!(ck["generation"], 1, "{id} was never restarted");
        assert_eq!(ck["handled"], (sent.len() / 2) as u64);
    }
    let ck = read_json(&s.layout().supervisor_checkpoint()).unwrap();
    assert!(ck["pending"].is_null(), "no batch left pending: {ck}");
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
    eprintln!(
        "supervisor_sigkill_mid_routing: {} messages, {rounds} rounds, {kills} supervisor kills, {} recoveries",
        sent.len(),
        recoveries(&s)
    );
}

const BAD_MAIL_TOML: &str = r#"
[defaults]
heartbeat = "200ms"
backoff_initial = "10ms"
backoff_max = "100ms"
burst = 1000

[[agent]]
id = "sink"
role = "sink"
brain = "echo"
keep_alive = true
"#;

/// The last complete record of a JSONL file.
fn last_record(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    let body = bytes.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    serde_json::from_slice(&body[start..]).ok()
}

/// Kills that landed between a dead letter and its cursor advance: lines
/// that more than one generation worked on, per the dead-letter records and
/// the activity logs (a kill may land before or after the activity record).
fn dead_letter_kill_hits(agent: &AgentPaths) -> usize {
    let mut gens: BTreeMap<u64, HashSet<u64>> = BTreeMap::new();
    let logged = records(&agent.activity())
        .into_iter()
        .filter(|r| r["event"] == "message_dead_lettered");
    for r in records(&agent.deadletter()).into_iter().chain(logged) {
        gens.entry(r["offset"].as_u64().unwrap())
            .or_default()
            .insert(r["gen"].as_u64().unwrap());
    }
    gens.values().filter(|g| g.len() > 1).count()
}

#[test]
fn dead_letter_written_once_under_sigkill() {
    let mut s = Society::new(BIN, BAD_MAIL_TOML);
    s.start_supervisor();
    let sink = s.agent("sink");
    let mut pid = wait_until(Duration::from_secs(20), "sink to start", || {
        s.agent_pid("sink")
    });
    let mut bad = 0;
    let mut good = Vec::new();
    let mut kills = 0;
    while kills < 3 || dead_letter_kill_hits(&sink) < 2 {
        assert!(
            kills < 12,
            "{kills} kills, {} between a dead letter and its cursor advance",
            dead_letter_kill_hits(&sink)
        );
        // A burst of bad lines with a good message every tenth line, in one write.
        let mut burst = Vec::new();
        for i in 0..100 {
            if i % 10 == 9 {
                let env = Envelope::new(
                    Party::Orchestrator,
                    Party::Agent(AgentId::new("sink").unwrap()),
                    "task",
                    json!({ "i": i }),
                );
                good.push(env.id.to_string());
                burst.extend_from_slice(&env.to_line());
            } else {
                bad += 1;
                burst.extend_from_slice(format!("{{bad line {bad}").as_bytes());
            }
            burst.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(sink.inbox())
            .unwrap();
        std::io::Write::write_all(&mut f, &burst).unwrap();
        // Between a dead letter and the cursor advance past its line.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let cursor = agent_state(&sink).and_then(|c| c["inbox_offset"].as_u64());
            let last = last_record(&sink.deadletter()).and_then(|r| r["offset"].as_u64());
            if let (Some(cursor), Some(last)) = (cursor, last) {
                if last >= cursor {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "kill {kills}: never saw a dead letter before its cursor advance"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        kills += 1;
        pid = wait_until(
            Duration::from_secs(20),
            &format!("a new sink process after kill {kills}"),
            || s.agent_pid("sink").filter(|p| *p != pid),
        );
        // The rest of the burst is consumed before the next round.
        wait_until(Duration::from_secs(30), "the burst to be consumed", || {
            let ck = agent_state(&sink)?;
            (ck["inbox_offset"].as_u64()? == std::fs::metadata(sink.inbox()).ok()?.len())
                .then_some(())
        });
    }
    let dead = records(&sink.deadletter());
    let mut per_offset: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &dead {
        assert_eq!(r["event"], "dead_lettered");
        *per_offset.entry(r["offset"].as_u64().unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = per_offset.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "lines dead-lettered twice: {twice:?}");
    assert_eq!(dead.len(), bad, "one record per bad line");
    let ck = agent_state(&sink).unwrap();
    assert_eq!(ck["dead_lettered"], bad as u64);
    assert_eq!(ck["generation"], kills as u64 + 1);
    let orchestrator = s.layout().orchestrator_inbox();
    wait_until(
        Duration::from_secs(20),
        "the good messages' replies",
        || (replies_by_input(&orchestrator).len() >= good.len()).then_some(()),
    );
    assert_exactly_one_reply_each(&replies_by_input(&orchestrator), &good);
    assert!(s.stop_supervisor().success());
    assert!(s.processes().is_empty(), "orphans: {:?}", s.processes());
    eprintln!(
        "dead_letter_written_once_under_sigkill: {bad} bad lines, {kills} kills, {} hits",
        dead_letter_kill_hits(&sink)
    );
}

/// A power cut can lose what was not fsynced: the in-flight record
/// (`inflight.json`) and, if it came before the cut, the checkpoint written
/// after the outputs. Simulated by putting back the checkpoint of before the
/// message and removing the record: the next process handles the message
/// again, and its reply — already in the outbox — is not written twice.
#[test]
fn a_lost_in_flight_record_writes_no_output_twice() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let inbox = s.layout().orchestrator_inbox();
    let first = cli_send(&s, "echo", json!({"n": 1}), &[]);
    wait_reply(&s, &first);
    s.stop_supervisor();
    let echo = s.agent("echo");
    let before = std::fs::read(echo.checkpoint()).unwrap();
    // Three messages the cut will take back, handled one at a time.
    s.start_supervisor();
    let mut sent = vec![first];
    for n in 2..=4 {
        let id = append_message(&s, "echo", json!({ "n": n }));
        wait_reply(&s, &id);
        sent.push(id);
    }
    s.stop_supervisor();
    std::fs::write(echo.checkpoint(), &before).unwrap();
    std::fs::remove_file(echo.live_checkpoint()).unwrap();

    s.start_supervisor();
    wait_until(
        Duration::from_secs(20),
        "the messages handled again",
        || (handled(&echo) == 4).then_some(()),
    );
    s.stop_supervisor();
    assert_unique_ids(&echo.outbox());
    assert_exactly_one_reply_each(&replies_by_input(&echo.outbox()), &sent);
    assert_exactly_one_reply_each(&replies_by_input(&inbox), &sent);
}

/// A batch whose destinations' lengths are in the saved checkpoint (`ahead`)
/// is routed without a write-ahead record of its own. A supervisor killed
/// right after such a batch landed, before its cursor was saved: the next
/// one finds the records after those lengths and routes every line once.
#[test]
fn supervisor_killed_after_a_batch_landed_ahead_of_its_checkpoint() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    let first = cli_send(&s, "echo", json!({"n": 0}), &[]);
    wait_reply(&s, &first);
    let checkpoint = s.layout().supervisor_checkpoint();
    let inbox = s.layout().orchestrator_inbox();
    wait_until(SOON, "the reply's destinations recorded ahead", || {
        let ck = read_json(&checkpoint)?;
        let ahead = ck["ahead"].as_object()?;
        ahead.contains_key(inbox.to_str().unwrap()).then_some(())
    });
    s.stop_supervisor();
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "supervisor.batch.landed_ahead")]);
    let mut sent = vec![first];
    sent.extend((1..=5).map(|n| append_message(&s, "echo", json!({ "n": n }))));
    wait_until(SOON, "the supervisor to die after a batch landed", || {
        s.supervisor_exited().then_some(())
    });
    let landed = replies_by_input(&inbox).len();
    assert!(landed >= 2, "a reply landed before the crash: {landed}");
    s.start_supervisor();
    wait_until(SOON, "a reply to every message", || {
        (replies_by_input(&inbox).len() >= sent.len()).then_some(())
    });
    assert!(s.stop_supervisor().success());
    assert_exactly_one_reply_each(&replies_by_input(&inbox), &sent);
    assert_eq!(assert_unique_ids(&inbox), sent.len());
    assert_eq!(
        assert_unique_ids(&s.layout().agent_to_agent()),
        2 * sent.len(),
        "the mirror holds each input and each reply once"
    );
    let recovered = records(&s.layout().supervisor_activity())
        .into_iter()
        .any(|r| r["event"] == "batch_recovery" && r["sources"] == 1);
    assert!(
        recovered,
        "the second supervisor routed the outbox against what landed"
    );
}
