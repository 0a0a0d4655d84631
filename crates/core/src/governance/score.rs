//! Impact, confidence and risk (SOCIETY.md §A3) and the ordered decision
//! rule (§A4). Every threshold is an [`AutonomyPolicy`] value.

use super::context::{DecisionContext, Reversibility, Scope};
use super::learning::Preference;
use super::{round9, Level};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `[autonomy]` table of `society.toml` (a role's `[role.X.autonomy]`
/// overrides it key by key). Defaults are the source's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutonomyPolicy {
    /// Rule 1: `impact > impact_max` → requires_approval.
    pub impact_max: f64,
    /// Rule 1: `risk > risk_max` → requires_approval.
    pub risk_max: f64,
    /// Rule 2: `confidence < confidence_min` → collaborative.
    pub confidence_min: f64,
    /// Rule 3: `pattern_match > pattern_min` and the orchestrator prefers
    /// autonomy → autonomous.
    pub pattern_min: f64,
    /// Confidence before any evidence (the source's 0.5).
    pub confidence_base: f64,
    /// `resource_cost` above this adds 0.3 risk (the source's undefined
    /// `HIGH_THRESHOLD`).
    pub resource_cost_high: f64,
    /// Decision types within this agent's expertise (+0.2 confidence).
    pub core_expertise: Vec<String>,
    /// The default level of each decision type.
    pub baselines: BTreeMap<String, Level>,
    /// The level of a type with no baseline; absent: such proposals are refused.
    pub unknown_type: Option<Level>,
    /// Rejections with feedback a decision may be revised after; then it escalates.
    pub max_revisions: u32,
}

impl Default for AutonomyPolicy {
    fn default() -> AutonomyPolicy {
        AutonomyPolicy {
            impact_max: 0.8,
            risk_max: 0.8,
            confidence_min: 0.3,
            pattern_min: 0.9,
            confidence_base: 0.5,
            resource_cost_high: 1000.0,
            core_expertise: Vec::new(),
            baselines: BTreeMap::new(),
            unknown_type: None,
            max_revisions: 3,
        }
    }
}

impl AutonomyPolicy {
    /// Refuses values out of range, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("impact_max", self.impact_max),
            ("risk_max", self.risk_max),
            ("confidence_min", self.confidence_min),
            ("pattern_min", self.pattern_min),
            ("confidence_base", self.confidence_base),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("autonomy.{key} = {v} is out of range (0 to 1)"));
            }
        }
        if !(self.resource_cost_high.is_finite() && self.resource_cost_high >= 0.0) {
            return Err(format!(
                "autonomy.resource_cost_high = {} must be a number >= 0",
                self.resource_cost_high
            ));
        }
        if self.max_revisions > 100 {
            return Err(format!(
                "autonomy.max_revisions = {} is out of range (0 to 100)",
                self.max_revisions
            ));
        }
        Ok(())
    }

    /// The baseline of a type, or the policy's level for unknown types.
    pub fn baseline(&self, decision_type: &str) -> Option<Level> {
        self.baselines
            .get(decision_type)
            .copied()
            .or(self.unknown_type)
    }
}

/// The scores of one assessment, each in [0, 1], rounded to 1e-9.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub impact: f64,
    pub confidence: f64,
    pub risk: f64,
    pub pattern_match: f64,
    pub pattern_confidence: f64,
}

/// Which rule of the ordered decision rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// 1: impact or risk above its maximum.
    HighImpactOrRisk,
    /// 2: confidence below its minimum.
    LowConfidence,
    /// 3: a strong pattern and an orchestrator who prefers autonomy.
    LearnedPattern,
    /// 4: the decision depends on others.
    Dependencies,
    /// 5: the type's baseline.
    Baseline,
}

/// A finished assessment: the level, the rule that chose it and what it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub level: Level,
    pub rule: Rule,
    pub scores: Scores,
    pub preference: Preference,
    pub baseline: Level,
}

/// +0.3 several departments, +0.4 foundational, +0.3 series / +0.2 episode; ≤ 1.
pub fn impact(c: &DecisionContext) -> f64 {
    let mut x = 0.0;
    if c.affects_multiple_departments {
        x += 0.3;
    }
    if c.is_foundational {
        x += 0.4;
    }
    x += match c.scope {
        Scope::Series => 0.3,
        Scope::Episode => 0.2,
        Scope::Scene => 0.0,
    };
    round9(f64::min(x, 1.0))
}

/// base, +0.2 complete information, +0.2 core expertise, + pattern confidence × 0.3; ≤ 1.
pub fn confidence(c: &DecisionContext, p: &AutonomyPolicy, pattern_confidence: f64) -> f64 {
    let mut x = p.confidence_base;
    if c.has_complete_information {
        x += 0.2;
    }
    if p.core_expertise.contains(&c.decision_type) {
        x += 0.2;
    }
    x += pattern_confidence * 0.3;
    round9(f64::min(x, 1.0))
}

