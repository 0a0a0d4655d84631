//! `society demo`: the offline demo. Builds a fresh society, runs a four-stage
//! pipeline of `script` agents, SIGKILLs one agent mid-message on purpose, and
//! proves from the files that nothing was lost and nothing done twice.

use super::exit::{coded, coded_hint, Code};
use super::progress;
use anyhow::Context;
use indicatif::ProgressBar;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use society_core::kinds::{case_log, event, message};
use society_core::lock::{self, LockState};
use society_core::state::{AgentStatus, LiveState};
use society_core::{atomic, AgentId, CaseId, Envelope, Layout, Party};
use society_runtime::client::{answers, case_control, supervisor};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SOCIETY_TOML: &str = include_str!("../../examples/demo/society.toml");
const TOPICS: [&str; 3] = ["honeybees", "tides", "volcanoes"];
const VICTIM: &str = "audio";

mod film_crew;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which demo: `pipeline` (the default: four stages and a SIGKILL) or
    /// `film-crew` (governance: decisions, debates, learning over twelve episodes).
    #[arg(value_name = "SCENARIO")]
    scenario: Option<String>,
    /// film-crew: how many episodes (6 to 50).
    #[arg(long, default_value_t = 12)]
    episodes: u32,
    /// film-crew: print the per-episode numbers as JSON.
    #[arg(long)]
    json: bool,
    /// Where to create the demo society (default: a new directory under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave the supervisor running at the end.
    #[arg(long)]
    keep_running: bool,
    /// Answer the approval requests yourself instead of auto-approving them.
    #[arg(long)]
    ask: bool,
}

