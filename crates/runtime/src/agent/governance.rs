//! Decisions, on the agent's side: a brain's `decide` is assessed here (by
//! the runtime, never the brain), logged in `decisions.jsonl`, and carried
//! out on the level the assessment chose; the answers that come back
//! (`approval_response` to a decision, `debate_result`, `decision_review`)
//! are handled here too, and feed the agent's learned state.
//!
//! Exactly once: a decision's id derives from the message being handled,
//! and each `(decision, event)` line is written once, so a retried or
//! replayed message neither re-logs nor re-assesses (the first assessment
//! stands). `learning/` is a cache: rebuilt from `decisions.jsonl` at start.

use super::Agent;
use crate::governance::{self, Resolved};
use serde_json::{json, Value};
use society_brains::{Action, BrainError};
use society_core::governance::learning::{Learning, Pattern, Record};
use society_core::governance::{assess, DecisionContext, Level};
use society_core::jsonl::read_objects;
use society_core::kinds::{decision_log, message};
use society_core::{Envelope, MsgId, Party};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Decision ids derive from the handled message's id with this offset plus
/// the action's index (distinct from output ids).
const DECISION_INDEX: u32 = 0x4000_0000;

/// The reason the source gives for a rejection without feedback.
pub const DENIED: &str = "Approval denied without actionable feedback";

#[derive(Default)]
pub(crate) struct Gov {
    loaded: bool,
    learning: Learning,
    /// The `assessed` line of every decision, by id.
    assessed: HashMap<String, Value>,
    /// `decision/event` pairs already in `decisions.jsonl`.
    logged: HashSet<String>,
    /// Lines not yet appended (one append per handled message).
    unwritten: Vec<Vec<u8>>,
    /// `learning/` is behind the learned state (written when caught up).
    dirty: bool,
    /// The learning policy of the last decision.
    learning_policy: society_core::governance::LearningPolicy,
}