/// easy 0.1 / moderate 0.4 / difficult 0.7, +0.3 above `resource_cost_high`; ≤ 1.
pub fn risk(c: &DecisionContext, p: &AutonomyPolicy) -> f64 {
    let mut x = match c.reversibility {
        Reversibility::Easy => 0.1,
        Reversibility::Moderate => 0.4,
        Reversibility::Difficult => 0.7,
    };
    if c.resource_cost > p.resource_cost_high {
        x += 0.3;
    }
    round9(f64::min(x, 1.0))
}

/// Scores a proposal and applies the decision rule, in order, strictly.
/// `pattern_match` and `pattern_confidence` come from the agent's learning
/// state. `None`: the type has no baseline and the policy refuses unknown types.
pub fn assess(
    c: &DecisionContext,
    p: &AutonomyPolicy,
    pattern_match: f64,
    pattern_confidence: f64,
    preference: Preference,
) -> Option<Assessment> {
    let baseline = p.baseline(&c.decision_type)?;
    let scores = Scores {
        impact: impact(c),
        confidence: confidence(c, p, pattern_confidence),
        risk: risk(c, p),
        pattern_match: round9(pattern_match),
        pattern_confidence: round9(pattern_confidence),
    };
    let (level, rule) = if scores.impact > round9(p.impact_max) || scores.risk > round9(p.risk_max)
    {
        (Level::RequiresApproval, Rule::HighImpactOrRisk)
    } else if scores.confidence < round9(p.confidence_min) {
        (Level::Collaborative, Rule::LowConfidence)
    } else if scores.pattern_match > round9(p.pattern_min) && preference == Preference::Autonomous {
        (Level::Autonomous, Rule::LearnedPattern)
    } else if !c.dependencies.is_empty() {
        (Level::Collaborative, Rule::Dependencies)
    } else {
        (baseline, Rule::Baseline)
    };
    Some(Assessment {
        level,
        rule,
        scores,
        preference,
        baseline,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn ctx(edit: serde_json::Value) -> DecisionContext {
        let mut v = json!({"decision_type": "lighting", "scope": "scene",
            "affects_multiple_departments": false, "is_foundational": false,
            "reversibility": "easy", "resource_cost": 0, "has_complete_information": false,
            "plan": "p"});
        for (k, x) in edit.as_object().unwrap() {
            v[k] = x.clone();
        }
        DecisionContext::parse(&v, &[]).unwrap()
    }

    fn policy() -> AutonomyPolicy {
        let mut p = AutonomyPolicy::default();
        p.baselines.insert("lighting".into(), Level::Autonomous);
        p.baselines
            .insert("narrative_change".into(), Level::RequiresApproval);
        p
    }

    #[test]
    fn impact_is_the_sum_of_its_parts_capped_at_one() {
        assert_eq!(impact(&ctx(json!({}))), 0.0);
        assert_eq!(impact(&ctx(json!({"scope": "episode"}))), 0.2);
        assert_eq!(impact(&ctx(json!({"scope": "series"}))), 0.3);
        // The film-crew fixture: foundational, series, one department → 0.7.
        assert_eq!(
            impact(&ctx(json!({"scope": "series", "is_foundational": true}))),
            0.7
        );
        // 0.3 + 0.4 + 0.2 is 0.8999999999999999 in binary: rounded to 0.9.
        assert_eq!(
            impact(&ctx(
                json!({"scope": "episode", "is_foundational": true, "affects_multiple_departments": true})
            )),
            0.9
        );
        // 0.3 + 0.4 + 0.3 = 1.0 exactly, never more.
        assert_eq!(
            impact(&ctx(
                json!({"scope": "series", "is_foundational": true, "affects_multiple_departments": true})
            )),
            1.0
        );
    }

    #[test]
    fn confidence_adds_information_expertise_and_pattern() {
        let mut p = policy();
        assert_eq!(confidence(&ctx(json!({})), &p, 0.0), 0.5);
        assert_eq!(
            confidence(&ctx(json!({"has_complete_information": true})), &p, 0.0),
            0.7
        );
        p.core_expertise.push("lighting".into());
        assert_eq!(
            confidence(&ctx(json!({"has_complete_information": true})), &p, 0.0),
            0.9
        );
        // 0.9 + 0.5 × 0.3 = 1.05 → capped at 1.
        assert_eq!(
            confidence(&ctx(json!({"has_complete_information": true})), &p, 0.5),
            1.0
        );
        assert_eq!(confidence(&ctx(json!({})), &p, 0.4), 0.82);
        p.confidence_base = 0.1;
        p.core_expertise.clear();
        assert_eq!(confidence(&ctx(json!({})), &p, 0.0), 0.1);
    }

    #[test]
    fn risk_is_reversibility_plus_cost() {
        let p = policy();
        assert_eq!(risk(&ctx(json!({"reversibility": "easy"})), &p), 0.1);
        assert_eq!(risk(&ctx(json!({"reversibility": "moderate"})), &p), 0.4);
        assert_eq!(risk(&ctx(json!({"reversibility": "difficult"})), &p), 0.7);
        // Strictly above the threshold adds 0.3; at it, nothing.
        assert_eq!(
            risk(
                &ctx(json!({"reversibility": "moderate", "resource_cost": 1000})),
                &p
            ),
            0.4
        );
        assert_eq!(
            risk(
                &ctx(json!({"reversibility": "moderate", "resource_cost": 1000.5})),
                &p
            ),
            0.7
        );
        assert_eq!(
            risk(
                &ctx(json!({"reversibility": "difficult", "resource_cost": 5000})),
                &p
            ),
            1.0
        );
    }

    #[test]
    fn the_rule_fires_in_order_with_strict_boundaries() {
        let p = policy();
        let a = |c: &DecisionContext, pm: f64, pc: f64, pref: Preference| {
            let x = assess(c, &p, pm, pc, pref).unwrap();
            (x.level, x.rule)
        };
        // Rule 1: impact 1.0 > 0.8.
        let big = ctx(
            json!({"scope": "series", "is_foundational": true, "affects_multiple_departments": true}),
        );
        assert_eq!(
            a(&big, 1.0, 1.0, Preference::Autonomous),
            (Level::RequiresApproval, Rule::HighImpactOrRisk)
        );
        // Impact exactly 0.8 is not above 0.8 (strict): 0.4 + 0.2 + ... use 0.3 + 0.3 + 0.2 = 0.8.
        let edge = ctx(json!({"scope": "series", "affects_multiple_departments": true}));
        assert_eq!(impact(&edge), 0.6);
        let edge = ctx(json!({"scope": "series", "is_foundational": true, "dependencies": ["dp"]}));
        assert_eq!(impact(&edge), 0.7);
        assert_eq!(
            a(&edge, 0.5, 0.0, Preference::Balanced),
            (Level::Collaborative, Rule::Dependencies)
        );
        // Risk 1.0 > 0.8; risk 0.7 is not.
        let risky = ctx(json!({"reversibility": "difficult", "resource_cost": 2000}));
        assert_eq!(
            a(&risky, 0.5, 0.0, Preference::Balanced),
            (Level::RequiresApproval, Rule::HighImpactOrRisk)
        );
        // Rule 2 needs a lower base: confidence 0.29 < 0.3 fires; 0.3 does not.
        let mut low = policy();
        low.confidence_base = 0.29;
        let plain = ctx(json!({}));
        let x = assess(&plain, &low, 0.5, 0.0, Preference::Balanced).unwrap();
        assert_eq!(
            (x.level, x.rule),
            (Level::Collaborative, Rule::LowConfidence)
        );
        low.confidence_base = 0.3;
        let x = assess(&plain, &low, 0.5, 0.0, Preference::Balanced).unwrap();
        assert_eq!((x.level, x.rule), (Level::Autonomous, Rule::Baseline));
        // Rule 3 beats the dependency rule, but needs both conditions, strictly.
        let dep = ctx(json!({"dependencies": ["dp"], "decision_type": "narrative_change"}));
        assert_eq!(
            a(&dep, 0.91, 0.0, Preference::Autonomous),
            (Level::Autonomous, Rule::LearnedPattern)
        );
        assert_eq!(
            a(&dep, 0.9, 0.0, Preference::Autonomous),
            (Level::Collaborative, Rule::Dependencies)
        );
        assert_eq!(
            a(&dep, 0.99, 0.0, Preference::Balanced),
            (Level::Collaborative, Rule::Dependencies)
        );
        // Rule 5: the baseline.
        let nd = ctx(json!({"decision_type": "narrative_change"}));
        assert_eq!(
            a(&nd, 0.5, 0.0, Preference::Balanced),
            (Level::RequiresApproval, Rule::Baseline)
        );
        // A pattern match that rounds to exactly 0.9 is not above it.
        assert_eq!(
            a(&dep, 0.6 * 1.0 + 0.4 * 0.75, 0.0, Preference::Autonomous).1,
            Rule::Dependencies
        );
    }

    #[test]
    fn unknown_types_are_refused_unless_the_policy_names_a_level() {
        let mut p = policy();
        let c = ctx(json!({"decision_type": "catering"}));
        assert!(assess(&c, &p, 0.5, 0.0, Preference::Balanced).is_none());
        p.unknown_type = Some(Level::Collaborative);
        let x = assess(&c, &p, 0.5, 0.0, Preference::Balanced).unwrap();
        assert_eq!(
            (x.level, x.baseline),
            (Level::Collaborative, Level::Collaborative)
        );
    }

    #[test]
    fn out_of_range_policy_values_are_refused() {
        let mut p = AutonomyPolicy::default();
        assert!(p.validate().is_ok());
        p.impact_max = 1.5;
        assert!(p.validate().unwrap_err().contains("autonomy.impact_max"));
        let p = AutonomyPolicy {
            resource_cost_high: -1.0,
            ..AutonomyPolicy::default()
        };
        assert!(p.validate().unwrap_err().contains("resource_cost_high"));
    }
}
