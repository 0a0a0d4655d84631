//! `script`: deterministic rules from config. Drives the offline demo, the
//! self-test and the crash tests, so it can also misbehave on purpose (fail,
//! sleep, hang, exit abruptly) — always as a function of the message and the
//! attempt number, so a run is reproducible.
//!
//! ```json
//! {"kind": "script", "rules": [
//!   {"type": "task", "when": {"stage": "draft"}, "actions": [
//!     {"do": "sleep", "ms": 200},
//!     {"do": "exit", "code": 101, "until_attempt": 1},
//!     {"do": "forward", "to": "role:review", "set": {"stage": "review"}},
//!     {"do": "case_event", "event": "drafted"}]}]}
//! ```
//!
//! `remember` and `recall` steps use the agent's memory
//! (`society_core::memory`): a remember's id is derived from the message and
//! the step's place in the rule, so a retried message remembers nothing twice;
//! a recall's hits are `{{recall}}` for the steps after it.
//!
//! The first rule whose `type` (if given) equals the message type and whose
//! `when` fields all equal the body's fields wins. No match: handled, no output.

mod rule;
pub(crate) mod template;

pub use rule::{Op, Rule, Step};

use crate::{Action, Brain, BrainError, Context};
use society_core::{memory, CaseId, Envelope};
use std::time::{Duration, Instant, SystemTime};

pub struct Script {
    rules: Vec<Rule>,
}

impl Script {
    pub fn from_config(config: &serde_json::Value) -> Result<Script, BrainError> {
        let rules = config
            .get("rules")
            .cloned()
            .unwrap_or(serde_json::Value::Array(vec![]));
        rule::check_op_names(&rules).map_err(|reason| BrainError::Config {
            kind: "script".into(),
            reason,
        })?;
        let rules: Vec<Rule> = serde_json::from_value(rules).map_err(|e| BrainError::Config {
            kind: "script".into(),
            reason: e.to_string(),
        })?;
        for rule in &rules {
            rule.check()?;
        }
        Ok(Script { rules })
    }
}

impl Brain for Script {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &Envelope) -> Result<Vec<Action>, BrainError> {
        let Some(rule) = self.rules.iter().find(|r| r.matches(msg)) else {
            return Ok(vec![Action::Log {
                message: format!("no script rule matches type {:?}", msg.kind),
            }]);
        };
        let mut vars = template::Vars {
            msg,
            ctx_agent: ctx.agent.as_str(),
            role: ctx.role,
            attempt: ctx.attempt,
            recall: None,
        };
        let mut actions = Vec::new();
        for (index, step) in rule.actions.iter().enumerate() {
            if step.until_attempt.is_some_and(|n| ctx.attempt > n) {
                continue;
            }
            if let Some(action) = simple(&step.op, msg, &vars) {
                actions.push(action);
                continue;
            }
            match &step.op {
                Op::Decide { proposal, then } => actions.push(Action::Decide {
                    proposal: vars.render(proposal),
                    then: then
                        .iter()
                        .filter(|t| t.until_attempt.is_none_or(|n| ctx.attempt <= n))
                        .filter_map(|t| simple(&t.op, msg, &vars))
                        .collect(),
                }),
                Op::RequestApproval {
                    plan,
                    rationale,
                    alternatives,
                } => actions.push(Action::RequestApproval {
                    plan: vars.render_str(plan),
                    rationale: vars.render_str(rationale),
                    alternatives: alternatives.iter().map(|a| vars.render_str(a)).collect(),
                }),
                Op::Escalate { reason, context } => actions.push(Action::Escalate {
                    reason: vars.render_str(reason),
                    context: context
                        .as_ref()
                        .map(|c| vars.render(c))
                        .unwrap_or_else(|| serde_json::json!({})),
                }),
                Op::Remember { text, tags, case } => {
                    remember(ctx, msg, &vars, index, text, tags, case.as_deref())?
                }
                Op::Recall { query, k } => {
                    let store = memory::Store::new(ctx.folder);
                    let found =
                        store.recall(&vars.render_str(query), *k, SystemTime::now(), true)?;
                    vars.recall = Some(serde_json::to_value(&found.hits).unwrap_or_default());
                }
                Op::Fail { times } => {
                    if ctx.attempt <= *times {
                        return Err(BrainError::Scripted {
                            attempt: ctx.attempt,
                            until: *times,
                        });
                    }
                }
                Op::Sleep { ms } => work_for(ctx, Duration::from_millis(*ms))?,
                Op::Hang => loop {
                    // Deliberately no heartbeat and no stop check: only SIGKILL ends this.
                    std::thread::sleep(Duration::from_secs(3600));
                },
                Op::Exit { code } => {
                    tracing::warn!(code, "script brain exits abruptly on purpose");
                    std::process::exit(*code);
                }
                // Plain outputs, handled by `simple` above.
                Op::Reply { .. }
                | Op::Send { .. }
                | Op::Forward { .. }
                | Op::CaseEvent { .. }
                | Op::Log { .. } => {}
            }
        }
        Ok(actions)
    }
}

