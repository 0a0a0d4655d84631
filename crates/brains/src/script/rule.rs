//! Script rules as they appear in config.

use crate::BrainError;
use serde::Deserialize;
use society_core::{Envelope, Party};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Match on the message type (any if absent).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Body fields that must equal these values.
    #[serde(default)]
    pub when: serde_json::Map<String, serde_json::Value>,
    pub actions: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    #[serde(flatten)]
    pub op: Op,
    /// Only on attempts `<= until_attempt` (e.g. crash on the first try only).
    #[serde(default)]
    pub until_attempt: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Op {
    Reply {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        body: Option<serde_json::Value>,
    },
    Send {
        to: Party,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default = "empty_object")]
        body: serde_json::Value,
        /// Capabilities a `role:<r>` recipient must have.
        #[serde(default)]
        needs: Vec<String>,
    },
    Forward {
        to: Party,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        set: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default)]
        needs: Vec<String>,
    },
    CaseEvent {
        event: String,
        #[serde(default)]
        fields: Option<serde_json::Value>,
    },
    Log {
        message: String,
    },
    RequestApproval {
        plan: String,
        #[serde(default)]
        rationale: String,
        #[serde(default)]
        alternatives: Vec<String>,
    },
    Escalate {
        reason: String,
        #[serde(default)]
        context: Option<serde_json::Value>,
    },
    /// Propose a decision (`proposal`, templated), with the steps to run
    /// when it goes ahead (`then`: reply, send, forward, case_event, log).
    Decide {
        proposal: serde_json::Value,
        #[serde(default)]
        then: Vec<Step>,
    },
    /// Append to the agent's `memory.jsonl` (templated `text` and `tags`;
    /// the message's case unless `case` is given). Once per message: a
    /// retry finds the memory already there.
    Remember {
        text: String,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        case: Option<String>,
    },
    /// Rank the agent's memories for `query` (templated); the following
    /// steps see the hits as `{{recall}}` (`{{recall.0.text}}`, ...).
    Recall {
        query: String,
        #[serde(default = "default_k")]
        k: usize,
    },
    /// Fail attempts `1..=times`, succeed after.
    Fail {
        times: u32,
    },
    Sleep {
        ms: u64,
    },
    /// Stop making progress and stop heartbeating, forever.
    Hang,
    /// Exit the process at once with `code` (default 101), as a crash would.
    Exit {
        #[serde(default = "crash_code")]
        code: i32,
    },
}

/// Every step's `do` is a name. serde reads a number in the tag of an
/// internally tagged enum as the index of a variant, so without this
/// `{"do": 12}` would be a `hang` and `{"do": 13}` an `exit`.
pub(crate) fn check_op_names(rules: &serde_json::Value) -> Result<(), String> {
    fn steps(list: Option<&serde_json::Value>) -> Result<(), String> {
        for step in list.and_then(|l| l.as_array()).into_iter().flatten() {
            match step.get("do") {
                Some(serde_json::Value::String(_)) | None => {}
                Some(other) => return Err(format!("a step's \"do\" must be a name, not {other}")),
            }
            steps(step.get("then"))?;
        }
        Ok(())
    }
    for rule in rules.as_array().into_iter().flatten() {
        steps(rule.get("actions"))?;
    }
    Ok(())
}

/// A string that is exactly one `{{...}}` placeholder (it renders to the
/// value's own JSON type).
fn is_placeholder(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.starts_with("{{") && t.ends_with("}}") && t[2..].find("{{").is_none())
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}
fn default_k() -> usize {
    society_core::memory::DEFAULT_K
}
fn crash_code() -> i32 {
    101
}

impl Rule {
    pub fn matches(&self, msg: &Envelope) -> bool {
        self.kind.as_ref().is_none_or(|k| *k == msg.kind)
            && self.when.iter().all(|(k, v)| msg.body.get(k) == Some(v))
    }

