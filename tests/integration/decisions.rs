//! Decisions end to end through real processes: a script brain proposes,
//! the agent's runtime assesses (never the brain), logs every step in
//! `decisions.jsonl`, and carries the decision out on its level —
//! autonomous at once; requires_approval through the orchestrator, with a
//! rejection's feedback revised and re-assessed; malformed proposals
//! refused with a clear reason and a dead letter.

use crate::support::{json_of, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};

const FILM: &str = r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"
backoff_initial = "50ms"

[autonomy.baselines]
shot_composition = "autonomous"
narrative_change = "requires_approval"

[[agent]]
id = "director"
[agent.brain]
kind = "script"

[[agent.brain.rules]]
type = "shot"
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply", type = "shot_done", body = { scene = "{{body.scene}}" } }]
[agent.brain.rules.actions.proposal]
decision_type = "shot_composition"
scope = "scene"
affects_multiple_departments = false
is_foundational = false
reversibility = "easy"
resource_cost = 0
has_complete_information = true
features = { framing = "wide" }
plan = "wide shot of scene {{body.scene}}"

[[agent.brain.rules]]
type = "shot_dep"
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply", type = "shot_done", body = { scene = "{{body.scene}}" } }]
[agent.brain.rules.actions.proposal]
decision_type = "shot_composition"
scope = "scene"
affects_multiple_departments = false
is_foundational = false
reversibility = "easy"
resource_cost = 0
has_complete_information = true
dependencies = ["dp"]
features = { framing = "wide" }
plan = "wide shot of scene {{body.scene}}, lit by the dp"

[[agent.brain.rules]]
type = "story"
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply", type = "story_done", body = { plan = "first" } }]
[agent.brain.rules.actions.proposal]
decision_type = "narrative_change"
scope = "series"
affects_multiple_departments = true
is_foundational = true
reversibility = "difficult"
resource_cost = 0
has_complete_information = true
plan = "the hero dies"
rationale = "stakes"
alternatives = ["the hero is wounded"]

[[agent.brain.rules]]
type = "approval_response"
when = { decision = "overridden" }
actions = [{ do = "send", to = "orchestrator", type = "story_done", body = { plan = "{{body.override}}", by = "override" } }]

[[agent.brain.rules]]
type = "approval_response"
when = { decision = "chosen" }
actions = [{ do = "send", to = "orchestrator", type = "story_done", body = { plan = "{{body.override}}", by = "choice" } }]

[[agent.brain.rules]]
type = "approval_response"
when = { approved = false }
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply", type = "story_done", body = { plan = "revised" } }]
[agent.brain.rules.actions.proposal]
decision_type = "narrative_change"
scope = "episode"
affects_multiple_departments = false
is_foundational = false
reversibility = "moderate"
resource_cost = 0
has_complete_information = true
plan = "the hero is wounded ({{body.note}})"

[[agent.brain.rules]]
type = "bad"
[[agent.brain.rules.actions]]
do = "decide"
[agent.brain.rules.actions.proposal]
decision_type = "shot_composition"
scope = "galaxy"
affects_multiple_departments = false
is_foundational = false
reversibility = "easy"
resource_cost = 0
has_complete_information = true
plan = "x"
"#;

fn decisions(s: &Society) -> Vec<Value> {
    records(&s.agent("director").dir.join("decisions.jsonl"))
}

fn events(lines: &[Value], event: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["event"] == event)
        .cloned()
        .collect()
}

/// The orchestrator inbox's record of `kind` answering `id`.
fn wait_answer(s: &Society, kind: &str, id: &str) -> Value {
    wait_until(SOON, &format!("a {kind} answering {id}"), || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == kind && r["reply_to"] == id)
    })
}

/// The one pending approval at `revision`.
fn wait_pending(s: &Society, revision: u64) -> Value {
    wait_until(
        SOON,
        &format!("one pending approval at revision {revision}"),
        || {
            let v = json_of(s, &["approvals", "--json"]);
            let list = v.as_array()?;
            (list.len() == 1 && list[0]["revision"] == revision).then(|| list[0].clone())
        },
    )
}

