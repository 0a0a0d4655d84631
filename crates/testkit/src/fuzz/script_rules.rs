//! `script_rules`: a `script` brain config (rules, read and checked by
//! `Script::from_config`), one message handled by it, and its `{{...}}`
//! templates rendered directly.
//!
//! The input is one JSON object: the brain config (`rules`), plus the
//! message (`msg_type`, `msg_body`), the attempt (`attempt`) and the hits
//! of an earlier recall (`recall`). Steps that wait or end the process
//! (`hang`, `exit`, `sleep`) or touch the agent's memory files
//! (`remember`, `recall`) are taken out before the rules are read.

use serde_json::{json, Value};
use society_brains::fuzzing::{script_render, script_render_str};
use society_brains::script::Script;
use society_brains::{Action, Brain, Context, Hooks};
use society_core::envelope::valid_type;
use society_core::AgentId;
use std::path::Path;

pub fn check(data: &[u8]) {
    let Ok(Value::Object(mut input)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let kind = input
        .get("msg_type")
        .and_then(Value::as_str)
        .filter(|t| valid_type(t))
        .unwrap_or("task")
        .to_string();
    let body = input
        .get("msg_body")
        .filter(|b| b.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let msg = super::inbound(&kind, body);
    let recall = input.get("recall").cloned();
    let attempt = input
        .get("attempt")
        .and_then(Value::as_u64)
        .map_or(1, |a| a.clamp(1, 10) as u32);

    for s in strings(&Value::Object(input.clone())) {
        let out = script_render_str(&s, &msg, recall.clone());
        if !s.contains("{{") {
            assert_eq!(out, s, "text without placeholders changed");
        }
        let value = script_render(&Value::String(s.clone()), &msg, recall.clone());
        if !s.contains("{{") {
            assert_eq!(value, Value::String(s), "text without placeholders changed");
        }
    }

    if let Some(rules) = input.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in rules.iter_mut() {
            if let Some(steps) = rule.get_mut("actions").and_then(Value::as_array_mut) {
                steps.retain(|s| {
                    !matches!(
                        s.get("do").and_then(Value::as_str),
                        Some("hang" | "exit" | "sleep" | "remember" | "recall")
                    )
                });
            }
        }
    }
    let mut script = match Script::from_config(&Value::Object(input)) {
        Ok(script) => script,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let agent = AgentId::new("fuzz").expect("a constant agent id");
    let mut hooks = Quiet;
    let mut ctx = Context {
        agent: &agent,
        role: "fuzz",
        folder: Path::new("/nonexistent/society-fuzz"),
        attempt,
        gen: 1,
        hooks: &mut hooks,
    };
    let Ok(actions) = script.handle(&mut ctx, &msg) else {
        return;
    };
    for action in &actions {
        valid_output(action);
        if let Action::Decide { then, .. } = action {
            then.iter().for_each(valid_output);
        }
    }
}

/// What the runtime turns into envelopes must make valid ones.
fn valid_output(action: &Action) {
    match action {
        Action::Send { kind, body, .. } | Action::Reply { kind, body } => {
            assert!(valid_type(kind), "an output of type {kind:?}");
            assert!(body.is_object(), "an output with body {body}");
        }
        _ => {}
    }
}

/// Every string in `v`, keys included.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.clone()).chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}

struct Quiet;

impl Hooks for Quiet {
    fn heartbeat(&mut self) {}
    fn should_stop(&self) -> bool {
        false
    }
}