/// A `remember` step: its id is `derive_id(message, "script-<step>")`.
fn remember(
    ctx: &mut Context<'_>,
    msg: &Envelope,
    vars: &template::Vars<'_>,
    index: usize,
    text: &str,
    tags: &[String],
    case: Option<&str>,
) -> Result<(), BrainError> {
    let case = match case.map(|c| vars.render_str(c)) {
        Some(c) if c.is_empty() => None,
        Some(c) => Some(CaseId::new(c.as_str()).map_err(|e| BrainError::Config {
            kind: "script".into(),
            reason: format!("remember case {c:?}: {e}"),
        })?),
        None => msg.case.clone(),
    };
    let note = memory::Note {
        text: vars.render_str(text),
        tags: tags.iter().map(|t| vars.render_str(t)).collect(),
        case,
    };
    let id = memory::derive_id(&msg.id, &format!("script-{index}"));
    let done = memory::Store::new(ctx.folder).remember(&id, &note, Some(msg.id))?;
    ctx.hooks.log(
        "remembered",
        serde_json::json!({"id": msg.id, "memory": id,
            "stored": done == memory::Remembered::Stored}),
    );
    Ok(())
}

/// A body is an object: a placeholder that rendered to anything else is
/// wrapped as `{"value": ...}`.
fn object(v: serde_json::Value) -> serde_json::Value {
    if v.is_object() {
        v
    } else {
        serde_json::json!({ "value": v })
    }
}

/// The steps that are plain outputs (also allowed in a decide's `then`).
fn simple(op: &Op, msg: &Envelope, vars: &template::Vars<'_>) -> Option<Action> {
    let action = match op {
        Op::Reply { kind, body } => Action::Reply {
            kind: kind
                .clone()
                .unwrap_or_else(|| society_core::kinds::message::REPLY.into()),
            body: body
                .as_ref()
                .map(|b| object(vars.render(b)))
                .unwrap_or_else(|| msg.body.clone()),
        },
        Op::Send {
            to,
            kind,
            body,
            needs,
        } => Action::Send {
            to: to.clone(),
            kind: kind.clone().unwrap_or_else(|| msg.kind.clone()),
            body: object(vars.render(body)),
            case: None,
            reply_to: None,
            needs: needs.clone(),
        },
        Op::Forward {
            to,
            kind,
            set,
            needs,
        } => {
            let mut body = msg.body.clone();
            if let (Some(obj), Some(set)) = (body.as_object_mut(), set) {
                for (k, v) in set {
                    obj.insert(k.clone(), vars.render(v));
                }
            }
            Action::Send {
                to: to.clone(),
                kind: kind.clone().unwrap_or_else(|| msg.kind.clone()),
                body,
                case: None,
                reply_to: None,
                needs: needs.clone(),
            }
        }
        Op::CaseEvent { event, fields } => Action::CaseEvent {
            event: event.clone(),
            fields: fields
                .as_ref()
                .map(|f| vars.render(f))
                .unwrap_or_else(|| serde_json::json!({})),
        },
        Op::Log { message } => Action::Log {
            message: vars.render_str(message),
        },
        _ => return None,
    };
    Some(action)
}

/// Busy work that stays responsive: heartbeats and abandons on stop.
fn work_for(ctx: &mut Context<'_>, total: Duration) -> Result<(), BrainError> {
    let end = Instant::now() + total;
    loop {
        if ctx.hooks.should_stop() {
            return Err(BrainError::Abandoned);
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
        ctx.hooks.heartbeat();
    }
}
