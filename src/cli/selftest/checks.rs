//! The self-test checks. Each returns its evidence or panics with the reason
//! (caught by the runner). Sizes shrink with `--quick`.

use super::{ms, Check};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Env {
    pub exe: PathBuf,
    pub quick: bool,
}

impl Env {
    fn society(&self, toml: &str) -> Society {
        Society::new(&self.exe, toml)
    }
    fn pick(&self, quick: usize, full: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

const T: Duration = Duration::from_secs(30);

pub static ALL: [Check; 12] = [
    Check {
        name: "round_trip",
        promise: "a message to an echo agent comes back once",
        run: round_trip,
    },
    Check {
        name: "multi_stage_case",
        promise: "a case runs through three agents with every event once",
        run: multi_stage_case,
    },
    Check {
        name: "sigkill_mid_message",
        promise: "SIGKILL mid-message loses and doubles nothing",
        run: sigkill_mid_message,
    },
    Check {
        name: "supervisor_sigkill",
        promise: "agents outlive a SIGKILLed supervisor and are adopted",
        run: supervisor_sigkill,
    },
    Check {
        name: "torn_tail",
        promise: "a torn inbox line is dead-lettered, the next message handled",
        run: torn_tail,
    },
    Check {
        name: "lock_contention",
        promise: "a second process on a folder exits with code 3",
        run: lock_contention,
    },
    Check {
        name: "hung_agent",
        promise: "a hung agent is killed and restarted",
        run: hung_agent,
    },
    Check {
        name: "crash_loop",
        promise: "a crash loop ends in failed; restart recovers",
        run: crash_loop,
    },
    Check {
        name: "approval_restarts",
        promise: "an approval survives restarts of everything",
        run: approval_restarts,
    },
    Check {
        name: "message_loop",
        promise: "two agents messaging each other forever are cut off, under the defaults",
        run: message_loop,
    },
    Check {
        name: "many_agents",
        promise: "more agents than inotify instances allow",
        run: many_agents,
    },
    Check {
        name: "fsck_clean",
        promise: "fsck finds a busy society clean",
        run: fsck_clean,
    },
];

/// Sends `n` messages straight into an agent's inbox (the CLI's own path is
/// exercised by the other checks); returns their ids.
fn flood(s: &Society, to: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let env = Envelope::new(
                Party::Orchestrator,
                to.parse().expect("agent id"),
                "task",
                json!({"n": i}),
            );
            append_one(
                &s.agent(to).inbox(),
                &env.to_line(),
                Durability::Durable,
                1 << 20,
            )
            .expect("append");
            env.id.to_string()
        })
        .collect()
}

fn replies(s: &Society) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
}

/// Every sent id answered exactly once, and no id twice in the inbox.
fn exactly_once(s: &Society, sent: &[String]) {
    let got = replies(s);
    let mut seen = std::collections::HashSet::new();
    for r in &got {
        assert!(
            seen.insert(r["id"].as_str().unwrap_or_default().to_string()),
            "duplicate reply id {}",
            r["id"]
        );
    }
    for id in sent {
        let n = got.iter().filter(|r| r["reply_to"] == *id).count();
        assert_eq!(n, 1, "message {id} has {n} replies");
    }
}

fn fsck(s: &Society) {
    let report = society_runtime::fsck::run(&s.layout(), false).expect("fsck runs");
    let problems: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == society_runtime::fsck::Severity::Problem)
        .map(|f| format!("{}: {}", f.check, f.reason))
        .collect();
    assert!(problems.is_empty(), "fsck: {problems:?}");
}

fn round_trip(env: &Env) -> String {
    let mut s = env.society("[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n");
    s.start_supervisor();
    s.wait_state("echo", "idle", T);
    let t = Instant::now();
    let id = s.ok(&["send", "echo", "ping"]);
    wait_until(T, "the reply", || {
        replies(&s)
            .iter()
            .any(|r| r["reply_to"] == *id)
            .then_some(())
    });
    let took = t.elapsed();
    exactly_once(&s, &[id]);
    s.stop_supervisor();
    fsck(&s);
    format!("reply in {} (including the CLI process)", ms(took))
}

