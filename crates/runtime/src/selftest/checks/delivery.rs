//! Checks of delivery: a round trip, a torn inbox line, a loop cut off under
//! the defaults, and fsck over a busy relay.

use super::{exactly_once, finish, flood, fsck, replies, wait_reply, T};
use crate::selftest::{ms, records, wait_until, Env, Failed, Scratch};
use society_core::kinds::event;
use std::time::{Duration, Instant};

const ECHO: &str = "[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n";

pub(super) fn round_trip(env: &Env) -> Result<String, Failed> {
    let mut s = env.scratch(ECHO)?;
    s.start_supervisor()?;
    s.wait_state("echo", "idle", T)?;
    let t = Instant::now();
    let id = s.ok(&["send", "echo", "ping"])?;
    wait_reply(&s, &id, "the reply")?;
    let took = t.elapsed();
    exactly_once(&s, &[id])?;
    finish(&mut s)?;
    Ok(format!("reply in {} (including the CLI process)", ms(took)))
}

pub(super) fn torn_tail(env: &Env) -> Result<String, Failed> {
    let mut s = env.scratch("[[agent]]\nid = \"echo\"\nbrain = \"echo\"\n")?;
    s.start_supervisor()?;
    let inbox = s.agent("echo").inbox();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&inbox)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"v\":1,\"id\":\"torn"))
        .map_err(|e| Failed::io("tear", &inbox, e))?;
    let id = s.ok(&["send", "echo", "after the tear"])?;
    wait_reply(&s, &id, "the reply after the tear")?;
    let dl = records(&s.agent("echo").deadletter());
    ensure!(dl.len() == 1, "one dead letter: {dl:?}");
    finish(&mut s)?;
    Ok(format!(
        "fragment dead-lettered at offset {} ({}); next message answered",
        dl[0]["offset"],
        dl[0]["reason"].as_str().unwrap_or("")
    ))
}

pub(super) fn message_loop(env: &Env) -> Result<String, Failed> {
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
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    s.ok(&["send", "ping", "start", "--type", "chat"])?;
    let refused = wait_until(T, "the loop to be cut off", || {
        let a = records(&s.agent("ping").deadletter());
        let b = records(&s.agent("pong").deadletter());
        a.into_iter()
            .chain(b)
            .find(|r| r["event"] == event::REFUSED)
    })?;
    let handled = |s: &Scratch| -> Option<u64> {
        Some(
            s.status("ping").ok()?["handled"].as_u64()?
                + s.status("pong").ok()?["handled"].as_u64()?,
        )
    };
    let settle = wait_until(T, "the loop to stay stopped", || {
        let before = handled(&s)?;
        std::thread::sleep(Duration::from_millis(300));
        (handled(&s)? == before).then_some(before)
    })?;
    ensure!(
        records(&s.layout().system_events())
            .iter()
            .any(|e| e["event"] == event::MESSAGE_REFUSED),
        "no message_refused system event"
    );
    finish(&mut s)?;
    Ok(format!(
        "stopped after {settle} messages: {}",
        refused["reason"].as_str().unwrap_or("")
    ))
}

pub(super) fn fsck_clean(env: &Env) -> Result<String, Failed> {
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
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    let sent = flood(&s, "relay", env.pick(20, 100))?;
    wait_until(T, "every reply", || {
        (replies(&s).len() >= sent.len()).then_some(())
    })?;
    // While the society is live, then after it stops.
    fsck(&s)?;
    let report = finish(&mut s)?;
    Ok(format!(
        "{} files, {} lines, no problem (live and stopped)",
        report.files, report.lines
    ))
}