/// A decisions line to write once the outputs' ids are known.
struct Pending {
    line: Value,
    /// Index (in the returned actions) of the request this line names.
    request_at: Option<usize>,
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ts_s(ts: &str) -> f64 {
    society_core::time::parse_rfc3339(ts)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn refuse(e: impl std::fmt::Display) -> BrainError {
    BrainError::Decision(e.to_string())
}

/// A failure of the files, not of the proposal: retried.
fn io(e: impl std::fmt::Display) -> BrainError {
    BrainError::DecisionIo(e.to_string())
}

impl Agent {
    /// The brain's answer to a message, with decisions carried out: what
    /// the delivery paths call instead of the brain.
    pub(crate) fn think(
        &mut self,
        env: &Envelope,
        attempt: u32,
    ) -> Result<Vec<Action>, BrainError> {
        let result = self.think_inner(env, attempt);
        // The lines go to disk before the outputs do (a replay finds them
        // and logs nothing twice); a refusal's line too.
        self.flush_decisions()?;
        result
    }

    fn think_inner(&mut self, env: &Envelope, attempt: u32) -> Result<Vec<Action>, BrainError> {
        if env.kind == society_core::kinds::message::PURPOSE {
            // The runtime's: `society spawn --purpose` recorded it in
            // `metadata.json` already; the line only marked the claim.
            return Ok(Vec::new());
        }
        if let Some(actions) = self.governance_message(env)? {
            return Ok(actions);
        }
        let actions = self.call_brain(env, attempt)?;
        if !actions.iter().any(|a| matches!(a, Action::Decide { .. })) {
            return Ok(actions);
        }
        self.load_gov().map_err(io)?;
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for (i, action) in actions.into_iter().enumerate() {
            match action {
                Action::Decide { proposal, then } => {
                    let base = out.len();
                    let (acts, logs) = match self.decide(env, i as u32, proposal, then) {
                        Ok(x) => x,
                        // A refused proposal is logged (once: the message is
                        // dead-lettered at once); a file failure is retried.
                        Err(e @ BrainError::Decision(_)) => {
                            let refused = json!({"event": decision_log::REFUSED, "msg": env.id, "error": e.to_string()});
                            self.log_decision(refused, Some(&format!("refused-{}", env.id)));
                            self.activity.event(
                                "decision_refused",
                                json!({"id": env.id, "error": e.to_string()}),
                            );
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    };
                    out.extend(acts);
                    pending.extend(logs.into_iter().map(|mut p| {
                        p.request_at = p.request_at.map(|r| r + base);
                        p
                    }));
                }
                other => out.push(other),
            }
        }
        for p in pending {
            let mut line = p.line;
            if let Some(at) = p.request_at {
                line["request"] = json!(MsgId::derive(&env.id, at as u32));
            }
            let key = line["decision"].as_str().map(str::to_string);
            self.log_decision(line, key.as_deref());
        }
        Ok(out)
    }

    /// Reads `decisions.jsonl` once: the assessments, what is logged, and
    /// the learned state (written back to `learning/`).
    fn load_gov(&mut self) -> Result<(), String> {
        if self.gov.loaded {
            return Ok(());
        }
        let lp = self.policy()?.learning;
        let mut gov = Gov::default();
        let mut cursor = 0;
        let lines =
            read_objects(&self.paths.decisions(), &mut cursor).map_err(|e| e.to_string())?;
        for line in lines {
            if let (Some(decision_log::REFUSED), Some(msg)) =
                (line["event"].as_str(), line["msg"].as_str())
            {
                gov.logged
                    .insert(format!("refused-{msg}/{}", decision_log::REFUSED));
                continue;
            }
            if let (Some(d), Some(ev)) = (line["decision"].as_str(), line["event"].as_str()) {
                gov.logged.insert(format!("{d}/{ev}"));
                gov.apply(line, &lp);
            }
        }
        gov.loaded = true;
        gov.learning_policy = lp;
        self.gov = gov;
        self.save_learning();
        Ok(())
    }

    fn policy(&self) -> Result<Resolved, String> {
        governance::load(&self.layout)
            .map_err(|e| e.to_string())?
            .resolve(Some(&self.cfg.role))
    }

    /// Appends a decisions line once per `(decision, event)` (`key` None:
    /// always), updating the learned state for `resolved` and `reviewed`.
    fn log_decision(&mut self, mut line: Value, key: Option<&str>) {
        let event = line["event"].as_str().unwrap_or("").to_string();
        if let Some(d) = key {
            if !self.gov.logged.insert(format!("{d}/{event}")) {
                return;
            }
        }
        line["ts"] = json!(society_core::time::now_rfc3339());
        line["agent"] = json!(self.cfg.id);
        self.gov.unwritten.push(line.to_string().into_bytes());
        let lp = self.gov.learning_policy.clone();
        // The same fold a replay makes of the file, so the live state and a
        // rebuilt one cannot drift apart.
        if self.gov.apply(line, &lp) {
            self.gov.dirty = true;
        }
    }

    /// Appends the buffered `decisions.jsonl` lines in one write (one
    /// fsync when durable). A failed write fails the attempt: the lines stay
    /// buffered and the message is tried again.
    pub(crate) fn flush_decisions(&mut self) -> Result<(), BrainError> {
        if self.gov.unwritten.is_empty() {
            return Ok(());
        }
        let written: Result<u64, society_core::FormatError> = society_core::jsonl::Appender::open(
            &self.paths.decisions(),
            self.cfg.policy.durability,
            self.cfg.policy.max_record,
        )
        .map_err(Into::into)
        .and_then(|mut a| a.append_batch(&self.gov.unwritten));
        written.map_err(|e| io(format!("cannot append to decisions.jsonl: {e}")))?;
        self.gov.unwritten.clear();
        // Tests: a crash after the lines, before the outputs.
        society_core::fault::point("agent.decisions.written");
        Ok(())
    }

    /// Writes `learning/` if it is behind (when the agent has caught up).
    pub(crate) fn flush_learning(&mut self) {
        if self.gov.dirty {
            self.save_learning();
            self.gov.dirty = false;
        }
    }

    /// `learning/{history.jsonl, prefs.json, patterns.json}`, each replaced
    /// atomically (a cache: any of them may be deleted).
    fn save_learning(&self) {
        let dir = self.paths.learning();
        let write = || -> Result<(), society_core::FormatError> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| society_core::IoError::new("create", &dir, e))?;
            let mut history = Vec::new();
            for r in &self.gov.learning.history {
                history.extend(serde_json::to_vec(r).unwrap_or_default());
                history.push(b'\n');
            }
            society_core::atomic::write_bytes(&dir.join("history.jsonl"), &history, false)?;
            society_core::atomic::write_json(
                &dir.join("prefs.json"),
                &self.gov.learning.prefs,
                false,
            )?;
            society_core::atomic::write_json(
                &dir.join("patterns.json"),
                &self.gov.learning.patterns,
                false,
            )?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, "learning cache not written");
        }
    }

