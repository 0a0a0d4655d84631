//! A proposed decision, as a brain states it: the facts the runtime scores,
//! never the scores themselves.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// How far a decision reaches (the source's film words: a scene, an
/// episode, the whole series; read them as local, one work item, everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Scene,
    Episode,
    Series,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reversibility {
    Easy,
    Moderate,
    Difficult,
}

/// A decision proposal (`decide`). Parsed strictly by [`DecisionContext::parse`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionContext {
    pub decision_type: String,
    pub scope: Scope,
    pub affects_multiple_departments: bool,
    pub is_foundational: bool,
    pub reversibility: Reversibility,
    /// In the society's cost unit (compared with `autonomy.resource_cost_high`).
    pub resource_cost: f64,
    pub has_complete_information: bool,
    /// Who else the decision depends on (agent ids or `role:<name>`).
    pub dependencies: Vec<String>,
    /// Context features for pattern matching: numbers, booleans or strings.
    pub features: BTreeMap<String, Value>,
    /// What will be done: text, or an object of settings (a debate merges
    /// the agreed keys into an object plan).
    pub plan: Value,
    pub rationale: String,
    pub alternatives: Vec<Value>,
}

/// Why a proposal was refused. The message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid decision proposal: {0}")]
pub struct ProposalError(pub String);

const FIELDS: &[&str] = &[
    "decision_type",
    "scope",
    "affects_multiple_departments",
    "is_foundational",
    "reversibility",
    "resource_cost",
    "has_complete_information",
    "dependencies",
    "features",
    "plan",
    "rationale",
    "alternatives",
];

