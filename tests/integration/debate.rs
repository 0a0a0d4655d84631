//! Debates moderated by the supervisor, end to end with real processes:
//! script agents propose (a hand-built `debate_request`, as the agent-side
//! `decide` action will send) and answer round requests; the supervisor
//! opens the case, runs the rounds, and ends in consensus or in an approval
//! request the orchestrator answers. SIGKILLs of a participant and of the
//! supervisor mid-debate must leave exactly one outcome.

use crate::support::{json_of, read_json, BIN, SOON};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_core::lock::{self, LockState};
use society_core::CaseId;
use society_testkit::{records, wait_until, Society};
use std::collections::HashSet;

/// Episode 11 (SOCIETY.md §4): the director proposes `{contrast: high}`, the
/// dp answers `{contrast: high, haze: yes}` (agreement 0.5); in round 2 the
/// director adopts haze (1.0). `{{DP_SLEEP}}` slows the dp's first attempt
/// at round 1 (for kills), `{{LIMIT}}` is the time limit and `{{PACE}}` the
/// minimum interval between iterations.
const EPISODE_11: &str = r#"
[defaults]
heartbeat = "100ms"
backoff_initial = "50ms"
idle_exit = "2s"

[[agent]]
id = "director"
role = "director"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "go"
actions = [
  { do = "send", to = "supervisor", type = "debate_request", body = { decision = "ep11-lighting", agent = "director", decision_type = "lighting", plan = { contrast = "high", haze = "no" }, position = { contrast = "high" }, rationale = "anomalous atmosphere", alternatives = ["flat light"], participants = ["role:dp"], time_limit_ms = {{LIMIT}}, threshold = 0.8, min_interval_ms = {{PACE}}, revision = 1, proposal = { id = "p-11" }, parked = { id = "parked-11" }, then = [{ to = "editor", type = "cut" }] } },
]
[[agent.brain.rules]]
type = "round_request"
when = { round = 2 }
actions = [ { do = "reply", type = "perspective", body = { position = { contrast = "high", haze = "yes" } } } ]

[[agent]]
id = "dp"
role = "dp"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "round_request"
when = { round = 1 }
actions = [
  { do = "sleep", ms = {{DP_SLEEP}}, until_attempt = 1 },
  { do = "reply", type = "perspective", body = { position = { contrast = "high", haze = "yes" } } },
]
[[agent.brain.rules]]
type = "round_request"
actions = [ { do = "reply", type = "perspective", body = { position = { contrast = "high", haze = "yes" } } } ]
"#;

/// Episode 1: split on contrast for good; a short time limit.
const EPISODE_1: &str = r#"
[defaults]
heartbeat = "100ms"
backoff_initial = "50ms"
idle_exit = "2s"

[[agent]]
id = "director"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "go"
actions = [
  { do = "send", to = "supervisor", type = "debate_request", body = { decision = "ep1-ethereal-world-lighting", agent = "director", decision_type = "lighting", plan = "ethereal world lighting", position = { contrast = "low", palette = "blue" }, rationale = "dreamlike", alternatives = ["high contrast"], participants = ["{{PARTICIPANT}}"], time_limit_ms = 1500, threshold = 0.8, min_interval_ms = 300, revision = 1, proposal = { id = "p-1" }, parked = { id = "parked-1" }, then = [{ to = "editor", type = "cut" }] } },
]
[[agent.brain.rules]]
type = "round_request"
actions = [ { do = "reply", type = "perspective", body = { position = { contrast = "low", palette = "blue" } } } ]

[[agent]]
id = "dp"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "round_request"
actions = [ { do = "reply", type = "perspective", body = { position = { contrast = "high", palette = "blue" } } } ]
"#;

fn episode_11(dp_sleep: u64, limit: u64, pace: u64) -> String {
    EPISODE_11
        .replace("{{DP_SLEEP}}", &dp_sleep.to_string())
        .replace("{{LIMIT}}", &limit.to_string())
        .replace("{{PACE}}", &pace.to_string())
}

fn episode_1(participant: &str) -> String {
    EPISODE_1.replace("{{PARTICIPANT}}", participant)
}