pub fn run(args: Args) -> anyhow::Result<Code> {
    match args.scenario.as_deref() {
        None | Some("pipeline") => {}
        Some("film-crew") => {
            return film_crew::run(film_crew::Options {
                dir: args.dir,
                episodes: args.episodes,
                keep_running: args.keep_running,
                json: args.json,
            })
        }
        Some(other) => {
            return Err(coded(
                Code::Usage,
                format!("unknown demo {other:?}: expected pipeline or film-crew"),
            ))
        }
    }
    let dir = match args.dir {
        Some(d) => d,
        None => society_runtime::selftest::unique_dir("society-demo-")
            .context("failed to create a directory for the demo")?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let layout = Layout::at(&dir);
    if layout.state_dir().exists() {
        // The demo must make a society of its own there: the directory is
        // in use (exit 3, like `supervise` beside a running supervisor).
        let running = supervisor::supervisor_pid(&layout).map_or(String::new(), |pid| {
            format!(", its supervisor running (pid {pid})")
        });
        return Err(coded_hint(
            Code::Locked,
            format!("{} already holds a society{running}", dir.display()),
            format!(
                "choose another --dir (or none: the demo makes a fresh one), or {}remove {}",
                if running.is_empty() {
                    String::new()
                } else {
                    format!("stop it (`society --root {} down`) and ", dir.display())
                },
                layout.state_dir().display(),
            ),
        ));
    }
    layout.create()?;
    std::fs::write(layout.society_toml(), SOCIETY_TOML)?;
    let root = layout.root().display().to_string();
    outln!("society demo — a four-stage pipeline: research → script → audio → quality");
    outln!("  society root: {root}\n");
    let started = Instant::now();
    // The setup (a supervisor, a case per topic) takes a moment before the
    // first line of the story: a spinner says what it waits for.
    let setup = super::progress::spinner("starting the supervisor");
    let sup = supervisor::ensure_supervisor(&layout, &super::daemon::exe()?)?.pid();
    // From here on a supervisor and agents run: whatever happens next (a
    // failed check, a closed stdout), they are stopped before returning,
    // unless asked to keep running.
    let outcome = drive(&layout, sup, args.ask, setup);
    let elapsed = started.elapsed();
    if !args.keep_running {
        let stopped = supervisor::down(&layout, Duration::from_secs(30));
        if outcome.is_ok() {
            stopped?;
            outln!("\nsupervisor (pid {sup}) stopped; every agent is down");
        }
    }
    let (cases, report) = outcome?;
    outln!("\nsummary ({:.1}s)", elapsed.as_secs_f64());
    for line in &report {
        outln!("  ✓ {line}");
    }
    if let Some((case, topic)) = cases.iter().next() {
        outln!("\ntimeline of case {case} ({topic}):");
        for r in all_records(&layout.case_log(case)) {
            let ts = r["ts"].as_str().unwrap_or_default();
            let detail = progress_line(&r).unwrap_or_else(|| {
                format!(
                    "{} {} → {}",
                    r["type"].as_str().unwrap_or(""),
                    r["from"].as_str().unwrap_or(""),
                    r["to"].as_str().unwrap_or("")
                )
            });
            outln!(
                "  {} {:<18} {detail}",
                ts.get(11..23).unwrap_or(ts),
                r["event"].as_str().unwrap_or("?")
            );
        }
    }
    outln!("\nlook inside:");
    outln!("  society --root {root} status");
    outln!("  society --root {root} logs -n 30");
    if let Some(case) = cases.keys().next() {
        outln!("  society --root {root} case show {case}");
    }
    outln!("  society --root {root} inbox");
    outln!("  tail -f {root}/.society-agent/messages/agent-to-agent.jsonl");
    outln!(
        "  jq -c 'select(.event==\"started\")' {root}/.society-agent/agent-{VICTIM}/activity.jsonl"
    );
    outln!("  grep -h '\"event\":\"agent_' {root}/.society-agent/messages/system-events.jsonl | jq -c '{{ts,event,agent,code,signal}}'");
    if !args.keep_running {
        outln!("  society --root {root} up      # start it again");
    }
    Ok(Code::Ok)
}

/// Opens a case per topic, sends the tasks, watches them to the end and
/// verifies the files; the cases and what was verified.
fn drive(
    layout: &Layout,
    sup: u32,
    ask: bool,
    setup: ProgressBar,
) -> anyhow::Result<(BTreeMap<CaseId, &'static str>, Vec<String>)> {
    progress::outln(
        &setup,
        &format!("  supervisor up (pid {sup}); agents start on demand when mail arrives\n"),
    )?;
    let mut cases = BTreeMap::new();
    for (i, topic) in TOPICS.into_iter().enumerate() {
        setup.set_message(format!("opening case {}/{}: {topic}", i + 1, TOPICS.len()));
        let new = case_control::NewCase {
            purpose: format!("a podcast episode on {topic}"),
            assign: None,
            priority: Some("normal".into()),
            due: Some(Duration::from_secs(3600)),
        };
        let case = case_control::request_open(layout, &new)?;
        let mut env = Envelope::new(
            Party::Orchestrator,
            Party::Role("research".into()),
            "task",
            json!({"topic": topic}),
        );
        env.case = Some(case.clone());
        let done = society_runtime::client::send::deliver(layout, &env)?;
        setup.suspend(|| super::render::warn(&done.warnings));
        progress::outln(&setup, &format!("  → sent task {topic:<10} case {case}"))?;
        cases.insert(case, topic);
    }
    setup.finish_and_clear();
    outln!();
    let killed = watch(layout, &cases, ask)?;
    let report = verify(layout, &cases, killed)?;
    Ok((cases, report))
}

/// Prints progress until every case has its result; SIGKILLs the victim once,
/// mid-message. Returns the generation that was killed.
fn watch(layout: &Layout, cases: &BTreeMap<CaseId, &str>, ask: bool) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut cursors: HashMap<PathBuf, u64> = HashMap::new();
    let mut killed = None;
    let mut results = 0;
    let victim = layout.agent(&AgentId::new(VICTIM)?);
    while results < cases.len() {
        if Instant::now() >= deadline {
            return Err(coded(
                Code::CheckFailed,
                format!(
                    "only {results} of {} results arrived within 90s",
                    cases.len()
                ),
            ));
        }
        for (case, topic) in cases {
            for v in new_records(&layout.case_log(case), &mut cursors) {
                if let Some(line) = progress_line(&v) {
                    outln!("  [{topic:<10}] {line}");
                }
            }
        }
        for v in new_records(&layout.system_events(), &mut cursors) {
            let event = v["event"].as_str().unwrap_or_default();
            let agent = v["agent"].as_str().unwrap_or("-");
            match event {
                event::AGENT_STARTED if v["reason"] == "restart" => {
                    outln!("  ⟳ supervisor restarted {agent} (pid {})", v["pid"]);
                }
                event::AGENT_EXITED if v["signal"].is_string() => {
                    outln!(
                        "  ✗ supervisor reaped {agent}: {}",
                        v["signal"].as_str().unwrap_or_default()
                    );
                }
                event::AGENT_BACKOFF => outln!("  … {agent} restarts in {} ms", v["delay_ms"]),
                _ => {}
            }
        }
        for v in new_records(&layout.orchestrator_inbox(), &mut cursors) {
            match v["type"].as_str() {
                Some("result") => {
                    results += 1;
                    outln!(
                        "  ★ result for {}: {}",
                        v["body"]["topic"].as_str().unwrap_or("?"),
                        v["body"]["verdict"].as_str().unwrap_or("?")
                    );
                }
                Some(message::APPROVAL_REQUEST) => answer(layout, &v, ask)?,
                _ => {}
            }
        }
        if killed.is_none() {
            if let Some((pid, gen, msg)) = mid_message(&victim.status(), &victim.lock()) {
                kill(Pid::from_raw(pid as i32), Signal::SIGKILL)
                    .with_context(|| format!("failed to SIGKILL {VICTIM}"))?;
                outln!("  💥 SIGKILL {VICTIM} (pid {pid}, generation {gen}) in the middle of message {msg}");
                killed = Some(gen);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.ok_or_else(|| {
        coded(
            Code::CheckFailed,
            "the demo never caught the audio agent mid-message",
        )
    })
}

/// One progress line for a case-log record, or none for plumbing records.
fn progress_line(v: &Value) -> Option<String> {
    let agent = v["agent"].as_str().unwrap_or("-");
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    Some(match v["event"].as_str()? {
        case_log::CREATED => format!("case opened: {}", s("purpose")),
        case_log::ASSIGNED => format!("assigned to {}", s("to")),
        case_log::HANDOFF => format!("handoff {} → {}", s("from"), s("to")),
        case_log::AGENT_REPORT => format!("{agent:<9} {}", s("report")),
        case_log::APPROVAL_REQUESTED => format!("{agent:<9} asks the orchestrator: {}", s("plan")),
        case_log::APPROVED => "orchestrator approved".to_string(),
        case_log::REJECTED => format!("orchestrator rejected: {}", s("note")),
        case_log::COMPLETED => format!("{agent:<9} completed ({})", s("verdict")),
        case_log::ESCALATED => format!("escalated: {}", s("reason")),
        _ => return None,
    })
}

/// Answers an approval request: automatically, or by asking on the terminal.
fn answer(layout: &Layout, v: &Value, ask: bool) -> anyhow::Result<()> {
    let id: society_core::MsgId = v["id"].as_str().unwrap_or_default().parse()?;
    let plan = v["body"]["plan"].as_str().unwrap_or("?");
    let (approve, note) = if ask {
        out!("  ? approve \"{plan}\"? [Y/n, or type feedback to reject] ");
        std::io::Write::flush(&mut std::io::stdout())?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        match line.trim() {
            "" | "y" | "Y" | "yes" => (true, Some("approved by hand".to_string())),
            "n" | "N" | "no" => (false, Some("rejected by hand".to_string())),
            feedback => (false, Some(feedback.to_string())),
        }
    } else {
        outln!("  ✔ auto-approving \"{plan}\" (run the demo with --ask to answer yourself)");
        (true, Some("auto-approved by the demo".to_string()))
    };
    answers::decide(layout, &id, approve, note)?;
    Ok(())
}

/// The victim's pid, generation and message, if it is handling one right now.
fn mid_message(status: &Path, lock_path: &Path) -> Option<(u32, u64, String)> {
    let st: AgentStatus = atomic::read_json(status, "agent status").ok().flatten()?;
    let LockState::Held(Some(info)) = lock::probe(lock_path).ok()? else {
        return None;
    };
    let current = st.current.as_ref()?;
    (st.state == LiveState::Running && st.pid == info.pid)
        .then(|| (st.pid, st.gen, current.id.to_string()))
}

fn new_records(path: &Path, cursors: &mut HashMap<PathBuf, u64>) -> Vec<Value> {
    let cursor = cursors.entry(path.to_path_buf()).or_insert(0);
    society_core::jsonl::read_objects(path, cursor).unwrap_or_default()
}

/// Checks the promises from the files: one result per case, no duplicate ids
/// in any inbox, outbox or mirror, no duplicated case events, a new generation.
fn verify(
    layout: &Layout,
    cases: &BTreeMap<CaseId, &str>,
    killed_gen: u64,
) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    let results: Vec<Value> = all_records(&layout.orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "result")
        .collect();
    let mut per_case: HashMap<String, usize> = HashMap::new();
    for r in &results {
        *per_case
            .entry(r["case"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    for (case, topic) in cases {
        let n = per_case.get(case.as_str()).copied().unwrap_or(0);
        if n != 1 {
            return Err(coded(
                Code::CheckFailed,
                format!("case {case} ({topic}) has {n} results, expected exactly 1"),
            ));
        }
    }
    report.push(format!(
        "{} tasks in, {} results out: exactly one per case",
        cases.len(),
        results.len()
    ));
    let mut files = vec![layout.orchestrator_inbox(), layout.agent_to_agent()];
    for id in layout.agent_ids()? {
        files.push(layout.agent(&id).inbox());
        files.push(layout.agent(&id).outbox());
    }
    let mut lines = 0;
    for f in &files {
        let recs = all_records(f);
        lines += recs.len();
        let mut seen = HashSet::new();
        for r in &recs {
            let id = r["id"].as_str().unwrap_or_default();
            if !seen.insert(id.to_string()) {
                return Err(coded(
                    Code::CheckFailed,
                    format!("message {id} appears twice in {}", f.display()),
                ));
            }
        }
    }
    report.push(format!(
        "no duplicate message id in {} files ({lines} records)",
        files.len()
    ));
    for case in cases.keys() {
        let mut seen = HashSet::new();
        for r in all_records(&layout.case_log(case)) {
            let key = format!(
                "{}/{}",
                r["id"].as_str().unwrap_or_default(),
                r["event"].as_str().unwrap_or_default()
            );
            if !seen.insert(key.clone()) {
                return Err(coded(
                    Code::CheckFailed,
                    format!("case {case}: event {key} recorded twice"),
                ));
            }
        }
    }
    report.push("every case timeline has each event exactly once".into());
    for case in cases.keys() {
        let status = society_core::case::CaseSummary::fold(
            case.as_str(),
            &all_records(&layout.case_log(case)),
        )
        .status;
        if status != society_core::case::CaseStatus::Resolved {
            return Err(coded(
                Code::CheckFailed,
                format!("case {case} ended {}, expected resolved", status.as_str()),
            ));
        }
    }
    report.push("every case was approved by the orchestrator and is resolved".into());
    let ckpt = society_core::state::AgentCheckpoint::read(&layout.agent(&AgentId::new(VICTIM)?))?
        .unwrap_or_default();
    if ckpt.generation <= killed_gen {
        return Err(coded(
            Code::CheckFailed,
            format!("{VICTIM} is still at generation {}", ckpt.generation),
        ));
    }
    report.push(format!(
        "{VICTIM} was SIGKILLed in generation {killed_gen}; generation {} finished its work (at-least-once in, effectively-once out)",
        ckpt.generation
    ));
    Ok(report)
}

fn all_records(path: &Path) -> Vec<Value> {
    society_core::jsonl::read_objects(path, &mut 0).unwrap_or_default()
}
