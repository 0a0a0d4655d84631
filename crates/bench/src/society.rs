//! The society side of every benchmark, run against the real binary.

use crate::stats::{summarize, Summary};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use society_core::jsonl::{append_one, read_lines, Appender, Durability};
use society_core::state::{AgentStatus, LiveState};
use society_core::{atomic, Envelope, Layout, Party};
use society_testkit::{wait_until, Society};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

fn echo_society(bin: &Path, durability: &str, agents: usize, extra: &str) -> Society {
    let mut toml =
        format!("[defaults]\ndurability = \"{durability}\"\nidle_exit = \"10m\"\n{extra}\n");
    for i in 0..agents {
        toml.push_str(&format!(
            "[[agent]]\nid = \"a{i}\"\nbrain = \"echo\"\nkeep_alive = true\n"
        ));
    }
    Society::new(bin, &toml)
}

/// Whether agent `id` reports itself idle in its `status.json`.
fn is_idle(layout: &Layout, id: &str) -> bool {
    let st: Option<AgentStatus> =
        atomic::read_json(&layout.agent(&id.parse().expect("id")).status(), "s")
            .ok()
            .flatten();
    st.is_some_and(|st| st.state == LiveState::Idle)
}

fn all_idle(s: &Society, n: usize) {
    let layout = s.layout();
    wait_until(T, "every agent idle", || {
        (0..n)
            .all(|i| is_idle(&layout, &format!("a{i}")))
            .then_some(())
    });
}

/// Waits until agent `id` is up and idle.
pub(crate) fn wait_idle(s: &Society, id: &str) {
    let layout = s.layout();
    wait_until(T, "the agent idle", || is_idle(&layout, id).then_some(()));
}

fn msg(to: &str, n: usize) -> Envelope {
    Envelope::new(
        Party::Orchestrator,
        to.parse().expect("id"),
        "task",
        json!({"n": n}),
    )
}

/// A file's length, 0 when it does not exist yet.
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Counts complete lines appended to a file since a cursor.
pub(crate) struct LineCounter {
    path: PathBuf,
    cursor: u64,
    count: usize,
}

impl LineCounter {
    pub(crate) fn new(path: PathBuf) -> LineCounter {
        let cursor = file_len(&path);
        LineCounter {
            path,
            cursor,
            count: 0,
        }
    }
    pub(crate) fn poll(&mut self) -> usize {
        if let Ok(b) = read_lines(&self.path, self.cursor, 8 << 20) {
            self.count += b.lines.len();
            self.cursor = b.next;
        }
        self.count
    }
    pub(crate) fn wait_for(&mut self, n: usize) {
        let deadline = Instant::now() + T;
        while self.poll() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} lines arrived",
                self.count
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Sequential round trips: append to the inbox, wait for the reply.
fn round_trips(s: &Society, to: &str, n: usize) -> Summary {
    let inbox = s.agent(to).inbox();
    let out = s.layout().orchestrator_inbox();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 20 {
        let before = file_len(&out);
        let t = Instant::now();
        append_one(&inbox, &msg(to, i).to_line(), Durability::Durable, 1 << 20).expect("append");
        let deadline = t + T;
        while file_len(&out) <= before {
            assert!(Instant::now() < deadline, "no reply");
            std::thread::sleep(Duration::from_micros(20));
        }
        if i >= 20 {
            samples.push(t.elapsed());
        }
    }
    summarize(samples)
}

/// G1: the cost of governance. One message at a time to two `script`
/// agents: `plain` replies; `decider` proposes an autonomous decision (the
/// runtime reads the policy, scores it against the learned state, logs two
/// lines in `decisions.jsonl` and updates `learning/`) whose `then` replies.
/// Returns (plain, decider).
pub fn g1(bin: &Path, n: usize) -> (Summary, Summary) {
    let toml = r#"
[defaults]
durability = "durable"
idle_exit = "10m"

[autonomy.baselines]
routine = "autonomous"

[[agent]]
id = "plain"
keep_alive = true
[agent.brain]
kind = "script"
[[agent.brain.rules]]
actions = [{ do = "reply" }]

[[agent]]
id = "decider"
keep_alive = true
[agent.brain]
kind = "script"
[[agent.brain.rules]]
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply" }]
[agent.brain.rules.actions.proposal]
decision_type = "routine"
scope = "scene"
affects_multiple_departments = false
is_foundational = false
reversibility = "easy"
resource_cost = 0
has_complete_information = true
features = { kind = "routine" }
plan = "answer message {{body.n}}"
"#;
    let mut s = Society::new(bin, toml);
    s.start_supervisor();
    let layout = s.layout();
    wait_until(T, "both agents idle", || {
        ["plain", "decider"]
            .iter()
            .all(|a| {
                atomic::read_json::<AgentStatus>(
                    &layout.agent(&a.parse().expect("id")).status(),
                    "s",
                )
                .ok()
                .flatten()
                .is_some_and(|st| st.state == LiveState::Idle)
            })
            .then_some(())
    });
    let plain = round_trips(&s, "plain", n);
    let decider = round_trips(&s, "decider", n);
    // Every one was a decision, assessed and resolved (2 lines each).
    let logged = read_lines(&s.agent("decider").decisions(), 0, 64 << 20)
        .map(|b| b.lines.len())
        .unwrap_or(0);
    assert!(
        logged >= 2 * n,
        "only {logged} decision lines for {n} decisions"
    );
    s.stop_supervisor();
    (plain, decider)
}

/// B1: one message at a time to one echo agent.
pub fn b1(bin: &Path, durability: &str, n: usize) -> Summary {
    let mut s = echo_society(bin, durability, 1, "");
    s.start_supervisor();
    all_idle(&s, 1);
    let r = round_trips(&s, "a0", n);
    s.stop_supervisor();
    r
}

/// B2: `n` messages in flight at once, spread over `agents` echo agents;
/// median messages per second over `runs` runs.
pub fn b2(bin: &Path, durability: &str, agents: usize, n: usize, runs: usize) -> f64 {
    // The defaults, untouched: they must carry this traffic.
    let mut s = echo_society(bin, durability, agents, "");
    s.start_supervisor();
    all_idle(&s, agents);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let mut replies = LineCounter::new(s.layout().orchestrator_inbox());
        let t = Instant::now();
        for a in 0..agents {
            let to = format!("a{a}");
            let batch: Vec<Vec<u8>> = (0..n / agents).map(|i| msg(&to, i).to_line()).collect();
            let mut inbox = Appender::open(&s.agent(&to).inbox(), Durability::Durable, usize::MAX)
                .expect("open");
            inbox.append_batch(&batch).expect("append");
        }
        replies.wait_for(n / agents * agents);
        rates.push((n / agents * agents) as f64 / t.elapsed().as_secs_f64());
    }
    s.stop_supervisor();
    crate::stats::median(rates)
}