    pub fn check(&self) -> Result<(), BrainError> {
        let bad = |reason: String| BrainError::Config {
            kind: "script".into(),
            reason,
        };
        if let Some(kind) = &self.kind {
            if !society_core::envelope::valid_type(kind) {
                return Err(bad(format!(
                    "rule type {kind:?} is not a valid message type"
                )));
            }
        }
        let mut steps: Vec<&Step> = self.actions.iter().collect();
        for step in &self.actions {
            if let Op::Recall { k, .. } = step.op {
                if k == 0 || k > society_core::memory::MAX_K {
                    return Err(bad(format!(
                        "recall k must be between 1 and {}, not {k}",
                        society_core::memory::MAX_K
                    )));
                }
            }
            if let Op::Decide { proposal, then } = &step.op {
                if !proposal.is_object() && !is_placeholder(proposal) {
                    return Err(bad(
                        "a decide proposal must be a JSON object or one placeholder such as \"{{body.proposal}}\""
                            .into(),
                    ));
                }
                for t in then {
                    match t.op {
                        Op::Reply { .. }
                        | Op::Send { .. }
                        | Op::Forward { .. }
                        | Op::CaseEvent { .. }
                        | Op::Log { .. } => steps.push(t),
                        _ => {
                            return Err(bad(
                                "a decide's then may only reply, send, forward, case_event or log"
                                    .into(),
                            ))
                        }
                    }
                }
            }
        }
        for step in steps {
            if let Op::Send { needs, .. } | Op::Forward { needs, .. } = &step.op {
                society_core::envelope::check_needs(needs).map_err(&bad)?;
            }
            let (kind, body) = match &step.op {
                Op::Reply { kind, body } => (kind, body.as_ref()),
                Op::Send { kind, body, .. } => (kind, Some(body)),
                Op::Forward { kind, .. } => (kind, None),
                _ => (&None, None),
            };
            if body.is_some_and(|b| !b.is_object() && !is_placeholder(b)) {
                return Err(bad(
                    "a reply/send body must be a JSON object or one placeholder such as \"{{body.parked.body}}\""
                        .into(),
                ));
            }
            if let Some(k) = kind {
                if !society_core::envelope::valid_type(k) {
                    return Err(bad(format!(
                        "action type {k:?} is not a valid message type"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(actions: serde_json::Value) -> Result<(), String> {
        let rule: Rule = serde_json::from_value(serde_json::json!({ "actions": actions }))
            .map_err(|e| e.to_string())?;
        rule.check().map_err(|e| e.to_string())
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn memory_steps_parse_and_recall_k_is_bounded() {
        assert_eq!(
            rule(serde_json::json!([
                {"do": "remember", "text": "{{body.text}}", "tags": ["a"]},
                {"do": "recall", "query": "{{body.q}}"},
                {"do": "recall", "query": "x", "k": 100}
            ])),
            Ok(())
        );
        let e = rule(serde_json::json!([{"do": "recall", "query": "x", "k": 0}])).unwrap_err();
        assert!(
            e.contains("recall k must be between 1 and 100, not 0"),
            "{e}"
        );
        let e = rule(serde_json::json!([{"do": "remember"}])).unwrap_err();
        assert!(e.contains("missing field `text`"), "{e}");
    }

    #[test]
    fn an_op_is_named_never_numbered() {
        // serde alone would take 12 as the index of `hang`.
        let numbered = serde_json::json!([{"actions": [{"do": 12}]}]);
        assert!(serde_json::from_value::<Vec<Rule>>(numbered.clone()).is_ok());
        assert_eq!(
            check_op_names(&numbered),
            Err("a step's \"do\" must be a name, not 12".into())
        );
        let nested = serde_json::json!([{"actions": [
            {"do": "decide", "proposal": {}, "then": [{"do": 13}]}]}]);
        assert!(check_op_names(&nested).is_err());
        let named = serde_json::json!([{"actions": [{"do": "log", "message": "m"}]}]);
        assert_eq!(check_op_names(&named), Ok(()));
    }
}