    /// The pattern libraries of agents whose roles `share_with` names.
    fn shared_patterns(&self, roles: &[String], kind: &str) -> Vec<Pattern> {
        if roles.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for id in self.layout.agent_ids().unwrap_or_default() {
            if id == self.cfg.id {
                continue;
            }
            let paths = self.layout.agent(&id);
            let role = society_core::atomic::read_json::<society_core::state::AgentConfig>(
                &paths.config(),
                "agent config",
            )
            .ok()
            .flatten()
            .map(|c| c.role);
            if !role.is_some_and(|r| roles.contains(&r)) {
                continue;
            }
            let libs: Option<BTreeMap<String, Vec<Pattern>>> = society_core::atomic::read_json(
                &paths.learning().join("patterns.json"),
                "patterns",
            )
            .ok()
            .flatten();
            if let Some(mut libs) = libs {
                out.extend(libs.remove(kind).unwrap_or_default());
            }
        }
        out
    }

    /// Assesses one proposal and turns it into outputs for its level.
    fn decide(
        &mut self,
        input: &Envelope,
        index: u32,
        proposal: Value,
        then: Vec<Action>,
    ) -> Result<(Vec<Action>, Vec<Pending>), BrainError> {
        let policy = self.policy().map_err(|e| io(format!("policy: {e}")))?;
        self.gov.learning_policy = policy.learning.clone();
        let ctx = DecisionContext::parse(&proposal, &[]).map_err(refuse)?;
        let decision = MsgId::derive(&input.id, DECISION_INDEX + index).to_string();
        // A revision answers a rejection with feedback.
        let prior = (input.kind == message::APPROVAL_RESPONSE)
            .then(|| input.body.get("proposal"))
            .flatten();
        let revision = prior
            .and_then(|p| p["revision"].as_u64())
            .map_or(1, |r| r + 1);
        let parent = prior
            .and_then(|p| p["decision"].as_str())
            .map(str::to_string);
        let parked = match prior {
            Some(_) => input.body.get("parked").cloned().unwrap_or(Value::Null),
            None => serde_json::to_value(input).unwrap_or(Value::Null),
        };
        let features = ctx.feature_vector();
        let (level, assessed_line) = match self.gov.assessed.get(&decision) {
            // Retried: the first assessment stands.
            Some(line) => (
                line["level"]
                    .as_str()
                    .and_then(|l| l.parse::<Level>().ok())
                    .unwrap_or(Level::RequiresApproval),
                None,
            ),
            None => {
                let lp = &policy.learning;
                let shared = self.shared_patterns(&lp.share_with, &ctx.decision_type);
                let learning = &self.gov.learning;
                let pm = learning.pattern_match(&ctx.decision_type, &features, &shared, lp);
                let pc = learning.pattern_confidence(
                    &ctx.decision_type,
                    &features,
                    &shared,
                    now_s(),
                    lp,
                );
                let pref = learning.preference(&ctx.decision_type, lp);
                let a = assess(&ctx, &policy.autonomy, pm, pc, pref).ok_or_else(|| {
                    refuse(format!(
                        "invalid decision proposal: decision type {:?} has no baseline in [autonomy.baselines] (set autonomy.unknown_type to accept unknown types)",
                        ctx.decision_type
                    ))
                })?;
                let line = json!({
                    "event": decision_log::ASSESSED, "decision": decision, "msg": input.id, "case": input.case,
                    "decision_type": ctx.decision_type, "level": a.level, "rule": a.rule,
                    "baseline": a.baseline, "scores": a.scores, "preference": a.preference,
                    "context": proposal, "features": features, "revision": revision, "parent": parent,
                });
                (a.level, Some(line))
            }
        };
        let mut logs: Vec<Pending> = assessed_line
            .into_iter()
            .map(|line| Pending {
                line,
                request_at: None,
            })
            .collect();
        let rebased = rebase(then.clone(), &parked, input);
        let summary = json!({
            "decision": decision, "agent": self.cfg.id, "decision_type": ctx.decision_type,
            "level": level, "revision": revision, "parent": parent, "context": proposal,
        });
        let then_json = serde_json::to_value(&rebased).unwrap_or(Value::Null);
        let actions = match level {
            Level::Autonomous => {
                logs.push(Pending {
                    line: json!({"event": decision_log::RESOLVED, "decision": decision, "approved": true,
                                 "approver": decision_log::SELF_APPROVER, "outcome": "executed", "feedback": null,
                                 "quality": null, "collaboration": null, "reason": null}),
                    request_at: None,
                });
                rebased
            }
            Level::RequiresApproval => {
                logs.push(Pending {
                    line: json!({"event": decision_log::APPROVAL_REQUESTED, "decision": decision}),
                    request_at: Some(0),
                });
                vec![Action::Send {
                    to: Party::Orchestrator,
                    kind: message::APPROVAL_REQUEST.into(),
                    body: json!({
                        "plan": ctx.plan_text(), "rationale": ctx.rationale,
                        "alternatives": ctx.alternatives, "revision": revision,
                        "parked": parked, "proposal": summary, "then": then_json,
                    }),
                    case: None,
                    reply_to: None,
                    needs: Vec::new(),
                }]
            }
            Level::Collaborative => {
                let mut participants: Vec<String> = Vec::new();
                for p in ctx
                    .dependencies
                    .iter()
                    .cloned()
                    .chain(policy.debate.stakeholders_of(&ctx.decision_type))
                {
                    if p != self.cfg.id.as_str() && !participants.contains(&p) {
                        participants.push(p);
                    }
                }
                logs.push(Pending {
                    line: json!({"event": decision_log::DEBATE_REQUESTED, "decision": decision,
                                 "participants": participants}),
                    request_at: Some(0),
                });
                let position = match &ctx.plan {
                    Value::Object(m) => Value::Object(m.clone()),
                    _ => json!({}),
                };
                vec![Action::Send {
                    to: Party::Supervisor,
                    kind: message::DEBATE_REQUEST.into(),
                    body: json!({
                        "decision": decision, "agent": self.cfg.id,
                        "decision_type": ctx.decision_type, "plan": ctx.plan,
                        "position": position, "rationale": ctx.rationale,
                        "alternatives": ctx.alternatives, "participants": participants,
                        "time_limit_ms": policy.debate.time_limit.as_millis() as u64,
                        "threshold": policy.debate.threshold,
                        "min_interval_ms": policy.debate.min_interval.as_millis() as u64,
                        "revision": revision, "proposal": summary, "parked": parked,
                        "then": then_json,
                    }),
                    case: None,
                    reply_to: None,
                    needs: Vec::new(),
                }]
            }
        };
        Ok((actions, logs))
    }