fn multi_stage_case(env: &Env) -> String {
    let toml = r#"
[[agent]]
id = "one"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "case_event", event = "stage_one" }, { do = "forward", to = "two" } ]
[[agent]]
id = "two"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "case_event", event = "stage_two" }, { do = "forward", to = "three" } ]
[[agent]]
id = "three"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [ { do = "case_event", event = "completed" }, { do = "send", to = "orchestrator", type = "result", body = { done = true } } ]
"#;
    let mut s = env.society(toml);
    s.start_supervisor();
    let case = s.ok(&["case", "new", "selftest pipeline", "--assign", "one"]);
    s.ok(&["send", "one", "go", "--case", &case]);
    wait_until(T, "the case to resolve", || {
        let v: Value = serde_json::from_str(&s.ok(&["case", "show", &case, "--json"])).ok()?;
        (v["case"]["status"] == "resolved").then_some(())
    });
    let v: Value = serde_json::from_str(&s.ok(&["case", "show", &case, "--json"])).expect("json");
    let events: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for want in [
        "created",
        "assigned",
        "handoff",
        "agent_report",
        "completed",
    ] {
        assert!(events.contains(&want), "case log lacks {want}: {events:?}");
    }
    let keys: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["src"].as_str())
        .collect();
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a case event is doubled");
    s.stop_supervisor();
    fsck(&s);
    format!(
        "{} case events, each once, status resolved, owner {}",
        events.len(),
        v["case"]["owner"]
    )
}

fn sigkill_mid_message(env: &Env) -> String {
    let toml = "[defaults]\nbackoff_initial = \"5ms\"\nburst = 100\n[[agent]]\nid = \"worker\"\nkeep_alive = true\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"sleep\", ms = 15 }, { do = \"reply\" } ]\n";
    let mut s = env.society(toml);
    s.start_supervisor();
    s.wait_state("worker", "idle", T);
    let (n, kills) = (env.pick(40, 200), env.pick(3, 8));
    let sent = flood(&s, "worker", n);
    let status = s.agent("worker").status();
    // Each kill hits a different message: killing one message max_attempts
    // times would (rightly) dead-letter it.
    let mut victims = std::collections::HashSet::new();
    while victims.len() < kills {
        let (pid, msg) = wait_until(T, "the worker mid-message", || {
            let st: society_core::state::AgentStatus =
                society_core::atomic::read_json(&status, "status")
                    .ok()
                    .flatten()?;
            let current = st.current.as_ref()?.id;
            (st.state == society_core::state::LiveState::Running
                && !victims.contains(&current)
                && s.agent_pid("worker") == Some(st.pid))
            .then_some((st.pid, current))
        });
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        victims.insert(msg);
        wait_until(T, "a new generation", || {
            s.agent_pid("worker").filter(|p| *p != pid)
        });
    }
    wait_until(T, "every reply", || (replies(&s).len() >= n).then_some(()));
    exactly_once(&s, &sent);
    let gen = s.status("worker")["generation"].as_u64().unwrap_or(0);
    assert!(gen > kills as u64, "generation {gen} after {kills} kills");
    s.stop_supervisor();
    fsck(&s);
    format!(
        "{n} messages, {kills} SIGKILLs mid-message: {n} replies, none doubled, generation {gen}"
    )
}

fn supervisor_sigkill(env: &Env) -> String {
    let mut s = env.society("[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n");
    s.start_supervisor();
    s.wait_state("echo", "idle", T);
    let pid = s.agent_pid("echo").expect("agent up");
    s.kill_supervisor();
    let sent = flood(&s, "echo", 5);
    wait_until(T, "the orphaned agent to keep working", || {
        (s.status("echo")["handled"].as_u64() == Some(5)).then_some(())
    });
    s.start_supervisor();
    wait_until(T, "replies routed after adoption", || {
        (replies(&s).len() >= 5).then_some(())
    });
    exactly_once(&s, &sent);
    assert_eq!(s.agent_pid("echo"), Some(pid), "a twin was started");
    let adopted = records(&s.layout().supervisor_activity())
        .iter()
        .any(|r| r["event"] == "agent_adopted" && r["pid"] == pid);
    assert!(adopted, "no agent_adopted record");
    s.stop_supervisor();
    fsck(&s);
    format!(
        "agent pid {pid} kept working without a supervisor and was adopted; 5 replies routed once"
    )
}