#[test]
fn an_autonomous_decision_runs_at_once_and_is_logged_with_its_inputs() {
    let mut s = Society::new(BIN, FILM);
    s.start_supervisor();
    let id = s.ok(&[
        "send",
        "director",
        "--type",
        "shot",
        "--json",
        r#"{"scene": 3}"#,
    ]);
    let id = id.trim();
    let done = wait_answer(&s, "shot_done", id);
    assert_eq!(done["body"]["scene"], 3);

    let lines = decisions(&s);
    let assessed = events(&lines, "assessed");
    assert_eq!(assessed.len(), 1, "{lines:?}");
    let a = &assessed[0];
    assert_eq!(a["level"], "autonomous");
    assert_eq!(a["rule"], "baseline");
    assert_eq!(a["msg"], id);
    // Scores are the runtime's, from the formulas: scene scope, not
    // foundational → impact 0; easy → risk 0.1; complete information → 0.7.
    assert_eq!(a["scores"]["impact"], 0.0);
    assert_eq!(a["scores"]["risk"], 0.1);
    assert_eq!(a["scores"]["confidence"], 0.7);
    assert_eq!(a["scores"]["pattern_match"], 0.5);
    assert_eq!(a["features"]["framing=wide"], 1.0);
    assert_eq!(a["context"]["plan"], "wide shot of scene 3");
    let resolved = events(&lines, "resolved");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["approved"], true);
    assert_eq!(resolved[0]["approver"], "self");
    assert_eq!(resolved[0]["decision"], a["decision"]);
    // The learned state is written as a cache once the agent has caught up.
    let path = s.agent("director").dir.join("learning/patterns.json");
    wait_until(SOON, "learning/patterns.json with the decision", || {
        let patterns: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        (patterns["shot_composition"].as_array()?.len() == 1).then_some(())
    });
}

#[test]
fn a_rejection_with_feedback_is_revised_reassessed_and_then_approved() {
    let mut s = Society::new(BIN, FILM);
    s.start_supervisor();
    let id = s.ok(&["send", "director", "--type", "story", "the plot"]);
    let id = id.trim().to_string();

    let first = wait_pending(&s, 1);
    assert_eq!(first["plan"], "the hero dies");
    assert_eq!(first["rationale"], "stakes");
    let proposal = &first["body"]["proposal"];
    assert_eq!(proposal["level"], "requires_approval");
    let lines = decisions(&s);
    let a1 = &events(&lines, "assessed")[0];
    // Impact 0.3 + 0.4 + 0.3 = 1.0 > 0.8: rule 1.
    assert_eq!(a1["rule"], "high_impact_or_risk");
    assert_eq!(a1["scores"]["impact"], 1.0);
    assert_eq!(
        events(&lines, "approval_requested")[0]["request"],
        first["id"]
    );

    s.ok(&[
        "reject",
        first["id"].as_str().unwrap(),
        "--feedback",
        "too dark",
    ]);
    let second = wait_pending(&s, 2);
    assert_eq!(second["plan"], "the hero is wounded (too dark)");
    let p2 = &second["body"]["proposal"];
    assert_eq!(p2["parent"], proposal["decision"]);
    assert_eq!(p2["revision"], 2);
    // Re-assessed: impact 0.2, risk 0.4 → no longer rule 1; the baseline asks.
    let lines = decisions(&s);
    let a2 = events(&lines, "assessed")
        .into_iter()
        .find(|l| l["decision"] == p2["decision"])
        .unwrap();
    assert_eq!(a2["rule"], "baseline");
    assert_eq!(a2["level"], "requires_approval");
    assert_eq!(a2["scores"]["impact"], 0.2);
    // The parked message is still the original one.
    assert_eq!(second["body"]["parked"]["id"], id.as_str());

    s.ok(&["approve", second["id"].as_str().unwrap()]);
    let done = wait_answer(&s, "story_done", &id);
    assert_eq!(done["body"]["plan"], "revised");
    let lines = decisions(&s);
    let resolved = events(&lines, "resolved");
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert_eq!(resolved[0]["outcome"], "revise");
    assert_eq!(resolved[0]["feedback"], "too dark");
    assert_eq!(resolved[1]["outcome"], "executed");
    assert_eq!(resolved[1]["approver"], "orchestrator");
    // Exactly one answer reached the sender.
    let answers = records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "story_done")
        .count();
    assert_eq!(answers, 1);
}