/// B3: SIGKILL an agent under load → the new process has handled its next message.
pub fn b3(bin: &Path, durability: &str, kills: usize) -> Summary {
    let toml = format!(
        "[defaults]\ndurability = \"{durability}\"\nbackoff_initial = \"1ms\"\nburst = 100000\n[[agent]]\nid = \"w\"\nkeep_alive = true\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [ {{ do = \"sleep\", ms = 2 }}, {{ do = \"reply\" }} ]\n"
    );
    let mut s = Society::new(bin, &toml);
    s.start_supervisor();
    let paths = s.agent("w");
    wait_until(T, "worker up", || s.agent_pid("w"));
    let mut activity_cursor = 0;
    let mut samples = Vec::new();
    let mut sent = 0;
    for _ in 0..kills {
        let batch: Vec<Vec<u8>> = (0..30).map(|i| msg("w", sent + i).to_line()).collect();
        sent += 30;
        Appender::open(&paths.inbox(), Durability::Durable, usize::MAX)
            .expect("open")
            .append_batch(&batch)
            .expect("append");
        let (pid, gen) = wait_until(T, "worker mid-message", || {
            let st: AgentStatus = atomic::read_json(&paths.status(), "s").ok().flatten()?;
            (st.state == LiveState::Running && s.agent_pid("w") == Some(st.pid))
                .then_some((st.pid, st.gen))
        });
        let t = Instant::now();
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        let deadline = t + T;
        'wait: loop {
            assert!(
                Instant::now() < deadline,
                "no message handled after the kill"
            );
            if let Ok(b) = read_lines(&paths.activity(), activity_cursor, 8 << 20) {
                activity_cursor = b.next;
                for l in &b.lines {
                    let v: serde_json::Value = serde_json::from_slice(&l.bytes).unwrap_or_default();
                    if v["event"] == "message_handled" && v["gen"].as_u64().unwrap_or(0) > gen {
                        break 'wait;
                    }
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        samples.push(t.elapsed());
    }
    s.stop_supervisor();
    summarize(samples)
}

pub struct Startup {
    pub ready: Duration,
    pub rss_kib_per_agent: f64,
    /// Proportional set size: shared pages (the binary) split between sharers.
    pub pss_kib_per_agent: f64,
    pub idle_cpu_percent: f64,
}

/// B4: `n` keep-alive agents to ready; memory per idle agent; CPU while idle.
pub fn b4(bin: &Path, n: usize, idle_window: Duration) -> Startup {
    startup(echo_society(bin, "durable", n, ""), n, idle_window)
}

/// B4 in an organisation: the same `n` agents, three levels deep — `a0`
/// reports to the orchestrator, `a1`..`a10` lead teams under it, and every
/// other agent reports to one of those ten.
pub fn b4_hierarchy(bin: &Path, n: usize, idle_window: Duration) -> Startup {
    let mut toml = "[defaults]\ndurability = \"durable\"\nidle_exit = \"10m\"\n".to_string();
    for i in 0..n {
        let lead = match i {
            0 => String::new(),
            1..=10 => "reports_to = \"a0\"\n".into(),
            _ => format!("reports_to = \"a{}\"\n", 1 + i % 10),
        };
        toml.push_str(&format!(
            "[[agent]]\nid = \"a{i}\"\nbrain = \"echo\"\nkeep_alive = true\n{lead}"
        ));
    }
    startup(Society::new(bin, &toml), n, idle_window)
}

fn startup(mut s: Society, n: usize, idle_window: Duration) -> Startup {
    let t = Instant::now();
    let sup = s.start_supervisor();
    all_idle(&s, n);
    let ready = t.elapsed();
    let pids: Vec<u32> = (0..n)
        .filter_map(|i| s.agent_pid(&format!("a{i}")))
        .collect();
    let mut all = pids.clone();
    all.push(sup);
    std::thread::sleep(Duration::from_secs(2)); // settle after start-up before sampling idle CPU
    let before: u64 = all.iter().map(|p| cpu_ticks(*p)).sum();
    let t0 = Instant::now();
    std::thread::sleep(idle_window);
    let after: u64 = all.iter().map(|p| cpu_ticks(*p)).sum();
    // Memory once they have been idle a while (the settle and the window).
    let rss: u64 = pids.iter().map(|p| status_kib(*p, "VmRSS:")).sum();
    let pss: u64 = pids.iter().map(|p| pss_kib(*p)).sum();
    // USER_HZ, the unit of utime/stime in /proc/PID/stat.
    let tck: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let cpu = (after.saturating_sub(before)) as f64 / tck / t0.elapsed().as_secs_f64() * 100.0;
    s.stop_supervisor();
    let n = pids.len().max(1) as f64;
    Startup {
        ready,
        rss_kib_per_agent: rss as f64 / n,
        pss_kib_per_agent: pss as f64 / n,
        idle_cpu_percent: cpu,
    }
}

/// A `KiB` field of /proc/PID/status (`VmRSS:`), 0 when unreadable.
pub fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state(0) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(11) stime(12)
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

/// B5: `society status --json` with `n` dormant agent folders.
pub fn b5(bin: &Path, n: usize, runs: usize) -> Summary {
    status_times(&dormant_society(bin, n), runs)
}

/// A society of `n` dormant agent folders `a0`.. (config + checkpoint, no
/// supervisor): B5's, and the one D1 shows in the dashboard.
pub fn dormant_society(bin: &Path, n: usize) -> Society {
    let s = echo_society(bin, "durable", 0, "");
    let template = serde_json::json!({"id": "x", "role": "echo", "brain": {"kind": "echo"}, "keep_alive": false});
    for i in 0..n {
        let id = format!("a{i}");
        let paths = s.agent(&id);
        paths.create().expect("folder");
        let mut cfg = template.clone();
        cfg["id"] = json!(id);
        std::fs::write(paths.config(), serde_json::to_vec(&cfg).expect("json")).expect("config");
        std::fs::write(
            paths.checkpoint(),
            br#"{"generation":0,"inbox_offset":0,"in_flight":null}"#,
        )
        .expect("ckpt");
    }
    s
}

/// Wall time of whole `society status --json` processes, `runs` of them.
pub fn status_times(s: &Society, runs: usize) -> Summary {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = s
            .command(&["status", "--json"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("status");
        assert!(out.success());
        samples.push(t.elapsed());
    }
    summarize(samples)
}

/// B6: round trip with `consumed` handled lines already in the inbox.
pub fn b6(bin: &Path, consumed: usize, n: usize) -> Summary {
    // Retention off: this measures reading after a long consumed prefix.
    let mut s = echo_society(
        bin,
        "durable",
        1,
        "rotate_bytes = 1000000000000\nrotate_lines = 1000000000000",
    );
    // The supervisor provisions declared agents: start once, stop, then prefill.
    s.start_supervisor();
    all_idle(&s, 1);
    s.stop_supervisor();
    let inbox = s.agent("a0").inbox();
    let mut f = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&inbox)
            .expect("inbox"),
    );
    for i in 0..consumed {
        let mut line = msg("a0", i).to_line();
        line.push(b'\n');
        std::io::Write::write_all(&mut f, &line).expect("write");
    }
    drop(f);
    let offset = file_len(&inbox);
    std::fs::write(s.agent("a0").checkpoint(), serde_json::to_vec(&json!({"generation": 1, "inbox_offset": offset, "in_flight": null, "handled": consumed})).expect("json")).expect("ckpt");
    s.start_supervisor();
    all_idle(&s, 1);
    let r = round_trips(&s, "a0", n);
    s.stop_supervisor();
    r
}

/// Lines appended to a file that may be rotated (renamed into `archive/`)
/// meanwhile: reads the file it has open to its end, then follows the path
/// to the new live file.
struct FollowingCounter {
    path: PathBuf,
    file: Option<std::fs::File>,
    cursor: u64,
    partial: Vec<u8>,
    count: usize,
}

impl FollowingCounter {
    fn new(path: PathBuf) -> FollowingCounter {
        FollowingCounter {
            path,
            file: None,
            cursor: 0,
            partial: Vec::new(),
            count: 0,
        }
    }

    fn poll(&mut self) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        loop {
            if self.file.is_none() {
                self.file = std::fs::File::open(&self.path).ok();
                self.cursor = 0;
                self.partial.clear();
            }
            let Some(f) = self.file.as_mut() else {
                return self.count;
            };
            let mut buf = Vec::new();
            if f.seek(SeekFrom::Start(self.cursor)).is_ok() && f.read_to_end(&mut buf).is_ok() {
                self.cursor += buf.len() as u64;
                self.count += buf.iter().filter(|b| **b == b'\n').count();
            }
            let ours = f.metadata().map(|m| m.ino()).ok();
            let live = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
            if ours == live || live.is_none() {
                return self.count;
            }
            // Rotated: what we have open is archived and complete.
            self.file = None;
        }
    }

    fn wait_for(&mut self, n: usize) {
        let deadline = Instant::now() + T;
        while self.poll() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} lines arrived",
                self.count
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

/// R1 in numbers.
pub struct Retention {
    /// Bytes of the files outside `archive/` (apparent size).
    pub live: u64,
    /// The largest of them.
    pub largest: (String, u64),
    /// Bytes under `archive/` (compressed segments).
    pub archive: u64,
    /// Messages per second over the whole run.
    pub rate: f64,
}

fn sizes(dir: &Path, archive: &Path, out: &mut (u64, (String, u64), u64)) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            sizes(&p, archive, out);
        } else if p.starts_with(archive) {
            out.2 += m.len();
        } else {
            out.0 += m.len();
            if m.len() > out.1 .1 {
                out.1 = (p.display().to_string(), m.len());
            }
        }
    }
}