fn torn_tail(env: &Env) -> String {
    let mut s = env.society("[[agent]]\nid = \"echo\"\nbrain = \"echo\"\n");
    s.start_supervisor();
    std::fs::OpenOptions::new()
        .append(true)
        .open(s.agent("echo").inbox())
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"v\":1,\"id\":\"torn"))
        .expect("inject");
    let id = s.ok(&["send", "echo", "after the tear"]);
    wait_until(T, "the reply after the tear", || {
        replies(&s)
            .iter()
            .any(|r| r["reply_to"] == *id)
            .then_some(())
    });
    let dl = records(&s.agent("echo").deadletter());
    assert_eq!(dl.len(), 1, "one dead letter: {dl:?}");
    s.stop_supervisor();
    fsck(&s);
    format!(
        "fragment dead-lettered at offset {} ({}); next message answered",
        dl[0]["offset"],
        dl[0]["reason"].as_str().unwrap_or("")
    )
}

fn lock_contention(env: &Env) -> String {
    let mut s = env.society("[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n");
    s.start_supervisor();
    s.wait_state("echo", "idle", T);
    let t = Instant::now();
    let out = std::process::Command::new(&env.exe)
        .args(["agent-run", "--folder"])
        .arg(&s.agent("echo").dir)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(3),
        "second agent-run: {:?}",
        out.status
    );
    s.stop_supervisor();
    fsck(&s);
    format!("second process exited 3 in {}", ms(t.elapsed()))
}

fn hung_agent(env: &Env) -> String {
    let toml = "[defaults]\nhang_timeout = \"1s\"\nheartbeat = \"200ms\"\ngrace = \"300ms\"\n[[agent]]\nid = \"stuck\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"hang\", until_attempt = 1 }, { do = \"reply\" } ]\n";
    let mut s = env.society(toml);
    s.start_supervisor();
    let t = Instant::now();
    let id = s.ok(&["send", "stuck", "hang please"]);
    wait_until(T, "the reply from the restarted agent", || {
        replies(&s)
            .iter()
            .any(|r| r["reply_to"] == *id)
            .then_some(())
    });
    let events = records(&s.layout().system_events());
    assert!(
        events.iter().any(|e| e["event"] == "agent_hung"),
        "no agent_hung event"
    );
    s.stop_supervisor();
    fsck(&s);
    format!(
        "hang detected, group killed, attempt 2 answered after {:.1}s",
        t.elapsed().as_secs_f64()
    )
}

fn crash_loop(env: &Env) -> String {
    let toml = "[defaults]\nburst = 2\nbackoff_initial = \"10ms\"\nmax_attempts = 20\n[[agent]]\nid = \"crashy\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"exit\", until_attempt = 3 }, { do = \"reply\" } ]\n";
    let mut s = env.society(toml);
    s.start_supervisor();
    let id = s.ok(&["send", "crashy", "boom"]);
    s.wait_state("crashy", "failed", T);
    s.ok(&["restart", "crashy", "--no-wait"]);
    wait_until(T, "the reply after restart", || {
        replies(&s)
            .iter()
            .any(|r| r["reply_to"] == *id)
            .then_some(())
    });
    let esc = replies(&s)
        .iter()
        .filter(|r| r["type"] == "escalation")
        .count();
    assert!(esc >= 1, "no escalation for the failed agent");
    s.stop_supervisor();
    fsck(&s);
    "3 crashes → failed (escalated to the orchestrator); restart → answered".into()
}

fn approval_restarts(env: &Env) -> String {
    let toml = r#"
[defaults]
idle_exit = "300ms"
[[agent]]
id = "asker"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "request_approval", plan = "ship {{body.text}}" } ]
[[agent.brain.rules]]
type = "approval_response"
when = { decision = "approved" }
actions = [ { do = "send", to = "orchestrator", type = "result", body = { shipped = "{{body.parked.body.text}}" } } ]
"#;
    let mut s = env.society(toml);
    s.start_supervisor();
    s.ok(&["send", "asker", "v1"]);
    let request = wait_until(T, "the approval request", || {
        let v: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).ok()?;
        v.as_array()?.first()?["id"].as_str().map(String::from)
    });
    s.kill_supervisor();
    s.wait_state("asker", "dormant", T);
    let v: Value = serde_json::from_str(&s.ok(&["approvals", "--json"])).expect("json");
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(1),
        "the request is not pending after the kill"
    );
    s.ok(&["approve", &request, "--note", "selftest"]);
    s.start_supervisor();
    let shipped = wait_until(T, "the parked message to resume", || {
        replies(&s)
            .into_iter()
            .find(|r| r["type"] == "result")
            .map(|r| r["body"]["shipped"].clone())
    });
    assert_eq!(shipped, "v1");
    s.stop_supervisor();
    fsck(&s);
    "request survived a SIGKILLed supervisor and a dormant agent; approved while down; parked message resumed once".into()
}

