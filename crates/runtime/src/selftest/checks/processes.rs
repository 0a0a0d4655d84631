//! Checks of processes: SIGKILLs of agents and of the supervisor, the folder
//! lock, a hung agent, a crash loop, and more agents than inotify allows.

use super::{exactly_once, finish, flood, replies, wait_reply, T};
use crate::selftest::{ms, records, wait_until, Env, Failed};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use society_core::atomic::read_json;
use society_core::kinds::{event, message};
use society_core::state::{AgentStatus, LiveState};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const ECHO: &str = "[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n";

pub(super) fn sigkill_mid_message(env: &Env) -> Result<String, Failed> {
    let toml = "[defaults]\nbackoff_initial = \"5ms\"\nburst = 100\n[[agent]]\nid = \"worker\"\nkeep_alive = true\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"sleep\", ms = 15 }, { do = \"reply\" } ]\n";
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    s.wait_state("worker", "idle", T)?;
    let (n, kills) = (env.pick(40, 200), env.pick(3, 8));
    let sent = flood(&s, "worker", n)?;
    let status = s.agent("worker").status();
    // Each kill hits a different message: killing one message max_attempts
    // times would (rightly) dead-letter it.
    let mut victims = HashSet::new();
    while victims.len() < kills {
        let (pid, msg) = wait_until(T, "the worker mid-message", || {
            let st: AgentStatus = read_json(&status, "status").ok().flatten()?;
            let current = st.current.as_ref()?.id;
            (st.state == LiveState::Running
                && !victims.contains(&current)
                && s.agent_pid("worker").ok()? == Some(st.pid))
            .then_some((st.pid, current))
        })?;
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        victims.insert(msg);
        wait_until(T, "a new generation", || {
            s.agent_pid("worker").ok()?.filter(|p| *p != pid)
        })?;
    }
    wait_until(T, "every reply", || (replies(&s).len() >= n).then_some(()))?;
    exactly_once(&s, &sent)?;
    let gen = s.status("worker")?["generation"].as_u64().unwrap_or(0);
    ensure!(gen > kills as u64, "generation {gen} after {kills} kills");
    finish(&mut s)?;
    Ok(format!(
        "{n} messages, {kills} SIGKILLs mid-message: {n} replies, none doubled, generation {gen}"
    ))
}

pub(super) fn supervisor_sigkill(env: &Env) -> Result<String, Failed> {
    let mut s = env.scratch(ECHO)?;
    s.start_supervisor()?;
    s.wait_state("echo", "idle", T)?;
    let Some(pid) = s.agent_pid("echo")? else {
        return Err(Failed::Unmet("the idle agent holds no lock".into()));
    };
    s.kill_supervisor();
    let sent = flood(&s, "echo", 5)?;
    wait_until(T, "the orphaned agent to keep working", || {
        (s.status("echo").ok()?["handled"].as_u64() == Some(5)).then_some(())
    })?;
    s.start_supervisor()?;
    wait_until(T, "replies routed after adoption", || {
        (replies(&s).len() >= 5).then_some(())
    })?;
    exactly_once(&s, &sent)?;
    let now = s.agent_pid("echo")?;
    ensure!(
        now == Some(pid),
        "a twin was started: pid {now:?}, was {pid}"
    );
    let adopted = records(&s.layout().supervisor_activity())
        .iter()
        .any(|r| r["event"] == event::AGENT_ADOPTED && r["pid"] == pid);
    ensure!(adopted, "no agent_adopted record");
    finish(&mut s)?;
    Ok(format!(
        "agent pid {pid} kept working without a supervisor and was adopted; 5 replies routed once"
    ))
}

pub(super) fn lock_contention(env: &Env) -> Result<String, Failed> {
    let mut s = env.scratch(ECHO)?;
    s.start_supervisor()?;
    s.wait_state("echo", "idle", T)?;
    let t = Instant::now();
    let out = std::process::Command::new(&env.exe)
        .args(["agent-run", "--folder"])
        .arg(&s.agent("echo").dir)
        .output()
        .map_err(|e| Failed::io("run", &env.exe, e))?;
    ensure!(
        out.status.code() == Some(3),
        "second agent-run: {:?}",
        out.status
    );
    finish(&mut s)?;
    Ok(format!("second process exited 3 in {}", ms(t.elapsed())))
}

pub(super) fn hung_agent(env: &Env) -> Result<String, Failed> {
    let toml = "[defaults]\nhang_timeout = \"1s\"\nheartbeat = \"200ms\"\ngrace = \"300ms\"\n[[agent]]\nid = \"stuck\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"hang\", until_attempt = 1 }, { do = \"reply\" } ]\n";
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    let t = Instant::now();
    let id = s.ok(&["send", "stuck", "hang please"])?;
    wait_reply(&s, &id, "the reply from the restarted agent")?;
    let events = records(&s.layout().system_events());
    ensure!(
        events.iter().any(|e| e["event"] == event::AGENT_HUNG),
        "no agent_hung event"
    );
    finish(&mut s)?;
    Ok(format!(
        "hang detected, group killed, attempt 2 answered after {:.1}s",
        t.elapsed().as_secs_f64()
    ))
}

pub(super) fn crash_loop(env: &Env) -> Result<String, Failed> {
    let toml = "[defaults]\nburst = 2\nbackoff_initial = \"10ms\"\nmax_attempts = 20\n[[agent]]\nid = \"crashy\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ { do = \"exit\", until_attempt = 3 }, { do = \"reply\" } ]\n";
    let mut s = env.scratch(toml)?;
    s.start_supervisor()?;
    let id = s.ok(&["send", "crashy", "boom"])?;
    s.wait_state("crashy", "failed", T)?;
    s.ok(&["restart", "crashy", "--no-wait"])?;
    wait_reply(&s, &id, "the reply after restart")?;
    let esc = replies(&s)
        .iter()
        .filter(|r| r["type"] == message::ESCALATION)
        .count();
    ensure!(esc >= 1, "no escalation for the failed agent");
    finish(&mut s)?;
    Ok("3 crashes → failed (escalated to the orchestrator); restart → answered".into())
}

pub(super) fn many_agents(env: &Env) -> Result<String, Failed> {
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
    let mut s = env.scratch(&toml)?;
    let t = Instant::now();
    s.start_supervisor()?;
    let all_idle = || {
        (0..n)
            .all(|i| {
                let st: Option<AgentStatus> =
                    read_json(&s.agent(&format!("a{i}")).status(), "status")
                        .ok()
                        .flatten();
                st.is_some_and(|st| st.state == LiveState::Idle)
            })
            .then_some(())
    };
    wait_until(Duration::from_secs(120), "every agent idle", all_idle)?;
    let ready = t.elapsed();
    let mut sent = Vec::new();
    for i in 0..n {
        sent.extend(flood(&s, &format!("a{i}"), 1)?);
    }
    wait_until(Duration::from_secs(120), "a reply from every agent", || {
        (replies(&s).len() >= n).then_some(())
    })?;
    exactly_once(&s, &sent)?;
    finish(&mut s)?;
    Ok(format!(
        "{n} live agents (inotify limit {limit}) ready in {:.1}s, each answered once",
        ready.as_secs_f64()
    ))
}
