//! `society demo film-crew`: twelve episodes of a series made by a film
//! crew of `script` agents that propose decisions, with a simulated
//! orchestrator (approves most, rejects some with feedback, denies one,
//! reviews every autonomous decision after its episode). Prints, per
//! episode, the share of decisions that asked for approval — it falls as
//! the agents learn — and the `jq` lines that re-derive every number.

use super::super::exit::{coded, Code};
use anyhow::Context;
use serde_json::{json, Value};
use society_core::kinds::{case_log, message};
use society_core::{CaseId, Envelope, Layout, Party};
use society_runtime::client::decisions::Decision;
use society_runtime::client::{answers, case_control, supervisor};
use society_runtime::control::How;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SOCIETY_TOML: &str = include_str!("../../../examples/film-crew/society.toml");

/// One episode's numbers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Episode {
    pub episode: u32,
    pub case: String,
    pub decisions: usize,
    pub asked: usize,
    pub share: f64,
    pub levels: BTreeMap<String, usize>,
}

pub struct Options {
    pub dir: Option<PathBuf>,
    pub episodes: u32,
    pub keep_running: bool,
    pub json: bool,
}

pub fn run(opts: Options) -> anyhow::Result<Code> {
    // The agents start deciding alone from episode 4 on: fewer than six
    // episodes cannot show the fall.
    if !(6..=50).contains(&opts.episodes) {
        return Err(coded(
            Code::Usage,
            format!("--episodes {} is out of range (6 to 50)", opts.episodes),
        ));
    }
    let dir = match opts.dir {
        Some(d) => d,
        None => society_runtime::selftest::unique_dir("society-film-crew-")
            .context("failed to create a directory for the demo")?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let layout = Layout::at(&dir);
    if layout.state_dir().exists() {
        return Err(coded(
            Code::Locked,
            format!(
                "{} already holds a society: choose another --dir (or none)",
                dir.display()
            ),
        ));
    }
    layout.create()?;
    std::fs::write(layout.society_toml(), SOCIETY_TOML)?;
    let root = layout.root().display().to_string();
    if !opts.json {
        outln!(
            "society demo film-crew — {} episodes, writer → director ∥ dp → character → editor",
            opts.episodes
        );
        outln!("  society root: {root}\n");
    }
    let started = Instant::now();
    let sup = supervisor::ensure_supervisor(&layout, &super::super::daemon::exe()?)?.pid();
    let outcome = produce(&layout, opts.episodes, opts.json);
    if !opts.keep_running {
        let stopped = supervisor::down(&layout, Duration::from_secs(30));
        if outcome.is_ok() {
            stopped?;
        }
    }
    let episodes = outcome?;
    let debates = debates(&layout);
    let bands = bands(&episodes);
    let falling = bands.windows(2).all(|w| w[0].1 > w[1].1);
    if opts.json {
        let doc = json!({
            "root": root, "episodes": episodes,
            "bands": bands.iter().map(|(name, share)| json!({"episodes": name, "share": share})).collect::<Vec<_>>(),
            "debates": debates, "falling": falling, "supervisor": sup,
            "seconds": started.elapsed().as_secs_f64(),
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        outln!("\nshare of decisions that asked for approval, by part of the series:");
        for (name, share) in &bands {
            outln!("  episodes {name:<6} {:>5.1} %", share * 100.0);
        }
        outln!(
            "\ndebates: {} opened, {} reached consensus, {} expired and escalated",
            debates["count"],
            debates["consensus"],
            debates["expired"]
        );
        outln!(
            "done in {:.1}s; the numbers, from the files:",
            started.elapsed().as_secs_f64()
        );
        let a = format!("{root}/.society-agent");
        outln!("  # per episode (case, in time order): decisions, and how many asked for approval");
        outln!("  jq -s -c '(map(select(.event==\"assessed\")) | map({{key: .decision, value: .case}}) | from_entries) as $case | (map(select(.event==\"assessed\")) | group_by(.case) | map({{key: .[0].case, value: length}}) | from_entries) as $n | map(select(.event==\"approval_requested\")) | group_by($case[.decision]) | map({{case: $case[.[0].decision], decisions: $n[$case[.[0].decision]], asked: length}}) | .[]' {a}/agent-*/decisions.jsonl");
        outln!("  # levels and the rule that chose them");
        outln!("  jq -c 'select(.event==\"assessed\") | {{agent, decision_type, level, rule, scores}}' {a}/agent-*/decisions.jsonl");
        outln!("  # debates: opened, consensus, expired");
        outln!("  cat {a}/supervisor/cases/*.jsonl | jq -c 'select(.event==\"debate_opened\" or .event==\"consensus\" or .event==\"debate_expired\") | {{event, decision, agreement, iterations}}'");
        outln!("  # what each agent learned");
        outln!("  jq . {a}/agent-dp/learning/prefs.json");
    }
    if !falling {
        return Err(coded(
            Code::CheckFailed,
            format!("the approval-request share did not fall: {bands:?}"),
        ));
    }
    if debates["consensus"].as_u64() == Some(0) || debates["expired"].as_u64() == Some(0) {
        return Err(coded(
            Code::CheckFailed,
            format!("expected at least one debate to reach consensus and one to expire: {debates}"),
        ));
    }
    Ok(Code::Ok)
}

/// The average share over the first quarter, the middle and the last third
/// (episodes 1-3, 4-8, 9-12 for twelve).
fn bands(episodes: &[Episode]) -> Vec<(String, f64)> {
    let n = episodes.len();
    let first = (n / 4).max(1);
    let last = (n / 3).max(1);
    let parts = [(0, first), (first, n - last), (n - last, n)];
    parts
        .iter()
        .filter(|(a, b)| a < b)
        .map(|(a, b)| {
            let slice = &episodes[*a..*b];
            let share = slice.iter().map(|e| e.share).sum::<f64>() / slice.len() as f64;
            (
                format!("{}-{}", a + 1, b),
                (share * 1000.0).round() / 1000.0,
            )
        })
        .collect()
}

/// Runs the episodes one after the other; answers and reviews as the
/// orchestrator would.
fn produce(layout: &Layout, episodes: u32, quiet: bool) -> anyhow::Result<Vec<Episode>> {
    let mut out = Vec::new();
    let mut answered: HashSet<String> = HashSet::new();
    let mut reviewed: HashSet<String> = HashSet::new();
    let mut cases: BTreeMap<String, u32> = BTreeMap::new();
    if !quiet {
        outln!("  ep  decisions  asked  share   levels (autonomous / collaborative / approval)");
    }
    for e in 1..=episodes {
        let case = case_control::request_open(
            layout,
            &case_control::NewCase {
                purpose: format!("episode {e}"),
                assign: None,
                priority: Some("normal".into()),
                due: Some(Duration::from_secs(3600)),
            },
        )?;
        cases.insert(case.to_string(), e);
        let mut env = Envelope::new(
            Party::Orchestrator,
            Party::Agent("writer".parse()?),
            "episode",
            json!({"episode": e, "d": proposals(e)}),
        );
        env.case = Some(case.clone());
        society_runtime::client::send::deliver(layout, &env)?;
        wait_episode(layout, e, &case, &cases, &mut answered)?;
        // The orchestrator looks at what was decided alone, after the fact.
        for d in decisions(layout) {
            if d.case.as_deref() == Some(case.as_str())
                && d.self_resolved()
                && reviewed.insert(d.id.clone())
            {
                let mut review = Envelope::new(
                    Party::Orchestrator,
                    Party::Agent(d.agent.parse()?),
                    message::DECISION_REVIEW,
                    json!({"decision": d.id, "ok": true, "feedback": null, "quality": null}),
                );
                review.case = Some(case.clone());
                society_runtime::client::send::deliver(layout, &review)?;
            }
        }
        let ep = tally(layout, e, &case);
        if !quiet {
            outln!(
                "  {:>2}  {:>9}  {:>5}  {:>4.0} %  {} / {} / {}",
                e,
                ep.decisions,
                ep.asked,
                ep.share * 100.0,
                ep.levels.get("autonomous").unwrap_or(&0),
                ep.levels.get("collaborative").unwrap_or(&0),
                ep.levels.get("requires_approval").unwrap_or(&0),
            );
        }
        out.push(ep);
    }
    // The last reviews are handled before the supervisor stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && decisions(layout)
            .iter()
            .any(|d| reviewed.contains(&d.id) && d.reviewed.is_none())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(out)
}

/// Every agent's decisions, folded from their `decisions.jsonl` (what
/// `society review` and `society metrics` read).
fn decisions(layout: &Layout) -> Vec<Decision> {
    society_runtime::client::decisions::read(layout, None)
        .map(|log| log.decisions)
        .unwrap_or_default()
}

fn tally(layout: &Layout, e: u32, case: &CaseId) -> Episode {
    let mine: Vec<Decision> = decisions(layout)
        .into_iter()
        .filter(|d| d.case.as_deref() == Some(case.as_str()))
        .collect();
    let asked = mine.iter().filter(|d| d.asked_approval).count();
    let mut levels = BTreeMap::new();
    for d in &mine {
        *levels.entry(d.level.clone()).or_insert(0) += 1;
    }
    Episode {
        episode: e,
        case: case.to_string(),
        decisions: mine.len(),
        asked,
        share: if mine.is_empty() {
            0.0
        } else {
            ((asked as f64 / mine.len() as f64) * 1000.0).round() / 1000.0
        },
        levels,
    }
}

/// Waits until the episode's last decision is resolved and the editor's
/// `episode_done` is in; answers approval requests meanwhile.
fn wait_episode(
    layout: &Layout,
    e: u32,
    case: &CaseId,
    cases: &BTreeMap<String, u32>,
    answered: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        for req in society_runtime::approvals::pending(layout)? {
            if answered.insert(req.id.to_string()) {
                let ep = req
                    .case
                    .as_ref()
                    .and_then(|c| cases.get(c.as_str()))
                    .copied()
                    .unwrap_or(e);
                let (approve, note, how) = policy(ep, &req.from.to_string(), &req.body);
                answers::answer(layout, &req.id, approve, note, how)?;
            }
        }
        let done = society_core::jsonl::read_objects(&layout.orchestrator_inbox(), &mut 0)
            .unwrap_or_default()
            .iter()
            .any(|r| r["type"] == "episode_done" && r["body"]["episode"] == e);
        let mine: Vec<Decision> = decisions(layout)
            .into_iter()
            .filter(|d| d.case.as_deref() == Some(case.as_str()))
            .collect();
        if done && mine.len() >= 9 && mine.iter().all(|d| d.resolved.is_some()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let open: Vec<String> = mine
                .iter()
                .filter(|d| d.resolved.is_none())
                .map(|d| format!("{} ({})", d.id, d.agent))
                .collect();
            return Err(coded(
                Code::CheckFailed,
                format!(
                    "episode {e} did not finish within 90s: episode_done {done}, {} decisions, unresolved: {open:?}",
                    mine.len()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The simulated orchestrator: approves most, rejects some with feedback
/// (the agent revises and the revision is assessed again), denies one
/// without feedback, overrides one with its own plan.
fn policy(e: u32, from: &str, body: &Value) -> (bool, Option<String>, Option<How>) {
    let p = &body["proposal"];
    let kind = p["decision_type"].as_str().unwrap_or("");
    let agent = p["agent"].as_str().unwrap_or(from);
    let revision = p["revision"].as_u64().unwrap_or(1);
    let (approve, note, how) = match (e, agent, kind, revision) {
        (1, "writer", "narrative_change", 1) => (false, "too dark: keep the hero alive", None),
        (2, "arcadian-21", _, 1) => (false, "more restraint", None),
        (3, "editor", _, 1) => (false, "a tighter cut", None),
        (6, "writer", "narrative_change", 1) => (false, "", None),
        (8, "writer", "narrative_change", 1) => (
            true,
            "the series needs this instead",
            Some(How::Override {
                plan: "the hero loses the map, not his life".into(),
            }),
        ),
        (1, "director", "visual_style", _) => (
            true,
            "the dp's option: Ethereal should feel dangerous",
            None,
        ),
        _ => (true, "approved", None),
    };
    let note = (!note.is_empty()).then(|| note.to_string());
    (approve, note, how)
}

/// The proposals of episode `e`, by slot (`body.d.<slot>`).
fn proposals(e: u32) -> Value {
    let p = |kind: &str,
             scope: &str,
             multi: bool,
             found: bool,
             rev: &str,
             deps: &[&str],
             features: Value,
             plan: Value| {
        json!({"decision_type": kind, "scope": scope, "affects_multiple_departments": multi,
               "is_foundational": found, "reversibility": rev, "resource_cost": 0,
               "has_complete_information": true, "dependencies": deps, "features": features,
               "plan": plan, "rationale": format!("episode {e}"), "alternatives": ["keep it as it is"]})
    };
    let emotion = if e <= 4 { "calm" } else { "fear" };
    let act = if e <= 6 { "rising" } else { "finale" };
    let contrast = if e <= 3 { "low" } else { "high" };
    let dp_b = if e == 11 {
        p(
            "lighting",
            "scene",
            false,
            false,
            "easy",
            &["director"],
            json!({"location": "stage", "with_director": true, "atmosphere": "anomalous"}),
            json!({"contrast": "high", "atmosphere": "anomalous"}),
        )
    } else {
        p(
            "lighting",
            "scene",
            false,
            false,
            "easy",
            &["director"],
            json!({"location": "stage", "with_director": true, "mood": "night"}),
            json!({"key": "soft", "mood": "night"}),
        )
    };
    json!({
        "writer_a": p("script_structure", "episode", false, false, "easy", &["director"],
                      json!({"structure": "three_act"}), json!({"structure": "three_act", "episode": e})),
        "writer_b": p("narrative_change", "series", true, true, "difficult", &[],
                      json!({"arc": "hero"}), json!(format!("the hero's arc turns in episode {e}"))),
        "writer_b_rev": p("narrative_change", "episode", false, false, "moderate", &[],
                          json!({"arc": "hero"}), json!(format!("a smaller turn in episode {e}"))),
        "director": p("visual_style", "episode", false, false, "moderate", &["dp"],
                      json!({"palette": "blue"}), json!({"contrast": contrast, "palette": "blue"})),
        "dp_a": p("lighting", "scene", false, false, "easy", &[],
                  json!({"location": "stage", "key": "soft"}), json!(format!("soft key light, episode {e}"))),
        "dp_b": dp_b,
        "character_a": p("performance_choice", "scene", false, false, "easy", &[],
                         json!({"register": "quiet"}), json!(format!("a quiet read, episode {e}"))),
        "character_b": p("performance_choice", "scene", false, false, "easy", &["director"],
                         json!({"emotion": emotion, "with_director": true}), json!({"emotion": emotion})),
        "editor_a": p("edit_pacing", "scene", false, false, "easy", &[],
                      json!({"cut": "standard"}), json!(format!("standard cut, episode {e}"))),
        "editor_b": p("edit_pacing", "scene", false, false, "easy", &["director"],
                      json!({"act": act, "with_director": true}), json!({"pace": act})),
    })
}

/// Debate counts from the case logs.
fn debates(layout: &Layout) -> Value {
    let (mut count, mut consensus, mut expired) = (0u64, 0u64, 0u64);
    let mut seen = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(layout.cases_dir()) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().and_then(|x| x.to_str()) != Some("jsonl")
                || !seen.insert(path.clone())
            {
                continue;
            }
            for r in society_core::jsonl::read_objects(&path, &mut 0).unwrap_or_default() {
                match r["event"].as_str() {
                    Some(case_log::DEBATE_OPENED) => count += 1,
                    Some(case_log::CONSENSUS) => consensus += 1,
                    Some(case_log::DEBATE_EXPIRED) => expired += 1,
                    _ => {}
                }
            }
        }
    }
    json!({"count": count, "consensus": consensus, "expired": expired})
}