fn message_loop(env: &Env) -> String {
    // The defaults, untouched: they cut this loop.
    let toml = r#"
[[agent]]
id = "ping"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "chat"
actions = [ { do = "send", to = "pong", type = "chat", body = { text = "again" } } ]
[[agent]]
id = "pong"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "chat"
actions = [ { do = "send", to = "ping", type = "chat", body = { text = "again" } } ]
"#;
    let mut s = env.society(toml);
    s.start_supervisor();
    s.ok(&["send", "ping", "start", "--type", "chat"]);
    let refused = wait_until(T, "the loop to be cut off", || {
        let a = records(&s.agent("ping").deadletter());
        let b = records(&s.agent("pong").deadletter());
        a.into_iter().chain(b).find(|r| r["event"] == "refused")
    });
    let handled = |s: &Society| {
        s.status("ping")["handled"].as_u64().unwrap_or(0)
            + s.status("pong")["handled"].as_u64().unwrap_or(0)
    };
    let settle = wait_until(T, "the loop to stay stopped", || {
        let before = handled(&s);
        std::thread::sleep(Duration::from_millis(300));
        (handled(&s) == before).then_some(before)
    });
    assert!(records(&s.layout().system_events())
        .iter()
        .any(|e| e["event"] == "message_refused"));

    s.stop_supervisor();
    fsck(&s);
    format!(
        "stopped after {settle} messages: {}",
        refused["reason"].as_str().unwrap_or("")
    )
}

fn many_agents(env: &Env) -> String {
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(128);
    let n = env.pick(limit + 2, (limit + 2).max(300));
    let mut toml = String::new();
    for i in 0..n {
        toml.push_str(&format!(
            "[[agent]]\nid = \"a{i}\"\nbrain = \"echo\"\nkeep_alive = true\n"
        ));
    }
    let mut s = env.society(&toml);
    let t = Instant::now();
    s.start_supervisor();
    let layout = s.layout();
    wait_until(Duration::from_secs(120), "every agent idle", || {
        (0..n)
            .all(|i| {
                let st: Option<society_core::state::AgentStatus> = society_core::atomic::read_json(
                    &layout.agent(&format!("a{i}").parse().expect("id")).status(),
                    "s",
                )
                .ok()
                .flatten();
                st.is_some_and(|st| st.state == society_core::state::LiveState::Idle)
            })
            .then_some(())
    });
    let ready = t.elapsed();
    let sent: Vec<String> = (0..n)
        .flat_map(|i| flood(&s, &format!("a{i}"), 1))
        .collect();
    wait_until(Duration::from_secs(120), "a reply from every agent", || {
        (replies(&s).len() >= n).then_some(())
    });
    exactly_once(&s, &sent);
    s.stop_supervisor();
    fsck(&s);
    format!(
        "{n} live agents (inotify limit {limit}) ready in {:.1}s, each answered once",
        ready.as_secs_f64()
    )
}

fn fsck_clean(env: &Env) -> String {
    let toml = r#"
[[agent]]
id = "echo"
brain = "echo"
[[agent]]
id = "relay"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "task"
actions = [ { do = "forward", to = "echo" } ]
[[agent.brain.rules]]
type = "reply"
actions = [ { do = "send", to = "orchestrator", type = "result", body = { n = "{{body.n}}" } } ]
"#;
    let mut s = env.society(toml);
    s.start_supervisor();
    let sent = flood(&s, "relay", env.pick(20, 100));
    wait_until(T, "every reply", || {
        (replies(&s).len() >= sent.len()).then_some(())
    });
    // While the society is live, then after it stops.
    fsck(&s);
    s.stop_supervisor();
    fsck(&s);
    let report = society_runtime::fsck::run(&s.layout(), false).expect("fsck");
    format!(
        "{} files, {} lines, no problem (live and stopped)",
        report.files, report.lines
    )
}
