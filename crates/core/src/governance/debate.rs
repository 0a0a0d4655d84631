//! How far a debate's perspectives agree (SOCIETY.md §C2, [P]).
//!
//! A perspective is a flat position `{key: value}`. Two positions agree on a
//! key when both hold it with equal values; pair agreement is
//! |equal keys| / |union of keys| (two empty positions agree fully: there is
//! nothing to disagree about). Consensus is the average pairwise agreement
//! reaching the threshold, with at least two perspectives.

use super::round9;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

pub type Position = Map<String, Value>;

/// Pair agreement: |equal keys| / |union of keys|.
pub fn agreement(a: &Position, b: &Position) -> f64 {
    let union: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    if union.is_empty() {
        return 1.0;
    }
    let equal = a.iter().filter(|(k, v)| b.get(*k) == Some(v)).count();
    round9(equal as f64 / union.len() as f64)
}

/// Two participants' differing keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub agents: [String; 2],
    pub disagreements: Vec<String>,
}

/// The state of a debate after a round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consensus {
    pub reached: bool,
    /// Average pairwise agreement (0 with fewer than two perspectives).
    pub agreement: f64,
    /// The keys every participant holds with the same value.
    pub areas_of_agreement: Position,
    /// Keys some participants differ on (or hold when others do not).
    pub areas_of_disagreement: Vec<String>,
    pub conflicts: Vec<Conflict>,
}

/// Checks consensus over `(agent, position)` pairs.
pub fn consensus(perspectives: &[(String, Position)], threshold: f64) -> Consensus {
    let mut total = 0.0;
    let mut pairs = 0usize;
    let mut conflicts = Vec::new();
    for (i, (a, pa)) in perspectives.iter().enumerate() {
        for (b, pb) in &perspectives[i + 1..] {
            total += agreement(pa, pb);
            pairs += 1;
            let keys: BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
            let differ: Vec<String> = keys
                .into_iter()
                .filter(|k| pa.get(*k) != pb.get(*k))
                .cloned()
                .collect();
            if !differ.is_empty() {
                conflicts.push(Conflict {
                    agents: [a.clone(), b.clone()],
                    disagreements: differ,
                });
            }
        }
    }
    let average = if pairs == 0 {
        0.0
    } else {
        round9(total / pairs as f64)
    };
    let mut common = Position::new();
    if let Some((_, first)) = perspectives.first() {
        for (k, v) in first {
            if perspectives.iter().all(|(_, p)| p.get(k) == Some(v)) {
                common.insert(k.clone(), v.clone());
            }
        }
    }
    let disagreement: BTreeSet<String> = conflicts
        .iter()
        .flat_map(|c| c.disagreements.iter().cloned())
        .collect();
    Consensus {
        reached: perspectives.len() >= 2 && average >= round9(threshold),
        agreement: average,
        areas_of_agreement: common,
        areas_of_disagreement: disagreement.into_iter().collect(),
        conflicts,
    }
}

/// The agreed plan: an object plan with the common position merged over it;
/// a text plan becomes `{"plan": text, ...common}`.
pub fn agreed_plan(plan: &Value, common: &Position) -> Value {
    let mut out = match plan {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert("plan".into(), other.clone());
            m
        }
    };
    for (k, v) in common {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn pos(v: Value) -> Position {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pair_agreement_is_equal_keys_over_the_union() {
        let a = pos(json!({"contrast": "low", "palette": "blue"}));
        let b = pos(json!({"contrast": "high", "palette": "blue"}));
        assert_eq!(agreement(&a, &b), 0.5);
        assert_eq!(agreement(&a, &a), 1.0);
        let c = pos(json!({"contrast": "high"}));
        let d = pos(json!({"contrast": "high", "haze": "yes"}));
        assert_eq!(agreement(&c, &d), 0.5);
        assert_eq!(agreement(&c, &pos(json!({"palette": "red"}))), 0.0);
        assert_eq!(agreement(&Position::new(), &Position::new()), 1.0);
        // Three of five keys equal: 0.6.
        let e = pos(json!({"a": 1, "b": 2, "c": 3, "d": 4}));
        let f = pos(json!({"a": 1, "b": 2, "c": 3, "e": 5}));
        assert_eq!(agreement(&e, &f), 0.6);
    }

    #[test]
    fn consensus_needs_two_perspectives_and_the_threshold() {
        let one = vec![("dp".to_string(), pos(json!({"x": 1})))];
        let c = consensus(&one, 0.8);
        assert!(!c.reached);
        assert_eq!(c.agreement, 0.0);

        // The film-crew fixture: {contrast: low, palette: blue} vs {contrast: high, palette: blue}.
        let split = vec![
            (
                "director".to_string(),
                pos(json!({"contrast": "low", "palette": "blue"})),
            ),
            (
                "dp".to_string(),
                pos(json!({"contrast": "high", "palette": "blue"})),
            ),
        ];
        let c = consensus(&split, 0.8);
        assert!(!c.reached);
        assert_eq!(c.agreement, 0.5);
        assert_eq!(c.areas_of_agreement, pos(json!({"palette": "blue"})));
        assert_eq!(c.areas_of_disagreement, ["contrast"]);
        assert_eq!(
            c.conflicts[0].agents,
            ["director".to_string(), "dp".to_string()]
        );

        // Three participants: pairs 1.0, 0.5, 0.5 → 0.666666667 < 0.8.
        let three = vec![
            ("a".to_string(), pos(json!({"k": 1}))),
            ("b".to_string(), pos(json!({"k": 1}))),
            ("c".to_string(), pos(json!({"k": 1, "j": 2}))),
        ];
        let c = consensus(&three, 0.8);
        assert_eq!(c.agreement, 0.666666667);
        assert!(!c.reached);
        assert!(consensus(&three, 0.66).reached);

        // Exactly at the threshold is consensus (≥).
        let same = vec![
            (
                "a".to_string(),
                pos(json!({"contrast": "high", "haze": "yes"})),
            ),
            (
                "b".to_string(),
                pos(json!({"contrast": "high", "haze": "yes"})),
            ),
        ];
        assert!(consensus(&same, 1.0).reached);
    }

    #[test]
    fn the_agreed_plan_merges_the_common_position() {
        let common = pos(json!({"haze": "yes"}));
        assert_eq!(
            agreed_plan(&json!({"contrast": "high", "haze": "no"}), &common),
            json!({"contrast": "high", "haze": "yes"})
        );
        assert_eq!(
            agreed_plan(&json!("light it"), &common),
            json!({"plan": "light it", "haze": "yes"})
        );
    }
}