/// Starts the debate: the orchestrator tells the director to go, in `case`.
fn go(s: &Society, case: Option<&str>) {
    let mut args = vec!["send", "director", "--type", "go", "--json", "{}"];
    if let Some(c) = case {
        args.extend(["--case", c]);
    }
    s.ok(&args);
}

/// Messages of `kind` in `agent`'s inbox.
fn inbox(s: &Society, agent: &str, kind: &str) -> Vec<Value> {
    records(&s.agent(agent).inbox())
        .into_iter()
        .filter(|r| r["type"] == kind)
        .collect()
}

/// Waits for the debate's result in the director's inbox.
fn wait_result(s: &Society) -> Value {
    wait_until(SOON, "the debate_result in the director's inbox", || {
        inbox(s, "director", "debate_result").pop()
    })
}

/// The debate's case log (live, or archived).
fn debate_log(s: &Society, case: &str) -> Vec<Value> {
    records(&s.layout().case_log(&CaseId::new(case).unwrap()))
}

/// The debate's case log once it holds `event` (a batch's records land
/// file by file: the proposer's inbox may be written before the log).
fn wait_log(s: &Society, case: &str, event: &str) -> Vec<Value> {
    wait_until(SOON, &format!("{event} in the log of {case}"), || {
        let log = debate_log(s, case);
        (count(&log, event) > 0).then_some(log)
    })
}

/// The id of the only debate's case, once it is open.
fn wait_open(s: &Society) -> String {
    wait_until(SOON, "a debate to open", || {
        let dir = s.layout().cases_dir();
        std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let case = name.strip_prefix("case-")?.strip_suffix(".jsonl")?;
            case.starts_with("debate-").then(|| case.to_string())
        })
    })
}

/// The debate's own events, reduced to `event agent/to round.iteration`.
fn story(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter_map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            let at = format!("r{}i{}", r["round"], r["iteration"]);
            Some(match s("event").as_str() {
                "perspective" => format!("perspective {} {at}", s("agent")),
                "round_request" => format!("round_request {} {at}", s("to")),
                e @ ("created" | "debate_opened" | "consensus" | "completed" | "debate_expired"
                | "approval_requested" | "approved" | "rejected") => e.to_string(),
                _ => return None,
            })
        })
        .collect()
}

fn count(log: &[Value], event: &str) -> usize {
    log.iter().filter(|r| r["event"] == event).count()
}

/// Every case-log record has a `src`, none twice.
fn assert_unique_srcs(log: &[Value]) {
    let mut seen = HashSet::new();
    for r in log {
        let src = r["src"].as_str().unwrap_or_else(|| panic!("no src: {r}"));
        assert!(seen.insert(src.to_string()), "duplicate case record {r}");
    }
}