#[test]
fn a_malformed_proposal_is_refused_with_a_clear_reason_and_a_dead_letter() {
    let mut s = Society::new(BIN, FILM);
    s.start_supervisor();
    let id = s.ok(&["send", "director", "--type", "bad", "x"]);
    let id = id.trim();
    let dead = wait_until(SOON, "the bad proposal's dead letter", || {
        records(&s.agent("director").deadletter())
            .into_iter()
            .find(|r| r["id"] == id || r["message"]["id"] == id || r.to_string().contains(id))
    });
    let text = dead.to_string();
    assert!(text.contains("scope \\\"galaxy\\\""), "{text}");
    let refused = events(&decisions(&s), "refused");
    assert_eq!(refused.len(), 1);
    assert!(refused[0]["error"].as_str().unwrap().contains("galaxy"));
    // The agent keeps working.
    let ok = s.ok(&[
        "send",
        "director",
        "--type",
        "shot",
        "--json",
        r#"{"scene": 1}"#,
    ]);
    wait_answer(&s, "shot_done", ok.trim());
}

/// Sends a decision of `kind` and waits for its `assessed` line.
fn assessed_for(s: &Society, kind: &str, scene: u32) -> Value {
    let id = s.ok(&[
        "send",
        "director",
        "--type",
        kind,
        "--json",
        &format!(r#"{{"scene": {scene}}}"#),
    ]);
    let id = id.trim().to_string();
    wait_until(SOON, &format!("the assessment of {id}"), || {
        events(&decisions(s), "assessed")
            .into_iter()
            .find(|a| a["msg"] == id.as_str())
    })
}

#[test]
fn reviewed_autonomy_is_learned_and_survives_deleting_the_learned_state() {
    let mut s = Society::new(BIN, FILM);
    s.start_supervisor();
    // Before any learning, a decision with a dependency is collaborative (rule 4).
    let before = assessed_for(&s, "shot_dep", 0);
    assert_eq!(before["rule"], "dependencies");
    assert_eq!(before["level"], "collaborative");
    // Three autonomous shots, each reviewed ok by the orchestrator.
    for scene in 1..=3 {
        let a = assessed_for(&s, "shot", scene);
        assert_eq!(a["level"], "autonomous");
        let review = serde_json::json!({"decision": a["decision"], "ok": true});
        s.ok(&[
            "send",
            "director",
            "--type",
            "decision_review",
            "--json",
            &review.to_string(),
        ]);
    }
    wait_until(SOON, "three reviews logged", || {
        (events(&decisions(&s), "reviewed").len() == 3).then_some(())
    });
    // Now: 3 similar approved decisions (pattern match 1.0 > 0.9) and an
    // orchestrator who approved every autonomous one (rate 1.0 > 0.85):
    // rule 3 fires before the dependency rule.
    let learned = assessed_for(&s, "shot_dep", 4);
    assert_eq!(learned["rule"], "learned_pattern", "{learned}");
    assert_eq!(learned["level"], "autonomous");
    assert_eq!(learned["preference"], "autonomous");
    assert_eq!(learned["scores"]["pattern_match"], 1.0);
    // n = 3 similar, all approved: 1 × (0.7 + 0.3 × 0.3) = 0.79.
    assert_eq!(learned["scores"]["pattern_confidence"], 0.79);

    // The learned state is a cache: delete it, restart the agent, and the
    // next assessment sees exactly what an uninterrupted run would.
    let dir = s.agent("director").dir.join("learning");
    let prefs_before = std::fs::read(dir.join("prefs.json")).unwrap();
    s.wait_state("director", "dormant", SOON);
    std::fs::remove_dir_all(&dir).unwrap();
    let again = assessed_for(&s, "shot_dep", 5);
    assert_eq!(again["rule"], "learned_pattern", "{again}");
    assert_eq!(again["scores"]["pattern_match"], 1.0);
    // The learned decision joined the similar ones: n = 4 → 0.82.
    assert_eq!(again["scores"]["pattern_confidence"], 0.82);
    assert_eq!(std::fs::read(dir.join("prefs.json")).unwrap(), prefs_before);
}

/// The outcome recorded for the decision a request was made for.
fn outcome_of(s: &Society, request: &Value) -> Value {
    let decision = request["body"]["proposal"]["decision"].clone();
    wait_until(SOON, "the decision's resolution", || {
        events(&decisions(s), "resolved")
            .into_iter()
            .find(|r| r["decision"] == decision)
    })
}

#[test]
fn the_orchestrator_overrides_chooses_or_asks_for_alternatives() {
    let mut s = Society::new(BIN, FILM);
    s.start_supervisor();
    let story_done = |by: &str| {
        let by = by.to_string();
        wait_until(SOON, &format!("story_done by {by}"), || {
            records(&s.layout().orchestrator_inbox())
                .into_iter()
                .find(|r| r["type"] == "story_done" && r["body"]["by"] == by.as_str())
        })
    };

    // Override: the orchestrator's plan goes ahead; the brain carries it out.
    s.ok(&["send", "director", "--type", "story", "one"]);
    let req = wait_pending(&s, 1);
    let id = req["id"].as_str().unwrap();
    let out = s.ok(&[
        "override",
        id,
        "--plan",
        "the hero sleeps",
        "--feedback",
        "keep him",
    ]);
    assert!(out.starts_with("overridden"), "{out}");
    assert_eq!(story_done("override")["body"]["plan"], "the hero sleeps");
    let r = outcome_of(&s, &req);
    assert_eq!(r["outcome"], "overridden");
    assert_eq!(
        r["approved"], false,
        "the agent's own plan was not approved"
    );
    assert_eq!(r["plan"], "the hero sleeps");
    assert_eq!(r["feedback"], "keep him");

    // Choose: only an alternative the request lists.
    s.ok(&["send", "director", "--type", "story", "two"]);
    let req = wait_pending(&s, 1);
    let id = req["id"].as_str().unwrap();
    let bad = s.run(&["choose", id, "--option", "2"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("option 2 is not one of the request's 1 alternatives"),
        "{err}"
    );
    s.ok(&["choose", id, "--option", "1"]);
    assert_eq!(story_done("choice")["body"]["plan"], "the hero is wounded");
    let r = outcome_of(&s, &req);
    assert_eq!(r["outcome"], "chosen");
    assert_eq!(r["option"], 1);

    // Alternatives: the brain proposes again, a new revision.
    s.ok(&["send", "director", "--type", "story", "three"]);
    let req = wait_pending(&s, 1);
    s.ok(&["alternatives", req["id"].as_str().unwrap()]);
    let second = wait_pending(&s, 2);
    assert_eq!(
        second["body"]["proposal"]["parent"],
        req["body"]["proposal"]["decision"]
    );
    assert_eq!(outcome_of(&s, &req)["outcome"], "alternatives_requested");
    // A held message can only be approved or rejected: covered by the
    // client's refusal; a request that was answered cannot be answered again.
    let again = s.run(&["override", req["id"].as_str().unwrap(), "--plan", "x"]);
    assert!(!again.status.success());
}

#[test]
fn a_policy_change_takes_effect_at_the_next_decision_without_a_restart() {
    let mut s = Society::new(BIN, FILM);
    s.start_supervisor();
    assert_eq!(assessed_for(&s, "shot", 1)["level"], "autonomous");
    let out = s.ok(&[
        "policy",
        "set",
        "autonomy.baselines.shot_composition",
        "requires_approval",
    ]);
    assert!(out.contains("requires_approval"), "{out}");
    let next = assessed_for(&s, "shot", 2);
    assert_eq!(next["level"], "requires_approval", "{next}");
    assert_eq!(next["rule"], "baseline");
    // A value out of range is refused and changes nothing.
    let bad = s.run(&["policy", "set", "autonomy.impact_max", "7"]);
    assert!(!bad.status.success());
    assert_eq!(assessed_for(&s, "shot", 3)["level"], "requires_approval");
}

#[test]
fn decisions_jsonl_replaced_by_a_directory_delays_the_decision_and_loses_nothing() {
    let toml = FILM.replace(
        "backoff_initial = \"50ms\"",
        "backoff_initial = \"50ms\"\nmax_attempts = 10000",
    );
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    // A first decision, so the file exists and the agent has read it.
    assessed_for(&s, "shot", 1);
    let file = s.agent("director").dir.join("decisions.jsonl");
    let saved = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let id = s.ok(&[
        "send",
        "director",
        "--type",
        "shot",
        "--json",
        r#"{"scene": 2}"#,
    ]);
    let id = id.trim().to_string();
    // The message waits (without using up an attempt) while the fault lasts.
    wait_until(SOON, "the message deferred twice on the directory", || {
        let deferred = records(&s.agent("director").activity())
            .into_iter()
            .filter(|r| {
                r["event"] == "message_deferred"
                    && r["id"] == id.as_str()
                    && r["reason"]
                        .as_str()
                        .is_some_and(|e| e.contains("decision files"))
            })
            .count();
        (deferred >= 2).then_some(())
    });
    assert!(!records(&s.agent("director").activity())
        .iter()
        .any(|r| r["event"] == "message_failed" && r["id"] == id.as_str()));
    // The file comes back: the decision goes through, once.
    std::fs::remove_dir(&file).unwrap();
    std::fs::write(&file, saved).unwrap();
    wait_answer(&s, "shot_done", &id);
    let lines = decisions(&s);
    let mine: Vec<&Value> = lines.iter().filter(|l| l["msg"] == id.as_str()).collect();
    assert_eq!(mine.len(), 1, "one assessment: {lines:?}");
    let d = &mine[0]["decision"];
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "resolved" && l["decision"] == *d)
            .count(),
        1
    );
    let answers = records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "shot_done" && r["reply_to"] == id.as_str())
        .count();
    assert_eq!(answers, 1);
    assert!(records(&s.agent("director").deadletter()).is_empty());
}