impl DecisionContext {
    /// Parses a proposal. Required: `decision_type`, `scope`,
    /// `affects_multiple_departments`, `is_foundational`, `reversibility`,
    /// `resource_cost`, `has_complete_information`, `plan`. Optional
    /// (default empty): `dependencies`, `features`, `rationale`,
    /// `alternatives`. Unknown fields are refused — a misspelt
    /// `is_foundational` must not silently score 0. `extra` names fields the
    /// caller handles itself (e.g. the runtime's `then`, `revision`).
    pub fn parse(v: &Value, extra: &[&str]) -> Result<DecisionContext, ProposalError> {
        let err = |m: String| ProposalError(m);
        let obj = v
            .as_object()
            .ok_or_else(|| err("a proposal must be a JSON object".into()))?;
        for key in obj.keys() {
            if !FIELDS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
                return Err(err(format!(
                    "unknown field {key:?} (expected {})",
                    FIELDS.join(", ")
                )));
            }
        }
        let need = |k: &str| {
            obj.get(k)
                .ok_or_else(|| err(format!("missing field {k:?}")))
        };
        let boolean = |k: &str| -> Result<bool, ProposalError> {
            need(k)?
                .as_bool()
                .ok_or_else(|| err(format!("{k:?} must be true or false")))
        };
        let text = |k: &str, v: &Value| -> Result<String, ProposalError> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| err(format!("{k:?} must be a string")))
        };

        let decision_type = text("decision_type", need("decision_type")?)?;
        if decision_type.is_empty()
            || decision_type.len() > 64
            || !decision_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(err(format!(
                "decision_type {decision_type:?} must be 1-64 characters of [A-Za-z0-9_.-]"
            )));
        }
        let scope = match text("scope", need("scope")?)?.as_str() {
            "scene" => Scope::Scene,
            "episode" => Scope::Episode,
            "series" => Scope::Series,
            other => {
                return Err(err(format!(
                    "scope {other:?} is not one of scene, episode, series"
                )))
            }
        };
        let reversibility = match text("reversibility", need("reversibility")?)?.as_str() {
            "easy" => Reversibility::Easy,
            "moderate" => Reversibility::Moderate,
            "difficult" => Reversibility::Difficult,
            other => {
                return Err(err(format!(
                    "reversibility {other:?} is not one of easy, moderate, difficult"
                )))
            }
        };
        let resource_cost = need("resource_cost")?
            .as_f64()
            .filter(|c| c.is_finite() && *c >= 0.0)
            .ok_or_else(|| err("\"resource_cost\" must be a number >= 0".into()))?;
        let dependencies = match obj.get("dependencies") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|d| {
                    d.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            err("\"dependencies\" must be an array of non-empty strings".into())
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(err("\"dependencies\" must be an array of strings".into())),
        };
        let features = match obj.get("features") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let ok = match v {
                        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
                        Value::Bool(_) | Value::String(_) => true,
                        _ => false,
                    };
                    if !ok {
                        return Err(err(format!(
                            "feature {k:?} must be a number, boolean or string"
                        )));
                    }
                }
                map.clone().into_iter().collect()
            }
            Some(_) => return Err(err("\"features\" must be an object".into())),
        };
        let plan = need("plan")?.clone();
        let empty = match &plan {
            Value::String(s) => s.trim().is_empty(),
            Value::Object(m) => m.is_empty(),
            _ => return Err(err("\"plan\" must be a string or an object".into())),
        };
        if empty {
            return Err(err("\"plan\" is empty".into()));
        }
        let rationale = match obj.get("rationale") {
            None | Some(Value::Null) => String::new(),
            Some(v) => text("rationale", v)?,
        };
        let alternatives = match obj.get("alternatives") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(err("\"alternatives\" must be an array".into())),
        };
        Ok(DecisionContext {
            decision_type,
            scope,
            affects_multiple_departments: boolean("affects_multiple_departments")?,
            is_foundational: boolean("is_foundational")?,
            reversibility,
            resource_cost,
            has_complete_information: boolean("has_complete_information")?,
            dependencies,
            features,
            plan,
            rationale,
            alternatives,
        })
    }

    /// The features as a vector for cosine similarity: numbers as
    /// themselves, booleans as 1/0, strings one-hot (`"k=v": 1`).
    pub fn feature_vector(&self) -> BTreeMap<String, f64> {
        feature_vector(&self.features)
    }

    /// The plan as text (for an approval request and the orchestrator).
    pub fn plan_text(&self) -> String {
        match &self.plan {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// See [`DecisionContext::feature_vector`].
pub fn feature_vector(features: &BTreeMap<String, Value>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (k, v) in features {
        match v {
            Value::Number(n) => {
                out.insert(k.clone(), n.as_f64().unwrap_or(0.0));
            }
            Value::Bool(b) => {
                out.insert(k.clone(), if *b { 1.0 } else { 0.0 });
            }
            Value::String(s) => {
                out.insert(format!("{k}={s}"), 1.0);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"decision_type": "lighting", "scope": "series", "affects_multiple_departments": false,
               "is_foundational": true, "reversibility": "difficult", "resource_cost": 0,
               "has_complete_information": true, "dependencies": ["dp"],
               "features": {"atmosphere": "ethereal", "night": true, "budget": 2.5},
               "plan": {"contrast": "low"}})
    }

    #[test]
    fn a_complete_proposal_parses_and_features_are_one_hot() {
        let c = DecisionContext::parse(&base(), &[]).unwrap();
        assert_eq!(c.scope, Scope::Series);
        assert_eq!(c.reversibility, Reversibility::Difficult);
        assert_eq!(c.dependencies, ["dp"]);
        let f = c.feature_vector();
        assert_eq!(f["atmosphere=ethereal"], 1.0);
        assert_eq!(f["night"], 1.0);
        assert_eq!(f["budget"], 2.5);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn malformed_proposals_name_what_is_wrong() {
        // (field, new value or None to remove it, what the error must say)
        let cases: [(&str, Option<Value>, &str); 10] = [
            ("scope", None, "missing field \"scope\""),
            ("scope", Some(json!("galaxy")), "scope \"galaxy\""),
            (
                "reversibility",
                Some(json!("never")),
                "reversibility \"never\"",
            ),
            ("resource_cost", Some(json!(-1)), "resource_cost"),
            (
                "is_foundational",
                Some(json!("yes")),
                "\"is_foundational\" must be true or false",
            ),
            (
                "is_fundational",
                Some(json!(true)),
                "unknown field \"is_fundational\"",
            ),
            ("features", Some(json!({"x": [1]})), "feature \"x\""),
            ("plan", Some(json!("  ")), "\"plan\" is empty"),
            ("decision_type", Some(json!("a b")), "decision_type \"a b\""),
            ("dependencies", Some(json!([""])), "dependencies"),
        ];
        for (field, value, want) in cases {
            let mut v = base();
            let m = v.as_object_mut().unwrap();
            match value {
                Some(x) => m.insert(field.into(), x),
                None => m.remove(field),
            };
            let e = DecisionContext::parse(&v, &[]).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
        assert!(DecisionContext::parse(&json!([1]), &[]).is_err());
        let mut v = base();
        v.as_object_mut().unwrap().insert("then".into(), json!([]));
        assert!(DecisionContext::parse(&v, &[]).is_err());
        assert!(DecisionContext::parse(&v, &["then"]).is_ok());
    }
}