/// `society fsck` finds no problem (nothing duplicated, every approval in
/// its case, cursors on line boundaries).
fn assert_fsck_clean(s: &Society) {
    let out = s.run(&["fsck", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "problem")
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The Episode 11 story, with the two round-2 answers in either order.
fn assert_episode_11(log: &[Value]) {
    let mut got = story(log);
    let tail = got.split_off(6);
    assert_eq!(
        got,
        [
            "created",
            "debate_opened",
            "perspective director r1i0",
            "round_request dp r1i0",
            "perspective dp r1i0",
            "round_request director r2i1",
        ]
    );
    let mut middle = tail[..3].to_vec();
    middle.sort();
    assert_eq!(
        middle,
        [
            "perspective director r2i1",
            "perspective dp r2i1",
            "round_request dp r2i1"
        ]
    );
    assert_eq!(
        tail[0], "round_request dp r2i1",
        "both asked before answers"
    );
    assert_eq!(tail[3..], ["consensus", "completed"]);
}

#[test]
fn consensus_end_to_end_in_round_two() {
    let mut s = Society::new(BIN, &episode_11(0, 30_000, 1500));
    s.start_supervisor();
    let origin = s.ok(&["case", "new", "episode 11"]);
    go(&s, Some(&origin));
    let result = wait_result(&s);
    let body = &result["body"];
    assert_eq!(body["consensus"], true, "{result}");
    assert_eq!(body["decision"], "ep11-lighting");
    assert_eq!(body["iterations"], 1);
    assert_eq!(body["agreement"], 1.0);
    assert_eq!(
        body["agreed_plan"],
        serde_json::json!({"contrast": "high", "haze": "yes"})
    );
    assert_eq!(body["proposal"]["id"], "p-11");
    assert_eq!(body["parked"]["id"], "parked-11");
    assert_eq!(body["then"][0]["type"], "cut");
    assert_eq!(
        result["case"],
        origin.as_str(),
        "back in the proposer's case"
    );
    let case = body["debate"].as_str().unwrap().to_string();
    assert!(case.starts_with("debate-ep11-lighting-"), "{case}");

    let log = wait_log(&s, &case, "completed");
    assert_unique_srcs(&log);
    assert_episode_11(&log);
    let opened = &log[1];
    assert_eq!(opened["proposer"], "director");
    assert_eq!(
        opened["participants"],
        serde_json::json!(["director", "dp"])
    );
    assert_eq!(
        opened["deadline"].as_u64(),
        opened["opened_at"].as_u64().map(|t| t + 30_000)
    );
    // Pacing: round 2 started no sooner than min_interval after round 1.
    let t = |who: &str, it: u64| {
        log.iter()
            .find(|r| r["event"] == "round_request" && r["to"] == who && r["iteration"] == it)
            .unwrap()["t_ms"]
            .as_u64()
            .unwrap()
    };
    assert!(t("dp", 1) >= t("dp", 0) + 1500, "{log:?}");
    let doc = json_of(&s, &["case", "show", &case, "--json"]);
    assert_eq!(doc["case"]["status"], "resolved");
    assert_eq!(inbox(&s, "director", "debate_result").len(), 1);
}

#[test]
fn expiry_escalates_and_the_orchestrators_answer_reaches_the_proposer() {
    let mut s = Society::new(BIN, &episode_1("dp"));
    s.start_supervisor();
    go(&s, None);
    let pending = wait_until(SOON, "the debate's approval request", || {
        let v = json_of(&s, &["approvals", "--json"]);
        v.as_array()?.first().cloned()
    });
    assert_eq!(pending["kind"], "debate");
    assert_eq!(pending["from"], "supervisor");
    assert_eq!(pending["body"]["agent"], "director");
    assert_eq!(
        pending["body"]["areas_of_disagreement"],
        serde_json::json!(["contrast"])
    );
    assert_eq!(
        pending["body"]["areas_of_agreement"],
        serde_json::json!({"palette": "blue"})
    );
    let plan = pending["plan"].as_str().unwrap();
    assert!(
        plan.contains("ethereal world lighting") && plan.contains("disagreement on contrast"),
        "{plan}"
    );
    let table = s.ok(&["approvals"]);
    assert!(
        table.contains("director") && table.contains("contrast"),
        "{table}"
    );

    let result = wait_result(&s);
    assert_eq!(result["body"]["consensus"], false);
    let id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(result["body"]["escalated"], id.as_str());
    let case = result["body"]["debate"].as_str().unwrap().to_string();
    let log = wait_log(&s, &case, "approval_requested");
    let expired = log.iter().find(|r| r["event"] == "debate_expired").unwrap();
    assert_eq!(
        expired["recommendation"],
        "Escalate to higher authority for resolution"
    );
    let duration = expired["duration_ms"].as_u64().unwrap();
    assert!(
        duration >= 1500,
        "expired at {duration} ms, before the limit"
    );

    let out = s.ok(&["approve", &id, "--note", "Ethereal should feel dangerous"]);
    assert!(out.contains("delivers the answer to director"), "{out}");
    let answer = wait_until(SOON, "the approval_response to the director", || {
        inbox(&s, "director", "approval_response").pop()
    });
    assert_eq!(answer["reply_to"], id.as_str());
    assert_eq!(answer["body"]["approved"], true);
    assert_eq!(answer["body"]["note"], "Ethereal should feel dangerous");
    assert_eq!(answer["body"]["proposal"]["id"], "p-1");
    assert_eq!(answer["body"]["then"][0]["to"], "editor");
    assert_eq!(answer["body"]["parked"]["id"], "parked-1");
    assert_eq!(answer["body"]["plan"], "ethereal world lighting");
    wait_until(SOON, "the debate case to complete", || {
        let log = debate_log(&s, &case);
        (count(&log, "completed") == 1).then_some(())
    });
    let log = debate_log(&s, &case);
    assert_unique_srcs(&log);
    for (event, n) in [
        ("debate_opened", 1),
        ("debate_expired", 1),
        ("approval_requested", 1),
        ("approved", 1),
        ("consensus", 0),
    ] {
        assert_eq!(count(&log, event), n, "{event} in {:?}", story(&log));
    }
    assert_eq!(json_of(&s, &["approvals", "--json"]), serde_json::json!([]));
    assert_fsck_clean(&s);
}

/// Waits until `agent` is handling a message of `kind` at `attempt`;
/// returns its pid and the message id.
fn wait_running(s: &Society, agent: &str, kind: &str, attempt: u64) -> (u32, String) {
    let paths = s.agent(agent);
    wait_until(
        SOON,
        &format!("{agent} handling {kind} (attempt {attempt})"),
        || {
            let st = read_json(&paths.status())?;
            let cur = &st["current"];
            if st["state"] != "running" || cur["type"] != kind || cur["attempt"] != attempt {
                return None;
            }
            let pid = st["pid"].as_u64()? as u32;
            let id = cur["id"].as_str()?.to_string();
            (s.agent_pid(agent) == Some(pid)).then_some((pid, id))
        },
    )
}

fn kill_agent(s: &Society, agent: &str, pid: u32) {
    killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let lock = s.agent(agent).lock();
    wait_until(
        SOON,
        &format!("{agent}'s lock to be released"),
        || match lock::probe(&lock).unwrap() {
            LockState::Held(Some(info)) if info.pid == pid => None,
            _ => Some(()),
        },
    );
}

#[test]
fn a_participant_killed_mid_debate_is_respawned_and_answers() {
    // Round 2 waits 5 s: the dp's answer to round 1 comes first.
    let mut s = Society::new(BIN, &episode_11(1500, 30_000, 5000));
    s.start_supervisor();
    go(&s, None);
    let (pid, asked) = wait_running(&s, "dp", "round_request", 1);
    kill_agent(&s, "dp", pid);
    let result = wait_result(&s);
    // The respawned dp answered the very request it was killed over.
    let handled: Vec<Value> = records(&s.agent("dp").activity())
        .into_iter()
        .filter(|r| r["event"] == "message_handled" && r["id"] == asked.as_str())
        .collect();
    assert_eq!(handled.len(), 1, "{handled:?}");
    assert_eq!(handled[0]["attempt"], 2);
    assert_eq!(result["body"]["consensus"], true, "{result}");
    let case = result["body"]["debate"].as_str().unwrap().to_string();
    let log = wait_log(&s, &case, "completed");
    assert_unique_srcs(&log);
    assert_episode_11(&log);
    assert_eq!(count(&log, "consensus"), 1);
    assert_eq!(inbox(&s, "director", "debate_result").len(), 1);
}

#[test]
fn the_supervisor_killed_mid_debate_finishes_it_once_after_restart() {
    // Round 2 waits 5 s: the dp's answer to round 1 comes first.
    let mut s = Society::new(BIN, &episode_11(1500, 30_000, 5000));
    s.start_supervisor();
    go(&s, None);
    let case = wait_open(&s);
    // The dp is thinking about round 1 when the supervisor dies; it answers
    // into its outbox meanwhile.
    wait_running(&s, "dp", "round_request", 1);
    s.kill_supervisor();
    wait_until(SOON, "the dp's perspective in its outbox", || {
        let out = records(&s.agent("dp").outbox());
        out.iter().any(|r| r["type"] == "perspective").then_some(())
    });
    assert_eq!(
        count(&debate_log(&s, &case), "perspective"),
        1,
        "not routed yet"
    );
    s.start_supervisor();
    let result = wait_result(&s);
    assert_eq!(result["body"]["consensus"], true, "{result}");
    assert_eq!(result["body"]["debate"], case.as_str());
    wait_log(&s, &case, "completed");
    // Kill it once more after the end, restart: nothing more happens.
    s.kill_supervisor();
    s.start_supervisor();
    let noop = s.ok(&["send", "director", "--type", "noop", "--json", "{}"]);
    wait_until(SOON, "the director to handle the noop", || {
        records(&s.agent("director").activity())
            .iter()
            .any(|r| r["event"] == "message_handled" && r["id"] == noop.as_str())
            .then_some(())
    });
    let log = debate_log(&s, &case);
    assert_unique_srcs(&log);
    assert_episode_11(&log);
    assert_eq!(inbox(&s, "director", "debate_result").len(), 1);
    assert_eq!(inbox(&s, "dp", "round_request").len(), 2);
    assert_fsck_clean(&s);
}

#[test]
fn a_debate_past_its_deadline_expires_when_the_supervisor_starts() {
    // The dp never answers in time: it sleeps past the limit (and no round
    // 2 is due before it).
    let mut s = Society::new(BIN, &episode_11(5000, 3000, 10_000));
    s.start_supervisor();
    go(&s, None);
    let case = wait_open(&s);
    wait_running(&s, "dp", "round_request", 1);
    s.kill_supervisor();
    let deadline = debate_log(&s, &case)[1]["deadline"].as_u64().unwrap();
    wait_until(SOON, "the debate's deadline to pass", || {
        let now = society_core::time::unix_ms(std::time::SystemTime::now());
        (now > deadline).then_some(())
    });
    assert_eq!(count(&debate_log(&s, &case), "debate_expired"), 0);
    s.start_supervisor();
    let result = wait_result(&s);
    assert_eq!(result["body"]["consensus"], false);
    let log = wait_log(&s, &case, "approval_requested");
    assert_eq!(count(&log, "debate_expired"), 1);
    let pending = json_of(&s, &["approvals", "--json"]);
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    // The dp's late answer changes nothing.
    wait_until(SOON, "the dp's late answer to be routed", || {
        crate::support::system_events(&s, "perspective_ignored")
            .first()
            .cloned()
    });
    let log = debate_log(&s, &case);
    assert_eq!(count(&log, "perspective"), 1, "{:?}", story(&log));
    assert_eq!(count(&log, "consensus"), 0);
}

#[test]
fn a_debate_without_participants_expires_at_once() {
    let mut s = Society::new(BIN, &episode_1("ghost"));
    s.start_supervisor();
    go(&s, None);
    let result = wait_result(&s);
    assert_eq!(result["body"]["consensus"], false);
    assert_eq!(
        result["body"]["reason"],
        "no participant besides the proposer could be resolved"
    );
    let case = result["body"]["debate"].as_str().unwrap().to_string();
    let log = wait_log(&s, &case, "approval_requested");
    assert_eq!(log[1]["skipped"], serde_json::json!(["ghost"]));
    assert_eq!(
        story(&log),
        [
            "created",
            "debate_opened",
            "perspective director r1i0",
            "debate_expired",
            "approval_requested"
        ]
    );
    let duration = log[3]["duration_ms"].as_u64().unwrap();
    assert!(
        duration < 1500,
        "expired at once, not at the limit: {duration} ms"
    );
    let pending = json_of(&s, &["approvals", "--json"]);
    assert_eq!(pending[0]["body"]["reason"], result["body"]["reason"]);
}

#[test]
fn a_debate_whose_participants_are_removed_expires_at_once() {
    // The dp would think for 5 s; it is removed while it does.
    let mut s = Society::new(BIN, &episode_11(5000, 30_000, 10_000));
    s.start_supervisor();
    go(&s, None);
    let case = wait_open(&s);
    wait_running(&s, "dp", "round_request", 1);
    s.ok(&["rm", "dp", "--force"]);
    let result = wait_result(&s);
    assert_eq!(result["body"]["consensus"], false);
    assert_eq!(
        result["body"]["reason"],
        "every participant besides the proposer is gone"
    );
    let log = wait_log(&s, &case, "approval_requested");
    let expired = log.iter().find(|r| r["event"] == "debate_expired").unwrap();
    assert!(
        expired["duration_ms"].as_u64().unwrap() < 30_000,
        "not at the time limit: {expired}"
    );
    assert_eq!(count(&log, "debate_expired"), 1);
    let pending = json_of(&s, &["approvals", "--json"]);
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
}