#[test]
fn a_crash_between_the_decision_log_and_the_outputs_logs_once_and_answers_once() {
    let mut s = Society::new(BIN, FILM);
    // Every agent process aborts right after it writes decision lines; the
    // replacement finds them, writes nothing new, and commits the outputs.
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "agent.decisions.written")]);
    let id = s.ok(&[
        "send",
        "director",
        "--type",
        "shot",
        "--json",
        r#"{"scene": 7}"#,
    ]);
    let id = id.trim().to_string();
    wait_answer(&s, "shot_done", &id);
    let starts = records(&s.agent("director").activity())
        .into_iter()
        .filter(|r| r["event"] == "started")
        .count();
    assert!(
        starts >= 2,
        "the crash point fired and the agent was replaced ({starts} starts)"
    );
    let lines = decisions(&s);
    assert_eq!(events(&lines, "assessed").len(), 1, "{lines:?}");
    assert_eq!(events(&lines, "resolved").len(), 1, "{lines:?}");
    let answers = records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "shot_done" && r["reply_to"] == id.as_str())
        .count();
    assert_eq!(answers, 1);
}

#[test]
fn share_with_lets_an_agent_learn_from_a_related_roles_approved_patterns() {
    let toml = r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"
backoff_initial = "50ms"

[autonomy.baselines]
lighting = "autonomous"
[learning.role.gaffer]
share_with = ["dp"]

[[agent]]
id = "dp"
role = "dp"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply", type = "lit" }]
[agent.brain.rules.actions.proposal]
decision_type = "lighting"
scope = "scene"
affects_multiple_departments = false
is_foundational = false
reversibility = "easy"
resource_cost = 0
has_complete_information = true
features = { key = "soft" }
plan = "soft key"

[[agent]]
id = "gaffer"
role = "gaffer"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
[[agent.brain.rules.actions]]
do = "decide"
then = [{ do = "reply", type = "lit" }]
[agent.brain.rules.actions.proposal]
decision_type = "lighting"
scope = "scene"
affects_multiple_departments = false
is_foundational = false
reversibility = "easy"
resource_cost = 0
has_complete_information = true
features = { key = "soft" }
plan = "soft key"
"#;
    let mut s = Society::new(BIN, toml);
    s.start_supervisor();
    for n in 0..3 {
        let id = s.ok(&["send", "dp", &format!("light {n}")]);
        wait_answer(&s, "lit", id.trim());
    }
    let patterns = s.agent("dp").dir.join("learning/patterns.json");
    wait_until(SOON, "dp's pattern library with three decisions", || {
        let v: Value = serde_json::from_slice(&std::fs::read(&patterns).ok()?).ok()?;
        (v["lighting"].as_array()?.len() == 3).then_some(())
    });
    let id = s.ok(&["send", "gaffer", "light it"]);
    wait_answer(&s, "lit", id.trim());
    let gaffer = records(&s.agent("gaffer").dir.join("decisions.jsonl"));
    let a = events(&gaffer, "assessed").pop().unwrap();
    // Three similar approved decisions, read from the dp's library: 1.0,
    // where the gaffer's own history alone would give 0.5.
    assert_eq!(a["scores"]["pattern_match"], 1.0, "{a}");
    // n = 3, all approved: 0.7 + 0.3 × 0.3.
    assert_eq!(a["scores"]["pattern_confidence"], 0.79);
    // The dp does not read the gaffer's.
    let id = s.ok(&["send", "dp", "light again"]);
    wait_answer(&s, "lit", id.trim());
    let dp = records(&s.agent("dp").dir.join("decisions.jsonl"));
    let last = events(&dp, "assessed").pop().unwrap();
    assert_eq!(last["scores"]["pattern_match"], 1.0, "its own three");
}