/// R1: `n` messages through one echo agent (orchestrator → agent →
/// orchestrator), in bursts of `burst`; then the bytes left in live files,
/// with retention at its defaults (`rotate`) or off.
pub fn r1(bin: &Path, n: usize, burst: usize, rotate: bool) -> Retention {
    let extra = if rotate {
        ""
    } else {
        "rotate_bytes = 1000000000000\nrotate_lines = 1000000000000"
    };
    let mut s = echo_society(bin, "durable", 1, extra);
    s.start_supervisor();
    all_idle(&s, 1);
    let mut replies = FollowingCounter::new(s.layout().orchestrator_inbox());
    let inbox = s.agent("a0").inbox();
    let t = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = burst.min(n - sent);
        let batch: Vec<Vec<u8>> = (0..k).map(|i| msg("a0", sent + i).to_line()).collect();
        Appender::open(&inbox, Durability::Durable, usize::MAX)
            .expect("open")
            .append_batch(&batch)
            .expect("append");
        sent += k;
        replies.wait_for(sent);
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    // The supervisor rotates at its 1 s scans; the agent when caught up.
    all_idle(&s, 1);
    std::thread::sleep(Duration::from_millis(2500));
    s.stop_supervisor();
    let layout = s.layout();
    let mut out = (0, (String::new(), 0), 0);
    sizes(layout.state_dir(), &layout.archive_dir(), &mut out);
    let state = layout.state_dir().display().to_string();
    let largest = (
        out.1
             .0
            .trim_start_matches(&state)
            .trim_start_matches('/')
            .to_string(),
        out.1 .1,
    );
    Retention {
        live: out.0,
        largest,
        archive: out.2,
        rate,
    }
}