    /// Answers to decisions, handled by the runtime. `None`: the brain's.
    fn governance_message(&mut self, env: &Envelope) -> Result<Option<Vec<Action>>, BrainError> {
        let kind = env.kind.as_str();
        let ours = match kind {
            message::DECISION_REVIEW => env.from == Party::Orchestrator,
            message::DEBATE_RESULT => env.from == Party::Supervisor,
            message::APPROVAL_RESPONSE => env.body.get("proposal").is_some_and(Value::is_object),
            _ => false,
        };
        if !ours {
            return Ok(None);
        }
        self.load_gov().map_err(io)?;
        let body = &env.body;
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        match kind {
            message::DECISION_REVIEW => {
                let decision = text("decision")
                    .ok_or_else(|| refuse("a decision_review needs \"decision\""))?;
                if !self.gov.assessed.contains_key(&decision) {
                    return Err(refuse(format!(
                        "decision_review: no decision {decision:?} in decisions.jsonl"
                    )));
                }
                let ok = body.get("ok").and_then(Value::as_bool).unwrap_or(false);
                self.log_decision(
                    json!({"event": decision_log::REVIEWED, "decision": decision, "ok": ok,
                           "feedback": body.get("feedback"), "quality": body.get("quality")}),
                    Some(&decision),
                );
                Ok(Some(Vec::new()))
            }
            message::DEBATE_RESULT => {
                let decision =
                    text("decision").ok_or_else(|| refuse("a debate_result needs \"decision\""))?;
                if body.get("consensus").and_then(Value::as_bool) == Some(true) {
                    self.log_decision(
                        json!({"event": decision_log::RESOLVED, "decision": decision, "approved": true,
                               "approver": "debate", "outcome": "executed", "feedback": null,
                               "quality": null, "reason": null,
                               "collaboration": {"debate": body.get("debate"), "agreed_plan": body.get("agreed_plan"),
                                                 "agreement": body.get("agreement"), "duration_ms": body.get("duration_ms"),
                                                 "iterations": body.get("iterations")}}),
                        Some(&decision),
                    );
                    Ok(Some(stored_then(body)))
                } else {
                    self.log_decision(
                        json!({"event": decision_log::APPROVAL_REQUESTED, "decision": decision,
                               "request": body.get("escalated"), "debate": body.get("debate"),
                               "areas_of_disagreement": body.get("areas_of_disagreement")}),
                        Some(&decision),
                    );
                    Ok(Some(Vec::new()))
                }
            }
            _ => {
                let proposal = &body["proposal"];
                let decision = proposal["decision"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let approved = body
                    .get("approved")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let note = text("note").filter(|n| !n.trim().is_empty());
                let revision = proposal["revision"].as_u64().unwrap_or(1);
                let base = json!({"event": decision_log::RESOLVED, "decision": decision, "approver": "orchestrator",
                                  "feedback": note, "quality": body.get("quality"), "collaboration": null,
                                  "request": body.get("request")});
                let mut line = base;
                // An override or a chosen alternative: the orchestrator's
                // plan, not the agent's, goes ahead — the brain carries it
                // out (its `then` was for its own plan). Learning sees the
                // agent's plan as not approved.
                let how = body["how"]["kind"].as_str().unwrap_or("");
                if matches!(how, "override" | "choose") {
                    line["approved"] = json!(false);
                    line["outcome"] = json!(if how == "override" {
                        "overridden"
                    } else {
                        "chosen"
                    });
                    line["plan"] = body["override"].clone();
                    line["option"] = body["how"]["option"].clone();
                    self.log_decision(line, Some(&decision));
                    return Ok(None);
                }
                if how == "alternatives" {
                    line["approved"] = json!(false);
                    line["outcome"] = json!("alternatives_requested");
                    self.log_decision(line, Some(&decision));
                    return Ok(None);
                }
                if approved {
                    line["approved"] = json!(true);
                    line["outcome"] = json!("executed");
                    self.log_decision(line, Some(&decision));
                    return Ok(Some(stored_then(body)));
                }
                line["approved"] = json!(false);
                let Some(note) = note else {
                    line["outcome"] = json!("denied");
                    line["reason"] = json!(DENIED);
                    self.log_decision(line, Some(&decision));
                    return Ok(Some(Vec::new()));
                };
                let max = self.policy().map(|p| p.autonomy.max_revisions).unwrap_or(3);
                if revision > u64::from(max) {
                    line["outcome"] = json!("escalated");
                    line["reason"] = json!(format!("rejected after {max} revisions"));
                    self.log_decision(line, Some(&decision));
                    return Ok(Some(vec![Action::Escalate {
                        reason: format!(
                            "decision {decision} rejected after {max} revisions; last feedback: {note}"
                        ),
                        context: json!({"decision": decision, "proposal": proposal, "feedback": note}),
                    }]));
                }
                // Revise: the brain sees the rejection and proposes again.
                line["outcome"] = json!("revise");
                self.log_decision(line, Some(&decision));
                Ok(None)
            }
        }
    }
}

impl Gov {
    /// Folds one `decisions.jsonl` line into the assessments and the
    /// learned state — for a replay of the file and for a line just logged
    /// alike. True if the learned state changed.
    fn apply(&mut self, line: Value, lp: &society_core::governance::LearningPolicy) -> bool {
        let Some(d) = line["decision"].as_str().map(str::to_string) else {
            return false;
        };
        match line["event"].as_str() {
            Some(decision_log::ASSESSED) => {
                self.assessed.insert(d, line);
                false
            }
            Some(decision_log::RESOLVED) => match record(&self.assessed, &line) {
                Some(r) => {
                    self.learning.log(r, lp);
                    true
                }
                None => false,
            },
            Some(decision_log::REVIEWED) => {
                self.learning.review(
                    &d,
                    line["ok"].as_bool().unwrap_or(false),
                    line["feedback"].as_str().map(str::to_string),
                    ts_s(line["ts"].as_str().unwrap_or("")),
                    lp,
                );
                true
            }
            _ => false,
        }
    }
}

/// The `then` actions stored in a request, already rebased on the parked message.
fn stored_then(body: &Value) -> Vec<Action> {
    body.get("then")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default()
}

/// `then` actions as they must run later, when the message handled is an
/// answer and no longer the one the decision was about: a reply answers
/// the parked message's sender, a send stays in its case.
fn rebase(then: Vec<Action>, parked: &Value, input: &Envelope) -> Vec<Action> {
    let Ok(parked) = serde_json::from_value::<Envelope>(parked.clone()) else {
        return then;
    };
    // Even when the input is the parked message itself, a reply is made
    // explicit: the actions may run later, on another message (an answer).
    let _ = input;
    then.into_iter()
        .map(|a| match a {
            Action::Reply { kind, body } => Action::Send {
                to: parked.from.clone(),
                kind,
                body,
                case: parked.case.clone(),
                reply_to: Some(parked.id),
                needs: Vec::new(),
            },
            Action::Send {
                to,
                kind,
                body,
                case,
                reply_to,
                needs,
            } => Action::Send {
                to,
                kind,
                body,
                case: case.or_else(|| parked.case.clone()),
                reply_to,
                needs,
            },
            other => other,
        })
        .collect()
}

/// The learning record of a `resolved` line, from its `assessed` line.
fn record(assessed: &HashMap<String, Value>, resolved: &Value) -> Option<Record> {
    let d = resolved["decision"].as_str()?;
    let a = assessed.get(d)?;
    let score = |k: &str| a["scores"][k].as_f64().unwrap_or(0.0);
    Some(Record {
        decision: d.to_string(),
        ts: ts_s(resolved["ts"].as_str().unwrap_or("")),
        decision_type: a["decision_type"].as_str()?.to_string(),
        level: a["level"].as_str()?.parse().ok()?,
        features: serde_json::from_value(a["features"].clone()).unwrap_or_default(),
        impact: score("impact"),
        confidence: score("confidence"),
        risk: score("risk"),
        approved: resolved["approved"].as_bool().unwrap_or(false),
        quality: resolved["quality"].as_f64(),
        feedback: resolved["feedback"].as_str().map(str::to_string),
        approver: resolved["approver"].as_str().unwrap_or("").to_string(),
    })
}
